/// `proxy_protocol on`: the header a server receives before the client's first byte.
extension Session {
    /// Queues the PROXY header on the client->server direction. Precondition: the server
    /// connection was just established and nothing has been relayed to it.
    ///
    /// The header names the real client: the one a front balancer's header named, else the
    /// peer of the client socket; the destination is the address that client connected to.
    /// Unix-socket clients have no address to give: "PROXY UNKNOWN" (v1) or LOCAL (v2).
    func queueProxyHeader(_ version: ProxyHeader.Version) {
        let source: SocketAddress
        let destination: SocketAddress
        if let o = origin, o.replacesSender {
            source = o.headerSource
            destination = o.headerDestination
        } else {
            source = SocketAddress(clientKey: clientKey, port: clientPort)
            destination = source.length == 0 ? SocketAddress() : client.localAddress() ?? SocketAddress()
        }
        up.prepend(ProxyHeader.encode(version, source: source, destination: destination), runtime.relay)
    }
}
