import XCTest
import Glibc

/// The same upstream in real nginx and in ferry, the same sessions through each: which server
/// each session lands on must be the same, letter for letter.
final class BalancingNginxDiffTests: IntegrationCase {
    /// A server that refused a connect is out for fail_timeout, then eased back in: nginx lowers
    /// its "effective weight" by weight/max_fails per failure and gives one unit back per
    /// selection, so with weights 3:1 the other server takes two more sessions before the
    /// recovered one gets its trial. (Before ferry followed this, it sent the trial at once.)
    func testRecoveredServerIsEasedInAsNginxDoes() throws {
        guard NginxInstance.available else { throw XCTSkip("nginx with the stream module is not installed") }
        let dir = try temporaryDirectory(self, "ferry-nginx-rr")
        let ports = try distinctFreePorts(2)
        let (nginxPort, aPort) = (ports[0], ports[1])
        let b = try backend("b")
        func stream(_ listen: String) -> String {
            """
            upstream u {
                server 127.0.0.1:\(aPort) weight=3 max_fails=1 fail_timeout=1s;
                server 127.0.0.1:\(b.port) max_fails=0;
            }
            server { listen \(listen); proxy_pass u; proxy_connect_timeout 2s; }
            """
        }
        let nginx = try NginxInstance(stream: stream("127.0.0.1:\(nginxPort)"), prefix: dir, ports: [nginxPort])
        defer { nginx.stop() }
        let ferryPort = try ferry(stream("LISTEN")).listenPort

        // a is chosen first (weight 3), refuses, and the session is retried on b.
        XCTAssertEqual(try bannerThrough(nginxPort), "b", "nginx")
        XCTAssertEqual(try bannerThrough(ferryPort), "b", "ferry")
        let a = try TestBackend(name: "a", port: aPort)
        defer { a.stop() }
        // nginx keeps time in whole seconds, so "more than 1 s after the failure" can take 2 s.
        usleep(2_100_000)
        func sequence(_ port: UInt16) throws -> String {
            var out = ""
            for _ in 0..<12 { out += try bannerThrough(port) }
            return out
        }
        let fromNginx = try sequence(nginxPort)
        let fromFerry = try sequence(ferryPort)
        XCTAssertEqual(fromNginx, "bb" + "aab" + "aaab" + "aaa", "nginx's own sequence (the test's premise)")
        XCTAssertEqual(fromFerry, fromNginx)
    }
}
