// The ring behind `hash ... consistent` (see ConsistentHash, which decides how many points
// each server gets) and the two ways to make it: from scratch, or by swapping the points of
// a few servers. A ring is a pure function of each server's (identity, point count): both
// ways give the same sorted array, so where a client lands never depends on the order in
// which weights changed.
//
// Why swapping: an agent reporting `75%` every few seconds changes one server, and a full
// build hashes and sorts every point (1.6M at the cap: a quarter of a second, -O, on the
// event loop). Swapping hashes and sorts only that server's points and moves the rest once.

struct KetamaRing: Equatable {
    /// Sorted; each entry is (point << 32) | server index, so one integer sort orders the
    /// ring and equal points of two servers keep one order (lower index first) however the
    /// ring was made.
    private(set) var entries: [UInt64]

    /// `counts[i]` points for server i (0: not on the ring).
    init(identities: [UInt64], counts: [Int]) {
        precondition(identities.count == counts.count, "one count per server")
        precondition(identities.count <= Int(UInt32.max), "server index must fit the ring entry")
        var entries: [UInt64] = []
        entries.reserveCapacity(counts.reduce(0, +))
        for i in identities.indices {
            KetamaRing.appendPoints(of: identities[i], index: i, count: counts[i], to: &entries)
        }
        entries.sort()
        self.entries = entries
    }

    /// Replaces the points of `servers` (distinct indices) with `counts[i]` points each for
    /// `identities[i]`; every other server's points must already match its count. Costs one
    /// hash per new point, a sort of the new points only, and two passes over the ring.
    mutating func replace(servers: [Int], identities: [UInt64], counts: [Int]) {
        precondition(identities.count == counts.count, "one count per server")
        var added: [UInt64] = []
        added.reserveCapacity(servers.reduce(0) { $0 + counts[$1] })
        var replaced = [Bool](repeating: false, count: identities.count)
        for i in servers {
            replaced[i] = true
            KetamaRing.appendPoints(of: identities[i], index: i, count: counts[i], to: &added)
        }
        added.sort()

        // Squeeze out the replaced servers' old points, keeping the rest in order.
        var kept = 0
        entries.withUnsafeMutableBufferPointer { e in
            replaced.withUnsafeBufferPointer { r in
                for at in 0..<e.count {
                    let v = e[at]
                    if !r[Int(truncatingIfNeeded: v & 0xFFFF_FFFF)] { e[kept] = v; kept += 1 }
                }
            }
        }
        let total = kept + added.count
        if total > entries.count {
            entries.append(contentsOf: repeatElement(0, count: total - entries.count))
        } else {
            entries.removeLast(entries.count - total)
        }
        // Merge from the back, so each kept entry moves once and never over one not yet read:
        // the write position is always past the next kept entry while new points remain.
        entries.withUnsafeMutableBufferPointer { e in
            added.withUnsafeBufferPointer { a in
                var k = kept - 1
                var n = a.count - 1
                var w = total - 1
                while n >= 0 {
                    if k >= 0 && e[k] > a[n] {
                        e[w] = e[k]; k -= 1
                    } else {
                        e[w] = a[n]; n -= 1
                    }
                    w -= 1
                }
            }
        }
    }

    /// A server's first `count` points: point n hashes (identity, n), so a server whose count
    /// shrinks keeps a prefix of its points, and only the clients on the dropped ones move.
    private static func appendPoints(of identity: UInt64, index: Int, count: Int, to entries: inout [UInt64]) {
        for n in 0..<max(0, count) {
            let point = HashMix.combine(identity, UInt64(n)) >> 32
            entries.append(point << 32 | UInt64(index))
        }
    }
}
