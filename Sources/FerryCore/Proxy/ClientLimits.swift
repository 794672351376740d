/// A `limit_conn_zone`: how many sessions each client address has open, shared by every
/// server block that names the zone in `limit_conn` (as nginx shares a zone between servers).
///
/// The zone's size bounds how many addresses it tracks: nginx stores 64 bytes per address
/// on 64-bit systems, so a zone of SIZE bytes tracks SIZE/64 addresses (10m: 163,840). When
/// every slot holds an address with open sessions, a client whose address is not tracked yet
/// is refused (503, `limited`), as nginx closes the connection when the zone is exhausted;
/// clients already tracked keep their normal limit. A slot frees when its last session ends.
public final class ConnectionZone {
    public let name: String
    public let capacity: Int
    private var open: [ClientKey: Int32] = [:]
    /// Clients refused because the zone was full, for counters and the one-line warning.
    public private(set) var fullRefusals: UInt64 = 0
    /// True from the first refusal for lack of room until a slot frees: one log line per episode.
    private(set) var reportedFull = false

    public static let bytesPerAddress = 64

    public init(name: String, size: Int) {
        self.name = name
        capacity = max(1, size / ConnectionZone.bytesPerAddress)
    }

    public enum Admission: Equatable { case admitted, overLimit, zoneFull }

    public var trackedAddresses: Int { open.count }
    public func sessions(of key: ClientKey) -> Int { Int(open[key] ?? 0) }

    /// Counts one more session for `key` unless it already has `limit`. Precondition: loop thread.
    public func acquire(_ key: ClientKey, limit: Int) -> Admission {
        if let n = open[key] {
            guard Int(n) < limit else { return .overLimit }
            open[key] = n + 1
            return .admitted
        }
        guard open.count < capacity else {
            fullRefusals &+= 1
            return .zoneFull
        }
        open[key] = 1
        return .admitted
    }

    /// Returns `reportedFull`'s old value and sets it: the caller logs only on the first.
    func markReportedFull() -> Bool {
        defer { reportedFull = true }
        return reportedFull
    }

    public func release(_ key: ClientKey) {
        guard let n = open[key] else { return }
        if n <= 1 {
            open[key] = nil
            reportedFull = false
        } else {
            open[key] = n - 1
        }
    }
}

/// `limit_conn_rate`: new connections per client address, nginx's limit_req algorithm (a
/// leaky bucket counted in thousandths of a connection) applied at accept, so one client
/// cannot flood the accept path and the servers behind it.
///
/// At most `maxAddresses` addresses are tracked per server block. An address whose bucket
/// has fully drained is equivalent to a new one, so when the table is full drained entries
/// are swept out (at most once per second); if it is still full, an untracked address is
/// refused, as nginx's limit_req refuses when its zone cannot take another node.
public final class ConnectionRate {
    public let milliPerSecond: Int64
    public let burst: Int64
    /// `burst` in thousandths, saturated: the file may write any burst, and a bucket never
    /// holds more than this plus one connection, so no sum here can overflow.
    private let burstMilli: Int64
    public let maxAddresses: Int
    private struct Bucket { var excess: Int64; var last: UInt64 }
    private var buckets: [ClientKey: Bucket] = [:]
    private var lastSweep: UInt64 = 0

    public init(_ config: ConnectionRateConfig, maxAddresses: Int = 65_536) {
        milliPerSecond = Int64(config.milliPerSecond)
        burst = Int64(config.burst)
        burstMilli = burst > Int64.max / 4000 ? Int64.max / 4 : burst * 1000
        self.maxAddresses = maxAddresses
    }

    public var trackedAddresses: Int { buckets.count }

    /// Whether a new connection from `key` at `now` (monotonic ns) is within the rate; counts it if so.
    public func admit(_ key: ClientKey, now: UInt64) -> Bool {
        guard let b = buckets[key] else {
            if buckets.count >= maxAddresses {
                sweep(now: now)
                guard buckets.count < maxAddresses else { return false }
            }
            buckets[key] = Bucket(excess: 0, last: now)
            return true
        }
        // nginx's order: drain, add this connection, then floor at zero.
        let excess = max(0, b.excess - drained(since: b.last, now: now) + 1000)
        // A refused connection leaves the bucket as it was, as nginx's limit_req does.
        guard excess <= burstMilli else { return false }
        buckets[key] = Bucket(excess: excess, last: now)
        return true
    }

    private func drained(since last: UInt64, now: UInt64) -> Int64 {
        let ms = Int64(clamping: (now &- last) / 1_000_000)
        return ms > Int64.max / max(1, milliPerSecond) ? Int64.max / 2 : milliPerSecond * ms / 1000
    }

    private func sweep(now: UInt64) {
        guard now &- lastSweep >= 1_000_000_000 || lastSweep == 0 else { return }
        lastSweep = now
        // Dropped only when a new bucket would judge the next connection exactly as this one.
        buckets = buckets.filter { drained(since: $0.value.last, now: now) < $0.value.excess + 1000 }
    }
}

/// Everything a server block limits per client address, checked in this order at admission:
/// the rate of new connections, then each `limit_conn` zone.
public final class ClientLimits {
    public let zones: [(zone: ConnectionZone, limit: Int)]
    public let rate: ConnectionRate?

    public init(zones: [(zone: ConnectionZone, limit: Int)], rate: ConnectionRate?) {
        self.zones = zones
        self.rate = rate
    }

    public enum Refusal: Equatable { case rate, overLimit(zone: String), zoneFull(zone: String) }

    /// Admits `key` or says why not. On admission the client holds one count in every zone,
    /// given back by `release`. Precondition: loop thread.
    public func admit(_ key: ClientKey, now: UInt64) -> Refusal? {
        if let r = rate, !r.admit(key, now: now) { return .rate }
        for (i, z) in zones.enumerated() {
            let admission = z.zone.acquire(key, limit: z.limit)
            if admission == .admitted { continue }
            for earlier in zones[..<i] { earlier.zone.release(key) }
            return admission == .overLimit ? .overLimit(zone: z.zone.name) : .zoneFull(zone: z.zone.name)
        }
        return nil
    }

    /// Gives back the counts `admit` took. Called once per admitted session, when it ends.
    public func release(_ key: ClientKey) {
        for z in zones { z.zone.release(key) }
    }

    public var holdsCounts: Bool { !zones.isEmpty }
}
