import XCTest
@testable import FerryCore

/// nginx `log_format` compilation, escaping and the values of each variable for a known record.
final class LogTemplateTests: XCTestCase {
    func upstream() -> Upstream {
        var u = UpstreamConfig(name: "pool", location: nowhere)
        u.servers = [upstreamServer(v4("127.0.0.1:7001", "127.0.0.1", 7001)) { $0.name = "a" },
                     upstreamServer(v4("127.0.0.1:7002", "127.0.0.1", 7002)) { $0.name = "b" }]
        return Upstream(u, seed: 1)
    }

    /// A session that was refused by server a after 1.5 ms, then connected to b in 2.25 ms,
    /// and ran 3.0045 s in total.
    func record(_ reason: SessionEnd = .clientClosed, attempts: Bool = true) -> ConnectionRecord {
        var log = AttemptLog()
        if attempts {
            log.begin(peer: 0, offset: 0)
            log.finish(.refused, offset: 1_500_000)
            log.begin(peer: 1, offset: 1_500_000)
            log.finish(.connected, offset: 3_750_000)
        }
        return ConnectionRecord(timeMillis: 1_795_313_618_273, listener: "127.0.0.1:12000", localHost: "127.0.0.1", localPort: "12000",
                                client: ClientKey(ipv4: 127, 0, 0, 9), clientPort: 50123, upstream: upstream(), attempts: log,
                                sessionNanos: 3_004_500_000, bytesFromClient: 300, bytesToClient: 4096,
                                // Writes differ from reads: a 44-byte PROXY header went out, 96 bytes were dropped.
                                bytesWrittenToServer: 344, bytesWrittenToClient: 4000, reason: reason, connection: 17)
    }

    func render(_ format: String, _ escape: LogFormatConfig.Escape = .default, _ r: ConnectionRecord) -> String {
        guard case .success(let t) = LogTemplate.compile(format, escape: escape) else { XCTFail("does not compile: \(format)"); return "" }
        return t.render(r)
    }

    func testVariablesForASessionThatRetried() {
        setenv("TZ", "UTC", 1); tzset()
        let r = record()
        let cases: [(String, String)] = [
            ("$remote_addr:$remote_port", "127.0.0.9:50123"),
            ("$server_addr:$server_port", "127.0.0.1:12000"),
            ("$upstream_addr", "127.0.0.1:7001, 127.0.0.1:7002"),
            ("$upstream_connect_time", "-, 0.002"),
            ("$upstream_bytes_sent|$upstream_bytes_received", "0, 344|0, 4096"),
            ("$upstream_session_time", "0.001, 3.003"),
            ("$bytes_sent $bytes_received $session_time $status", "4000 300 3.004 200"),
            ("$time_iso8601", "2026-11-22T02:13:38+00:00"),
            ("[$time_local]", "[22/Nov/2026:02:13:38 +0000]"),
            ("$msec", "1795313618.273"),
            ("$connection $protocol", "17 TCP"),
            ("${status}x$status.", "200x200."),
            ("no variables", "no variables"),
        ]
        for (format, expected) in cases {
            XCTAssertEqual(render(format, .default, r), expected, format)
        }
    }

    func testValuesThatDoNotExistAreADashOrNothingInJSON() {
        let r = record(.denied, attempts: false)
        XCTAssertEqual(render("$upstream_addr|$upstream_connect_time|$status", .default, r), "-|-|403")
        XCTAssertEqual(render("$upstream_addr|$upstream_connect_time|$status", .none, r), "-|-|403")
        XCTAssertEqual(render(#"{"u":"$upstream_addr","s":"$status"}"#, .json, r), #"{"u":"","s":"403"}"#)
    }

    func testEscaping() {
        var out = ""
        LogTemplate.append("a\"b\\c\n\u{01}é~", escape: .default, to: &out)
        XCTAssertEqual(out, #"a\x22b\x5Cc\x0A\x01\xC3\xA9~"#)
        out = ""
        LogTemplate.append("a\"b\\c\n\t\u{08}\u{0C}\u{01}é", escape: .json, to: &out)
        XCTAssertEqual(out, #"a\"b\\c\n\t\b\f\u0001é"#)
        out = ""
        LogTemplate.append("a\"b\n", escape: .none, to: &out)
        XCTAssertEqual(out, "a\"b\n")
    }

    func testCompileErrors() {
        XCTAssertEqual(LogTemplate.compile("$nope", escape: .default), .failure(.unknownVariable("nope")))
        XCTAssertEqual(LogTemplate.compile("a $", escape: .default), .failure(.emptyName))
        XCTAssertEqual(LogTemplate.compile("${status", escape: .default), .failure(.unclosedBrace))
        XCTAssertEqual(try LogTemplate.compile("$status-$msec", escape: .json).get().variables, [.status, .msec])
    }

    func origin(replacesSender: Bool, source: SocketAddress = SocketAddress(ipv4: "203.0.113.7", port: 40001)!,
                destination: SocketAddress = SocketAddress(ipv4: "198.51.100.1", port: 443)!) -> ClientOrigin {
        ClientOrigin(source: source, destination: destination, sender: SocketAddress(ipv4: "127.0.0.5", port: 5555)!,
                     replacesSender: replacesSender)
    }

    static let headerFormat = "$remote_addr:$remote_port|$proxy_protocol_addr:$proxy_protocol_port|"
        + "$proxy_protocol_server_addr:$proxy_protocol_server_port|$realip_remote_addr:$realip_remote_port"

    func testPROXYHeaderAndRealIPVariables() {
        // A trusted header replaced the sender 127.0.0.5:5555: the record's client is the header's source.
        var r = record()
        r.client = ClientKey(ipv4: 203, 0, 113, 7); r.clientPort = 40001
        r.origin = origin(replacesSender: true)
        XCTAssertEqual(render(LogTemplateTests.headerFormat, .default, r),
                       "203.0.113.7:40001|203.0.113.7:40001|198.51.100.1:443|127.0.0.5:5555")
        // An untrusted sender stays the client; the header's addresses are still logged (nginx's
        // $proxy_protocol_* do not depend on set_real_ip_from), and realip is the client.
        r = record()
        r.origin = origin(replacesSender: false)
        XCTAssertEqual(render(LogTemplateTests.headerFormat, .default, r),
                       "127.0.0.9:50123|203.0.113.7:40001|198.51.100.1:443|127.0.0.9:50123")
        // No header (or v1 UNKNOWN, v2 LOCAL): nginx's "not found", "-" or nothing in JSON.
        r = record()
        XCTAssertEqual(render(LogTemplateTests.headerFormat, .default, r), "127.0.0.9:50123|-:-|-:-|127.0.0.9:50123")
        XCTAssertEqual(render(#"{"pp":"$proxy_protocol_addr","ppp":"$proxy_protocol_port","rr":"$realip_remote_addr"}"#, .json, r),
                       #"{"pp":"","ppp":"","rr":"127.0.0.9"}"#)
        // A port of 0 in the header is an empty value, not "-"; IPv6 prints without brackets.
        r.origin = origin(replacesSender: false, source: SocketAddress(ipv6: "2001:db8::7", port: 0)!,
                          destination: SocketAddress(ipv6: "2001:db8::1", port: 0)!)
        XCTAssertEqual(render("$proxy_protocol_addr|$proxy_protocol_port|$proxy_protocol_server_addr|$proxy_protocol_server_port", .default, r),
                       "2001:db8::7||2001:db8::1|")
        // A Unix-socket client: realip as remote_addr, with an empty port.
        r = record()
        r.client = .none; r.clientPort = nil
        XCTAssertEqual(render("$realip_remote_addr:$realip_remote_port|$binary_remote_addr", .default, r), "unix::|unix:")
    }

    func testBinaryRemoteAddrIsFourOrSixteenBytesEscapedAsTheFormatSays() {
        var r = record()
        // 10.34.92.127: a newline, a quote, a backslash and DEL.
        r.client = ClientKey(ipv4: 10, 34, 92, 127)
        XCTAssertEqual(render("[$binary_remote_addr]", .default, r), #"[\x0A\x22\x5C\x7F]"#)
        func bytes(_ format: String, _ escape: LogFormatConfig.Escape) -> [UInt8] {
            guard case .success(let t) = LogTemplate.compile(format, escape: escape) else { XCTFail(format); return [] }
            var b = LineBuffer()
            t.render(r, into: &b)
            return b.bytes
        }
        XCTAssertEqual(bytes("[$binary_remote_addr]", .json), Array(#"[\n\"\\"#.utf8) + [0x7F, UInt8(ascii: "]")])
        XCTAssertEqual(bytes("[$binary_remote_addr]", .none), [UInt8(ascii: "["), 10, 34, 92, 127, UInt8(ascii: "]")])
        // Bytes above 0x7F: \xHH by default, raw in JSON (as nginx writes them).
        r.client = ClientKey(ipv4: 65, 66, 67, 200)
        XCTAssertEqual(render("$binary_remote_addr", .default, r), #"ABC\xC8"#)
        XCTAssertEqual(bytes("$binary_remote_addr", .json), [65, 66, 67, 200])
        r.client = ClientKey(high: 0x2001_0db8_0000_0000, low: 0x41)
        XCTAssertEqual(render("$binary_remote_addr", .default, r), #" \x01\x0D\xB8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00A"#)
    }

    func testUpstreamFirstByteTimeIsPerAttemptFromTheAttemptsStart() {
        // Connected to b at 1.5 ms (after a refusal by a); b's first byte came 13.75 ms into the session.
        var r = record()
        XCTAssertEqual(render("$upstream_first_byte_time", .default, r), "-, -")   // the server never sent
        r.attempts.firstByte(offset: 13_750_000)
        r.attempts.firstByte(offset: 99_000_000)   // only the first read counts
        XCTAssertEqual(render("$upstream_first_byte_time|$upstream_connect_time", .default, r), "-, 0.012|-, 0.002")
        XCTAssertEqual(render("$upstream_first_byte_time", .default, record(.denied, attempts: false)), "-")
        XCTAssertEqual(render("[$upstream_first_byte_time]", .json, record(.denied, attempts: false)), "[]")
        XCTAssertEqual(render("$upstream_first_byte_time", .default, record(.noServer, attempts: false)), "-")
    }

    func testVariablesNginxHasAndFerryRefusesSayWhy() {
        for name in ["nginx_version", "ssl_preread_server_name"] {
            guard case .failure(.unsupportedVariable(let n, let why)) = LogTemplate.compile("$remote_addr ${\(name)}", escape: .default) else {
                XCTFail(name); continue
            }
            XCTAssertEqual(n, name)
            XCTAssertFalse(why.isEmpty)
        }
    }

    func testFerryJSONRecordHasEveryKey() throws {
        let r = record(.serverReset)
        let obj = try JSONSerialization.jsonObject(with: Data(r.json.utf8)) as! [String: Any]
        XCTAssertEqual(Set(obj.keys), ["time", "listener", "client", "client_port", "upstream", "server", "server_address", "tried",
                                       "connect_ms", "duration_ms", "bytes_from_client", "bytes_to_client", "end", "status", "connection"])
        XCTAssertEqual(obj["time"] as? String, "2026-11-22T02:13:38.273+00:00")
        XCTAssertEqual(obj["server"] as? String, "b")
        XCTAssertEqual(obj["server_address"] as? String, "127.0.0.1:7002")
        XCTAssertEqual(obj["connect_ms"] as? Double, 2.25)
        XCTAssertEqual(obj["duration_ms"] as? Double, 3004.5)
        XCTAssertEqual(obj["end"] as? String, "server_reset")
        XCTAssertEqual(obj["status"] as? Int, 200)
        let tried = obj["tried"] as! [[String: Any]]
        XCTAssertEqual(tried.map { $0["outcome"] as? String }, ["refused", "connected"])
        XCTAssertEqual(tried.map { $0["ms"] as? Double }, [1.5, 2.25])
    }

    func testLineBufferNumbersAndQuoting() {
        var b = LineBuffer()
        for n: UInt64 in [0, 7, 10, 65535, 18_446_744_073_709_551_615] { b.append(number: n); b.append(" ") }
        b.append(fixed: 0, places: 3); b.append(" ")
        b.append(fixed: 1_795_313_618_273, places: 3); b.append(" ")
        b.append(fixed: 5, places: 3); b.append(" ")
        b.append(jsonQuoted: "plain"); b.append(jsonQuoted: "q\"\n")
        b.append(client: ClientKey(ipv4: 10, 200, 0, 255)); b.append(" ")
        b.append(client: ClientKey(high: 0x2001_0db8_0000_0000, low: 1))
        XCTAssertEqual(b.string, #"0 7 10 65535 18446744073709551615 0.000 1795313618.273 0.005 "plain""q\"\n"10.200.0.255 2001:db8::1"#)
        var t = LineBuffer()
        Timestamp.write(milliseconds: 1_795_313_618_273, into: &t)
        XCTAssertEqual(t.string, Timestamp.iso8601(milliseconds: 1_795_313_618_273))
        t.reset()
        Timestamp.write(milliseconds: 1_795_313_619_004, into: &t)
        XCTAssertEqual(t.string, "2026-11-22T02:13:39.004+00:00")
    }

    func testLineBufferGrowsAndCopiesAreIndependent() {
        var a = LineBuffer(capacity: 16)
        for i in 0..<100 { a.append(number: UInt64(i)); a.append(byte: UInt8(ascii: ",")) }
        let expected = (0..<100).map { "\($0)," }.joined()
        XCTAssertEqual(a.string, expected)   // grew from 16 bytes to hold 290
        var b = a
        b.append("tail")
        a.reset()
        a.append(jsonQuoted: "x\\y")
        XCTAssertEqual(b.string, expected + "tail")
        XCTAssertEqual(a.string, #""x\\y""#)
        XCTAssertEqual(a.count, 6)
        // A copy that resets, and a copy that grows, each leave the other's bytes alone.
        var d = LineBuffer(capacity: 16)
        d.append("sixteen bytes!!!")
        var e = d
        d.reset()
        XCTAssertEqual(e.string, "sixteen bytes!!!")
        XCTAssertEqual(d.count, 0)
        d.append("d")
        let f = e
        e.append(" and then some more than the capacity")
        XCTAssertEqual(f.string, "sixteen bytes!!!")
        XCTAssertEqual(e.string, "sixteen bytes!!! and then some more than the capacity")
        XCTAssertEqual(d.string, "d")
        var c = LineBuffer()
        c.append("caf\u{e9} \u{1}", escape: .default)
        c.append(" ")
        c.append("caf\u{e9}", escape: .none)
        XCTAssertEqual(c.bytes, Array(#"caf\xC3\xA9 \x01 "#.utf8) + Array("caf\u{e9}".utf8))
    }

    func testAttemptLogSpillsPastTwoAndStaysSmall() {
        var log = AttemptLog()
        for p in 0..<5 {
            log.begin(peer: p, offset: UInt64(p) * 1_000_000)
            log.finish(p == 4 ? .connected : .timedOut, offset: UInt64(p + 1) * 1_000_000)
        }
        XCTAssertEqual(log.all.map(\.peer), [0, 1, 2, 3, 4])
        XCTAssertEqual(log.all.map(\.durationMicros), [1000, 1000, 1000, 1000, 1000])
        XCTAssertEqual(log.connected?.peer, 4)
        XCTAssertLessThanOrEqual(MemoryLayout<AttemptLog>.size, 48)
        // A log is a value: a copy keeps its attempts when the original changes its spill.
        let copy = log
        log.begin(peer: 5, offset: 9_000_000)
        log.finish(.refused, offset: 9_500_000)
        XCTAssertEqual(copy.all.map(\.peer), [0, 1, 2, 3, 4])
        XCTAssertEqual(copy.all.last?.outcome, .connected)
        XCTAssertEqual(log.all.map(\.peer), [0, 1, 2, 3, 4, 5])
        XCTAssertEqual(log.all.last?.outcome, .refused)
    }
}
