import XCTest
import Glibc
import CLinux
@testable import FerryCore

/// System/ and EventLoop/ on real descriptors. Every helper closes what it opens.
final class SystemTests: XCTestCase {
    /// A connected TCP pair on loopback, closed after `body` unless `body` closed one itself
    /// (it says so by returning the sockets it closed).
    func withConnectedPair(_ body: (Socket, Socket) throws -> [Socket]) throws {
        let listener = try Socket.stream(family: AF_INET)
        defer { listener.close() }
        try listener.bind(SocketAddress(ipv4: "127.0.0.1", port: 0)!)
        try listener.listen(backlog: 4)
        let address = listener.localAddress()!
        let client = try Socket.stream(family: AF_INET)
        _ = try client.connect(to: address)
        var peer = SocketAddress()
        var accepted: Socket? = nil
        for _ in 0..<200 where accepted == nil {
            if case .done(let s) = try listener.accept(peer: &peer) { accepted = s } else { usleep(5000) }
        }
        guard let server = accepted else { client.close(); return XCTFail("no connection accepted in 1 s") }
        XCTAssertEqual(peer.host, "127.0.0.1")
        var closed: [Socket] = []
        defer { for s in [client, server] where !closed.contains(s) { s.close() } }
        closed = try body(client, server)
    }

    /// EpollEvents spells the flags as literals (so they fold at compile time); they must be
    /// the values <sys/epoll.h> gives, as compiled into the C shim.
    func testEpollFlagLiteralsMatchTheSystemHeader() {
        XCTAssertEqual(EpollEvents.readable.rawValue, FERRY_EPOLLIN)
        XCTAssertEqual(EpollEvents.writable.rawValue, FERRY_EPOLLOUT)
        XCTAssertEqual(EpollEvents.error.rawValue, FERRY_EPOLLERR)
        XCTAssertEqual(EpollEvents.hangup.rawValue, FERRY_EPOLLHUP)
        XCTAssertEqual(EpollEvents.readHangup.rawValue, FERRY_EPOLLRDHUP)
        XCTAssertEqual(EpollEvents.edgeTriggered.rawValue, FERRY_EPOLLET)
    }

    func testAddressesParseAndPrint() {
        XCTAssertEqual(SocketAddress(ipv4: "127.1.2.3", port: 12000)?.description, "127.1.2.3:12000")
        XCTAssertEqual(SocketAddress(ipv6: "::1", port: 80)?.description, "[::1]:80")
        XCTAssertEqual(SocketAddress(unixPath: "/tmp/s")?.description, "unix:/tmp/s")
        XCTAssertNil(SocketAddress(ipv4: "300.1.1.1", port: 1))
        XCTAssertNil(SocketAddress(unixPath: String(repeating: "x", count: 200)))
        XCTAssertEqual(SocketAddress(ipv4: "127.0.0.9", port: 1)!.clientKey, ClientKey(ipv4: 127, 0, 0, 9))
        XCTAssertEqual(SocketAddress(ipv6: "::ffff:127.0.0.9", port: 1)!.clientKey, ClientKey(ipv4: 127, 0, 0, 9),
                       "an IPv4 client and its IPv4-mapped form hash alike")
    }

    func testNonBlockingReceiveSaysWouldBlockThenData() throws {
        try withConnectedPair { client, server in
            var buf = [UInt8](repeating: 0, count: 64)
            guard case .wouldBlock = try server.receive(into: &buf, count: 64) else { XCTFail("expected EAGAIN as .wouldBlock"); return [] }
            let msg: [UInt8] = Array("hello".utf8)
            guard case .done(5) = try client.send(from: msg, count: 5) else { XCTFail("send"); return [] }
            usleep(20_000)
            guard case .done(let n) = try server.receive(into: &buf, count: 64) else { XCTFail("receive"); return [] }
            XCTAssertEqual(Array(buf[0..<n]), msg)
            return []
        }
    }

    func testSendToAResetPeerIsATypedErrorNotASignal() throws {
        try withConnectedPair { client, server in
            server.closeWithReset()
            usleep(20_000)
            var failure: Errno? = nil
            for _ in 0..<3 where failure == nil {
                do { _ = try client.send(from: [1, 2, 3], count: 3) } catch { failure = error as? Errno }
            }
            XCTAssertTrue(failure == .connectionReset || failure == .brokenPipe, "\(String(describing: failure))")
            return [server]
        }
    }

    func testSpliceMovesBytesSocketToPipeToSocket() throws {
        try withConnectedPair { client, server in
            let pipe = try Pipe.make()
            defer { pipe.close() }
            let payload = (0..<30_000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
            var sent = 0
            // Bounded: 30 KB fit a loopback socket's buffer at once; a send that keeps saying
            // "would block" is a failure here, not a loop that spins for ever.
            for _ in 0..<200 where sent < payload.count {
                if case .done(let k) = try client.send(from: Array(payload[sent...]), count: payload.count - sent) { sent += k } else { usleep(5000) }
            }
            guard sent == payload.count else { XCTFail("sent \(sent) of \(payload.count) bytes in 1 s"); return [] }
            // server -> pipe -> server's own peer is not possible; splice into the pipe and read it back.
            var got: [UInt8] = []
            for _ in 0..<100 where got.count < payload.count {
                if case .done(let n) = try splice(from: server.fd, to: pipe.writeEnd, count: 65536, more: false), n > 0 {
                    var chunk = [UInt8](repeating: 0, count: n)
                    guard case .done(let r) = try pipe.readEnd.read(into: &chunk, count: n) else { XCTFail("pipe read"); return [] }
                    got += chunk[0..<r]
                } else { usleep(2000) }
            }
            XCTAssertEqual(got, payload)
            return []
        }
    }

    func testStaleEventForAReusedDescriptorIsDropped() throws {
        final class Recorder: EventHandler {
            var events = 0
            var onEvent: () -> Void = {}
            func handleEvent(_ events: EpollEvents, side: UInt8) { self.events += 1; onEvent() }
        }
        func pair() -> (Int32, Int32) {
            var fds: [Int32] = [0, 0]
            XCTAssertEqual(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &fds), 0)
            return (fds[0], fds[1])
        }
        let loop = try EventLoop(descriptorLimit: 1024)
        let (p, pPeer) = pair(), (q, qPeer) = pair(), (fresh, freshPeer) = pair()
        defer { for fd in [p, pPeer, q, qPeer, freshPeer] { close(fd) } }
        let first = Recorder(), victim = Recorder(), newOwner = Recorder()
        // `first`'s handler does what a session does when it ends and a new client is accepted in
        // the same batch: it closes q, and a new socket takes descriptor number q.
        first.onEvent = {
            loop.deregister(FileDescriptor(q))
            XCTAssertEqual(dup2(fresh, q), q)   // q now names a new, unreadable socket
            close(fresh)
            try? loop.register(FileDescriptor(q), interest: [.readable], handler: newOwner)
            loop.stop()
        }
        try loop.register(FileDescriptor(p), interest: [.readable], handler: first)
        try loop.register(FileDescriptor(q), interest: [.readable], handler: victim)
        // Ready-list order is readiness order: p's event comes first in the batch, then q's.
        XCTAssertEqual(write(pPeer, "p", 1), 1)
        XCTAssertEqual(write(qPeer, "q", 1), 1)
        let guardTimer = OneShotTimer { _ in loop.stop() }
        loop.timers.schedule(guardTimer, at: MonotonicClock.now() + 1_000_000_000)
        loop.run()
        XCTAssertEqual(first.events, 1)
        XCTAssertEqual(victim.events, 0, "the old owner got an event after giving the descriptor up")
        XCTAssertEqual(newOwner.events, 0, "q's stale event reached the descriptor's new owner")
        loop.timers.cancel(guardTimer)
    }

    /// The soft limit is lowered first and read back with getrlimit after: where it already is
    /// the hard limit (a shell with ulimit -n at the hard limit, as here), "soft == hard"
    /// held whether or not anything was raised.
    func testOpenFileLimitIsRaisedToTheHardLimit() throws {
        var original = rlimit()
        XCTAssertEqual(getrlimit(Int32(RLIMIT_NOFILE.rawValue), &original), 0)
        defer { var back = original; setrlimit(Int32(RLIMIT_NOFILE.rawValue), &back) }
        let open = ResourceLimits.openDescriptorCount()
        XCTAssertGreaterThan(open, 2)
        let lowered = rlim_t(max(open + 64, 256))
        guard lowered + 10 < original.rlim_max else { throw XCTSkip("hard RLIMIT_NOFILE \(original.rlim_max) leaves no room to lower the soft one") }
        func soft() -> Int {
            var now = rlimit()
            getrlimit(Int32(RLIMIT_NOFILE.rawValue), &now)
            return Int(clamping: now.rlim_cur)
        }
        var low = original
        low.rlim_cur = lowered
        XCTAssertEqual(setrlimit(Int32(RLIMIT_NOFILE.rawValue), &low), 0)
        XCTAssertEqual(soft(), Int(lowered))
        // worker_rlimit_nofile: a wanted value below the hard limit is set as asked.
        let asked = ResourceLimits.raiseOpenFileLimit(to: Int(lowered) + 10)
        XCTAssertEqual(asked.soft, Int(lowered) + 10)
        XCTAssertEqual(soft(), Int(lowered) + 10, "the limit in force, as getrlimit reads it")
        // Without one: up to the hard limit.
        let limits = ResourceLimits.raiseOpenFileLimit()
        XCTAssertEqual(limits.hard, Int(clamping: original.rlim_max))
        XCTAssertEqual(limits.soft, limits.hard)
        XCTAssertEqual(soft(), limits.hard, "the limit in force, as getrlimit reads it")
    }

    /// hasQueuedBytes (the connect completion's look for a server that spoke and reset) must
    /// leave a failed connect's error in place: with a peeking recv it was taken and cleared,
    /// and every async connect failure (unreachable, say) read as "refused".
    func testQueuedBytesLeaveTheConnectErrorPending() throws {
        let probe = try Socket.stream(family: AF_INET)
        try probe.bind(SocketAddress(ipv4: "127.0.0.1", port: 0)!)
        let refused = probe.localAddress()!
        probe.close()   // bound, never listening: a connect to it is refused
        let s = try Socket.stream(family: AF_INET)
        defer { s.close() }
        if case .done = try s.connect(to: refused) { return XCTFail("connect to a closed port succeeded") }
        var p = pollfd(fd: s.fd.rawValue, events: Int16(POLLOUT), revents: 0)
        XCTAssertEqual(poll(&p, 1, 2000), 1)
        XCTAssertFalse(s.hasQueuedBytes())
        XCTAssertEqual(s.pendingError(), .connectionRefused, "the connect's error was consumed")
    }
}
