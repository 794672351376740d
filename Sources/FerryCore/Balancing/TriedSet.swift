// The servers one session has already attempted, so a retry never lands on the same server
// twice. A value the relay keeps per session: the first 64 servers live inline (no heap
// allocation for any ordinary upstream); larger upstreams spill into an array that is
// allocated only when a server past index 63 is actually inserted.

public struct TriedSet: Equatable, Sendable {
    private var inline: UInt64 = 0
    private var spill: [UInt64] = []

    public init() {}

    public func contains(_ index: Int) -> Bool {
        precondition(index >= 0, "peer index must be non-negative")
        if index < 64 { return inline & (1 << UInt64(index)) != 0 }
        let word = index / 64 - 1
        guard word < spill.count else { return false }
        return spill[word] & (1 << UInt64(index % 64)) != 0
    }

    public mutating func insert(_ index: Int) {
        precondition(index >= 0, "peer index must be non-negative")
        if index < 64 { inline |= 1 << UInt64(index); return }
        let word = index / 64 - 1
        if word >= spill.count { spill.append(contentsOf: repeatElement(0, count: word - spill.count + 1)) }
        spill[word] |= 1 << UInt64(index % 64)
    }

    /// The same servers under a reload's renumbering: `map[old]` is a server's index in the new
    /// upstream, nil for one it no longer has (dropped here: it cannot be selected there). Cold path.
    public func remapped(_ map: [Int?]) -> TriedSet {
        var out = TriedSet()
        for (i, j) in map.enumerated() where contains(i) {
            if let j { out.insert(j) }
        }
        return out
    }

    public var count: Int { spill.reduce(inline.nonzeroBitCount) { $0 + $1.nonzeroBitCount } }
    public var isEmpty: Bool { count == 0 }

    /// Equal when they hold the same indices, however the spill array grew.
    public static func == (a: TriedSet, b: TriedSet) -> Bool {
        guard a.inline == b.inline else { return false }
        let n = max(a.spill.count, b.spill.count)
        for w in 0..<n {
            let x = w < a.spill.count ? a.spill[w] : 0
            let y = w < b.spill.count ? b.spill[w] : 0
            if x != y { return false }
        }
        return true
    }
}
