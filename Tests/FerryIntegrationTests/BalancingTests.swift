import XCTest
import Glibc

/// Server choice, retries and eligibility as clients see them, through banner backends.
final class BalancingTests: IntegrationCase {
    let timeouts = "proxy_connect_timeout 1s; proxy_timeout 5s; proxy_next_upstream on;"

    /// 4. A refused server is skipped for the next one; the client never notices.
    func testRefusedServerRetriedOnNext() throws {
        let closed = try Net.freePort()
        let live = try backend("live")
        let f = try ferry("""
            upstream u { server 127.0.0.1:\(closed) name=dead max_fails=0; server 127.0.0.1:\(live.port) name=live; }
            server { listen LISTEN; proxy_pass u; \(timeouts) }
            """)
        let n = 20
        var names: [String] = []
        for i in 0..<n {
            do { names.append(try bannerThrough(f.listenPort)) } catch { XCTFail("connection \(i): \(error)") }
        }
        XCTAssertEqual(names, Array(repeating: "live", count: n))
        XCTAssertEqual(live.accepted, n)
        // max_fails=0 keeps the dead server in rotation: about every other session tries it first.
        XCTAssertGreaterThanOrEqual(f.events("connect_failed"), n / 2 - 1, f.stderr)
        XCTAssertTrue(f.stderr.contains("\"address\":\"127.0.0.1:\(closed)\""), f.stderr)
    }

    /// A single server (`proxy_pass host:port`, or an upstream of one server and no backup) is
    /// never taken out by a failed connect, as in nginx: once it is back (a restart), the next
    /// client is served at once, not refused with no_server for fail_timeout.
    func testSingleServerIsTriedAgainAfterAFailedConnect() throws {
        let port = try Net.freePort()
        let f = try ferry("""
            upstream one { server 127.0.0.1:\(port) name=one; }
            server { listen LISTEN; proxy_pass one; \(timeouts) }
            """)
        let refused = try TestClient.connect(f.listenPort, timeout: 3)
        defer { refused.close() }
        XCTAssertTrue(refused.wasRefused())
        XCTAssertEqual(f.events("connect_failed"), 1, f.stderr)
        let b = try TestBackend(name: "back", port: port)
        defer { b.stop() }
        XCTAssertEqual(try bannerThrough(f.listenPort), "back", "the only server stayed out after one failed connect")
    }

    /// 5a. Connect to a server that never answers: the client is closed after proxy_connect_timeout.
    func testConnectTimeoutClosesClient() throws {
        let hole = try blackhole()
        let f = try ferry("""
            upstream u { server 127.0.0.1:\(hole.port) name=hole; }
            server { listen LISTEN; proxy_pass u; \(timeouts) }
            """)
        let c = try TestClient.connect(f.listenPort, timeout: 8)
        defer { c.close() }
        let start = Date()
        let ending = c.waitForEnd()
        let elapsed = Date().timeIntervalSince(start)
        XCTAssertTrue(ending == .eof || ending == .reset, "client should be closed, got \(ending)")
        XCTAssertGreaterThanOrEqual(elapsed, 0.8)
        XCTAssertLessThanOrEqual(elapsed, 5)
        XCTAssertTrue(waitUntil(timeout: 1) { f.events("connect_failed") >= 1 }, f.stderr)
    }

    /// A client that resets while ferry is still connecting for it: the access log's attempt is
    /// "abandoned" with the time it ran (it said 0 ms), and no connect time.
    func testAnAttemptTheClientAbandonsIsLoggedWithItsTime() throws {
        let hole = try blackhole()
        let f = try ferry("""
            access_log @DIR@/access.log;
            upstream u { server 127.0.0.1:\(hole.port) name=hole; }
            server { listen LISTEN; proxy_pass u; proxy_connect_timeout 10s; }
            """)
        let c = try TestClient.connect(f.listenPort, timeout: 5)
        usleep(300_000)
        // A reset: after a FIN the session would go on connecting, to deliver what was sent.
        c.reset()
        guard let line = JSONLinesFile(path: f.directory.path + "/access.log").waitFor(1).first,
              let tried = (line["tried"] as? [[String: Any]])?.first else { return XCTFail(f.stderr) }
        XCTAssertEqual(tried["outcome"] as? String, "abandoned")
        let ms = (tried["ms"] as? Double) ?? -1
        XCTAssertGreaterThanOrEqual(ms, 250, "\(line)")
        XCTAssertLessThanOrEqual(ms, (line["duration_ms"] as? Double) ?? 0, "\(line)")
    }

    /// 5b. After the connect timeout the session moves on to a live server.
    func testConnectTimeoutMovesToNextServer() throws {
        let hole = try blackhole()
        let live = try backend("live")
        // weight=5 makes the black hole the first choice of smooth round robin, whatever the tie rule.
        let f = try ferry("""
            upstream u { server 127.0.0.1:\(hole.port) name=hole weight=5; server 127.0.0.1:\(live.port) name=live; }
            server { listen LISTEN; proxy_pass u; \(timeouts) }
            """)
        let start = Date()
        let name = try bannerThrough(f.listenPort, timeout: 8)
        let elapsed = Date().timeIntervalSince(start)
        XCTAssertEqual(name, "live")
        XCTAssertGreaterThanOrEqual(elapsed, 0.8, "the black hole was not tried first")
        XCTAssertLessThanOrEqual(elapsed, 5)
        XCTAssertEqual(f.events("connect_failed"), 1, f.stderr)
    }

    /// 6. least_conn keeps held sessions within one of even, and refills the emptiest server.
    func testLeastConnSpread() throws {
        let bs = try (1...3).map { try backend("lc\($0)") }
        let f = try ferry("""
            upstream u { least_conn; \(bs.map { "server 127.0.0.1:\($0.port) name=\($0.name);" }.joined(separator: " ")) }
            server { listen LISTEN; proxy_pass u; proxy_connect_timeout 1s; proxy_timeout 30s; }
            """, main: "admin_socket @DIR@/admin.sock;")
        /// ferry's own count of sessions on a server (`show stat` scur), as least_conn sees it.
        func active(_ server: String) -> Int? {
            let stat = (try? AdminSocket.command(f.adminPath, "show stat")) ?? ""
            guard let row = stat.split(separator: "\n").first(where: { $0.hasPrefix("u,\(server),") }) else { return nil }
            let cols = row.split(separator: ",", omittingEmptySubsequences: false)
            return cols.count > 4 ? Int(cols[4]) : nil
        }
        var held: [(TestClient, String)] = []
        defer { held.forEach { $0.0.close() } }
        for _ in 0..<30 {
            let c = try TestClient.connect(f.listenPort)
            held.append((c, try c.banner()))
        }
        let first = tally(held.map(\.1))
        XCTAssertLessThanOrEqual((first.values.max() ?? 0) - (first.values.min() ?? 0), 1, "\(first)")
        XCTAssertEqual(first.count, 3, "\(first)")
        XCTAssertEqual(bs.map(\.open), bs.map { first[$0.name] ?? 0 })

        // Empty lc1: least_conn must send the next sessions there (round robin would spread them).
        for (c, name) in held where name == "lc1" { c.close() }
        held.removeAll { $0.1 == "lc1" }
        XCTAssertTrue(waitUntil(timeout: 3) { bs[0].open == 0 })
        // The backend closes before ferry reads its FIN: wait until ferry has ended those sessions.
        XCTAssertTrue(waitUntil(timeout: 3) { active("lc1") == 0 }, "ferry still counts \(active("lc1").map(String.init) ?? "?") sessions on lc1")
        for _ in 0..<9 {
            let c = try TestClient.connect(f.listenPort)
            held.append((c, try c.banner()))
        }
        let second = tally(held.map(\.1))
        XCTAssertEqual(second["lc1"], 9, "\(second)")
        XCTAssertLessThanOrEqual((second.values.max() ?? 0) - (second.values.min() ?? 0), 1, "\(second)")
    }

    /// random two least_conn: of two random servers the less loaded one, so held sessions stay
    /// close to even (plain random over 60 sessions is usually more than 3 apart).
    func testRandomTwoLeastConnStaysNearEven() throws {
        let bs = try (1...3).map { try backend("r\($0)") }
        let f = try ferry("""
            upstream u { random two least_conn; \(bs.map { "server 127.0.0.1:\($0.port) name=\($0.name);" }.joined(separator: " ")) }
            server { listen LISTEN; proxy_pass u; proxy_connect_timeout 1s; proxy_timeout 30s; }
            """)
        var held: [TestClient] = []
        defer { held.forEach { $0.close() } }
        var names: [String] = []
        for _ in 0..<60 {
            let c = try TestClient.connect(f.listenPort)
            held.append(c)
            names.append(try c.banner())
        }
        let t = tally(names)
        XCTAssertEqual(t.count, 3, "\(t)")
        XCTAssertLessThanOrEqual((t.values.max() ?? 0) - (t.values.min() ?? 0), 3, "\(t)")
    }

    /// `random` draws a new sequence at every start and every reload, as nginx's workers do.
    /// Seeded by the upstream's name alone, ferry replayed the same picks each time: with a
    /// reload every two sessions and weights 3,1,1, the weight-3 server got no session at all.
    /// Each sequence is 16 picks of 3 equal servers: two agree by chance once in 3^16.
    func testRandomDrawsAfreshAtEachStartAndReload() throws {
        let bs = try (1...3).map { try backend("d\($0)") }
        let config = """
            upstream u { random; \(bs.map { "server 127.0.0.1:\($0.port) name=\($0.name);" }.joined(separator: " ")) }
            server { listen LISTEN; proxy_pass u; proxy_connect_timeout 1s; proxy_timeout 5s; }
            """
        func picks(_ f: FerryInstance) throws -> [String] { try (0..<16).map { _ in try bannerThrough(f.listenPort) } }
        let first = try ferry(config)
        let started = try picks(first)
        first.signal(SIGHUP)
        XCTAssertTrue(waitUntil(timeout: 5) { first.events("reload") == 1 }, first.stderr)
        let reloaded = try picks(first)
        _ = first.stop(timeout: 2)
        let second = try ferry(config, listenPort: first.listenPort)
        let restarted = try picks(second)
        XCTAssertEqual(Set(started + reloaded + restarted).count, 3, "every server should be drawn")
        XCTAssertNotEqual(reloaded, started, "a reload replayed the picks made since the start")
        XCTAssertNotEqual(restarted, started, "a restart replayed the picks of the previous run")
    }

    /// 7. Weights 3:1 under round robin, over 4,000 short sessions, within 5%.
    func testWeightsHonoured() throws {
        let heavy = try backend("heavy"), light = try backend("light")
        let f = try ferry("""
            upstream u { server 127.0.0.1:\(heavy.port) name=heavy weight=3; server 127.0.0.1:\(light.port) name=light; }
            server { listen LISTEN; proxy_pass u; proxy_connect_timeout 1s; proxy_timeout 5s; }
            """)
        let total = 4000
        var names: [String] = []
        names.reserveCapacity(total)
        let start = Date()
        for i in 0..<total {
            guard Date().timeIntervalSince(start) < 60 else { XCTFail("only \(i) sessions in 60 s"); break }
            names.append(try bannerThrough(f.listenPort))
        }
        let t = tally(names)
        XCTAssertEqual(names.count, total)
        XCTAssertEqual(Double(t["heavy"] ?? 0), 3000, accuracy: 150, "\(t)")
        XCTAssertEqual(Double(t["light"] ?? 0), 1000, accuracy: 50, "\(t)")
        XCTAssertEqual(heavy.accepted + light.accepted, total)
    }

    /// 8a. hash $remote_addr keeps each source address on one server.
    func testHashKeepsClientOnOneServer() throws {
        let bs = try (0..<4).map { try backend("h\($0)") }
        let f = try ferry("""
            upstream u { hash $remote_addr; \(bs.map { "server 127.0.0.1:\($0.port) name=\($0.name);" }.joined(separator: " ")) }
            server { listen LISTEN; proxy_pass u; \(timeouts) }
            """)
        var used = Set<String>()
        for s in 1...20 {
            let source = "127.0.7.\(s)"
            let names = try (0..<5).map { _ in try bannerThrough(f.listenPort, from: source) }
            XCTAssertEqual(Set(names).count, 1, "\(source) went to \(names)")
            used.formUnion(names)
        }
        XCTAssertGreaterThanOrEqual(used.count, 2, "20 sources all hashed to \(used)")
    }

    /// 8b. Consistent hash: removing one of 4 servers moves only that server's clients (~1/4).
    func testConsistentHashMovesAboutOneNth() throws {
        let bs = try (0..<4).map { try backend("c\($0)") }
        func config(_ servers: [TestBackend]) -> String {
            """
            upstream u { hash $remote_addr consistent; \(servers.map { "server 127.0.0.1:\($0.port) name=\($0.name);" }.joined(separator: " ")) }
            server { listen LISTEN; proxy_pass u; \(timeouts) }
            """
        }
        let sources = (0..<240).map { "127.\(20 + $0 / 200).\($0 % 200 / 50).\($0 % 50 + 1)" }
        let f1 = try ferry(config(bs))
        let before = try sources.map { try bannerThrough(f1.listenPort, from: $0) }
        XCTAssertEqual(f1.stop(), 0)
        let spread = tally(before)
        XCTAssertEqual(spread.count, 4, "every server should own some clients: \(spread)")

        let removed = bs[2].name
        let f2 = try ferry(config(bs.filter { $0.name != removed }))
        let after = try sources.map { try bannerThrough(f2.listenPort, from: $0) }
        var moved = 0, movedWithoutCause = 0
        for i in sources.indices where before[i] != after[i] {
            moved += 1
            if before[i] != removed { movedWithoutCause += 1 }
        }
        XCTAssertFalse(after.contains(removed))
        XCTAssertEqual(movedWithoutCause, 0, "clients whose server stayed were moved")
        XCTAssertLessThanOrEqual(Double(moved) / Double(sources.count), 1.0 / 4 + 0.1, "moved \(moved) of \(sources.count)")
    }

    /// 9. backup takes sessions only when every primary is unavailable.
    func testBackupOnlyWhenPrimariesDown() throws {
        let p1 = try backend("p1"), p2 = try backend("p2"), bk = try backend("bk")
        let f = try ferry("""
            upstream u { server 127.0.0.1:\(p1.port) name=p1; server 127.0.0.1:\(p2.port) name=p2; server 127.0.0.1:\(bk.port) name=bk backup; }
            server { listen LISTEN; proxy_pass u; \(timeouts) }
            """)
        let up = try (0..<10).map { _ in try bannerThrough(f.listenPort) }
        XCTAssertEqual(Set(up), ["p1", "p2"])
        XCTAssertEqual(bk.accepted, 0)
        p1.stop(); p2.stop()
        let down = try (0..<10).map { _ in try bannerThrough(f.listenPort) }
        XCTAssertEqual(down, Array(repeating: "bk", count: 10))
        XCTAssertEqual(bk.accepted, 10)
    }

    /// 10. max_conns caps a server's concurrent sessions, under least_conn and round robin.
    func testMaxConnsRespected() throws {
        for method in ["least_conn;", ""] {
            let a = try backend("A"), b = try backend("B")
            let f = try ferry("""
                upstream u { \(method) server 127.0.0.1:\(a.port) name=A max_conns=2; server 127.0.0.1:\(b.port) name=B; }
                server { listen LISTEN; proxy_pass u; proxy_connect_timeout 1s; proxy_timeout 30s; }
                """)
            var held: [TestClient] = []
            var names: [String] = []
            for _ in 0..<10 {
                let c = try TestClient.connect(f.listenPort)
                held.append(c)
                names.append(try c.banner())
            }
            let t = tally(names)
            XCTAssertLessThanOrEqual(t["A"] ?? 0, 2, "\(method.isEmpty ? "round robin" : method): \(t)")
            XCTAssertEqual((t["A"] ?? 0) + (t["B"] ?? 0), 10)
            XCTAssertLessThanOrEqual(a.open, 2)
            held.forEach { $0.close() }
            f.stop()
            a.stop(); b.stop()
        }
    }
}
