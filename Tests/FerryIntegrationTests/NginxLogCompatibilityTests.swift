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
}
