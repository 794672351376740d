// `hash $remote_addr` without `consistent`, and `ip_hash`: the client's hash picks a point
// on the servers' weights laid end to end (nginx ngx_stream_upstream_get_hash_peer). The map
// covers every configured server, eligible or not, so a server going down moves only its own
// clients; a change of the server list remaps most clients, which is what `consistent` is for.
//
// The map is laid out with the configured weights and never moves with runtime ones: weight 0
// (the admin socket's drain) then moves only that server's clients, as `state drain` does,
// and an agent adjusting weights every few seconds does not reshuffle every client each time.
// nginx has no runtime weights, and HAProxy's map-based hash refuses any but 0% and 100%.
// Runtime weights still count as 0 or not (Eligibility) and in the round-robin fallback.
//
// When the chosen server cannot take the session, nginx rehashes the key (up to 20 times)
// and then falls back to round robin; ferry does the same, so a client of a failed server
// lands on a server chosen by its own hash (sticky while the failure lasts) in almost all
// cases and is never refused while any eligible server exists.

public struct SourceHash: Balancer {
    /// nginx's bound: after this many rehashes, round robin over the eligible servers.
    public static let maxRehashes = 20

    /// What of the client's address is hashed.
    public enum Key: Sendable {
        /// The whole address (`hash $remote_addr`).
        case address
        /// nginx's ip_hash: the first three octets of an IPv4 address, so a client whose
        /// provider rotates the last octet keeps its server; IPv6 whole.
        case ipv4Network24
    }

    private let key: Key
    private var line: WeightedPoints
    private var fallback: RoundRobin

    public init(peers: [PeerView], seed: UInt64) {
        self.init(peers: peers, seed: seed, key: .address)
    }

    public init(peers: [PeerView], seed: UInt64, key: Key) {
        self.key = key
        line = WeightedPoints(peers, weight: \.configWeight)
        fallback = RoundRobin(peers: peers, seed: seed)
    }

    public mutating func select(peers: [PeerView], client: ClientKey, isEligible: (Int) -> Bool) -> Int? {
        let total = line.total
        if total > 0 {
            let client = key == .ipv4Network24 ? client.ipv4Network24 : client
            for n in 0...SourceHash.maxRehashes {
                let h = HashMix.client(client, rehash: UInt64(n))
                let i = line.owner(of: Int(h % UInt64(total)))
                if isEligible(i) { return i }
            }
        }
        return fallback.select(peers: peers, isEligible: isEligible)
    }

    public mutating func peersChanged(_ peers: [PeerView]) {
        // Only runtime weights or identities change here; the map keeps the configured ones.
        fallback.peersChanged(peers)
    }
}
