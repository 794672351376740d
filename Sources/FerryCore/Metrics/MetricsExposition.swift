// What `/metrics` says: per server, per listener, and for the process. Read from the runtime's
// counters on the loop thread at scrape time (scrapes less than a second apart share one
// render, see MetricsServer); nothing is sampled in between.

extension Verdict {
    /// The state names of `ferry_server_state` (a Prometheus state set: one sample per state).
    static let stateNames = ["up", "down", "drain", "maint", "weight_zero", "unhealthy", "stopping", "full", "failed"]

    var stateName: String {
        switch self {
        case .eligible: return "up"
        case .configDown: return "down"
        case .draining: return "drain"
        case .maintenance: return "maint"
        case .weightZero: return "weight_zero"
        case .unhealthy: return "unhealthy"
        case .stopping: return "stopping"
        case .full: return "full"
        case .failed: return "failed"
        }
    }
}

enum MetricsExposition {
    /// Precondition: on the loop thread. O(servers + sessions): bytes of sessions still open are
    /// added to the ended sessions' totals (LiveCounts), so the byte counters move while long
    /// sessions relay.
    static func render(_ runtime: Runtime) -> String {
        let live = LiveCounts(runtime)
        let upstreams = runtime.upstreams.values.sorted { $0.name < $1.name }
        let now = runtime.loop.now
        var m = PrometheusText()

        // Servers deleted over the admin socket are left out, as `show stat` leaves them out:
        // their index is never reused, so their series simply end.
        func perServer(_ name: String, _ kind: PrometheusText.Kind, _ help: String, _ value: (Upstream, Int) -> UInt64) {
            m.family(name, kind, help)
            for u in upstreams {
                for i in u.liveServers {
                    m.sample(name, [("upstream", u.name), ("server", u.serverNames[i]), ("address", u.addresses[i].description)], value(u, i))
                }
            }
        }

        perServer("ferry_server_sessions", .gauge, "Sessions open to the server now.") { u, i in UInt64(max(0, u.scheduler.peers[i].active)) }
        perServer("ferry_server_sessions_total", .counter, "Sessions that reached the server (connect succeeded).") { u, i in u.stats[i].sessionsTotal }
        perServer("ferry_server_sessions_max", .gauge, "Most sessions open to the server at once since start or the last `clear counters`.") { u, i in UInt64(max(0, u.stats[i].maxActive)) }
        perServer("ferry_server_sent_bytes_total", .counter, "Bytes relayed from clients to the server.") { u, i in u.stats[i].bytesToServer &+ live.server(u, i).up }
        perServer("ferry_server_received_bytes_total", .counter, "Bytes relayed from the server to clients.") { u, i in u.stats[i].bytesToClient &+ live.server(u, i).down }
        perServer("ferry_server_connect_failures_total", .counter, "Connect attempts to the server that failed (refused, reset, timed out).") { u, i in u.stats[i].connectFailures }
        perServer("ferry_server_weight", .gauge, "Weight the server has for new sessions now.") { u, i in UInt64(max(0, u.scheduler.peers[i].weight)) }
        perServer("ferry_server_probe_up", .gauge, "1 while the health probe allows the server (1 when no probe is configured).") { u, i in u.scheduler.peers[i].probeUp ? 1 : 0 }
        perServer("ferry_server_agent_up", .gauge, "1 while the agent allows the server (1 when no agent is configured).") { u, i in u.scheduler.peers[i].agentUp ? 1 : 0 }
        perServer("ferry_server_backup", .gauge, "1 for a backup server.") { u, i in u.scheduler.peers[i].backup ? 1 : 0 }

        m.family("ferry_server_state", .gauge, "Whether the server takes new sessions, and if not why: 1 for the current state.")
        for u in upstreams {
            for i in u.liveServers {
                let current = Eligibility.verdict(u.scheduler.peers[i], now: now).stateName
                for state in Verdict.stateNames {
                    m.sample("ferry_server_state", [("upstream", u.name), ("server", u.serverNames[i]), ("address", u.addresses[i].description), ("state", state)],
                             state == current ? 1 : 0)
                }
            }
        }

        // The same totals as show stat's BACKEND line: the upstream's, also for servers gone.
        m.family("ferry_upstream_sessions", .gauge, "Sessions open to the upstream now, including those kept on servers a reload removed.")
        for u in upstreams {
            let onServers = u.scheduler.peers.reduce(0) { $0 + max(0, $1.active) }
            m.sample("ferry_upstream_sessions", [("upstream", u.name)], UInt64(onServers + live.sessionsOnDroppedServers(u)))
        }
        func perUpstream(_ name: String, _ help: String, _ value: (Upstream) -> UInt64) {
            m.family(name, .counter, help)
            for u in upstreams { m.sample(name, [("upstream", u.name)], value(u)) }
        }
        perUpstream("ferry_upstream_sessions_total", "Sessions that reached a server of the upstream, also servers since deleted or dropped by a reload.") { $0.totals.sessionsTotal }
        perUpstream("ferry_upstream_sent_bytes_total", "Bytes relayed from clients to the upstream's servers.") { $0.totals.bytesToServer &+ live.upstream($0).up }
        perUpstream("ferry_upstream_received_bytes_total", "Bytes relayed from the upstream's servers to clients.") { $0.totals.bytesToClient &+ live.upstream($0).down }
        perUpstream("ferry_upstream_connect_failures_total", "Connect attempts to the upstream's servers that failed.") { $0.totals.connectFailures }

        func perListener(_ name: String, _ help: String, _ value: (ListenerStats) -> UInt64) {
            m.family(name, .counter, help)
            for l in runtime.listeners { m.sample(name, [("listener", l.config.address.written)], value(l.stats)) }
        }
        perListener("ferry_listener_accepted_total", "Connections accepted.") { $0.accepted }
        perListener("ferry_listener_refused_total", "Clients closed before becoming a session, for any reason.") { $0.refused }
        perListener("ferry_listener_denied_total", "Clients closed by allow/deny.") { $0.denied }
        perListener("ferry_listener_limited_total", "Clients closed by a per-client limit.") { $0.limited }

        m.family("ferry_sessions", .gauge, "Sessions open now.")
        m.sample("ferry_sessions", [], runtime.sessionCount)
        m.family("ferry_sessions_capacity", .gauge, "Sessions that fit in the descriptor limit; at capacity accepting pauses.")
        m.sample("ferry_sessions_capacity", [], runtime.capacity)
        m.family("ferry_sessions_limit", .gauge, "Sessions admitted at once: the capacity, or less by worker_connections or set maxconn global.")
        m.sample("ferry_sessions_limit", [], runtime.maxconn)
        m.family("ferry_pipes_in_use", .gauge, "Pipes lent to sessions for splicing now.")
        m.sample("ferry_pipes_in_use", [], runtime.relay.pipes.inUse)
        m.family("ferry_pipes_pooled", .gauge, "Idle pipes kept for reuse.")
        m.sample("ferry_pipes_pooled", [], runtime.relay.pipes.idleCount)
        m.family("ferry_pipe_borrow_failures_total", .counter, "Times no pipe was available and a direction copied instead.")
        m.sample("ferry_pipe_borrow_failures_total", [], runtime.relay.pipes.exhausted)

        let files = runtime.connectionLog.files
        m.family("ferry_connection_log_lines_total", .counter, "Connection-log lines produced, written or not.")
        for f in files { m.sample("ferry_connection_log_lines_total", [("path", f.path)], f.linesAppended) }
        m.family("ferry_connection_log_dropped_lines_total", .counter, "Connection-log lines dropped because the disk was full or too slow.")
        for f in files { m.sample("ferry_connection_log_dropped_lines_total", [("path", f.path)], f.dropped) }

        m.family("process_open_fds", .gauge, "Number of open file descriptors.")
        m.sample("process_open_fds", [], max(0, ResourceLimits.openDescriptorCount()))
        m.family("process_max_fds", .gauge, "Maximum number of open file descriptors.")
        m.sample("process_max_fds", [], runtime.descriptorLimit)
        return m.text
    }
}
