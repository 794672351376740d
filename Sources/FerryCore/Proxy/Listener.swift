import Glibc

/// A listening socket of one `server { }` block. Accepts clients and starts their sessions.
public final class Listener: EventHandler {
    unowned(unsafe) let runtime: Runtime
    public let socket: Socket
    /// A reload replaces it with the same address's new entry (options of the open socket stay).
    public internal(set) var config: ListenConfig
    /// Replaced by a reload; sessions keep the route they started with.
    var route: Route
    /// HAProxy's proxy id for this frontend (see Runtime.assignIDs).
    public internal(set) var id = 0
    public internal(set) var stats = ListenerStats()
    /// Connection-log targets and addresses, set by the runtime at start.
    public internal(set) var logging = ListenerLogging()
    /// The runtime's accept gate as this listener last heard it (Runtime+AcceptGate).
    private var gateOpen = true
    /// `set maxconn frontend`: sessions this listener admits at once, clients still sending a
    /// PROXY header included; 0 = no limit of its own (the global one applies regardless).
    /// HAProxy's frontend maxconn: at it, this listener alone stops accepting and its clients
    /// wait in its backlog; other listeners go on.
    public internal(set) var maxconn = 0 { didSet { fullLogged = false; checkLimit() } }
    /// At `maxconn`: out of epoll's readable set until one of its own sessions ends.
    public private(set) var full = false
    /// One line per limit set, not per client the churn at the limit lets in.
    private var fullLogged = false
    /// Of `runtime.readingHeaders`: this listener's clients still sending a PROXY header.
    var readingHeaders = 0
    private var accepting: Bool { gateOpen && !full }
    private var peerAddress = SocketAddress()
    /// Accepts per readiness event. The socket is level-triggered, so stopping early loses
    /// nothing; a small batch avoids a wasted EAGAIN accept per event under steady load.
    static let acceptBatch = 4

    /// Opens and binds the listening socket. Errors read like nginx's: `bind() to ADDR failed (98: ...)`.
    init(runtime: Runtime, config: ListenConfig, route: Route) throws(StartupError) {
        self.runtime = runtime
        self.config = config
        self.route = route
        let userTimeout = route.userTimeoutMilliseconds
        socket = try Listener.openListening(config.address, backlog: config.backlog, location: config.location) { socket, address throws(Errno) in
            if config.reusePort { try socket.setReusePort() }
            if address.family == AF_INET6 { try socket.setIPv6Only(config.ipv6Only) }
            // Before listen(): the window scale offered to clients is fixed by the receive
            // buffer the listening socket has when their handshake arrives.
            if let n = config.receiveBuffer { try socket.setReceiveBuffer(n) }
            if let n = config.sendBuffer { try socket.setSendBuffer(n) }
            if let n = config.fastOpen { try socket.setFastOpen(queueLength: n) }
            // Accepted sockets inherit TCP_NODELAY and keepalive settings from the listener,
            // which saves system calls on every accept.
            socket.setNoDelay()
            try socket.applyDeadPeerDetection(keepalive: config.keepalive, userTimeoutMilliseconds: userTimeout)
        }
    }

    /// A bound, listening socket on `written` (a stale Unix socket file is replaced and one a
    /// live process answers on is refused, see UnixSocketClaim; TCP gets SO_REUSEADDR and
    /// whatever `tcpOptions` sets before bind). Errors read like nginx's, naming the call: `bind() to ADDR failed (98: ...)`. Shared by listen sockets and the metrics endpoint.
    static func openListening(_ written: ServerAddress, backlog: Int, location: SourceLocation,
                              tcpOptions: (Socket, SocketAddress) throws(Errno) -> Void = { _, _ in }) throws(StartupError) -> Socket {
        let address = SocketAddress(written.endpoint)
        let what = written.written
        let socket: Socket
        do {
            socket = try Socket.stream(family: address.family)
        } catch {
            throw StartupError("socket() for \(what) failed (\(error.rawValue): \(error))", location)
        }
        if case .unix(let path) = written.endpoint, UnixSocketClaim.claim(path) == .inUse {
            socket.close()
            throw StartupError("bind() to \(what) failed (98: Address already in use): another process "
                + "answers on it (is another ferry running?); stop it or choose another path", location)
        }
        // Each step named in the error, as nginx names the call that failed: a socket option
        // the kernel refuses is not an address problem.
        do {
            if !address.isUnix {
                try socket.setReuseAddress()
                try tcpOptions(socket, address)
            }
        } catch {
            socket.close()
            throw StartupError("setsockopt() on \(what) failed (\(error.rawValue): \(error))", location)
        }
        do {
            try socket.bind(address)
        } catch {
            socket.close()
            throw StartupError("bind() to \(what) failed (\(error.rawValue): \(error))", location)
        }
        do {
            try socket.listen(backlog: backlog)
        } catch {
            socket.close()
            throw StartupError("listen() to \(what) failed (\(error.rawValue): \(error))", location)
        }
        return socket
    }

    func start() throws(Errno) {
        try runtime.loop.register(socket.fd, interest: [.readable], handler: self)
    }

    /// The accept gate stops or resumes taking new clients; the backlog keeps queueing meanwhile.
    func setAccepting(_ on: Bool) {
        let before = accepting
        gateOpen = on
        pollReadable(ifChangedFrom: before)
    }

    /// Sessions of this listener counted against `maxconn`: admitted ones and PROXY header readers.
    var inUse: Int { stats.open + readingHeaders }

    /// After an admission, an ending or a new limit: stops or resumes this listener alone.
    func checkLimit() {
        let (before, wasFull) = (accepting, full)
        full = maxconn > 0 && inUse >= maxconn
        pollReadable(ifChangedFrom: before)
        if full && !wasFull && !fullLogged {
            fullLogged = true
            runtime.log.log(.warn, "frontend_maxconn_reached") {
                $0.add("listen", config.address.written); $0.add("sessions", inUse); $0.add("maxconn", maxconn)
            }
        }
    }

    private func pollReadable(ifChangedFrom before: Bool) {
        // Paused: resume() registers it as `accepting` says. Closed (a reload dropped it, a
        // stop began) while its sessions still end here: its descriptor number may already
        // be another socket's.
        guard accepting != before, !paused, !closed else { return }
        try? runtime.loop.modify(socket.fd, interest: accepting ? [.readable] : [])
    }

    /// `disable frontend`: HAProxy's pause. The socket stops listening (shutdown of a
    /// listening TCP socket), so new clients are refused at once instead of waiting in a
    /// backlog nobody reads, and those already queued there are reset; sessions go on. The
    /// socket stays bound, so `enable frontend` listens again on the same port, unless another
    /// program took the port meanwhile (as with HAProxy's pause): then enabling fails.
    public private(set) var paused = false

    enum PauseProblem: Error { case unixSocket }

    func pause() throws(PauseProblem) {
        // A unix socket that stopped listening cannot listen again.
        if case .unix = config.address.endpoint { throw .unixSocket }
        guard !paused else { return }
        paused = true
        // A listening socket shut down reports EPOLLHUP, whatever the interest: out of epoll.
        runtime.loop.deregister(socket.fd, removeFromEpoll: true)
        socket.shutdown(.read)
    }

    func resume() throws(Errno) {
        guard paused else { return }
        try socket.listen(backlog: config.backlog)
        do {
            try runtime.loop.register(socket.fd, interest: accepting ? [.readable] : [], handler: self)
        } catch {
            // Listening but not polled, clients would wait in a backlog nobody reads.
            socket.shutdown(.read)
            throw error
        }
        paused = false
    }

    private var closed = false

    func close() {
        closed = true
        if !paused { runtime.loop.deregister(socket.fd) }
        socket.close()
        if case .unix(let path) = config.address.endpoint { unlink(path) }
    }

    public func handleEvent(_ events: EpollEvents, side: UInt8) {
        for _ in 0..<Listener.acceptBatch {
            guard accepting, !paused, runtime.hasRoom else { return }
            let result: IOResult<Socket>
            do {
                result = try socket.accept(peer: &peerAddress)
            } catch {
                runtime.acceptFailed(error)
                return
            }
            guard case .done(let client) = result else { return }
            runtime.startSession(client: client, peer: peerAddress, listener: self)
        }
    }
}

/// A start-up failure: what failed and where in the configuration it was asked for.
public struct StartupError: Error, CustomStringConvertible {
    public let message: String
    public let location: SourceLocation?
    public init(_ message: String, _ location: SourceLocation? = nil) { self.message = message; self.location = location }
    public var description: String { location.map { "\(message) in \($0)" } ?? message }
}
