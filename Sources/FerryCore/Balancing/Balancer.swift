// The one protocol every balancing method implements. Methods are pure: they see
// weights and active-session counts, never sockets or the clock, so they are tested
// with exact sequences. Which servers may be chosen at all (down, draining, full,
// failed, backup) is decided once, by `Eligibility`, and handed in as `isEligible`.

/// What a method may know about one server.
public struct PeerView: Equatable, Sendable {
    /// Effective weight for new sessions (config weight, possibly changed at runtime). Never 0
    /// for an eligible peer: weight 0 means "take no new sessions" and is filtered by Eligibility.
    public var weight: Int
    /// Sessions currently established or connecting to this server.
    public var active: Int
    /// Stable identity for consistent hashing; methods that do not hash ignore it.
    /// Defaults to 0; the Scheduler fills in `PeerState.identity` or the position.
    public var identity: UInt64 = 0
    /// The weight the configuration gave, for the non-consistent hash's map, which must not
    /// move with runtime weights (see SourceHash). Defaults to `weight`.
    public var configWeight: Int
    public init(weight: Int, active: Int) { self.weight = weight; self.active = active; configWeight = weight }
    public init(weight: Int, active: Int, identity: UInt64, configWeight: Int? = nil) {
        self.weight = weight; self.active = active; self.identity = identity
        self.configWeight = configWeight ?? weight
    }
}

/// A client's source address as a fixed-size key: no allocation per connection.
/// IPv4 is stored IPv4-mapped (::ffff:a.b.c.d) so both families share one keyspace.
public struct ClientKey: Equatable, Hashable, Sendable {
    public var high: UInt64
    public var low: UInt64
    public init(high: UInt64, low: UInt64) { self.high = high; self.low = low }
    public init(ipv4 a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8) {
        high = 0
        low = 0x0000_FFFF_0000_0000 | UInt64(a) << 24 | UInt64(b) << 16 | UInt64(c) << 8 | UInt64(d)
    }
    /// The key with an IPv4 address's last octet cleared (nginx's ip_hash hashes three);
    /// IPv6 and other keys unchanged.
    public var ipv4Network24: ClientKey {
        guard high == 0, low >> 32 == 0x0000_FFFF else { return self }
        return ClientKey(high: 0, low: low & ~0xFF)
    }

    /// Unix-socket clients and unknown families all hash alike.
    public static let none = ClientKey(high: 0, low: 0)
}

public protocol Balancer {
    /// Build phase: called once with the upstream's servers in configuration order.
    init(peers: [PeerView], seed: UInt64)
    /// Select phase: one attempt of one session. Returns an index with `isEligible(index)`
    /// true, or nil when no eligible server exists. Must terminate in O(peers) steps.
    mutating func select(peers: [PeerView], client: ClientKey, isEligible: (Int) -> Bool) -> Int?
    /// Feedback phase: weights or the server list changed (admin, agent, reload).
    mutating func peersChanged(_ peers: [PeerView])
    /// Feedback phase: a connect to `index` failed and passive failure accounting is on.
    /// `penalty` is the weight nginx takes off for it (weight / max_fails); methods that do
    /// not shape shares by recent failures ignore it.
    mutating func connectFailed(_ index: Int, penalty: Int, peers: [PeerView])
}

extension Balancer {
    public mutating func peersChanged(_ peers: [PeerView]) {}
    public mutating func connectFailed(_ index: Int, penalty: Int, peers: [PeerView]) {}
}
