// `hash $remote_addr consistent`: ketama, as nginx builds it (ngx_stream_upstream_hash_module,
// 160 points on a 32-bit ring per unit of weight, a client goes to the first point at or
// after its hash). A server that leaves (down, drained, failed, or removed on reload when
// servers carry a stable `identity`) takes only its own arcs with it: its clients move to
// the next point, everyone else stays.
//
// Why ketama and not rendezvous or Maglev (measured in BalancingConsistentHashTests, numbers
// in the README/report): both ketama and rendezvous move exactly the departed server's
// clients (about 1/N) when one of N leaves; rendezvous balances slightly better, but costs
// one hash per server on every selection (10,000 hashes per connect for a 10,000-server
// upstream) where ketama costs one binary search, and ketama is what nginx users already
// run. Maglev balances best and selects in O(1) but moves somewhat more than 1/N and has
// no cheap answer for "this server is temporarily ineligible" short of rebuilding the table.
// Ketama's weakness, the memory of its ring, is bounded below (`maxPoints`).
//
// An ineligible server: walk on to the next points (nginx walks 20). If every one of those
// belongs to an ineligible server (most of the upstream is down), fall back to rendezvous
// among the eligible servers rather than nginx's round robin, so the client is still sticky.

public struct ConsistentHash: Balancer {
    /// nginx's points per unit of weight.
    public static let pointsPerWeight = 160
    /// Ring points visited before giving up on the ring (nginx: 20).
    public static let maxWalk = 20
    /// Cap on ring size (8 bytes per point): beyond it the points per unit of weight shrink,
    /// keeping 10,000 servers at weight 1 at 160 points each (12.8 MB) while stopping a
    /// large upstream with large weights from taking gigabytes.
    public static let maxPoints = 1_600_000

    /// Sorted; each entry is (point << 32) | server index, so one integer sort builds the ring.
    private var ring: [UInt64]

    public init(peers: [PeerView], seed: UInt64) {
        ring = ConsistentHash.build(peers)
    }

    public static func build(_ peers: [PeerView]) -> [UInt64] {
        precondition(peers.count <= Int(UInt32.max), "server index must fit the ring entry")
        let totalWeight = peers.reduce(0) { $0 + max(0, $1.weight) }
        guard totalWeight > 0 else { return [] }
        let perWeight = max(1, min(pointsPerWeight, maxPoints / totalWeight))
        var ring: [UInt64] = []
        ring.reserveCapacity(totalWeight * perWeight)
        for (i, p) in peers.enumerated() where p.weight > 0 {
            for n in 0..<(p.weight * perWeight) {
                let point = HashMix.combine(p.identity, UInt64(n)) >> 32
                ring.append(point << 32 | UInt64(i))
            }
        }
        ring.sort()
        return ring
    }

    public var pointCount: Int { ring.count }

    public mutating func select(peers: [PeerView], client: ClientKey, isEligible: (Int) -> Bool) -> Int? {
        let h = HashMix.client(client)
        if !ring.isEmpty {
            var at = ConsistentHash.firstPoint(atOrAfter: h >> 32, in: ring)
            for _ in 0..<min(ConsistentHash.maxWalk, ring.count) {
                let i = Int(truncatingIfNeeded: ring[at] & 0xFFFF_FFFF)
                if isEligible(i) { return i }
                at = at + 1 == ring.count ? 0 : at + 1
            }
        }
        return Rendezvous.winner(peers: peers, clientHash: h, isEligible: isEligible)
    }

    /// Index of the first entry whose point is >= `point`, wrapping past the end to 0.
    static func firstPoint(atOrAfter point: UInt64, in ring: [UInt64]) -> Int {
        let key = point << 32
        var lo = 0
        var hi = ring.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if ring[mid] < key { lo = mid + 1 } else { hi = mid }
        }
        return lo == ring.count ? 0 : lo
    }

    public mutating func peersChanged(_ peers: [PeerView]) {
        ring = ConsistentHash.build(peers)
    }
}
