// `hash $remote_addr consistent`: ketama, as nginx builds it (ngx_stream_upstream_hash_module:
// points on a 32-bit ring per unit of weight; a client goes to the first point at or after
// its hash). A server that leaves (down, drained, failed, or removed on reload when servers
// carry a stable `identity`) takes only its own arcs with it: its clients move to the next
// point, everyone else stays.
//
// Why ketama and not rendezvous (measured in BalancingConsistentHashTests, 50,000 clients,
// one of N servers removed):
//
//     method      N  moved   ideal  max/min share   (1,000 points per weight unit)
//     ketama      3  33.7%   33.3%  1.07
//     rendezvous  3  33.5%   33.3%  1.01
//     ketama      5  19.8%   20.0%  1.07
//     rendezvous  5  19.9%   20.0%  1.02
//     ketama     10   9.6%   10.0%  1.09
//     rendezvous 10   9.8%   10.0%  1.04
//     10,000 servers, debug build: ketama build 4-6 s (1.6M points), select ~1.3 us;
//                                  rendezvous no build, select ~0.8-1 ms
//
// Both move only the departed server's clients (about 1/N). Rendezvous balances slightly
// better, but costs one hash and one logarithm per server on every selection, which is
// 10,000 of them per connect for a 10,000-server upstream; ketama costs one binary search.
// Ketama's weakness is balance with few points per server (nginx's 160 gives max/min up to
// ~1.25-1.5 for 4-10 servers), so ferry uses 1,000 points per unit of weight, capped at
// `maxPoints` for the whole ring: a 10,000-server upstream still gets nginx's 160 each.
// The cap shrinks every server's point list to a prefix of itself, so growing a capped ring
// by one server moves only the few clients on the dropped tail points.
// Maglev (not measured) selects in O(1) and balances best, but moves more than 1/N and has
// no cheap answer to "this server is ineligible right now" short of rebuilding its table.
//
// Runtime weights (an agent's `75%` every few seconds, admin `set server ... weight`) reach
// the ring through peersChanged, on the event loop. Rebuilding the ring for each one hashed
// and sorted every point: 70-80 ms for 5 servers at weight 100, 190-290 ms at the 1.6M cap
// (20 x 256 or 10,000 x 1), -O, bench/chash-rebuild.sh. Only the changed servers' points are
// swapped now (KetamaRing): medians of 6-9 ms, 6-12 ms and 1.4-1.7 ms for those rings. The ring
// stays exactly what a fresh build of the current weights gives (see `counts`).
//
// An ineligible server: walk on to the next points (nginx walks 20). If every one of those
// belongs to an ineligible server (most of the upstream is down), fall back to rendezvous
// among the eligible servers rather than nginx's round robin, so the client is still sticky.

public struct ConsistentHash: Balancer {
    /// Points per unit of weight while the ring is under `maxPoints` (nginx: 160).
    public static let pointsPerWeight = 1000
    /// Ring points visited before giving up on the ring (nginx: 20).
    public static let maxWalk = 20
    /// Cap on ring size (8 bytes per point): beyond it the points per unit of weight shrink,
    /// giving 10,000 servers at weight 1 nginx's 160 points each (12.8 MB) and stopping a
    /// large upstream with large weights from taking gigabytes.
    public static let maxPoints = 1_600_000

    /// The ring, a pure function of `identities` and `counts` (see KetamaRing).
    private var ring: KetamaRing
    /// What the ring was made from, to see which servers a weight change touched.
    private var identities: [UInt64]
    private var counts: [Int]

    public init(peers: [PeerView], seed: UInt64) {
        identities = peers.map(\.identity)
        counts = ConsistentHash.counts(peers)
        ring = KetamaRing(identities: identities, counts: counts)
    }

    /// The ring a fresh build gives for `peers` (entries as in KetamaRing).
    public static func build(_ peers: [PeerView]) -> [UInt64] {
        KetamaRing(identities: peers.map(\.identity), counts: counts(peers)).entries
    }

    /// The ring's entries, for tests that compare it with a fresh build.
    var entries: [UInt64] { ring.entries }

    /// Points per server. Sized for a basis: the configured total weight, or, once runtime
    /// weights add up to more (weights raised above the file's), the configured total doubled
    /// until it covers them. While the basis holds still, one server's change changes only its
    /// own count, and the ring swaps just its points. Sized by the runtime total itself, a
    /// capped ring (20 x 256) would change every server's count on every change and be rebuilt
    /// each time: 500 servers whose agents each raised the weight once cost 170 ms per change
    /// and a reload carrying those weights 96 s of stalled relaying. With the doubling basis a
    /// rebuild happens only when the total crosses a power of two times the configured one.
    /// The count depends on the current and configured weights alone, not on history, so a
    /// restarted ferry with the same weights places every client where the running one did,
    /// and the ring stays under `maxPoints` (runtime total <= basis).
    static func counts(_ peers: [PeerView]) -> [Int] {
        let runtime = peers.reduce(0) { $0 + max(0, $1.weight) }
        let configured = peers.reduce(0) { $0 + max(0, $1.configWeight) }
        guard runtime > 0 else { return Array(repeating: 0, count: peers.count) }
        var basis = max(configured, 1)
        while basis < runtime { basis *= 2 }   // at most ~60 doublings of a positive Int
        let perWeight = min(pointsPerWeight, maxPoints / basis)
        // More weight units than maxPoints: a unit cannot have a point of its own, so each
        // server gets its share of the ring instead (at least one point, so it stays reachable);
        // the ring then holds at most maxPoints + one per server.
        return peers.map { p in
            guard p.weight > 0 else { return 0 }
            return perWeight > 0 ? p.weight * perWeight : max(1, p.weight * maxPoints / basis)
        }
    }

    public var pointCount: Int { ring.entries.count }

    public mutating func select(peers: [PeerView], client: ClientKey, isEligible: (Int) -> Bool) -> Int? {
        let h = HashMix.client(client)
        let ring = self.ring.entries
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

    /// Cold path (admin, agent, reload), but on the event loop: a weight change of a few
    /// servers swaps their points instead of rebuilding the ring.
    public mutating func peersChanged(_ peers: [PeerView]) {
        let newIdentities = peers.map(\.identity)
        let newCounts = ConsistentHash.counts(peers)
        defer { identities = newIdentities; counts = newCounts }
        guard peers.count == identities.count else {
            ring = KetamaRing(identities: newIdentities, counts: newCounts)
            return
        }
        var changed: [Int] = []
        var newPoints = 0
        for i in peers.indices where newIdentities[i] != identities[i] || newCounts[i] != counts[i] {
            changed.append(i)
            newPoints += newCounts[i]
        }
        guard !changed.isEmpty else { return }
        // Both ways give the same ring; swapping is cheaper until most points are new (a
        // capped ring whose points per weight moved, a small upstream changed at once).
        if newPoints > ring.entries.count / 2 {
            ring = KetamaRing(identities: newIdentities, counts: newCounts)
        } else {
            ring.replace(servers: changed, identities: newIdentities, counts: newCounts)
        }
    }
}
