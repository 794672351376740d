import XCTest
import Glibc

/// The daily operations under load: drain a server, reload the configuration.
final class DrainReloadTests: IntegrationCase {
    let main = "admin_socket @DIR@/admin.sock; pid @DIR@/ferry.pid;"

    /// Clients that hold sessions and send a request every few milliseconds, checking each
    /// echo, plus a stream of short new sessions. Counts every failure a user would see.
    final class Load: @unchecked Sendable {
        let port: UInt16
        let errors = Box<[String]>([])
        let newSessions = Box<[String]>([])
        /// Server name -> sessions ended by ferry on purpose (admin shutdown) and reconnected.
        let moved = Box<[String: Int]>([:])
        let roundTrips = Box(0)
        /// Holder number -> the server its current session is on.
        let holding = Box<[Int: String]>([:])
        private let stopFlag = Box(false)
        private var threads: [TestThread] = []
        /// Servers whose sessions may be closed by ferry (a paced shutdown is running on them).
        let closable = Box<Set<String>>([])

        init(port: UInt16, holders: Int, newSessionGap: Double) {
            self.port = port
            for h in 0..<holders {
                threads.append(TestThread { [self] in hold(h) })
            }
            threads.append(TestThread { [self] in churn(gap: newSessionGap) })
        }

        private func hold(_ h: Int) {
            let deadline = Date().addingTimeInterval(120)
            var i = 0
            while !stopFlag.value && Date() < deadline {
                guard let c = try? TestClient.connect(port, from: "127.0.4.\(h + 1)", timeout: 5), let name = try? c.banner() else {
                    errors.update { $0.append("holder \(h): connect or banner failed") }
                    return
                }
                holding.update { $0[h] = name }
                while !stopFlag.value && Date() < deadline {
                    let msg = Array("req \(h) \(i) ".utf8) + [UInt8](repeating: 0x42, count: 200)
                    i += 1
                    do {
                        try c.send(msg)
                        let back = try c.receive(exactly: msg.count)
                        if back != msg { errors.update { $0.append("holder \(h) on \(name): echo mismatch") } }
                        roundTrips.update { $0 += 1 }
                    } catch {
                        if closable.value.contains(name) {
                            moved.update { $0[name, default: 0] += 1 }
                            break   // reconnect
                        }
                        errors.update { $0.append("holder \(h) on \(name): \(error)") }
                        return
                    }
                    usleep(10_000)
                }
                c.close()
            }
        }

        private func churn(gap: Double) {
            let deadline = Date().addingTimeInterval(120)
            while !stopFlag.value && Date() < deadline {
                do {
                    let c = try TestClient.connect(port, timeout: 5)
                    let name = try c.banner()
                    c.close()
                    newSessions.update { $0.append(name) }
                } catch {
                    errors.update { $0.append("new session: \(error)") }
                }
                usleep(useconds_t(gap * 1e6))
            }
        }

        func stop() {
            stopFlag.value = true
            for t in threads { _ = t.join(timeout: 10) }
        }
    }

    /// Drain: weight 0 takes b1 out of new-session selection at once with zero client errors
    /// and its sessions intact; a paced shutdown then moves them to the others.
    func testDrainUnderLoad() throws {
        let b = try ["b1", "b2", "b3"].map { try backend($0) }
        let f = try ferry("""
            upstream u { least_conn; \(b.map { "server 127.0.0.1:\($0.port) name=\($0.name);" }.joined(separator: " ")) }
            server { listen LISTEN; proxy_pass u; proxy_timeout 30s; }
            """, main: main)
        let load = Load(port: f.listenPort, holders: 12, newSessionGap: 0.02)
        defer { load.stop() }
        XCTAssertTrue(waitUntil(timeout: 10) { load.roundTrips.value > 100 && load.newSessions.value.count > 10 })
        // Counted from the holders' side: b1's own count can include a short session passing through.
        XCTAssertTrue(waitUntil(timeout: 10) { load.holding.value.count == 12 }, "not every holder connected")
        let b1Held = load.holding.value.values.filter { $0 == "b1" }.count
        XCTAssertGreaterThan(b1Held, 0, "least_conn put some holders on b1")
        XCTAssertEqual(try AdminSocket.command(f.adminPath, "set server u/b1 weight 0"), "\n")
        // The short session under way when the command was answered may still be on b1; the
        // churn thread is sequential, so every session after it started once b1 was drained.
        let atDrain = load.newSessions.value.count
        XCTAssertTrue(waitUntil(timeout: 10) { load.newSessions.value.count > atDrain + 1 })
        let acceptedAtDrain = b[0].accepted
        let newBefore = atDrain + 1
        let tripsAtDrain = load.roundTrips.value
        XCTAssertTrue(waitUntil(timeout: 10) { load.newSessions.value.count > newBefore + 30 && load.roundTrips.value > tripsAtDrain + 300 })
        XCTAssertEqual(b[0].accepted, acceptedAtDrain, "no new session on the drained server")
        XCTAssertFalse(load.newSessions.value[newBefore...].contains("b1"))
        XCTAssertEqual(b[0].open, b1Held, "its sessions stay")
        XCTAssertEqual(load.errors.value, [])
        // The paced shutdown moves b1's holders elsewhere, a few per second.
        load.closable.update { $0.insert("b1") }
        XCTAssertEqual(try AdminSocket.command(f.adminPath, "shutdown sessions server u/b1 rate 20/s"), "\n")
        XCTAssertTrue(waitUntil(timeout: 10) { b[0].open == 0 }, "b1 still holds \(b[0].open)")
        // Wait on the holders themselves: a holder notices its closed session only at its next
        // round trip, and b2 + b3 can reach 12 early with a short churn session among them.
        XCTAssertTrue(waitUntil(timeout: 10) { !load.holding.value.values.contains("b1") },
                      "holders not reconnected elsewhere: \(load.holding.value.filter { $0.value == "b1" }.keys.sorted())")
        XCTAssertTrue(waitUntil(timeout: 10) { b[1].open + b[2].open >= 12 })
        load.stop()
        XCTAssertEqual(load.errors.value, [])
        XCTAssertEqual(load.moved.value["b1"], b1Held, "every b1 holder was moved once")
        XCTAssertEqual(b[0].accepted, acceptedAtDrain)
    }

    /// 100 reloads under continuous load lose no session and no connection; session counts
    /// survive; listen sockets that remain are kept, new ones open, removed ones close while
    /// their sessions continue.
    func testHundredReloadsUnderLoad() throws {
        let b = try ["b1", "b2", "b3"].map { try backend($0) }
        let extraPort = try Net.freePort()
        func config(_ round: Int) -> String {
            // Odd rounds: b3 leaves, b2's weight changes and a second listen socket opens.
            let odd = round % 2 == 1
            return """
                upstream u { least_conn; server 127.0.0.1:\(b[0].port) name=b1; server 127.0.0.1:\(b[1].port) name=b2 weight=\(odd ? 2 : 1);
                             \(odd ? "" : "server 127.0.0.1:\(b[2].port) name=b3;") }
                server { listen LISTEN; \(odd ? "listen 127.0.0.1:\(extraPort);" : "") proxy_pass u; proxy_timeout 30s; }
                """
        }
        let f = try ferry(config(0), main: main)
        let load = Load(port: f.listenPort, holders: 9, newSessionGap: 0.005)
        defer { load.stop() }
        XCTAssertTrue(waitUntil(timeout: 10) { load.roundTrips.value > 50 })
        // A session through the extra listen socket, opened by a reload, survives its removal.
        try f.rewriteConfig(stream: config(1), main: main)
        f.signal(SIGHUP)
        XCTAssertTrue(waitUntil(timeout: 5) { f.events("reload") == 1 && FerryInstance.isListening(extraPort) }, f.stderr)
        let extra = try TestClient.connect(extraPort, timeout: 5)
        XCTAssertNotEqual(try extra.banner(), "")
        for round in 2...100 {
            try f.rewriteConfig(stream: config(round), main: main)
            f.signal(SIGHUP)
            XCTAssertTrue(waitUntil(timeout: 5) { f.events("reload") == round }, "reload \(round): \(f.stderr.suffix(500))")
        }
        XCTAssertFalse(FerryInstance.isListening(extraPort), "round 100 is even: the extra listen socket is closed")
        let msg = Array("still here".utf8)
        try extra.send(msg)
        XCTAssertEqual(try extra.receive(exactly: msg.count), msg, "its session continues")
        extra.close()
        let trips = load.roundTrips.value
        XCTAssertTrue(waitUntil(timeout: 10) { load.roundTrips.value > trips + 100 })
        // Per-server session counts survived 100 rebuilds: with the holders' sessions, opened
        // before the first reload, still open, ferry counts on each server what that backend
        // holds (give or take the one short session the churn thread may have under way).
        // Compared at zero only, after the load stopped, a count the reloads had left behind
        // on a retired upstream looked right too.
        func serverCounts() -> [Int] {
            let stat = (try? AdminSocket.command(f.adminPath, "show stat")) ?? ""
            return ["b1", "b2", "b3"].map { name in
                stat.split(separator: "\n").first { $0.hasPrefix("u,\(name),") }
                    .flatMap { Int($0.split(separator: ",", omittingEmptySubsequences: false)[4]) } ?? -1
            }
        }
        var seen: (ferry: [Int], backends: [Int]) = ([], [])
        XCTAssertTrue(waitUntil(timeout: 5) {
            seen = (serverCounts(), b.map(\.open))
            return seen.backends.reduce(0, +) >= 9 && zip(seen.ferry, seen.backends).allSatisfy { abs($0 - $1) <= 1 }
        }, "ferry counts \(seen.ferry) sessions on b1, b2, b3; the backends hold \(seen.backends)")
        load.stop()
        XCTAssertEqual(load.errors.value, [], "no session or connection lost")
        XCTAssertEqual(f.events("reload_failed"), 0)
        XCTAssertGreaterThan(load.newSessions.value.count, 100)
        // Per-server session counts survived 100 rebuilds: ferry's count equals the backends'.
        XCTAssertTrue(waitUntil(timeout: 5) {
            let stat = (try? AdminSocket.command(f.adminPath, "show stat")) ?? ""
            return stat.contains("u,BACKEND,0,0,0,") && b.allSatisfy { $0.open == 0 }
        }, (try? AdminSocket.command(f.adminPath, "show stat")) ?? "")
    }

    /// A reload that leaves an upstream as it was lets round robin go on where it was (weights
    /// 3:1 cycle a a b a): two sessions, a reload, and the next four are b a a a, not the
    /// a a b a of a rotation started over. An edit to the upstream starts it over.
    func testAnUnchangedUpstreamKeepsItsRotationAcrossAReload() throws {
        let a = try backend("a"), b = try backend("b")
        let main = "admin_socket @DIR@/admin.sock;"
        func stream(_ weightB: Int) -> String {
            """
            upstream u { server 127.0.0.1:\(a.port) weight=3; server 127.0.0.1:\(b.port) weight=\(weightB); }
            server { listen LISTEN; proxy_pass u; }
            """
        }
        let f = try ferry(stream(1), main: main)
        func next(_ n: Int) throws -> String { try (0..<n).map { _ in try bannerThrough(f.listenPort) }.joined() }
        XCTAssertEqual(try next(2), "aa")
        try f.reloadOverAdmin(stream: stream(1), main: main)
        XCTAssertEqual(try next(4), "baaa", "the rotation restarted at an unchanged reload")
        try f.reloadOverAdmin(stream: stream(2), main: main)
        // 3:2 from the start: a b a b a.
        XCTAssertEqual(try next(5), "abab" + "a", "an edited upstream should start its rotation afresh")
    }

    /// An invalid configuration on reload is reported with its location and the old one keeps
    /// serving; `ferry -s reload` finds the process through the pid file.
    func testInvalidReloadKeepsTheOldConfiguration() throws {
        let b1 = try backend("b1")
        let b2 = try backend("b2")
        let good = "upstream u { server 127.0.0.1:\(b1.port) name=b1; }\nserver { listen LISTEN; proxy_pass u; }"
        let f = try ferry(good, main: main)
        let held = try TestClient.connect(f.listenPort, timeout: 5)
        XCTAssertEqual(try held.banner(), "b1")
        try f.rewriteConfig(stream: "upstream u { server 127.0.0.1:\(b2.port) name=b2 wieght=2; }\nserver { listen LISTEN; proxy_pass u; }", main: main)
        f.signal(SIGHUP)
        XCTAssertTrue(waitUntil(timeout: 5) { f.events("reload_failed") == 1 }, f.stderr)
        XCTAssertTrue(f.stderr.contains("invalid parameter \\\"wieght=2\\\" in \(f.configPath):3:"), f.stderr)
        XCTAssertEqual(try bannerThrough(f.listenPort), "b1", "the old configuration serves")
        // The same through `ferry -s reload` once the file is fixed.
        try f.rewriteConfig(stream: "upstream u { server 127.0.0.1:\(b2.port) name=b2; }\nserver { listen LISTEN; proxy_pass u; }", main: main)
        // Bounded: a `ferry -s` that hangs is a failure, not a test that waits for ever.
        let signalled = try FerryProcess.runToCompletion(["-c", f.configPath, "-s", "reload"], timeout: 10)
        XCTAssertEqual(signalled.status, 0, signalled.stderr)
        XCTAssertTrue(waitUntil(timeout: 5) { f.events("reload") == 1 }, f.stderr)
        XCTAssertEqual(try bannerThrough(f.listenPort), "b2")
        // The session on the removed server continues.
        let msg = Array("hello".utf8)
        try held.send(msg)
        XCTAssertEqual(try held.receive(exactly: msg.count), msg)
        // And the admin socket's `reload` answers with the outcome.
        try f.rewriteConfig(stream: "upstream u { server 127.0.0.1:\(b2.port) name=b2 }", main: main)
        let answer = try AdminSocket.command(f.adminPath, "reload")
        XCTAssertTrue(answer.hasPrefix("Reload failed, the previous configuration keeps running: "), answer)
        XCTAssertEqual(try bannerThrough(f.listenPort), "b2")
    }

    /// Runtime changes made over the admin socket survive a reload for servers that remain.
    func testAdminChangesSurviveReload() throws {
        let b1 = try backend("b1")
        let b2 = try backend("b2")
        let stream = "upstream u { server 127.0.0.1:\(b1.port) name=b1 weight=4; server 127.0.0.1:\(b2.port) name=b2; }\nserver { listen LISTEN; proxy_pass u; }"
        let f = try ferry(stream, main: main)
        XCTAssertEqual(try AdminSocket.command(f.adminPath, "set server u/b1 weight 2; set server u/b2 state drain"), "\n\n")
        XCTAssertEqual(try AdminSocket.command(f.adminPath, "reload"), "Configuration reloaded: 0 listen socket(s) opened, 0 closed, 0 session(s) kept on their servers.\n\n")
        XCTAssertEqual(try AdminSocket.command(f.adminPath, "get weight u/b1"), "2 (initial 4)\n\n")
        XCTAssertTrue(try AdminSocket.command(f.adminPath, "show stat").contains("u,b2,") )
        XCTAssertTrue(try AdminSocket.command(f.adminPath, "show stat").contains(",DRAIN,"))
        // A weight changed in the file wins over the runtime one.
        try f.rewriteConfig(stream: stream.replacingOccurrences(of: "weight=4", with: "weight=6"), main: main)
        _ = try AdminSocket.command(f.adminPath, "reload")
        XCTAssertEqual(try AdminSocket.command(f.adminPath, "get weight u/b1"), "6 (initial 6)\n\n")
    }
}

final class HealthReloadTests: IntegrationCase {
    /// A server the TCP probe marked down stays down across a reload until it passes again.
    func testProbeVerdictSurvivesReload() throws {
        let b1 = try backend("b1")
        var b2: TestBackend? = try backend("b2")
        let port2 = b2!.port
        let stream = """
            upstream u { server 127.0.0.1:\(b1.port) name=b1; server 127.0.0.1:\(port2) name=b2;
                         health_check interval=100ms fails=1 passes=2 timeout=1s; }
            server { listen LISTEN; proxy_pass u; }
            """
        let f = try ferry(stream, main: "admin_socket @DIR@/admin.sock;")
        func status(_ s: String) -> String? {
            let stat = (try? AdminSocket.command(f.adminPath, "show stat")) ?? ""
            return stat.split(separator: "\n").first { $0.hasPrefix("u,\(s),") }.map { String($0.split(separator: ",", omittingEmptySubsequences: false)[17]) }
        }
        XCTAssertTrue(waitUntil(timeout: 5) { status("b2") == "UP" })
        b2?.stop()
        b2 = nil
        XCTAssertTrue(waitUntil(timeout: 5) { status("b2") == "DOWN" }, f.stderr)
        XCTAssertTrue(try AdminSocket.command(f.adminPath, "reload").hasPrefix("Configuration reloaded"))
        XCTAssertEqual(status("b2"), "DOWN", "the verdict is carried over, not reset to up")
        for _ in 0..<6 { XCTAssertEqual(try bannerThrough(f.listenPort), "b1") }
        let back = try TestBackend(name: "b2", port: port2)
        addTeardownBlock { back.stop() }
        XCTAssertTrue(waitUntil(timeout: 5) { status("b2") == "UP" }, f.stderr)
    }

    /// A reload that removes `health_check` or the agent takes their verdicts away with them:
    /// nothing is left to judge the server again, so carrying "down" or the agent's "drain"
    /// over would keep it out until a restart (and `set server ... health|agent` is refused
    /// once the checks are gone).
    func testVerdictsLeaveWithTheirChecks() throws {
        let b1 = try backend("b1")
        let probed = try Net.freePort()
        let c1 = try backend("c1"), c2 = try backend("c2"), c3 = try backend("c3")
        let agentDown = try agent("down"), agentDrain = try agent("drain")
        let vPort = try Net.freePort()
        func stream(checks: Bool) -> String { """
            upstream u { server 127.0.0.1:\(b1.port) name=b1; server 127.0.0.1:\(probed) name=b2;
                         \(checks ? "health_check interval=100ms fails=1 passes=2 timeout=1s;" : "") }
            upstream v { server 127.0.0.1:\(c1.port) name=c1 \(checks ? "agent_port=\(agentDown.port)" : "");
                         server 127.0.0.1:\(c2.port) name=c2 \(checks ? "agent_port=\(agentDrain.port)" : "");
                         server 127.0.0.1:\(c3.port) name=c3; }
            server { listen LISTEN; proxy_pass u; }
            server { listen 127.0.0.1:\(vPort); proxy_pass v; }
            """ }
        let f = try ferry(stream(checks: true), main: "admin_socket @DIR@/admin.sock;")
        XCTAssertNotNil(f.waitForState("b2", field: "health", new: "down", timeout: 5), f.stderr)
        XCTAssertNotNil(f.waitForState("c1", field: "health", new: "down", timeout: 5), f.stderr)
        XCTAssertNotNil(f.waitForState("c2", field: "admin", new: "drain", timeout: 5), f.stderr)

        // b2 comes back and the operator drops the checks.
        let b2 = try TestBackend(name: "b2", port: probed)
        addTeardownBlock { b2.stop() }
        try f.reloadOverAdmin(stream: stream(checks: false), main: "admin_socket @DIR@/admin.sock;")
        let u = tally(try (0..<6).map { _ in try bannerThrough(f.listenPort) })
        XCTAssertEqual(u["b2", default: 0], 3, "b2 is up and nothing checks it any more: \(u)")
        let v = tally(try (0..<9).map { _ in try bannerThrough(vPort) })
        XCTAssertEqual(v, ["c1": 3, "c2": 3, "c3": 3], "the agents are gone, so are their down and drain")
    }
}

/// Sessions that stay on a server a reload removed, when that server comes back.
final class ReloadRejoinTests: IntegrationCase {
    let main = "admin_socket @DIR@/admin.sock;"

    /// `show stat`'s scur of u/server and the lines `show sessions u/server` lists.
    func counts(_ f: FerryInstance, _ server: String) throws -> (scur: Int?, listed: Int) {
        let stat = try AdminSocket.command(f.adminPath, "show stat")
        let row = stat.split(separator: "\n").first { $0.hasPrefix("u,\(server),") }
        let scur = row.flatMap { Int($0.split(separator: ",", omittingEmptySubsequences: false)[4]) }
        let listed = try AdminSocket.command(f.adminPath, "show sessions u/\(server)")
            .split(separator: "\n").filter { !$0.hasPrefix("#") }.count
        return (scur, listed)
    }

    /// b1 (max_conns=2) holds two sessions; a reload drops it from the file and the next puts
    /// it back. The two sessions are still on b1, so b1 must count them: scur 2, and a third
    /// client is refused instead of becoming b1's third connection.
    func testSessionsRejoinAServerAReloadBringsBack() throws {
        let b1 = try backend("b1")
        let b2 = try backend("b2")
        let withB1 = upstreamU("server 127.0.0.1:\(b1.port) name=b1 max_conns=2;")
        let withoutB1 = upstreamU("server 127.0.0.1:\(b2.port) name=b2;")
        let f = try ferry(withB1, main: main)
        let held = try (0..<2).map { _ in try TestClient.connect(f.listenPort) }
        for c in held { XCTAssertEqual(try c.banner(), "b1") }
        try f.reloadOverAdmin(stream: withoutB1, main: main)
        XCTAssertEqual(try bannerThrough(f.listenPort), "b2")
        try f.reloadOverAdmin(stream: withB1, main: main)

        let (scur, listed) = try counts(f, "b1")
        XCTAssertEqual(listed, 2)
        XCTAssertEqual(scur, 2, "b1 counts the sessions it holds")
        let third = try TestClient.connect(f.listenPort)
        defer { third.close() }
        XCTAssertEqual(third.waitForEnd(), .eof, "b1 is full: the third client is refused")
        XCTAssertEqual(b1.open, 2, "max_conns=2 at the backend")
        // The sessions still relay, and their ends balance the count.
        for c in held {
            try c.send("ping")
            XCTAssertEqual(try c.receive(exactly: 4), Array("ping".utf8))
            c.close()
        }
        XCTAssertTrue(waitUntil(timeout: 5) { (try? self.counts(f, "b1"))?.scur == 0 })
    }

    /// The same through `add server`: a server a reload dropped, added back at run time.
    func testSessionsRejoinAServerAddedBack() throws {
        let b1 = try backend("b1")
        let b2 = try backend("b2")
        let both = upstreamU("server 127.0.0.1:\(b2.port) name=b2; server 127.0.0.1:\(b1.port) name=b1;")
        let onlyB2 = upstreamU("server 127.0.0.1:\(b2.port) name=b2;")
        let f = try ferry(both, main: main)
        XCTAssertEqual(try AdminSocket.command(f.adminPath, "set server u/b2 state maint"), "\n")
        let held = try TestClient.connect(f.listenPort)
        defer { held.close() }
        XCTAssertEqual(try held.banner(), "b1")
        try f.reloadOverAdmin(stream: onlyB2, main: main)
        XCTAssertEqual(try AdminSocket.command(f.adminPath, "add server u/b1 127.0.0.1:\(b1.port)"), "New server registered.\n\n")
        let (scur, listed) = try counts(f, "b1")
        XCTAssertEqual(listed, 1)
        XCTAssertEqual(scur, 1, "b1 counts the session it holds")
        XCTAssertTrue(try AdminSocket.command(f.adminPath, "del server u/b1").contains("connections attached"), "a server with a session cannot be deleted")
    }

    /// The upstream's totals take in the sessions kept on a server the file dropped: show stat's
    /// BACKEND scur, show info's CurrConns and the metrics agree. Before that, a reload that
    /// renumbers servers: the metrics find a moved session's bytes at its new index.
    func testBackendTotalsCountSessionsOnADroppedServer() throws {
        let b1 = try backend("b1")
        let b2 = try backend("b2")
        let mport = try Net.freePort()
        let main = self.main + " metrics_listen 127.0.0.1:\(mport);"
        let f = try ferry(upstreamU("server 127.0.0.1:\(b1.port) name=b1;"), main: main)
        XCTAssertTrue(waitUntil(timeout: 5) { FerryInstance.isListening(mport) })
        let held = try (0..<2).map { _ in try TestClient.connect(f.listenPort) }
        defer { for c in held { c.close() } }
        for c in held { XCTAssertEqual(try c.banner(), "b1") }
        try held[0].send("0123456789")
        XCTAssertEqual(try held[0].receive(exactly: 10).count, 10)

        func scrape() throws -> [ExpositionChecker.Sample] {
            let r = try HTTPExchange.send("GET /metrics HTTP/1.1\r\nHost: ferry\r\n\r\n", port: mport)
            XCTAssertEqual(r.status, 200, r.head)
            return ExpositionChecker.check(r.body).samples
        }
        func metric(_ samples: [ExpositionChecker.Sample], _ name: String, _ labels: [String: String]) -> Double? {
            samples.first { s in s.name == name && labels.allSatisfy { s.labels[$0.key] == $0.value } }?.value
        }
        // b1 becomes the second server: the sessions move to index 1.
        try f.reloadOverAdmin(stream: upstreamU("server 127.0.0.1:\(b2.port) name=b2 down; server 127.0.0.1:\(b1.port) name=b1;"), main: main)
        var samples = try scrape()
        XCTAssertEqual(metric(samples, "ferry_server_sessions", ["server": "b1"]), 2)
        XCTAssertEqual(metric(samples, "ferry_server_sent_bytes_total", ["server": "b1"]), 10, "the live session's bytes, at b1's new index")
        XCTAssertEqual(metric(samples, "ferry_upstream_sessions", ["upstream": "u"]), 2)

        // b1 leaves the file; its two sessions go on. One more session on b2.
        try f.reloadOverAdmin(stream: upstreamU("server 127.0.0.1:\(b2.port) name=b2;"), main: main)
        let third = try TestClient.connect(f.listenPort)
        defer { third.close() }
        XCTAssertEqual(try third.banner(), "b2")
        let rows = try AdminSocket.command(f.adminPath, "show stat").split(separator: "\n")
        func field(_ rows: [Substring], _ server: String, _ column: Int) -> Int? {
            rows.first { $0.hasPrefix("u,\(server),") }.flatMap { Int($0.split(separator: ",", omittingEmptySubsequences: false)[column]) }
        }
        func scur(_ server: String) -> Int? { field(rows, server, 4) }
        XCTAssertEqual(scur("b2"), 1)
        XCTAssertEqual(scur("BACKEND"), 3, "the sessions b1 still holds belong to u")
        // The upstream's counters are its own, as HAProxy's backend's: b1's sessions and the
        // bytes of one still open stay in them after b1 left the file.
        XCTAssertEqual(field(rows, "BACKEND", 7), 3, "stot")
        XCTAssertEqual(field(rows, "BACKEND", 8), 10, "bin")
        XCTAssertEqual(field(rows, "b2", 8), 0, "bin")
        XCTAssertTrue(try AdminSocket.command(f.adminPath, "show info").contains("\nCurrConns: 3\n"))
        // Scrapes less than a second apart share one rendering.
        XCTAssertTrue(waitUntil(timeout: 3) { (try? scrape()).map { metric($0, "ferry_sessions", [:]) == 3 } ?? false })
        samples = try scrape()
        XCTAssertEqual(metric(samples, "ferry_upstream_sessions", ["upstream": "u"]), 3)
        XCTAssertEqual(metric(samples, "ferry_sessions", [:]), 3)
        XCTAssertEqual(metric(samples, "ferry_server_sessions", ["server": "b2"]), 1)

        for c in held { c.close() }
        XCTAssertTrue(waitUntil(timeout: 5) { (try? AdminSocket.command(f.adminPath, "show info"))?.contains("\nCurrConns: 1\n") == true })
        XCTAssertTrue(waitUntil(timeout: 3) { (try? scrape()).map { metric($0, "ferry_sessions", [:]) == 1 } ?? false })
        samples = try scrape()
        XCTAssertEqual(metric(samples, "ferry_upstream_sessions", ["upstream": "u"]), 1)
        XCTAssertEqual(metric(samples, "ferry_upstream_sessions_total", ["upstream": "u"]), 3)
        XCTAssertEqual(metric(samples, "ferry_upstream_sent_bytes_total", ["upstream": "u"]), 10, "ended on a dropped server, counted in u")
        let after = try AdminSocket.command(f.adminPath, "show stat").split(separator: "\n")
        XCTAssertEqual(field(after, "BACKEND", 7), 3, "stot")
        XCTAssertEqual(field(after, "BACKEND", 8), 10, "bin")
    }

    /// b1 accepts only once released; the server blocks wait 10 s for a connect.
    func slowConnect(_ servers: String) -> String { upstreamU(servers, "proxy_connect_timeout 10s;") }

    /// Upstream u of `servers`, proxied from LISTEN with the server block's `directives`.
    func upstreamU(_ servers: String, _ directives: String = "") -> String {
        "upstream u { \(servers) }\nserver { listen LISTEN; proxy_pass u; \(directives) }"
    }

    /// A session still connecting to b1 (max_conns=1) when a reload drops b1 and the next puts
    /// it back: b1 counts it while it connects and once it relays, so a second client is
    /// refused, and its end gives the count back once.
    func testASessionStillConnectingRejoinsAServerAReloadBringsBack() throws {
        let hole = try blackhole()
        let b2 = try backend("b2")
        let withB1 = slowConnect("server 127.0.0.1:\(hole.port) name=b1 max_conns=1;")
        let withoutB1 = slowConnect("server 127.0.0.1:\(b2.port) name=b2;")
        let f = try ferry(withB1, main: main)
        let held = try TestClient.connect(f.listenPort, timeout: 10)
        defer { held.close() }
        XCTAssertTrue(waitUntil(timeout: 3) { (try? self.counts(f, "b1"))?.listed == 1 }, "the session is connecting to b1")
        try f.reloadOverAdmin(stream: withoutB1, main: main)
        try f.reloadOverAdmin(stream: withB1, main: main)
        let (scur, listed) = try counts(f, "b1")
        XCTAssertEqual(listed, 1)
        XCTAssertEqual(scur, 1, "b1 counts the connect under way")

        let b1 = hole.release(as: "b1")
        addTeardownBlock { b1.stop() }
        XCTAssertEqual(try held.banner(), "b1")
        XCTAssertEqual(try counts(f, "b1").scur, 1, "b1 counts the session it holds")
        let second = try TestClient.connect(f.listenPort)
        defer { second.close() }
        XCTAssertEqual(second.waitForEnd(), .eof, "b1 is full: the second client is refused")
        try held.send("ping")
        XCTAssertEqual(try held.receive(exactly: 4), Array("ping".utf8))
        held.close()
        XCTAssertTrue(waitUntil(timeout: 5) { (try? self.counts(f, "b1"))?.scur == 0 })
        XCTAssertEqual(try bannerThrough(f.listenPort), "b1", "the count went back to 0, not below")
        XCTAssertTrue(f.isRunning)
    }

    /// A session connecting to b1 when a reload drops it: when that connect times out, the
    /// retry is made among the servers the file has now (b2), not those it started with, and
    /// b2 counts it.
    func testARetryAfterAReloadDroppedTheServerGoesToTheCurrentServers() throws {
        let hole = try blackhole()
        let b2 = try backend("b2")
        let log = "access_log @DIR@/access.log;\n"
        let onlyB1 = log + upstreamU("server 127.0.0.1:\(hole.port) name=b1;", "proxy_connect_timeout 1s;")
        let onlyB2 = log + upstreamU("server 127.0.0.1:\(b2.port) name=b2;", "proxy_connect_timeout 1s;")
        let f = try ferry(onlyB1, main: main)
        let held = try TestClient.connect(f.listenPort, timeout: 5)
        defer { held.close() }
        XCTAssertTrue(waitUntil(timeout: 3) { (try? self.counts(f, "b1"))?.listed == 1 }, "the session is connecting to b1")
        try f.reloadOverAdmin(stream: onlyB2, main: main)
        XCTAssertEqual(try held.banner(), "b2", "the retry went to the current server")
        let (scur, listed) = try counts(f, "b2")
        XCTAssertEqual(listed, 1)
        XCTAssertEqual(scur, 1, "b2 counts the session")
        held.close()
        XCTAssertTrue(waitUntil(timeout: 5) { (try? self.counts(f, "b2"))?.scur == 0 })
        // The log line still names the dropped server the session timed out on.
        let line = JSONLinesFile(path: f.directory.path + "/access.log").waitFor(1).first
        XCTAssertEqual(tried(line), ["b1 127.0.0.1:\(hole.port) timeout", "b2 127.0.0.1:\(b2.port) connected"])
    }

    /// "server address outcome" for each attempt of an access-log line's `tried`.
    func tried(_ line: [String: Any]?) -> [String] {
        ((line?["tried"] as? [[String: Any]]) ?? []).map { "\($0["server"] ?? "?") \($0["address"] ?? "?") \($0["outcome"] ?? "?")" }
    }

    /// A reload gives server card1 (same `name=`) a new address while a session is still
    /// connecting to the old one. That connect's timeout is the old address's: it must not mark
    /// the new address failed (max_fails=1), and the retry may use the new address.
    func testAConnectToAnAddressAReloadChangedDoesNotCountAgainstTheNewOne() throws {
        let hole = try blackhole()
        let b2 = try backend("b2")
        func conf(_ port: UInt16) -> String {
            "access_log @DIR@/access.log;\n" + upstreamU("server 127.0.0.1:\(port) name=card1 max_fails=1 fail_timeout=60s;", "proxy_connect_timeout 1s;")
        }
        let f = try ferry(conf(hole.port), main: main)
        let held = try TestClient.connect(f.listenPort, timeout: 5)
        defer { held.close() }
        XCTAssertTrue(waitUntil(timeout: 3) { (try? self.counts(f, "card1"))?.listed == 1 }, "the session is connecting to the old address")
        try f.reloadOverAdmin(stream: conf(b2.port), main: main)
        XCTAssertEqual(try held.banner(), "b2", "the retry went to card1's new address")
        XCTAssertEqual(try bannerThrough(f.listenPort), "b2", "card1's new address is not marked failed")
        let row = try AdminSocket.command(f.adminPath, "show stat").split(separator: "\n").first { $0.hasPrefix("u,card1,") }
        XCTAssertEqual(row.map { String($0.split(separator: ",", omittingEmptySubsequences: false)[13]) }, "0", "no connect error (econ) on the new address: \(row ?? "no row")")
        held.close()
        let lines = JSONLinesFile(path: f.directory.path + "/access.log").waitFor(2)
        XCTAssertTrue(lines.map(tried).contains(["card1 127.0.0.1:\(hole.port) timeout", "card1 127.0.0.1:\(b2.port) connected"]), "\(lines.map(tried))")
    }

    /// The same through `add server`: b1 counts the session from its return, so it cannot be
    /// deleted under it, and can be once the session ended.
    func testASessionStillConnectingRejoinsAServerAddedBack() throws {
        let hole = try blackhole()
        let b2 = try backend("b2")
        let both = slowConnect("server 127.0.0.1:\(b2.port) name=b2; server 127.0.0.1:\(hole.port) name=b1;")
        let onlyB2 = slowConnect("server 127.0.0.1:\(b2.port) name=b2;")
        let f = try ferry(both, main: main)
        XCTAssertEqual(try AdminSocket.command(f.adminPath, "set server u/b2 state maint"), "\n")
        let held = try TestClient.connect(f.listenPort, timeout: 10)
        defer { held.close() }
        XCTAssertTrue(waitUntil(timeout: 3) { (try? self.counts(f, "b1"))?.listed == 1 }, "the session is connecting to b1")
        try f.reloadOverAdmin(stream: onlyB2, main: main)
        XCTAssertEqual(try AdminSocket.command(f.adminPath, "add server u/b1 127.0.0.1:\(hole.port)"), "New server registered.\n\n")
        XCTAssertEqual(try counts(f, "b1").scur, 1, "b1 counts the connect under way")
        let b1 = hole.release(as: "b1")
        addTeardownBlock { b1.stop() }
        XCTAssertEqual(try held.banner(), "b1")
        let (scur, listed) = try counts(f, "b1")
        XCTAssertEqual(listed, 1)
        XCTAssertEqual(scur, 1, "b1 counts the session it holds")
        XCTAssertTrue(try AdminSocket.command(f.adminPath, "del server u/b1").contains("connections attached"), "a server with a session cannot be deleted")
        held.close()
        XCTAssertTrue(waitUntil(timeout: 5) { (try? self.counts(f, "b1"))?.scur == 0 })
        XCTAssertEqual(try AdminSocket.command(f.adminPath, "del server u/b1"), "Server deleted.\n\n")
        XCTAssertTrue(f.isRunning)
    }
}
