import XCTest
import Glibc

/// The log_format variables a `listen ... proxy_protocol` server logs, through the real binary:
/// what the PROXY header said, who sent it, the client in binary, and when a server that
/// speaks first (CCcam's banner) answered. 127.0.0.2 is a trusted sender, 127.0.0.3 is not.
final class LogVariablesTests: IntegrationCase {
    static let format = "$remote_addr:$remote_port|$proxy_protocol_addr:$proxy_protocol_port"
        + "|$proxy_protocol_server_addr:$proxy_protocol_server_port|$realip_remote_addr:$realip_remote_port"
        + "|$binary_remote_addr|$upstream_connect_time|$upstream_first_byte_time|$status"

    func testPROXYHeaderRealIPBinaryAddressAndFirstByteTime() throws {
        // The server waits 300 ms before its banner, so the first byte comes well after the connect.
        let server = try scripted { fd in
            Net.setTimeouts(fd, 3)
            usleep(300_000)
            _ = TestBackend.banner("late").withUnsafeBytes { send(fd, $0.baseAddress!, $0.count, Int32(MSG_NOSIGNAL)) }
            var buf = [UInt8](repeating: 0, count: 256)
            for _ in 0..<100 where recv(fd, &buf, buf.count, 0) > 0 {}
        }
        let dir = try temporaryDirectory(self)
        let log = "\(dir)/pp.log"
        let f = try ferry("""
            log_format pp '\(Self.format)';
            access_log \(log) pp buffer=4k flush=10ms;
            server { listen LISTEN proxy_protocol; set_real_ip_from 127.0.0.2; proxy_pass 127.0.0.1:\(server.port); }
            """)
        func lines() -> [String] {
            ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
        }
        /// One session from `source` that sends `header`, reads the banner and closes; its log line.
        func session(from source: String, header: String) throws -> (line: String, port: UInt16) {
            let before = lines().count
            let c = try TestClient.connect(f.listenPort, from: source)
            let port = c.localPort
            try c.send(header)
            XCTAssertEqual(TestBackend.name(fromBanner: try c.receive(exactly: TestBackend.bannerSize)), "late")
            c.close()
            XCTAssertTrue(waitUntil(timeout: 10) { lines().count > before }, "no log line in \(log): \(lines())")
            return (lines().last ?? "", port)
        }
        func fields(_ line: String) -> [String] { line.split(separator: "|", omittingEmptySubsequences: false).map(String.init) }
        func seconds(_ s: String) -> Double { Double(s) ?? -1 }

        // Trusted: the header's client is $remote_addr; the sender is $realip_remote_addr.
        // 192.0.2.55 in binary is C0 00 02 37, and 0x37 is "7".
        var (line, port) = try session(from: "127.0.0.2", header: "PROXY TCP4 192.0.2.55 198.51.100.1 4444 12000\r\n")
        var v = fields(line)
        XCTAssertEqual(Array(v[0..<5]), ["192.0.2.55:4444", "192.0.2.55:4444", "198.51.100.1:12000", "127.0.0.2:\(port)", #"\xC0\x00\x027"#], line)
        XCTAssertLessThan(seconds(v[5]), 0.25, line)                          // connect time: at once
        XCTAssertGreaterThanOrEqual(seconds(v[6]), 0.29, line)                // first byte: the banner's wait
        XCTAssertLessThan(seconds(v[6]), 3, line)
        XCTAssertEqual(v[7], "200", line)

        // Untrusted: the sender stays the client, yet the header's addresses are logged (nginx's
        // $proxy_protocol_* do not depend on set_real_ip_from); realip is the client itself.
        (line, port) = try session(from: "127.0.0.3", header: "PROXY TCP4 192.0.2.66 198.51.100.1 4445 12000\r\n")
        v = fields(line)
        XCTAssertEqual(Array(v[0..<5]), ["127.0.0.3:\(port)", "192.0.2.66:4445", "198.51.100.1:12000", "127.0.0.3:\(port)", #"\x7F\x00\x00\x03"#], line)

        // A header that names nobody (v1 UNKNOWN): nginx's "not found", written "-".
        (line, port) = try session(from: "127.0.0.2", header: "PROXY UNKNOWN\r\n")
        v = fields(line)
        XCTAssertEqual(Array(v[0..<5]), ["127.0.0.2:\(port)", "-:-", "-:-", "127.0.0.2:\(port)", #"\x7F\x00\x00\x02"#], line)
        XCTAssertGreaterThanOrEqual(seconds(v[6]), 0.29, line)
    }

    /// The variables nginx has that ferry will not fill are refused at -t by name, with why.
    func testNginxVersionAndSSLPrereadServerNameAreRefusedWithWhy() throws {
        let dir = try temporaryDirectory(self)
        for (name, why) in [("nginx_version", "ferry is not nginx"), ("ssl_preread_server_name", "ferry relays TLS without reading it")] {
            let path = "\(dir)/\(name).conf"
            try "stream { log_format x '$remote_addr $\(name)'; server { listen 127.0.0.1:1; proxy_pass 127.0.0.1:2; } }\n"
                .write(toFile: path, atomically: true, encoding: .utf8)
            let done = try FerryProcess.runToCompletion(["-t", "-c", path])
            let r = (status: done.status, output: done.stdout + done.stderr)
            XCTAssertNotEqual(r.status, 0)
            XCTAssertTrue(r.output.contains("variable \"$\(name)\" is not supported by ferry in \(path):1:"), r.output)
            XCTAssertTrue(r.output.contains(why), r.output)
            XCTAssertFalse(r.output.contains("unknown \"\(name)\" variable"), r.output)
        }
    }
}
