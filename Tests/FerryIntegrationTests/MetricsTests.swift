import XCTest
import Glibc

/// `metrics_listen`: the exposition text, its values after real sessions, and the HTTP responder.
final class MetricsTests: IntegrationCase {
    func value(_ samples: [ExpositionChecker.Sample], _ name: String, _ labels: [String: String]) -> Double? {
        samples.first { s in s.name == name && labels.allSatisfy { s.labels[$0.key] == $0.value } }?.value
    }

    func testExpositionIsValidAndCountsSessions() throws {
        let b1 = try backend("b1", .banner)
        let ports = try distinctFreePorts(3)
        let (dead, mport, denyPort) = (ports[0], ports[1], ports[2])
        let f = try ferry("""
            upstream pool { server 127.0.0.1:\(dead) name=dead; server 127.0.0.1:\(b1.port) name=b1 weight=3; }
            server { listen LISTEN; proxy_pass pool; }
            server { listen 127.0.0.1:\(denyPort); deny all; proxy_pass pool; }
            """, main: "metrics_listen 127.0.0.1:\(mport);")
        XCTAssertTrue(waitUntil(timeout: 5) { FerryInstance.isListening(mport) })
        for _ in 0..<3 { XCTAssertEqual(try bannerThrough(f.listenPort), "b1") }
        let denied = try TestClient.connect(denyPort)
        XCTAssertEqual(denied.waitForEnd(), .eof)
        // One session stays open with bytes in flight: its bytes count before it ends.
        let held = try TestClient.connect(f.listenPort)
        XCTAssertEqual(try held.banner(), "b1")
        try held.send(String(repeating: "x", count: 1000))
        XCTAssertEqual(try held.receive(exactly: 1000).count, 1000)

        let r = try HTTPExchange.send("GET /metrics HTTP/1.1\r\nHost: ferry\r\nAccept: */*\r\n\r\n", port: mport)
        XCTAssertEqual(r.status, 200, r.head)
        XCTAssertTrue(r.head.contains("Content-Type: text/plain; version=0.0.4"), r.head)
        let (problems, samples) = ExpositionChecker.check(r.body)
        XCTAssertEqual(problems, [], r.body)
        let s1 = ["upstream": "pool", "server": "b1"], sd = ["upstream": "pool", "server": "dead"]
        XCTAssertEqual(value(samples, "ferry_server_sessions", s1), 1)
        XCTAssertEqual(value(samples, "ferry_server_sessions_total", s1), 4)
        XCTAssertEqual(value(samples, "ferry_server_sessions_total", sd), 0)
        XCTAssertEqual(value(samples, "ferry_server_connect_failures_total", sd), 1)
        XCTAssertEqual(value(samples, "ferry_server_connect_failures_total", s1), 0)
        XCTAssertEqual(value(samples, "ferry_server_weight", s1), 3)
        XCTAssertEqual(value(samples, "ferry_server_sent_bytes_total", s1), 1000, "live session's bytes included")
        XCTAssertEqual(value(samples, "ferry_server_received_bytes_total", s1), 4 * 16 + 1000)
        XCTAssertEqual(value(samples, "ferry_server_state", s1.merging(["state": "up"]) { $1 }), 1)
        XCTAssertEqual(value(samples, "ferry_server_state", s1.merging(["state": "failed"]) { $1 }), 0)
        XCTAssertEqual(value(samples, "ferry_server_state", sd.merging(["state": "failed"]) { $1 }), 1, "max_fails=1 reached")
        XCTAssertEqual(samples.filter { $0.name == "ferry_server_state" && $0.labels["server"] == "dead" }.map(\.value).reduce(0, +), 1)
        XCTAssertEqual(value(samples, "ferry_server_probe_up", s1), 1)
        XCTAssertEqual(value(samples, "ferry_listener_accepted_total", ["listener": "127.0.0.1:\(f.listenPort)"]), 4)
        XCTAssertEqual(value(samples, "ferry_listener_denied_total", ["listener": "127.0.0.1:\(denyPort)"]), 1)
        XCTAssertEqual(value(samples, "ferry_listener_refused_total", ["listener": "127.0.0.1:\(denyPort)"]), 1)
        XCTAssertEqual(value(samples, "ferry_sessions", [:]), 1)
        XCTAssertGreaterThan(value(samples, "ferry_sessions_capacity", [:]) ?? 0, 0)
        XCTAssertEqual(value(samples, "ferry_sessions_limit", [:]), value(samples, "ferry_sessions_capacity", [:]), "no limit below capacity was set")
        XCTAssertNotNil(value(samples, "ferry_pipes_in_use", [:]))
        XCTAssertNotNil(value(samples, "ferry_pipes_pooled", [:]))
        let fds = value(samples, "process_open_fds", [:]) ?? 0
        XCTAssertGreaterThan(fds, 5)
        XCTAssertLessThan(abs(fds - Double(f.openFDCount())), 4, "open fds near /proc's count")
        XCTAssertGreaterThan(value(samples, "process_max_fds", [:]) ?? 0, fds)
        held.close()

        if let promtool = ["/usr/bin/promtool", "/usr/local/bin/promtool"].first(where: { FileManager.default.isExecutableFile(atPath: $0) }) {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: promtool)
            p.arguments = ["check", "metrics"]
            let input = Pipe()
            p.standardInput = input
            try p.run()
            input.fileHandleForWriting.write(Data(r.body.utf8))
            input.fileHandleForWriting.closeFile()
            p.waitUntilExit()
            XCTAssertEqual(p.terminationStatus, 0, "promtool check metrics")
        }
    }

    /// A server deleted over the admin socket leaves the metrics as it leaves `show stat`.
    func testDeletedServerLeavesTheMetrics() throws {
        let b1 = try backend("b1", .banner)
        let mport = try Net.freePort()
        let f = try ferry("upstream pool { server 127.0.0.1:\(b1.port) name=b1; server 127.0.0.1:\(try Net.freePort()) name=gone; }\nserver { listen LISTEN; proxy_pass pool; }",
                          main: "metrics_listen 127.0.0.1:\(mport);\nadmin_socket @DIR@/admin.sock;")
        XCTAssertTrue(waitUntil(timeout: 5) { FerryInstance.isListening(mport) })
        func servers() throws -> Set<String> {
            let r = try HTTPExchange.send("GET /metrics HTTP/1.1\r\n\r\n", port: mport)
            XCTAssertEqual(r.status, 200, r.head)
            let (problems, samples) = ExpositionChecker.check(r.body)
            XCTAssertEqual(problems, [])
            return Set(samples.filter { $0.name.hasPrefix("ferry_server_") }.compactMap { $0.labels["server"] })
        }
        XCTAssertEqual(try servers(), ["b1", "gone"])
        XCTAssertEqual(try AdminSocket.command(f.adminPath, "set server pool/gone state maint"), "\n")
        XCTAssertEqual(try AdminSocket.command(f.adminPath, "del server pool/gone"), "Server deleted.\n\n")
        // Scrapes less than a second apart share one render.
        XCTAssertTrue(waitUntil(timeout: 5) { (try? servers()) == ["b1"] }, "deleted server still in the metrics")
        XCTAssertFalse(try AdminSocket.command(f.adminPath, "show stat").contains("gone"))
    }

    func testResponderAnswersBadRequestsAndSlowClientsTimeOut() throws {
        let b1 = try backend("b1", .banner)
        let mport = try Net.freePort()
        let f = try ferry("server { listen LISTEN; proxy_pass 127.0.0.1:\(b1.port); }", main: "metrics_listen 127.0.0.1:\(mport);")
        XCTAssertTrue(waitUntil(timeout: 5) { FerryInstance.isListening(mport) })
        XCTAssertEqual(try HTTPExchange.send("GET /other HTTP/1.1\r\n\r\n", port: mport).status, 404)
        XCTAssertEqual(try HTTPExchange.send("POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n", port: mport).status, 405)
        XCTAssertEqual(try HTTPExchange.send("hello there\r\n\r\n", port: mport).status, 400)
        XCTAssertEqual(try HTTPExchange.send("GET /metrics HTTP/9.9\r\n\r\n", port: mport).status, 400)
        XCTAssertEqual(try HTTPExchange.send("GET /metrics HTTP/1.1\r\n" + String(repeating: "X-Pad: aaaaaaaa\r\n", count: 800), port: mport).status, 400)
        let head = try HTTPExchange.send("HEAD /metrics HTTP/1.0\r\n\r\n", port: mport)
        XCTAssertEqual(head.status, 200)
        XCTAssertEqual(head.body, "")
        XCTAssertTrue(head.head.contains("Content-Length: "), head.head)

        // A client that sends half a request holds nothing up: scrapes and sessions go on, and
        // the half-open connection is closed by ferry's timeout (10 s).
        let slow = try TestClient.connect(mport, timeout: 20)
        try slow.send("GET /metr")
        let started = Date()
        XCTAssertEqual(try HTTPExchange.send("GET /metrics HTTP/1.1\r\n\r\n", port: mport).status, 200)
        XCTAssertEqual(try bannerThrough(f.listenPort), "b1")
        XCTAssertEqual(slow.waitForEnd(), .eof)
        let waited = Date().timeIntervalSince(started)
        XCTAssertGreaterThan(waited, 5)
        XCTAssertLessThan(waited, 19)
        XCTAssertTrue(f.isRunning)
    }

    /// A client that sends more than the request head (a pipelined request, a body) still gets
    /// the whole response: closing with its bytes unread would reset the connection and throw
    /// away the part of the response the kernel had not sent yet.
    func testResponseSurvivesInputAfterTheRequestHead() throws {
        let b1 = try backend("b1", .banner)
        let mport = try Net.freePort()
        _ = try ferry("server { listen LISTEN; proxy_pass 127.0.0.1:\(b1.port); }", main: "metrics_listen 127.0.0.1:\(mport);")
        XCTAssertTrue(waitUntil(timeout: 5) { FerryInstance.isListening(mport) })
        for round in 0..<3 {
            // A small receive window keeps most of the response in ferry's send queue.
            let fd = try Net.tcpSocket()
            Net.setInt(fd, SOL_SOCKET, SO_RCVBUF, 1024)
            var a = Net.address("127.0.0.1", mport)
            let r = withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
            XCTAssertEqual(r, 0)
            let c = TestClient(fd: fd, timeout: 5)
            try c.send("GET /metrics HTTP/1.1\r\nHost: ferry\r\n\r\n")
            // The answer has started: ferry has read the head. Now the next request arrives.
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            XCTAssertEqual(poll(&p, 1, 5000), 1)
            try c.send("GET /metrics HTTP/1.1\r\nHost: ferry\r\n\r\n")
            var raw: [UInt8] = []
            XCTAssertNoThrow(raw = try c.receiveToEOF(), "round \(round): connection reset before the response ended")
            let text = String(decoding: raw, as: UTF8.self)
            guard let split = text.range(of: "\r\n\r\n") else { return XCTFail("round \(round): no head in \(raw.count) bytes") }
            let length = text[..<split.lowerBound].split(separator: "\r\n").first { $0.hasPrefix("Content-Length: ") }
                .flatMap { Int($0.dropFirst("Content-Length: ".count)) }
            XCTAssertEqual(text[split.upperBound...].utf8.count, length, "round \(round)")
            c.close()
        }
        XCTAssertEqual(try HTTPExchange.send("GET /metrics HTTP/1.1\r\n\r\n", port: mport).status, 200)
    }

    /// accept fails for want of descriptors while a scraper waits in the backlog: the listener
    /// stays readable, and accepting again at once would spin the loop at full CPU for as long
    /// as the shortage lasts. The scrape waits and is answered once descriptors come free.
    func testScrapeDuringDescriptorShortageDoesNotSpin() throws {
        let b1 = try backend("b1", .banner)
        let mport = try Net.freePort()
        let f = try ferry("server { listen LISTEN; proxy_pass 127.0.0.1:\(b1.port); }",
                          main: "metrics_listen 127.0.0.1:\(mport); worker_rlimit_nofile 300;")
        XCTAssertTrue(waitUntil(timeout: 5) { FerryInstance.isListening(mport) })
        let held = try TestClient.connect(f.listenPort)
        XCTAssertEqual(try held.banner(), "b1")
        // The lowest free descriptor becomes the limit: the next accept4 fails with EMFILE.
        setOpenFileLimit(of: f.pid, soft: lowestFreeDescriptor(of: f.pid), hard: 300)
        let scraper = try TestClient.connect(mport, timeout: 5)
        try scraper.send("GET /metrics HTTP/1.1\r\n\r\n")
        usleep(200_000)   // let the failed accept happen
        let share = cpuShareOverOneSecond(f.pid)
        XCTAssertLessThan(share, 0.25, "ferry used \(share) of a CPU while the scraper waited")
        // The established session is untouched; once descriptors come free the scrape is answered.
        try held.send("x")
        XCTAssertEqual(try held.receive(exactly: 1), Array("x".utf8))
        setOpenFileLimit(of: f.pid, soft: 300, hard: 300)
        let raw = String(decoding: try scraper.receiveToEOF(), as: UTF8.self)
        XCTAssertTrue(raw.hasPrefix("HTTP/1.1 200 OK\r\n"), raw)
        XCTAssertTrue(f.isRunning)
    }

    /// Rendering is O(servers) on the loop that relays. Scrapers arriving together share one
    /// render (at most one a second) instead of each stopping the relay for a render of its own.
    /// Checked by what the scrapers get, not by how long the relay stalls meanwhile (a speed
    /// goal, for benchmarks): a counter moves right after a first scrape, and scrapes that
    /// arrive together within a second of it all get its bytes, unchanged; the first scrape
    /// after the second shows the move.
    func testConcurrentScrapesShareOneRender() throws {
        let b1 = try backend("b1", .banner)
        let mport = try Net.freePort()
        // Addresses nobody listens on (no health checks: nothing connects to them).
        let fillers = (0..<100).map { "server 127.0.2.\(1 + $0):9 name=s\($0) down;" }.joined(separator: " ")
        let f = try ferry("upstream pool { server 127.0.0.1:\(b1.port) name=b1; \(fillers) }\nserver { listen LISTEN; proxy_pass pool; }",
                          main: "metrics_listen 127.0.0.1:\(mport);")
        XCTAssertTrue(waitUntil(timeout: 5) { FerryInstance.isListening(mport) })
        let held = try TestClient.connect(f.listenPort, timeout: 10)
        defer { held.close() }
        XCTAssertEqual(try held.banner(), "b1")
        func scrape() -> [UInt8] {
            guard let c = try? TestClient.connect(mport, timeout: 10) else { return [] }
            defer { c.close() }
            guard (try? c.send("GET /metrics HTTP/1.1\r\n\r\n")) != nil else { return [] }
            return (try? c.receiveToEOF(limit: 64 << 20)) ?? []
        }
        func sent(_ raw: [UInt8]) -> Double? {
            let text = String(decoding: raw, as: UTF8.self)
            guard text.hasPrefix("HTTP/1.1 200 OK"), let split = text.range(of: "\r\n\r\n") else { return nil }
            return ExpositionChecker.check(String(text[split.upperBound...])).samples
                .first { $0.name == "ferry_server_sent_bytes_total" && $0.labels["server"] == "b1" }?.value
        }
        // Fewer than the 16 metrics clients allowed at once, so the first scrape's connection,
        // which ferry lets go once it sees the close, can never push one of them over the cap.
        let together = 15
        let message = [UInt8](repeating: 0x6D, count: 100)
        // A round counts only if all of it fitted in one reuse window (1 s from the first
        // scrape's render, which comes after `start`); a loaded machine may need another.
        for _ in 0..<5 {
            let start = Date()
            let first = scrape()
            guard let before = sent(first) else { return XCTFail("first scrape: \(String(decoding: first.prefix(200), as: UTF8.self))") }
            try held.send(message)
            XCTAssertEqual(try held.receive(exactly: message.count), message)
            let got = Box<[[UInt8]]>([])
            let threads = (0..<together).map { _ in TestThread { let raw = scrape(); got.update { $0.append(raw) } } }
            for t in threads { XCTAssertTrue(t.join(timeout: 30)) }
            let took = Date().timeIntervalSince(start)
            if took < 0.9 {
                XCTAssertEqual(got.value.count, together)
                for (i, raw) in got.value.enumerated() {
                    XCTAssertTrue(raw == first, "scrape \(i) of \(together) in the window was rendered afresh: sent bytes \(sent(raw).map { "\($0)" } ?? "none"), first \(before)")
                }
                // Past the window: a new render, with the bytes the session relayed meanwhile.
                usleep(UInt32(max(0, 1.1 - Date().timeIntervalSince(start)) * 1_000_000))
                XCTAssertEqual(sent(scrape()), before + Double(message.count), "a scrape after the window did not render afresh")
                return
            }
            usleep(1_100_000)
        }
        XCTFail("no round of \(together) scrapes fitted in one second")
    }

    /// Past the 16 clients served at once, a scraper is told why (503) instead of finding the
    /// connection closed without a word; once slots free, scrapes are served again.
    func testClientsBeyondTheCapAreAnswered503() throws {
        let b1 = try backend("b1", .banner)
        let mport = try Net.freePort()
        let f = try ferry("server { listen LISTEN; proxy_pass 127.0.0.1:\(b1.port); }", main: "metrics_listen 127.0.0.1:\(mport);")
        XCTAssertTrue(waitUntil(timeout: 5) { FerryInstance.isListening(mport) })
        let before = f.openFDCount()
        var idle: [TestClient] = []
        for _ in 0..<16 { idle.append(try TestClient.connect(mport, timeout: 12)) }
        XCTAssertTrue(waitUntil(timeout: 5) { f.openFDCount() >= before + 16 }, "ferry did not take the 16 clients")
        let refused = try HTTPExchange.send("GET /metrics HTTP/1.1\r\n\r\n", port: mport)
        XCTAssertEqual(refused.status, 503, refused.head)
        XCTAssertTrue(refused.head.contains("Retry-After: 1"), refused.head)
        XCTAssertTrue(refused.body.contains("too many metrics clients"), refused.body)
        idle.forEach { $0.close() }
        XCTAssertTrue(waitUntil(timeout: 5) { (try? HTTPExchange.send("GET /metrics HTTP/1.1\r\n\r\n", port: mport).status) == 200 })
    }

    /// The checker used above must be able to fail.
    func testExpositionCheckerRejectsBrokenText() {
        let bad = [
            "ferry_x 1\n",                                                           // no TYPE
            "# TYPE ferry_x counter\nferry_x 1\n",                                    // counter without _total
            "# TYPE ferry_x_total counter\nferry_x_total{a=\"b} 1\n",                 // unterminated label
            "# TYPE g gauge\ng 1\ng 2\n",                                             // duplicate series
            "# TYPE g gauge\ng{a=\"x\"} 1\n# TYPE h gauge\nh 1\ng{a=\"y\"} 1\n",      // family split
            "# TYPE g gauge\ng one\n",                                                // bad value
            "# TYPE g gauge\ng 1",                                                    // no final newline
        ]
        for text in bad { XCTAssertFalse(ExpositionChecker.check(text).problems.isEmpty, text) }
        XCTAssertEqual(ExpositionChecker.check("# HELP g A \\\\ help.\n# TYPE g gauge\ng{a=\"q\\\"\\n\"} 1\n").problems, [])
    }
}
