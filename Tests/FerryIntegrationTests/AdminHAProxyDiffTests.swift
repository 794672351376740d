import XCTest
import Glibc

/// Differential: the same admin commands against HAProxy's stats socket and ferry's admin
/// socket give the same answers (HAProxy omits the final empty line after a few errors, so
/// answers are compared without trailing newlines), and the same weights and states after.
final class AdminHAProxyDiffTests: IntegrationCase {
    static let haproxyPath = "/usr/sbin/haproxy"

    /// Starts HAProxy beside `f` with backend `cccam` holding `backend`'s lines and an admin
    /// stats socket; returns the socket's path once it exists, and the process to stop.
    func haproxy(in f: FerryInstance, name: String, backend: String, frontendPort: UInt16? = nil) throws -> (String, Process) {
        let sock = f.directory.appendingPathComponent(name + ".sock").path
        let cfg = f.directory.appendingPathComponent(name + ".cfg").path
        try """
            global
                stats socket \(sock) mode 600 level admin
            defaults
                mode tcp
                timeout connect 1s
                timeout client 60s
                timeout server 60s
            frontend fe
                bind 127.0.0.1:\(try frontendPort ?? Net.freePort())
                default_backend cccam
            backend cccam
            \(backend)

            """.write(toFile: cfg, atomically: true, encoding: .utf8)
        let h = Process()
        h.executableURL = URL(fileURLWithPath: Self.haproxyPath)
        h.arguments = ["-db", "-f", cfg]
        h.standardOutput = FileHandle.nullDevice
        h.standardError = FileHandle.nullDevice
        try h.run()
        XCTAssertTrue(waitUntil(timeout: 5) { FileManager.default.fileExists(atPath: sock) }, "HAProxy did not open \(sock)")
        return (sock, h)
    }

    func testSameAnswersAsHAProxy() throws {
        guard FileManager.default.isExecutableFile(atPath: Self.haproxyPath) else { throw XCTSkip("haproxy not installed") }
        let b = try ["b1", "b2", "b3"].map { try backend($0) }
        let f = try ferry("""
            upstream cccam { least_conn;
                server 127.0.0.1:\(b[0].port) name=b1 weight=5 max_conns=30;
                server 127.0.0.1:\(b[1].port) name=b2;
                server 127.0.0.1:\(b[2].port) name=b3 backup; }
            server { listen LISTEN; proxy_pass cccam; }
            """, main: "admin_socket @DIR@/admin.sock;")
        let (hsock, h) = try haproxy(in: f, name: "haproxy", backend: """
                balance leastconn
                server b1 127.0.0.1:\(b[0].port) weight 5 maxconn 30
                server b2 127.0.0.1:\(b[1].port)
                server b3 127.0.0.1:\(b[2].port) backup
            """)
        defer { h.terminate(); h.waitUntilExit() }
        let commands = [
            "get weight cccam/b1", "get weight cccam/#2", "get weight #99/b1", "get weight cccam/zz", "get weight zz/b1",
            "get weight cccam", "get weight cccam/", "get weight /b1", "get weight /", "disable server cccam/",
            "set severity-output loud", "set severity-output", "set server cccam/b1 weight 60%", "get weight cccam/b1", "set weight cccam/b1 300",
            "set server cccam/b1 weight -5%", "set server cccam/b1 weight abc", "set server cccam/b1 weight 3x",
            "set server cccam/b1 weight", "set server cccam/b2 state foo", "set server cccam/b2 state drain",
            "set server cccam/b2 agent up", "set maxconn server cccam/b1 x", "set maxconn server cccam/b1", "set maxconn server cccam/b1 5x",
            "set maxconn server cccam/b1 10", "disable server cccam/b3", "enable server cccam/zz",
            "shutdown sessions server cccam/zz", "shutdown sessions server cccam/b2", "add server cccam/b4 127.0.0.1:1 weight 3",
            "add server cccam/b4 127.0.0.1:1", "add server cccam/b5", "del server cccam/b1", "get weight cccam/b4",
            "del server cccam/b4", "get weight cccam/b4", "set server cccam/b2 state ready",
            "set weight cccam/b1 0000000005", "get weight cccam/b1", "set weight cccam/b1 6000%", "get weight cccam/b1",
            "set weight cccam/b1 +3", "get weight cccam/b1", "set weight cccam/b1 300x", "set weight cccam/b1 99999999999999%",
            "get weight cccam/b1", "set weight cccam/b1 1e3", "set weight cccam/b1 50.5%", "set server cccam/b1 weight 0",
            "get weight cccam/b1", "show stat zz -1 -1",
        ]
        func trimmed(_ s: String) -> String { String(s.reversed().drop { $0 == "\n" }.reversed()) }
        for c in commands {
            let theirs = trimmed(try AdminSocket.command(hsock, c))
            let ours = trimmed(try AdminSocket.command(f.adminPath, c))
            XCTAssertEqual(ours, theirs, c)
        }
        // The resulting server state, as `show servers state` columns both fill the same way:
        // srv_name, srv_op_state, srv_admin_state, srv_uweight, srv_iweight.
        func state(_ path: String) throws -> [[Substring]] {
            try AdminSocket.command(path, "show servers state cccam").split(separator: "\n")
                .filter { !$0.hasPrefix("#") && $0 != "1" }.map { r in let v = r.split(separator: " "); return [v[3], v[5], v[6], v[7], v[8]] }
        }
        XCTAssertEqual(try state(f.adminPath), try state(hsock))
        // And the status words of `show stat` for each server.
        func statuses(_ path: String) throws -> [String] {
            try AdminSocket.command(path, "show stat").split(separator: "\n").filter { $0.hasPrefix("cccam,") }
                .map { l in let v = l.split(separator: ",", omittingEmptySubsequences: false); return "\(v[1]):\(v[17]):\(v[18])" }
        }
        XCTAssertEqual(try statuses(f.adminPath), try statuses(hsock))
        // The rows `show stat`'s filters pick (the frontends are named apart, so backend rows only).
        func picked(_ path: String, _ args: String) throws -> [String] {
            try AdminSocket.command(path, "show stat " + args).split(separator: "\n").filter { $0.hasPrefix("cccam,") }
                .map { $0.split(separator: ",").prefix(2).joined(separator: ",") }
        }
        for args in ["cccam 4 -1", "-1 2 -1", "cccam -1 2", "-1 -1 -1 no-maint", "-1 4 -1 up", "cccam 4 3", "domain proxy cccam 6 -1 up"] {
            XCTAssertEqual(try picked(f.adminPath, args), try picked(hsock, args), "show stat \(args)")
        }
    }

    /// The probe's verdict under the operator's commands, side by side with HAProxy's checks:
    /// the status words of `show stat` and `show servers state`'s srv_op_state after each one.
    /// Both probe server i of n at i/n of the interval, so with a minute's interval b1 has
    /// passed its first probe and b2 has not: "UP" beside "UP 1/3" in both.
    func testHealthCommandsGiveHAProxysStates() throws {
        guard FileManager.default.isExecutableFile(atPath: Self.haproxyPath) else { throw XCTSkip("haproxy not installed") }
        let b = try ["b1", "b2"].map { try backend($0) }
        let f = try ferry("""
            upstream cccam {
                server 127.0.0.1:\(b[0].port) name=b1;
                server 127.0.0.1:\(b[1].port) name=b2;
                health_check interval=60s fails=3 passes=2 timeout=1s; }
            server { listen LISTEN; proxy_pass cccam; }
            """, main: "admin_socket @DIR@/admin.sock;")
        let (hsock, h) = try haproxy(in: f, name: "haproxy-checks", backend: """
                server b1 127.0.0.1:\(b[0].port) check inter 60s fall 3 rise 2
                server b2 127.0.0.1:\(b[1].port) check inter 60s fall 3 rise 2
            """)
        defer { h.terminate(); h.waitUntilExit() }
        Thread.sleep(forTimeInterval: 0.5)  // b1's first probe, at once in both
        func states(_ path: String) throws -> [String] {
            let stat = try AdminSocket.command(path, "show stat").split(separator: "\n").filter { $0.hasPrefix("cccam,b") }
                .map { l in let v = l.split(separator: ",", omittingEmptySubsequences: false); return "\(v[1]):\(v[17])" }
            let op = try AdminSocket.command(path, "show servers state cccam").split(separator: "\n")
                .filter { !$0.hasPrefix("#") && $0 != "1" }.map { r in let v = r.split(separator: " "); return "\(v[3]):op\(v[5])" }
            return stat + op
        }
        XCTAssertEqual(try states(f.adminPath), try states(hsock), "at start")
        let steps = [
            // Not `disable server` then `enable server`: HAProxy restarts the checks' count as at
            // start ("UP 1/3", even for a dead server), ferry keeps probing in maintenance and
            // keeps the verdict it has (README, health_check).
            "set server cccam/b1 health stopping", "set server cccam/b2 health down", "set server cccam/b2 health up",
            "set server cccam/b1 health stopping",
            "set server cccam/b1 state drain", "set server cccam/b1 state ready", "set server cccam/b1 health up",
            "disable health cccam/b2", "set server cccam/b2 health down", "enable health cccam/b2",
        ]
        for step in steps {
            XCTAssertEqual(try AdminSocket.command(f.adminPath, step), try AdminSocket.command(hsock, step), step)
            XCTAssertEqual(try states(f.adminPath), try states(hsock), "after \(step)")
        }
    }

    /// `clear counters` and `clear counters all` side by side with HAProxy, after the same
    /// sessions went through both: the FRONTEND, server and BACKEND lines' session counts,
    /// maxima and totals after each step. Not `rate_max` before the clear (the sessions may
    /// straddle a second, whose boundaries the two place apart) and not bytes (HAProxy counts
    /// an open session's bytes when it gets round to it).
    func testClearCountersAsHAProxy() throws {
        guard FileManager.default.isExecutableFile(atPath: Self.haproxyPath) else { throw XCTSkip("haproxy not installed") }
        let b = try ["b1", "b2"].map { try backend($0) }
        let f = try ferry("""
            upstream cccam { server 127.0.0.1:\(b[0].port) name=b1; server 127.0.0.1:\(b[1].port) name=b2; }
            server { listen LISTEN; proxy_pass cccam; }
            """, main: "admin_socket @DIR@/admin.sock;")
        let hport = try Net.freePort()
        let (hsock, h) = try haproxy(in: f, name: "haproxy-counters", backend: """
                server b1 127.0.0.1:\(b[0].port)
                server b2 127.0.0.1:\(b[1].port)
            """, frontendPort: hport)
        defer { h.terminate(); h.waitUntilExit() }
        XCTAssertTrue(waitUntil(timeout: 5) { (try? TestClient.connect(hport)) != nil }, "HAProxy does not listen")
        Thread.sleep(forTimeInterval: 0.2)
        // The probe connection above is one accepted connection of HAProxy's: ferry gets one too.
        _ = try TestClient.connect(f.listenPort)
        func rows(_ path: String, _ fields: [String]) throws -> [String] {
            let lines = try AdminSocket.command(path, "show stat").split(separator: "\n")
            let header = lines[0].dropFirst(2).split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            return lines.dropFirst().filter { $0.contains(",FRONTEND,") || $0.hasPrefix("cccam,") }.map { l in
                let v = l.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
                return ([v[1]] + fields.map { "\($0)=\(v[header.firstIndex(of: $0)!])" }).joined(separator: " ")
            }
        }
        let counts = ["scur", "smax", "stot", "lbtot", "conn_tot", "econ"]
        func same(_ what: String, _ fields: [String]) throws {
            // Both may still be closing what the clients closed: wait for the same answer.
            var ours: [String] = [], theirs: [String] = []
            _ = waitUntil(timeout: 3) {
                ours = (try? rows(f.adminPath, fields)) ?? []
                theirs = (try? rows(hsock, fields)) ?? []
                return ours == theirs
            }
            XCTAssertEqual(ours, theirs, what)
        }
        func sessions(_ n: Int, _ port: UInt16) throws -> [TestClient] {
            try (0..<n).map { _ in
                let c = try TestClient.connect(port)
                _ = try c.receive(exactly: 16)  // the banner: the session reached a server
                return c
            }
        }
        var ours = try sessions(4, f.listenPort), theirs = try sessions(4, hport)
        for c in ours.prefix(2) + theirs.prefix(2) { c.close() }
        try same("four sessions, two closed", counts)
        for step in ["clear counters", "clear counters all"] {
            XCTAssertEqual(try AdminSocket.command(f.adminPath, step), try AdminSocket.command(hsock, step), step)
            try same("after \(step)", counts + ["rate_max", "conn_rate_max"])
        }
        ours += try sessions(1, f.listenPort)
        theirs += try sessions(1, hport)
        try same("one more session", counts + ["rate_max", "conn_rate_max"])
        withExtendedLifetime((ours, theirs)) {}
    }
}
