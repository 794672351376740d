/// Closes one server's sessions at a given rate (`shutdown sessions server U/S rate 10/s`).
///
/// CCcam clients reconnect as soon as their session ends; closing a busy server's hundreds of
/// sessions at once moves them all in the same second (a reconnect storm on the other servers,
/// and on the card). Pacing spreads the moves. The sessions are the ones on the server when the
/// command is given; each tick closes the next still-open one.
final class PacedShutdown: TimerTarget {
    var timer = TimerSlot()
    unowned(unsafe) let runtime: Runtime
    var upstream: Upstream
    var peer: Int
    private var pending: [Session]
    private let interval: UInt64
    private(set) var closed = 0

    init(runtime: Runtime, upstream: Upstream, peer: Int, sessions: [Session], perSecond: Int) {
        self.runtime = runtime
        self.upstream = upstream
        self.peer = peer
        // Oldest first: the list is newest-first, and the oldest have had their share.
        pending = sessions
        interval = 1_000_000_000 / UInt64(max(1, perSecond))
    }

    var remaining: Int { pending.count }

    func start() {
        runtime.loop.timers.schedule(self, at: runtime.loop.now &+ interval)
    }

    func cancel() { runtime.loop.timers.cancel(self) }

    func timerFired(now: UInt64) {
        while let s = pending.popLast() {
            guard s.phase != .closed else { continue }
            s.end(.adminShutdown)
            closed += 1
            break
        }
        if pending.contains(where: { $0.phase != .closed }) {
            runtime.loop.timers.schedule(self, at: now &+ interval)
        } else {
            pending.removeAll()
            runtime.pacedShutdownFinished(self)
        }
    }
}
