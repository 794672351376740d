import XCTest
import Glibc

/// The connection log written by the real binary: one JSON line per session, checked field by
/// field for every way a session can end.
final class ConnectionLogTests: IntegrationCase {
    /// Each scenario runs on its own listener so its line can be told apart by "listener".
    func testEveryEndingIsLoggedWithItsFields() throws {
        let dir = try temporaryDirectory(self)
        let log = JSONLinesFile(path: dir + "/access.log")
        let banner = try backend("b1")
        let closer = try scripted { fd in
            _ = "bye".withCString { send(fd, $0, 3, Int32(MSG_NOSIGNAL)) }
            usleep(50_000)
        }
        // Resets once the client has its 3 bytes (the client answers "ok"), not after a fixed
        // pause: a reset that lands before ferry has seen the connect complete is logged as a
        // failed connect, and on a loaded machine 100 ms was not always enough.
        let resetter = try scripted { fd in
            _ = "rst".withCString { send(fd, $0, 3, Int32(MSG_NOSIGNAL)) }
            Net.setTimeouts(fd, 5)
            var ok = [UInt8](repeating: 0, count: 2)
            _ = recv(fd, &ok, 2, Int32(MSG_WAITALL))
            var l = linger(l_onoff: 1, l_linger: 0)
            setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, socklen_t(MemoryLayout<linger>.size))
        }
        let all = try distinctFreePorts(9)
        let refused = all[8]
        let ports = Array(all[0..<8])
        let names = ["client_closed", "server_closed", "client_reset", "server_reset", "idle_timeout", "connect_failed", "no_server", "denied"]
        let f = try ferry("""
            access_log \(log.path);
            upstream ok { server 127.0.0.1:\(refused) name=dead; server 127.0.0.1:\(banner.port) name=b1; }
            upstream closer { server 127.0.0.1:\(closer.port) name=closer; }
            upstream resetter { server 127.0.0.1:\(resetter.port) name=resetter; }
            upstream refusing { server 127.0.0.1:\(refused) name=dead; }
            upstream empty { server 127.0.0.1:\(banner.port) name=off down; }
            server { listen LISTEN; proxy_pass 127.0.0.1:\(banner.port); }
            server { listen 127.0.0.1:\(ports[0]); proxy_pass ok; }
            server { listen 127.0.0.1:\(ports[1]); proxy_pass closer; }
            server { listen 127.0.0.1:\(ports[2]); proxy_pass 127.0.0.1:\(banner.port); }
            server { listen 127.0.0.1:\(ports[3]); proxy_pass resetter; }
            server { listen 127.0.0.1:\(ports[4]); proxy_pass 127.0.0.1:\(banner.port); proxy_timeout 300ms; }
            server { listen 127.0.0.1:\(ports[5]); proxy_pass refusing; }
            server { listen 127.0.0.1:\(ports[6]); proxy_pass empty; }
            server { listen 127.0.0.1:\(ports[7]); proxy_pass ok; deny all; }
            """)
        XCTAssertTrue(waitUntil(timeout: 5) { ports.allSatisfy(FerryInstance.isListening) })

        // client_closed (through "ok": the first server refuses, the second answers)
        var c = try TestClient.connect(ports[0], from: "127.0.0.2")
        XCTAssertEqual(try c.banner(), "b1")
        try c.send("ping")
        XCTAssertEqual(try c.receive(exactly: 4), Array("ping".utf8))
        let clientPort = Int(Net.localPort(c.fd))
        c.close()
        // server_closed
        c = try TestClient.connect(ports[1])
        XCTAssertEqual(try c.receiveToEOF(), Array("bye".utf8))
        c.close()
        // client_reset
        c = try TestClient.connect(ports[2])
        XCTAssertEqual(try c.banner(), "b1")
        c.reset()
        // server_reset
        c = try TestClient.connect(ports[3])
        XCTAssertEqual(try c.receive(exactly: 3), Array("rst".utf8))
        try c.send("ok")
        XCTAssertEqual(c.waitForEnd(), .reset)
        c.close()
        // idle_timeout
        c = try TestClient.connect(ports[4], timeout: 5)
        XCTAssertEqual(try c.banner(), "b1")
        XCTAssertEqual(c.waitForEnd(), .eof)
        c.close()
        // connect_failed, no_server, denied: ferry closes the client
        for p in ports[5...7] {
            c = try TestClient.connect(p)
            XCTAssertEqual(c.waitForEnd(), .eof)
            c.close()
        }

        let lines = log.waitFor(8)
        XCTAssertEqual(lines.count, 8, log.text)
        var byListener: [String: [String: Any]] = [:]
        for l in lines { byListener[l["listener"] as? String ?? "?"] = l }
        let keys: Set<String> = ["time", "listener", "client", "client_port", "upstream", "server", "server_address", "tried",
                                 "connect_ms", "duration_ms", "bytes_from_client", "bytes_to_client", "end", "status", "connection"]
        let time = try NSRegularExpression(pattern: #"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00$"#)
        for (i, name) in names.enumerated() {
            guard let l = byListener["127.0.0.1:\(ports[i])"] else { XCTFail("no line for \(name):\n\(log.text)"); continue }
            XCTAssertEqual(Set(l.keys), keys, name)
            XCTAssertEqual(l["end"] as? String, name)
            let t = l["time"] as? String ?? ""
            XCTAssertEqual(time.numberOfMatches(in: t, range: NSRange(t.startIndex..., in: t)), 1, "time \(t)")
            XCTAssertEqual(l["client"] as? String, i == 0 ? "127.0.0.2" : "127.0.0.1", name)
            XCTAssertGreaterThan(l["client_port"] as? Int ?? 0, 0, name)
            XCTAssertGreaterThanOrEqual(l["duration_ms"] as? Double ?? -1, 0, name)
            XCTAssertNotNil(l["connection"] as? Int, name)
        }
        func line(_ i: Int) -> [String: Any] { byListener["127.0.0.1:\(ports[i])"] ?? [:] }
        func tried(_ i: Int) -> [[String: Any]] { line(i)["tried"] as? [[String: Any]] ?? [] }

        // A session that relayed: server, bytes, connect time, status 200, both attempts.
        XCTAssertEqual(line(0)["client_port"] as? Int, clientPort)
        XCTAssertEqual(line(0)["upstream"] as? String, "ok")
        XCTAssertEqual(line(0)["server"] as? String, "b1")
        XCTAssertEqual(line(0)["server_address"] as? String, "127.0.0.1:\(banner.port)")
        XCTAssertEqual(line(0)["bytes_from_client"] as? Int, 4)
        XCTAssertEqual(line(0)["bytes_to_client"] as? Int, 16 + 4)
        XCTAssertEqual(line(0)["status"] as? Int, 200)
        XCTAssertGreaterThanOrEqual(line(0)["connect_ms"] as? Double ?? -1, 0)
        XCTAssertEqual(tried(0).map { $0["server"] as? String }, ["dead", "b1"])
        XCTAssertEqual(tried(0).map { $0["outcome"] as? String }, ["refused", "connected"])
        XCTAssertEqual(tried(0).map { $0["address"] as? String }, ["127.0.0.1:\(refused)", "127.0.0.1:\(banner.port)"])

        XCTAssertEqual(line(1)["bytes_to_client"] as? Int, 3)
        XCTAssertEqual(line(1)["server"] as? String, "closer")
        XCTAssertEqual(line(3)["bytes_to_client"] as? Int, 3)
        XCTAssertEqual(line(3)["server"] as? String, "resetter")
        for i in 0...4 { XCTAssertEqual(line(i)["status"] as? Int, 200, names[i]) }
        XCTAssertGreaterThanOrEqual(line(4)["duration_ms"] as? Double ?? 0, 250, "idle timeout after proxy_timeout 300ms")

        // Sessions that never reached a server: null server, no connect time, nginx's status.
        for (i, status) in [(5, 502), (6, 502), (7, 403)] {
            XCTAssertEqual(line(i)["status"] as? Int, status, names[i])
            XCTAssertTrue(line(i)["server"] is NSNull, names[i])
            XCTAssertTrue(line(i)["server_address"] is NSNull, names[i])
            XCTAssertTrue(line(i)["connect_ms"] is NSNull, names[i])
            XCTAssertEqual(line(i)["bytes_from_client"] as? Int, 0, names[i])
        }
        XCTAssertEqual(tried(5).map { $0["outcome"] as? String }, ["refused"])
        XCTAssertEqual(line(5)["upstream"] as? String, "refusing")
        XCTAssertEqual(tried(6).count, 0)
        XCTAssertEqual(line(6)["upstream"] as? String, "empty")
        XCTAssertEqual(tried(7).count, 0)
        XCTAssertTrue(line(7)["upstream"] is NSNull)
        _ = f
    }

    /// A stop ends the sessions still open after worker_shutdown_timeout: their lines say so and
    /// are on disk when ferry has exited (the buffer is written at exit).
    func testStoppingFerryLogsTheSessionsItEnds() throws {
        let dir = try temporaryDirectory(self)
        let log = JSONLinesFile(path: dir + "/access.log")
        let b = try backend("b1")
        let f = try ferry("access_log \(log.path) buffer=64k;\nserver { listen LISTEN; proxy_pass 127.0.0.1:\(b.port); }",
                          main: "worker_shutdown_timeout 300ms;")
        let c = try TestClient.connect(f.listenPort)
        XCTAssertEqual(try c.banner(), "b1")
        f.signal(SIGTERM)
        XCTAssertEqual(c.waitForEnd(), .eof)
        XCTAssertEqual(f.waitExit(timeout: 10), 0, f.stderr)
        let lines = log.objects()
        XCTAssertEqual(lines.count, 1, log.text)
        XCTAssertEqual(lines.first?["end"] as? String, "ferry_stopping")
        XCTAssertEqual(lines.first?["bytes_to_client"] as? Int, 16)
    }

    /// logrotate: the file is moved away, SIGUSR1 makes ferry write into a new one at the path.
    func testSIGUSR1ReopensTheFile() throws {
        let dir = try temporaryDirectory(self)
        let log = JSONLinesFile(path: dir + "/access.log")
        let b = try backend("b1")
        let f = try ferry("access_log \(log.path);\nserver { listen LISTEN; proxy_pass 127.0.0.1:\(b.port); }", main: "error_log stderr info;")
        XCTAssertEqual(try bannerThrough(f.listenPort), "b1")
        XCTAssertEqual(log.waitFor(1).count, 1)
        XCTAssertEqual(rename(log.path, dir + "/access.log.1"), 0)
        f.signal(SIGUSR1)
        XCTAssertTrue(waitUntil(timeout: 5) { f.events("logs_reopened") == 1 }, f.stderr)
        XCTAssertEqual(try bannerThrough(f.listenPort), "b1")
        XCTAssertEqual(log.waitFor(1).count, 1, "the new file has the new line only")
        XCTAssertEqual(JSONLinesFile(path: dir + "/access.log.1").objects().count, 1)
        XCTAssertTrue(f.isRunning)
    }

    /// `error_log PATH LEVEL` sends the JSON event lines to the file.
    func testErrorLogFileGetsTheEvents() throws {
        let dir = try temporaryDirectory(self)
        let events = JSONLinesFile(path: dir + "/events.log")
        let refused = try Net.freePort()
        // Events go to the file, so FerryInstance (which waits for "start" on stderr) is not used.
        let port = try Net.freePort()
        let conf = dir + "/ferry.conf"
        try "error_log \(events.path) warn;\nserver { listen 127.0.0.1:\(port); proxy_pass 127.0.0.1:\(refused); }\n"
            .write(toFile: conf, atomically: true, encoding: .utf8)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: FerryProcess.binary)
        p.arguments = ["-c", conf]
        p.standardError = FileHandle.nullDevice
        try p.run()
        defer { if p.isRunning { kill(p.processIdentifier, SIGKILL) }; p.waitUntilExit() }
        XCTAssertTrue(waitUntil(timeout: 5) { FerryInstance.isListening(port) })
        let c = try TestClient.connect(port)
        XCTAssertEqual(c.waitForEnd(), .eof)
        let lines = events.waitFor(1)
        XCTAssertEqual(lines.first?["event"] as? String, "connect_failed")
        XCTAssertEqual(lines.first?["level"] as? String, "warn")
        XCTAssertFalse(lines.contains { $0["event"] as? String == "start" }, "notice is below warn")
    }

    /// An access_log FIFO nobody reads: open(2) would wait for a reader forever, and ferry would
    /// hang at start without a word. It fails at once and says which file.
    func testFIFOWithoutReaderFailsTheStartWithAMessage() throws {
        let dir = try temporaryDirectory(self)
        let fifo = dir + "/access.fifo"
        XCTAssertEqual(mkfifo(fifo, 0o600), 0)
        let conf = dir + "/ferry.conf"
        try "stream { access_log \(fifo); server { listen 127.0.0.1:\(try Net.freePort()); proxy_pass 127.0.0.1:1; } }\n"
            .write(toFile: conf, atomically: true, encoding: .utf8)
        let r = try FerryProcess.runToCompletion(["-c", conf], timeout: 10)
        XCTAssertEqual(r.status, 1, r.stderr)
        XCTAssertTrue(r.stderr.contains("startup_failed") && r.stderr.contains(fifo) && r.stderr.contains("No such device or address"), r.stderr)
    }

    /// The FIFO's reader stops reading: the writer thread blocks in write(2), which must not
    /// keep ferry from exiting on SIGTERM.
    func testStalledFIFOReaderDoesNotBlockExit() throws {
        // The test holds the read end and never reads.
        let (f, reader, _, _) = try ferryLoggingToFIFO()
        defer { close(reader) }
        // ~200 bytes a line: 1,000 sessions are three times the pipe's 64 KiB.
        for _ in 0..<1000 { XCTAssertEqual(try bannerThrough(f.listenPort), "b1") }
        // The writer is stuck once the FIFO holds bytes that no longer change (its capacity
        // depends on the system's pipe limits, so no fixed size is waited for).
        let stuck = steadyValue(timeout: 5, quiet: 0.5) { Int(self.pending(reader)) }
        XCTAssertGreaterThan(stuck ?? 0, 0, "the writer filled the FIFO and is stuck")
        f.signal(SIGTERM)
        XCTAssertEqual(f.waitExit(timeout: 15), 0, "ferry did not exit with its log writer stuck\n" + f.stderr)
    }
}

/// A burst of session ends while the log writer is busy (here: its FIFO's reader pauses, as a
/// disk would for a moment) is written once the writer catches up, not dropped.
final class ConnectionLogBurstTests: IntegrationCase {
    func testBurstOfSessionEndsWhileTheWriterIsBusyLosesNoLine() throws {
        let (f, reader, _, _) = try ferryLoggingToFIFO()
        defer { close(reader) }
        // ~250 bytes a line: 600 sessions are more than the FIFO's 64 KiB and both 4k buffers.
        let sessions = 600
        for _ in 0..<sessions { XCTAssertEqual(try bannerThrough(f.listenPort), "b1") }
        // The reader comes back and takes everything.
        let lines = readLines(reader, atLeast: sessions)
        XCTAssertEqual(lines.count, sessions, "one line per session")
        XCTAssertEqual(f.events("log_lines_dropped"), 0, f.stderr)
        let parsed = lines.filter { (try? JSONSerialization.jsonObject(with: Data($0))) != nil }
        XCTAssertEqual(parsed.count, lines.count, "every line whole")
    }
}

/// A reload moves the access log away from a FIFO whose reader has stopped: the retired file's
/// writer is stuck in write(2), with more lines buffered behind it. The reload neither waits for
/// it nor drops those lines; once the reader is back every line arrives and the FIFO is closed.
final class ConnectionLogRetireTests: IntegrationCase {
    func testReloadRetiringAStuckLogLosesNoLine() throws {
        let admin = "admin_socket @DIR@/admin.sock;"
        let (f, reader, fifo, backendPort) = try ferryLoggingToFIFO(main: admin)
        defer { close(reader) }
        let sessions = 600
        try fillUntilStuck(f, reader, sessions: sessions)
        let b = f.directory.path
        try f.reloadOverAdmin(stream: "access_log \(b)/after.log;\nserver { listen LISTEN; proxy_pass 127.0.0.1:\(backendPort); }", main: admin)
        XCTAssertEqual(try bannerThrough(f.listenPort), "b1", "relaying goes on")
        XCTAssertEqual(readLines(reader, atLeast: sessions).count, sessions, "every line of the retired file arrives")
        XCTAssertEqual(f.events("log_lines_dropped"), 0, f.stderr)
        XCTAssertTrue(waitUntil(timeout: 5) { !f.openFiles().contains(fifo) }, "the retired FIFO is closed")
        XCTAssertEqual(JSONLinesFile(path: b + "/after.log").waitFor(1).count, 1)
    }
}

extension ConnectionLogRetireTests {
    /// A reload moves the log away from the stuck FIFO and the next one moves it back: the new
    /// writer of that path waits for the retired one, so the FIFO gets every old line, then
    /// every new one, each whole.
    func testLogMovedBackToAPathStillRetiringKeepsItsLinesInOrder() throws {
        let admin = "admin_socket @DIR@/admin.sock;"
        let (f, reader, fifo, b1Port) = try ferryLoggingToFIFO(main: admin)
        defer { close(reader) }
        let b2 = try backend("b2")
        let before = 600, after = 100
        try fillUntilStuck(f, reader, sessions: before)
        let dir = f.directory.path
        try f.reloadOverAdmin(stream: "access_log \(dir)/elsewhere.log;\nserver { listen LISTEN; proxy_pass 127.0.0.1:\(b1Port); }", main: admin)
        try f.reloadOverAdmin(stream: "access_log \(fifo) buffer=4k flush=10ms;\nserver { listen LISTEN; proxy_pass 127.0.0.1:\(b2.port); }", main: admin)
        for _ in 0..<after { XCTAssertEqual(try bannerThrough(f.listenPort), "b2") }
        let ports = readLines(reader, atLeast: before + after).map { line -> String in
            guard let o = (try? JSONSerialization.jsonObject(with: Data(line))) as? [String: Any] else { return "broken" }
            return (o["server_address"] as? String) ?? "none"
        }
        let b1 = "127.0.0.1:\(b1Port)", b2a = "127.0.0.1:\(b2.port)"
        XCTAssertEqual(ports.count, before + after)
        XCTAssertEqual(ports.filter { $0 == b1 }.count, before)
        XCTAssertEqual(ports.filter { $0 == b2a }.count, after, "every line whole and in order: \(Set(ports))")
        XCTAssertEqual(ports.firstIndex(of: b2a), before, "the retired writer's lines come first")
        XCTAssertEqual(f.events("log_lines_dropped"), 0, f.stderr)
    }
}

extension IntegrationCase {
    /// Sessions through backend b1 until the log writer is stuck on the FIFO nobody reads:
    /// ~250 bytes a line, so 600 fill the FIFO's 64 KiB and leave lines in ferry's buffers.
    func fillUntilStuck(_ f: FerryInstance, _ reader: Int32, sessions: Int, file: StaticString = #filePath, line: UInt = #line) throws {
        for _ in 0..<sessions { XCTAssertEqual(try bannerThrough(f.listenPort), "b1", file: file, line: line) }
        XCTAssertGreaterThan(steadyValue(timeout: 5, quiet: 0.5) { Int(self.pending(reader)) } ?? 0, 0, "the writer is stuck", file: file, line: line)
    }

    /// Reads the FIFO's read end (non-blocking) until it has `count` lines, or 10 s pass.
    func readLines(_ reader: Int32, atLeast count: Int) -> [ArraySlice<UInt8>] {
        var text: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65536)
        _ = waitUntil(timeout: 10) {
            while true {
                let n = read(reader, &buf, buf.count)
                if n <= 0 { break }
                text += buf[0..<n]
            }
            return text.filter { $0 == UInt8(ascii: "\n") }.count >= count
        }
        return text.split(separator: UInt8(ascii: "\n"))
    }

    /// Bytes waiting in a FIFO (or pipe) for its reader.
    func pending(_ fd: Int32) -> Int32 {
        var n: Int32 = 0
        _ = withUnsafeMutablePointer(to: &n) { ioctl(fd, UInt(FIONREAD), $0) }
        return n
    }

    /// ferry in front of backend b1, its access log a FIFO with small buffers; the FIFO's read end
    /// (non-blocking, read only when the test chooses) is returned for the caller to close.
    func ferryLoggingToFIFO(main: String = "") throws -> (FerryInstance, reader: Int32, fifo: String, backendPort: UInt16) {
        let fifo = try temporaryDirectory(self) + "/access.fifo"
        XCTAssertEqual(mkfifo(fifo, 0o600), 0)
        let reader = open(fifo, O_RDONLY | O_NONBLOCK)
        XCTAssertGreaterThanOrEqual(reader, 0)
        let b = try backend("b1")
        do {
            return (try ferry("access_log \(fifo) buffer=4k flush=10ms;\nserver { listen LISTEN; proxy_pass 127.0.0.1:\(b.port); }", main: main), reader, fifo, b.port)
        } catch {
            close(reader)
            throw error
        }
    }
}
