import XCTest
import Glibc

/// The session limit below capacity: nginx's `worker_connections` in the file, HAProxy's
/// `set maxconn global` at runtime. Either way a client beyond it waits in the backlog (not
/// refused), a session that ends lets it in, and no open session is dropped.
final class SessionLimitTests: IntegrationCase {
    private func info(_ f: FerryInstance) throws -> [String: String] {
        var out: [String: String] = [:]
        for line in try AdminSocket.command(f.adminPath, "show info").split(separator: "\n") {
            let parts = line.split(separator: ":", maxSplits: 1)
            if parts.count == 2 { out[String(parts[0])] = parts[1].trimmingCharacters(in: .whitespaces) }
        }
        return out
    }

    /// `count` clients, each served at once with the banner of backend `name`.
    private func servedSessions(_ count: Int, _ port: UInt16, _ name: String,
                                file: StaticString = #filePath, line: UInt = #line) throws -> [TestClient] {
        var clients: [TestClient] = []
        do {
            for i in 0..<count {
                let c = try TestClient.connect(port, timeout: 3)
                clients.append(c)
                XCTAssertEqual(try c.banner(), name, "session \(i)", file: file, line: line)
            }
        } catch {
            clients.forEach { $0.close() }
            throw error
        }
        return clients
    }

    /// The backend name in the banner of a client held until now, which should be let in.
    private func bannerOnceLetIn(_ c: TestClient) throws -> String {
        Net.setTimeouts(c.fd, 3)
        return TestBackend.name(fromBanner: try c.receive(exactly: TestBackend.bannerSize))
    }

    /// Served at once, or held: a client that gets no banner within `wait` seconds is waiting.
    private func isHeld(_ c: TestClient) -> Bool {
        (try? c.receive(exactly: TestBackend.bannerSize)) == nil
    }

    /// `worker_connections 7` with one listen socket leaves (7 - 1) / 2 = 3 sessions, as nginx
    /// counts: the listen socket, then a client and a server connection per session.
    func testWorkerConnectionsLimitsSessionsAsNginxCounts() throws {
        let b = try backend("wc")
        let f = try ferry("server { listen LISTEN; proxy_pass 127.0.0.1:\(b.port); proxy_connect_timeout 1s; proxy_timeout 30s; }",
                          main: "admin_socket @DIR@/admin.sock;\nevents { worker_connections 7; }")
        XCTAssertEqual(f.field("maxconn", ofEvent: "start"), 3, f.stderr)
        let shown = try info(f)
        XCTAssertEqual(shown["Maxconn"], "3")
        XCTAssertEqual(shown["Hard_maxconn"], "3")
        var held = try servedSessions(3, f.listenPort, "wc")
        defer { held.forEach { $0.close() } }
        let waiting = try TestClient.connect(f.listenPort, timeout: 0.7)
        defer { waiting.close() }
        XCTAssertTrue(isHeld(waiting), "a fourth session was let in past worker_connections")
        XCTAssertTrue(waitUntil(timeout: 2) { f.events("capacity_reached") == 1 }, f.stderr)
        XCTAssertEqual(f.field("maxconn", ofEvent: "capacity_reached"), 3, f.stderr)
        held.removeFirst().close()
        XCTAssertEqual(try bannerOnceLetIn(waiting), "wc",
                       "the waiting client was not served once a session ended")
    }

    /// nginx counts worker_connections per worker: `worker_processes 3` with 9 connections
    /// and one listen socket is 3 x (9 - 1) / 2 = 12 sessions for ferry's one loop.
    func testWorkerConnectionsCountPerNginxWorker() throws {
        let b = try backend("w3")
        let f = try ferry("server { listen LISTEN; proxy_pass 127.0.0.1:\(b.port); }",
                          main: "admin_socket @DIR@/admin.sock;\nworker_processes 3;\nevents { worker_connections 9; }")
        XCTAssertEqual(f.field("maxconn", ofEvent: "start"), 12, f.stderr)
        XCTAssertEqual(try info(f)["Hard_maxconn"], "12")
        XCTAssertEqual(try bannerThrough(f.listenPort), "w3")
    }

    /// Lowered below the open sessions, the limit drops none of them and holds new clients
    /// until enough have ended; 0 gives the configured limit back. Bad values change nothing.
    func testSetMaxconnGlobalHoldsNewClientsAndKeepsSessions() throws {
        let b = try backend("g")
        let f = try ferry("server { listen LISTEN; proxy_pass 127.0.0.1:\(b.port); proxy_connect_timeout 1s; proxy_timeout 30s; }",
                          main: "admin_socket @DIR@/admin.sock;")
        let hard = try XCTUnwrap(f.field("capacity", ofEvent: "start"))
        for (command, answer) in [
            ("set maxconn global", "Expects an integer value.\n\n"),
            ("set maxconn global 12x", "Expects an integer value (0 restores Hard_maxconn, \(hard)).\n\n"),
            ("set maxconn global -1", "Value out of range: from 1 to Hard_maxconn (\(hard)), or 0 to restore it.\n\n"),
            ("set maxconn global \(hard + 1)", "Value out of range: from 1 to Hard_maxconn (\(hard)), or 0 to restore it.\n\n"),
            ("set maxconn global 2 now", "Usage: set maxconn global <n>\n\n"),
            ("set maxconn backend x 2", "'set maxconn' only supports 'frontend', 'global' and 'server'.\n\n"),
        ] {
            XCTAssertEqual(try AdminSocket.command(f.adminPath, command), answer, command)
        }
        XCTAssertEqual(try info(f)["Maxconn"], "\(hard)", "a refused value changed the limit")

        var held = try servedSessions(3, f.listenPort, "g")
        defer { held.forEach { $0.close() } }
        XCTAssertEqual(try AdminSocket.command(f.adminPath, "set maxconn global 2"), "\n")
        let shown = try info(f)
        XCTAssertEqual(shown["Maxconn"], "2")
        XCTAssertEqual(shown["Hard_maxconn"], "\(hard)")
        let waiting = try TestClient.connect(f.listenPort, timeout: 0.7)
        defer { waiting.close() }
        XCTAssertTrue(isHeld(waiting), "a client was let in above the lowered limit")
        for (i, c) in held.enumerated() {
            try c.send("k\(i)")
            XCTAssertEqual(try c.receive(exactly: 2), Array("k\(i)".utf8), "session \(i) was disturbed by the lower limit")
        }
        // Three open, limit two: one ending is not enough, the second is.
        held.removeFirst().close()
        XCTAssertTrue(isHeld(waiting), "let in while the open sessions still filled the limit")
        held.removeFirst().close()
        XCTAssertEqual(try bannerOnceLetIn(waiting), "g")
        held.append(waiting)
        // Full again (two open); giving the configured limit back lets the next one in at once.
        let next = try TestClient.connect(f.listenPort, timeout: 0.7)
        held.append(next)
        XCTAssertTrue(isHeld(next), "let in above the limit")
        XCTAssertEqual(try AdminSocket.command(f.adminPath, "set maxconn global 0"), "\n")
        XCTAssertEqual(try bannerOnceLetIn(next), "g",
                       "restoring the limit did not let the waiting client in")
        XCTAssertEqual(try info(f)["Maxconn"], "\(hard)")
        XCTAssertEqual(f.events("admin_set_maxconn"), 2, f.stderr)
    }

    /// A runtime limit survives a reload that leaves worker_connections alone, as a server's
    /// max_conns does; a reload that changes worker_connections applies the file's new limit.
    func testReloadKeepsRuntimeLimitUnlessWorkerConnectionsChanged() throws {
        let b = try backend("r")
        let stream = "server { listen LISTEN; proxy_pass 127.0.0.1:\(b.port); }"
        let f = try ferry(stream, main: "admin_socket @DIR@/admin.sock;\nevents { worker_connections 41; }")
        XCTAssertEqual(try info(f)["Maxconn"], "20")
        XCTAssertEqual(try AdminSocket.command(f.adminPath, "set maxconn global 5"), "\n")
        try f.reloadOverAdmin(stream: stream, main: "admin_socket @DIR@/admin.sock;\nevents { worker_connections 41; multi_accept on; }")
        XCTAssertEqual(try info(f)["Maxconn"], "5", "a reload that kept worker_connections undid set maxconn global")
        try f.reloadOverAdmin(stream: stream, main: "admin_socket @DIR@/admin.sock;\nevents { worker_connections 21; }")
        let shown = try info(f)
        XCTAssertEqual(shown["Maxconn"], "10")
        XCTAssertEqual(shown["Hard_maxconn"], "10")
        XCTAssertEqual(try bannerThrough(f.listenPort), "r")
    }

    /// `show stat`'s FRONTEND rows by listen address: column name to value.
    private func frontends(_ f: FerryInstance) throws -> [String: [String: String]] {
        let lines = try AdminSocket.command(f.adminPath, "show stat").split(separator: "\n")
        let header = lines[0].dropFirst(2).split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        var out: [String: [String: String]] = [:]
        for line in lines.dropFirst() {
            let values = line.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            guard values.count > 1, values[1] == "FRONTEND" else { continue }
            out[values[0]] = Dictionary(uniqueKeysWithValues: zip(header, values))
        }
        return out
    }

    /// HAProxy's frontend maxconn: the listener at its limit stops accepting alone (FULL in
    /// show stat) while another listen socket of the same server block goes on; a session of
    /// its own ending lets its next client in; 0 lifts the limit.
    func testSetMaxconnFrontendLimitsOneListenSocket() throws {
        let b = try backend("fe")
        let other = try Net.freePort()
        let f = try ferry("server { listen LISTEN; listen 127.0.0.1:\(other); proxy_pass 127.0.0.1:\(b.port); proxy_connect_timeout 1s; proxy_timeout 30s; }",
                          main: "admin_socket @DIR@/admin.sock;")
        let name = "127.0.0.1:\(f.listenPort)"
        for (command, answer) in [
            ("set maxconn frontend", "A frontend name is expected.\n\n"),
            ("set maxconn frontend 127.0.0.1:1 2", "No such frontend.\n\n"),
            ("set maxconn frontend \(name)", "Integer value expected.\n\n"),
            ("set maxconn frontend \(name) two", "Integer value expected (0 = no limit of the frontend's own).\n\n"),
            ("set maxconn frontend \(name) -2", "Value out of range.\n\n"),
            ("set maxconn frontend \(name) 2 3", "Usage: set maxconn frontend <frontend> <n>\n\n"),
            ("set maxconn nothing 2", "'set maxconn' only supports 'frontend', 'global' and 'server'.\n\n"),
        ] {
            XCTAssertEqual(try AdminSocket.command(f.adminPath, command), answer, command)
        }
        XCTAssertEqual(try frontends(f)[name]?["status"], "OPEN", "a refused value changed the frontend")
        XCTAssertEqual(try AdminSocket.command(f.adminPath, "set maxconn frontend \(name) 2"), "\n")

        var held = try servedSessions(2, f.listenPort, "fe")
        defer { held.forEach { $0.close() } }
        let waiting = try TestClient.connect(f.listenPort, timeout: 0.7)
        held.append(waiting)
        XCTAssertTrue(isHeld(waiting), "a third client was let in past the frontend's limit")
        let row = try XCTUnwrap(try frontends(f)[name])
        XCTAssertEqual(row["status"], "FULL")
        XCTAssertEqual(row["slim"], "2")
        XCTAssertEqual(row["scur"], "2")
        XCTAssertEqual(try frontends(f)["127.0.0.1:\(other)"]?["status"], "OPEN")
        // The other listen socket is not held by this one's limit.
        XCTAssertEqual(try bannerThrough(other), "fe", "the other listen socket stopped with the full one")
        held.removeFirst().close()
        XCTAssertEqual(try bannerOnceLetIn(waiting), "fe",
                       "the waiting client was not served once a session of its frontend ended")
        // Full again; lifting the limit lets the next client in at once.
        let next = try TestClient.connect(f.listenPort, timeout: 0.7)
        held.append(next)
        XCTAssertTrue(isHeld(next), "let in above the limit")
        XCTAssertEqual(try AdminSocket.command(f.adminPath, "set maxconn frontend \(name) 0"), "\n")
        XCTAssertEqual(try bannerOnceLetIn(next), "fe")
        XCTAssertEqual(try frontends(f)[name]?["status"], "OPEN")
        XCTAssertEqual(f.events("frontend_maxconn_reached"), 1, f.stderr)
        for (i, c) in held.enumerated() {
            try c.send("s\(i)")
            XCTAssertEqual(try c.receive(exactly: 2), Array("s\(i)".utf8), "session \(i) was disturbed")
        }
    }

    /// A client still sending its PROXY header holds a place in its frontend's limit, as it
    /// holds a descriptor: with limit 1, the second client waits until the first one's header
    /// has come and its session ended.
    func testProxyHeaderReadersCountAgainstTheFrontendLimit() throws {
        let b = try backend("pp")
        let f = try ferry("server { listen LISTEN proxy_protocol; proxy_pass 127.0.0.1:\(b.port); proxy_protocol_timeout 10s; proxy_timeout 30s; }",
                          main: "admin_socket @DIR@/admin.sock;")
        XCTAssertEqual(try AdminSocket.command(f.adminPath, "set maxconn frontend 127.0.0.1:\(f.listenPort) 1"), "\n")
        let first = try TestClient.connect(f.listenPort, timeout: 3)
        defer { first.close() }
        XCTAssertTrue(waitUntil(timeout: 2) { (try? self.info(f)["ReadingProxyHeaders"]) == "1" }, "the first client is not reading its header")
        let second = try TestClient.connect(f.listenPort, timeout: 3)
        defer { second.close() }
        // No banner tells here (none comes before a header): the count does, given the time
        // an accept takes.
        usleep(500_000)
        XCTAssertEqual(try info(f)["ReadingProxyHeaders"], "1", "the second client was accepted while the first one's header held the only place")
        try first.send("PROXY TCP4 192.0.2.7 127.0.0.1 4444 \(f.listenPort)\r\n")
        XCTAssertEqual(try first.banner(), "pp")
        XCTAssertEqual(try info(f)["ReadingProxyHeaders"], "0", "the session, not its header, holds the place now")
        first.close()
        XCTAssertTrue(waitUntil(timeout: 3) { (try? self.info(f)["ReadingProxyHeaders"]) == "1" }, "the second client was not let in once the first ended")
        try second.send("PROXY TCP4 192.0.2.8 127.0.0.1 4445 \(f.listenPort)\r\n")
        XCTAssertEqual(try bannerOnceLetIn(second), "pp")
    }

    /// A reload keeps a kept socket's limit (still FULL, same slim) and gives a new socket
    /// none; a reload that drops a full socket lets its session run on, and that session's
    /// end (the closed listener falls below its limit) leaves the rest of ferry serving.
    func testReloadKeepsAFrontendLimitAndDropsItWithItsSocket() throws {
        let b = try backend("rk")
        let other = try Net.freePort()
        let main = "admin_socket @DIR@/admin.sock;"
        let f = try ferry("server { listen LISTEN; proxy_pass 127.0.0.1:\(b.port); proxy_timeout 30s; }", main: main)
        let name = "127.0.0.1:\(f.listenPort)"
        XCTAssertEqual(try AdminSocket.command(f.adminPath, "set maxconn frontend \(name) 1"), "\n")
        let c = try TestClient.connect(f.listenPort, timeout: 3)
        defer { c.close() }
        XCTAssertEqual(try c.banner(), "rk")
        try f.reloadOverAdmin(stream: "server { listen LISTEN; listen 127.0.0.1:\(other); proxy_pass 127.0.0.1:\(b.port); proxy_timeout 30s; }", main: main)
        var rows = try frontends(f)
        XCTAssertEqual(rows[name]?["status"], "FULL", "the reload lost the kept socket's limit")
        XCTAssertEqual(rows[name]?["slim"], "1")
        XCTAssertEqual(rows["127.0.0.1:\(other)"]?["status"], "OPEN")
        try f.reloadOverAdmin(stream: "server { listen 127.0.0.1:\(other); proxy_pass 127.0.0.1:\(b.port); proxy_timeout 30s; }", main: main)
        rows = try frontends(f)
        XCTAssertNil(rows[name], "the dropped socket is still listed")
        // New sessions take descriptor numbers, the dropped socket's among them.
        var fresh: [TestClient] = []
        defer { fresh.forEach { $0.close() } }
        for _ in 0..<4 {
            let n = try TestClient.connect(other, timeout: 3)
            XCTAssertEqual(try n.banner(), "rk")
            fresh.append(n)
        }
        try c.send("old")
        XCTAssertEqual(try c.receive(exactly: 3), Array("old".utf8), "the dropped socket's session was disturbed")
        c.close()
        usleep(300_000)
        for (i, n) in fresh.enumerated() {
            try n.send("n\(i)")
            XCTAssertEqual(try n.receive(exactly: 2), Array("n\(i)".utf8), "session \(i) was disturbed when the dropped socket's session ended")
        }
        XCTAssertEqual(try bannerThrough(other), "rk")
        XCTAssertTrue(f.isRunning)
    }

    /// `disable frontend` on a FULL socket refuses new clients; `enable frontend` listens
    /// again but the limit still holds them in the backlog until a session of its own ends.
    func testPauseAndResumeOfAFullFrontendKeepTheLimit() throws {
        let b = try backend("pz")
        let f = try ferry("server { listen LISTEN; proxy_pass 127.0.0.1:\(b.port); proxy_timeout 30s; }", main: "admin_socket @DIR@/admin.sock;")
        let name = "127.0.0.1:\(f.listenPort)"
        XCTAssertEqual(try AdminSocket.command(f.adminPath, "set maxconn frontend \(name) 1"), "\n")
        let c = try TestClient.connect(f.listenPort, timeout: 3)
        defer { c.close() }
        XCTAssertEqual(try c.banner(), "pz")
        XCTAssertEqual(try frontends(f)[name]?["status"], "FULL")
        XCTAssertEqual(try AdminSocket.command(f.adminPath, "disable frontend \(name)"), "\n")
        XCTAssertEqual(try frontends(f)[name]?["status"], "PAUSED")
        XCTAssertThrowsError(try TestClient.connect(f.listenPort, timeout: 1), "a paused frontend took a client")
        XCTAssertEqual(try AdminSocket.command(f.adminPath, "enable frontend \(name)"), "\n")
        XCTAssertEqual(try frontends(f)[name]?["status"], "FULL", "enable frontend lost the limit")
        let waiting = try TestClient.connect(f.listenPort, timeout: 0.7)
        defer { waiting.close() }
        XCTAssertTrue(isHeld(waiting), "enable frontend let a client in past the limit")
        let share = cpuShareOverOneSecond(f.pid)
        XCTAssertLessThan(share, 0.25, "ferry used \(share) of a CPU with a full frontend and a client in its backlog")
        c.close()
        XCTAssertEqual(try bannerOnceLetIn(waiting), "pz")
    }

    /// A graceful stop with limits set and clients waiting behind them: the open session
    /// finishes, and ferry exits 0 once it ends (waiting clients are not served by a stop).
    func testGracefulStopWithLimitsSet() throws {
        let b = try backend("st")
        let f = try ferry("server { listen LISTEN; proxy_pass 127.0.0.1:\(b.port); proxy_timeout 30s; }", main: "admin_socket @DIR@/admin.sock;")
        XCTAssertEqual(try AdminSocket.command(f.adminPath, "set maxconn frontend 127.0.0.1:\(f.listenPort) 1; set maxconn global 1"), "\n\n")
        let c = try TestClient.connect(f.listenPort, timeout: 3)
        defer { c.close() }
        XCTAssertEqual(try c.banner(), "st")
        let waiting = try TestClient.connect(f.listenPort, timeout: 0.7)
        defer { waiting.close() }
        XCTAssertTrue(isHeld(waiting))
        f.signal(SIGTERM)
        XCTAssertTrue(waitUntil(timeout: 3) { f.events("stopping") == 1 }, f.stderr)
        try c.send("end")
        XCTAssertEqual(try c.receive(exactly: 3), Array("end".utf8), "the session was cut by the stop")
        c.close()
        XCTAssertEqual(f.waitExit(timeout: 5), 0, f.stderr)
        XCTAssertEqual(f.events("exit"), 1)
    }
}
