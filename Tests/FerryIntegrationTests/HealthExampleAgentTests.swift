import XCTest
import Glibc

/// examples/agent/ferry-agent.sh as an operator runs it (socat EXEC), with `ss` and the load
/// average replaced by files the test controls, and ferry reading its answers.
final class HealthExampleAgentTests: IntegrationCase {
    static let socat = ["/usr/bin/socat", "/usr/local/bin/socat"].first { FileManager.default.isExecutableFile(atPath: $0) }
    static var script: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("examples/agent/ferry-agent.sh").path
    }

    /// A temp dir with a fake `ss` (listening lines from $dir/listen, sessions from $dir/conns)
    /// and a load average file.
    private func fakeSystem() throws -> String {
        let dir = try makeTemporaryDirectory("ferry-agent")
        addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
        try """
            #!/bin/sh
            d=\(dir)
            n=0
            case "$1" in -Hltn) n=$(cat $d/listen) ;; *) n=$(cat $d/conns) ;; esac
            i=0; while [ $i -lt $n ]; do echo "line $i"; i=$((i+1)); done

            """.write(toFile: dir + "/ss", atomically: true, encoding: .utf8)
        chmod(dir + "/ss", 0o755)
        try "1\n".write(toFile: dir + "/listen", atomically: true, encoding: .utf8)
        try "0\n".write(toFile: dir + "/conns", atomically: true, encoding: .utf8)
        try "0.00 0.00 0.00 1/100 1\n".write(toFile: dir + "/loadavg", atomically: true, encoding: .utf8)
        return dir
    }

    private func environment(_ dir: String) -> [String: String] {
        ["SS": dir + "/ss", "LOADAVG": dir + "/loadavg", "MAINT_FILE": dir + "/maint",
         "CONN_LOW": "100", "CONN_HIGH": "200", "LOAD_LOW": "1000", "LOAD_HIGH": "2000"]
    }

    /// The script's answers, run directly.
    func testAnswers() throws {
        let dir = try fakeSystem()
        func answer() throws -> String {
            // Under timeout(1), which ends the script and whatever it started (its process
            // group): Foundation's Process only sees an exit once every descendant has let go
            // of the descriptor it watches, so a hung `ss` would outlive a plain terminate().
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/timeout")
            p.arguments = ["-k", "2", "10", "/bin/sh", Self.script]
            p.environment = ProcessInfo.processInfo.environment.merging(environment(dir)) { $1 }
            let out = Pipe()
            p.standardOutput = out
            try p.run()
            // Bounded: an agent that never answers is a failure, not a test that waits for ever.
            guard waitUntil(timeout: 20, { !p.isRunning }) else { throw SocketError("timeout(1) did not end \(Self.script)", 0) }
            p.waitUntilExit()
            guard p.terminationStatus != 124, p.terminationStatus != 137 else { throw SocketError("\(Self.script) did not answer in 10 s", 0) }
            let line = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            return String(line.prefix { $0 != "#" })
        }
        let table: [(conns: Int, listen: Int, maint: Bool, expected: String)] = [
            (0, 1, false, "up ready 100% "),
            (100, 1, false, "up ready 100% "),
            (150, 1, false, "up ready 55% "),
            (199, 1, false, "up ready 10% "),
            (200, 1, false, "up drain "),
            (0, 0, false, "down "),
            (0, 1, true, "maint "),
        ]
        for row in table {
            try "\(row.conns)\n".write(toFile: dir + "/conns", atomically: true, encoding: .utf8)
            try "\(row.listen)\n".write(toFile: dir + "/listen", atomically: true, encoding: .utf8)
            if row.maint { try "disk\n".write(toFile: dir + "/maint", atomically: true, encoding: .utf8) } else { try? FileManager.default.removeItem(atPath: dir + "/maint") }
            let got = try answer()
            XCTAssertEqual(got, row.expected, "\(row)")
            XCTAssertTrue(AgentReplyCheck.knownWordsOnly(got), got)
        }
    }

    /// Behind socat, ferry follows the script: drain at the session threshold, ready below it.
    func testThroughSocatAndFerry() throws {
        guard let socat = Self.socat else { throw XCTSkip("socat is not installed") }
        let dir = try fakeSystem()
        let a = try backend("a"), b = try backend("b")
        let agentPort = try Net.freePort()
        let p = Process()
        p.executableURL = URL(fileURLWithPath: socat)
        p.arguments = ["TCP-LISTEN:\(agentPort),bind=127.0.0.1,reuseaddr,fork", "EXEC:/bin/sh \(Self.script)"]
        p.environment = ProcessInfo.processInfo.environment.merging(environment(dir)) { $1 }
        p.standardError = FileHandle.nullDevice
        try p.run()
        addTeardownBlock { p.terminate(); p.waitUntilExit() }
        XCTAssertTrue(waitUntil(timeout: 5) { FerryInstance.isListening(agentPort) }, "socat did not listen")
        let f = try ferry("""
            upstream u {
                server 127.0.0.1:\(a.port) name=a weight=100 agent_port=\(agentPort);
                server 127.0.0.1:\(b.port) name=b weight=100;
                agent_check port=\(agentPort) interval=300ms timeout=2s;
            }
            server { listen LISTEN; proxy_pass u; }
            """)
        try "250\n".write(toFile: dir + "/conns", atomically: true, encoding: .utf8)
        XCTAssertNotNil(f.waitForState("a", field: "admin", new: "drain", timeout: 15), f.stderr)
        try "150\n".write(toFile: dir + "/conns", atomically: true, encoding: .utf8)
        XCTAssertNotNil(f.waitForState("a", field: "admin", new: "ready", timeout: 15), f.stderr)
        XCTAssertNotNil(f.waitForState("a", field: "weight", new: "55", timeout: 15), f.stderr)
        XCTAssertEqual(f.eventLines("agent_reply_ignored").count, 0, f.stderr)
    }
}

/// Whether every word before `#` is one an agent may send (no unknown words).
enum AgentReplyCheck {
    static func knownWordsOnly(_ line: String) -> Bool {
        let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "," })
        return words.allSatisfy { w in
            ["up", "down", "stopped", "fail", "ready", "drain", "maint"].contains(w.lowercased())
                || (w.hasSuffix("%") && Int(w.dropLast()) != nil) || w.lowercased().hasPrefix("maxconn:")
        }
    }
}
