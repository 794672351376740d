import XCTest
import Glibc
import FerryCore

/// Paths where the relay has no fresh edge to wake it: found in review, each reproduced here.
final class RelayRecoveryTests: IntegrationCase {
    /// A client that half-closes and then resets: its socket's inbound direction is over, so no
    /// pump reads it. The reset must still reach the backend at once, not at proxy_timeout.
    func testResetAfterHalfCloseReachesTheBackend() throws {
        let sawEOF = Box(false)
        let resetAfter = Box<Double?>(nil)
        let b = try scripted { fd in
            Net.setTimeouts(fd, 5)
            var buf = [UInt8](repeating: 0, count: 64)
            while recv(fd, &buf, 64, 0) > 0 {}
            sawEOF.value = true
            // In CLOSE_WAIT the socket reports POLLHUP/POLLERR only once a reset arrives.
            let start = Date()
            var p = pollfd(fd: fd, events: 0, revents: 0)
            if poll(&p, 1, 6000) == 1 { resetAfter.value = Date().timeIntervalSince(start) }
        }
        let f = try ferry("server { listen LISTEN; proxy_pass 127.0.0.1:\(b.port); proxy_connect_timeout 1s; proxy_timeout 10s; }")
        let c = try TestClient.connect(f.listenPort, timeout: 3)
        try c.send("hello")
        c.shutdownWrite()
        XCTAssertTrue(waitUntil(timeout: 3) { sawEOF.value }, "the client's FIN did not reach the backend")
        c.reset()
        XCTAssertTrue(waitUntil(timeout: 7) { resetAfter.value != nil }, "the backend never saw the client's reset")
        XCTAssertLessThan(resetAfter.value ?? 99, 2.0, "the reset waited for a timer instead of being relayed")
    }

    /// A reset from a side whose bytes ferry cannot pass on because the other side stopped
    /// reading: the direction holds a buffer or pipe and does not read the reset socket, so the
    /// reset once reached no pump and the session (with its server slot) lingered on. The
    /// stalled side is owed the bytes ferry accepted before the reset (see the test below), so
    /// it gets the reset when it has taken nothing for proxy_timeout, not at once, and not
    /// never: in both directions and with both transports.
    func testResetReachesAStalledSideAtProxyTimeout() throws {
        for mode in ["copy", "splice"] {
            // The client floods a backend that never reads, then resets.
            let resetAfter = Box<Double?>(nil)
            let clientGone = Box(false)
            let stalled = try scripted { fd in
                _ = waitUntil(timeout: 6) { clientGone.value }
                let start = Date()
                var p = pollfd(fd: fd, events: 0, revents: 0)
                if poll(&p, 1, 8000) == 1 { resetAfter.value = Date().timeIntervalSince(start) }
            }
            var f = try ferry("server { listen LISTEN; proxy_pass 127.0.0.1:\(stalled.port); proxy_connect_timeout 1s; proxy_timeout 2s; }",
                              environment: ["FERRY_RELAY": mode])
            let c = try TestClient.connect(f.listenPort, timeout: 3)
            XCTAssertGreaterThan(Self.fill(c.fd), 0, mode)
            c.reset()
            clientGone.value = true
            XCTAssertTrue(waitUntil(timeout: 9) { resetAfter.value != nil }, "\(mode): the stalled backend never saw the client's reset")
            XCTAssertLessThan(resetAfter.value ?? 99, 5.0, "\(mode): the client's reset waited longer than proxy_timeout")
            XCTAssertGreaterThan(resetAfter.value ?? 99, 1.0, "\(mode): the reset came before the stalled backend had proxy_timeout to take its bytes")
            stalled.stop()

            // The backend floods a client that never reads, then resets.
            let flooded = Box(false)
            let flooder = try scripted { fd in
                if Self.fill(fd) > 0 { flooded.value = true }
                var l = linger(l_onoff: 1, l_linger: 0)
                setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, socklen_t(MemoryLayout<linger>.size))
            }
            f = try ferry("server { listen LISTEN; proxy_pass 127.0.0.1:\(flooder.port); proxy_connect_timeout 1s; proxy_timeout 2s; }",
                          environment: ["FERRY_RELAY": mode])
            let d = try TestClient.connect(f.listenPort, timeout: 3)
            defer { d.close() }
            XCTAssertTrue(waitUntil(timeout: 6) { flooded.value }, "\(mode): the backend could not fill the path")
            let start = Date()
            var p = pollfd(fd: d.fd, events: 0, revents: 0)
            XCTAssertEqual(poll(&p, 1, 8000), 1, "\(mode): the stalled client never saw the backend's reset")
            XCTAssertLessThan(Date().timeIntervalSince(start), 5.0, "\(mode): the backend's reset waited longer than proxy_timeout")
            XCTAssertGreaterThan(Date().timeIntervalSince(start), 1.0, "\(mode): the reset came before the stalled client had proxy_timeout to take its bytes")
            flooder.stop()
        }
    }

    /// A reset passed on after the bytes ferry accepted before it. A peer connected directly
    /// reads everything its own kernel acknowledged and then meets the reset; through ferry
    /// those bytes sit in ferry's socket buffers and in its held buffer or pipe, which an
    /// abortive close at the reset threw away (a 4 MiB reply cut to what the reader's own
    /// buffer held, while the log counted all of it). The reader here reads only after the
    /// reset: it must get exactly the bytes the sender's kernel saw acknowledged, then a
    /// reset, in both directions and with both transports.
    func testBytesAcceptedBeforeAResetReachTheOtherSideFirst() throws {
        var payload = [UInt8](repeating: 0, count: 4 << 20)
        var x: UInt32 = 2463534242
        for i in payload.indices { x ^= x << 13; x ^= x >> 17; x ^= x << 5; payload[i] = UInt8(truncatingIfNeeded: x) }
        for mode in ["copy", "splice"] {
            // Backend -> client.
            let accepted = Box<Int?>(nil)
            let sender = try scripted { fd in accepted.value = Self.sendUntilStalledThenReset(fd, payload) }  // closed on return
            var f = try ferry("server { listen LISTEN; proxy_pass 127.0.0.1:\(sender.port); proxy_connect_timeout 1s; proxy_timeout 10s; }",
                              environment: ["FERRY_RELAY": mode])
            let c = try TestClient(fd: Self.smallReceiveBufferSocket(to: f.listenPort), timeout: 5)
            defer { c.close() }
            XCTAssertTrue(waitUntil(timeout: 10) { accepted.value != nil }, "\(mode): the backend never finished sending")
            usleep(300_000)
            let (got, ending) = Self.readToEnd(c.fd, limit: payload.count + 1, timeout: 5)
            XCTAssertEqual(got.count, accepted.value ?? -1, "\(mode): the client did not get what ferry accepted from the backend")
            XCTAssertTrue(got[...] == payload[..<min(got.count, payload.count)], "\(mode): the bytes before the reset arrived damaged")
            XCTAssertEqual(ending, .reset, "\(mode): the backend's reset did not follow its bytes")
            sender.stop()

            // Client -> backend.
            let received = Box<([UInt8], TestClient.Ending)?>(nil)
            let clientGone = Box(false)
            let reader = try scripted { fd in
                // No SO_RCVBUF here: shrunk after accept, below the window already offered, it
                // makes the kernel drop segments and back off for seconds. Unread, the buffer
                // stays at its initial size, far below the payload.
                _ = waitUntil(timeout: 10) { clientGone.value }
                usleep(300_000)
                received.value = Self.readToEnd(fd, limit: payload.count + 1, timeout: 5)
            }
            f = try ferry("server { listen LISTEN; proxy_pass 127.0.0.1:\(reader.port); proxy_connect_timeout 1s; proxy_timeout 10s; }",
                          environment: ["FERRY_RELAY": mode])
            let d = try TestClient.connect(f.listenPort, timeout: 5)
            let sent = Self.sendUntilStalledThenReset(d.fd, payload)
            d.close()
            clientGone.value = true
            XCTAssertTrue(waitUntil(timeout: 10) { received.value != nil }, "\(mode): the backend never finished reading")
            XCTAssertEqual(received.value?.0.count, sent, "\(mode): the backend did not get what ferry accepted from the client")
            if let got = received.value?.0 {
                XCTAssertTrue(got[...] == payload[..<min(got.count, payload.count)], "\(mode): the bytes before the reset arrived damaged")
            }
            XCTAssertEqual(received.value?.1, .reset, "\(mode): the client's reset did not follow its bytes")
            reader.stop()
        }
    }

    /// While a session passes a reset on to a client that is not reading, two things may end it
    /// early, and each must still leave the client with a reset, not a FIN after a cut stream
    /// or a session that polls on until proxy_timeout: `shutdown sessions` on the admin socket,
    /// and the client resetting too (its count of unacknowledged bytes then never moves).
    func testAResetBeingPassedOnEndsWithAResetWhateverEndsIt() throws {
        for ending in ["shutdown sessions", "client resets"] {
            let (f, flooder, flooded) = try ferryBeforeAResettingFlooder()
            let idleDescriptors = f.openFDCount()
            let c = try TestClient(fd: Self.smallReceiveBufferSocket(to: f.listenPort), timeout: 5)
            defer { c.close() }
            XCTAssertTrue(waitUntil(timeout: 6) { flooded.value }, "\(ending): the backend could not fill the path")
            flooder.stop()
            usleep(300_000)   // ferry has met the backend's reset and holds the bytes before it
            XCTAssertGreaterThan(f.openFDCount(), idleDescriptors, "\(ending): the session should still be passing bytes on")
            if ending == "shutdown sessions" {
                _ = try AdminSocket.command(f.adminPath, "shutdown sessions server u/b")
                let (_, end) = Self.readToEnd(c.fd, limit: 64 << 20, timeout: 5)
                XCTAssertEqual(end, .reset, "\(ending): the client should get the backend's reset, not a FIN")
            } else {
                c.reset()
            }
            XCTAssertTrue(waitUntil(timeout: 3) { f.openFDCount() == idleDescriptors },
                          "\(ending): the session lingered: \(f.openFDCount()) descriptors, \(idleDescriptors) when idle")
        }
    }

    /// A server that resets while its client has not yet taken the bytes before the reset: the
    /// client is owed them (above), but the server holds nothing for that session any more. Its
    /// slot must be free at once, not at proxy_timeout: with max_conns=1 the next client is
    /// served while the first still dawdles, and show stat counts no session on the server.
    /// (Its socket stays open while it still holds unread bytes for the client.)
    func testAServerThatResetFreesItsSlotWhileItsClientTakesTheLastBytes() throws {
        let connections = Box(0)
        let flooded = Box(false)
        let b = try scripted { fd in
            var n = 0
            connections.update { $0 += 1; n = $0 }
            if n == 1 {
                if Self.fill(fd) > 0 { flooded.value = true }
                var l = linger(l_onoff: 1, l_linger: 0)
                setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, socklen_t(MemoryLayout<linger>.size))
            } else {
                let banner = TestBackend.banner("second-client")
                _ = send(fd, banner, banner.count, Int32(MSG_NOSIGNAL))
                usleep(500_000)
            }
        }
        let f = try ferry("""
            upstream u { server 127.0.0.1:\(b.port) max_conns=1 name=b; }
            server { listen LISTEN; proxy_pass u; proxy_connect_timeout 1s; proxy_timeout 20s; }
            """, main: "admin_socket @DIR@/admin.sock;", environment: ["FERRY_RELAY": "copy"])
        let first = try TestClient(fd: Self.smallReceiveBufferSocket(to: f.listenPort), timeout: 5)
        defer { first.close() }
        XCTAssertTrue(waitUntil(timeout: 8) { flooded.value }, "the backend could not fill the path")
        usleep(300_000)   // its close (a reset) has reached ferry, which holds the bytes before it
        var line = ""
        XCTAssertTrue(waitUntil(timeout: 3) {
            line = Self.showStatLine(f, "u,b,")
            return Self.currentSessions(line) == "0"
        }, "show stat still counts a session on the server that reset: \(line)")
        XCTAssertEqual(try bannerThrough(f.listenPort, timeout: 3), "second-client",
                       "max_conns=1 turned away a client while the only session on the server was its reset being passed on")
        // The first client still gets every byte before the reset, and then the reset.
        let (got, ending) = Self.readToEnd(first.fd, limit: 64 << 20, timeout: 5)
        XCTAssertGreaterThan(got.count, 0)
        XCTAssertEqual(ending, .reset, "the first client should end with the backend's reset")
    }

    /// `del server` must wait for a session still passing the server's reset on to its client:
    /// the slot is free by then (above), but the session is still the server's, listed by `show
    /// sessions` and reporting its bytes to that server when it ends. Once the client has taken
    /// the bytes and the reset, the deletion goes through.
    func testDeleteServerWaitsForASessionPassingItsResetOn() throws {
        let (f, _, flooded) = try ferryBeforeAResettingFlooder()
        let c = try TestClient(fd: Self.smallReceiveBufferSocket(to: f.listenPort), timeout: 5)
        defer { c.close() }
        XCTAssertTrue(waitUntil(timeout: 6) { flooded.value }, "the backend could not fill the path")
        // ferry has met the backend's reset and holds the bytes before it: the slot is free.
        var line = ""
        XCTAssertTrue(waitUntil(timeout: 3) {
            line = Self.showStatLine(f, "u,b,")
            return Self.currentSessions(line) == "0"
        }, "the server that reset still holds its slot: \(line)")
        _ = try AdminSocket.command(f.adminPath, "set server u/b state maint")
        XCTAssertEqual(try AdminSocket.command(f.adminPath, "del server u/b"),
                       "Server still has connections attached to it, cannot remove it.\n\n")
        XCTAssertTrue(try AdminSocket.command(f.adminPath, "show sessions").contains(" u b "),
                      "the session passing the reset on should still be listed")
        let (got, end) = Self.readToEnd(c.fd, limit: 64 << 20, timeout: 5)
        XCTAssertGreaterThan(got.count, 0)
        XCTAssertEqual(end, .reset)
        var answer = ""
        XCTAssertTrue(waitUntil(timeout: 3) {
            answer = (try? AdminSocket.command(f.adminPath, "del server u/b")) ?? ""
            return answer.hasPrefix("Server deleted.")
        }, "once the session is over the server can be deleted: \(answer)")
    }

    /// ferry (copy relay, admin socket) before one server `u/b` that fills the path to its
    /// client, which is not reading, and then resets: the bytes before the reset wait in ferry.
    func ferryBeforeAResettingFlooder() throws -> (FerryInstance, ScriptedBackend, flooded: Box<Bool>) {
        let flooded = Box(false)
        let flooder = try scripted { fd in
            if Self.fill(fd) > 0 { flooded.value = true }
            var l = linger(l_onoff: 1, l_linger: 0)
            setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, socklen_t(MemoryLayout<linger>.size))
        }
        let f = try ferry("""
            upstream u { server 127.0.0.1:\(flooder.port) name=b; }
            server { listen LISTEN; proxy_pass u; proxy_connect_timeout 1s; proxy_timeout 20s; }
            """, main: "admin_socket @DIR@/admin.sock;", environment: ["FERRY_RELAY": "copy"])
        return (f, flooder, flooded)
    }

    /// The `show stat` line that starts with `prefix` ("u,b,"), or "".
    static func showStatLine(_ f: FerryInstance, _ prefix: String) -> String {
        (try? AdminSocket.command(f.adminPath, "show stat"))?.split(separator: "\n").first { $0.hasPrefix(prefix) }.map(String.init) ?? ""
    }

    /// A `show stat` line's scur field: the sessions the server counts now.
    static func currentSessions(_ line: String) -> Substring? {
        line.split(separator: ",", omittingEmptySubsequences: false).dropFirst(4).first
    }

    /// A client socket whose receive buffer is small, so what it has not read stays in ferry.
    static func smallReceiveBufferSocket(to port: UInt16) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SocketError("socket") }
        var small: Int32 = 16 << 10
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, socklen_t(MemoryLayout<Int32>.size))
        var a = sockaddr_in()
        a.sin_family = sa_family_t(AF_INET)
        a.sin_port = port.bigEndian
        a.sin_addr.s_addr = inet_addr("127.0.0.1")
        let r = withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard r == 0 else { Glibc.close(fd); throw SocketError("connect") }
        return fd
    }

    /// Sends `payload` until it is all sent or the path stops taking more, waits until the
    /// kernel's count of unacknowledged bytes holds still (at most 5 s), and arms SO_LINGER 0,
    /// so the owner's close resets. Returns the bytes the receiving side's kernel acknowledged:
    /// what the far end is owed.
    static func sendUntilStalledThenReset(_ fd: Int32, _ payload: [UInt8]) -> Int {
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        var sent = 0
        var lastProgress = Date()
        let deadline = Date().addingTimeInterval(5)
        while sent < payload.count && Date() < deadline && Date().timeIntervalSince(lastProgress) < 0.3 {
            let n = payload.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + sent, min(1 << 16, payload.count - sent), Int32(MSG_NOSIGNAL)) }
            if n > 0 { sent += n; lastProgress = Date() } else if n < 0 && errno != EAGAIN { break } else { usleep(5_000) }
        }
        let socket = FerryCore.Socket(FileDescriptor(fd))
        var unacked = socket.unacknowledgedBytes() ?? 0
        var still = Date()
        while unacked > 0 && Date() < deadline.addingTimeInterval(5) && Date().timeIntervalSince(still) < 0.3 {
            usleep(10_000)
            let now = socket.unacknowledgedBytes() ?? 0
            if now != unacked { unacked = now; still = Date() }
        }
        var l = linger(l_onoff: 1, l_linger: 0)
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, socklen_t(MemoryLayout<linger>.size))
        return sent - unacked
    }

    /// Reads until the end (or `limit` bytes, or `timeout` seconds) and says how it ended.
    static func readToEnd(_ fd: Int32, limit: Int, timeout: Double) -> ([UInt8], TestClient.Ending) {
        Net.setTimeouts(fd, timeout)
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 1 << 16)
        while out.count < limit {
            let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress!, $0.count, 0) }
            if n > 0 { out += buf[..<n]; continue }
            if n == 0 { return (out, .eof) }
            return (out, errno == ECONNRESET ? .reset : .timeout)
        }
        return (out, .data)
    }

    /// Sends until the path through ferry is full (no progress for 300 ms, at most 5 s);
    /// returns the bytes sent.
    static func fill(_ fd: Int32) -> Int {
        let chunk = [UInt8](repeating: 0x71, count: 1 << 16)
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        var sent = 0
        var lastProgress = Date()
        let deadline = Date().addingTimeInterval(5)
        while Date() < deadline && Date().timeIntervalSince(lastProgress) < 0.3 {
            let n = chunk.withUnsafeBytes { Glibc.send(fd, $0.baseAddress!, $0.count, Int32(MSG_NOSIGNAL)) }
            if n > 0 { sent += n; lastProgress = Date() } else if n < 0 && errno != EAGAIN { break } else { usleep(10_000) }
        }
        return sent
    }

    /// Megabytes already queued in ferry's receive buffer, and a sender that then goes quiet:
    /// the relay works through them in bounded turns with no new edge to wake it, and must not
    /// stall until a timer fires (nor be ended as idle with bytes unread).
    func testQueuedBacklogDrainsWithoutNewEdges() throws {
        let received = Box(0)
        let b = try scripted { fd in
            Net.setTimeouts(fd, 20)
            var buf = [UInt8](repeating: 0, count: 1 << 16)
            while true {
                let n = recv(fd, &buf, buf.count, 0)
                if n <= 0 { break }
                received.update { $0 += n }
            }
        }
        let f = try ferry("server { listen LISTEN; proxy_pass 127.0.0.1:\(b.port); proxy_connect_timeout 1s; proxy_timeout 15s; }",
                          environment: ["FERRY_RELAY": "copy"])
        let c = try TestClient.connect(f.listenPort, timeout: 10)
        defer { c.close() }
        // Warm up so the kernel grows the receive window, then freeze ferry and queue a backlog.
        let chunk = [UInt8](repeating: 0x5A, count: 1 << 20)
        for _ in 0..<48 { try c.send(chunk) }
        XCTAssertTrue(waitUntil(timeout: 10) { received.value == 48 << 20 }, "warm-up did not pass: \(received.value)")
        kill(f.pid, SIGSTOP)
        var queued = 0
        let flags = fcntl(c.fd, F_GETFL)
        _ = fcntl(c.fd, F_SETFL, flags | O_NONBLOCK)
        let deadline = Date().addingTimeInterval(3)
        while Date() < deadline && queued < 8 << 20 {
            let n = chunk.withUnsafeBytes { Glibc.send(c.fd, $0.baseAddress!, $0.count, Int32(MSG_NOSIGNAL)) }
            if n > 0 { queued += n } else { usleep(10_000) }
        }
        kill(f.pid, SIGCONT)
        XCTAssertGreaterThan(queued, 2 << 20, "could not queue enough to need several turns")
        let target = (48 << 20) + queued
        XCTAssertTrue(waitUntil(timeout: 5) { received.value == target },
                      "relay stalled: \(received.value - (48 << 20)) of \(queued) queued bytes arrived")
    }
}
