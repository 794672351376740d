import Glibc

extension FileDescriptor {
    /// Whether a small write (up to PIPE_BUF) would go through without waiting now. For the
    /// event log, whose descriptor (stderr, a FIFO) is blocking and may be shared with other
    /// processes, so it cannot be made non-blocking: a reader that stopped reading must not
    /// stop the event loop. A descriptor poll cannot judge (an error, a closed one) counts as
    /// writable, so the write reports what is wrong as before.
    public var isWritableNow: Bool {
        var p = pollfd(fd: rawValue, events: Int16(POLLOUT), revents: 0)
        guard let n = try? syscall("poll", { poll(&p, 1, 0) }) else { return true }
        return n > 0
    }
}
