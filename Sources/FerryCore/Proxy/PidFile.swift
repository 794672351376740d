import Glibc

/// The `pid FILE;` file that `ferry -s` reads to find the running process.
enum PidFile {
    /// Writes this process's pid to `path` atomically: a temporary file beside it is renamed
    /// over it, so `ferry -s` racing a start or a reload never reads an empty or partial number.
    /// A directory ferry may not write to (a pid file prepared by root in /run, writable by the
    /// service user) gets the file rewritten in place instead, as nginx always does.
    static func write(_ path: String) throws(StartupError) {
        let temporary = "\(path).\(getpid()).tmp"
        do throws(Errno) {
            let fd: FileDescriptor
            do {
                fd = try FileDescriptor.openForWriting(temporary)
            } catch let e where e.rawValue == EACCES || e.rawValue == EPERM || e.rawValue == EROFS {
                try writePid(to: FileDescriptor.openForWriting(path))
                return
            }
            try writePid(to: fd)
            _ = try syscall("rename") { rename(temporary, path) }
        } catch {
            unlink(temporary)
            throw StartupError("pid file \"\(path)\" could not be written (\(error.rawValue): \(error)); check that its directory exists and is writable")
        }
    }

    /// Writes the pid and a newline, then closes `fd`.
    private static func writePid(to fd: FileDescriptor) throws(Errno) {
        let text = Array("\(getpid())\n".utf8)
        let written = text.withUnsafeBytes { fd.writeSome($0.baseAddress!, count: $0.count) }
        fd.close()
        switch written {
        case .success(let n) where n == text.count: break
        case .success: throw Errno(ENOSPC)
        case .failure(let e): throw e
        }
    }

    /// Removes `path` if it still names this process: a second ferry given the same file by
    /// mistake may have written its own pid there since, and its file is not ours to remove.
    static func remove(_ path: String) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return }
        var buf = [UInt8](repeating: 0, count: 32)
        let n = buf.withUnsafeMutableBytes { b in (try? syscall("read") { read(fd, b.baseAddress!, b.count) }) ?? 0 }
        closeDescriptor(fd)
        let text = String(decoding: buf[0..<max(0, n)], as: UTF8.self).filter { !$0.isWhitespace }
        if Int32(text) == getpid() { unlink(path) }
    }
}
