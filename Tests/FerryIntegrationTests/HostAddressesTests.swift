import XCTest
import Glibc

/// A host name with several addresses, resolved by ferry through an /etc/hosts of the test's
/// own: as in nginx, each address is a server of the upstream, a listen socket, and a server
/// of the upstream a `proxy_pass host:port` stands for.
final class HostAddressesTests: IntegrationCase {
    let hosts = "127.0.0.1 localhost\n127.0.0.2 twin.test\n127.0.0.3 twin.test\n"

    func testEveryAddressOfANameIsAServerAndAListenSocket() throws {
        try XCTSkipUnless(FerryInstance.canBindHosts, "needs root and mount namespaces to give ferry an /etc/hosts of its own")
        let b2 = TestBackend(name: "b2", listening: try Net.listen(host: "127.0.0.2"))
        addTeardownBlock { b2.stop() }
        let b3 = TestBackend(name: "b3", listening: try Net.listen(host: "127.0.0.3", port: b2.port))
        addTeardownBlock { b3.stop() }
        let second = try Net.freePort()
        let f = try FerryInstance(stream: """
            upstream u { server twin.test:\(b2.port); }
            server { listen LISTEN; proxy_pass u; proxy_connect_timeout 1s; }
            server { listen twin.test:\(second); proxy_pass twin.test:\(b2.port); proxy_connect_timeout 1s; }
            """, main: "admin_socket @DIR@/admin.sock;", hosts: hosts)
        addTeardownBlock { f.stop(timeout: 2) }

        // One server line, two servers in round robin.
        XCTAssertEqual(try (0..<6).map { _ in try bannerThrough(f.listenPort) }, ["b2", "b3", "b2", "b3", "b2", "b3"], f.stderr)
        // A socket on each address of the listen name; the proxy_pass name balances over both.
        for host in ["127.0.0.2", "127.0.0.3"] {
            let got = try (0..<2).map { _ in
                let c = TestClient(fd: try Net.connectNonBlocking(to: second, host: host, timeout: 3), timeout: 3)
                defer { c.close() }
                return try c.banner()
            }
            XCTAssertEqual(Set(got), ["b2", "b3"], "through \(host):\(second)")
        }
        // Each server answers to its own address on the admin socket.
        XCTAssertEqual(try AdminSocket.command(f.adminPath, "set server u/127.0.0.3:\(b2.port) state maint"), "\n")
        XCTAssertEqual(try (0..<4).map { _ in try bannerThrough(f.listenPort) }, Array(repeating: "b2", count: 4))
        XCTAssertEqual(try AdminSocket.command(f.adminPath, "set server u/twin.test:\(b2.port) state ready"), "No such server.\n\n")
    }
}
