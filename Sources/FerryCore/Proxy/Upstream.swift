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
    /// Per-client limits (limit_conn, limit_conn_rate); nil when the block sets none.
    public let limits: ClientLimits?
    /// `proxy_protocol on`: the header version sent to servers; nil = off.
    public let sendProxyProtocol: ProxyHeader.Version?
    /// `proxy_protocol_timeout` for `listen ... proxy_protocol` clients.
    public let proxyProtocolTimeout: UInt64
    /// Options for server-side sockets; `.off`/0 cost nothing per connect.
    public let serverKeepalive: KeepaliveConfig
    public let userTimeoutMilliseconds: Int

    public init(_ c: ListenerConfig, upstream: Upstream, limits: ClientLimits? = nil) {
        self.limits = limits
        sendProxyProtocol = c.sendProxyProtocol ? ProxyHeader.Version(rawValue: c.proxyProtocolVersion) ?? .v1 : nil
        proxyProtocolTimeout = c.proxyProtocolTimeout.nanoseconds
        serverKeepalive = c.serverKeepalive
        userTimeoutMilliseconds = Int(c.userTimeout.milliseconds)
        self.upstream = upstream
        connectTimeout = c.connectTimeout.nanoseconds
        idleTimeout = c.idleTimeout.nanoseconds
        nextUpstream = c.nextUpstream
        nextUpstreamTries = c.nextUpstreamTries
        nextUpstreamTimeout = c.nextUpstreamTimeout.nanoseconds
        access = AccessControl(c.access)
    }
}
