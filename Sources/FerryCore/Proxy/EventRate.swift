/// Events per second, as HAProxy's `rate`, `conn_rate` and their `_max` columns read: a count
/// for the current second and one for the second before, on the loop's monotonic clock.
///
/// `perSecond` is HAProxy's sliding estimate: this second's count plus the previous second's,
/// weighted by how much of the current second is still to come, so the figure moves smoothly
/// instead of dropping to 0 at every second boundary. `max` is the highest count one second
/// reached, taken as events arrive (what HAProxy's `rate_max` keeps). 24 bytes, bumped once
/// per session or accept: nothing per message.
public struct EventRate: Equatable, Sendable {
    private var second: UInt64 = 0
    private var current: UInt32 = 0
    private var previous: UInt32 = 0
    /// Most events counted in one second since start or the last `clear counters`.
    public internal(set) var max: UInt32 = 0

    public init() {}

    /// Counts one event at `now` (monotonic nanoseconds).
    public mutating func record(now: UInt64) {
        roll(to: now / 1_000_000_000)
        current &+= 1
        if current > max { max = current }
    }

    /// The events of the last second at `now`, estimated as HAProxy does.
    public func perSecond(now: UInt64) -> UInt64 {
        let s = now / 1_000_000_000
        let left = 1_000_000_000 - now % 1_000_000_000   // nanoseconds of this second still to come
        switch s {
        case second:
            return UInt64(current) + UInt64(previous) * left / 1_000_000_000
        case second &+ 1:
            return UInt64(current) * left / 1_000_000_000
        default:
            return 0
        }
    }

    /// `clear counters`: the maximum starts again from what comes next.
    public mutating func clearMax() { max = 0 }

    private mutating func roll(to s: UInt64) {
        guard s != second else { return }
        previous = s == second &+ 1 ? current : 0
        current = 0
        second = s
    }
}
