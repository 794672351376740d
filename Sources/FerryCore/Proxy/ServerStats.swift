/// Counters for one server, kept beside the scheduler's state: what `show stat`, the metrics
/// endpoint and the connection log read. Plain integers bumped on the loop's thread; nothing
/// here decides anything (eligibility lives in Balancing/).
public struct ServerStats: Equatable, Sendable {
    /// Sessions that reached the server (connect succeeded).
    public var sessionsTotal: UInt64 = 0
    /// Connect attempts that failed (refused, reset, timed out).
    public var connectFailures: UInt64 = 0
    /// Bytes relayed client -> server and server -> client, added when a session ends.
    public var bytesToServer: UInt64 = 0
    public var bytesToClient: UInt64 = 0
    /// Most sessions seen at once (since start or the last `clear counters`).
    public var maxActive: Int = 0
    /// Sessions established per second (show stat's `rate`, `rate_max`).
    public var sessionRate = EventRate()
    /// Wall-clock time (ms since the epoch) of the last session established; 0 = never.
    public var lastSessionAtMillis: UInt64 = 0

    public init() {}

    /// A session reached the server; `open` is how many it has now.
    mutating func recordSession(open: Int, now: UInt64) {
        sessionsTotal &+= 1
        if open > maxActive { maxActive = open }
        sessionRate.record(now: now)
        lastSessionAtMillis = UInt64(WallClock.nowMilliseconds())
    }

    /// `clear counters [all]` (see CounterReset); `live` is what the server's open sessions carry.
    mutating func clear(all: Bool, live: LiveCounts.Bytes) {
        if all {
            let rate = sessionRate
            self = ServerStats()
            sessionRate = rate
            bytesToServer = 0 &- live.up
            bytesToClient = 0 &- live.down
        }
        maxActive = 0
        sessionRate.clearMax()
    }
}

/// Counters for one listener, for `show info`, `show stat` and metrics.
public struct ListenerStats: Equatable, Sendable {
    /// Connections accepted from the kernel.
    public var accepted: UInt64 = 0
    /// Closed before becoming a session, for any reason (the sum of the kinds below and more).
    public var refused: UInt64 = 0
    /// Closed by allow/deny.
    public var denied: UInt64 = 0
    /// Closed by a per-client limit (limit_conn, rate cap).
    public var limited: UInt64 = 0
    /// Of `limited`: refused by limit_conn_rate.
    public var rateLimited: UInt64 = 0
    /// Of `limited`: refused because a limit_conn zone had no room for another address.
    public var zoneFull: UInt64 = 0
    /// Closed for a malformed, oversized or late PROXY protocol header (status 400).
    public var badHeader: UInt64 = 0
    /// Sessions of this listener open now, and the most at once: show stat's FRONTEND
    /// `scur` and `smax`. A session counts from admission (past allow/deny and the limits)
    /// to its end, connecting or relaying, as a HAProxy frontend's.
    public var open: Int = 0
    public var maxOpen: Int = 0
    /// Bytes from and to the clients of sessions that ended after reaching a server;
    /// LiveCounts adds the open ones' (FRONTEND `bin`, `bout`).
    public var bytesIn: UInt64 = 0
    public var bytesOut: UInt64 = 0
    /// Connections accepted and sessions admitted per second: FRONTEND `conn_rate` and `rate`.
    public var connectionRate = EventRate()
    public var sessionRate = EventRate()

    public init() {}

    /// A connection was accepted.
    mutating func recordAccept(now: UInt64) {
        accepted &+= 1
        connectionRate.record(now: now)
    }

    /// An accepted client became a session; `sessionEnded` gives it back.
    mutating func recordSession(now: UInt64) {
        open += 1
        if open > maxOpen { maxOpen = open }
        sessionRate.record(now: now)
    }

    mutating func sessionEnded() { open -= 1 }

    /// `clear counters [all]` (see CounterReset); `live` is what the listener's open sessions carry.
    mutating func clear(all: Bool, live: LiveCounts.Bytes) {
        if all {
            let (sessions, rates) = (open, (connectionRate, sessionRate))
            self = ListenerStats()
            open = sessions
            (connectionRate, sessionRate) = rates
            bytesIn = 0 &- live.up
            bytesOut = 0 &- live.down
        }
        maxOpen = 0
        connectionRate.clearMax()
        sessionRate.clearMax()
    }
}

/// An upstream's own counters (show stat's BACKEND stot/bin/bout/econ, the ferry_upstream_*
/// totals). Kept apart from the sum of its servers' because servers leave (`del server`, a
/// reload that drops their line) while what they did stays the upstream's, as HAProxy's
/// backend counters do. A reference, shared by the upstream and the object each reload puts
/// in its place, so that a session still on a replaced object counts where it is seen.
public final class UpstreamTotals {
    public internal(set) var sessionsTotal: UInt64 = 0
    public internal(set) var connectFailures: UInt64 = 0
    /// Of sessions that ended; LiveCounts adds the open ones'.
    public internal(set) var bytesToServer: UInt64 = 0
    public internal(set) var bytesToClient: UInt64 = 0
    /// Most sessions open to the upstream's servers at once, and sessions established per
    /// second: BACKEND `smax`, `rate`, `rate_max`.
    public internal(set) var maxActive: Int = 0
    public internal(set) var sessionRate = EventRate()

    public init() {}

    /// A session reached one of the upstream's servers; `open` is how many are open now.
    func recordSession(open: Int, now: UInt64) {
        sessionsTotal &+= 1
        if open > maxActive { maxActive = open }
        sessionRate.record(now: now)
    }

    /// `clear counters [all]` (see CounterReset); `live` is what the upstream's open sessions carry.
    func clear(all: Bool, live: LiveCounts.Bytes) {
        if all {
            sessionsTotal = 0
            connectFailures = 0
            bytesToServer = 0 &- live.up
            bytesToClient = 0 &- live.down
        }
        maxActive = 0
        sessionRate.clearMax()
    }
}
