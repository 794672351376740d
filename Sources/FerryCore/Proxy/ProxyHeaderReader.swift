/// Bytes a client sent after its PROXY header, read in the same recv: the session relays
/// them to the server before anything else it reads from the client.
struct Preread {
    let buffer: UnsafeMutableRawPointer     // borrowed from the relay's BufferPool
    let offset: Int
    let length: Int
}

/// The short phase a client of a `listen ... proxy_protocol` socket goes through before it
/// becomes a session: read the PROXY header (v1 or v2) within `proxy_protocol_timeout`, then
/// hand the client on under the address the header names, which is what allow/deny,
/// limit_conn, limit_conn_rate and the hash methods then see, when `set_real_ip_from` trusts
/// the sender or no `set_real_ip_from` applies (ferry's default, unlike nginx's). A malformed, oversized or late header closes the client with
/// status 400 through `Runtime.clientRefused`; other sessions are not touched.
///
/// The deadline is for the whole header, not per read, so a client dripping one byte at a
/// time cannot hold its descriptor longer than the timeout.
final class ProxyHeaderReader: EventHandler, TimerTarget {
    unowned(unsafe) let runtime: Runtime
    /// Strong, as a session's: a reload or a graceful stop closes and drops a listener while its
    /// clients may still be sending their headers, and they finish under it.
    let listener: Listener
    let client: Socket
    let peer: SocketAddress
    var timer = TimerSlot()
    /// The header's bytes so far. Reads land in the loop's scratch buffer and only what was
    /// received is kept here, so a client dripping its header holds a few bytes, never a
    /// pool buffer, for as long as the timeout lets it.
    private var pending: [UInt8] = []
    private var done = false

    static let interest: EpollEvents = [.readable, .readHangup, .edgeTriggered]

    init(runtime: Runtime, listener: Listener, client: Socket, peer: SocketAddress) {
        self.runtime = runtime
        self.listener = listener
        self.client = client
        self.peer = peer
    }

    /// Registers the client and arms the deadline. Precondition: loop thread, client just accepted.
    func start() {
        do {
            try runtime.loop.register(client.fd, interest: ProxyHeaderReader.interest, handler: self)
        } catch {
            return fail("registration failed: \(error)")
        }
        runtime.loop.timers.schedule(self, at: runtime.loop.now &+ listener.route.proxyProtocolTimeout)
    }

    func handleEvent(_ events: EpollEvents, side: UInt8) {
        guard !done else { return }
        let scratch = runtime.relay.scratch
        // Edge-triggered: read until EAGAIN or a verdict. At most v2MaxLength bytes are ever
        // taken, and every header is decided by then (v1 lines end within 107 bytes).
        while true {
            let room = ProxyHeader.v2MaxLength - pending.count
            let n: Int
            do {
                switch try client.receive(into: scratch, count: room) {
                case .wouldBlock: return
                case .done(let k): n = k
                }
            } catch {
                return fail(pending.isEmpty ? "connection error before the header: \(error)" : "connection error inside the header: \(error)")
            }
            if n == 0 { return fail(pending.isEmpty ? "closed before sending a header" : "closed after \(pending.count) bytes of an incomplete header") }
            pending.append(contentsOf: UnsafeRawBufferPointer(start: scratch, count: n))
            switch pending.withUnsafeBytes({ ProxyHeader.parse($0) }) {
            case .incomplete: continue
            case .invalid(let why): return fail(why)
            case .complete(let decoded): return finish(decoded)
            }
        }
    }

    func timerFired(now: UInt64) {
        guard !done else { return }
        fail(pending.isEmpty ? "no header within proxy_protocol_timeout" : "header incomplete after \(pending.count) bytes within proxy_protocol_timeout")
    }

    private func leave(closing: Bool) {
        done = true
        runtime.loop.timers.cancel(self)
        // The descriptor stays open when the client moves on to a session, so it must leave epoll now.
        runtime.loop.deregister(client.fd, removeFromEpoll: !closing)
        runtime.headerPhaseEnded(listener, movingOn: !closing)
    }

    private func fail(_ why: String) {
        leave(closing: true)
        runtime.log.log(.info, "proxy_header_rejected") {
            $0.add("client", peer.description)
            $0.add("listener", listener.config.address.written)
            $0.add("reason", why)
        }
        runtime.clientRefused(client, peer: peer, listener: listener, reason: .badHeader)
    }

    private func finish(_ decoded: ProxyHeader.Decoded) {
        leave(closing: false)
        var realPeer = peer
        var origin: ClientOrigin? = nil
        let length: Int
        switch decoded {
        case .proxied(let source, let destination, let l):
            // From a sender set_real_ip_from does not trust, the header is read and dropped: the
            // sender stays the client for every check, the logs and the header sent onward.
            if listener.route.trustsHeader(from: peer) {
                realPeer = source
                origin = ClientOrigin(source: source, destination: destination, sender: peer, replacesSender: true)
            } else if listener.logging.printsProxyHeader {
                // Only for $proxy_protocol_* in the log, which nginx fills from any sender.
                origin = ClientOrigin(source: source, destination: destination, sender: peer, replacesSender: false)
            }
            length = l
        case .local(let l):
            length = l
        }
        var preread: Preread? = nil
        if pending.count > length {
            // Client bytes that came with the header: the session sends them first.
            let b = runtime.relay.buffers.borrow()
            pending.withUnsafeBytes { b.copyMemory(from: $0.baseAddress! + length, byteCount: pending.count - length) }
            preread = Preread(buffer: b, offset: 0, length: pending.count - length)
        }
        pending = []
        runtime.admit(client: client, peer: realPeer, listener: listener, origin: origin, preread: preread)
    }
}
