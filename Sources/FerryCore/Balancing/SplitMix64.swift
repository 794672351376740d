// The randomness of the `random` methods. A small deterministic generator seeded by the
// caller, so tests assert exact sequences and two workers given different seeds do not
// make identical choices. Not for anything security-related.

/// SplitMix64 (Steele, Lea, Flood 2014): one add and a finalizer per value, full period 2^64.
public struct SplitMix64: Equatable, Sendable {
    public private(set) var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        return HashMix.fmix(state)
    }

    /// Uniform in 0..<bound using the high half of a 64x64 multiply (Lemire): no division,
    /// bias below 2^-40 for any bound a server list can have.
    public mutating func next(below bound: Int) -> Int {
        precondition(bound > 0, "bound must be positive")
        return Int(next().multipliedFullWidth(by: UInt64(bound)).high)
    }
}
