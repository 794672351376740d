// Servers laid end to end on a line, each as long as its weight: a number below the total
// weight names exactly one server. Shared by the non-consistent hash and `random`, which
// both draw a number and need "which server owns it" in O(log n) for 10,000 servers.

struct WeightedPoints: Equatable, Sendable {
    /// ends[i] = weight[0] + ... + weight[i]; server i owns [ends[i-1], ends[i]).
    private(set) var ends: [Int]

    init(_ peers: [PeerView]) { self.init(peers, weight: \.weight) }

    /// Laid out by another of the peers' weights (the non-consistent hash uses the configured one).
    init(_ peers: [PeerView], weight: KeyPath<PeerView, Int>) {
        var ends: [Int] = []
        ends.reserveCapacity(peers.count)
        var sum = 0
        for p in peers {
            sum += max(0, p[keyPath: weight])
            ends.append(sum)
        }
        self.ends = ends
    }

    var total: Int { ends.last ?? 0 }

    /// The server owning `point`, which must be in 0..<total.
    func owner(of point: Int) -> Int {
        var lo = 0
        var hi = ends.count - 1
        while lo < hi {
            let mid = (lo + hi) / 2
            if ends[mid] > point { hi = mid } else { lo = mid + 1 }
        }
        return lo
    }
}
