import Glibc

/// The admin socket's listings, in HAProxy's formats where HAProxy has one, so scripts and
/// dashboards written for HAProxy's stats socket read ferry's unchanged.
enum AdminReports {
    // MARK: show info

    static func info(_ r: Runtime) -> String {
        let nowMs = WallClock.nowMilliseconds()
        let up = max(0, (nowMs - r.startedAtMillis) / 1000)
        let uptime = "\(up / 86400)d \(up / 3600 % 24)h\(pad2(up / 60 % 60))m\(pad2(up % 60))s"
        let limited = r.listeners.reduce(UInt64(0)) { $0 + $1.stats.limited }
        let lines: [(String, String)] = [
            ("Name", "ferry"), ("Version", FerryCommand.version), ("Nbthread", "1"), ("Nbproc", "1"),
            ("Process_num", "1"), ("Pid", "\(getpid())"), ("Uptime", uptime), ("Uptime_sec", "\(up)"),
            ("Ulimit-n", "\(r.descriptorLimit)"), ("Maxsock", "\(r.descriptorLimit)"),
            ("Maxconn", "\(r.maxconn)"), ("Hard_maxconn", "\(r.configuredMaxconn)"),
            ("CurrConns", "\(r.sessionCount)"), ("CumConns", "\(r.acceptedTotal)"),
            ("ConnRate", "\(r.connectionRate.perSecond(now: r.loop.now))"), ("MaxConnRate", "\(r.connectionRate.max)"),
            ("SessRate", "\(r.sessionRate.perSecond(now: r.loop.now))"), ("MaxSessRate", "\(r.sessionRate.max)"),
            ("Maxpipes", "\(r.relay.pipes.maxPipes)"), ("PipesUsed", "\(r.relay.pipes.inUse)"),
            ("PipesFree", "\(r.relay.pipes.idleCount)"), ("Stopping", r.stopping ? "1" : "0"),
            ("Listeners", "\(r.listeners.count)"), ("Start_time_sec", "\(r.startedAtMillis / 1000)"),
            ("DeniedConns", "\(r.deniedTotal)"), ("LimitedConns", "\(limited)"),
            ("BadProxyHeaders", "\(r.badHeaderTotal)"), ("ReadingProxyHeaders", "\(r.readingHeaders)"),
            ("Reloads", "\(r.reloads)"), ("PacedShutdowns", "\(r.pacedShutdowns.count)"),
        ]
        return lines.map { "\($0.0): \($0.1)\n" }.joined()
    }

    static func pad2(_ v: Int64) -> String { v < 10 ? "0\(v)" : "\(v)" }

    // MARK: show stat

    /// HAProxy 2.6's `show stat` columns, in order. ferry fills those it has; the rest are empty.
    static let statFields = ("pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight,act,bck,chkfail,chkdown,lastchg,downtime,qlimit,pid,iid,sid,throttle,lbtot,tracked,type,rate,rate_lim,rate_max,check_status,check_code,check_duration,hrsp_1xx,hrsp_2xx,hrsp_3xx,hrsp_4xx,hrsp_5xx,hrsp_other,hanafail,req_rate,req_rate_max,req_tot,cli_abrt,srv_abrt,comp_in,comp_out,comp_byp,comp_rsp,lastsess,last_chk,last_agt,qtime,ctime,rtime,ttime,agent_status,agent_code,agent_duration,check_desc,agent_desc,check_rise,check_fall,check_health,agent_rise,agent_fall,agent_health,addr,cookie,mode,algo,conn_rate,conn_rate_max,conn_tot,intercepted,dcon,dses,wrew,connect,reuse,cache_lookups,cache_hits,srv_icur,src_ilim,qtime_max,ctime_max,rtime_max,ttime_max,eint,idle_conn_cur,safe_conn_cur,used_conn_cur,need_conn_est,uweight,agg_server_status,agg_server_check_status,agg_check_status").split(separator: ",").map(String.init)

    static func csvRow(_ values: [String: String]) -> String {
        statFields.map { values[$0] ?? "" }.joined(separator: ",") + ",\n"
    }

    static func stat(_ r: Runtime, _ filter: StatFilter = StatFilter()) -> String {
        var out = "# " + statFields.joined(separator: ",") + ",\n"
        let now = r.loop.now
        let live = LiveCounts(r)
        for l in r.listeners where filter.frontends && filter.showsProxy(l.id) {
            let st = l.stats
            let bytes = live.listener(l)
            out += csvRow([
                "pxname": frontendName(l), "svname": "FRONTEND", "scur": "\(st.open)", "smax": "\(st.maxOpen)",
                "slim": "\(l.maxconn > 0 ? l.maxconn : r.maxconn)", "stot": "\(st.accepted)", "bin": "\(st.bytesIn &+ bytes.up)", "bout": "\(st.bytesOut &+ bytes.down)",
                "dreq": "\(st.denied + st.limited)",
                "status": r.stopping ? "STOP" : l.paused ? "PAUSED" : l.full ? "FULL" : "OPEN", "pid": "1", "iid": "\(l.id)", "sid": "0", "type": "0",
                "rate": "\(st.sessionRate.perSecond(now: now))", "rate_max": "\(st.sessionRate.max)",
                "mode": "tcp", "conn_rate": "\(st.connectionRate.perSecond(now: now))", "conn_rate_max": "\(st.connectionRate.max)",
                "conn_tot": "\(st.accepted)",
            ])
        }
        // Each server's probe counts, looked up once rather than once per server.
        var probes: [ProbeKey: HealthState] = [:]
        // A disabled probe's counts are frozen with it: the status shows the bare verdict, as HAProxy's.
        for probe in r.health?.probes ?? [] where probe.enabled {
            probes[ProbeKey(upstream: ObjectIdentifier(probe.target.upstream), index: probe.target.index)] = probe.health
        }
        for u in r.upstreamList where filter.showsProxy(u.id) {
            var active = 0, act = 0, bck = 0, actWeight = 0, bckWeight = 0, usable = false
            var running = 0, servers = 0  // HAProxy's "(up/total)" after the BACKEND status
            for i in u.liveServers {
                let p = u.scheduler.peers[i]
                let verdict = u.scheduler.verdict(i, now: now)
                active += p.active
                if verdict == .eligible || verdict == .full {
                    usable = true
                    if p.backup { bck += 1; bckWeight += p.weight } else { act += 1; actWeight += p.weight }
                }
                let status = status(u, i, probe: probes[ProbeKey(upstream: ObjectIdentifier(u), index: i)])
                servers += 1
                if !status.hasPrefix("DOWN") && status != "MAINT" { running += 1 }
                guard filter.showsServer(id: i + 1, status: status) else { continue }
                let s = u.stats[i]
                let bytes = live.server(u, i)
                out += csvRow([
                    "pxname": u.name, "svname": u.serverNames[i], "qcur": "0", "qmax": "0",
                    "scur": "\(p.active)", "smax": "\(s.maxActive)", "slim": p.maxConns > 0 ? "\(p.maxConns)" : "",
                    "stot": "\(s.sessionsTotal)", "bin": "\(s.bytesToServer &+ bytes.up)", "bout": "\(s.bytesToClient &+ bytes.down)",
                    "econ": "\(s.connectFailures)", "wretr": "0", "wredis": "0",
                    "status": status, "weight": "\(p.weight)", "act": p.backup ? "0" : "1", "bck": p.backup ? "1" : "0",
                    "lastchg": "\((now &- u.lastChange[i]) / 1_000_000_000)", "pid": "1", "iid": "\(u.id)", "sid": "\(i + 1)",
                    "lbtot": "\(s.sessionsTotal)", "type": "2",
                    "rate": "\(s.sessionRate.perSecond(now: now))", "rate_max": "\(s.sessionRate.max)",
                    "lastsess": s.lastSessionAtMillis == 0 ? "-1" : "\(max(0, WallClock.nowMilliseconds() - Int64(s.lastSessionAtMillis)) / 1000)",
                    "addr": u.writtenAddresses[i], "mode": "tcp", "uweight": "\(p.weight)",
                ])
            }
            // Every live session of the upstream, also those on servers a reload dropped; and
            // the counters of the upstream, not the sum of the servers it has now.
            active += live.sessionsOnDroppedServers(u)
            let totals = u.totals
            guard filter.backends else { continue }
            let bytes = live.upstream(u)
            // As HAProxy's: the backup servers' weight counts only while no active server can serve.
            let weight = act > 0 ? actWeight : bckWeight
            let backendStatus = (usable ? "UP" : "DOWN") + (filter.upOnly || filter.noMaint ? " (\(running)/\(servers))" : "")
            out += csvRow([
                "pxname": u.name, "svname": "BACKEND", "qcur": "0", "qmax": "0", "scur": "\(active)", "smax": "\(totals.maxActive)",
                "rate": "\(totals.sessionRate.perSecond(now: now))", "rate_max": "\(totals.sessionRate.max)",
                "stot": "\(totals.sessionsTotal)", "bin": "\(totals.bytesToServer &+ bytes.up)", "bout": "\(totals.bytesToClient &+ bytes.down)",
                "econ": "\(totals.connectFailures)", "status": backendStatus, "weight": "\(weight)",
                "act": "\(act)", "bck": "\(bck)", "pid": "1", "iid": "\(u.id)", "sid": "0", "lbtot": "\(totals.sessionsTotal)",
                "type": "1", "mode": "tcp", "algo": algorithm(u.config.method), "uweight": "\(weight)",
            ])
        }
        return out
    }

    private struct ProbeKey: Hashable { let upstream: ObjectIdentifier; let index: Int }

    /// A frontend is named by the address its `listen` wrote.
    static func frontendName(_ l: Listener) -> String { l.config.address.written }

    /// HAProxy 2.6's status words: MAINT first, then the agent's or the probe's DOWN, then
    /// DRAIN, then the probe's verdict; "no check" when no TCP probe watches the server (an
    /// agent alone is not a check, as in HAProxy), also while `disable health` holds it: then
    /// `probe` is nil and a server left down stays "DOWN", as in HAProxy. A probe on its way to the other verdict
    /// shows its progress as HAProxy does: "UP 2/3" (failures left before down), "DOWN 1/2"
    /// (passes so far). One difference on purpose: HAProxy says "DRAIN (agent)" for any drain
    /// of a server that has an agent, also one the operator set; ferry says "(agent)" only
    /// when the agent's drain is in effect, so the operator sees who must lift it.
    static func status(_ u: Upstream, _ i: Int, probe: HealthState?) -> String {
        let p = u.scheduler.peers[i]
        if p.configDown || p.effectiveAdmin == .maint { return "MAINT" }
        if !p.agentUp { return "DOWN (agent)" }
        // Counts are shown only while they belong to the verdict in force (HealthChecks.forced
        // keeps the two in step when the operator sets the verdict).
        let counts = probe.flatMap { ($0.status == .up) == p.probeUp ? $0 : nil }
        if !p.probeUp {
            if let c = counts, c.against > 0 { return "DOWN \(c.against)/\(c.rise)" }
            return "DOWN"
        }
        let progress = counts.flatMap { $0.against > 0 ? " \($0.fall - $0.against)/\($0.fall)" : nil } ?? ""
        if p.probeStopping { return "NOLB" + progress }  // HAProxy's NOLB wins over DRAIN too
        if p.effectiveAdmin == .drain { return p.agentAdmin == .drain ? "DRAIN (agent)" : "DRAIN" }
        guard probe != nil else { return "no check" }
        return "UP" + progress
    }

    static func algorithm(_ m: BalancingMethodConfig) -> String {
        switch m {
        case .roundRobin: return "roundrobin"
        case .leastConn: return "leastconn"
        case .hash(consistent: false), .ipHash: return "source"
        case .hash(consistent: true): return "source consistent"
        case .random(two: false, _): return "random"
        case .random(two: true, _): return "random(2)"
        }
    }

    // MARK: show servers state

    static let serversStateHeader = "# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr srv_agent_port\n"

    static func serversState(_ r: Runtime, only: Upstream?) -> String {
        var out = "1\n" + serversStateHeader
        let now = r.loop.now
        for u in r.upstreamList where only == nil || only === u {
            for i in u.liveServers {
                let p = u.scheduler.peers[i]
                // srv_op_state: 0 stopped, 2 running, 3 stopping. srv_admin_state bits: 0x01 forced maint,
                // 0x08 forced drain (HAProxy's SRV_ADMF_FMAINT and SRV_ADMF_FDRAIN).
                let maint = p.configDown || p.effectiveAdmin == .maint
                let op = maint || !p.healthy ? 0 : (p.probeStopping ? 3 : 2)
                let admin = maint ? 1 : (p.effectiveAdmin == .drain ? 8 : 0)
                let (host, port) = hostPort(u.addresses[i])
                let agentPort = u.config.servers.indices.contains(i) ? (u.config.servers[i].agentPort ?? u.config.agentCheck?.port ?? 0) : 0
                out += "\(u.id) \(u.name) \(i + 1) \(u.serverNames[i]) \(host) \(op) \(admin) \(p.weight) \(p.configWeight) "
                    + "\((now &- u.lastChange[i]) / 1_000_000_000) 1 0 \(p.probeUp ? 2 : 0) 0 \(p.agentUp ? 0 : 1) 0 0 - \(port) - 0 0 - - \(agentPort)\n"
            }
        }
        return out
    }

    static func hostPort(_ a: SocketAddress) -> (String, String) {
        a.isUnix ? (a.description, "0") : (a.host, "\(a.port)")
    }

    // MARK: show sessions

    static func sessions(_ r: Runtime, upstream: Upstream?, peer: Int?) -> String {
        // id: the connection serial, the connection log's `connection` ($connection), which
        // `shutdown session <id>` takes.
        var out = "# id client backend server age_s bytes_in bytes_out state\n"
        let now = r.loop.now
        var s = r.sessions
        var shown = 0
        while let current = s, shown < 100_000 {
            s = current.next
            if let u = upstream, current.upstream !== u || current.peer != peer { continue }
            let server = current.peer >= 0 ? current.upstream.serverNames[current.peer] : "-"
            // A PROXY header's address is the client; otherwise the socket's peer.
            let client = (current.origin?.source ?? current.client.remoteAddress())?.description ?? "-"
            out += "\(current.connection) \(client) \(current.upstream.name) \(server) \((now &- current.startedAt) / 1_000_000_000) "
                + "\(current.up.bytes) \(current.down.bytes) \(current.phase == .connecting ? "connecting" : "relaying")\n"
            shown += 1
        }
        return out
    }
}
