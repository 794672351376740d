import Glibc

/// Why a session ended, as the connection log will name it.
public enum SessionEnd: String {
    case clientClosed = "client_closed"
    case serverClosed = "server_closed"
    case clientReset = "client_reset"
    case serverReset = "server_reset"
    case clientError = "client_error"
    case serverError = "server_error"
    case idleTimeout = "idle_timeout"
    case connectFailed = "connect_failed"
    case noServer = "no_server"
    case denied = "denied"                  // allow/deny
    case limited = "limited"                // limit_conn, per-client rate cap
    case badHeader = "bad_header"           // malformed or late PROXY protocol header
    case serverDown = "server_down"         // health: the server went down and the upstream closes its sessions
    case adminShutdown = "admin_shutdown"   // `shutdown sessions` on the admin socket
    case ferryStopping = "ferry_stopping"
    case internalError = "internal_error"

    /// nginx's $status for the same ending.
    public var status: Int {
        switch self {
        case .clientClosed, .serverClosed, .clientReset, .serverReset, .clientError, .serverError, .idleTimeout,
             .serverDown, .adminShutdown, .ferryStopping: return 200
        case .badHeader: return 400
        case .denied: return 403
        case .connectFailed, .noServer: return 502
        case .limited: return 503
        case .internalError: return 500
        }
    }
}

/// One client connection and its server connection: connect with retries, then relay both ways.
///
/// Memory matters here: thousands of these sit idle for hours, so a session is a small object
/// with no buffer and no pipe of its own; its two `Pump`s borrow them only while bytes wait.
public final class Session: EventHandler, TimerTarget {
    enum Phase: UInt8 { case connecting, relaying, closed }

    static let clientSide: UInt8 = 0
    static let serverSide: UInt8 = 1
    static let interest: EpollEvents = [.readable, .writable, .readHangup, .edgeTriggered]
    static let hungUp: EpollEvents = [.readHangup, .hangup]

    unowned(unsafe) let runtime: Runtime
    let route: Route
    /// The upstream this session's server belongs to. Starts as the route's; a reload moves it
    /// to the new upstream object when the server remains, connecting or relaying, so the
    /// server's count holds it in either phase (see Runtime+Reload).
    var upstream: Upstream
    let client: Socket
    var server = Socket(FileDescriptor(-1))
    var phase: Phase = .connecting
    /// The server reset (or failed) while the client still takes the bytes before it: the
    /// server holds nothing for this session any more, so its count (active, max_conns,
    /// least_conn) was given back then, not at the session's end (see `abort`).
    /// Declared here, with `unackedSeen`, where alignment padding holds it.
    var serverSlotReleased = false
    /// After a reset (`abort`), the survivor's unacknowledged bytes at the last look: fewer now
    /// is progress. Declared here, where it fills alignment padding before `peer`.
    var unackedSeen: Int32 = 0
    var peer = -1
    var attempts: Int32 = 0
    var tried = TriedSet()
    let clientKey: ClientKey
    let clientPort: UInt16
    let startedAt: UInt64
    var lastActivity: UInt64
    public var timer = TimerSlot()
    var up = Pump()      // client -> server
    var down = Pump()    // server -> client
    /// The client became readable while the server connection was still being made.
    var clientReadable = false
    var serverIsUnix = false
    /// Which side sent the first FIN: the session's end is named after it.
    enum Closer: UInt8 { case none, client, server }
    var closer: Closer = .none
    /// The side that reset or failed while the session still relayed: the other side gets
    /// what ferry had accepted from it, then the reset (see `abort`). `.none` otherwise.
    var failed: Closer = .none
    var failedReason: SessionEnd = .internalError
    /// The client a PROXY header named, when one did (`listen ... proxy_protocol`).
    var origin: ClientOrigin? = nil
    /// `proxy_upload_rate`/`proxy_download_rate`; nil (one test per pump run) when neither is set.
    var rateLimit: SessionRateLimit? = nil
    /// Servers tried and how each attempt went, for the connection log.
    var attemptLog = AttemptLog()
    /// Where the client connected, and nginx's $connection serial; set by the runtime at accept.
    /// Strong: a graceful stop closes and drops the listeners while their sessions still run.
    var listener: Listener? = nil
    var connection: UInt64 = 0
    /// The local address, kept only for a wildcard listener whose log format prints $server_addr.
    var localAddress: LocalAddress? = nil

    // Intrusive list of live sessions, owned by the runtime (for shutdown and counting).
    var next: Session? = nil
    unowned(unsafe) var previous: Session? = nil

    init(runtime: Runtime, route: Route, client: Socket, clientKey: ClientKey, clientPort: UInt16, now: UInt64) {
        self.clientPort = clientPort
        self.runtime = runtime
        self.route = route
        self.upstream = route.upstream
        self.client = client
        self.clientKey = clientKey
        startedAt = now
        lastActivity = now
    }

    // MARK: connecting

    /// Chooses a server and starts a non-blocking connect, moving on to the next server while
    /// attempts fail at once. Precondition: phase == .connecting, no server socket open.
    func connectNext() {
        let now = runtime.loop.now
        while true {
            if attempts > 0 {
                let outOfTries = route.nextUpstreamTries > 0 && Int(attempts) >= route.nextUpstreamTries
                let outOfTime = route.nextUpstreamTimeout > 0 && now &- startedAt >= route.nextUpstreamTimeout
                if !route.nextUpstream || outOfTries || outOfTime {
                    return end(.connectFailed)
                }
            }
            // A failed attempt on a server a reload dropped: retry among the current servers.
            if upstream.retired { runtime.joinCurrentUpstream(self) }
            guard let p = upstream.scheduler.select(client: clientKey, now: now, tried: tried) else {
                if attempts == 0 { runtime.noLiveServers(upstream) }
                return end(attempts == 0 ? .noServer : .connectFailed)
            }
            if upstream.noLiveServers != nil { runtime.liveServersBack(upstream) }
            attempts += 1
            tried.insert(p)
            peer = p
            attemptLog.begin(peer: p, offset: now &- startedAt)
            upstream.scheduler.sessionOpened(p)
            let address = upstream.addresses[p]
            serverIsUnix = address.isUnix
            do {
                server = try Socket.stream(family: address.family)
                if !serverIsUnix {
                    server.setNoDelay()
                    if route.serverKeepalive != .off || route.userTimeoutMilliseconds > 0 {
                        // A failed option must not fail the connect: the session still works.
                        try? server.applyDeadPeerDetection(keepalive: route.serverKeepalive, userTimeoutMilliseconds: route.userTimeoutMilliseconds)
                    }
                }
                if let local = route.bind {
                    switch bindLocal(local, server: address) {
                    case .bound: break
                    case .otherFamily: continue
                    case .failed: return end(.internalError)
                    }
                }
                let pending = try server.connect(to: address)
                try runtime.loop.register(server.fd, interest: Session.interest, handler: self, side: Session.serverSide)
                if case .done = pending {
                    return established(serverEvents: [])
                }
                runtime.loop.timers.schedule(self, at: now &+ route.connectTimeout)
                return
            } catch {
                if error == .tooManyOpenFiles || error == .tooManyOpenFilesInSystem {
                    // Not the server's fault: do not count a failure against it, and hold new
                    // clients in the backlog until descriptors free up.
                    abandonServer(failed: false, cause: error)
                    // End first: this session's own ending would otherwise reopen the gate at
                    // once, and each client in the backlog would be accepted only to meet the
                    // same failure and be dropped.
                    end(.internalError)
                    return runtime.acceptFailed(error)
                }
                abandonServer(failed: true, cause: error)
            }
        }
    }

    enum LocalBindResult { case bound, otherFamily, failed }

    /// `proxy_bind`: binds the new server socket to the configured local address. Precondition:
    /// `server` was just created for `address`, nothing else done with it.
    ///
    /// The builder refuses a file whose proxy_bind family differs from a server's, so a
    /// mismatch here is a server added over the admin socket: that attempt fails as ferry's own
    /// (not held against the server) and the next server is tried; nginx would end the session
    /// with 500. Any other bind failure (the address is not this host's, a fixed port in use)
    /// would repeat on every server: the session ends with 500 (`internal_error`), as in nginx.
    private func bindLocal(_ local: SocketAddress, server address: SocketAddress) -> LocalBindResult {
        let cause: Errno
        if local.family != address.family {
            cause = Errno(EAFNOSUPPORT)
        } else {
            if local.port == 0 { server.setBindAddressNoPort() }
            do {
                try server.bind(local)
                return .bound
            } catch {
                cause = error
            }
        }
        runtime.localBindFailed(self, address: address, cause: cause)
        abandonServer(failed: false, cause: cause, outcome: .localError)
        return local.family != address.family ? .otherFamily : .failed
    }

    /// Closes the server socket of a failed attempt and accounts for it.
    private func abandonServer(failed: Bool, cause: Errno, outcome: AttemptOutcome? = nil) {
        if server.fd.rawValue >= 0 {
            runtime.loop.deregister(server.fd)
            server.close()
            server = Socket(FileDescriptor(-1))
        }
        upstream.scheduler.sessionClosed(peer)
        attemptLog.finish(outcome ?? AttemptOutcome(cause), offset: runtime.loop.now &- startedAt)
        if failed {
            upstream.stats[peer].connectFailures &+= 1
            upstream.totals.connectFailures &+= 1
            upstream.scheduler.connectFailed(peer, now: runtime.loop.now)
            runtime.connectFailed(upstream: upstream, peer: peer, cause: cause)
        }
        peer = -1
    }

    private func connectFinished(_ events: EpollEvents) {
        // A server that accepted, spoke (CCcam's banner) and reset before this event was
        // handled shows the reset beside its queued bytes: it was connected. The client gets
        // the bytes, then the reset (`abort`), as from the server directly; it is no failed
        // connect, and the server is not counted down for it.
        if events.contains(.readable) && !events.isDisjoint(with: [.error, .hangup]) && server.hasQueuedBytes() {
            runtime.loop.timers.cancel(self)
            return established(serverEvents: events)
        }
        if events.contains(.error) || events.contains(.hangup) {
            let cause = server.pendingError() ?? .connectionRefused
            runtime.loop.timers.cancel(self)
            abandonServer(failed: true, cause: cause)
            return connectNext()
        }
        runtime.loop.timers.cancel(self)
        established(serverEvents: events)
    }

    private func established(serverEvents: EpollEvents) {
        upstream.scheduler.connectSucceeded(peer, now: runtime.loop.now)
        attemptLog.finish(.connected, offset: runtime.loop.now &- startedAt)
        let now = runtime.loop.now
        upstream.stats[peer].recordSession(open: upstream.scheduler.peers[peer].active, now: now)
        upstream.totals.recordSession(open: upstream.scheduler.peers.reduce(0) { $0 + $1.active }, now: now)
        phase = .relaying
        lastActivity = runtime.loop.now
        runtime.loop.timers.schedule(self, at: lastActivity &+ route.idleTimeout)
        // Queued ahead of any client byte: the up pump sends what it holds before reading.
        if let version = route.sendProxyProtocol { queueProxyHeader(version) }
        // A server that speaks first (CCcam's banner) may already have bytes waiting.
        if !serverEvents.isDisjoint(with: Session.hungUp) { down.sourceHungUp = true }
        if !serverEvents.isDisjoint(with: [.readable, .readHangup]) { pumpDown() }
        if phase == .relaying && (clientReadable || up.isHolding) { pumpUp() }
    }

    // MARK: events

    public func handleEvent(_ events: EpollEvents, side: UInt8) {
        switch phase {
        case .connecting:
            if side == Session.serverSide {
                connectFinished(events)
            } else if events.contains(.error) {
                // The client reset before we reached a server: nothing to relay.
                end(.clientReset)
            } else if !events.isDisjoint(with: [.readable, .readHangup, .hangup]) {
                // The registration's first EPOLLOUT says nothing about input: no read for it.
                clientReadable = true
                if !events.isDisjoint(with: Session.hungUp) { up.sourceHungUp = true }
            }
        case .relaying:
            if failed != .none { return flushEvent(events, side: side) }
            if side == Session.clientSide {
                if !events.isDisjoint(with: Session.hungUp) { up.sourceHungUp = true }
                if !events.isDisjoint(with: [.readable, .readHangup, .hangup, .error]) { pumpUp() }
                if phase == .relaying && failed == .none && down.isHolding && !events.isDisjoint(with: [.writable, .error, .hangup]) { pumpDown() }
            } else {
                if !events.isDisjoint(with: Session.hungUp) { down.sourceHungUp = true }
                if !events.isDisjoint(with: [.readable, .readHangup, .hangup, .error]) { pumpDown() }
                if phase == .relaying && failed == .none && up.isHolding && !events.isDisjoint(with: [.writable, .error, .hangup]) { pumpUp() }
            }
            // The usual event is plain readiness: one test, and the rest is for resets only.
            if phase == .relaying && !events.isDisjoint(with: [.error, .hangup]) {
                if failed == .none {
                    endIfResetUnread(events, side: side)
                } else if events.contains(.error) && (side == Session.clientSide) != (failed == .client) {
                    // This event's pump found the other side failed, and this side reset too:
                    // its edge is spent here, so it is acted on here.
                    end(failedReason, relayReset: true)
                }
            }
        case .closed:
            return
        }
    }

    /// A reset that no pump will read. On a socket whose inbound direction already ended,
    /// nothing reads it any more: without this the session would wait for proxy_timeout. On
    /// one whose inbound direction holds bytes the other side has not taken, that direction
    /// reads nothing until they drain, and would meet the reset only then; so on one whose
    /// direction rests under proxy_upload_rate/proxy_download_rate. Either way the session
    /// learns of the reset now and passes it on after the bytes before it (`abort`).
    private func endIfResetUnread(_ events: EpollEvents, side: UInt8) {
        let isClient = side == Session.clientSide
        let inbound = isClient ? up : down
        if inbound.finished {
            abort(isClient ? .clientReset : .serverReset, failedIsClient: isClient)
        } else if (inbound.isHolding || rateLimit?.isResting(upload: isClient) == true) && events.contains(.error) {
            let e = (isClient ? client : server).pendingError() ?? .connectionReset
            let reason: SessionEnd = e == .connectionReset ? (isClient ? .clientReset : .serverReset)
                                                           : (isClient ? .clientError : .serverError)
            abort(reason, failedIsClient: isClient)
        }
    }

    func pumpUp() {
        lastActivity = runtime.loop.now
        if let limit = rateLimit, limit.uploadRate > 0 { return pumpLimited(limit, upload: true) }
        let outcome = up.run(from: client, to: server, runtime.relay, allowSplice: !serverIsUnix)
        settle(outcome, sourceIsClient: true)
    }

    func pumpDown() {
        lastActivity = runtime.loop.now
        if let limit = rateLimit, limit.downloadRate > 0 { return pumpLimited(limit, upload: false) }
        let outcome = down.run(from: server, to: client, runtime.relay, allowSplice: !serverIsUnix)
        if !attemptLog.hasFirstByte { serverAnswered(outcome) }
        settle(outcome, sourceIsClient: false)
    }

    /// Stamps $upstream_first_byte_time when this run of the server's direction read anything:
    /// bytes, its FIN or an error, as nginx counts the first read that did not block. Called
    /// after each run of that direction until it has, so a session pays one comparison per run, and before the
    /// outcome is settled, since settling may end the session and write its log line.
    func serverAnswered(_ outcome: PumpOutcome) {
        let read: Bool
        switch outcome {
        case .sourceFailed, .finished: read = true
        case .waiting, .yielded, .destinationFailed: read = down.bytes > 0 || down.sourceEnded
        }
        guard read else { return }
        attemptLog.firstByte(offset: runtime.loop.now &- startedAt)
    }

    func settle(_ outcome: PumpOutcome, sourceIsClient: Bool) {
        if failed != .none { return settleFlush(outcome, sourceIsClient: sourceIsClient) }
        switch outcome {
        case .waiting:
            return
        case .yielded:
            runtime.loop.afterBatch { [self] in
                guard phase == .relaying && failed == .none else { return }
                if sourceIsClient { pumpUp() } else { pumpDown() }
            }
        case .finished:
            if closer == .none { closer = sourceIsClient ? .client : .server }
            if (up.finished && down.finished) || !route.halfClose {
                end(closer == .client ? .clientClosed : .serverClosed)
            } else {
                (sourceIsClient ? server : client).shutdown(.write)
            }
        case .sourceFailed(let e):
            // Any failure is passed on as a reset: a FIN would tell the peer the stream ended well.
            if e == .connectionReset {
                abort(sourceIsClient ? .clientReset : .serverReset, failedIsClient: sourceIsClient)
            } else {
                abort(sourceIsClient ? .clientError : .serverError, failedIsClient: sourceIsClient)
            }
        case .destinationFailed(let e):
            let resetSide: SessionEnd = sourceIsClient ? .serverReset : .clientReset
            abort(e == .connectionReset || e == .brokenPipe ? resetSide : (sourceIsClient ? .serverClosed : .clientClosed),
                  failedIsClient: !sourceIsClient)
        }
    }

    // MARK: a reset passed on after the bytes before it

    /// How often a session waiting for the survivor to acknowledge the last bytes looks again
    /// (the kernel raises no event for "everything acknowledged"): 10 ms while it takes them,
    /// backing off to 1 s as it stops, so thousands of sleeping clients of a crashed server
    /// cost little until proxy_timeout.
    static let unackedPoll: UInt64 = 10_000_000
    static let unackedPollMax: UInt64 = 1_000_000_000

    /// One side reset (or failed). A peer connected directly would still read every byte its
    /// own kernel had accepted before the reset reached it; through ferry those bytes wait in
    /// ferry's receive queue from the failed side, in a held buffer or pipe, and in the
    /// survivor's send queue, which a close with SO_LINGER 0 throws away. So the survivor is
    /// given all of them first, and the reset once it has acknowledged them. Bytes towards the
    /// failed side can reach nobody and are dropped now. A survivor that takes nothing for
    /// proxy_timeout gets the reset then; a second failure ends the session at once.
    func abort(_ reason: SessionEnd, failedIsClient: Bool) {
        failed = failedIsClient ? .client : .server
        failedReason = reason
        let relay = runtime.relay
        if failedIsClient {
            down.release(relay)
        } else {
            up.release(relay)
            // A client that reads slowly, or not at all, must not keep a crashed server's slot
            // for up to proxy_timeout: under max_conns that would turn away clients it can serve.
            upstream.scheduler.sessionClosed(peer)
            serverSlotReleased = true
        }
        if let limit = rateLimit {
            // Dropped, so neither its timer nor a run already queued pumps again (see its timerFired).
            runtime.loop.timers.cancel(limit)
            rateLimit = nil
        }
        pumpFromFailed()
    }

    /// Everything the failed side sent has been read and handed to the survivor.
    private var failedSideDrained: Bool { (failed == .client ? up : down).finished }

    private func pumpFromFailed() {
        if failedSideDrained { return awaitAcknowledged() }
        // Unlimited now: the rate a client paid for does not keep a dead session open.
        let outcome = failed == .client
            ? up.run(from: client, to: server, runtime.relay, allowSplice: !serverIsUnix)
            : down.run(from: server, to: client, runtime.relay, allowSplice: !serverIsUnix)
        lastActivity = runtime.loop.now
        if failed == .server && !attemptLog.hasFirstByte { serverAnswered(outcome) }
        settleFlush(outcome, sourceIsClient: failed == .client)
    }

    private func settleFlush(_ outcome: PumpOutcome, sourceIsClient: Bool) {
        guard (failed == .client) == sourceIsClient else { return }   // towards the failed side: nothing to do
        switch outcome {
        case .waiting:
            // Waiting for the survivor to take more (its EPOLLOUT), or the failed side has
            // nothing left to read without ending (it reports its end instead of EAGAIN).
            return
        case .yielded:
            runtime.loop.afterBatch { [self] in
                guard phase == .relaying else { return }
                pumpFromFailed()
            }
        case .finished:
            awaitAcknowledged()
        case .sourceFailed:
            if sourceIsClient { up.finished = true } else { down.finished = true }
            awaitAcknowledged()
        case .destinationFailed:
            end(failedReason, relayReset: true)
        }
    }

    /// Events once a side has failed: the failed side's bytes (readable) and the survivor's
    /// room for them (writable) drive the one direction left; the survivor failing too ends it
    /// (a reset raises EPOLLERR; a bare EPOLLHUP is its FIN after ours, and it may still read).
    private func flushEvent(_ events: EpollEvents, side: UInt8) {
        let fromFailed = (side == Session.clientSide) == (failed == .client)
        if !fromFailed && events.contains(.error) {
            return end(failedReason, relayReset: true)
        }
        pumpFromFailed()
    }

    /// Everything from the failed side is in the survivor's send queue: the reset follows as
    /// soon as the survivor has acknowledged it all (polled; see `unackedPoll`). A survivor
    /// that is not an open TCP connection ends it now: closed (it reset too; its count of
    /// unacknowledged bytes then never moves again), or a Unix socket, whose count is of bytes
    /// its reader has not read and whose close is no reset.
    private func awaitAcknowledged() {
        if failed == .server { closeFailedServer() }
        let survivor = failed == .client ? server : client
        guard survivor.isOpenTCP(), let queued = survivor.unacknowledgedBytes(), queued > 0 else {
            return end(failedReason, relayReset: true)
        }
        let now = runtime.loop.now
        // A survivor still acknowledging is active, however long the tail takes.
        if queued < Int(unackedSeen) { lastActivity = now }
        unackedSeen = Int32(clamping: queued)
        let deadline = lastActivity &+ route.idleTimeout
        if now >= deadline { return end(failedReason, relayReset: true) }
        let poll = min(Session.unackedPollMax, max(Session.unackedPoll, (now &- lastActivity) / 8))
        runtime.loop.timers.schedule(self, at: min(deadline, now &+ poll))
    }

    /// Everything the server sent before it failed has been read: its socket has nothing more
    /// to give, and a client that dawdles over the last bytes need not hold its descriptor.
    private func closeFailedServer() {
        guard server.fd.rawValue >= 0 else { return }
        runtime.loop.deregister(server.fd)
        server.closeWithReset()
        server = Socket(FileDescriptor(-1))
    }

    // MARK: timers

    public func timerFired(now: UInt64) {
        switch phase {
        case .connecting:
            abandonServer(failed: true, cause: .timedOut)
            connectNext()
        case .relaying:
            if failed != .none && failedSideDrained { return awaitAcknowledged() }
            // Activity only stamps `lastActivity`; the deadline is checked lazily here.
            let deadline = lastActivity &+ route.idleTimeout
            if now >= deadline {
                end(failed == .none ? .idleTimeout : failedReason, relayReset: failed != .none)
            } else {
                runtime.loop.timers.schedule(self, at: deadline)
            }
        case .closed:
            return
        }
    }

    // MARK: ending

    /// Closes both sockets and gives everything back. With `relayReset`, the surviving side is
    /// closed with a RST, so a reset on one side reaches the other as a reset.
    func end(_ reason: SessionEnd, relayReset: Bool = false) {
        guard phase != .closed else { return }
        if phase == .connecting && peer >= 0 { attemptLog.abandon(offset: runtime.loop.now &- startedAt) }
        // Bytes count once a server took the session: a PROXY header's preread bytes of a
        // session that never connected reached no server (LiveCounts counts the same way).
        let relayed = phase == .relaying
        phase = .closed
        runtime.loop.timers.cancel(self)
        if let limit = rateLimit { runtime.loop.timers.cancel(limit) }
        let relay = runtime.relay
        up.release(relay)
        down.release(relay)
        // Ended for another reason (server marked down, `shutdown sessions`, stop) while passing
        // a reset on: the survivor still gets the reset, not a FIN after a cut stream.
        let reset = relayReset || failed != .none
        runtime.loop.deregister(client.fd)
        if reset || reason == .clientReset { client.closeWithReset() } else { client.close() }
        if server.fd.rawValue >= 0 {
            runtime.loop.deregister(server.fd)
            if reset || reason == .serverReset { server.closeWithReset() } else { server.close() }
            server = Socket(FileDescriptor(-1))
        }
        if let limits = route.limits, limits.holdsCounts { limits.release(clientKey) }
        if peer >= 0 && !serverSlotReleased { upstream.scheduler.sessionClosed(peer) }
        if relayed {
            upstream.stats[peer].bytesToServer &+= up.bytes
            upstream.stats[peer].bytesToClient &+= down.bytes
            upstream.totals.bytesToServer &+= up.bytes
            upstream.totals.bytesToClient &+= down.bytes
            listener?.stats.bytesIn &+= up.bytes
            listener?.stats.bytesOut &+= down.bytes
        }
        runtime.sessionEnded(self, reason: reason)
    }
}
