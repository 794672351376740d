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
            """)
        XCTAssertEqual(try bannerThrough(f.listenPort), "direct")
        XCTAssertEqual(pool.accepted, 0)
    }
}
