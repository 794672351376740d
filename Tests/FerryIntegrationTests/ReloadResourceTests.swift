import XCTest
import Glibc

/// What a reload does with the files and sockets named in the main context and the server
/// blocks: the pid file, the admin socket, the access logs. A reload that cannot open the new
/// one fails and keeps the old (as nginx's reload fails on an access_log it cannot open); one
/// that can moves to it and lets the old one go.
final class ReloadResourceTests: IntegrationCase {
    private func contents(_ path: String) -> String? { try? String(contentsOfFile: path, encoding: .utf8) }

    /// Sends `f` its first SIGHUP, waits for the one line that says how the reload went, and
    /// checks it is `outcome` ("reload" or "reload_failed").
    private func firstReload(_ f: FerryInstance, outcome: String, file: StaticString = #filePath, line: UInt = #line) {
        f.signal(SIGHUP)
        XCTAssertTrue(waitUntil(timeout: 5) { f.events("reload") + f.events("reload_failed") == 1 }, f.stderr, file: file, line: line)
        XCTAssertEqual(f.events(outcome), 1, f.stderr, file: file, line: line)
    }

    /// `pid` changed in the file: the reload writes the new file and removes the old one (nginx's
    /// ngx_init_cycle does the same), so `ferry -s` with the new file finds the process, and
    /// ferry removes the new file at exit, not a path it never wrote.
    func testReloadMovesThePidFile() throws {
        let stream = "server { listen LISTEN; proxy_pass 127.0.0.1:1; }"
        let f = try ferry(stream, main: "pid @DIR@/a.pid;")
        let dir = f.directory.path
        XCTAssertTrue(waitUntil(timeout: 3) { self.contents(dir + "/a.pid") == "\(f.pid)\n" })
        try f.rewriteConfig(stream: stream, main: "pid @DIR@/b.pid;")
        firstReload(f, outcome: "reload")
        XCTAssertEqual(contents(dir + "/b.pid"), "\(f.pid)\n")
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/a.pid"), "the old pid file is left behind")
        let quit = try FerryProcess.runToCompletion(["-c", f.configPath, "-s", "quit"], timeout: 5)
        XCTAssertEqual(quit.status, 0, quit.stderr)
        XCTAssertEqual(f.waitExit(timeout: 5), 0, f.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/b.pid"), "pid file left after exit")
    }

    /// A pid path the reload cannot write fails the reload: the old file stays and still works.
    func testUnwritablePidFileFailsTheReload() throws {
        let stream = "server { listen LISTEN; proxy_pass 127.0.0.1:1; }"
        let f = try ferry(stream, main: "pid @DIR@/a.pid;")
        let dir = f.directory.path
        XCTAssertTrue(waitUntil(timeout: 3) { self.contents(dir + "/a.pid") == "\(f.pid)\n" })
        try f.rewriteConfig(stream: stream, main: "pid @DIR@/missing/b.pid;")
        firstReload(f, outcome: "reload_failed")
        XCTAssertTrue(f.stderr.contains("pid file \\\"\(dir)/missing/b.pid\\\" could not be written"), f.stderr)
        XCTAssertEqual(contents(dir + "/a.pid"), "\(f.pid)\n")
    }

    /// An admin socket moved to a path that cannot be bound fails the reload and the old socket
    /// keeps answering. Before, the old one was closed first and ferry was left without any.
    func testAdminSocketThatCannotOpenFailsTheReloadAndKeepsTheOld() throws {
        let b = try backend("b1")
        let stream = "server { listen LISTEN; proxy_pass 127.0.0.1:\(b.port); }"
        let f = try ferry(stream, main: "admin_socket @DIR@/admin.sock;")
        try f.rewriteConfig(stream: stream, main: "admin_socket @DIR@/missing/admin.sock;")
        firstReload(f, outcome: "reload_failed")
        XCTAssertTrue(f.stderr.contains("admin_socket \(f.directory.path)/missing/admin.sock"), f.stderr)
        XCTAssertTrue(try AdminSocket.command(f.adminPath, "show info").contains("Name: ferry"), "the old admin socket is gone")
        // A path that can be bound: the socket moves, the old path is removed.
        try f.reloadOverAdmin(stream: stream, main: "admin_socket @DIR@/admin2.sock;")
        let moved = f.directory.path + "/admin2.sock"
        XCTAssertTrue(try AdminSocket.command(moved, "show info").contains("Name: ferry"))
        XCTAssertTrue(waitUntil(timeout: 3) { !FileManager.default.fileExists(atPath: f.adminPath) }, "old admin socket file left")
    }

    /// An access_log the reload cannot open fails the reload, like nginx's, and sessions go on
    /// being logged to the old file. Before, the reload went through and those listeners logged
    /// nothing at all.
    func testAccessLogThatCannotOpenFailsTheReload() throws {
        let b = try backend("b1")
        let f = try ferry("access_log @DIR@/access.log;\nserver { listen LISTEN; proxy_pass 127.0.0.1:\(b.port); }")
        let logPath = f.directory.path + "/access.log"
        try f.rewriteConfig(stream: "access_log @DIR@/missing/access.log;\nserver { listen LISTEN; proxy_pass 127.0.0.1:\(b.port); }")
        firstReload(f, outcome: "reload_failed")
        XCTAssertTrue(f.stderr.contains("missing/access.log"), f.stderr)
        XCTAssertEqual(try bannerThrough(f.listenPort), "b1")
        XCTAssertTrue(waitUntil(timeout: 5) { (self.contents(logPath) ?? "").split(separator: "\n").count == 1 },
                      "the session was not logged after the failed reload: \(contents(logPath) ?? "(no file)")")
    }

    /// Each reload that moves the access_log to another path lets the old file go: its
    /// descriptor and its writer thread are closed (nginx closes the old cycle's files). Before,
    /// every path ever configured stayed open, one descriptor and one thread per reload.
    func testReloadsThatMoveTheAccessLogLeakNothing() throws {
        let b = try backend("b1")
        func stream(_ i: Int) -> String { "access_log @DIR@/access\(i).log;\nserver { listen LISTEN; proxy_pass 127.0.0.1:\(b.port); }" }
        let admin = "admin_socket @DIR@/admin.sock;"
        let f = try ferry(stream(0), main: admin)
        let dir = f.directory.path
        // A session open across the reloads: its line goes to the file in force when it ends.
        let held = try TestClient.connect(f.listenPort, timeout: 5)
        XCTAssertEqual(try held.banner(), "b1")
        let before = f.openFDCount()
        let threadsBefore = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(f.pid)/task").count) ?? -1
        let reloads = 20
        for i in 1...reloads {
            try f.rewriteConfig(stream: stream(i), main: admin)
            XCTAssertTrue(try AdminSocket.command(f.adminPath, "reload").hasPrefix("Configuration reloaded"), f.stderr)
        }
        // A retired file's writer closes it and exits on its own, without the reload waiting.
        XCTAssertTrue(waitUntil(timeout: 5) { f.openFDCount() <= before }, "descriptors grew over \(reloads) reloads: \(f.openFDCount()) > \(before)")
        func threads() -> Int { (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(f.pid)/task").count) ?? -1 }
        XCTAssertTrue(waitUntil(timeout: 5) { threads() <= threadsBefore }, "writer threads grew over \(reloads) reloads: \(threads()) > \(threadsBefore)")
        held.close()
        XCTAssertEqual(try bannerThrough(f.listenPort), "b1")
        let last = dir + "/access\(reloads).log"
        XCTAssertTrue(waitUntil(timeout: 5) { (self.contents(last) ?? "").split(separator: "\n").count == 2 }, contents(last) ?? "(no file)")
    }

    /// A kept listen socket keeps what lives in the socket (backlog, reuseport, and what
    /// accepted clients inherit: so_keepalive, tcp_user_timeout), and the warning names exactly
    /// those; `proxy_protocol` is read at each accept, takes effect at once and draws no warning.
    /// Before, a changed tcp_user_timeout was applied to server sockets only without a word,
    /// and a proxy_protocol change was announced as needing a restart though it did not.
    func testKeptListenSocketOptionsAreReportedExactly() throws {
        let b = try backend("b1")
        let admin = "admin_socket @DIR@/admin.sock;"
        let f = try ferry("server { listen LISTEN backlog=100; proxy_pass 127.0.0.1:\(b.port); }", main: admin)
        try f.reloadOverAdmin(stream: "server { listen LISTEN backlog=200; tcp_user_timeout 30s; proxy_pass 127.0.0.1:\(b.port); }", main: admin)
        XCTAssertEqual(f.events("reload_needs_restart"), 1, f.stderr)
        XCTAssertTrue(f.stderr.contains("\"options\":\"backlog,tcp_user_timeout\""), f.stderr)
        try f.reloadOverAdmin(stream: "server { listen LISTEN backlog=200 proxy_protocol; tcp_user_timeout 30s; proxy_pass 127.0.0.1:\(b.port); }", main: admin)
        XCTAssertEqual(f.events("reload_needs_restart"), 1, "proxy_protocol is announced as needing a restart: \(f.stderr)")
        let c = try TestClient.connect(f.listenPort, timeout: 5)
        defer { c.close() }
        try c.send("PROXY TCP4 192.0.2.7 127.0.0.1 40000 \(f.listenPort)\r\n")
        XCTAssertEqual(try c.banner(), "b1")
        XCTAssertTrue(try AdminSocket.command(f.adminPath, "show sessions").contains("192.0.2.7"), "the PROXY header was not read")
    }
}
