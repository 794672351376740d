import Glibc

/// Unbuffered writes of whole strings to a descriptor (stdout, stderr, a log file).
public struct FileHandleWriter {
    public let fd: Int32
    public init(fd: Int32) { self.fd = fd }
    public static let stdout = FileHandleWriter(fd: 1)
    public static let stderr = FileHandleWriter(fd: 2)

    public func write(_ s: String) {
        var s = s
        s.withUTF8 { buf in
            var off = 0
            while off < buf.count {
                let r = try? syscall("write") { Glibc.write(fd, buf.baseAddress! + off, buf.count - off) }
                guard let n = r, n > 0 else { return }
                off += n
            }
        }
    }
}
