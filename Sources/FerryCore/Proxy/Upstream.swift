/// An upstream at run time: its servers' resolved addresses and names beside the scheduler
/// that chooses among them. Shared by every listener that proxies to it.
public final class Upstream {
    public let name: String
    public var scheduler: Scheduler
    public let addresses: [SocketAddress]
    public let serverNames: [String]
    public let config: UpstreamConfig
    /// Counters per server, indexed like the scheduler's peers.
    public var stats: [ServerStats]
    /// The servers' addresses as text, made once for logs and metrics.
    public private(set) lazy var addressTexts: [String] = addresses.map(\.description)

    public init(_ config: UpstreamConfig, seed: UInt64) {
        self.config = config
        name = config.name
        addresses = config.servers.map { SocketAddress($0.address.endpoint) }
        serverNames = config.servers.map(\.name)
        let peers = config.servers.map {
            var p = PeerState(weight: $0.weight, maxConns: $0.maxConns, maxFails: $0.maxFails,
                              failTimeoutNanos: $0.failTimeout.nanoseconds, backup: $0.backup, down: $0.down)
            p.identity = HashMix.name($0.name)
            return p
        }
        scheduler = Scheduler(method: config.method, peers: peers, seed: seed)
        stats = Array(repeating: ServerStats(), count: peers.count)
    }

    /// `proxy_pass host:port;` without an upstream block: a one-server upstream named by the address.
    public convenience init(single address: ServerAddress, location: SourceLocation) {
        var u = UpstreamConfig(name: address.written, location: location)
        u.servers = [UpstreamServerConfig(address: address, name: address.written, location: location)]
        self.init(u, seed: 0)
    }
}

/// What a listener's sessions need from its `server { }` block, with times in nanoseconds.
public final class Route {
    public let upstream: Upstream
    public let connectTimeout: UInt64
    public let idleTimeout: UInt64
    public let nextUpstream: Bool
    public let nextUpstreamTries: Int
    public let nextUpstreamTimeout: UInt64
    public let access: AccessControl

    public init(_ c: ListenerConfig, upstream: Upstream) {
        self.upstream = upstream
        connectTimeout = c.connectTimeout.nanoseconds
        idleTimeout = c.idleTimeout.nanoseconds
        nextUpstream = c.nextUpstream
        nextUpstreamTries = c.nextUpstreamTries
        nextUpstreamTimeout = c.nextUpstreamTimeout.nanoseconds
        access = AccessControl(c.access)
    }
}
