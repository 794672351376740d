import XCTest
@testable import FerryCore

/// Which upstream or address a `proxy_pass` names: the same one nginx's ngx_stream_upstream_add
/// picks from the same file, or the file is refused (ConfigErrorTests has those messages).
final class ConfigProxyPassTests: XCTestCase {
    private func target(_ text: String) throws -> ProxyTarget {
        try load(text).config.listeners[0].proxyPass
    }

    func testAHostAndPortIsAnAddressEvenBesideAnUpstreamOfThatName() throws {
        // nginx matches upstream blocks by the host part only ("localhost"), so this block is
        // never used and the sessions go to localhost:13000 itself.
        let loaded = try load("upstream localhost:13000 { server 127.0.0.1:13001; }\nserver { listen 80; proxy_pass localhost:13000; }")
        XCTAssertEqual(loaded.config.listeners[0].proxyPass, .address(v4("localhost:13000", "127.0.0.1", 13000)))
        XCTAssertEqual(loaded.diagnostics.map(\.description), [
            #"upstream "localhost:13000" cannot be used: "proxy_pass localhost:13000;" means host "localhost" port 13000, as in nginx; rename the upstream without ":" in t.conf:1:10"#,
        ])
        XCTAssertEqual(loaded.diagnostics.map(\.level), [.warn])
    }

    func testAnUpstreamIsFoundWithoutRegardToCase() throws {
        XCTAssertEqual(try target("upstream Cccam { server 127.0.0.1:1; }\nserver { listen 80; proxy_pass cCCAM; }"), .upstream("Cccam"))
    }

    func testANameWithoutPortIsTheUpstreamWhereverItIsWritten() throws {
        XCTAssertEqual(try target("server { listen 80; proxy_pass b; }\nupstream b { server 127.0.0.1:1; }"), .upstream("b"))
        XCTAssertEqual(try target("server { listen 80; proxy_pass [::1]:80; }"),
                       .address(ServerAddress(written: "[::1]:80", endpoint: .ipv6(host: "::1", port: 80))))
    }

    func testOnlyAnUpstreamNameWithAColonIsWarnedAbout() throws {
        XCTAssertEqual(try load("upstream b { server 127.0.0.1:1; }\nserver { listen 80; proxy_pass b; }").diagnostics, [])
    }
}
