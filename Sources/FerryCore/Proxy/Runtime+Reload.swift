import Glibc

/// Reload in the same process (SIGHUP, `ferry -s reload`, admin `reload`).
///
/// The new configuration is read and checked completely before anything changes; an invalid
/// one is logged with its location and the old one keeps running. A valid one is applied:
/// listen sockets for addresses that remain are kept (no accept is lost), new ones open,
/// removed ones close while their sessions continue; upstreams are rebuilt and new sessions
/// use them; live sessions move to the same server in the new upstream (matched by upstream
/// name, then server name, then address as written), so per-server session counts survive.
/// Sessions still connecting move too, so a server counts a connect under way whatever happens
/// around it. A session whose server is gone stays on the retired upstream object until it ends,
/// or until a later reload or `add server` brings that server back; if it was still connecting
/// and that connect fails, it retries among the current servers.
///
/// Runtime changes made over the admin socket to servers that remain are kept (admin state,
/// agent state, probe state, passive failures, counters); a runtime weight or maxconn is kept
/// unless the new configuration changes that server's weight or max_conns. Health probes and
/// agents restart on the new servers; a server the probe had marked down stays down until it
/// passes `passes` probes again. A verdict whose check the new file removes is dropped.
/// Servers added with `add server` and absent from the file are gone after a reload, as in
/// HAProxy.
extension Runtime {
    public enum ReloadOutcome: Equatable {
        case reloaded(listenersOpened: Int, listenersClosed: Int, sessionsMoved: Int)
        case failed(String)
    }

    @discardableResult
    public func reload() -> ReloadOutcome {
        let outcome = applyReload()
        switch outcome {
        case .reloaded(let opened, let closed, let moved):
            reloads &+= 1
            log.log(.notice, "reload") {
                $0.add("file", configPath ?? "")
                $0.add("listeners_opened", opened)
                $0.add("listeners_closed", closed)
                $0.add("sessions_moved", moved)
                $0.add("sessions", sessionCount)
            }
        case .failed(let why):
            log.log(.error, "reload_failed") { $0.add("file", configPath ?? ""); $0.add("error", why); $0.add("effect", "the previous configuration keeps running") }
        }
        return outcome
    }

    private func applyReload() -> ReloadOutcome {
        guard !stopping else { return .failed("ferry is stopping") }
        guard let path = configPath else { return .failed("ferry was started without a configuration file") }
        let loaded: LoadedConfig
        do {
            loaded = try ConfigLoader.load(path: path)
        } catch {
            return .failed("\(error)")
        }
        let new = loaded.config
        let plan: (upstreams: [Upstream], listens: [(ListenConfig, Route)])
        // Zones are committed only once the reload cannot fail: plan into a copy.
        var newZones = zones
        do {
            try Runtime.checkSupported(new, log: log)
            plan = try Runtime.plan(new, now: loop.now, zones: &newZones, previous: upstreams)
        } catch {
            return .failed(error.description)
        }
        for d in loaded.diagnostics {
            log.log(d.level == .notice ? .notice : .warn, "config_note") { $0.add("message", "\(d)") }
        }
        if new.workerRlimitNofile != config.workerRlimitNofile {
            log.log(.warn, "reload_needs_restart") { $0.add("directive", "worker_rlimit_nofile"); $0.add("effect", "the descriptor limit and capacity stay as they were") }
        }

        // Open every new listen socket first: if one fails, nothing has changed yet.
        var kept: [String: Listener] = [:]
        for l in listeners { kept[Runtime.listenKey(l.config)] = l }
        var opened: [Listener] = []
        var assignments: [(Listener, Route)] = []
        var keptConfigs: [(Listener, ListenConfig)] = []
        var listenConfigs: [(Listener, ListenConfig)] = []
        for (listen, route) in plan.listens {
            if let l = kept.removeValue(forKey: Runtime.listenKey(listen)) {
                let unchanged = Runtime.optionsNeedingRestart(old: l.config, oldRoute: l.route, new: listen, newRoute: route)
                if !unchanged.isEmpty {
                    log.log(.warn, "reload_needs_restart") {
                        $0.add("listen", listen.address.written)
                        $0.add("options", unchanged.joined(separator: ","))
                        $0.add("effect", "these options of a kept listen socket stay as they were until a restart")
                    }
                }
                assignments.append((l, route))
                keptConfigs.append((l, listen))
                listenConfigs.append((l, listen))
                continue
            }
            let l: Listener
            do {
                l = try Listener(runtime: self, config: listen, route: route)
            } catch {
                for l in opened { l.close() }
                return .failed(error.description)
            }
            opened.append(l)
            do { try l.start() } catch {
                for l in opened { l.close() }
                return .failed("listen on \(listen.address.written): event loop registration failed (\(error.rawValue): \(error)) in \(listen.location)")
            }
            assignments.append((l, route))
            listenConfigs.append((l, listen))
        }
        // The admin socket, the pid file and the access logs of the new file are opened
        // before anything is committed: one that cannot be opened fails the reload (as nginx
        // fails it on an access_log it cannot open), and the old ones keep working, instead
        // of a reload that leaves ferry without its admin socket, unreachable by `ferry -s`,
        // or writing no connection log.
        let logFilesBefore = connectionLog.files.count
        var newAdmin: AdminServer? = nil
        var newPidFile = false
        func undo(_ why: String) -> ReloadOutcome {
            for l in opened { l.close() }
            newAdmin?.close()
            if newPidFile, let p = new.pidFile { PidFile.remove(p) }
            connectionLog.closeFiles(openedAfter: logFilesBefore)
            return .failed(why)
        }
        let adminMoves = new.adminSocket != nil && new.adminSocket?.path != config.adminSocket?.path
        if adminMoves, let w = new.adminSocket {
            do { newAdmin = try AdminServer(runtime: self, config: w) } catch { return undo(error.description) }
        }
        if let p = new.pidFile, p != config.pidFile {
            do { try PidFile.write(p) } catch { return undo(error.description) }
            newPidFile = true
        }
        let logging: [ListenerLogging]
        do { logging = try connectionLogging(for: listenConfigs, config: new) } catch { return undo(error.description) }
        // error_log moves as nginx moves it on a reload; the new file is opened last, so
        // nothing above can fail after it and leave it open.
        let errorLogPath = new.errorLog.flatMap { $0.path == "stderr" ? nil : $0.path }
        var errorLogFile: FileDescriptor? = nil
        if errorLogPath != log.path, let p = errorLogPath {
            do { errorLogFile = try FileDescriptor.openForAppend(p) } catch {
                return undo("open() \"\(p)\" failed (\(error.rawValue): \(error)) for error_log; create its directory or change error_log")
            }
        }
        // From here on the reload cannot fail.
        zones = newZones
        let retired = upstreams
        var byName: [String: Upstream] = [:]
        for u in plan.upstreams { byName[u.name] = u }
        var maps: [String: [Int?]] = [:]
        for u in plan.upstreams {
            guard let old = retired[u.name] else { continue }
            let map = Runtime.matchServers(old, u)
            Runtime.carryState(from: old, to: u, map: map)
            u.totals = old.totals
            // An outage a reload does not end goes on as one episode: one end line, one count.
            u.noLiveServers = old.noLiveServers
            maps[u.name] = map
        }
        for old in retired.values { old.retired = true }
        for p in pacedShutdowns {
            if let u = byName[p.upstream.name], let map = maps[u.name], p.upstream === retired[u.name], let j = map[p.peer] {
                p.upstream = u
                p.peer = j
            }
        }
        for (l, route) in assignments { l.route = route }
        for (l, listen) in keptConfigs { l.config = listen }
        let closing = Array(kept.values)
        for l in closing { l.close() }
        listeners = assignments.map(\.0)
        upstreamList = plan.upstreams
        upstreams = byName
        // Sessions move to the same server of the new upstream (and those a reload before
        // left behind, to a server this one brings back).
        let moved = rejoinReturningServers()
        Runtime.assignIDs(upstreamList, listeners)
        if gate != .open { for l in opened { l.setAccepting(false) } }
        for (l, logging) in zip(listeners, logging) { l.logging = logging }
        reloadAdminSocket(new.adminSocket, opened: newAdmin)
        if let p = config.pidFile, p != new.pidFile { PidFile.remove(p) }
        shutdownTimeout = new.shutdownTimeout.nanoseconds
        loop.busyPollNanos = new.busyPollingNanos
        log.minimumLevel = new.errorLog?.level ?? .notice
        if errorLogPath != log.path {
            let from = log.path ?? "stderr"
            log.log(.notice, "error_log_moved") { $0.add("from", from); $0.add("to", errorLogPath ?? "stderr") }
            log.move(to: errorLogFile, path: errorLogPath)
        }
        let oldConfig = config
        config = new
        // As a server's max_conns: a `set maxconn global` survives a reload unless the file's
        // worker_connections changed; the limit is a number, so it moves with the reload.
        if new.workerConnections != oldConfig.workerConnections { adminMaxconn = nil }
        configuredMaxconn = Runtime.configuredMaxconn(new, capacity: capacity)
        warnIfWorkerConnectionsCapped(new)
        limitChanged()
        retireLogFiles(closedListeners: closing)
        if new.metricsListen != oldConfig.metricsListen {
            log.log(.warn, "reload_needs_restart") { $0.add("directive", "metrics_listen"); $0.add("effect", "the metrics endpoint stays where it was") }
        }
        // Probes and agents are rebuilt for the new servers; a probe on a server that remains
        // resumes from the verdict carried over (a server that was down stays down until it
        // passes again).
        health?.stop()
        health = HealthChecks(runtime: self)
        health?.start()
        return .reloaded(listenersOpened: opened.count, listenersClosed: closing.count, sessionsMoved: moved)
    }

    /// Closes the access_log files nothing writes to any more. Still used: the listen sockets'
    /// files, those of live sessions (they log where they started), and those of the sockets
    /// this reload closed (a client still sending its PROXY header there is logged when it is
    /// refused); the last are closed by a later reload.
    private func retireLogFiles(closedListeners: [Listener]) {
        var used = Set<ObjectIdentifier>()
        func use(_ l: Listener) { for t in l.logging.targets { used.insert(ObjectIdentifier(t.file)) } }
        for l in listeners { use(l) }
        for l in closedListeners { use(l) }
        var s = sessions
        while let current = s {
            if let l = current.listener { use(l) }
            s = current.next
        }
        connectionLog.closeFiles(notIn: used)
    }

    /// Moves every session on a retired upstream object to the same server (same `name=`, else
    /// same address as written) of the current upstream of that name, when it has that server:
    /// after a reload, the sessions of the upstreams it replaced; later, sessions whose server
    /// had left the file, when a reload or `add server` brings it back. Otherwise that server
    /// counts none of the sessions it holds, so `show stat` undercounts it and least_conn and
    /// max_conns send it more than it may take. Sessions still connecting move as well: their
    /// connect already counts against the server (Scheduler.sessionOpened), and the attempt goes
    /// on undisturbed (same socket and timer; `tried` and the attempt log are renumbered), unless
    /// the server's address changed under it.
    /// `only` limits the pass to one upstream. Returns how many sessions moved.
    /// Precondition: `upstreams` already names the current upstream objects.
    @discardableResult
    func rejoinReturningServers(only name: String? = nil) -> Int {
        var maps: [ObjectIdentifier: [Int?]] = [:]
        var rejoined = 0
        var s = sessions
        while let current = s {
            s = current.next
            let old = current.upstream
            guard current.peer >= 0, name == nil || old.name == name,
                  let u = upstreams[old.name], u !== old else { continue }
            let key = ObjectIdentifier(old)
            let map = maps[key] ?? Runtime.matchServers(old, u)
            maps[key] = map
            guard current.peer < map.count, let j = map[current.peer] else { continue }
            // A connect under way to an address the server no longer has (same `name=`, new
            // address) stays with the old one: its failure must not count against the new
            // address, which it never tried. If it fails, it retries in the current upstream.
            if current.phase == .connecting && old.addresses[current.peer] != u.addresses[j] { continue }
            move(current, to: u, peer: j, map: map)
            rejoined += 1
        }
        return rejoined
    }

    /// Moves `s` to server `j` of `u`, `map` taking its upstream's server indices to `u`'s. The
    /// count moves with it: it was opened once on the old server and is closed once, on `u`'s
    /// (a session whose server reset gave its count back already: it has none to move).
    private func move(_ s: Session, to u: Upstream, peer j: Int, map: [Int?]) {
        if !s.serverSlotReleased {
            s.upstream.scheduler.sessionClosed(s.peer)
            u.scheduler.sessionOpened(j)
        }
        renumberAttempts(s, to: u, map: map)
        s.upstream = u
        s.peer = j
    }

    /// Renumbers what `s` already tried for its move to `u` (`map` from Runtime.matchServers).
    private func renumberAttempts(_ s: Session, to u: Upstream, map: [Int?]) {
        let tried = Runtime.sameAddresses(map, s.upstream, u)
        s.attemptLog.remap(tried, from: s.upstream)
        s.tried = s.tried.remapped(tried)
    }

    /// `map` keeping only servers whose address stayed: for what a session already tried. An
    /// attempt on a server that kept its name but moved went to the old address, so it is
    /// logged with that address, and the new one counts as not tried yet.
    static func sameAddresses(_ map: [Int?], _ old: Upstream, _ u: Upstream) -> [Int?] {
        map.enumerated().map { i, j in
            guard let j, i < old.addresses.count, j < u.addresses.count, old.addresses[i] == u.addresses[j] else { return nil }
            return j
        }
    }

    /// A session between attempts (peer -1) whose upstream a reload retired: its next attempt
    /// is made in the current upstream of the same name, which knows the servers' state now
    /// and counts the attempt where `show stat` and the balancer see it. No upstream of that
    /// name any more: it stays, and retries among the servers it started with.
    func joinCurrentUpstream(_ s: Session) {
        guard s.peer < 0, let u = upstreams[s.upstream.name], u !== s.upstream else { return }
        renumberAttempts(s, to: u, map: Runtime.matchServers(s.upstream, u))
        s.upstream = u
    }

    /// Puts the new admin socket in place: `opened` is the one the reload opened at a new
    /// path (nil when the path stays or the socket goes). Precondition: `config` is still the old one.
    private func reloadAdminSocket(_ wanted: AdminSocketConfig?, opened: AdminServer?) {
        let current = config.adminSocket
        guard wanted != current else { return }
        if let w = wanted, let c = current, w.path == c.path {
            // Same path, new mode.
            _ = try? syscall("chmod") { chmod(w.path, mode_t(w.mode)) }
            return
        }
        // The reload may have been asked for on the old socket: its answer is written before
        // the end of this batch, so the old socket and its clients close after it.
        if let old = adminServer { loop.afterBatch { old.close() } }
        adminServer = opened
    }

    /// Listen sockets are the same socket across a reload when they bind the same address.
    static func listenKey(_ l: ListenConfig) -> String { SocketAddress(l.address.endpoint).description }

    /// The changed options that live in a kept listen socket (set before listen(), or inherited
    /// by accepted clients from it) and so stay as they were. `proxy_protocol` is not one: it is
    /// read from the listener's config at each accept and takes effect at once.
    static func optionsNeedingRestart(old: ListenConfig, oldRoute: Route, new: ListenConfig, newRoute: Route) -> [String] {
        var names: [String] = []
        if old.backlog != new.backlog { names.append("backlog") }
        if old.reusePort != new.reusePort { names.append("reuseport") }
        if old.keepalive != new.keepalive { names.append("so_keepalive") }
        if old.ipv6Only != new.ipv6Only { names.append("ipv6only") }
        if old.receiveBuffer != new.receiveBuffer { names.append("rcvbuf") }
        if old.sendBuffer != new.sendBuffer { names.append("sndbuf") }
        if old.fastOpen != new.fastOpen { names.append("fastopen") }
        if oldRoute.userTimeoutMilliseconds != newRoute.userTimeoutMilliseconds { names.append("tcp_user_timeout") }
        return names
    }

    /// For each server of `old`, its index in `new`: same name first, else same address as written.
    static func matchServers(_ old: Upstream, _ new: Upstream) -> [Int?] {
        var byName: [String: Int] = [:]
        var byAddress: [String: Int] = [:]
        // A tombstone of `del server` is no match: `add server` may have brought the name back.
        for j in new.serverNames.indices.reversed() where !new.removed[j] {
            byName[new.serverNames[j]] = j
            byAddress[new.writtenAddresses[j]] = j
        }
        var taken = Set<Int>()
        return old.serverNames.indices.map { i in
            guard !old.removed[i] else { return nil }
            guard let j = byName[old.serverNames[i]] ?? byAddress[old.writtenAddresses[i]], !taken.contains(j) else { return nil }
            taken.insert(j)
            return j
        }
    }

    static func carryState(from old: Upstream, to new: Upstream, map: [Int?]) {
        // Which old server each new one continues, so the scheduler takes every carried
        // state in one batch.
        var source = [Int?](repeating: nil, count: new.scheduler.peers.count)
        for (i, target) in map.enumerated() {
            guard let j = target else { continue }
            source[j] = i
            new.stats[j] = old.stats[i]
            new.lastChange[j] = old.lastChange[i]
        }
        // A verdict stays only with a check that can revise it: with `health_check` or the
        // agent gone from the file, a "down" or an agent's "drain" carried over would hold
        // the server out until a restart.
        let probed = new.config.healthCheck != nil
        new.scheduler.updateAll { j, p in
            guard let i = source[j] else { return }
            let before = old.scheduler.peers[i]
            let oldConfig = i < old.config.servers.count ? old.config.servers[i] : nil
            let newConfig = new.config.servers[j]
            p.admin = before.admin
            if HealthChecks.agentConfig(new.config, newConfig) != nil {
                p.agentAdmin = before.agentAdmin
                p.agentUp = before.agentUp
            }
            if probed { p.probeUp = before.probeUp; p.probeStopping = before.probeStopping }
            p.fails = before.fails
            p.lastFailureAt = before.lastFailureAt
            p.checkedAt = before.checkedAt
            if before.weight != before.configWeight && newConfig.weight == before.configWeight {
                p.weight = before.weight
            }
            if let oc = oldConfig, before.maxConns != oc.maxConns && newConfig.maxConns == oc.maxConns {
                p.maxConns = before.maxConns
            }
        }
    }

    // MARK: pid file

    /// At start; a start goes on without it (logged), as the process is already serving.
    func writePidFile() {
        guard let path = config.pidFile else { return }
        do {
            try PidFile.write(path)
        } catch {
            log.log(.error, "pid_file_failed") { $0.add("error", error.description); $0.add("effect", "ferry -s cannot find this process") }
        }
    }

    func removePidFile() {
        guard let path = config.pidFile else { return }
        PidFile.remove(path)
    }
}
