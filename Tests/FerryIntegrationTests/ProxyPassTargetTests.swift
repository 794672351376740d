import XCTest
import Glibc

/// Where a session goes when the config could be read two ways: where nginx sends it.
final class ProxyPassTargetTests: IntegrationCase {
    /// nginx matches an upstream block by the host part of proxy_pass, and a block has no port,
    /// so an upstream named "127.0.0.1:PORT" is never used: the session goes to 127.0.0.1:PORT.
    func testAHostAndPortGoesThereEvenBesideAnUpstreamOfThatName() throws {
        let direct = try backend("direct")
        let pool = try backend("pool")
        let f = try ferry("""
            upstream 127.0.0.1:\(direct.port) { server 127.0.0.1:\(pool.port); }
            server { listen LISTEN; proxy_pass 127.0.0.1:\(direct.port); }
            """, main: "admin_socket @DIR@/admin.sock;")
        XCTAssertEqual(try bannerThrough(f.listenPort), "direct")
        XCTAssertEqual(pool.accepted, 0)
        // The unusable block is left out: the admin socket has one backend of that name, the
        // address, so `set server` cannot land on the block by accident.
        let rows = try AdminSocket.command(f.adminPath, "show stat").split(separator: "\n")
            .filter { $0.hasPrefix("127.0.0.1:\(direct.port),") && !$0.contains(",FRONTEND,") }
        XCTAssertEqual(rows.count, 2, rows.joined(separator: "\n"))   // its server and its BACKEND line
        XCTAssertFalse(rows.contains { $0.contains("127.0.0.1:\(pool.port)") }, rows.joined(separator: "\n"))
    }
}
