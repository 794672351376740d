/// What one probe attempt found.
enum ProbeResult: Equatable {
    case passed
    case failed(Errno)
    /// ferry itself could not try (out of descriptors): says nothing about the server.
    case skipped(Errno)
}

/// Where a probe belongs: one server of one upstream.
struct ProbeTarget {
    unowned(unsafe) let upstream: Upstream
    let index: Int
    var serverName: String { upstream.serverNames[index] }
    /// Whether this is server `index` of `u`: how the admin commands find a server's checks.
    func `is`(_ u: Upstream, _ index: Int) -> Bool { upstream === u && self.index == index }
}

/// One server's TCP-connect probe: every `interval`, a non-blocking connect bounded by
/// `timeout`; the connection is closed with a reset as soon as it is established.
///
/// Runs on the event loop like a session, so a slow or dead server costs one registered
/// socket and one timer and never holds up anything else. The reset (linger 0) leaves no
/// TIME_WAIT behind: at 1,000 servers probed every second a graceful close would pin tens of
/// thousands of local ports. The next probe is due `interval` after the previous one started,
/// so probes keep the phase they were given at start and stay spread out.
final class TCPProbe: EventHandler, TimerTarget {
    private enum Phase { case idle, connecting }

    unowned(unsafe) let checks: HealthChecks
    let target: ProbeTarget
    /// The server's address, or its `port=` under `health_check`; moved by `set server ... addr`.
    var address: SocketAddress
    /// `health_check port=`: kept when the server's address changes.
    let checkPort: UInt16?
    let interval: UInt64
    let timeout: UInt64
    var health: HealthState
    /// False after `disable health`: no probes are sent and the verdict stays as it was
    /// (HAProxy's `disable health`), until `enable health` or a reload.
    var enabled = true
    var timer = TimerSlot()
    private var phase: Phase = .idle
    private var socket = Socket(FileDescriptor(-1))
    private var startedAt: UInt64 = 0

    init(checks: HealthChecks, target: ProbeTarget, address: SocketAddress, config: HealthCheckConfig) {
        self.checks = checks
        self.target = target
        self.address = address
        checkPort = config.port
        interval = config.interval.nanoseconds
        timeout = config.timeout.nanoseconds
        health = HealthState(rise: config.passes, fall: config.fails)
        // After a reload the server's verdict is carried over: resume down rather than up.
        if !target.upstream.scheduler.peers[target.index].probeUp { health.resumeDown() }
    }

    /// Schedules the first probe. Precondition: on the loop's thread, not yet started.
    func start(at deadline: UInt64) {
        checks.loop.timers.schedule(self, at: deadline)
    }

    func timerFired(now: UInt64) {
        switch phase {
        case .idle where !enabled: checks.loop.timers.schedule(self, at: now &+ interval)  // keeps the phase
        case .idle: begin(now: now)
        case .connecting: finish(.failed(.timedOut))
        }
    }

    func handleEvent(_ events: EpollEvents, side: UInt8) {
        guard phase == .connecting else { return }
        if let e = socket.pendingError() {
            finish(.failed(e))
        } else if events.contains(.writable) {
            finish(.passed)
        } else if !events.isDisjoint(with: [.error, .hangup]) {
            finish(.failed(.connectionRefused))
        }
    }

    private func begin(now: UInt64) {
        startedAt = now
        do {
            socket = try Socket.stream(family: address.family)
            if case .done = try socket.connect(to: address) { return finish(.passed) }
            try checks.loop.register(socket.fd, interest: [.writable], handler: self)
            phase = .connecting
            checks.loop.timers.schedule(self, at: now &+ timeout)
        } catch {
            let local = error == .tooManyOpenFiles || error == .tooManyOpenFilesInSystem
            finish(local ? .skipped(error) : .failed(error))
        }
    }

    /// Closes the probe's socket, reports, and books the next probe.
    private func finish(_ result: ProbeResult) {
        stop()
        checks.probeFinished(self, result)
        let now = checks.loop.now
        let next = startedAt &+ interval
        checks.loop.timers.schedule(self, at: next > now ? next : now)
    }

    /// Closes the probe's socket and cancels its timer without reporting: at shutdown, and
    /// before `finish` reports.
    func stop() {
        checks.loop.timers.cancel(self)
        if socket.fd.rawValue >= 0 {
            if phase == .connecting { checks.loop.deregister(socket.fd) }
            socket.closeWithReset()
            socket = Socket(FileDescriptor(-1))
        }
        phase = .idle
    }
}
