// nginx's smooth weighted round robin (ngx_stream_upstream_get_peer): each attempt adds every
// eligible server's weight to its running `current`, picks the largest, and takes the total
// back from the winner. Weights 5,1,1 give a a b a c a a: the heavy server is spread through
// the cycle instead of taking five sessions in a row.
//
// Differs from nginx in one way: nginx also lowers an "effective weight" after failures and
// lets it creep back. ferry keeps failure handling in Eligibility (a failed server is out,
// then trialled), so the weights here are exactly the configured/runtime ones.

public struct RoundRobin: Balancer {
    /// Per server running score. Ineligible servers are not touched, so a server that comes
    /// back resumes where it was and the others' rhythm is undisturbed.
    private var current: [Int]

    public init(peers: [PeerView], seed: UInt64) {
        current = Array(repeating: 0, count: peers.count)
    }

    public mutating func select(peers: [PeerView], client: ClientKey, isEligible: (Int) -> Bool) -> Int? {
        select(peers: peers, isEligible: isEligible)
    }

    /// The method without a client, for methods that fall back to round robin.
    public mutating func select(peers: [PeerView], isEligible: (Int) -> Bool) -> Int? {
        selectAmong(peers: peers, from: 0, members: isEligible)
    }

    /// Smooth WRR among a subset the caller already filtered (least_conn's tied servers).
    /// `members(i)` must imply eligibility.
    mutating func selectAmong(peers: [PeerView], from start: Int, members: (Int) -> Bool) -> Int? {
        var best = -1
        var total = 0
        for i in start..<peers.count where members(i) {
            current[i] += peers[i].weight
            total += peers[i].weight
            if best < 0 || current[i] > current[best] { best = i }
        }
        guard best >= 0 else { return nil }
        current[best] -= total
        return best
    }

    public mutating func peersChanged(_ peers: [PeerView]) {
        // A weight change keeps the scores (the algorithm converges from any state); a
        // different server list means the indices mean other servers, so start afresh.
        if peers.count != current.count { current = Array(repeating: 0, count: peers.count) }
    }
}
