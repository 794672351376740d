import XCTest
import Glibc

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
    /// reset once reached no pump and the session (with its server slot) lingered until
    /// proxy_timeout. It must reach the stalled side at once, as a reset, in both directions
    /// and with both transports.
    func testResetWhileTheOtherSideStallsIsRelayed() throws {
        for mode in ["copy", "splice"] {
            // The client floods a backend that never reads, then resets.
            let resetAfter = Box<Double?>(nil)
            let clientGone = Box(false)
            let stalled = try scripted { fd in
                _ = waitUntil(timeout: 6) { clientGone.value }
                let start = Date()
                var p = pollfd(fd: fd, events: 0, revents: 0)
                if poll(&p, 1, 6000) == 1 { resetAfter.value = Date().timeIntervalSince(start) }
            }
            var f = try ferry("server { listen LISTEN; proxy_pass 127.0.0.1:\(stalled.port); proxy_connect_timeout 1s; proxy_timeout 10s; }",
                              environment: ["FERRY_RELAY": mode])
            let c = try TestClient.connect(f.listenPort, timeout: 3)
            XCTAssertGreaterThan(Self.fill(c.fd), 0, mode)
            c.reset()
            clientGone.value = true
            XCTAssertTrue(waitUntil(timeout: 7) { resetAfter.value != nil }, "\(mode): the stalled backend never saw the client's reset")
            XCTAssertLessThan(resetAfter.value ?? 99, 2.0, "\(mode): the client's reset waited for proxy_timeout")
            stalled.stop()

            // The backend floods a client that never reads, then resets.
            let flooded = Box(false)
            let flooder = try scripted { fd in
                if Self.fill(fd) > 0 { flooded.value = true }
                var l = linger(l_onoff: 1, l_linger: 0)
                setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, socklen_t(MemoryLayout<linger>.size))
            }
            f = try ferry("server { listen LISTEN; proxy_pass 127.0.0.1:\(flooder.port); proxy_connect_timeout 1s; proxy_timeout 10s; }",
                          environment: ["FERRY_RELAY": mode])
            let d = try TestClient.connect(f.listenPort, timeout: 3)
            defer { d.close() }
            XCTAssertTrue(waitUntil(timeout: 6) { flooded.value }, "\(mode): the backend could not fill the path")
            let start = Date()
            var p = pollfd(fd: d.fd, events: 0, revents: 0)
            XCTAssertEqual(poll(&p, 1, 6000), 1, "\(mode): the stalled client never saw the backend's reset")
            XCTAssertLessThan(Date().timeIntervalSince(start), 2.0, "\(mode): the backend's reset waited for proxy_timeout")
            flooder.stop()
        }
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
