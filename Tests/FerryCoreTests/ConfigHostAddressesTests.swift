import XCTest
@testable import FerryCore

/// A host name with several addresses: as nginx, a peer per address for `server` and
/// proxy_pass and a socket per address for `listen`, each with the line's parameters and named
/// by its address. Only metrics_listen, which takes one socket, uses the first and says so.
/// In the test environment "twin.example" resolves to 127.0.0.2 and 127.0.0.3, "dual.example"
/// to ::1 and 127.0.0.1 (what /etc/hosts gives "localhost" on many systems).
final class ConfigHostAddressesTests: XCTestCase {
    func testAServerLineMakesAServerOfEachAddressWithItsParameters() throws {
        let loaded = try load("""
            upstream u { server twin.example:13000 weight=3 max_conns=7 backup; server 127.0.0.9:1; least_conn; }
            server { listen 12000; proxy_pass u; }
            """)
        XCTAssertEqual(loaded.diagnostics, [])
        let servers = loaded.config.upstreams[0].servers
        XCTAssertEqual(servers.map(\.name), ["127.0.0.2:13000", "127.0.0.3:13000", "127.0.0.9:1"])
        XCTAssertEqual(servers.map(\.address.endpoint), [.ipv4(host: "127.0.0.2", port: 13000), .ipv4(host: "127.0.0.3", port: 13000),
                                                       .ipv4(host: "127.0.0.9", port: 1)])
        XCTAssertEqual(servers.map(\.weight), [3, 3, 1])
        XCTAssertEqual(servers.map(\.maxConns), [7, 7, 0])
        XCTAssertEqual(servers.map(\.backup), [true, true, false])
    }

    func testANameWithOneAddressKeepsTheNameAsWritten() throws {
        let loaded = try load("upstream u { server localhost:13000; } server { listen 12000; proxy_pass u; }")
        XCTAssertEqual(loaded.config.upstreams[0].servers.map(\.name), ["localhost:13000"])
        XCTAssertEqual(loaded.diagnostics, [])
    }

    func testNameParameterOnSeveralAddressesIsRefused() {
        XCTAssertThrowsError(try load("upstream u { server twin.example:13000 name=b1; } server { listen 12000; proxy_pass u; }")) { error in
            XCTAssertEqual("\(error)", #""name=b1" names one server, but "twin.example:13000" has 2 addresses (127.0.0.2:13000, 127.0.0.3:13000) in t.conf:1:40; write one "server" per address, each with its own "name=""#)
        }
    }

    func testListenOpensASocketPerAddressWithItsParameters() throws {
        let loaded = try load("server { listen twin.example:12000 backlog=77 reuseport; listen dual.example:12001 ipv6only=off; proxy_pass 127.0.0.1:1; }")
        XCTAssertEqual(loaded.diagnostics, [])
        let listens = loaded.config.listeners[0].listens
        XCTAssertEqual(listens.map(\.address.written), ["127.0.0.2:12000", "127.0.0.3:12000", "[::1]:12001", "127.0.0.1:12001"])
        XCTAssertEqual(listens.map(\.backlog), [77, 77, 511, 511])
        XCTAssertEqual(listens.map(\.reusePort), [true, true, false, false])
        // ipv6only belongs to the IPv6 socket; the IPv4 one keeps the default.
        XCTAssertEqual(listens.map(\.ipv6Only), [true, true, false, true])
    }

    func testAnAddressOfANameThatIsAlsoListenedOnAloneIsADuplicate() {
        XCTAssertThrowsError(try load("server { listen 127.0.0.3:12000; listen twin.example:12000; proxy_pass 127.0.0.1:1; }")) { error in
            XCTAssertEqual("\(error)", #"duplicate "127.0.0.3:12000" address and port pair in t.conf:1:41"#)
        }
    }

    func testProxyPassToANameBalancesOverEveryAddress() throws {
        let loaded = try load("server { listen 12000; proxy_pass twin.example:13001; }")
        XCTAssertEqual(loaded.diagnostics, [])
        guard case .addresses(let written, let all) = loaded.config.listeners[0].proxyPass else { return XCTFail("not an address") }
        XCTAssertEqual(written, "twin.example:13001")
        XCTAssertEqual(all.map(\.written), ["127.0.0.2:13001", "127.0.0.3:13001"])
        let upstream = Upstream(implicit: written, all, location: nowhere)
        XCTAssertEqual(upstream.name, "twin.example:13001")
        XCTAssertEqual(upstream.serverNames, ["127.0.0.2:13001", "127.0.0.3:13001"])
    }

    func testEffectiveConfigurationLoadsBackToTheSameServersAndSockets() throws {
        let original = try load("""
            upstream u { server twin.example:13000 weight=2; }
            server { listen dual.example:12000 ipv6only=off; proxy_pass u; }
            server { listen 12001; proxy_pass twin.example:13001; }
            """).config
        let again = try ConfigLoader.load(text: ConfigRenderer.render(original), file: "t.conf", environment: offlineEnvironment()).config
        XCTAssertEqual(again.normalized().upstreams, original.normalized().upstreams)
        XCTAssertEqual(again.normalized().listeners, original.normalized().listeners)
    }

    func testMetricsListenTakesTheFirstAddressAndWarns() throws {
        let loaded = try load("metrics_listen twin.example:9100; server { listen 12000; proxy_pass 127.0.0.1:1; }")
        XCTAssertEqual(loaded.diagnostics.map(\.description), [
            #""twin.example:9100" has 2 addresses (127.0.0.2:9100, 127.0.0.3:9100); ferry uses only the first, 127.0.0.2:9100 in t.conf:1:16; write the address itself to choose another"#,
        ])
        XCTAssertEqual(loaded.diagnostics.map(\.level), [.warn])
        XCTAssertEqual(loaded.config.metricsListen?.address, ServerAddress(written: "twin.example:9100", endpoint: .ipv4(host: "127.0.0.2", port: 9100)))
    }

    /// nginx reads every number of an IPv4 address as decimal, leading zeros too (ngx_inet_addr);
    /// the resolver would take `010` as octal 8 and `1.2.3` as 1.2.0.3. So a zero-padded address
    /// is the address nginx means, and a number that is no address of that form is refused with
    /// a hint instead of being sent to the resolver.
    func testZeroPaddedIPv4IsDecimalAsInNginx() throws {
        let loaded = try load("""
            upstream u { server 10.0.0.010:12000; }
            server { listen 127.0.0.010:12000; proxy_pass u; allow 010.0.0.0/8; deny all; }
            server { listen 127.0.0.11:12001; proxy_pass 127.000.000.001:13000; }
            """)
        XCTAssertEqual(loaded.config.upstreams[0].servers.map(\.address.endpoint), [.ipv4(host: "10.0.0.10", port: 12000)])
        XCTAssertEqual(loaded.config.listeners[0].listens.map(\.address.endpoint), [.ipv4(host: "127.0.0.10", port: 12000)])
        XCTAssertEqual(loaded.config.listeners[1].proxyPass, ProxyTarget.addresses("127.000.000.001:13000", [ServerAddress(written: "127.000.000.001:13000", endpoint: .ipv4(host: "127.0.0.1", port: 13000))]))
        for (line, column, address) in [("upstream u { server 1.2.3:12000; }", 21, "1.2.3:12000"),
                                        ("upstream u { server 127.0.0.256:12000; }", 21, "127.0.0.256:12000"),
                                        ("upstream u { server 127.0..1:12000; }", 21, "127.0..1:12000"),
                                        ("upstream u { server 12000:80; }", 21, "12000:80")] {
            XCTAssertThrowsError(try load(line + " server { listen 12000; proxy_pass u; }")) { error in
                XCTAssertEqual("\(error)", "invalid IPv4 address (write four numbers from 0 to 255, as 192.0.2.10) in upstream \"\(address)\" in t.conf:1:\(column)", line)
            }
        }
        XCTAssertThrowsError(try load("server { listen 127.0.0.1.1:12000; proxy_pass 127.0.0.1:1; }")) { error in
            XCTAssertTrue("\(error)".hasPrefix("invalid IPv4 address (write four numbers from 0 to 255, as 192.0.2.10) in \"127.0.0.1.1:12000\" of the \"listen\" directive in t.conf:1:17"), "\(error)")
        }
    }
}
