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
    public internal(set) var config: Config
    /// Where the configuration was read from; SIGHUP reads it again (nil: reload unavailable).
    public let configPath: String?
    public internal(set) var upstreams: [String: Upstream] = [:]
    /// The same upstreams in configuration order (for listings and ids).
    public internal(set) var upstreamList: [Upstream] = []
    public internal(set) var listeners: [Listener] = []
    public internal(set) var adminServer: AdminServer? = nil
    /// Wall-clock start, for `show info`.
    public let startedAtMillis = WallClock.nowMilliseconds()
    public internal(set) var reloads: UInt64 = 0
    /// The `access_log` files (see Logging/ConnectionLog.swift).
    public let connectionLog: ConnectionLog
    /// `metrics_listen`, when configured.
    public private(set) var metrics: MetricsServer? = nil
    public let descriptorLimit: Int
    public let capacity: Int
    /// The session limit the configuration sets (show info's Hard_maxconn): `capacity`, or
    /// fewer when `worker_connections` says so (see Runtime.configuredMaxconn).
    public internal(set) var configuredMaxconn: Int
    /// `set maxconn global`'s lower limit, nil when none (see Runtime.maxconn).
    var adminMaxconn: Int? = nil
    public private(set) var sessionCount = 0
    public private(set) var acceptedTotal: UInt64 = 0
    public private(set) var deniedTotal: UInt64 = 0
    /// Refused by limit_conn or limit_conn_rate.
    public private(set) var limitedTotal: UInt64 = 0
    /// Closed for a malformed, oversized or late PROXY protocol header.
    public private(set) var badHeaderTotal: UInt64 = 0
    /// Connections accepted and sessions admitted per second, over all listeners: show info's
    /// ConnRate/MaxConnRate and SessRate/MaxSessRate.
    var connectionRate = EventRate()
    var sessionRate = EventRate()
    /// Clients of `listen ... proxy_protocol` sockets still sending their header. They hold a
    /// descriptor each, so they count against capacity like sessions.
    public private(set) var readingHeaders = 0
    /// limit_conn zones by name, shared by the server blocks that name them.
    public internal(set) var zones: [String: ConnectionZone] = [:]
    /// How long SIGTERM waits for sessions before ending them.
    public var shutdownTimeout: UInt64

    var sessions: Session? = nil
    private var signalHandler: SignalHandler? = nil
    /// TCP probes and agent checks (Health/); nil until init has built the upstreams.
    var health: HealthChecks? = nil
    var gate: AcceptGate = .open
    /// Sessions that fit when descriptors last ran out below `capacity` (held by something the
    /// computation does not see: listen sockets a reload added, a lowered limit, or ENFILE).
    /// The gate uses it as the capacity until the retry timer finds descriptors free again, so
    /// a session ending lets exactly one waiting client in instead of dropping the ones after it.
    var descriptorCeiling: Int? = nil
    var retryTimer: OneShotTimer? = nil
    var memoryRetryTimer: OneShotTimer? = nil
    /// The saturation episode under way (Runtime+AcceptGate). It outlives the gate's brief
    /// reopenings while clients keep waiting.
    var saturation: SaturationEpisode? = nil
    var settleTimer: OneShotTimer? = nil
    private var stopTimer: OneShotTimer? = nil
    var stopping = false
    /// `shutdown sessions server ... rate N/s` in progress.
    var pacedShutdowns: [PacedShutdown] = []
    private var exitStatus: Int32 = 0

    /// Descriptors kept for ferry itself: stdio, epoll, signalfd, log files, a reload's reads.
    static let reservedDescriptors = 64

    /// Descriptors the configuration may hold besides sessions, at their bounds: every listen
    /// socket (a server block may have several), and the admin and metrics sockets with their
    /// most clients. Without them a busy admin or metrics client ran ferry out of descriptors
    /// below its capacity.
    static func controlDescriptors(_ config: Config) -> Int {
        let listens = config.listenSocketCount
        let admin = config.adminSocket == nil ? 0 : 1 + AdminServer.maxConnections
        let metrics = config.metricsListen == nil ? 0 : 1 + MetricsServer.maxConnections
        return listens + admin + metrics
    }

    public init(config: Config, log: EventLog, configPath: String? = nil, policy: RelayPolicy = RelayPolicy()) throws(StartupError) {
        self.config = config
        self.configPath = configPath
        self.log = log
        try Runtime.checkSupported(config, log: log)
        shutdownTimeout = config.shutdownTimeout.nanoseconds
        let limits = ResourceLimits.raiseOpenFileLimit(to: config.workerRlimitNofile)
        descriptorLimit = limits.soft
        if let wanted = config.workerRlimitNofile, wanted > limits.hard {
            // Only root can raise the hard limit (nginx logs setrlimit's EPERM and goes on
            // likewise): said, so the capacity in the start line is not taken for the one asked.
            log.log(.warn, "rlimit_nofile_capped") {
                $0.add("wanted", wanted)
                $0.add("hard_limit", limits.hard)
                $0.add("effect", "worker_rlimit_nofile is above the hard limit; running with \(limits.soft) (raise the hard limit: ulimit -Hn, LimitNOFILE= in systemd)")
            }
        }
        // Pipes are two descriptors each and count against the same limit.
        let maxPipes = max(4, min(256, descriptorLimit / 32))
        let usable = descriptorLimit - Runtime.reservedDescriptors - 2 * maxPipes - Runtime.controlDescriptors(config)
            - HealthChecks.descriptorsNeeded(config)
        capacity = max(1, usable / 2)
        configuredMaxconn = Runtime.configuredMaxconn(config, capacity: capacity)
        let pipes = PipePool(maxPipes: maxPipes, maxIdle: 32)
        let buffers = BufferPool(bufferSize: 64 * 1024, maxIdle: 64)
        relay = RelayContext(scratchSize: 64 * 1024, buffers: buffers, pipes: pipes, policy: policy)
        do {
            loop = try EventLoop(descriptorLimit: descriptorLimit)
        } catch {
            throw StartupError("epoll_create1() failed (\(error.rawValue): \(error))")
        }
        loop.busyPollNanos = config.busyPollingNanos
        connectionLog = ConnectionLog(loop: loop, events: log)
        do throws(StartupError) {
            let plan = try Runtime.plan(config, now: loop.now, zones: &zones)
            upstreamList = plan.upstreams
            for u in plan.upstreams { upstreams[u.name] = u }
            for (listen, route) in plan.listens {
                listeners.append(try Listener(runtime: self, config: listen, route: route))
            }
            Runtime.assignIDs(upstreamList, listeners)
            if let admin = config.adminSocket {
                adminServer = try AdminServer(runtime: self, config: admin)
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
        } catch {
            // The process exits on this error: files it created (a Unix listen socket, the
            // admin socket) would outlive it and be taken for a running ferry's.
            releaseAfterFailedStart()
            throw error
        }
        health = HealthChecks(runtime: self)
    }

    /// Closes what a start that failed half way had opened, removing its socket files.
    private func releaseAfterFailedStart() {
        for l in listeners { l.close() }
        listeners.removeAll()
        adminServer?.close()
        adminServer = nil
        metrics?.close()
        metrics = nil
        connectionLog.close()
    }

    /// The upstreams (in configuration order, implicit `proxy_pass host:port` ones after) and
    /// the listen sockets with their routes that `config` asks for. Opens nothing.
    /// limit_conn zones are kept by name in `zones` (a reload keeps counting the live sessions
    /// of the zones that remain); zones the config no longer names are dropped from it.
    /// `previous`: the upstreams before a reload, by name, whose balancing state an unchanged
    /// upstream goes on from.
    static func plan(_ config: Config, now: UInt64, zones: inout [String: ConnectionZone],
                     previous: [String: Upstream] = [:]) throws(StartupError)
        -> (upstreams: [Upstream], listens: [(ListenConfig, Route)]) {
        var kept: [String: ConnectionZone] = [:]
        for z in config.limitConnZones { kept[z.name] = zones[z.name] ?? ConnectionZone(name: z.name, size: z.size) }
        zones = kept
        var list: [Upstream] = []
        var byName: [String: Upstream] = [:]
        let entropy = Entropy.seed()
        for u in config.upstreams {
            // A block named with a ":" is one no proxy_pass can name (nginx reads `host:port`
            // there as an address; the config warns). Left out, so it is not probed and does not
            // share its name on the admin socket with the address upstream that
            // `proxy_pass host:port;` makes.
            guard !u.name.contains(":") else { continue }
            // Each upstream draws its own sequence (name), and each start and reload a new one
            // (entropy): see Entropy.
            let upstream = Upstream(u, seed: HashMix.name(u.name) ^ entropy, now: now, continuing: previous[u.name])
            list.append(upstream)
            byName[u.name] = upstream
        }
        // proxy_pass addresses, each an upstream of one server shared by the listeners that
        // name it. Kept apart from the blocks: `upstream 127.0.0.1:80 { }` is not what
        // `proxy_pass 127.0.0.1:80;` names (nginx matches blocks by host, and they have no port).
        var implicit: [String: Upstream] = [:]
        var listens: [(ListenConfig, Route)] = []
        for l in config.listeners {
            let upstream: Upstream
            switch l.proxyPass {
            case .upstream(let name):
                guard let u = byName[name] else { throw StartupError("no upstream \"\(name)\"", l.location) }
                upstream = u
            case .addresses(let written, let all):
                if let u = implicit[written] {
                    upstream = u
                } else {
                    upstream = Upstream(implicit: written, all, location: l.location)
                    list.append(upstream)
                    implicit[written] = upstream
                }
            }
            var limits: ClientLimits? = nil
            if !l.limitConn.isEmpty || l.connectionRate != nil {
                // The builder has checked that every zone named exists.
                limits = ClientLimits(zones: l.limitConn.compactMap { c in kept[c.zone].map { ($0, c.count) } },
                                      rate: l.connectionRate.map { ConnectionRate($0) })
            }
            let route = Route(l, upstream: upstream, limits: limits)
            for listen in l.listens { listens.append((listen, route)) }
        }
        return (list, listens)
    }

    /// HAProxy numbers proxies in one space: backends (upstreams) first here, then frontends.
    static func assignIDs(_ upstreams: [Upstream], _ listeners: [Listener]) {
        for (i, u) in upstreams.enumerated() { u.id = i + 1 }
        for (i, l) in listeners.enumerated() { l.id = upstreams.count + i + 1 }
    }

    /// Directives this version parses but does not act on yet. Those that would change what
    /// goes over the wire or who may connect would stop the start (running without them would
    /// be a silent hole; there are none at present); the others are announced once so nobody
    /// believes they are in force.
    static func checkSupported(_ config: Config, log: EventLog) throws(StartupError) {
        func notYet(_ what: String, _ consequence: String) {
            log.log(.warn, "not_yet_supported") { $0.add("directive", what); $0.add("effect", consequence) }
        }
        if case .count(let n) = config.workerProcesses, n == 1 {} else {
            notYet("worker_processes", "ferry runs one event loop (one core) per process")
        }
    }

    /// Runs until shutdown; returns the exit status.
    public func run() -> Int32 {
        warnIfWorkerConnectionsCapped(config)
        log.log(.notice, "start") {
            $0.add("listeners", listeners.map(\.config.address.written).joined(separator: ","))
            $0.add("nofile", descriptorLimit)
            $0.add("capacity", capacity)
            if maxconn < capacity { $0.add("maxconn", maxconn) }
            $0.add("relay", relay.policy.mode.rawValue)
        }
        writePidFile()
        health?.start()
        loop.run()
        health?.stop()
        for l in listeners { l.close() }
        adminServer?.close()
        removePidFile()
        metrics?.close()
        connectionLog.close()
        relay.pipes.closeAll()
        log.log(.notice, "exit") { $0.add("status", Int(exitStatus)) }
        return exitStatus
    }

    // MARK: sessions

    func startSession(client: Socket, peer: SocketAddress, listener: Listener) {
        acceptedTotal &+= 1
        listener.stats.recordAccept(now: loop.now)
        connectionRate.record(now: loop.now)
        // Accepted in the batch that saw the stop begin.
        if stopping { return clientRefused(client, peer: peer, listener: listener, reason: .ferryStopping) }
        if listener.config.proxyProtocol {
            // Who the client is is known only after its header: every check waits for it.
            readingHeaders += 1
            listener.readingHeaders += 1
            listener.checkLimit()
            closeGateIfFull()
            return ProxyHeaderReader(runtime: self, listener: listener, client: client, peer: peer).start()
        }
        admit(client: client, peer: peer, listener: listener, origin: nil, preread: nil)
    }

    /// Makes a session of an accepted client (or of one whose PROXY header named `peer`)
    /// unless allow/deny or a per-client limit turns it away, in that order: a denied client
    /// uses up no rate and no limit_conn count.
    func admit(client: Socket, peer: SocketAddress, listener: Listener, origin: ClientOrigin?, preread: Preread?) {
        let route = listener.route
        var refusal: SessionEnd? = nil
        // Not refused for a stop: a client whose PROXY header completes during a graceful stop
        // was accepted before it, and, as in nginx, a stop lets accepted clients finish.
        if !route.access.isEmpty && !route.access.allows(peer) {
            refusal = .denied
        } else if let limits = route.limits, let why = limits.admit(peer.clientKey, now: loop.now) {
            refusal = .limited
            limitApplied(why, peer: peer, listener: listener)
        }
        if let reason = refusal {
            if let p = preread { relay.buffers.giveBack(p.buffer) }
            return clientRefused(client, peer: peer, listener: listener, reason: reason, origin: origin)
        }
        let s = Session(runtime: self, route: route, client: client, clientKey: peer.clientKey, clientPort: peer.port, now: loop.now)
        s.origin = origin
        if route.uploadRate > 0 || route.downloadRate > 0 {
            s.rateLimit = SessionRateLimit(session: s, uploadRate: route.uploadRate, downloadRate: route.downloadRate)
        }
        if let p = preread { s.up.hold(p.buffer, offset: p.offset, length: p.length) }
        prepareLogging(s, client: client, listener: listener)
        s.next = sessions
        sessions?.previous = s
        sessions = s
        sessionCount += 1
        listener.stats.recordSession(now: loop.now)
        listener.checkLimit()
        sessionRate.record(now: loop.now)
        closeGateIfFull()
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
    /// and the counters see the same events. `origin`: the PROXY header of a client refused
    /// after it, for the log line.
    func clientRefused(_ client: Socket, peer: SocketAddress, listener: Listener, reason: SessionEnd, origin: ClientOrigin? = nil) {
        listener.stats.refused &+= 1
        logRefused(client, peer: peer, listener: listener, reason: reason, origin: origin)
        switch reason {
        case .denied:
            deniedTotal &+= 1
            listener.stats.denied &+= 1
        case .limited:
            limitedTotal &+= 1
            listener.stats.limited &+= 1
        case .badHeader:
            badHeaderTotal &+= 1
            listener.stats.badHeader &+= 1
        default:
            break
        }
        client.close()
        // A client turned away after its PROXY header gave its place back (headerPhaseEnded).
        listener.checkLimit()
        reopenGateIfRoom()
        // The last client of a graceful stop may be one whose PROXY header failed.
        stopIfDone()
    }

    /// A client's header phase is over. One that moves on to `admit` hands its place over
    /// without the gate or its listener reopening in between (at a limit they would close
    /// again at once, an epoll_ctl each way per listener): admit settles them, or
    /// clientRefused when the client is turned away.
    func headerPhaseEnded(_ listener: Listener, movingOn: Bool) {
        readingHeaders -= 1
        listener.readingHeaders -= 1
        guard !movingOn else { return }
        listener.checkLimit()
        reopenGateIfRoom()
    }

    /// Counts what kind of limit refused a client; a full limit_conn zone is logged once per episode.
    private func limitApplied(_ why: ClientLimits.Refusal, peer: SocketAddress, listener: Listener) {
        switch why {
        case .rate:
            listener.stats.rateLimited &+= 1
        case .overLimit:
            break
        case .zoneFull(let name):
            listener.stats.zoneFull &+= 1
            if let z = zones[name], !z.markReportedFull() {
                log.log(.warn, "limit_conn_zone_full") {
                    $0.add("zone", name)
                    $0.add("addresses", z.capacity)
                    $0.add("client", peer.host)
                }
            }
        }
    }

    /// The live sessions on one server of one upstream, for the admin socket and health.
    /// O(sessions): a cold-path walk of the intrusive list.
    func sessions(on upstream: Upstream, peer: Int) -> [Session] {
        var found: [Session] = []
        var s = sessions
        while let current = s {
            if current.peer == peer && current.upstream === upstream { found.append(current) }
            s = current.next
        }
        return found
    }

    /// `peer` of `upstream` has just become unhealthy, whoever said so (probe, agent, or the
    /// admin socket's `health|agent down`, as in HAProxy): closes its sessions if the upstream
    /// says `on_marked_down shutdown_sessions`. Precondition: on the loop's thread.
    func markedDown(_ upstream: Upstream, peer: Int) {
        guard upstream.config.shutdownSessionsOnDown else { return }
        let victims = sessions(on: upstream, peer: peer)
        for s in victims { s.end(.serverDown) }
        log.log(.notice, "sessions_shut_down") {
            $0.add("upstream", upstream.name); $0.add("server", upstream.serverNames[peer])
            $0.add("sessions", victims.count)
        }
    }

    /// Starts closing the sessions now on `peer` of `upstream`, `perSecond` at a time
    /// (0 = all at once). Replaces a paced shutdown already running on that server.
    /// Returns how many sessions will be closed.
    func shutdownSessions(upstream: Upstream, peer: Int, perSecond: Int) -> Int {
        let victims = sessions(on: upstream, peer: peer)
        if let i = pacedShutdowns.firstIndex(where: { $0.upstream === upstream && $0.peer == peer }) {
            pacedShutdowns[i].cancel()
            pacedShutdowns.remove(at: i)
        }
        guard perSecond > 0 else {
            for s in victims { s.end(.adminShutdown) }
            return victims.count
        }
        guard !victims.isEmpty else { return 0 }
        let p = PacedShutdown(runtime: self, upstream: upstream, peer: peer, sessions: victims, perSecond: perSecond)
        pacedShutdowns.append(p)
        p.start()
        return victims.count
    }

    func pacedShutdownFinished(_ p: PacedShutdown) {
        pacedShutdowns.removeAll { $0 === p }
        log.log(.notice, "paced_shutdown_done") { $0.add("upstream", p.upstream.name); $0.add("server", p.upstream.serverNames[p.peer]); $0.add("closed", p.closed) }
    }

    /// Called by a session as its last act. Unlinks it and lets accepting resume if it was held back.
    func sessionEnded(_ s: Session, reason: SessionEnd) {
        logSession(s, reason: reason)
        if let p = s.previous { p.next = s.next } else { sessions = s.next }
        s.next?.previous = s.previous
        s.next = nil
        s.previous = nil
        sessionCount -= 1
        s.listener?.stats.sessionEnded()
        s.listener?.checkLimit()
        reopenGateIfRoom()
        stopIfDone()
    }

    /// A graceful stop ends when no session is left and no accepted client is still sending
    /// its PROXY header.
    func stopIfDone() {
        if stopping && sessionCount == 0 && readingHeaders == 0 { loop.stop() }
    }

    /// `proxy_bind` could not be applied to a session's server socket (Session.bindLocal).
    /// A server of the other family is logged once (see Upstream.otherFamilyLogged); each
    /// session still records the skipped attempt (`local_error`) in its connection log line.
    func localBindFailed(_ s: Session, address: SocketAddress, cause: Errno) {
        let otherFamily = s.route.bind.map { $0.family != address.family } ?? false
        if otherFamily {
            guard s.upstream.otherFamilyLogged.insert(s.peer).inserted else { return }
        }
        log.log(.error, "proxy_bind_failed") {
            $0.add("bind", s.route.bindText)
            $0.add("upstream", s.upstream.name)
            $0.add("server", s.upstream.serverNames[s.peer])
            $0.add("address", address.description)
            if otherFamily {
                $0.add("error", "the server's address family differs from proxy_bind's; trying the next server")
                $0.add("effect", "logged once for this server: every session that picks it skips it (local_error in its connection log); delete it, or give it an address of proxy_bind's family")
            } else {
                $0.add("error", "bind() failed (\(cause.rawValue): \(cause))")
            }
        }
    }

    /// A client found no server that could take it: the first of an episode is logged (at
    /// nginx's level for its "no live upstreams"), the rest counted until a server takes one.
    func noLiveServers(_ upstream: Upstream) {
        if let e = upstream.noLiveServers {
            upstream.noLiveServers = (e.since, e.clients &+ 1)
            return
        }
        upstream.noLiveServers = (loop.now, 1)
        log.log(.error, "no_live_upstreams") {
            $0.add("upstream", upstream.name)
            $0.add("effect", "no server can take a new client (each is down, failed, full or drained); clients are closed (502, no_server) until one can, counted in no_live_upstreams_over")
        }
    }

    /// A server took a client again after `noLiveServers`.
    func liveServersBack(_ upstream: Upstream) {
        guard let e = upstream.noLiveServers else { return }
        upstream.noLiveServers = nil
        log.log(.notice, "no_live_upstreams_over") {
            $0.add("upstream", upstream.name)
            $0.add("clients_turned_away", e.clients)
            $0.add("lasted_ms", Int((loop.now &- e.since) / 1_000_000))
        }
    }

    func connectFailed(upstream: Upstream, peer: Int, cause: Errno) {
        log.log(.warn, "connect_failed") {
            $0.add("upstream", upstream.name)
            $0.add("server", upstream.serverNames[peer])
            $0.add("address", upstream.addresses[peer].description)
            $0.add("error", cause.description)
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
            _ = reload()
        default:
            return
        }
    }

    /// Stops accepting and lets sessions finish until `shutdownTimeout`.
    public func beginGracefulStop(_ signal: Int32) {
        stopping = true
        for l in listeners { l.close() }
        listeners.removeAll()
        for p in pacedShutdowns { p.cancel() }
        pacedShutdowns.removeAll()
        log.log(.notice, "stopping") {
            $0.add("signal", Int(signal))
            $0.add("sessions", sessionCount)
            $0.add("timeout_ms", Int(shutdownTimeout / 1_000_000))
        }
        if sessionCount == 0 && readingHeaders == 0 { loop.stop(); return }
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
