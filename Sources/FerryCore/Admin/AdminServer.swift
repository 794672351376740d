import Glibc

/// The admin socket: a Unix stream socket speaking a subset of HAProxy's runtime API.
///
/// It shares the event loop with the relay, so everything here is bounded: at most
/// `maxConnections` clients (more are closed at once), lines of at most `AdminConnection.maxLine`
/// bytes, and an idle timeout, so a stuck or hostile client costs a descriptor and a few KiB,
/// never loop time.
public final class AdminServer: EventHandler {
    unowned(unsafe) let runtime: Runtime
    let socket: Socket
    public let path: String
    static let maxConnections = 64
    /// Live clients; the server owns them so closing the socket (reload, exit) closes them too.
    private var live: [ObjectIdentifier: AdminConnection] = [:]
    var connections: Int { live.count }
    /// How long a client may stay silent (HAProxy's `timeout cli` defaults to 10 s).
    static let idleTimeout: UInt64 = 10_000_000_000

    /// Opens `config.path` with `config.mode`. Refuses a path that exists and is not a socket,
    /// or a socket another process still answers on (a second ferry); removes a stale one.
    init(runtime: Runtime, config: AdminSocketConfig) throws(StartupError) {
        self.runtime = runtime
        path = config.path
        socket = try AdminServer.open(config)
        do {
            try runtime.loop.register(socket.fd, interest: [.readable], handler: self)
        } catch {
            close()
            throw StartupError("admin_socket \(path): event loop registration failed (\(error.rawValue): \(error))")
        }
    }

    private static func open(_ config: AdminSocketConfig) throws(StartupError) -> Socket {
        let path = config.path
        try claim(path)
        guard let address = SocketAddress(unixPath: path) else {
            throw StartupError("admin_socket path \"\(path)\" is too long for a Unix socket (at most 107 bytes)")
        }
        let s: Socket
        do {
            s = try Socket.stream(family: AF_UNIX)
        } catch {
            throw StartupError("socket() for admin_socket \(path) failed (\(error.rawValue): \(error))")
        }
        do {
            // umask makes the socket no more open than configured from the moment it exists;
            // chmod then sets exactly the configured bits.
            let old = umask(0o777 & ~mode_t(config.mode))
            defer { umask(old) }
            try s.bind(address)
            _ = try syscall("chmod") { chmod(path, mode_t(config.mode)) }
            try s.listen(backlog: 64)
        } catch {
            s.close()
            throw StartupError("bind() to admin_socket \(path) failed (\(error.rawValue): \(error))")
        }
        return s
    }

    /// Makes sure `path` is free for a new socket, or explains why not.
    static func claim(_ path: String) throws(StartupError) {
        switch UnixSocketClaim.claim(path) {
        case .free: return
        case .notASocket:
            throw StartupError("admin_socket \(path) exists and is not a socket; remove it or choose another path")
        case .inUse:
            throw StartupError("admin_socket \(path) is in use by another process (is another ferry running?); stop it or choose another path")
        }
    }

    /// Said to a client beyond `maxConnections` before closing; `ferry ctl` reads it as an error.
    public static let busyAnswer = "Too many admin connections; try again."

    public func handleEvent(_ events: EpollEvents, side: UInt8) {
        var peer = SocketAddress()
        for _ in 0..<16 {
            let accepted: IOResult<Socket>
            do { accepted = try socket.accept(peer: &peer) } catch { return acceptPause.begin() }
            guard case .done(let client) = accepted else { return }
            guard connections < AdminServer.maxConnections else {
                let busy = AdminServer.busyAnswer + "\n\n"
                _ = busy.withCString { try? client.send(from: $0, count: strlen($0)) }
                client.close()
                continue
            }
            let c = AdminConnection(server: self, socket: client)
            do {
                try runtime.loop.register(client.fd, interest: [.readable, .readHangup], handler: c)
                live[ObjectIdentifier(c)] = c
                c.armTimer()
            } catch {
                client.close()
            }
        }
    }

    private lazy var acceptPause = AcceptPause(loop: runtime.loop, fd: socket.fd)

    func connectionClosed(_ c: AdminConnection) { live[ObjectIdentifier(c)] = nil }

    func close() {
        acceptPause.cancel()
        for c in Array(live.values) { c.close() }
        runtime.loop.deregister(socket.fd)
        socket.close()
        unlink(path)
    }
}

