/// Active health checking for every upstream that asks for it: one TCPProbe per server under
/// `health_check`, one AgentProbe per server under `agent_check` (or with `agent_port=`).
///
/// Health only writes the fields of PeerState it owns, through the upstream's Scheduler
/// (`probeUp` and `probeStopping` for the probe; `agentAdmin`, `weight`, `maxConns`, `agentUp` for the agent), and
/// Eligibility alone decides what they mean for new sessions. Sessions already on a server
/// that goes down stay, unless the upstream says `on_marked_down shutdown_sessions;`.
///
/// Spread: the servers of an upstream start at evenly spaced offsets within one interval
/// (server i of n at i/n of it; agents half a slot later), so 1,000 servers probed every
/// second mean one connect per millisecond, never 1,000 at once.
///
/// Threading: everything here runs on the runtime's event loop.
final class HealthChecks {
    unowned(unsafe) let runtime: Runtime
    var loop: EventLoop { runtime.loop }
    private(set) var probes: [TCPProbe] = []
    private(set) var agents: [AgentProbe] = []

    init(runtime: Runtime) {
        self.runtime = runtime
        for config in runtime.config.upstreams {
            guard let upstream = runtime.upstreams[config.name] else { continue }
            for (i, server) in config.servers.enumerated() {
                let target = ProbeTarget(upstream: upstream, index: i)
                if let check = config.healthCheck {
                    let address = HealthChecks.address(server.address.endpoint, port: check.port)
                    probes.append(TCPProbe(checks: self, target: target, address: address, config: check))
                }
                if let check = HealthChecks.agentConfig(config, server) {
                    // An agent listens on a TCP port; a Unix-socket server has no host to ask.
                    if case .unix = server.address.endpoint {
                        runtime.log.log(.warn, "agent_check_skipped") {
                            $0.add("upstream", config.name); $0.add("server", server.name)
                            $0.add("detail", "a unix: server has no host for the agent port")
                        }
                        continue
                    }
                    let address = HealthChecks.address(server.address.endpoint, port: check.port)
                    agents.append(AgentProbe(checks: self, target: target, address: address, config: check))
                }
            }
        }
    }

    /// The agent settings for one server: the upstream's `agent_check`, with the server's
    /// `agent_port=` in place of its port; `agent_port=` alone enables it with the defaults.
    static func agentConfig(_ upstream: UpstreamConfig, _ server: UpstreamServerConfig) -> AgentCheckConfig? {
        guard var check = upstream.agentCheck ?? server.agentPort.map({ AgentCheckConfig(port: $0) }) else { return nil }
        if let port = server.agentPort { check.port = port }
        return check
    }

    /// Descriptors the checks can hold at once: each probe has at most one socket open.
    static func descriptorsNeeded(_ config: Config) -> Int {
        config.upstreams.reduce(0) { total, u in
            total + u.servers.reduce(0) { n, s in
                n + (u.healthCheck != nil ? 1 : 0) + (agentConfig(u, s) != nil ? 1 : 0)
            }
        }
    }

    static func address(_ endpoint: ServerAddress.Endpoint, port: UInt16?) -> SocketAddress {
        guard let port else { return SocketAddress(endpoint) }
        switch endpoint {
        case .ipv4(let host, _): return SocketAddress(.ipv4(host: host, port: port))
        case .ipv6(let host, _): return SocketAddress(.ipv6(host: host, port: port))
        case .unix: return SocketAddress(endpoint)
        }
    }

    /// Schedules every probe at its offset. Precondition: on the loop's thread, once.
    func start() {
        let now = loop.now
        if !probes.isEmpty || !agents.isEmpty {
            runtime.log.log(.notice, "health_checks") {
                $0.add("probes", probes.count)
                $0.add("agents", agents.count)
                $0.add("initial_state", "up; one failed probe takes a server down until its first success")
            }
        }
        func spread<P>(_ items: [P], interval: (P) -> UInt64, upstream: (P) -> Upstream, shift: UInt64, start: (P, UInt64) -> Void) {
            var counts: [ObjectIdentifier: Int] = [:]
            for p in items { counts[ObjectIdentifier(upstream(p)), default: 0] += 1 }
            var seen: [ObjectIdentifier: Int] = [:]
            for p in items {
                let key = ObjectIdentifier(upstream(p))
                let k = UInt64(seen[key, default: 0]); seen[key] = Int(k) + 1
                let n = UInt64(counts[key]!)
                let slot = interval(p) / n
                start(p, now &+ slot &* k &+ slot &* shift / 2)
            }
        }
        spread(probes, interval: { $0.interval }, upstream: { $0.target.upstream }, shift: 0) { $0.start(at: $1) }
        spread(agents, interval: { $0.interval }, upstream: { $0.target.upstream }, shift: 1) { $0.start(at: $1) }
    }

    /// Checks a server added over the admin socket (`add server`) as its upstream checks the
    /// servers of the file: a TCP probe under `health_check`, an agent under `agent_check`.
    /// Without this it would never be checked and stay up whatever happened to it.
    /// Precondition: on the loop's thread, after start().
    func serverAdded(_ upstream: Upstream, index: Int, server: UpstreamServerConfig) {
        let target = ProbeTarget(upstream: upstream, index: index)
        if let check = upstream.config.healthCheck {
            let probe = TCPProbe(checks: self, target: target,
                                 address: HealthChecks.address(server.address.endpoint, port: check.port), config: check)
            probes.append(probe)
            probe.start(at: loop.now)
        }
        if let check = HealthChecks.agentConfig(upstream.config, server) {
            if case .unix = server.address.endpoint { return }  // no host to ask, as at start
            let agent = AgentProbe(checks: self, target: target,
                                   address: HealthChecks.address(server.address.endpoint, port: check.port), config: check)
            agents.append(agent)
            agent.start(at: loop.now)
        }
    }

    /// Stops the probe and the agent of a server deleted over the admin socket (`del server`),
    /// which would otherwise go on connecting to it every interval for as long as ferry runs.
    /// Precondition: on the loop's thread.
    func serverRemoved(_ upstream: Upstream, index: Int) {
        probes.removeAll { p in
            guard p.target.is(upstream, index) else { return false }
            p.stop()
            return true
        }
        agents.removeAll { a in
            guard a.target.is(upstream, index) else { return false }
            a.stop()
            return true
        }
    }

    /// Closes probes in flight. Called when the loop has stopped.
    func stop() {
        for p in probes { p.stop() }
        for a in agents { a.stop() }
    }

    /// The operator forced the probe's verdict (`set server ... health up|stopping|down`). HAProxy sets
    /// the check's counter at once, also when the verdict does not change: `health up` on a
    /// server with failures counted against it makes it fully up, `fall` failures from down.
    /// Precondition: on the loop's thread.
    func forced(_ upstream: Upstream, index: Int, up: Bool) {
        for p in probes where p.target.is(upstream, index) {
            p.health.force(up: up)
        }
    }

    /// `enable|disable health`: whether the server's TCP probe runs. Returns false when the
    /// server has no probe. A probe in flight when it is disabled is not counted.
    func setProbeEnabled(_ upstream: Upstream, index: Int, _ enabled: Bool) -> Bool {
        var found = false
        for p in probes where p.target.is(upstream, index) { p.enabled = enabled; found = true }
        return found
    }

    /// `enable|disable agent`: whether the server's agent is asked. Returns false when the
    /// server has no agent.
    func setAgentEnabled(_ upstream: Upstream, index: Int, _ enabled: Bool) -> Bool {
        var found = false
        for a in agents where a.target.is(upstream, index) { a.enabled = enabled; found = true }
        return found
    }

    /// `set server ... addr`: the server's probe and agent follow it to its new address (on
    /// their own ports when the checks name one). A check in flight finishes on the old one.
    func addressChanged(_ upstream: Upstream, index: Int, to endpoint: ServerAddress.Endpoint) {
        for p in probes where p.target.is(upstream, index) {
            p.address = HealthChecks.address(endpoint, port: p.checkPort)
        }
        for a in agents where a.target.is(upstream, index) {
            a.address = HealthChecks.address(endpoint, port: a.checkPort)
        }
    }

    // MARK: results

    func probeFinished(_ probe: TCPProbe, _ result: ProbeResult) {
        guard probe.enabled else { return }  // disabled while it was in flight
        let passed: Bool
        switch result {
        case .passed: passed = true
        case .failed: passed = false
        case .skipped(let e):
            runtime.log.log(.warn, "health_check_skipped") {
                $0.add("upstream", probe.target.upstream.name); $0.add("server", probe.target.serverName)
                $0.add("error", e.description)
            }
            return
        }
        let old = probe.health.status
        let stopping = probe.target.upstream.scheduler.peers[probe.target.index].probeStopping
        // A server set to `stopping` is up again at its next pass, as in HAProxy.
        guard probe.health.record(passed: passed) || (stopping && passed) else { return }
        let new = probe.health.status
        let was = stopping ? "stopping" : old.rawValue
        change(probe.target, cause: "health_check", [AgentReply.Change(field: "health", old: was, new: new.rawValue)]) {
            $0.probeUp = new == .up
            $0.probeStopping = false
        } details: {
            if case .failed(let e) = result { $0.add("error", e.description) }
            $0.add("checks", new == .up ? (stopping ? 1 : probe.health.rise) : probe.health.fall)
        }
    }

    func agentFinished(_ agent: AgentProbe, _ outcome: AgentOutcome) {
        guard agent.enabled else { return }  // disabled while it was in flight
        let target = agent.target
        let reason = outcome.reason
        defer { agent.lastReason = reason }
        guard case .reply(let bytes) = outcome else {
            if agent.lastReason != reason {
                runtime.log.log(.notice, "agent_no_reply") {
                    $0.add("upstream", target.upstream.name); $0.add("server", target.serverName)
                    $0.add("address", agent.address.description)
                    $0.add("error", reason)
                    $0.add("effect", "none; the server keeps its state")
                }
            }
            return
        }
        let reply = AgentReply.parse(bytes: bytes)
        let text = String(decoding: bytes, as: UTF8.self)
        if agent.lastReply != bytes {
            agent.lastReply = bytes
            let problems = reply.problems
            if !problems.isEmpty {
                runtime.log.log(.warn, "agent_reply_ignored") {
                    $0.add("upstream", target.upstream.name); $0.add("server", target.serverName)
                    $0.add("reply", text)
                    $0.add("problems", problems.joined(separator: "; "))
                    // As HAProxy, the words that can be used still are: `50% junk` sets 50%.
                    $0.add("effect", reply.hasUsableWord ? "the rest of the reply applies" : "none; the server keeps its state")
                }
            }
        }
        var changes: [AgentReply.Change] = []
        // Computed on a copy first so the log can say what changed; then applied in one update.
        var preview = target.upstream.scheduler.peers[target.index]
        changes = reply.apply(to: &preview)
        guard !changes.isEmpty else { return }
        change(target, cause: "agent", changes) { _ = reply.apply(to: &$0) } details: {
            $0.add("reply", text)
        }
    }

    /// Applies `apply` to one server through its scheduler, logs one line per changed field,
    /// and closes the server's sessions if it just went down and the upstream asked for that.
    private func change(_ target: ProbeTarget, cause: String, _ changes: [AgentReply.Change],
                        _ apply: (inout PeerState) -> Void, details: (inout JSONLine) -> Void) {
        let upstream = target.upstream
        let before = upstream.scheduler.peers[target.index]
        let wasHealthy = before.healthy
        upstream.scheduler.update(target.index, apply)
        let peer = upstream.scheduler.peers[target.index]
        if peer != before { upstream.lastChange[target.index] = loop.now }  // show stat's lastchg
        let verdict = upstream.scheduler.verdict(target.index, now: loop.now)
        for c in changes {
            runtime.log.log(.notice, "server_state") {
                $0.add("upstream", upstream.name)
                $0.add("server", target.serverName)
                $0.add("cause", cause)
                $0.add("field", c.field)
                $0.add("old", c.old)
                $0.add("new", c.new)
                details(&$0)
                $0.add("health", peer.healthy ? "up" : "down")
                $0.add("admin", AgentReply.name(peer.effectiveAdmin))
                $0.add("weight", peer.weight)
                $0.add("max_conns", peer.maxConns)
                $0.add("status", HealthChecks.name(verdict))
            }
        }
        if wasHealthy && !peer.healthy { runtime.markedDown(upstream, peer: target.index) }
    }

    /// The word the log uses for a server's verdict.
    static func name(_ v: Verdict) -> String {
        switch v {
        case .eligible: return "up"
        case .configDown: return "disabled"
        case .draining: return "drain"
        case .maintenance: return "maint"
        case .weightZero: return "drain"
        case .unhealthy: return "down"
        case .stopping: return "stopping"
        case .full: return "full"
        case .failed: return "failed"
        }
    }
}
