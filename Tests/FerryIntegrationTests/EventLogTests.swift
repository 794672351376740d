import XCTest
import Glibc

/// The event log (stderr or `error_log`) is written by the event loop itself.
final class EventLogTests: IntegrationCase {
    /// `ferry 2>&1 | consumer` with a consumer that stops reading (or journald falling behind):
    /// once the pipe is full, a blocking write of the next event would stop the loop and every
    /// session on it. Lines are dropped and counted instead, and reported when the reader is back.
    func testStalledStderrReaderDoesNotStopTheRelay() throws {
        let b = try backend("b1", .banner)
        let ports = try distinctFreePorts(3)
        let (deadPort, refusedPort, healthyPort) = (ports[0], ports[1], ports[2])
        let dir = try temporaryDirectory(self, "ferry-stderr")
        let config = """
            stream {
                server { listen 127.0.0.1:\(refusedPort); proxy_pass 127.0.0.1:\(deadPort); }
                server { listen 127.0.0.1:\(healthyPort); proxy_pass 127.0.0.1:\(b.port); }
            }
            """
        try config.write(toFile: dir + "/ferry.conf", atomically: true, encoding: .utf8)
        let stderr = Pipe()   // read only at the end: the reader has stalled
        let p = Process()
        p.executableURL = URL(fileURLWithPath: FerryProcess.binary)
        p.arguments = ["-c", dir + "/ferry.conf"]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = stderr
        try p.run()
        // SIGKILL: with the defect the loop is stuck in write(2) and would never see SIGTERM.
        addTeardownBlock { kill(p.processIdentifier, SIGKILL); p.waitUntilExit() }
        XCTAssertTrue(waitUntil(timeout: 5) { FerryInstance.isListening(refusedPort) && FerryInstance.isListening(healthyPort) })
        let healthy = try TestClient.connect(healthyPort)
        XCTAssertEqual(try healthy.banner(), "b1")

        // One connect_failed line (~250 bytes) per client: 1,000 fill a 64 KiB pipe four times over.
        var ended = 0
        for _ in 0..<1000 {
            let c = try TestClient.connect(refusedPort, timeout: 3)
            let end = c.waitForEnd()
            c.close()
            guard end == .eof || end == .reset else { break }
            ended += 1
        }
        XCTAssertEqual(ended, 1000, "clients of the dead server stopped being answered: the loop is blocked")
        try healthy.send("x")
        XCTAssertEqual(try? healthy.receive(exactly: 1), Array("x".utf8), "the healthy session stopped")

        // The reader comes back: the next event brings a count of what was lost.
        let reader = stderr.fileHandleForReading.fileDescriptor
        Net.setNonBlocking(reader, true)
        var text = ""
        func drain() {
            var buf = [UInt8](repeating: 0, count: 65536)
            while true {
                let n = read(reader, &buf, buf.count)
                guard n > 0 else { return }
                text += String(decoding: buf[0..<n], as: UTF8.self)
            }
        }
        drain()
        XCTAssertGreaterThan(text.components(separatedBy: "\"event\":\"connect_failed\"").count - 1, 100)
        let c = try TestClient.connect(refusedPort, timeout: 3)
        _ = c.waitForEnd()
        XCTAssertTrue(waitUntil(timeout: 5) { drain(); return text.contains("\"event\":\"log_lines_dropped\"") }, String(text.suffix(600)))
        let report = text.split(separator: "\n").first { $0.contains("\"event\":\"log_lines_dropped\"") }.map(String.init) ?? ""
        XCTAssertTrue(report.contains("\"path\":\"stderr\""), report)
        XCTAssertTrue(p.isRunning)
    }

    /// nginx logs "no live upstreams" for each client it turns away because no server can take
    /// it; ferry logged nothing (the access log had the 502s). Now one error line starts the
    /// episode and one line ends it, with the count, when a server takes a client again:
    /// clients reconnecting every second to a dead upstream do not bury the log.
    func testNoLiveUpstreamsIsLoggedOncePerEpisode() throws {
        let a = try backend("a"), b = try backend("b")
        let f = try ferry("""
            upstream u { server 127.0.0.1:\(a.port) name=a; server 127.0.0.1:\(b.port) name=b; }
            server { listen LISTEN; proxy_pass u; proxy_connect_timeout 1s; proxy_timeout 5s; }
            """, main: "admin_socket @DIR@/admin.sock;")
        XCTAssertEqual(try bannerThrough(f.listenPort), "a")
        for name in ["a", "b"] { _ = try AdminSocket.command(f.adminPath, "disable server u/\(name)") }
        for i in 0..<5 {
            let c = try TestClient.connect(f.listenPort, timeout: 3)
            XCTAssertEqual(c.waitForEnd(), .eof, "client \(i) should be closed: no server can take it")
            c.close()
        }
        XCTAssertTrue(waitUntil(timeout: 3) { f.events("no_live_upstreams") == 1 }, f.stderr)
        XCTAssertEqual(f.events("no_live_upstreams_over"), 0, "the episode is not over while no server can take a client")
        // A reload in the middle of the outage does not split the episode.
        f.signal(SIGHUP)
        XCTAssertTrue(waitUntil(timeout: 5) { f.events("reload") == 1 }, f.stderr)
        let late = try TestClient.connect(f.listenPort, timeout: 3)
        XCTAssertEqual(late.waitForEnd(), .eof, "the admin's disable survives the reload")
        late.close()
        _ = try AdminSocket.command(f.adminPath, "enable server u/b")
        XCTAssertEqual(try bannerThrough(f.listenPort), "b")
        XCTAssertTrue(waitUntil(timeout: 3) { f.events("no_live_upstreams_over") == 1 }, f.stderr)
        XCTAssertEqual(f.field("clients_turned_away", ofEvent: "no_live_upstreams_over"), 6, f.stderr)
        XCTAssertEqual(f.events("no_live_upstreams"), 1, "one line per episode, not per client")
        XCTAssertTrue(f.stderr.contains(#""level":"error","event":"no_live_upstreams""#), "logged at nginx's level for it: \(f.stderr)")
    }

    /// A reload that changes `error_log` moves the event log, as nginx's does: the reload's
    /// own line is the first in the new file and the old file gets nothing after; a file that
    /// cannot be opened fails the reload and the events stay where they were; no error_log
    /// sends them back to standard error.
    func testReloadMovesTheErrorLog() throws {
        let a = try backend("a")
        let stream = """
            upstream u { server 127.0.0.1:\(a.port) name=a; }
            server { listen LISTEN; proxy_pass u; }
            """
        let f = try ferry(stream, main: "admin_socket @DIR@/admin.sock;")
        let dir = f.directory.path
        func read(_ name: String) -> String { (try? String(contentsOfFile: dir + "/" + name, encoding: .utf8)) ?? "" }
        try f.reloadOverAdmin(stream: stream, main: "admin_socket @DIR@/admin.sock; error_log @DIR@/first.log notice;")
        XCTAssertTrue(read("first.log").contains("\"event\":\"reload\""), "first.log: \(read("first.log"))")
        XCTAssertEqual(f.events("error_log_moved"), 1, "the move is announced where the events went before")

        try f.reloadOverAdmin(stream: stream, main: "admin_socket @DIR@/admin.sock; error_log @DIR@/second.log notice;")
        XCTAssertTrue(read("second.log").contains("\"event\":\"reload\""), "second.log: \(read("second.log"))")
        XCTAssertTrue(read("first.log").contains("\"event\":\"error_log_moved\""), read("first.log"))
        XCTAssertEqual(read("first.log").components(separatedBy: "\"event\":\"reload\"").count - 1, 1, "the second reload's line went to the old file")

        try f.rewriteConfig(stream: stream, main: "admin_socket @DIR@/admin.sock; error_log @DIR@/missing/third.log notice;")
        let answer = try AdminSocket.command(f.adminPath, "reload")
        XCTAssertTrue(answer.hasPrefix("Reload failed"), answer)
        XCTAssertTrue(answer.contains("missing/third.log"), answer)
        XCTAssertTrue(read("second.log").contains("\"event\":\"reload_failed\""), read("second.log"))

        try f.reloadOverAdmin(stream: stream, main: "admin_socket @DIR@/admin.sock;")
        XCTAssertTrue(waitUntil(timeout: 3) { f.events("reload") == 1 }, "no error_log: events go to stderr again: \(f.stderr)")
        XCTAssertEqual(f.events("reload_failed"), 0, "the failed reload was logged in second.log, not on stderr")
        XCTAssertEqual(read("second.log").components(separatedBy: "\"event\":\"reload\"").count - 1, 1)
        XCTAssertEqual(try bannerThrough(f.listenPort), "a")
    }
}
