// The typed, validated configuration. The Builder produces it from the directive tree;
// everything else in ferry reads only this, never the tree.

/// Where a directive came from, for messages that point the operator at the line.
public struct SourceLocation: Equatable, Hashable, Sendable, CustomStringConvertible {
    public var file: String
    public var line: Int
    public var column: Int
    public init(file: String, line: Int, column: Int) {
        self.file = file; self.line = line; self.column = column
    }
    public var description: String { "\(file):\(line):\(column)" }
}

/// A duration in milliseconds, nginx's unit of account for times.
public struct Duration: Equatable, Hashable, Comparable, Sendable, CustomStringConvertible {
    public var milliseconds: Int64
    public init(milliseconds: Int64) { self.milliseconds = milliseconds }
    public static func seconds(_ s: Int64) -> Duration { Duration(milliseconds: s * 1000) }
    public static func < (a: Duration, b: Duration) -> Bool { a.milliseconds < b.milliseconds }
    public static let zero = Duration(milliseconds: 0)
    /// Saturates at 2^62 ns (146 years) instead of wrapping: nginx accepts up to 2^63 ms, and
    /// a wrapped `proxy_timeout 18446744074s` would be 0.29 s. 2^62 also leaves room for
    /// `now &+ timeout` on a monotonic clock without wrapping into the past.
    public var nanoseconds: UInt64 {
        let limit: UInt64 = 1 << 62
        let (ns, overflow) = UInt64(max(0, milliseconds)).multipliedReportingOverflow(by: 1_000_000)
        return overflow ? limit : min(ns, limit)
    }
    /// Canonical nginx spelling: the largest unit that divides exactly.
    public var description: String {
        let ms = milliseconds
        if ms == 0 { return "0s" }
        if ms % 1000 != 0 { return "\(ms)ms" }
        let s = ms / 1000
        if s % 3600 == 0 { return "\(s / 3600)h" }
        if s % 60 == 0 { return "\(s / 60)m" }
        return "\(s)s"
    }
}

/// An address as written in the configuration (`host:port`, `[v6]:port`, `unix:/path`),
/// already resolved. `written` is kept for names, logs and `-T`.
public struct ServerAddress: Equatable, Hashable, Sendable, CustomStringConvertible {
    public enum Endpoint: Equatable, Hashable, Sendable {
        case ipv4(host: String, port: UInt16)   // host is a dotted quad after resolution
        case ipv6(host: String, port: UInt16)   // host without brackets
        case unix(path: String)
    }
    public var written: String
    public var endpoint: Endpoint
    public init(written: String, endpoint: Endpoint) { self.written = written; self.endpoint = endpoint }
    public var description: String { written }

    /// "IPv4", "IPv6" or "a unix socket", for messages about families that do not mix.
    static func familyName(_ e: Endpoint) -> String {
        switch e {
        case .ipv4: return "IPv4"
        case .ipv6: return "IPv6"
        case .unix: return "a unix socket"
        }
    }
}

public enum BalancingMethodConfig: Equatable, Sendable {
    case roundRobin
    case leastConn
    case hash(consistent: Bool)          // hash $remote_addr [consistent]
    case ipHash                          // nginx's (http) ip_hash: an IPv4 client keyed by its /24
    case random(two: Bool, leastConn: Bool)
}

public struct UpstreamServerConfig: Equatable, Sendable {
    public var address: ServerAddress
    public var name: String               // name= or the address as written
    public var weight: Int = 1
    /// nginx sets no upper bound; ferry needs one so that sums and products of weights
    /// (round robin's running scores, least_conn's sessions x weight) cannot overflow, and
    /// HAProxy's 256 is too few for the weights nginx configurations use.
    public static let maximumWeight = 1_000_000
    public var maxFails: Int = 1
    public var failTimeout: Duration = .seconds(10)
    public var maxConns: Int = 0          // 0 = unlimited
    public var backup: Bool = false
    public var down: Bool = false
    public var agentPort: UInt16? = nil
    public var location: SourceLocation
    public init(address: ServerAddress, name: String, location: SourceLocation) {
        self.address = address; self.name = name; self.location = location
    }
}

public struct HealthCheckConfig: Equatable, Sendable {
    public var interval: Duration = .seconds(5)
    public var fails: Int = 1
    public var passes: Int = 1
    public var timeout: Duration = .seconds(5)
    public var port: UInt16? = nil
    public init() {}
}

public struct AgentCheckConfig: Equatable, Sendable {
    public var port: UInt16
    public var interval: Duration = .seconds(2)
    public var timeout: Duration = .seconds(2)
    public var send: String? = nil
    public init(port: UInt16) { self.port = port }
}

public struct UpstreamConfig: Equatable, Sendable {
    public var name: String
    public var method: BalancingMethodConfig = .roundRobin
    public var servers: [UpstreamServerConfig] = []
    public var healthCheck: HealthCheckConfig? = nil
    public var agentCheck: AgentCheckConfig? = nil
    /// `on_marked_down shutdown_sessions;`: end the sessions of a server that goes down
    /// (probe or agent) instead of letting them run to their end.
    public var shutdownSessionsOnDown: Bool = false
    public var location: SourceLocation
    public init(name: String, location: SourceLocation) { self.name = name; self.location = location }
}

public enum KeepaliveConfig: Equatable, Sendable {
    case off
    case on                                   // system defaults
    case tuned(idle: Duration?, interval: Duration?, count: Int?)
}

public struct ListenConfig: Equatable, Sendable {
    public var address: ServerAddress
    public var backlog: Int = 511             // nginx's default on Linux
    public var reusePort: Bool = false
    public var keepalive: KeepaliveConfig = .off
    public var proxyProtocol: Bool = false    // `listen ... proxy_protocol` (accept a header)
    /// IPV6_V6ONLY on an IPv6 listen socket; nginx's default is on (an IPv6 wildcard does not
    /// also take IPv4 clients).
    public var ipv6Only: Bool = true
    public var receiveBuffer: Int? = nil      // `rcvbuf=`: SO_RCVBUF, the kernel's default when nil
    public var sendBuffer: Int? = nil         // `sndbuf=`: SO_SNDBUF
    public var fastOpen: Int? = nil           // `fastopen=`: TCP_FASTOPEN queue length
    public var location: SourceLocation
    public init(address: ServerAddress, location: SourceLocation) { self.address = address; self.location = location }
}

public enum ProxyTarget: Equatable, Sendable {
    case upstream(String)
    /// `proxy_pass host:port;` as written, and every address it stands for (one per address
    /// of a host name, which nginx balances over as an upstream of its own).
    case addresses(String, [ServerAddress])
}

public struct AccessRule: Equatable, Sendable {
    public enum Action: Equatable, Sendable { case allow, deny }
    public enum Match: Equatable, Sendable {
        case all
        case cidr(address: [UInt8], prefixLength: Int)   // 4 or 16 address bytes
        case unixSockets
    }
    public var action: Action
    public var match: Match
    public init(action: Action, match: Match) { self.action = action; self.match = match }
}

public struct LimitConnConfig: Equatable, Sendable {
    public var zone: String
    public var count: Int
    public init(zone: String, count: Int) { self.zone = zone; self.count = count }
}

/// `limit_conn_rate 10r/s burst=5;`: the nginx limit_req algorithm applied to new connections.
public struct ConnectionRateConfig: Equatable, Sendable {
    /// Connections per second, in thousandths (nginx's unit: `30r/m` is 500).
    public var milliPerSecond: Int
    /// Connections allowed beyond the rate before refusing.
    public var burst: Int = 0
    public init(milliPerSecond: Int, burst: Int = 0) { self.milliPerSecond = milliPerSecond; self.burst = burst }
}

public struct ListenerConfig: Equatable, Sendable {
    public var listens: [ListenConfig] = []
    public var proxyPass: ProxyTarget
    public var connectTimeout: Duration = .seconds(60)
    public var idleTimeout: Duration = .seconds(600)          // proxy_timeout
    public var nextUpstream: Bool = true
    /// `proxy_half_close`: on relays a FIN and keeps the other direction flowing. nginx's
    /// default is off; ferry's is on, since a server that speaks first may also answer last.
    public var halfClose: Bool = true
    public var nextUpstreamTries: Int = 0                     // 0 = unlimited
    public var nextUpstreamTimeout: Duration = .zero          // 0 = unlimited
    public var sendProxyProtocol: Bool = false                // proxy_protocol on
    public var access: [AccessRule] = []
    public var limitConn: [LimitConnConfig] = []
    /// `limit_conn_rate`: new connections per client address; nil = no cap.
    public var connectionRate: ConnectionRateConfig? = nil
    /// `proxy_protocol_version`: which header `proxy_protocol on` sends (1 text, 2 binary).
    public var proxyProtocolVersion: Int = 1
    /// `proxy_protocol_timeout`: how long a `listen ... proxy_protocol` client has to send its
    /// whole header (nginx's default).
    public var proxyProtocolTimeout: Duration = .seconds(30)
    /// `proxy_socket_keepalive`: TCP keepalive on the server-side socket.
    public var serverKeepalive: KeepaliveConfig = .off
    /// `tcp_user_timeout`: TCP_USER_TIMEOUT on both sockets of a session; zero = kernel default.
    public var userTimeout: Duration = .zero
    /// `proxy_bind`: the local address (port 0 = any) server connections are made from; nil = the
    /// system's choice. Only IPv4 or IPv6 addresses, never a host name or a variable.
    public var bind: ServerAddress? = nil
    /// `set_real_ip_from`: senders whose PROXY header address becomes the client's address on
    /// `listen ... proxy_protocol` sockets. Empty = every sender's (ferry's behaviour before it had
    /// the directive; `-t` gives a notice, since nginx trusts no sender then).
    public var realIPFrom: [AccessRule.Match] = []
    /// `proxy_upload_rate` / `proxy_download_rate`: bytes per second a session reads from the
    /// client / from the server; 0 = unlimited (nginx's default).
    public var uploadRate: Int = 0
    public var downloadRate: Int = 0
    /// Effective access logs for this server: its own `access_log` lines, else the stream
    /// level's (nginx's merge); empty = off. `Config.accessLogs` stays the stream-level list.
    public var accessLogs: [AccessLogConfig] = []
    public var location: SourceLocation
    public init(proxyPass: ProxyTarget, location: SourceLocation) { self.proxyPass = proxyPass; self.location = location }
}

public struct LimitConnZoneConfig: Equatable, Sendable {
    public var name: String
    public var key: String                // `$binary_remote_addr` or `$remote_addr`
    public var size: Int                  // bytes
    public init(name: String, key: String, size: Int) { self.name = name; self.key = key; self.size = size }
}

public struct AccessLogConfig: Equatable, Sendable {
    /// The smallest buffer honoured; the configuration raises smaller ones with a warning.
    public static let minimumBufferSize = 512
    /// The largest buffer the configuration takes. Two of this size are reserved per file at
    /// load, so a typo like `buffer=100000m` would abort the process (a reload too) where
    /// nginx says malloc() failed; past a few megabytes a buffer only delays the lines.
    /// Limits of the configuration, so they live with it; LogFile applies them.
    public static let maximumBufferSize = 64 * 1024 * 1024

    public var path: String
    public var format: String?            // log_format name; nil = ferry's JSON line
    public var buffer: Int? = nil
    public var flush: Duration? = nil
    public init(path: String, format: String?) { self.path = path; self.format = format }
}

public struct LogFormatConfig: Equatable, Sendable {
    public enum Escape: String, Equatable, Sendable { case `default`, json, none }
    public var name: String
    public var escape: Escape = .default
    public var format: String             // the strings concatenated, as nginx does
    public init(name: String, format: String) { self.name = name; self.format = format }
}

public enum LogLevel: String, Equatable, Comparable, Sendable, CaseIterable {
    case debug, info, notice, warn, error, crit, alert, emerg
    public static func < (a: LogLevel, b: LogLevel) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }
}

public struct ErrorLogConfig: Equatable, Sendable {
    public var path: String               // "stderr" writes to standard error
    public var level: LogLevel = .error
    public init(path: String, level: LogLevel) { self.path = path; self.level = level }
}

public struct AdminSocketConfig: Equatable, Sendable {
    public var path: String
    public var mode: UInt32 = 0o600
    public init(path: String) { self.path = path }
}

/// `metrics_listen ADDRESS;`: where Prometheus scrapes `/metrics`.
public struct MetricsListenConfig: Equatable, Sendable {
    public var address: ServerAddress
    public var location: SourceLocation
    public init(address: ServerAddress, location: SourceLocation) { self.address = address; self.location = location }
}

public enum WorkerProcesses: Equatable, Sendable { case count(Int), auto }

public struct Config: Equatable, Sendable {
    public var file: String
    public var workerProcesses: WorkerProcesses = .count(1)
    public var workerRlimitNofile: Int? = nil
    /// `events { worker_connections N; }`: as in nginx, the connections ferry holds at once,
    /// clients, servers and listen sockets alike (see Runtime.configuredMaxconn); nil = as many
    /// as the descriptor limit allows.
    public var workerConnections: Int? = nil
    /// How long SIGTERM waits for sessions before ending them (nginx's worker_shutdown_timeout,
    /// which nginx leaves unlimited; ferry bounds it so a stop always completes).
    public var shutdownTimeout: Duration = .seconds(30)
    /// `busy_polling TIME;`: after events, how long (microseconds) the loop polls without
    /// sleeping before it waits in the kernel; 0 = off, the default (HAProxy's `busy-polling`,
    /// bounded; see EventLoop.busyPollNanos).
    public var busyPollingMicros: Int = 0
    public var busyPollingNanos: UInt64 { UInt64(busyPollingMicros) * 1000 }
    /// `pid FILE;`: where ferry writes its process id, read by `ferry -s reload|stop|quit`.
    public var pidFile: String? = nil
    public var upstreams: [UpstreamConfig] = []
    public var listeners: [ListenerConfig] = []
    public var limitConnZones: [LimitConnZoneConfig] = []
    public var logFormats: [LogFormatConfig] = []
    public var accessLogs: [AccessLogConfig] = []             // stream-level; off = empty
    public var errorLog: ErrorLogConfig? = nil
    public var adminSocket: AdminSocketConfig? = nil
    public var metricsListen: MetricsListenConfig? = nil
    public init(file: String) { self.file = file }

    public func upstream(named name: String) -> UpstreamConfig? { upstreams.first { $0.name == name } }

    /// One per `listen` line: what nginx counts against worker_connections as its listening sockets.
    public var listenSocketCount: Int { listeners.reduce(0) { $0 + $1.listens.count } }
}
