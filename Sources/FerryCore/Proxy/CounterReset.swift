/// HAProxy's `clear counters [all]` on ferry's counters (ServerStats, UpstreamTotals,
/// ListenerStats and the process's rates), which show stat, show info and /metrics share, as
/// HAProxy's stats and its Prometheus exporter do.
///
/// `clear counters` restarts the maxima (smax, rate_max, conn_rate_max, MaxConnRate,
/// MaxSessRate): what an operator clears after an incident to see the next peak. `all` also
/// restarts every total (stot, lbtot, bin, bout, econ, dreq, conn_tot and the listener
/// counters), as a restart would; what describes now stays: scur, the current rates, weights,
/// states, and the process-wide CumConns and connection serials (the connection log's ids).
enum CounterReset {
    static func clear(_ r: Runtime, all: Bool) {
        r.connectionRate.clearMax()
        r.sessionRate.clearMax()
        // Open sessions' bytes reach the totals when they end, and LiveCounts adds them to
        // what is shown meanwhile; starting a total at minus what they carry now shows 0 now
        // and counts only what is relayed from here on (unsigned, wrapping). It holds while a
        // session stays in its line, as reloads carry lines and sessions along the same map.
        // One case is off, and only upward: a session kept on a server a reload dropped, which
        // has no line to subtract from, counts its earlier bytes again on the line it joins
        // when the server comes back (README). Recording a baseline per session instead would
        // cost every held connection 16 bytes for this corner.
        let live = all ? LiveCounts(r) : nil
        for l in r.listeners { l.stats.clear(all: all, live: live?.listener(l) ?? .init()) }
        for u in r.upstreamList {
            for i in u.stats.indices { u.stats[i].clear(all: all, live: live?.server(u, i) ?? .init()) }
            u.totals.clear(all: all, live: live?.upstream(u) ?? .init())
        }
    }
}
