// `random` and `random two [least_conn]` (ngx_stream_upstream_random_module.c).
//
// `random`: a server drawn with probability proportional to its weight. Drawing is over all
// configured servers; an ineligible draw is redrawn, up to 20 times as in nginx, then round
// robin over the eligible servers, so a mostly-down upstream still answers in O(peers).
//
// `random two`: draw two different eligible servers the same way and keep the one with fewer
// active sessions relative to its weight (power of two choices). nginx's only method for
// `two` is least_conn and it is also the default ("random two" == "random two least_conn"),
// so `leastConn` changes nothing here; it is kept so the configuration round-trips. When only
// one eligible server can be drawn, that one is used.
//
// The generator is seeded by the caller: exact sequences in tests; the runtime draws a fresh
// seed at every start and reload (Entropy), as nginx's workers do.

public struct RandomTwo: Balancer {
    public static let maxDraws = 20

    public let two: Bool
    public private(set) var rng: SplitMix64
    private var line: WeightedPoints
    private var fallback: RoundRobin

    public init(peers: [PeerView], seed: UInt64) {
        self.init(peers: peers, seed: seed, two: false)
    }

    public init(peers: [PeerView], seed: UInt64, two: Bool) {
        self.two = two
        rng = SplitMix64(seed: seed)
        line = WeightedPoints(peers)
        fallback = RoundRobin(peers: peers, seed: seed)
    }

    public mutating func select(peers: [PeerView], client: ClientKey, isEligible: (Int) -> Bool) -> Int? {
        guard let first = draw(isEligible: isEligible) else {
            return fallback.select(peers: peers, isEligible: isEligible)
        }
        guard two, let second = draw(isEligible: { $0 != first && isEligible($0) }) else { return first }
        // nginx keeps the second unless the first is strictly less loaded.
        return LeastConn.lessLoaded(peers[first], than: peers[second]) ? first : second
    }

    private mutating func draw(isEligible: (Int) -> Bool) -> Int? {
        let total = line.total
        guard total > 0 else { return nil }
        for _ in 0..<RandomTwo.maxDraws {
            let i = line.owner(of: rng.next(below: total))
            if isEligible(i) { return i }
        }
        return nil
    }

    public mutating func peersChanged(_ peers: [PeerView]) {
        line = WeightedPoints(peers)
        fallback.peersChanged(peers)
    }
}
