// Weighted least connections as nginx does it (ngx_stream_upstream_least_conn_module.c): the
// eligible server with the smallest active/weight wins, compared by cross-multiplication so
// no division or rounding is involved; when several tie, smooth weighted round robin among
// just the tied ones decides, so equal servers with no sessions are still taken in turn
// (and weighted turn) rather than always the first. Recent failures lower a server's share of
// that tie-break as they do in round robin (nginx's effective weight).

public struct LeastConn: Balancer {
    private var tieBreak: RoundRobin

    public init(peers: [PeerView], seed: UInt64) {
        tieBreak = RoundRobin(peers: peers, seed: seed)
    }

    public mutating func select(peers: [PeerView], client: ClientKey, isEligible: (Int) -> Bool) -> Int? {
        var best = -1
        var tied = false
        for i in peers.indices where isEligible(i) {
            if best < 0 || LeastConn.lessLoaded(peers[i], than: peers[best]) {
                best = i
                tied = false
            } else if !LeastConn.lessLoaded(peers[best], than: peers[i]) {
                tied = true
            }
        }
        guard best >= 0 else { return nil }
        guard tied else { return best }
        let b = peers[best]
        // Every tied server is at or after the first one found, as in nginx.
        return tieBreak.selectAmong(peers: peers, from: best) { i in
            isEligible(i) && peers[i].active * b.weight == b.active * peers[i].weight
        }
    }

    /// a.active/a.weight < b.active/b.weight without dividing. Weights of eligible servers are > 0.
    @inline(__always)
    static func lessLoaded(_ a: PeerView, than b: PeerView) -> Bool {
        a.active * b.weight < b.active * a.weight
    }

    public mutating func peersChanged(_ peers: [PeerView]) {
        tieBreak.peersChanged(peers)
    }

    /// As in nginx, a failure lowers the server's share of the tie-break only; the load
    /// comparison itself uses the full weight.
    public mutating func connectFailed(_ index: Int, penalty: Int, peers: [PeerView]) {
        tieBreak.connectFailed(index, penalty: penalty, peers: peers)
    }
}
