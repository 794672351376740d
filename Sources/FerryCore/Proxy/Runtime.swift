import Glibc

/// Signals arrive on a descriptor and are handled on the loop like any other event.
final class SignalHandler: EventHandler {
    unowned(unsafe) let runtime: Runtime
    let signals: SignalDescriptor
    init(runtime: Runtime, signals: SignalDescriptor) { self.runtime = runtime; self.signals = signals }
    func handleEvent(_ events: EpollEvents, side: UInt8) {
        while let s = signals.next() { runtime.signalReceived(s) }
    }
}

/// Everything one event loop runs: listeners, upstreams, sessions, pools, signals.
///
/// Capacity: ferry raises its soft descriptor limit to the hard limit at start and derives how
/// many sessions fit (two sockets each, after descriptors kept for itself and the pipe pool).
/// At capacity, or when accept4 reports EMFILE/ENFILE, listeners stop accepting (clients wait
/// in the backlog) until a session ends; established sessions are never dropped to make room.
public final class Runtime {
    public let loop: EventLoop
    public let relay: RelayContext
    public let log: EventLog
    /// The `access_log` files (see Logging/ConnectionLog.swift).
    public let connectionLog: ConnectionLog
    /// `metrics_listen`, when configured.
    public private(set) var metrics: MetricsServer? = nil
    public let config: Config
    public private(set) var upstreams: [String: Upstream] = [:]
    public private(set) var listeners: [Listener] = []
    public let descriptorLimit: Int
    public let capacity: Int
    public private(set) var sessionCount = 0
    public private(set) var acceptedTotal: UInt64 = 0
    public private(set) var deniedTotal: UInt64 = 0
    /// How long SIGTERM waits for sessions before ending them.
    public var shutdownTimeout: UInt64

    private(set) var sessions: Session? = nil
    private var signalHandler: SignalHandler? = nil
    private enum AcceptGate: Equatable { case open, atCapacity, outOfDescriptors }
    private var gate: AcceptGate = .open
    private var retryTimer: OneShotTimer? = nil
    private var stopTimer: OneShotTimer? = nil
    private var stopping = false
    private var exitStatus: Int32 = 0

    /// Descriptors kept for ferry itself: stdio, epoll, signalfd, logs, admin socket, probes.
    static let reservedDescriptors = 64

    public init(config: Config, log: EventLog, policy: RelayPolicy = RelayPolicy()) throws(StartupError) {
        self.config = config
        self.log = log
        try Runtime.checkSupported(config, log: log)
        shutdownTimeout = config.shutdownTimeout.nanoseconds
        let limits = ResourceLimits.raiseOpenFileLimit(to: config.workerRlimitNofile)
        descriptorLimit = limits.soft
        // Pipes are two descriptors each and count against the same limit.
        let maxPipes = max(4, min(256, descriptorLimit / 32))
        let usable = descriptorLimit - Runtime.reservedDescriptors - 2 * maxPipes - config.listeners.count
        capacity = max(1, usable / 2)
        let pipes = PipePool(maxPipes: maxPipes, maxIdle: 32)
        let buffers = BufferPool(bufferSize: 64 * 1024, maxIdle: 64)
        relay = RelayContext(scratchSize: 64 * 1024, buffers: buffers, pipes: pipes, policy: policy)
        do {
            loop = try EventLoop(descriptorLimit: descriptorLimit)
        } catch {
            throw StartupError("epoll_create1() failed (\(error.rawValue): \(error))")
        }
        connectionLog = ConnectionLog(loop: loop, events: log)
        var seed: UInt64 = 0x9E37_79B9_7F4A_7C15
        for u in config.upstreams {
            seed &+= 1
            upstreams[u.name] = Upstream(u, seed: seed)
        }
        for l in config.listeners {
            let upstream: Upstream
            switch l.proxyPass {
            case .upstream(let name):
                guard let u = upstreams[name] else { throw StartupError("no upstream \"\(name)\"", l.location) }
                upstream = u
            case .address(let a):
                upstream = Upstream(single: a, location: l.location)
                upstreams[a.written] = upstream
            }
            let route = Route(l, upstream: upstream)
            for listen in l.listens {
                let listener = try Listener(runtime: self, config: listen, route: route)
                listeners.append(listener)
            }
        }
        try setUpConnectionLog()
        if let m = config.metricsListen {
            metrics = try MetricsServer(runtime: self, config: m)
        }
        do {
            let sig = try SignalDescriptor.make([SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGPIPE, SIGUSR1])
            let handler = SignalHandler(runtime: self, signals: sig)
            try loop.register(sig.fd, interest: [.readable], handler: handler)
            signalHandler = handler
            for l in listeners { try l.start() }
            try metrics?.start()
        } catch {
            throw StartupError("event loop setup failed (\(error.rawValue): \(error))")
        }
    }

    /// Directives this version parses but does not act on yet. Those that would change what
    /// goes over the wire or who may connect stop the start (running without them would be a
    /// silent hole); the others are announced once so nobody believes they are in force.
    static func checkSupported(_ config: Config, log: EventLog) throws(StartupError) {
        for l in config.listeners {
            if !l.limitConn.isEmpty {
                throw StartupError("\"limit_conn\" is not enforced by this version of ferry; remove it to run without a per-client limit", l.location)
            }
            if l.sendProxyProtocol {
                throw StartupError("\"proxy_protocol on\" is not supported by this version of ferry; backends would not get the header they expect", l.location)
            }
            for listen in l.listens where listen.proxyProtocol {
                throw StartupError("\"listen ... proxy_protocol\" is not supported by this version of ferry; clients' headers would be relayed as data", listen.location)
            }
        }
        func notYet(_ what: String, _ consequence: String) {
            log.log(.warn, "not_yet_supported") { $0.add("directive", what); $0.add("effect", consequence) }
        }
        for u in config.upstreams {
            if u.healthCheck != nil { notYet("health_check", "upstream \(u.name): no active probes; servers are judged by max_fails/fail_timeout only") }
            if u.agentCheck != nil || u.servers.contains(where: { $0.agentPort != nil }) { notYet("agent_check", "upstream \(u.name): agent replies are not read") }
        }
        if config.adminSocket != nil { notYet("admin_socket", "no admin socket is opened") }
        if case .count(let n) = config.workerProcesses, n == 1 {} else {
            notYet("worker_processes", "ferry runs one event loop (one core) per process")
        }
    }

    /// Runs until shutdown; returns the exit status.
    public func run() -> Int32 {
        log.log(.notice, "start") {
            $0.add("listeners", listeners.map(\.config.address.written).joined(separator: ","))
            $0.add("nofile", descriptorLimit)
            $0.add("capacity", capacity)
            $0.add("relay", relay.policy.mode.rawValue)
        }
        loop.run()
        for l in listeners { l.close() }
        metrics?.close()
        connectionLog.close()
        relay.pipes.closeAll()
        log.log(.notice, "exit") { $0.add("status", Int(exitStatus)) }
        return exitStatus
    }

    // MARK: sessions

    var hasRoom: Bool { gate == .open }

    func startSession(client: Socket, peer: SocketAddress, listener: Listener) {
        let route = listener.route
        acceptedTotal &+= 1
        listener.stats.accepted &+= 1
        if !route.access.isEmpty && !route.access.allows(peer) {
            return clientRefused(client, peer: peer, listener: listener, reason: .denied)
        }
        let s = Session(runtime: self, route: route, client: client, clientKey: peer.clientKey, clientPort: peer.port, now: loop.now)
        prepareLogging(s, client: client, listener: listener)
        s.next = sessions
        sessions?.previous = s
        sessions = s
        sessionCount += 1
        if sessionCount >= capacity { closeGate(.atCapacity) }
        do {
            try loop.register(client.fd, interest: Session.interest, handler: s, side: Session.clientSide)
        } catch {
            s.end(.internalError)
            return
        }
        s.connectNext()
    }

    /// Closes a client turned away before it became a session (denied, limited, bad header),
    /// counting it against its listener. Every refusal goes through here so the connection log
    /// and the counters see the same events.
    func clientRefused(_ client: Socket, peer: SocketAddress, listener: Listener, reason: SessionEnd) {
        listener.stats.refused &+= 1
        logRefused(client, peer: peer, listener: listener, reason: reason)
        switch reason {
        case .denied:
            deniedTotal &+= 1
            listener.stats.denied &+= 1
        case .limited:
            listener.stats.limited &+= 1
        default:
            break
        }
        client.close()
    }

    /// The live sessions on one server of one upstream, for the admin socket and health.
    /// O(sessions): a cold-path walk of the intrusive list.
    func sessions(on upstream: Upstream, peer: Int) -> [Session] {
        var found: [Session] = []
        var s = sessions
        while let current = s {
            if current.peer == peer && current.route.upstream === upstream { found.append(current) }
            s = current.next
        }
        return found
    }

    /// Called by a session as its last act. Unlinks it and lets accepting resume if it was held back.
    func sessionEnded(_ s: Session, reason: SessionEnd) {
        logSession(s, reason: reason)
        if let p = s.previous { p.next = s.next } else { sessions = s.next }
        s.next?.previous = s.previous
        s.next = nil
        s.previous = nil
        sessionCount -= 1
        if gate != .open && sessionCount < capacity { openGate() }
        if stopping && sessionCount == 0 { loop.stop() }
    }

    func connectFailed(upstream: Upstream, peer: Int, cause: Errno) {
        log.log(.warn, "connect_failed") {
            $0.add("upstream", upstream.name)
            $0.add("server", upstream.serverNames[peer])
            $0.add("address", upstream.addresses[peer].description)
            $0.add("error", cause.description)
        }
    }

    // MARK: accept gate

    func acceptFailed(_ error: Errno) {
        switch error {
        case .tooManyOpenFiles, .tooManyOpenFilesInSystem:
            closeGate(.outOfDescriptors)
            // Descriptors may be held by something other than sessions: also retry on a timer.
            let t = retryTimer ?? OneShotTimer { [unowned self] _ in if gate == .outOfDescriptors { openGate() } }
            retryTimer = t
            loop.timers.schedule(t, at: loop.now &+ 1_000_000_000)
        default:
            // ECONNABORTED and friends concern one client that already left.
            log.log(.info, "accept_failed") { $0.add("error", error.description) }
        }
    }

    private func closeGate(_ why: AcceptGate) {
        guard gate == .open else { return }
        gate = why
        for l in listeners { l.setAccepting(false) }
        // One line per episode, not per refused accept.
        log.log(.warn, why == .atCapacity ? "capacity_reached" : "descriptors_exhausted") {
            $0.add("sessions", sessionCount)
            $0.add("capacity", capacity)
            $0.add("nofile", descriptorLimit)
        }
    }

    private func openGate() {
        guard !stopping else { return }
        let was = gate
        gate = .open
        for l in listeners { l.setAccepting(true) }
        log.log(.notice, "accepting_resumed") {
            $0.add("after", was == .atCapacity ? "capacity_reached" : "descriptors_exhausted")
            $0.add("sessions", sessionCount)
        }
    }

    // MARK: signals and shutdown

    func signalReceived(_ signal: Int32) {
        switch signal {
        case SIGTERM, SIGINT:
            if stopping { return stopNow(signal) }
            beginGracefulStop(signal)
        case SIGQUIT:
            stopNow(signal)
        case SIGUSR1:
            // logrotate has moved the files away: write on into new ones at the same paths.
            log.reopen()
            connectionLog.reopen()
        case SIGHUP:
            log.log(.warn, "reload_unsupported") { $0.add("signal", "SIGHUP"); $0.add("detail", "this version does not reload; restart ferry to apply a new configuration") }
        default:
            return
        }
    }

    /// Stops accepting and lets sessions finish until `shutdownTimeout`.
    public func beginGracefulStop(_ signal: Int32) {
        stopping = true
        for l in listeners { l.close() }
        listeners.removeAll()
        log.log(.notice, "stopping") {
            $0.add("signal", Int(signal))
            $0.add("sessions", sessionCount)
            $0.add("timeout_ms", Int(shutdownTimeout / 1_000_000))
        }
        if sessionCount == 0 { loop.stop(); return }
        let t = OneShotTimer { [unowned self] _ in stopNow(SIGTERM) }
        stopTimer = t
        loop.timers.schedule(t, at: loop.now &+ shutdownTimeout)
    }

    /// Ends every session now and leaves the loop.
    func stopNow(_ signal: Int32) {
        stopping = true
        for l in listeners { l.close() }
        listeners.removeAll()
        while let s = sessions { s.end(.ferryStopping) }
        loop.stop()
    }
}
