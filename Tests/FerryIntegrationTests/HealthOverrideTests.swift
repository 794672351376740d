import XCTest
import Glibc

/// `set server U/S health up|down` over the admin socket forces the probe's verdict, and the
/// probes go on judging from there, as in HAProxy (which sets the check's health counter to
/// fully up or to zero): a healthy server forced down comes back after `passes` good probes,
/// a dead one forced up goes down again after `fails` bad ones. Neither may stick.
final class HealthOverrideTests: IntegrationCase {
    func testForcedHealthIsJudgedAgainByTheNextProbes() throws {
        let a = try backend("a")
        let deadPort = try Net.freePort()
        let f = try ferry("""
            upstream u {
                server 127.0.0.1:\(a.port) name=a;
                server 127.0.0.1:\(deadPort) name=b;
                health_check interval=200ms fails=2 passes=2 timeout=1s;
            }
            server { listen LISTEN; proxy_pass u; proxy_connect_timeout 1s; proxy_timeout 30s; }
            """, main: "admin_socket @DIR@/admin.sock;")
        XCTAssertNotNil(f.waitForState("b", field: "health", new: "down", timeout: 5), f.stderr)

        // a answers every probe; forced down, the probes bring it back.
        XCTAssertEqual(try AdminSocket.command(f.adminPath, "set server u/a health down"), "\n")
        let back = f.waitForState("a", field: "health", new: "up", timeout: 5)
        XCTAssertNotNil(back, "a passes every probe but stays down after 'health down':\n\(f.stderr)")
        XCTAssertEqual(back?["cause"] as? String, "health_check")
        XCTAssertEqual(try bannerThrough(f.listenPort), "a")

        // b refuses every probe; forced up, the probes take it down again.
        let bDown = f.stateChanges("b").count
        XCTAssertEqual(try AdminSocket.command(f.adminPath, "set server u/b health up"), "\n")
        let again = f.waitForState("b", field: "health", new: "down", after: bDown, timeout: 5)
        XCTAssertNotNil(again, "b fails every probe but stays up after 'health up':\n\(f.stderr)")
        XCTAssertEqual(again?["checks"] as? Int, 2)
    }

    /// `health up` on a server that is up with failures counted against it resets the count, as
    /// HAProxy sets the check's health to fully up: `fails` more failures before down, not the
    /// one left. A server starts up one failure away from down, so the count shows at once.
    func testHealthUpOnAnUpServerClearsTheFailuresCounted() throws {
        let a = try backend("a")
        let deadPort = try Net.freePort()
        // b's first probe comes half an interval after the start: long after these commands.
        let f = try ferry("""
            upstream u {
                server 127.0.0.1:\(a.port) name=a;
                server 127.0.0.1:\(deadPort) name=b;
                health_check interval=60s fails=3 passes=2 timeout=1s;
            }
            server { listen LISTEN; proxy_pass u; proxy_connect_timeout 1s; proxy_timeout 30s; }
            """, main: "admin_socket @DIR@/admin.sock;")
        func status() throws -> String? {
            let row = try AdminSocket.command(f.adminPath, "show stat").split(separator: "\n").first { $0.hasPrefix("u,b,") }
            return row.map { String($0.split(separator: ",", omittingEmptySubsequences: false)[17]) }
        }
        XCTAssertEqual(try status(), "UP 1/3", "before any probe b is up, one failure away from down")
        XCTAssertEqual(try AdminSocket.command(f.adminPath, "set server u/b health up"), "\n")
        XCTAssertEqual(try status(), "UP", "health up makes b fully up: three failures from down")
        XCTAssertTrue(f.stateChanges("b").isEmpty, "no probe has judged b yet:\n\(f.stderr)")
    }

    /// `health stopping` is HAProxy's NOLB: the server keeps its sessions (it is not marked
    /// down, so `shutdown_sessions` leaves them alone), takes no new ones, and shows NOLB.
    func testHealthStoppingKeepsSessionsAndTakesNoNewOnes() throws {
        let a = try backend("a"), b = try backend("b")
        // a is second, so its first probe comes half an interval after the start, after the test.
        let f = try ferry("""
            upstream u {
                server 127.0.0.1:\(b.port) name=b;
                server 127.0.0.1:\(a.port) name=a;
                health_check interval=60s fails=2 passes=2 timeout=1s;
                on_marked_down shutdown_sessions;
            }
            server { listen LISTEN; proxy_pass u; proxy_connect_timeout 1s; proxy_timeout 30s; }
            """, main: "admin_socket @DIR@/admin.sock;")
        var onA: TestClient? = nil
        var others: [TestClient] = []
        for _ in 0..<6 where onA == nil {
            let c = try TestClient.connect(f.listenPort)
            if try c.banner() == "a" { onA = c } else { others.append(c) }
        }
        others.forEach { $0.close() }
        guard let held = onA else { return XCTFail("no session reached a") }
        defer { held.close() }
        XCTAssertEqual(try AdminSocket.command(f.adminPath, "set server u/a health stopping"), "\n")
        let stat = try AdminSocket.command(f.adminPath, "show stat -1 4 -1")
        XCTAssertTrue(stat.contains("\nu,a,") && stat.split(separator: "\n").first { $0.hasPrefix("u,a,") }!.contains(",NOLB,"), stat)
        let state = try AdminSocket.command(f.adminPath, "show servers state u").split(separator: "\n").first { $0.contains(" a 127.0.0.1 ") }
        XCTAssertEqual(state?.split(separator: " ")[5], "3", "srv_op_state 3: stopping")
        XCTAssertNoThrow(try held.send("ping"))
        XCTAssertEqual(try? held.receive(exactly: 4), Array("ping".utf8), "the session on a stays")
        for _ in 0..<4 { XCTAssertEqual(try bannerThrough(f.listenPort), "b", "a stopping takes no new sessions") }
        XCTAssertEqual(try AdminSocket.command(f.adminPath, "set server u/a health up"), "\n")
        var seen: Set<String> = []
        for _ in 0..<4 { seen.insert(try bannerThrough(f.listenPort)) }
        XCTAssertEqual(seen, ["a", "b"], "health up puts a back in rotation")
        // Maintenance ends stopping, as in HAProxy: enabled again, a takes sessions at once,
        // not only after its next probe (here half a minute away).
        XCTAssertEqual(try AdminSocket.command(f.adminPath, "set server u/a health stopping; disable server u/a; enable server u/a"), "\n\n\n")
        seen = []
        for _ in 0..<4 { seen.insert(try bannerThrough(f.listenPort)) }
        XCTAssertEqual(seen, ["a", "b"], "stopping ended with the maintenance")
        // And stopping on a server in maintenance does nothing.
        XCTAssertEqual(try AdminSocket.command(f.adminPath, "disable server u/a; set server u/a health stopping; enable server u/a"), "\n\n\n")
        XCTAssertFalse(try AdminSocket.command(f.adminPath, "show stat -1 4 -1").contains(",NOLB"))
    }

    /// A stopping server's probe counts toward down as an up one's does, and show stat says so
    /// ("NOLB 2/3", HAProxy's words); `fails` failures take it down.
    func testStoppingShowsTheFailuresCounted() throws {
        let a = try backend("a")
        let deadPort = try Net.freePort()
        let f = try ferry("""
            upstream u {
                server 127.0.0.1:\(a.port) name=a;
                server 127.0.0.1:\(deadPort) name=b;
                health_check interval=300ms fails=3 passes=1 timeout=1s;
            }
            server { listen LISTEN; proxy_pass u; proxy_connect_timeout 1s; proxy_timeout 30s; }
            """, main: "admin_socket @DIR@/admin.sock;")
        XCTAssertNotNil(f.waitForState("b", field: "health", new: "down", timeout: 5), f.stderr)
        let downs = f.stateChanges("b").count
        XCTAssertEqual(try AdminSocket.command(f.adminPath, "set server u/b health stopping"), "\n")
        var statuses: Set<String> = []
        _ = waitUntil(timeout: 5) {
            let row = (try? AdminSocket.command(f.adminPath, "show stat -1 4 -1"))?.split(separator: "\n").first { $0.hasPrefix("u,b,") }
            if let status = row?.split(separator: ",", omittingEmptySubsequences: false)[17] { statuses.insert(String(status)) }
            return statuses.contains("DOWN")
        }
        XCTAssertTrue(statuses.contains("NOLB 2/3") || statuses.contains("NOLB 1/3"), "seen: \(statuses)")
        XCTAssertNotNil(f.waitForState("b", field: "health", new: "down", after: downs, timeout: 5), f.stderr)
    }

    /// As in HAProxy, a server set to `stopping` is fully up again at its next passing probe.
    func testHealthStoppingEndsAtTheNextPassingProbe() throws {
        let a = try backend("a"), b = try backend("b")
        let f = try ferry("""
            upstream u {
                server 127.0.0.1:\(a.port) name=a;
                server 127.0.0.1:\(b.port) name=b;
                health_check interval=300ms fails=2 passes=2 timeout=1s;
            }
            server { listen LISTEN; proxy_pass u; proxy_connect_timeout 1s; proxy_timeout 30s; }
            """, main: "admin_socket @DIR@/admin.sock;")
        XCTAssertEqual(try AdminSocket.command(f.adminPath, "set server u/a health stopping"), "\n")
        let back = f.waitForState("a", field: "health", new: "up", timeout: 5)
        XCTAssertNotNil(back, "a passes its probes but stays stopping:\n\(f.stderr)")
        XCTAssertEqual(back?["old"] as? String, "stopping")
        XCTAssertEqual(back?["cause"] as? String, "health_check")
        XCTAssertEqual(back?["checks"] as? Int, 1)
        XCTAssertEqual(back?["status"] as? String, "up")
    }

    /// `disable health` stops the probe and freezes its verdict (HAProxy's): a server that dies
    /// meanwhile stays up; `enable health` resumes the probes, which then take it down.
    func testDisableHealthFreezesTheVerdictUntilEnabled() throws {
        let a = try backend("a"), b = try backend("b")
        let f = try ferry("""
            upstream u {
                server 127.0.0.1:\(a.port) name=a;
                server 127.0.0.1:\(b.port) name=b;
                health_check interval=200ms fails=1 passes=1 timeout=1s;
            }
            server { listen LISTEN; proxy_pass u; proxy_connect_timeout 1s; proxy_timeout 30s; }
            """, main: "admin_socket @DIR@/admin.sock;")
        XCTAssertEqual(try AdminSocket.command(f.adminPath, "disable health u/a"), "\n")
        a.stop()
        Thread.sleep(forTimeInterval: 1.0)  // five intervals: enabled, one would have taken a down
        XCTAssertTrue(f.stateChanges("a").isEmpty, "a's probe is disabled:\n\(f.stderr)")
        let row = try AdminSocket.command(f.adminPath, "show stat -1 4 -1").split(separator: "\n").first { $0.hasPrefix("u,a,") }
        XCTAssertEqual(row?.split(separator: ",", omittingEmptySubsequences: false)[17], "no check", "up with its probe disabled, as HAProxy says: \(row ?? "no row for a")")
        XCTAssertEqual(try AdminSocket.command(f.adminPath, "enable health u/a"), "\n")
        XCTAssertNotNil(f.waitForState("a", field: "health", new: "down", timeout: 5), "enabled again, the probe sees a dead:\n\(f.stderr)")
        let errors: [(String, String)] = [
            ("disable health u/zz", "No such server.\n\n"),
            ("disable agent u/b", "agent checks are not enabled on this server.\n\n"),
            ("enable agent u/b", "agent checks are not enabled on this server.\n\n"),
        ]
        for (command, expected) in errors { XCTAssertEqual(try AdminSocket.command(f.adminPath, command), expected, command) }
    }

    /// `disable agent` stops asking the agent, and its `down` no longer holds the server down,
    /// as in HAProxy; `enable agent` asks again and the agent's answer applies again.
    func testDisableAgentLiftsItsDownUntilEnabled() throws {
        let ag = try agent("down")
        let a = try backend("a"), b = try backend("b")
        let f = try ferry("""
            upstream u {
                server 127.0.0.1:\(a.port) name=a agent_port=\(ag.port);
                server 127.0.0.1:\(b.port) name=b;
                agent_check port=1 interval=200ms timeout=1s;  # b: no agent there, so it keeps its state
            }
            server { listen LISTEN; proxy_pass u; proxy_connect_timeout 1s; proxy_timeout 30s; }
            """, main: "admin_socket @DIR@/admin.sock;")
        XCTAssertNotNil(f.waitForState("a", field: "health", new: "down", timeout: 5), f.stderr)
        XCTAssertEqual(try AdminSocket.command(f.adminPath, "disable agent u/a"), "\n")
        let asked = ag.servedTotal
        Thread.sleep(forTimeInterval: 1.0)
        XCTAssertLessThanOrEqual(ag.servedTotal, asked + 1, "at most the check in flight: the agent is not asked any more")
        var seen: Set<String> = []
        for _ in 0..<4 { seen.insert(try bannerThrough(f.listenPort)) }
        XCTAssertEqual(seen, ["a", "b"], "the disabled agent's down no longer holds a down")
        let downs = f.stateChanges("a").count
        XCTAssertEqual(try AdminSocket.command(f.adminPath, "enable agent u/a"), "\n")
        XCTAssertNotNil(f.waitForState("a", field: "health", new: "down", after: downs, timeout: 5), "asked again, the agent's down applies:\n\(f.stderr)")
    }

    /// `on_marked_down shutdown_sessions` applies however the server is marked down: HAProxy
    /// shuts the sessions down when `set server ... health down` or `agent down` does it too.
    func testForcedDownShutsSessionsWhenTheUpstreamAsks() throws {
        let a = try backend("a"), b = try backend("b")
        let f = try ferry("""
            upstream u {
                server 127.0.0.1:\(a.port) name=a agent_port=1;
                server 127.0.0.1:\(b.port) name=b;
                health_check interval=5s timeout=1s;
                on_marked_down shutdown_sessions;
            }
            server { listen LISTEN; proxy_pass u; proxy_connect_timeout 1s; proxy_timeout 30s; }
            """, main: "admin_socket @DIR@/admin.sock;")
        for how in ["health", "agent"] {
            var onA: TestClient? = nil
            var others: [TestClient] = []
            for _ in 0..<6 where onA == nil {
                let c = try TestClient.connect(f.listenPort)
                if try c.banner() == "a" { onA = c } else { others.append(c) }
            }
            guard let held = onA else { return XCTFail("no session reached a") }
            defer { held.close(); others.forEach { $0.close() } }
            XCTAssertEqual(try AdminSocket.command(f.adminPath, "set server u/a \(how) down"), "\n")
            let ending = held.waitForEnd()
            XCTAssertTrue(ending == .eof || ending == .reset, "\(how) down: the session on a should be closed, got \(ending)")
            for c in others {
                XCTAssertNoThrow(try c.send("ping"))
                XCTAssertEqual(try? c.receive(exactly: 4), Array("ping".utf8), "sessions on b stay")
            }
            XCTAssertEqual(try AdminSocket.command(f.adminPath, "set server u/a \(how) up"), "\n")
        }
    }
}
