// Rendezvous (highest random weight) hashing: every server scores the client and the highest
// score wins. Removing a server moves exactly its own clients, with no build step and no
// memory, but every selection costs one hash per server. ferry uses it as ConsistentHash's
// last resort (see there); it is kept as a full Balancer so it can be measured against ketama
// (BalancingConsistentHashTests).
//
// Weighted by the logarithm method (Schindelhauer & Schomaker): score = -weight / ln(u),
// u uniform in (0, 1) from hash(client, server identity), which gives each server a share
// proportional to its weight.

import Glibc

public struct Rendezvous: Balancer {
    public init(peers: [PeerView], seed: UInt64) {}

    public mutating func select(peers: [PeerView], client: ClientKey, isEligible: (Int) -> Bool) -> Int? {
        Rendezvous.winner(peers: peers, clientHash: HashMix.client(client), isEligible: isEligible)
    }

    static func winner(peers: [PeerView], clientHash: UInt64, isEligible: (Int) -> Bool) -> Int? {
        var best = -1
        var bestScore = -Double.infinity
        for i in peers.indices where isEligible(i) {
            let s = score(clientHash: clientHash, identity: peers[i].identity, weight: peers[i].weight)
            if best < 0 || s > bestScore { best = i; bestScore = s }
        }
        return best < 0 ? nil : best
    }

    @inline(__always)
    static func score(clientHash: UInt64, identity: UInt64, weight: Int) -> Double {
        let h = HashMix.combine(clientHash, identity)
        // 53 random bits, shifted off zero so ln(u) is finite and negative.
        let u = (Double(h >> 11) + 0.5) * 0x1p-53
        return -Double(weight) / log(u)
    }
}
