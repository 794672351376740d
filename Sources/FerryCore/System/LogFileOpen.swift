import Glibc
import CLinux

extension FileDescriptor {
    /// Opens `path` for appending log lines, creating it 0644 if missing (nginx's mode for logs).
    public static func openForAppend(_ path: String) throws(Errno) -> FileDescriptor {
        let fd = try syscall("open") { Glibc.open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644) }
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
