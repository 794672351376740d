import Glibc

// The runtime's side of the connection log: which listener writes where, and the record for a
// session or a refused client. Kept out of Runtime.swift so the relay's control flow reads alone.

extension Runtime {
    /// Gives every listener its log targets. Called at start; a reload uses connectionLogging.
    func setUpConnectionLog() throws(StartupError) {
        let logging = try connectionLogging(for: listeners.map { ($0, $0.config) }, config: config)
        for (l, lg) in zip(listeners, logging) { l.logging = lg }
    }

    /// The log targets and addresses of each listen socket as `config` describes it, opening
    /// files not yet open (files already open are shared, not reopened). Assigns nothing.
    func connectionLogging(for listens: [(Listener, ListenConfig)], config: Config) throws(StartupError) -> [ListenerLogging] {
        var out: [ListenerLogging] = []
        for (_, listen) in listens {
            var logging = ListenerLogging()
            guard let lc = config.listeners.first(where: { $0.listens.contains(listen) }) else { out.append(logging); continue }
            logging.targets = try connectionLog.targets(for: lc.accessLogs, formats: config.logFormats, location: lc.location)
            let bound = SocketAddress(listen.address.endpoint)
            logging.localHost = bound.host
            logging.localPort = bound.isUnix ? "" : String(bound.port)
            let printsLocal = logging.targets.contains {
                $0.template?.variables.contains(where: { $0 == .serverAddr || $0 == .serverPort }) ?? false
            }
            logging.perConnectionAddress = printsLocal && bound.isWildcard
            logging.printsProxyHeader = logging.targets.contains {
                $0.template?.variables.contains(where: \.isFromProxyHeader) ?? false
            }
            out.append(logging)
        }
        return out
    }

    /// Precondition: the session has ended (sockets closed); called once per session.
    func logSession(_ s: Session, reason: SessionEnd) {
        guard let listener = s.listener, listener.logging.isEnabled else { return }
        let local = s.localAddress
        let record = ConnectionRecord(
            timeMillis: WallClock.nowMilliseconds(), listener: listener.config.address.written,
            localHost: local?.host ?? listener.logging.localHost, localPort: local?.port ?? listener.logging.localPort,
            client: s.clientKey, clientPort: s.clientKey == .none ? nil : s.clientPort,
            upstream: s.upstream, attempts: s.attemptLog, sessionNanos: loop.now &- s.startedAt,
            bytesFromClient: s.up.bytes, bytesToClient: s.down.bytes, bytesWrittenToServer: s.up.written,
            bytesWrittenToClient: s.down.written, reason: reason, connection: s.connection,
            origin: s.origin)
        connectionLog.write(record, to: listener.logging.targets)
    }

    /// A client turned away before it became a session: a line with no server and no bytes.
    func logRefused(_ client: Socket, peer: SocketAddress, listener: Listener, reason: SessionEnd, origin: ClientOrigin?) {
        guard listener.logging.isEnabled else { return }
        var localHost = listener.logging.localHost, localPort = listener.logging.localPort
        if listener.logging.perConnectionAddress, let a = client.localAddress() {
            let l = LocalAddress(a)
            localHost = l.host; localPort = l.port
        }
        let record = ConnectionRecord(
            timeMillis: WallClock.nowMilliseconds(), listener: listener.config.address.written,
            localHost: localHost, localPort: localPort,
            client: peer.clientKey, clientPort: peer.isUnix ? nil : peer.port,
            upstream: nil, attempts: AttemptLog(), sessionNanos: 0,
            bytesFromClient: 0, bytesToClient: 0, bytesWrittenToServer: 0, bytesWrittenToClient: 0, reason: reason, connection: acceptedTotal, origin: origin)
        connectionLog.write(record, to: listener.logging.targets)
    }

    /// Called at accept for every session: what its log line will need later.
    func prepareLogging(_ s: Session, client: Socket, listener: Listener) {
        s.listener = listener
        s.connection = acceptedTotal
        if listener.logging.perConnectionAddress, let a = client.localAddress() { s.localAddress = LocalAddress(a) }
    }
}

extension SocketAddress {
    /// 0.0.0.0 or ::, where the kernel picks the local address per connection.
    var isWildcard: Bool {
        withUnsafeBytes(of: storage) { raw in
            switch family {
            case AF_INET: return raw.load(as: sockaddr_in.self).sin_addr.s_addr == 0
            case AF_INET6:
                let off = MemoryLayout<sockaddr_in6>.offset(of: \.sin6_addr)!
                return (0..<16).allSatisfy { raw[off + $0] == 0 }
            default: return false
            }
        }
    }
}
