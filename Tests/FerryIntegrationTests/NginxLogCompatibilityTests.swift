import XCTest
import Glibc

/// The same `log_format ... escape=json` in real nginx and in ferry, the same sessions through
/// each: every field must match exactly, or (times, ports, serials) have the same shape.
final class NginxLogCompatibilityTests: IntegrationCase {
    static let format = #"""
        log_format compat escape=json '{"remote_addr":"$remote_addr","remote_port":"$remote_port",'
            '"server_addr":"$server_addr","server_port":"$server_port","upstream_addr":"$upstream_addr",'
            '"bytes_sent":"$bytes_sent","bytes_received":"$bytes_received","session_time":"$session_time",'
            '"status":"$status","time_iso8601":"$time_iso8601","time_local":"$time_local","msec":"$msec",'
            '"connection":"$connection","upstream_connect_time":"$upstream_connect_time",'
            '"upstream_bytes_sent":"$upstream_bytes_sent","upstream_bytes_received":"$upstream_bytes_received",'
            '"upstream_session_time":"$upstream_session_time","protocol":"$protocol"}';
        """#

    enum Scenario: String, CaseIterable { case relayed, retried, connectFailed, noLiveUpstream, denied }

    /// The stream block for one of the two programs, listeners on `ports` in Scenario order.
    func stream(log: String, ports: [UInt16], backend: UInt16, refused: UInt16) -> String {
        """
        \(Self.format)
        access_log \(log) compat;
        upstream retry { server 127.0.0.1:\(refused); server 127.0.0.1:\(backend); }
        upstream none { server 127.0.0.1:\(backend) down; }
        server { listen 127.0.0.1:\(ports[0]); proxy_pass 127.0.0.1:\(backend); }
        server { listen 127.0.0.1:\(ports[1]); proxy_pass retry; }
        server { listen 127.0.0.1:\(ports[2]); proxy_pass 127.0.0.1:\(refused); }
        server { listen 127.0.0.1:\(ports[3]); proxy_pass none; }
        server { listen 127.0.0.1:\(ports[4]); deny all; proxy_pass 127.0.0.1:\(backend); }
        """
    }

    func run(_ scenario: Scenario, port: UInt16) throws {
        let c = try TestClient.connect(port)
        defer { c.close() }
        switch scenario {
        case .relayed, .retried:
            XCTAssertEqual(try c.banner(), "b1")
            try c.send("hello")
            XCTAssertEqual(try c.receive(exactly: 5), Array("hello".utf8))
            usleep(20_000)
        case .connectFailed, .noLiveUpstream, .denied:
            XCTAssertEqual(c.waitForEnd(), .eof, "\(scenario) on \(port)")
        }
    }

    func testNginxFormatGivesTheFieldsNginxGives() throws {
        guard NginxInstance.available else { throw XCTSkip("nginx with the stream module is not installed") }
        let dir = try temporaryDirectory(self, "ferry-nginx-compat")
        let b = try backend("b1", .banner)
        let n = Scenario.allCases.count
        let ports = try distinctFreePorts(2 * n + 1)
        let refused = ports[2 * n]
        let nginxPorts = Array(ports[0..<n]), ferryPorts = Array(ports[n..<2 * n])
        let nginxLog = JSONLinesFile(path: dir + "/nginx.log"), ferryLog = JSONLinesFile(path: dir + "/ferry.log")
        let nginx = try NginxInstance(stream: stream(log: nginxLog.path, ports: nginxPorts, backend: b.port, refused: refused),
                                      prefix: dir, ports: nginxPorts)
        defer { nginx.stop() }
        // ferry gets the same block; its own listener (LISTEN) is the relayed scenario's twin.
        _ = try ferry(stream(log: ferryLog.path, ports: ferryPorts, backend: b.port, refused: refused)
                      + "\nserver { listen LISTEN; proxy_pass 127.0.0.1:\(b.port); access_log off; }")
        XCTAssertTrue(waitUntil(timeout: 5) { ferryPorts.allSatisfy(FerryInstance.isListening) })

        for (i, s) in Scenario.allCases.enumerated() {
            try run(s, port: nginxPorts[i])
            try run(s, port: ferryPorts[i])
        }
        let nl = nginxLog.waitFor(n)
        let f = ferryLog.waitFor(n)
        // Exactly one line per scenario on each side: an extra line (a session logged twice, a
        // listener with access_log off logging) is a failure, not a reason to skip the comparison.
        XCTAssertEqual(nl.count, n, "nginx lines:\n\(nginxLog.text)")
        XCTAssertEqual(f.count, n, "ferry lines:\n\(ferryLog.text)")
        guard nl.count == n, f.count == n else { return }

        let exact = ["remote_addr", "server_addr", "bytes_sent", "bytes_received", "status", "upstream_bytes_sent",
                     "upstream_bytes_received", "protocol"]
        let shapes: [String: String] = [
            "remote_port": #"^\d+$"#, "connection": #"^\d+$"#, "session_time": #"^\d+\.\d{3}$"#, "msec": #"^\d{10}\.\d{3}$"#,
            "time_iso8601": #"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d$"#,
            "time_local": #"^\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}$"#,
        ]
        for (i, s) in Scenario.allCases.enumerated() {
            let ng = nl.first { $0["server_port"] as? String == String(nginxPorts[i]) } ?? [:]
            let fe = f.first { $0["server_port"] as? String == String(ferryPorts[i]) } ?? [:]
            XCTAssertEqual(ng.count, 18, "\(s): nginx line \(nginxLog.text)")
            XCTAssertEqual(Set(fe.keys), Set(ng.keys), "\(s)")
            for k in exact { XCTAssertEqual(fe[k] as? String, ng[k] as? String, "\(s): \(k)") }
            // upstream_addr names the same servers; for "no live upstreams" nginx names the upstream.
            XCTAssertEqual(fe["upstream_addr"] as? String, ng["upstream_addr"] as? String, "\(s): upstream_addr")
            for (k, pattern) in shapes {
                for (who, line) in [("nginx", ng), ("ferry", fe)] {
                    let v = line[k] as? String ?? "<missing>"
                    XCTAssertNotNil(v.range(of: pattern, options: .regularExpression), "\(s): \(who) \(k) = \(v)")
                }
            }
            // Per-attempt lists: same number of entries, "-" in the same places.
            for k in ["upstream_connect_time", "upstream_session_time"] {
                let nv = (ng[k] as? String ?? "").components(separatedBy: ", ")
                let fv = (fe[k] as? String ?? "").components(separatedBy: ", ")
                XCTAssertEqual(fv.map { $0 == "-" || $0.isEmpty ? $0 : "t" }, nv.map { $0 == "-" || $0.isEmpty ? $0 : "t" }, "\(s): \(k) ferry \(fv) nginx \(nv)")
                for v in fv where v != "-" && !v.isEmpty {
                    XCTAssertNotNil(v.range(of: #"^\d+\.\d{3}$"#, options: .regularExpression), "\(s): \(k) = \(v)")
                }
            }
            let fm = Double(fe["msec"] as? String ?? "") ?? 0, nm = Double(ng["msec"] as? String ?? "") ?? 0
            XCTAssertLessThan(abs(fm - nm), 60, "\(s): both logged now")
        }
    }

    /// nginx's $bytes_sent and $upstream_bytes_sent count what was written, not what was read:
    /// the PROXY header sent to the server counts, and bytes still held when the client resets
    /// do not count as sent to it. Both programs are held to the same rules, each measured on
    /// its own sessions (header lengths and buffer sizes differ).
    func testByteCountsAreWhatWasWrittenAsInNginx() throws {
        guard NginxInstance.available else { throw XCTSkip("nginx with the stream module is not installed") }
        let dir = try temporaryDirectory(self, "ferry-nginx-bytes")
        let echo = try backend("e", .echo)
        let flooded = Box(false)
        let flooder = try scripted { fd in
            if RelayRecoveryTests.fill(fd) > 0 { flooded.value = true }
            usleep(1_500_000)   // keeps the connection open while the client resets
        }
        func stream(_ log: String, _ ports: (String, String)) -> String {
            """
            log_format bytes '$bytes_sent $bytes_received $upstream_bytes_sent $upstream_bytes_received';
            access_log \(log) bytes;
            server { listen \(ports.0); proxy_pass 127.0.0.1:\(echo.port); proxy_protocol on; }
            server { listen \(ports.1); proxy_pass 127.0.0.1:\(flooder.port); }
            """
        }
        let ports = try distinctFreePorts(3)
        let nginx = try NginxInstance(stream: stream(dir + "/nginx.log", ("127.0.0.1:\(ports[0])", "127.0.0.1:\(ports[1])")),
                                      prefix: dir, ports: [ports[0], ports[1]])
        defer { nginx.stop() }
        let f = try ferry(stream(dir + "/ferry.log", ("127.0.0.1:\(ports[2])", "LISTEN")))
        for (name, proxied, flooding, log) in [("nginx", ports[0], ports[1], dir + "/nginx.log"),
                                               ("ferry", ports[2], f.listenPort, dir + "/ferry.log")] {
            // 1. A PROXY header goes out before "hello"; the echo brings both back.
            let c = try TestClient.connect(proxied)
            try c.send("hello")
            var header: [UInt8] = []
            while header.last != UInt8(ascii: "\n") && header.count < 120 { header += try c.receive(exactly: 1) }
            XCTAssertEqual(try c.receive(exactly: 5), Array("hello".utf8), name)
            c.close()
            let out = header.count + 5
            // 2. The client stops reading, the server fills the path, the client resets.
            flooded.value = false
            let d = try TestClient(fd: RelayRecoveryTests.smallReceiveBufferSocket(to: flooding), timeout: 5)
            XCTAssertTrue(waitUntil(timeout: 8) { flooded.value }, "\(name): the server could not fill the path")
            var readable: Int32 = 0
            _ = ioctl(d.fd, UInt(FIONREAD), &readable)
            d.reset()

            var lines: [[UInt64]] = []
            XCTAssertTrue(waitUntil(timeout: 5) {
                let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
                lines = text.split(separator: "\n").map { $0.split(separator: " ").compactMap { UInt64($0) } }
                return lines.count >= 2
            }, "\(name): two log lines expected, got \(lines)")
            guard lines.count == 2, lines.allSatisfy({ $0.count == 4 }) else { XCTFail("\(name): \(lines)"); continue }
            let proxy = lines.first { $0[1] == 5 } ?? [], flood = lines.first { $0[1] == 0 } ?? []
            // $bytes_sent $bytes_received $upstream_bytes_sent $upstream_bytes_received
            XCTAssertEqual(proxy, [UInt64(out), 5, UInt64(out), UInt64(out)], "\(name): the PROXY header counts as written to the server")
            guard flood.count == 4 else { XCTFail("\(name): no line for the reset session: \(lines)"); continue }
            XCTAssertGreaterThanOrEqual(flood[0], UInt64(readable), "\(name): the client could read more than was counted as sent")
            XCTAssertLessThan(flood[0], flood[3], "\(name): bytes held when the client reset counted as sent to it")
            XCTAssertEqual(flood[2], 0, name)
        }
    }
}
