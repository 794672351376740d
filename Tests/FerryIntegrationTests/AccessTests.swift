import XCTest
import Glibc

/// Who may connect, by client address: allow/deny (IPv4 and IPv6), limit_conn, limit_conn_rate.
/// Clients bind distinct 127.x.y.z source addresses, which Linux routes on loopback unconfigured.
final class AccessTests: IntegrationCase {
    /// First match wins, at any prefix length; a client no rule matches is allowed.
    func testAllowDenyOrderAndCIDRsIPv4() throws {
        let b = try backend("acl4")
        let f = try ferry("""
            server { listen LISTEN; proxy_pass 127.0.0.1:\(b.port); proxy_timeout 10s;
                     allow 127.0.0.1; allow 127.0.3.0/25; deny 127.0.3.0/24; deny 127.0.0.0/9; allow all; }
            """)
        let cases: [(String, Bool)] = [
            ("127.0.0.1", true),      // rule 1
            ("127.0.3.5", true),      // rule 2 (127.0.3.0-127)
            ("127.0.3.200", false),   // rule 3
            ("127.0.0.2", false),     // rule 4 (127.0.0.0-127.127.255.255)
            ("127.127.255.254", false),
            ("127.128.0.1", true),    // beyond /9: allow all
        ]
        for (source, allowed) in cases {
            let c = try TestClient.connect(f.listenPort, from: source, timeout: 3)
            defer { c.close() }
            if allowed {
                XCTAssertEqual(try c.banner(), "acl4", source)
            } else {
                XCTAssertTrue(c.wasRefused(), "\(source) was served")
            }
        }
        XCTAssertTrue(waitUntil(timeout: 2) { b.accepted == 3 }, "backend saw \(b.accepted) clients, expected the 3 allowed")
    }

    /// IPv6 rules on [::1] listeners: bit-level prefixes, IPv4 rules never match an IPv6 client.
    func testAllowDenyIPv6() throws {
        let b = try backend("acl6")
        let ports = try (0..<4).map { _ in try Net6.freePort() }
        let rules = [
            "deny ::/127; allow all;",                               // ::0-::1 denied
            "deny ::2/127; deny 127.0.0.0/8; allow ::1; deny all;",  // IPv4 rule and ::2/127 miss; ::1 allowed
            "allow 2001:db8::/32; deny all;",                        // not in the allowed net
            "deny 0.0.0.0/0;",                                       // IPv4-only rules: ::1 allowed
        ]
        let expected = [false, true, false, true]
        var servers = "server { listen LISTEN; proxy_pass 127.0.0.1:\(b.port); }\n"
        for (port, r) in zip(ports, rules) {
            servers += "server { listen [::1]:\(port); proxy_pass 127.0.0.1:\(b.port); proxy_timeout 10s; \(r) }\n"
        }
        let f = try ferry(servers)
        for (i, port) in ports.enumerated() {
            let c = try Net6.connect(port)
            defer { c.close() }
            if expected[i] {
                XCTAssertEqual(try c.banner(), "acl6", rules[i])
            } else {
                XCTAssertTrue(c.wasRefused(), "::1 was served under: \(rules[i])")
            }
        }
        XCTAssertTrue(waitUntil(timeout: 2) { b.accepted == 2 }, "backend saw \(b.accepted)")
        XCTAssertTrue(f.isRunning)
    }

    /// limit_conn perip 2: the third concurrent session from one address is refused while
    /// other addresses are served; a freed slot is usable again.
    func testLimitConnPerAddress() throws {
        let b = try backend("lc")
        let f = try ferry("""
            limit_conn_zone $binary_remote_addr zone=perip:1m;
            server { listen LISTEN; proxy_pass 127.0.0.1:\(b.port); proxy_timeout 30s; limit_conn perip 2; }
            """)
        var held: [TestClient] = []
        defer { held.forEach { $0.close() } }
        for _ in 0..<2 {
            let c = try TestClient.connect(f.listenPort, from: "127.0.0.5")
            XCTAssertEqual(try c.banner(), "lc")
            held.append(c)
        }
        let third = try TestClient.connect(f.listenPort, from: "127.0.0.5")
        XCTAssertTrue(third.wasRefused(), "the third session from 127.0.0.5 was served")
        third.close()
        for _ in 0..<2 {
            let c = try TestClient.connect(f.listenPort, from: "127.0.0.6")
            XCTAssertEqual(try c.banner(), "lc", "another address must not be limited")
            held.append(c)
        }
        // Established sessions are undisturbed by the refusal.
        try held[0].send("x")
        XCTAssertEqual(try held[0].receive(exactly: 1), Array("x".utf8))
        // Free one slot of 127.0.0.5: the next session from it is served.
        held.removeFirst().close()
        var served = false
        for _ in 0..<20 where !served {   // ferry notices the close asynchronously
            let c = try TestClient.connect(f.listenPort, from: "127.0.0.5")
            if let name = try? c.banner() { XCTAssertEqual(name, "lc"); held.append(c); served = true } else { c.close(); usleep(100_000) }
        }
        XCTAssertTrue(served, "the freed limit_conn slot was not reusable")
        XCTAssertEqual(held.count, 4)
        XCTAssertTrue(f.isRunning)
    }

    /// limit_conn_rate 2r/s burst=2: a burst of connections from one address gets the first one
    /// plus the burst plus what the rate refills meanwhile; another address is unaffected; the
    /// address is served again once its bucket drains.
    func testRateCapPerAddress() throws {
        let b = try backend("rate")
        let f = try ferry("""
            server { listen LISTEN; proxy_pass 127.0.0.1:\(b.port); proxy_timeout 30s; limit_conn_rate 2r/s burst=2; }
            """)
        var served = 0, refused = 0
        let start = Date()
        var held: [TestClient] = []
        defer { held.forEach { $0.close() } }
        for _ in 0..<12 {
            let c = try TestClient.connect(f.listenPort, from: "127.0.0.7")
            if let name = try? c.banner(), name == "rate" { served += 1; held.append(c) } else { refused += 1; c.close() }
        }
        let elapsed = Date().timeIntervalSince(start)
        // 1 (new bucket) + 2 (burst) + 2 per second elapsed, rounded up, +1 for timing slack.
        let bound = 3 + Int((elapsed * 2).rounded(.up)) + 1
        XCTAssertGreaterThanOrEqual(served, 3, "burst not honoured: \(served) served in \(elapsed) s")
        XCTAssertLessThanOrEqual(served, bound, "rate cap not holding: \(served) of 12 served in \(String(format: "%.2f", elapsed)) s")
        XCTAssertGreaterThan(refused, 0)
        XCTAssertEqual(try bannerThrough(f.listenPort, from: "127.0.0.8"), "rate", "another address was limited")
        // After the bucket drains (2.5 s covers the burst of 3 at 2/s), 127.0.0.7 is served again.
        usleep(2_500_000)
        XCTAssertEqual(try bannerThrough(f.listenPort, from: "127.0.0.7"), "rate")
        XCTAssertTrue(f.isRunning)
    }
}
