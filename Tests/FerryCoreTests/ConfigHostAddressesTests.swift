import XCTest
@testable import FerryCore

/// A host name with several addresses: nginx uses every one (a peer per address for `server`
/// and proxy_pass, a socket per address for `listen`); ferry uses the first and says so.
/// "twin.example" resolves to 127.0.0.2 and 127.0.0.3 in the test environment.
final class ConfigHostAddressesTests: XCTestCase {
    func testEachPlaceThatResolvesWarnsNamingEveryAddressAndTheOneUsed() throws {
        let loaded = try load("""
            upstream u { server twin.example:13000; }
            server { listen twin.example:12000; proxy_pass u; }
            server { listen 12001; proxy_pass twin.example:13001; }
            metrics_listen twin.example:9100;
            """)
        XCTAssertEqual(loaded.diagnostics.map(\.description), [
            #"host "twin.example" has 2 addresses (127.0.0.2, 127.0.0.3); ferry uses only the first, 127.0.0.2 in t.conf:1:21; nginx would make a server of each; write one "server" per address to balance over all of them"#,
            #"host "twin.example" has 2 addresses (127.0.0.2, 127.0.0.3); ferry uses only the first, 127.0.0.2 in t.conf:2:17; nginx would listen on each; write one "listen" per address to accept on all of them"#,
            #"host "twin.example" has 2 addresses (127.0.0.2, 127.0.0.3); ferry uses only the first, 127.0.0.2 in t.conf:4:16; write the address itself to choose another"#,
            #"host "twin.example" has 2 addresses (127.0.0.2, 127.0.0.3); ferry uses only the first, 127.0.0.2 in t.conf:3:35; nginx would balance over all of them; write an upstream with one "server" per address"#,
        ])
        XCTAssertEqual(Set(loaded.diagnostics.map(\.level)), [.warn])
        XCTAssertEqual(loaded.config.upstreams[0].servers.map(\.address.endpoint), [.ipv4(host: "127.0.0.2", port: 13000)])
        XCTAssertEqual(loaded.config.listeners[0].listens.map(\.address.endpoint), [.ipv4(host: "127.0.0.2", port: 12000)])
    }

    func testANameWithOneAddressIsQuiet() throws {
        XCTAssertEqual(try load("server { listen localhost:12000; proxy_pass backend.example:1; }").diagnostics, [])
    }
}
