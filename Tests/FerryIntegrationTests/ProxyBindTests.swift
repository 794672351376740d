import XCTest
import Glibc

/// `proxy_bind`: server connections come from the configured local address. Loopback's whole
/// 127/8 is local on Linux without setup, so a backend on 127.0.0.1 can tell 127.0.0.2 apart.
final class ProxyBindTests: IntegrationCase {
    /// A backend that answers each connection with the address it came from and a newline.
    private func peerReporter() throws -> ScriptedBackend {
        try scripted { fd in
            var a = sockaddr_in()
            var len = socklen_t(MemoryLayout<sockaddr_in>.size)
            _ = withUnsafeMutablePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getpeername(fd, $0, &len) } }
            var text = [CChar](repeating: 0, count: Int(INET_ADDRSTRLEN))
            inet_ntop(AF_INET, &a.sin_addr, &text, socklen_t(INET_ADDRSTRLEN))
            let line = String(cString: text) + "\n"
            _ = send(fd, line, line.utf8.count, Int32(MSG_NOSIGNAL))
            Net.setTimeouts(fd, 5)
            var buf = [UInt8](repeating: 0, count: 64)
            while buf.withUnsafeMutableBytes({ recv(fd, $0.baseAddress!, 64, 0) }) > 0 {}
        }
    }

    /// The address the backend saw for one session through `port`.
    private func peerSeen(through port: UInt16) throws -> String {
        let c = try TestClient.connect(port, timeout: 3)
        defer { c.close() }
        var got: [UInt8] = []
        for _ in 0..<20 where !got.contains(UInt8(ascii: "\n")) { got += try c.receiveSome() }
        return String(decoding: got, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Bound, not bound (the control that shows the test can fail), inherited and cancelled
    /// with `off`; a reload gives new sessions the new address and leaves live ones alone.
    func testServerSeesTheBoundAddressAndAReloadChangesIt() throws {
        let b = try peerReporter()
        let plain = try Net.freePort(), cancelled = try Net.freePort()
        let body = { (address: String) in """
            proxy_bind \(address);
            server { listen LISTEN; proxy_pass 127.0.0.1:\(b.port); }
            server { listen 127.0.0.1:\(plain); proxy_pass 127.0.0.1:\(b.port); proxy_bind 127.0.0.3; }
            server { listen 127.0.0.1:\(cancelled); proxy_pass 127.0.0.1:\(b.port); proxy_bind off; }
            """ }
        let f = try ferry(body("127.0.0.2"))
        XCTAssertEqual(try peerSeen(through: f.listenPort), "127.0.0.2")
        XCTAssertEqual(try peerSeen(through: plain), "127.0.0.3")
        XCTAssertEqual(try peerSeen(through: cancelled), "127.0.0.1")

        let live = try TestClient.connect(f.listenPort, timeout: 3)
        defer { live.close() }
        XCTAssertEqual(String(decoding: try live.receive(exactly: 10), as: UTF8.self), "127.0.0.2\n")
        try f.rewriteConfig(stream: body("127.0.0.4"))
        f.signal(SIGHUP)
        XCTAssertTrue(waitUntil(timeout: 5) { f.events("reload") == 1 }, f.stderr)
        XCTAssertEqual(try peerSeen(through: f.listenPort), "127.0.0.4")
        // The session from before the reload still relays on its connection from 127.0.0.2.
        try live.send("x")
        XCTAssertEqual(live.waitForEnd(), .timeout, "the live session ended at the reload")
        XCTAssertEqual(f.events("proxy_bind_failed"), 0)
    }

    /// A server of the other family (added over the admin socket; the file check refuses it)
    /// fails as ferry's own error, is logged, and the session goes to the next server.
    func testAServerOfTheOtherFamilyIsSkippedWithALogLine() throws {
        let b = try peerReporter()
        let six = try Net6.freePort()
        let f = try ferryBoundTo127002(four: b.port)
        try addReadyServer(f, "u/six [::1]:\(six)")
        for i in 0..<4 { XCTAssertEqual(try peerSeen(through: f.listenPort), "127.0.0.2", "session \(i)") }
        XCTAssertTrue(waitUntil(timeout: 2) { f.events("proxy_bind_failed") >= 1 }, f.stderr)
        let line = f.stderr.split(separator: "\n").first { $0.contains("\"event\":\"proxy_bind_failed\"") } ?? ""
        XCTAssertTrue(line.contains("\"server\":\"six\"") && line.contains("address family differs"), String(line))
        // Not held against the server: no connect failure was counted or logged.
        XCTAssertEqual(f.events("connect_failed"), 0)
    }

    /// Every session that picks such a server skips it, but the error is logged once for the
    /// server, not once per session; a server added anew starts a new episode.
    func testTheOtherFamilyIsLoggedOncePerServer() throws {
        let b = try peerReporter()
        let six = try Net6.freePort()
        let f = try ferryBoundTo127002(four: b.port, main: "access_log @DIR@/access.log;")
        let accessLog = f.directory.appendingPathComponent("access.log").path
        func skipped() -> Int {
            ((try? String(contentsOfFile: accessLog, encoding: .utf8)) ?? "").components(separatedBy: "\"outcome\":\"local_error\"").count - 1
        }
        // Weight 9 to four's 1: nine sessions in ten pick six first.
        try addReadyServer(f, "u/six [::1]:\(six) weight=9")
        for i in 0..<6 { XCTAssertEqual(try peerSeen(through: f.listenPort), "127.0.0.2", "session \(i)") }
        XCTAssertTrue(waitUntil(timeout: 3) { skipped() >= 5 }, "sessions skipped six: \(skipped())")
        XCTAssertEqual(f.events("proxy_bind_failed"), 1, f.stderr)

        // Deleted and added again: a new server, and one more line for it.
        XCTAssertEqual(try AdminSocket.command(f.adminPath, "set server u/six state maint"), "\n")
        XCTAssertEqual(try AdminSocket.command(f.adminPath, "del server u/six"), "Server deleted.\n\n")
        try addReadyServer(f, "u/six [::1]:\(six) weight=9")
        let before = skipped()
        for i in 0..<4 { XCTAssertEqual(try peerSeen(through: f.listenPort), "127.0.0.2", "session \(i) after the new add") }
        XCTAssertTrue(waitUntil(timeout: 3) { skipped() >= before + 3 }, "sessions skipped the new six: \(skipped() - before)")
        XCTAssertEqual(f.events("proxy_bind_failed"), 2, f.stderr)
        XCTAssertEqual(f.events("connect_failed"), 0)
    }

    /// ferry with admin socket, upstream u of server `four` at 127.0.0.1:`four`, proxy_bind 127.0.0.2.
    func ferryBoundTo127002(four: UInt16, main: String = "") throws -> FerryInstance {
        try ferry("""
            admin_socket @DIR@/admin.sock;
            \(main)
            upstream u { server 127.0.0.1:\(four) name=four; }
            server { listen LISTEN; proxy_pass u; proxy_bind 127.0.0.2; }
            """)
    }

    /// `add server SPEC` then `set server ... state ready` (a server added at run time starts in maintenance).
    func addReadyServer(_ f: FerryInstance, _ spec: String, file: StaticString = #filePath, line: UInt = #line) throws {
        XCTAssertEqual(try AdminSocket.command(f.adminPath, "add server \(spec)"), "New server registered.\n\n", file: file, line: line)
        let name = spec.split(separator: " ")[0]
        XCTAssertEqual(try AdminSocket.command(f.adminPath, "set server \(name) state ready"), "\n", file: file, line: line)
    }
}
