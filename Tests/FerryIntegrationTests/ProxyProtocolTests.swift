import XCTest
import Glibc

/// PROXY protocol both ways: the header a server receives (byte-exact), headers accepted
/// from a balancer in front, malformed headers, and HAProxy on either side.
final class ProxyProtocolTests: IntegrationCase {
    static let sig: [UInt8] = [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A]
    static func be16(_ v: UInt16) -> [UInt8] { [UInt8(v >> 8), UInt8(v & 0xff)] }
    let hello = Array("hello".utf8)

    /// Sends "hello" as `c` and returns what the recording backend got for that connection.
    private func record(_ c: TestClient, _ r: RecordingBackend, index: Int) throws -> [UInt8] {
        try c.send("hello")
        XCTAssertEqual(try c.receive(exactly: 2), Array("ok".utf8))
        let all = r.waitForRecords(index + 1)
        guard all.count > index else { XCTFail("no record \(index)"); return [] }
        return all[index]
    }

    /// `proxy_protocol on` with versions 1 and 2, IPv4 and IPv6 (::1) listeners.
    func testHeaderToServerIsByteExact() throws {
        let r = try recorder()
        let p2 = try Net.freePort(), p6a = try Net6.freePort(), p6b = try Net6.freePort()
        let f = try ferry("""
            server { listen LISTEN; proxy_pass 127.0.0.1:\(r.port); proxy_protocol on; }
            server { listen 127.0.0.1:\(p2); proxy_pass 127.0.0.1:\(r.port); proxy_protocol on; proxy_protocol_version 2; }
            server { listen [::1]:\(p6a); proxy_pass 127.0.0.1:\(r.port); proxy_protocol on; }
            server { listen [::1]:\(p6b); proxy_pass 127.0.0.1:\(r.port); proxy_protocol on; proxy_protocol_version 2; }
            """)
        var c = try TestClient.connect(f.listenPort, from: "127.0.0.21")
        var port = c.localPort
        XCTAssertEqual(printable(try record(c, r, index: 0)),
                       printable(Array("PROXY TCP4 127.0.0.21 127.0.0.1 \(port) \(f.listenPort)\r\nhello".utf8)))
        c.close()

        c = try TestClient.connect(p2, from: "127.0.0.22")
        port = c.localPort
        let v2v4 = Self.sig + [0x21, 0x11, 0x00, 0x0C, 127, 0, 0, 22, 127, 0, 0, 1] + Self.be16(port) + Self.be16(p2) + hello
        XCTAssertEqual(printable(try record(c, r, index: 1)), printable(v2v4))
        c.close()

        c = try Net6.connect(p6a)
        port = c.localPort
        XCTAssertEqual(printable(try record(c, r, index: 2)), printable(Array("PROXY TCP6 ::1 ::1 \(port) \(p6a)\r\nhello".utf8)))
        c.close()

        c = try Net6.connect(p6b)
        port = c.localPort
        let loop6 = [UInt8](repeating: 0, count: 15) + [1]
        let v2v6 = Self.sig + [0x21, 0x21, 0x00, 0x24] + loop6 + loop6 + Self.be16(port) + Self.be16(p6b) + hello
        XCTAssertEqual(printable(try record(c, r, index: 3)), printable(v2v6))
        c.close()
    }

    /// `set_real_ip_from`: only a trusted sender's header names the client. An untrusted sender's
    /// header is read and dropped: allow/deny judge the sender, and the header sent onward names
    /// it. 127.0.0.2 is trusted, 127.0.0.3 is not; 192.0.2.66 is denied.
    func testSetRealIPFromTrustsOnlyListedSenders() throws {
        let r = try recorder()
        let f = try ferry("""
            server { listen LISTEN proxy_protocol; proxy_pass 127.0.0.1:\(r.port); proxy_protocol on;
                     set_real_ip_from 127.0.0.2; set_real_ip_from 10.0.0.0/8; deny 192.0.2.66; allow all; }
            """)
        let header = { (client: String) in "PROXY TCP4 \(client) 198.51.100.1 4444 12000\r\n" }
        // Trusted: the header's client, as before set_real_ip_from existed.
        var c = try TestClient.connect(f.listenPort, from: "127.0.0.2")
        try c.send(header("192.0.2.55"))
        XCTAssertEqual(printable(try record(c, r, index: 0)), printable(Array("PROXY TCP4 192.0.2.55 198.51.100.1 4444 12000\r\nhello".utf8)))
        c.close()
        // Untrusted: the sender itself, with the address it connected to.
        c = try TestClient.connect(f.listenPort, from: "127.0.0.3")
        var port = c.localPort
        try c.send(header("192.0.2.55"))
        XCTAssertEqual(printable(try record(c, r, index: 1)),
                       printable(Array("PROXY TCP4 127.0.0.3 127.0.0.1 \(port) \(f.listenPort)\r\nhello".utf8)))
        c.close()
        // A denied address in an untrusted header changes nothing: the sender is allowed.
        c = try TestClient.connect(f.listenPort, from: "127.0.0.3")
        port = c.localPort
        try c.send(header("192.0.2.66"))
        XCTAssertEqual(printable(try record(c, r, index: 2)),
                       printable(Array("PROXY TCP4 127.0.0.3 127.0.0.1 \(port) \(f.listenPort)\r\nhello".utf8)))
        c.close()
        // The same header from the trusted sender is the client's, and that client is denied.
        c = try TestClient.connect(f.listenPort, from: "127.0.0.2")
        try c.send(header("192.0.2.66"))
        XCTAssertTrue(c.wasRefused(), "a denied client named by a trusted header was served")
        c.close()
        XCTAssertEqual(r.received.value.count, 3)
    }

    /// `listen ... proxy_protocol`: v1 and v2 accepted; the server is told the client the header
    /// named; bytes sent in the same segment as the header are relayed; LOCAL means the real peer.
    func testAcceptsHeadersAndRelaysWhatFollows() throws {
        let r = try recorder()
        let f = try ferry("server { listen LISTEN proxy_protocol; proxy_pass 127.0.0.1:\(r.port); proxy_protocol on; proxy_protocol_timeout 3s; }")
        // v2 in (IPv4), header and data in one send.
        var c = try TestClient.connect(f.listenPort, from: "127.0.0.31")
        try c.send(Self.sig + [0x21, 0x11, 0x00, 0x0C, 192, 0, 2, 55, 198, 51, 100, 1] + Self.be16(4444) + Self.be16(12000) + hello)
        XCTAssertEqual(try c.receive(exactly: 2), Array("ok".utf8))
        XCTAssertEqual(printable(r.waitForRecords(1).last ?? []), printable(Array("PROXY TCP4 192.0.2.55 198.51.100.1 4444 12000\r\nhello".utf8)))
        c.close()
        // v1 in (IPv6 addresses over an IPv4 connection), data in a later send.
        c = try TestClient.connect(f.listenPort, from: "127.0.0.32")
        try c.send("PROXY TCP6 2001:db8::7 2001:db8::1 5555 443\r\n")
        usleep(100_000)
        XCTAssertEqual(printable(try record(c, r, index: 1)), printable(Array("PROXY TCP6 2001:db8::7 2001:db8::1 5555 443\r\nhello".utf8)))
        c.close()
        // v2 LOCAL with a TLV: the connection's own peer is the client.
        c = try TestClient.connect(f.listenPort, from: "127.0.0.33")
        let port = c.localPort
        try c.send(Self.sig + [0x20, 0x00, 0x00, 0x05, 0x04, 0x00, 0x02, 0x61, 0x62] + hello)
        XCTAssertEqual(try c.receive(exactly: 2), Array("ok".utf8))
        XCTAssertEqual(printable(r.waitForRecords(3).last ?? []),
                       printable(Array("PROXY TCP4 127.0.0.33 127.0.0.1 \(port) \(f.listenPort)\r\nhello".utf8)))
        c.close()
        // v1 UNKNOWN followed by part of the data in the same send, the rest later: the part
        // read with the header goes first, whole and in order.
        c = try TestClient.connect(f.listenPort, from: "127.0.0.34")
        let port4 = c.localPort
        try c.send("PROXY UNKNOWN\r\nhel")
        usleep(50_000)
        try c.send("lo")
        XCTAssertEqual(try c.receive(exactly: 2), Array("ok".utf8))
        XCTAssertEqual(printable(r.waitForRecords(4).last ?? []),
                       printable(Array("PROXY TCP4 127.0.0.34 127.0.0.1 \(port4) \(f.listenPort)\r\nhello".utf8)))
        c.close()
    }

    /// On a proxy_protocol listener, allow/deny and limits see the address from the header.
    func testChecksUseTheAddressFromTheHeader() throws {
        let b = try backend("pp")
        let f = try ferry("""
            limit_conn_zone $binary_remote_addr zone=perip:1m;
            server { listen LISTEN proxy_protocol; proxy_pass 127.0.0.1:\(b.port); proxy_timeout 10s;
                     deny 192.0.2.66; allow all; limit_conn perip 1; }
            """)
        let denied = try TestClient.connect(f.listenPort, from: "127.0.0.41")
        try denied.send("PROXY TCP4 192.0.2.66 192.0.2.1 1000 12000\r\n")
        XCTAssertTrue(denied.wasRefused(), "the header's address was not the one checked")
        let first = try TestClient.connect(f.listenPort, from: "127.0.0.41")
        defer { first.close() }
        try first.send("PROXY TCP4 192.0.2.67 192.0.2.1 1001 12000\r\n")
        XCTAssertEqual(try first.banner(), "pp")
        // Same real client through another front connection: over limit_conn 1.
        let second = try TestClient.connect(f.listenPort, from: "127.0.0.42")
        try second.send("PROXY TCP4 192.0.2.67 192.0.2.1 1002 12000\r\n")
        XCTAssertTrue(second.wasRefused(), "limit_conn counted the balancer's address, not the client's")
        // A different real client through the same balancer address: served.
        let third = try TestClient.connect(f.listenPort, from: "127.0.0.41")
        defer { third.close() }
        try third.send("PROXY TCP4 192.0.2.68 192.0.2.1 1003 12000\r\n")
        XCTAssertEqual(try third.banner(), "pp")
    }

    /// Malformed headers close only their own client, each with a logged reason; a slow drip
    /// is cut at proxy_protocol_timeout; sessions already running keep relaying.
    func testMalformedHeadersAreRejectedWithoutDisturbingOthers() throws {
        let b = try backend("ok")
        let f = try ferry("server { listen LISTEN proxy_protocol; proxy_pass 127.0.0.1:\(b.port); proxy_timeout 30s; proxy_protocol_timeout 1s; }",
                          main: "error_log stderr info;")
        let good = try TestClient.connect(f.listenPort, from: "127.0.0.51", timeout: 5)
        defer { good.close() }
        try good.send("PROXY TCP4 192.0.2.1 192.0.2.2 1 2\r\n")
        XCTAssertEqual(try good.banner(), "ok")

        let bad: [(String, [UInt8], Bool)] = [
            ("wrong signature", Array("GET / HTTP/1.0\r\n\r\n".utf8), false),
            ("v2 wrong signature", [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0B], false),
            ("v1 oversize", Array(("PROXY UNKNOWN " + String(repeating: "x", count: 200)).utf8), false),
            ("v2 oversize", Self.sig + [0x21, 0x11, 0xFF, 0xFF] + [UInt8](repeating: 0, count: 64), false),
            ("v1 malformed", Array("PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n".utf8), false),
            ("truncated then FIN", Array("PROXY TCP4 1.2.3".utf8), true),
            ("truncated then silence", Self.sig + [0x21, 0x11], false),
        ]
        for (name, bytes, fin) in bad {
            let c = try TestClient.connect(f.listenPort, from: "127.0.0.52", timeout: 4)
            defer { c.close() }
            let start = Date()
            try c.send(bytes)
            if fin { c.shutdownWrite() }
            XCTAssertTrue(c.wasRefused(), "\(name): not closed")
            XCTAssertLessThan(Date().timeIntervalSince(start), 3.5, "\(name): closed too late")
        }
        // Slow drip: a valid header one byte every 100 ms (4+ s in all) is cut at 1 s.
        let drip = try TestClient.connect(f.listenPort, from: "127.0.0.53", timeout: 4)
        defer { drip.close() }
        let header = Array("PROXY TCP4 192.0.2.9 192.0.2.2 1234 5678\r\n".utf8)
        let start = Date()
        var sent = 0
        for byte in header {
            if (try? drip.send([byte])) == nil { break }
            sent += 1
            var p = pollfd(fd: drip.fd, events: Int16(POLLIN), revents: 0)
            if poll(&p, 1, 100) > 0 { break }      // ferry closed it
        }
        XCTAssertLessThan(sent, header.count, "the whole dripped header was accepted")
        XCTAssertTrue(drip.wasRefused())
        let cut = Date().timeIntervalSince(start)
        XCTAssertGreaterThan(cut, 0.8, "cut before proxy_protocol_timeout")
        XCTAssertLessThan(cut, 3.5, "not cut near proxy_protocol_timeout")

        XCTAssertTrue(waitUntil(timeout: 2) { f.events("proxy_header_rejected") == bad.count + 1 }, f.stderr)
        for reason in ["no PROXY protocol signature", "v1 header longer than 107 bytes", "v2 header of 65551 bytes is longer than 4096",
                       "v1 header: expected 4 fields after TCP4, got 3", "closed after 16 bytes of an incomplete header",
                       "header incomplete after 14 bytes within proxy_protocol_timeout"] {
            XCTAssertTrue(f.stderr.contains(reason), "no log line with \"\(reason)\":\n\(f.stderr)")
        }
        // The established session still relays, and a good newcomer is served.
        try good.send("still")
        XCTAssertEqual(try good.receive(exactly: 5), Array("still".utf8))
        let late = try TestClient.connect(f.listenPort, from: "127.0.0.54")
        defer { late.close() }
        try late.send(Self.sig + [0x21, 0x11, 0x00, 0x0C, 192, 0, 2, 3, 192, 0, 2, 4, 0, 1, 0, 2])
        XCTAssertEqual(try late.banner(), "ok")
        XCTAssertEqual(b.accepted, 2, "a rejected client reached the server")
    }

    /// A listener closed by a reload or a graceful stop while clients are still sending their
    /// headers: those clients are finished under the listener they came through (served after a
    /// reload, refused while stopping, cut at the timeout) and ferry keeps running. The readers
    /// once held their listener unretained, and a header completed after it was freed crashed
    /// ferry (MALLOC_PERTURB_ makes the freed memory fault at once).
    func testHeadersPendingWhenTheirListenerClosesAreFinishedSafely() throws {
        let b = try backend("pp")
        for step in ["reload", "stop"] {
            let pp = try Net.freePort()
            let plain = "server { listen LISTEN; proxy_pass 127.0.0.1:\(b.port); proxy_timeout 30s; }"
            let f = try ferry(plain + " server { listen 127.0.0.1:\(pp) proxy_protocol; proxy_pass 127.0.0.1:\(b.port); proxy_protocol_timeout 1s; }",
                              main: "error_log stderr info; worker_shutdown_timeout 20s;", environment: ["MALLOC_PERTURB_": "165"])
            let live = try TestClient.connect(f.listenPort, timeout: 5)
            defer { live.close() }
            XCTAssertEqual(try live.banner(), "pp", step)
            let completing = try TestClient.connect(pp, timeout: 5)
            defer { completing.close() }
            let silent = try TestClient.connect(pp, timeout: 5)
            defer { silent.close() }
            try completing.send("PROXY TCP4 192.0.2.")
            try silent.send("PROXY TCP4 192.0.2.")
            if step == "reload" {
                try f.rewriteConfig(stream: plain, main: "error_log stderr info;")
                f.signal(SIGHUP)
                XCTAssertTrue(waitUntil(timeout: 3) { f.events("reload") == 1 }, f.stderr)
            } else {
                f.signal(SIGTERM)
                XCTAssertTrue(waitUntil(timeout: 3) { f.events("stopping") == 1 }, f.stderr)
            }
            try completing.send("1 192.0.2.2 1 2\r\n")
            // Accepted before the listener closed (or the stop began): served, as in nginx.
            XCTAssertEqual(try completing.banner(), "pp", "\(step): a header completed after its listener closed was not served")
            XCTAssertTrue(silent.wasRefused(), "\(step): an incomplete header was not cut at proxy_protocol_timeout")
            XCTAssertTrue(waitUntil(timeout: 2) { f.events("proxy_header_rejected") == 1 }, f.stderr)
            XCTAssertTrue(f.isRunning, "\(step): ferry died:\n\(f.stderr)")
            try live.send("x")
            XCTAssertEqual(try live.receive(exactly: 1), Array("x".utf8), "\(step): the established session was disturbed")
            if step == "stop" {
                live.close()
                completing.close()
                XCTAssertEqual(f.waitExit(timeout: 5), 0, f.stderr)
            }
        }
    }

    // MARK: HAProxy

    /// HAProxy with `accept-proxy` behind ferry understands ferry's v1 and v2 headers: it passes
    /// the original client on (its own `send-proxy` to a recording server) as ferry named it.
    func testHAProxyBehindFerryReadsTheOriginalClient() throws {
        for version in [1, 2] {
            let r = try recorder()
            let hp = try Net.freePort()
            _ = try haproxy("""
                frontend f
                    bind 127.0.0.1:\(hp) accept-proxy
                    default_backend b
                backend b
                    server s 127.0.0.1:\(r.port) send-proxy
                """, waitForPort: hp)
            let f = try ferry("server { listen LISTEN; proxy_pass 127.0.0.1:\(hp); proxy_protocol on; proxy_protocol_version \(version); }")
            let c = try TestClient.connect(f.listenPort, from: "127.0.0.61", timeout: 5)
            defer { c.close() }
            let port = c.localPort
            XCTAssertEqual(printable(try record(c, r, index: 0)),
                           printable(Array("PROXY TCP4 127.0.0.61 127.0.0.1 \(port) \(f.listenPort)\r\nhello".utf8)), "version \(version)")
        }
    }

    /// ferry behind HAProxy `send-proxy` / `send-proxy-v2` sees the original client: it names it
    /// in its own header to the server.
    func testFerryBehindHAProxySeesTheOriginalClient() throws {
        for option in ["send-proxy", "send-proxy-v2"] {
            let r = try recorder()
            let f = try ferry("server { listen LISTEN proxy_protocol; proxy_pass 127.0.0.1:\(r.port); proxy_protocol on; }")
            let hp = try Net.freePort()
            _ = try haproxy("""
                frontend f
                    bind 127.0.0.1:\(hp)
                    default_backend b
                backend b
                    server ferry 127.0.0.1:\(f.listenPort) \(option)
                """, waitForPort: hp)
            let c = try TestClient.connect(hp, from: "127.0.0.62", timeout: 5)
            defer { c.close() }
            let port = c.localPort
            XCTAssertEqual(printable(try record(c, r, index: 0)),
                           printable(Array("PROXY TCP4 127.0.0.62 127.0.0.1 \(port) \(hp)\r\nhello".utf8)), option)
        }
    }
}
