/// What the open sessions add to the counters at this moment, for the admin socket's
/// `show stat` and for `/metrics`. Bytes reach ServerStats and UpstreamTotals when a session
/// ends, so without this an hours-long CCcam session would show 0 bytes for hours. One walk
/// over the sessions, O(sessions): taken per listing or scrape, never per event.
struct LiveCounts {
    struct Bytes { var up: UInt64 = 0; var down: UInt64 = 0 }
    /// By upstream object, then server index: the sessions' upstream now, not their route's,
    /// since a reload moves sessions to the new object, where their server may have another index.
    private var byServer: [ObjectIdentifier: [Bytes]] = [:]
    /// By UpstreamTotals: also the sessions still on an object a reload replaced.
    private var byUpstream: [ObjectIdentifier: Bytes] = [:]
    /// Sessions kept on servers a reload dropped, by upstream name (not those whose server
    /// reset and gave its count back, as they count on no server line either). They are still
    /// the upstream's sessions, so its scur counts them, while no server line can.
    private var onDroppedServers: [String: Int] = [:]
    /// By listener: the FRONTEND line's bytes.
    private var byListener: [ObjectIdentifier: Bytes] = [:]

    init(_ runtime: Runtime) {
        var s = runtime.sessions
        while let current = s {
            s = current.next
            if current.peer >= 0 && current.upstream.retired && !current.serverSlotReleased {
                onDroppedServers[current.upstream.name, default: 0] += 1
            }
            // Bytes count once a server took the session, as Session.end adds them.
            guard current.phase == .relaying else { continue }
            if let l = current.listener {
                byListener[ObjectIdentifier(l), default: Bytes()].up &+= current.up.bytes
                byListener[ObjectIdentifier(l), default: Bytes()].down &+= current.down.bytes
            }
            let u = current.upstream
            let key = ObjectIdentifier(u)
            if byServer[key] == nil { byServer[key] = Array(repeating: Bytes(), count: u.stats.count) }
            byServer[key]![current.peer].up &+= current.up.bytes
            byServer[key]![current.peer].down &+= current.down.bytes
            byUpstream[ObjectIdentifier(u.totals), default: Bytes()].up &+= current.up.bytes
            byUpstream[ObjectIdentifier(u.totals), default: Bytes()].down &+= current.down.bytes
        }
    }

    func server(_ u: Upstream, _ i: Int) -> Bytes { byServer[ObjectIdentifier(u)]?[i] ?? Bytes() }
    func upstream(_ u: Upstream) -> Bytes { byUpstream[ObjectIdentifier(u.totals)] ?? Bytes() }
    func sessionsOnDroppedServers(_ u: Upstream) -> Int { onDroppedServers[u.name] ?? 0 }
    func listener(_ l: Listener) -> Bytes { byListener[ObjectIdentifier(l)] ?? Bytes() }
}
