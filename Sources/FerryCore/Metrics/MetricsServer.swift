import Glibc

/// `metrics_listen`: a listening socket on the event loop that answers `GET /metrics`.
///
/// A scrape is small and rare, so the responder is minimal: one request per connection, the
/// response built in memory and written without blocking, every connection closed once the
/// client has closed after its response (input after the head is read and dropped) or after
/// `timeout`, whichever comes first. At most `maxConnections` are served at once; more are
/// answered 503 at accept and closed. Nothing here can hold up a session: it only runs when its own sockets are ready.
public final class MetricsServer: EventHandler {
    static let maxConnections = 16
    static let timeout: UInt64 = 10_000_000_000
    static let maxRequestBytes = 8192
    static let busy = HTTPResponse.make(status: 503, reason: "Service Unavailable",
                                        body: "too many metrics clients at once (\(maxConnections)); try again\n",
                                        extraHeaders: "Retry-After: 1\r\n")

    unowned(unsafe) let runtime: Runtime
    public let config: MetricsListenConfig
    let socket: Socket
    private var connections: [ObjectIdentifier: MetricsConnection] = [:]
    private var peerAddress = SocketAddress()

    init(runtime: Runtime, config: MetricsListenConfig) throws(StartupError) {
        self.runtime = runtime
        self.config = config
        socket = try Listener.openListening(config.address, backlog: 64, location: config.location)
    }

    func start() throws(Errno) {
        try runtime.loop.register(socket.fd, interest: [.readable], handler: self)
    }

    func close() {
        acceptPause.cancel()
        for c in Array(connections.values) { c.finish() }
        runtime.loop.deregister(socket.fd)
        socket.close()
        if case .unix(let path) = config.address.endpoint { unlink(path) }
    }

    public func handleEvent(_ events: EpollEvents, side: UInt8) {
        for _ in 0..<8 {
            let result: IOResult<Socket>
            do {
                result = try socket.accept(peer: &peerAddress)
            } catch {
                return acceptPause.begin()
            }
            guard case .done(let client) = result else { return }
            guard connections.count < MetricsServer.maxConnections else {
                refuseBusy(client)
                continue
            }
            let c = MetricsConnection(server: self, socket: client)
            do {
                try runtime.loop.register(client.fd, interest: [.readable, .writable, .readHangup, .edgeTriggered], handler: c)
            } catch {
                client.close()
                continue
            }
            connections[ObjectIdentifier(c)] = c
            runtime.loop.timers.schedule(c, at: runtime.loop.now &+ MetricsServer.timeout)
        }
    }

    /// Descriptors run short exactly when someone looks at the metrics: no spinning then.
    private lazy var acceptPause = AcceptPause(loop: runtime.loop, fd: socket.fd)

    /// Said rather than a bare close, so the scraper's error names the cause. The request that
    /// usually came with the connection is read first (without waiting): closing with it unread
    /// would reset the connection, and the reset would take the answer with it. One small send
    /// into an empty socket buffer, which never waits.
    private func refuseBusy(_ client: Socket) {
        var scratch = [UInt8](repeating: 0, count: 4096)
        for _ in 0..<4 {
            let r = scratch.withUnsafeMutableBytes { try? client.receive(into: $0.baseAddress!, count: $0.count) }
            guard case .done(let n)? = r, n > 0 else { break }
        }
        _ = MetricsServer.busy.withUnsafeBytes { try? client.send(from: $0.baseAddress!, count: $0.count) }
        client.shutdown(.write)
        client.close()
    }

    func closed(_ c: MetricsConnection) {
        connections[ObjectIdentifier(c)] = nil
    }

    /// The response for one request head.
    func respond(to parsed: HTTPRequestHead.Parse) -> [UInt8] {
        switch parsed {
        case .incomplete, .bad:
            return HTTPResponse.make(status: 400, reason: "Bad Request", body: "bad request\n")
        case .request(let head):
            guard head.method == "GET" || head.method == "HEAD" else {
                return HTTPResponse.make(status: 405, reason: "Method Not Allowed", body: "only GET and HEAD\n", extraHeaders: "Allow: GET, HEAD\r\n")
            }
            guard head.path == "/metrics" else {
                return HTTPResponse.make(status: 404, reason: "Not Found", body: "metrics are at /metrics\n", headOnly: head.method == "HEAD")
            }
            let response = exposition()
            return head.method == "HEAD" ? Array(response.bytes[..<response.headLength]) : response.bytes
        }
    }

    /// Scrapes within this long of a render get that render.
    static let renderReuseNanoseconds: UInt64 = 1_000_000_000
    private var lastRender: (at: UInt64, bytes: [UInt8], headLength: Int)? = nil

    /// Rendering is O(servers + sessions) on the loop that relays: with thousands of servers a
    /// render takes a noticeable time, and 16 scrapers arriving together (an HA pair of
    /// Prometheus, a dashboard, a slowloris holding slots that then all ask) would stop the
    /// relay 16 times as long and hold 16 copies. At most one render a second, whose bytes
    /// every connection shares (copy on write, and none writes).
    private func exposition() -> (bytes: [UInt8], headLength: Int) {
        let now = runtime.loop.now
        if let last = lastRender, now &- last.at < MetricsServer.renderReuseNanoseconds { return (last.bytes, last.headLength) }
        let body = MetricsExposition.render(runtime)
        let contentType = "text/plain; version=0.0.4; charset=utf-8"
        let bytes = HTTPResponse.make(status: 200, reason: "OK", contentType: contentType, body: body)
        let headLength = bytes.count - body.utf8.count
        lastRender = (now, bytes, headLength)
        return (bytes, headLength)
    }
}

/// One scrape: read the request head, write the response, wait for the client's close. Loop thread only.
final class MetricsConnection: EventHandler, TimerTarget {
    /// Input a lingering connection reads and throws away before it gives up and closes.
    static let maxDiscardBytes = 1 << 20

    unowned(unsafe) let server: MetricsServer
    let socket: Socket
    var timer = TimerSlot()

    private enum Phase {
        case reading([UInt8])
        case writing([UInt8], sent: Int)
        /// Response queued and FIN sent; reading until the client closes. Closing a socket that
        /// has unread input makes the kernel answer with a reset and drop the unsent part of the
        /// response, so a client that sent more than the head (a body, a pipelined request)
        /// would get a truncated answer (nginx's lingering_close, for the same reason).
        case lingering(discarded: Int)
        case closed
    }
    private var phase = Phase.reading([])

    init(server: MetricsServer, socket: Socket) {
        self.server = server
        self.socket = socket
    }

    func handleEvent(_ events: EpollEvents, side: UInt8) {
        if case .reading = phase { read() }
        if case .writing = phase { write() }
        if case .lingering = phase { discard() }
    }

    private func read() {
        guard case .reading(var request) = phase else { return }
        var buf = [UInt8](repeating: 0, count: 2048)
        while true {
            let r = buf.withUnsafeMutableBytes { try? socket.receive(into: $0.baseAddress!, count: $0.count) }
            switch r {
            case .done(let n)? where n > 0:
                request += buf[0..<n]
                let parsed = HTTPRequestHead.parse(request)
                if parsed != .incomplete {
                    phase = .writing(server.respond(to: parsed), sent: 0)
                    return
                } else if request.count > MetricsServer.maxRequestBytes {
                    phase = .writing(server.respond(to: .bad), sent: 0)
                    return
                }
            case .wouldBlock?:
                phase = .reading(request)
                return
            default:
                // EOF or error before a whole request: nothing to answer.
                return finish()
            }
        }
    }

    private func write() {
        guard case .writing(let bytes, var sent) = phase else { return }
        while sent < bytes.count {
            let r = bytes.withUnsafeBytes { try? socket.send(from: $0.baseAddress! + sent, count: bytes.count - sent) }
            switch r {
            case .done(let n)?: sent += n
            case .wouldBlock?:
                phase = .writing(bytes, sent: sent)
                return      // EPOLLOUT (edge-triggered) brings us back
            case nil: return finish()
            }
        }
        socket.shutdown(.write)
        phase = .lingering(discarded: 0)
    }

    /// Reads and drops input until the client closes; the connection's timeout still bounds it.
    private func discard() {
        guard case .lingering(var discarded) = phase else { return }
        var buf = [UInt8](repeating: 0, count: 2048)
        while true {
            let r = buf.withUnsafeMutableBytes { try? socket.receive(into: $0.baseAddress!, count: $0.count) }
            switch r {
            case .done(let n)? where n > 0:
                discarded += n
                // A client that keeps sending after its answer is not waiting for it.
                if discarded > MetricsConnection.maxDiscardBytes { return finish() }
            case .wouldBlock?:
                phase = .lingering(discarded: discarded)
                return
            default:
                return finish()
            }
        }
    }

    func timerFired(now: UInt64) { finish() }

    /// Closes the connection and forgets it. Safe to call twice.
    func finish() {
        if case .closed = phase { return }
        phase = .closed
        server.runtime.loop.timers.cancel(self)
        server.runtime.loop.deregister(socket.fd)
        socket.close()
        server.closed(self)
    }
}
