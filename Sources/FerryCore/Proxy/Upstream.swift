/// An upstream at run time: its servers' resolved addresses and names beside the scheduler
/// that chooses among them. Shared by every listener that proxies to it.
///
/// Servers are only ever appended (`add server`); `del server` leaves a tombstone so that
/// the indices live sessions hold, and the `#ID`s operators use, never shift.
public final class Upstream {
    public let name: String
    /// HAProxy's proxy id (`#ID` in `backend/server` names): config order, counted together
    /// with the frontends so one id names one thing.
    public internal(set) var id: Int = 0
    public var scheduler: Scheduler
    public private(set) var addresses: [SocketAddress]
    /// Each server's address as written in the configuration (or in `add server`).
    public private(set) var writtenAddresses: [String]
    public private(set) var serverNames: [String]
    /// Deleted with `del server`; never selected (configDown) and hidden from listings.
    public private(set) var removed: [Bool]
    public let config: UpstreamConfig
    /// Counters per server, indexed like the scheduler's peers.
    public var stats: [ServerStats]
    /// The upstream's own counters, which outlive its servers; a reload hands them on.
    public internal(set) var totals = UpstreamTotals()
    /// Set when a reload replaced or removed this object. The sessions still on it are on
    /// servers the file dropped, on an upstream the file dropped, or connecting to an address a
    /// server no longer has (the others moved, see Runtime+Reload); one of them whose connect
    /// fails retries in the current upstream of the same name, if there is one.
    var retired = false
    /// Servers that a session skipped because their address family differs from its
    /// `proxy_bind`, once that was logged (Runtime.localBindFailed). The mismatch lasts as long
    /// as the server, so a line per session would repeat one fact at the session rate; one line
    /// per server says it. A deleted server's index is never reused: a server added again
    /// starts a new episode with its own line.
    var otherFamilyLogged = Set<Int>()
    /// While no server can take a new client (nginx's "no live upstreams"): since when, and the
    /// clients turned away since. nginx logs a line per client; a reconnect storm against a
    /// dead upstream would bury everything else, so ferry logs the episode's start and end.
    var noLiveServers: (since: UInt64, clients: UInt64)? = nil
    /// Monotonic time (ns) of each server's last state change, for `lastchg`.
    public var lastChange: [UInt64]
    /// The servers' addresses as text, made once for logs and metrics.
    public private(set) var addressTexts: [String]

    /// `continuing`: the upstream of the same name before a reload, whose balancing state the
    /// new one may go on from (Scheduler.init(continuing:)).
    public init(_ config: UpstreamConfig, seed: UInt64, now: UInt64 = 0, continuing previous: Upstream? = nil) {
        self.config = config
        name = config.name
        addresses = config.servers.map { SocketAddress($0.address.endpoint) }
        addressTexts = addresses.map(\.description)
        writtenAddresses = config.servers.map(\.address.written)
        serverNames = config.servers.map(\.name)
        removed = Array(repeating: false, count: config.servers.count)
        scheduler = Scheduler(method: config.method, peers: config.servers.map(Upstream.peer), seed: seed,
                              continuing: previous?.scheduler)
        stats = Array(repeating: ServerStats(), count: config.servers.count)
        lastChange = Array(repeating: now, count: config.servers.count)
    }

    /// The upstream `proxy_pass host:port;` stands for: named as written, a server per address.
    public convenience init(implicit name: String, _ addresses: [ServerAddress], location: SourceLocation) {
        var u = UpstreamConfig(name: name, location: location)
        u.servers = addresses.map { UpstreamServerConfig(address: $0, name: $0.written, location: location) }
        self.init(u, seed: 0)
    }

    static func peer(_ s: UpstreamServerConfig) -> PeerState {
        var p = PeerState(weight: s.weight, maxConns: s.maxConns, maxFails: s.maxFails,
                          failTimeoutNanos: s.failTimeout.nanoseconds, backup: s.backup, down: s.down)
        p.identity = HashMix.name(s.name)
        return p
    }

    /// Index of the live server called `key`: its name, its address as written, or `#ID`.
    public func server(named key: String) -> Int? {
        if key.hasPrefix("#"), let id = Int(key.dropFirst()), id >= 1, id <= serverNames.count, !removed[id - 1] {
            return id - 1
        }
        if let i = serverNames.indices.first(where: { serverNames[$0] == key && !removed[$0] }) { return i }
        return writtenAddresses.indices.first { writtenAddresses[$0] == key && !removed[$0] }
    }

    /// Indices of servers not deleted, in order.
    public var liveServers: [Int] { removed.indices.filter { !removed[$0] } }

    /// Appends a server (admin `add server`); returns its index.
    func addServer(_ s: UpstreamServerConfig, state: PeerState, now: UInt64) -> Int {
        addresses.append(SocketAddress(s.address.endpoint))
        addressTexts.append(addresses[addresses.count - 1].description)
        writtenAddresses.append(s.address.written)
        serverNames.append(s.name)
        removed.append(false)
        stats.append(ServerStats())
        lastChange.append(now)
        return scheduler.add(state)
    }

    /// Moves a server to another address (admin `set server ... addr`). Sessions already on it
    /// stay where they are; new ones connect to the new address.
    func setAddress(_ i: Int, _ endpoint: ServerAddress.Endpoint) {
        addresses[i] = SocketAddress(endpoint)
        addressTexts[i] = addresses[i].description
        writtenAddresses[i] = AddressSyntax.written(endpoint)
        otherFamilyLogged.remove(i)  // the family may have changed: say so again if it matters
    }

    /// Tombstones a server (admin `del server`). The caller checked it is in maintenance and idle.
    func removeServer(_ i: Int) {
        removed[i] = true
        scheduler.remove(i)
    }
}

/// What a listener's sessions need from its `server { }` block, with times in nanoseconds.
public final class Route {
    public let upstream: Upstream
    public let connectTimeout: UInt64
    public let idleTimeout: UInt64
    public let nextUpstream: Bool
    /// `proxy_half_close off`: the first FIN (once its bytes are through) ends the session.
    public let halfClose: Bool
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
    /// `set_real_ip_from`: senders whose PROXY header names the client; empty = every sender.
    public let realIPFrom: [AccessRule.Match]
    /// `proxy_upload_rate` / `proxy_download_rate` in bytes per second; 0 = unlimited.
    public let uploadRate: Int
    public let downloadRate: Int
    /// `proxy_bind`: the local address server sockets are bound to before connecting; nil = off.
    public let bind: SocketAddress?
    /// The address as written, for log lines.
    public let bindText: String

    public init(_ c: ListenerConfig, upstream: Upstream, limits: ClientLimits? = nil) {
        self.limits = limits
        sendProxyProtocol = c.sendProxyProtocol ? ProxyHeader.Version(rawValue: c.proxyProtocolVersion) ?? .v1 : nil
        proxyProtocolTimeout = c.proxyProtocolTimeout.nanoseconds
        serverKeepalive = c.serverKeepalive
        userTimeoutMilliseconds = Int(c.userTimeout.milliseconds)
        realIPFrom = c.realIPFrom
        uploadRate = c.uploadRate
        downloadRate = c.downloadRate
        bind = c.bind.map { SocketAddress($0.endpoint) }
        bindText = c.bind?.written ?? ""
        self.upstream = upstream
        connectTimeout = c.connectTimeout.nanoseconds
        idleTimeout = c.idleTimeout.nanoseconds
        nextUpstream = c.nextUpstream
        halfClose = c.halfClose
        nextUpstreamTries = c.nextUpstreamTries
        nextUpstreamTimeout = c.nextUpstreamTimeout.nanoseconds
        access = AccessControl(c.access)
    }

    /// Whether the PROXY header from `sender` (the TCP peer) names the real client: with no
    /// `set_real_ip_from`, every sender's does (ferry's documented behaviour); else only one
    /// inside the listed ranges, as nginx's realip module decides. Cold path: once per header.
    func trustsHeader(from sender: SocketAddress) -> Bool {
        if realIPFrom.isEmpty { return true }
        let bytes = sender.addressBytes
        return realIPFrom.contains { AccessControl.matches($0, bytes: bytes, isUnix: sender.isUnix) }
    }
}
