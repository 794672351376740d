import XCTest
import Glibc

/// Many sessions and descriptor hygiene, graceful and immediate shutdown, shipped examples.
final class LifecycleTests: IntegrationCase {
    /// 12. 5,000 concurrent sessions are held and released without leaking a descriptor.
    func testFiveThousandSessionsNoDescriptorLeak() throws {
        let sessions = 5000
        let limit = ProcessLimits.raiseNoFile()
        guard limit >= 2 * sessions + 500 else {
            throw XCTSkip("RLIMIT_NOFILE hard limit \(limit) is too low for \(sessions) sessions")
        }
        let b = try backend("many")
        let f = try ferry("server { listen LISTEN; proxy_pass 127.0.0.1:\(b.port); proxy_connect_timeout 1s; proxy_timeout 120s; }")
        let capacity = f.field("capacity", ofEvent: "start") ?? 0
        XCTAssertGreaterThanOrEqual(capacity, sessions, "ferry's capacity is below the test load")
        let baseline = f.openFDCount()
        XCTAssertGreaterThan(baseline, 0)

        var clients: [Int32] = []
        clients.reserveCapacity(sessions)
        defer { clients.forEach { close($0) } }
        let banner = TestBackend.banner("many")
        let start = Date()
        var bad = 0
        while clients.count < sessions && Date().timeIntervalSince(start) < 60 {
            let batch = try (0..<min(200, sessions - clients.count)).map { _ in
                try Net.connectNonBlocking(to: f.listenPort, timeout: 3)
            }
            clients += batch
            for fd in batch {
                Net.setNonBlocking(fd, false)
                Net.setTimeouts(fd, 5)
                var buf = [UInt8](repeating: 0, count: 16)
                var got = 0
                while got < 16 {
                    let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress! + got, 16 - got, 0) }
                    if n <= 0 { break }
                    got += n
                }
                if buf != banner { bad += 1 }
            }
        }
        XCTAssertEqual(clients.count, sessions, "opened only \(clients.count) sessions in 60 s")
        XCTAssertEqual(bad, 0, "sessions without the banner")
        XCTAssertTrue(waitUntil(timeout: 5) { b.open == sessions }, "backend holds \(b.open) connections")
        XCTAssertGreaterThanOrEqual(f.openFDCount(), baseline + 2 * sessions)
        XCTAssertEqual(f.events("capacity_reached"), 0)

        clients.forEach { close($0) }
        clients.removeAll()
        let drained = waitUntil(timeout: 20) { abs(f.openFDCount() - baseline) <= 2 }
        XCTAssertTrue(drained, "ferry holds \(f.openFDCount()) descriptors, baseline \(baseline)")
        XCTAssertTrue(waitUntil(timeout: 5) { b.open == 0 }, "backend still holds \(b.open) connections")
        XCTAssertTrue(f.isRunning)
    }

    /// 13a. SIGTERM: the listener closes at once, the open session keeps working, exit 0 after it ends.
    func testGracefulShutdown() throws {
        let b = try backend("term")
        let f = try ferry("server { listen LISTEN; proxy_pass 127.0.0.1:\(b.port); proxy_connect_timeout 1s; proxy_timeout 30s; }")
        let c = try TestClient.connect(f.listenPort)
        defer { c.close() }
        XCTAssertEqual(try c.banner(), "term")
        f.signal(SIGTERM)
        XCTAssertTrue(waitUntil(timeout: 3) { f.events("stopping") == 1 }, f.stderr)
        XCTAssertTrue(waitUntil(timeout: 3) { !FerryInstance.isListening(f.listenPort) }, "listener still open after SIGTERM")
        XCTAssertThrowsError(try TestClient.connect(f.listenPort, timeout: 2)) { e in
            XCTAssertEqual((e as? SocketError)?.code, ECONNREFUSED, "\(e)")
        }
        try c.send("still here")
        XCTAssertEqual(String(decoding: try c.receive(exactly: 10), as: UTF8.self), "still here")
        usleep(300_000)
        XCTAssertTrue(f.isRunning, "ferry exited with a session open")
        c.close()
        XCTAssertEqual(f.waitExit(timeout: 5), 0, f.stderr)
        XCTAssertEqual(f.events("exit"), 1)
    }

    /// 13a'. A client accepted before SIGTERM but still sending its PROXY header is served, as
    /// nginx serves it: ferry neither exits under it nor refuses it when the header completes.
    func testGracefulShutdownServesAClientStillSendingItsProxyHeader() throws {
        let b = try backend("term")
        let f = try ferry("server { listen LISTEN proxy_protocol; proxy_pass 127.0.0.1:\(b.port); proxy_connect_timeout 1s; proxy_timeout 30s; proxy_protocol_timeout 10s; }")
        let c = try TestClient.connect(f.listenPort)
        defer { c.close() }
        try c.send("PROXY TCP4 192.0.2.5 ")
        usleep(200_000)   // the header's first half is read
        f.signal(SIGTERM)
        XCTAssertTrue(waitUntil(timeout: 3) { f.events("stopping") == 1 }, f.stderr)
        usleep(300_000)
        XCTAssertTrue(f.isRunning, "ferry exited under a client still sending its header")
        try c.send("198.51.100.1 4444 12000\r\nhi")
        XCTAssertEqual(try c.banner(), "term")
        XCTAssertEqual(String(decoding: try c.receive(exactly: 2), as: UTF8.self), "hi")
        c.close()
        XCTAssertEqual(f.waitExit(timeout: 5), 0, f.stderr)
    }

    /// 13b. A second SIGTERM ends the open sessions and ferry at once.
    func testSecondSigtermEndsAtOnce() throws {
        let b = try backend("term2")
        let f = try ferry("server { listen LISTEN; proxy_pass 127.0.0.1:\(b.port); proxy_connect_timeout 1s; proxy_timeout 30s; }")
        let c = try TestClient.connect(f.listenPort, timeout: 3)
        defer { c.close() }
        XCTAssertEqual(try c.banner(), "term2")
        f.signal(SIGTERM)
        XCTAssertTrue(waitUntil(timeout: 3) { f.events("stopping") == 1 }, f.stderr)
        usleep(300_000)
        XCTAssertTrue(f.isRunning, "ferry exited with a session open after one SIGTERM")
        let start = Date()
        f.signal(SIGTERM)
        let status = f.waitExit(timeout: 2)
        XCTAssertNotNil(status, "ferry still running 2 s after the second SIGTERM")
        XCTAssertLessThan(Date().timeIntervalSince(start), 2)
        let ending = c.waitForEnd()
        XCTAssertTrue(ending == .eof || ending == .reset, "client session should be ended, got \(ending)")
        XCTAssertTrue(waitUntil(timeout: 3) { b.open == 0 }, "backend connection not closed")
    }

    /// 13c. SIGQUIT ends at once even with a session open.
    func testSigquitEndsAtOnce() throws {
        let b = try backend("quit")
        let f = try ferry("server { listen LISTEN; proxy_pass 127.0.0.1:\(b.port); proxy_connect_timeout 1s; proxy_timeout 30s; }")
        let c = try TestClient.connect(f.listenPort, timeout: 3)
        defer { c.close() }
        XCTAssertEqual(try c.banner(), "quit")
        f.signal(SIGQUIT)
        XCTAssertNotNil(f.waitExit(timeout: 2), "ferry still running 2 s after SIGQUIT")
        let ending = c.waitForEnd()
        XCTAssertTrue(ending == .eof || ending == .reset, "got \(ending)")
    }

    /// 14. Every shipped example configuration passes `ferry -t`.
    func testExamplesPassConfigTest() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let dir = root.appendingPathComponent("examples")
        let files = ((try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? [])
            .filter { $0.hasSuffix(".conf") }.sorted()
        // The repository ships examples: none found means the path is wrong, not nothing to test.
        guard !files.isEmpty else { return XCTFail("no examples/*.conf found in \(dir.path)") }
        for name in files {
            let r = try FerryProcess.runToCompletion(["-t", "-c", dir.appendingPathComponent(name).path])
            XCTAssertEqual(r.status, 0, "\(name): \(r.stderr)")
        }
    }
}
