/// A short pause in accepting on a level-triggered listening socket after accept failed for
/// want of descriptors or memory. The client stays in the backlog and the socket stays
/// readable, so accepting again at once would spin the loop for as long as the shortage
/// lasts; instead the socket stops reporting readiness for `nanoseconds` and the backlog waits.
/// Used by the admin socket and the metrics endpoint (the relay's own listeners have the
/// accept gate, which also keeps a capacity). Loop thread only.
final class AcceptPause {
    private unowned(unsafe) let loop: EventLoop
    private let fd: FileDescriptor
    private let nanoseconds: UInt64
    private lazy var resume = OneShotTimer { [unowned self] _ in try? loop.modify(fd, interest: [.readable]) }

    init(loop: EventLoop, fd: FileDescriptor, nanoseconds: UInt64 = 250_000_000) {
        self.loop = loop
        self.fd = fd
        self.nanoseconds = nanoseconds
    }

    /// After a failed accept; a pause already under way is not extended.
    func begin() {
        guard !resume.timer.isScheduled else { return }
        try? loop.modify(fd, interest: [])
        loop.timers.schedule(resume, at: loop.now &+ nanoseconds)
    }

    /// Before the socket closes: its descriptor number may belong to someone else afterwards.
    func cancel() {
        if resume.timer.isScheduled { loop.timers.cancel(resume) }
    }
}
