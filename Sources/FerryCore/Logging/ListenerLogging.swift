/// What one listener's sessions need to write their connection-log lines, worked out once
/// at start so a session's end costs no lookups.
public struct ListenerLogging {
    public var targets: [ConnectionLog.Target] = []
    /// $server_addr / $server_port for a listener bound to one address.
    public var localHost = ""
    public var localPort = ""
    /// Bound to a wildcard (0.0.0.0, ::) and a format prints $server_addr: each session asks
    /// the kernel which address the client reached, once, at accept.
    public var perConnectionAddress = false
    /// A format prints $proxy_protocol_*: a session keeps the PROXY header's addresses even
    /// from a sender set_real_ip_from does not trust (nginx fills them from any sender).
    public var printsProxyHeader = false

    public init() {}

    public var isEnabled: Bool { !targets.isEmpty }
}

/// The local address of one accepted connection, boxed so a session pays one pointer for it
/// and only when its listener needs it.
public final class LocalAddress {
    public let host: String
    public let port: String
    public init(_ a: SocketAddress) {
        host = a.host
        port = a.isUnix ? "" : String(a.port)
    }
}
