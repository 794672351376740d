/// What a client's PROXY header said: the address the front balancer's client came from and
/// the one it connected to, and who sent the header. Kept by a session only when a header
/// named addresses, so sessions on ordinary listeners pay one nil reference; from a sender
/// set_real_ip_from does not trust, only when a log format prints `$proxy_protocol_*`.
public final class ClientOrigin {
    /// $proxy_protocol_addr / _port.
    public let headerSource: SocketAddress
    /// $proxy_protocol_server_addr / _port.
    public let headerDestination: SocketAddress
    /// The TCP peer that sent the header ($realip_remote_addr / _port when it was replaced):
    /// a key and a port, not a 128-byte sockaddr; `.none` for a Unix-socket sender.
    public let sender: ClientKey
    public let senderPort: UInt16
    /// The header's source became the client (set_real_ip_from trusts the sender, or none
    /// applies); otherwise the sender stayed the client and the header only fills the log.
    public let replacesSender: Bool

    init(source: SocketAddress, destination: SocketAddress, sender: SocketAddress, replacesSender: Bool) {
        headerSource = source
        headerDestination = destination
        self.sender = sender.clientKey
        senderPort = sender.port
        self.replacesSender = replacesSender
    }

    /// The real client, when the header's address replaced the sender's: what allow/deny, the
    /// limits, the hash methods, the admin socket and the header sent onward see.
    public var source: SocketAddress? { replacesSender ? headerSource : nil }
}
