// nginx's smooth weighted round robin (ngx_stream_upstream_get_peer): each attempt adds every
// eligible server's weight to its running `current`, picks the largest, and takes the total
// back from the winner. Weights 5,1,1 give a a b a c a a: the heavy server is spread through
// the cycle instead of taking five sessions in a row.
//
// Failed connects lower a server's weight here for a while, as nginx's "effective weight"
// does: each failure takes weight/max_fails off (never below 0), and every attempt that
// counts the server adds 1 back until the weight is whole again. So a server back from
// fail_timeout (default max_fails=1: its weight fell to 0) is eased in over `weight`
// attempts instead of taking its full share, plus the backlog of `current`, at once.
// Whether a server may be chosen at all stays in Eligibility; this only shapes the share.
// The deficits live here with the rotation, so a rebuild (a reload that changed the
// upstream, `add server`, a backup change) starts both afresh while Eligibility's failure
// counts carry over; an unchanged upstream keeps both across a reload (Scheduler).

public struct RoundRobin: Balancer {
    /// Per server running score. Ineligible servers are not touched, so a server that comes
    /// back resumes where it was and the others' rhythm is undisturbed.
    private var current: [Int]
    /// How much of each server's weight recent failures still take off (nginx's weight minus
    /// effective_weight). Kept as a deficit rather than an effective weight so a runtime
    /// weight change (admin, agent) keeps the penalty without knowing the old weight.
    private var deficit: [Int]

    public init(peers: [PeerView], seed: UInt64) {
        current = Array(repeating: 0, count: peers.count)
        deficit = current
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
            let weight = max(0, peers[i].weight - deficit[i])
            current[i] += weight
            total += weight
            // nginx restores one unit per attempt that counted the server, after using it.
            if deficit[i] > 0 { deficit[i] -= 1 }
            if best < 0 || current[i] > current[best] { best = i }
        }
        guard best >= 0 else { return nil }
        current[best] -= total
        return best
    }

    public mutating func connectFailed(_ index: Int, penalty: Int, peers: [PeerView]) {
        deficit[index] = min(peers[index].weight, deficit[index] + penalty)
    }

    public mutating func peersChanged(_ peers: [PeerView]) {
        // A weight change keeps the scores (the algorithm converges from any state); a
        // different server list means the indices mean other servers, so start afresh.
        if peers.count != current.count {
            current = Array(repeating: 0, count: peers.count)
            deficit = current
        }
    }
}
