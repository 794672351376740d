import XCTest
@testable import FerryCore

/// What one connection-log line costs to make and buffer, without sockets. Prints the figure;
/// run with FERRY_PERF=1 (meaningful in a release build: swift test -c release).
final class ConnectionLogCostTests: XCTestCase {
    func testCostPerLine() throws {
        guard getenv("FERRY_PERF") != nil else { throw XCTSkip("set FERRY_PERF=1 to measure") }
        var u = UpstreamConfig(name: "pool", location: SourceLocation(file: "", line: 0, column: 0))
        u.servers = [UpstreamServerConfig(address: ServerAddress(written: "127.0.0.1:19001", endpoint: .ipv4(host: "127.0.0.1", port: 19001)),
                                          name: "b1", location: SourceLocation(file: "", line: 0, column: 0))]
        let upstream = Upstream(u, seed: 1)
        var log = AttemptLog()
        log.begin(peer: 0, offset: 0)
        log.finish(.connected, offset: 120_000)
        let path = "/tmp/ferry-logcost-\(getpid()).log"
        defer { unlink(path) }
        let file = try LogFile(path: path, bufferSize: nil, flushInterval: nil, loop: nil)
        guard case .success(let template) = LogTemplate.compile("$remote_addr [$time_local] $protocol $status $bytes_sent $bytes_received $session_time \"$upstream_addr\" \"$upstream_bytes_sent\" \"$upstream_bytes_received\" \"$upstream_connect_time\"", escape: .default) else { return XCTFail() }
        let n = 200_000
        for (name, render) in [("json", { (r: ConnectionRecord) in r.json }), ("nginx", { (r: ConnectionRecord) in template.render(r) })] {
            var parts = (record: UInt64(0), render: UInt64(0), append: UInt64(0))
            for i in 0..<n {
                let t0 = MonotonicClock.now()
                let r = ConnectionRecord(timeMillis: WallClock.nowMilliseconds(), listener: "127.0.0.1:12000", localHost: "127.0.0.1", localPort: "12000",
                                         client: ClientKey(ipv4: 127, 0, 0, UInt8(i & 0xFF)), clientPort: UInt16(i & 0x7FFF),
                                         upstream: upstream, attempts: log, sessionNanos: UInt64(i) * 1000, bytesFromClient: 200, bytesToClient: 56,
                                         bytesWrittenToServer: 200, bytesWrittenToClient: 56,
                                         reason: .clientClosed, connection: UInt64(i))
                let t1 = MonotonicClock.now()
                let line = render(r)
                let t2 = MonotonicClock.now()
                file.append(line)
                let t3 = MonotonicClock.now()
                parts.record += t1 - t0; parts.render += t2 - t1; parts.append += t3 - t2
            }
            print(String(format: "%@: record %.2f us, render %.2f us, append %.2f us per line (dropped %d)", name,
                         Double(parts.record) / Double(n) / 1000, Double(parts.render) / Double(n) / 1000, Double(parts.append) / Double(n) / 1000, file.dropped))
        }
        file.close()
    }
}
