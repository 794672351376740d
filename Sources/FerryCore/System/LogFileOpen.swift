import Glibc
import CLinux

extension FileDescriptor {
    /// Opens `path` for appending log lines, creating it 0644 if missing (nginx's mode for logs).
    /// A FIFO nobody reads fails at once with ENXIO instead of blocking the open until a reader
    /// comes (ferry would hang at start, or its writer at reopen, saying nothing); the descriptor
    /// is blocking again afterwards, since the writer thread is the one that waits on it.
    public static func openForAppend(_ path: String) throws(Errno) -> FileDescriptor {
        let fd = try syscall("open") { Glibc.open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NONBLOCK, 0o644) }
        let flags = fcntl(fd, F_GETFL)
        if flags >= 0 { _ = fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) }
        return FileDescriptor(fd)
    }

    /// Opens `path` to replace its contents (the pid file), creating it 0644 if missing.
    public static func openForWriting(_ path: String) throws(Errno) -> FileDescriptor {
        let fd = try syscall("open") { Glibc.open(path, O_WRONLY | O_TRUNC | O_CREAT | O_CLOEXEC, 0o644) }
        return FileDescriptor(fd)
    }

    /// One write(2) of up to `count` bytes: how many were written, or the error that stopped it.
    /// Blocking: for the log writer thread and small event lines only, never for sockets.
    public func writeSome(_ buffer: UnsafeRawPointer, count: Int) -> Result<Int, Errno> {
        do {
            return .success(try syscall("write") { Glibc.write(rawValue, buffer, count) })
        } catch {
            return .failure(error)
        }
    }
}
