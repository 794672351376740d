import Glibc
import CLinux

/// A kernel pipe used as the splice buffer between two sockets.
public struct Pipe {
    public let readEnd: FileDescriptor
    public let writeEnd: FileDescriptor

    public static func make() throws(Errno) -> Pipe {
        var fds: (Int32, Int32) = (-1, -1)
        _ = try withUnsafeMutablePointer(to: &fds) { (p) throws(Errno) -> Int32 in
            try p.withMemoryRebound(to: Int32.self, capacity: 2) { (q) throws(Errno) -> Int32 in
                try syscall("pipe2") { ferry_pipe2(q, O_NONBLOCK | O_CLOEXEC) }
            }
        }
        return Pipe(readEnd: FileDescriptor(fds.0), writeEnd: FileDescriptor(fds.1))
    }

    /// Asks for a capacity in bytes; the kernel may refuse (pipe-user-pages limits) and keep its own.
    @discardableResult
    public func setCapacity(_ bytes: Int) -> Int? {
        try? syscall("fcntl(F_SETPIPE_SZ)") { ferry_set_pipe_size(writeEnd.rawValue, Int32(bytes)) }.asInt
    }

    public func close() { readEnd.close(); writeEnd.close() }
}

extension Int32 { @inline(__always) var asInt: Int { Int(self) } }

/// splice(2) between a socket and a pipe end, non-blocking on both sides.
@inline(__always)
public func splice(from source: FileDescriptor, to destination: FileDescriptor, count: Int, more: Bool) throws(Errno) -> IOResult<Int> {
    let flags = FERRY_SPLICE_F_MOVE | FERRY_SPLICE_F_NONBLOCK | (more ? FERRY_SPLICE_F_MORE : 0)
    return try nonBlockingSyscall("splice") { ferry_splice(source.rawValue, destination.rawValue, count, flags) }
}
