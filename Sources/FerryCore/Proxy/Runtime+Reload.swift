import Glibc

/// Reload in the same process (SIGHUP, `ferry -s reload`, admin `reload`).
///
/// The new configuration is read and checked completely before anything changes; an invalid
/// one is logged with its location and the old one keeps running. A valid one is applied:
/// listen sockets for addresses that remain are kept (no accept is lost), new ones open,
/// removed ones close while their sessions continue; upstreams are rebuilt and new sessions
/// use them; live sessions move to the same server in the new upstream (matched by upstream
/// name, then server name, then address as written), so per-server session counts survive.
/// A session whose server is gone stays on the retired upstream object until it ends, or until a
/// later reload or `add server` brings that server back; one still connecting during the reload
/// moves when its connect succeeds.
///
/// Runtime changes made over the admin socket to servers that remain are kept (admin state,
/// agent state, probe state, passive failures, counters); a runtime weight or maxconn is kept
/// unless the new configuration changes that server's weight or max_conns. Health probes and
/// agents restart on the new servers; a server the probe had marked down stays down until it
/// passes `passes` probes again. Servers added with
/// `add server` and absent from the file are gone after a reload, as in HAProxy.
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
            plan = try Runtime.plan(new, now: loop.now, zones: &newZones)
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
        for (listen, route) in plan.listens {
            if let l = kept.removeValue(forKey: Runtime.listenKey(listen)) {
                if !Runtime.sameOptions(l.config, listen) {
                    log.log(.warn, "reload_needs_restart") { $0.add("listen", listen.address.written); $0.add("effect", "backlog, reuseport and keepalive of a kept listen socket stay as they were") }
                }
                assignments.append((l, route))
                keptConfigs.append((l, listen))
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
        }
        // From here on the reload cannot fail.
        zones = newZones
        let retired = upstreams
        var byName: [String: Upstream] = [:]
        for u in plan.upstreams { byName[u.name] = u }
        for u in plan.upstreams {
            guard let old = retired[u.name] else { continue }
            let map = Runtime.matchServers(old, u)
            Runtime.carryState(from: old, to: u, map: map)
            old.successor = (u, map)
        }
        // Sessions move to the same server of the new upstream; those still connecting move
        // when they connect (Session.established), so their attempt is not disturbed.
        var moved = 0
        var s = sessions
        while let current = s {
            s = current.next
            if current.phase == .relaying && moveToSuccessor(current) { moved += 1 }
        }
        for p in pacedShutdowns {
            if let (u, map) = p.upstream.successor, let j = map[p.peer] { p.upstream = u; p.peer = j }
        }
        for (l, route) in assignments { l.route = route }
        for (l, listen) in keptConfigs { l.config = listen }
        let closingListeners = Array(kept.values)
        let closing = closingListeners
        for l in closing { l.close() }
        listeners = assignments.map(\.0)
        upstreamList = plan.upstreams
        upstreams = byName
        moved += rejoinReturningServers()
        Runtime.assignIDs(upstreamList, listeners)
        if gate != .open { for l in opened { l.setAccepting(false) } }
        reloadAdminSocket(new.adminSocket)
        shutdownTimeout = new.shutdownTimeout.nanoseconds
        log.minimumLevel = new.errorLog?.level ?? .notice
        let oldConfig = config
        config = new
        do {
            try setUpConnectionLog()
        } catch {
            log.log(.error, "access_log_failed") { $0.add("error", error.description); $0.add("effect", "listeners whose log could not be opened log nothing") }
        }
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

    /// Moves `s` along its upstream's successors (one per reload since it started) to the same
    /// server there, keeping the schedulers' session counts balanced. Returns whether it moved.
    /// Precondition: `s` holds a server (peer >= 0).
    @discardableResult
    func moveToSuccessor(_ s: Session) -> Bool {
        var moved = false
        while s.peer >= 0, let (u, map) = s.upstream.successor, s.peer < map.count, let j = map[s.peer] {
            move(s, to: u, peer: j, map: map)
            moved = true
        }
        return moved
    }

    /// Sessions whose server had left the file stay on a retired upstream (above). When a later
    /// reload or `add server` brings that server back to the upstream of the same name (same
    /// `name=`, else same address as written), they rejoin it: otherwise the returning server
    /// counts none of the sessions it already holds, so `show stat` undercounts it and
    /// least_conn and max_conns send it more than it may take. `only` limits the pass to one
    /// upstream. Returns how many sessions rejoined.
    /// Precondition: `upstreams` already names the current upstream objects.
    @discardableResult
    func rejoinReturningServers(only name: String? = nil) -> Int {
        var maps: [ObjectIdentifier: [Int?]] = [:]
        var rejoined = 0
        var s = sessions
        while let current = s {
            s = current.next
            let old = current.upstream
            // A session still connecting rejoins through its successor chain when it connects.
            guard current.phase == .relaying, current.peer >= 0, name == nil || old.name == name,
                  let u = upstreams[old.name], u !== old else { continue }
            let key = ObjectIdentifier(old)
            let map = maps[key] ?? Runtime.matchServers(old, u)
            maps[key] = map
            guard current.peer < map.count, let j = map[current.peer] else { continue }
            move(current, to: u, peer: j, map: map)
            rejoined += 1
        }
        return rejoined
    }

    /// Moves `s` to server `j` of `u`, `map` taking its upstream's server indices to `u`'s.
    private func move(_ s: Session, to u: Upstream, peer j: Int, map: [Int?]) {
        s.upstream.scheduler.sessionClosed(s.peer)
        u.scheduler.sessionOpened(j)
        s.attemptLog.remap(map)
        s.upstream = u
        s.peer = j
        s.tried = TriedSet()
        s.tried.insert(j)
    }

    private func reloadAdminSocket(_ wanted: AdminSocketConfig?) {
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
        adminServer = nil
        guard let w = wanted else { return }
        do {
            adminServer = try AdminServer(runtime: self, config: w)
        } catch {
            log.log(.error, "admin_socket_failed") { $0.add("error", error.description) }
        }
    }

    /// Listen sockets are the same socket across a reload when they bind the same address.
    static func listenKey(_ l: ListenConfig) -> String { SocketAddress(l.address.endpoint).description }

    static func sameOptions(_ a: ListenConfig, _ b: ListenConfig) -> Bool {
        a.backlog == b.backlog && a.reusePort == b.reusePort && a.keepalive == b.keepalive && a.proxyProtocol == b.proxyProtocol
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
        for (i, target) in map.enumerated() {
            guard let j = target else { continue }
            let before = old.scheduler.peers[i]
            let oldConfig = i < old.config.servers.count ? old.config.servers[i] : nil
            let newConfig = new.config.servers[j]
            new.scheduler.update(j) { p in
                p.admin = before.admin
                p.agentAdmin = before.agentAdmin
                p.agentUp = before.agentUp
                p.probeUp = before.probeUp
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
            new.stats[j] = old.stats[i]
            new.lastChange[j] = old.lastChange[i]
        }
    }

    // MARK: pid file

    func writePidFile() {
        guard let path = config.pidFile else { return }
        guard let fd = try? FileDescriptor.openForWriting(path) else {
            log.log(.error, "pid_file_failed") { $0.add("file", path); $0.add("effect", "ferry -s cannot find this process") }
            return
        }
        FileHandleWriter(fd: fd.rawValue).write("\(getpid())\n")
        fd.close()
    }

    func removePidFile() {
        guard let path = config.pidFile else { return }
        unlink(path)
    }
}
