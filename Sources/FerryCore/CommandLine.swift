#if canImport(Glibc)
import Glibc
#endif

extension CommandLine {
    /// Parses ferry's arguments and runs the chosen mode; returns the process exit status.
    public static func run(_ args: [String]) -> Int32 {
        FileHandleWriter.stderr.write("ferry: not yet runnable\n")
        return 1
    }
}

/// Minimal unbuffered writer for stdout/stderr.
public struct FileHandleWriter {
    public let fd: Int32
    public static let stdout = FileHandleWriter(fd: 1)
    public static let stderr = FileHandleWriter(fd: 2)
    public func write(_ s: String) {
        var s = s
        s.withUTF8 { buf in
            var off = 0
            while off < buf.count {
                let n = Glibc.write(fd, buf.baseAddress! + off, buf.count - off)
                if n <= 0 { if n < 0 && errno == EINTR { continue }; return }
                off += n
            }
        }
    }
}
