import XCTest
@testable import FerryCore

final class AccessControlTests: XCTestCase {
    private func v4(_ s: String) -> SocketAddress { SocketAddress(ipv4: s, port: 1000)! }
    private func v6(_ s: String) -> SocketAddress { SocketAddress(ipv6: s, port: 1000)! }

    func testFirstMatchWinsAndUnmatchedIsAllowed() {
        let acl = AccessControl([
            AccessRule(action: .deny, match: .cidr(address: [127, 0, 0, 66], prefixLength: 32)),
            AccessRule(action: .allow, match: .cidr(address: [127, 0, 0, 0], prefixLength: 24)),
            AccessRule(action: .deny, match: .cidr(address: [127, 0, 0, 0], prefixLength: 8)),
        ])
        let cases: [(String, Bool)] = [
            ("127.0.0.66", false),  // first rule
            ("127.0.0.65", true),   // second rule
            ("127.0.1.1", false),   // third rule
            ("10.1.2.3", true),     // no rule matches: allowed, as nginx
        ]
        for (address, allowed) in cases {
            XCTAssertEqual(acl.allows(v4(address)), allowed, address)
        }
    }

    func testPrefixLengthsThatAreNotByteAligned() {
        let acl = AccessControl([
            AccessRule(action: .allow, match: .cidr(address: [192, 168, 4, 0], prefixLength: 22)),
            AccessRule(action: .deny, match: .all),
        ])
        XCTAssertTrue(acl.allows(v4("192.168.7.255")))
        XCTAssertTrue(acl.allows(v4("192.168.4.0")))
        XCTAssertFalse(acl.allows(v4("192.168.8.0")))
        XCTAssertFalse(acl.allows(v4("192.168.3.255")))
    }

    func testIPv6AndMappedIPv4() {
        let net: [UInt8] = [0x20, 0x01, 0x0d, 0xb8] + Array(repeating: 0, count: 12)
        let acl = AccessControl([
            AccessRule(action: .allow, match: .cidr(address: net, prefixLength: 32)),
            AccessRule(action: .allow, match: .cidr(address: [127, 0, 0, 1], prefixLength: 32)),
            AccessRule(action: .deny, match: .all),
        ])
        XCTAssertTrue(acl.allows(v6("2001:db8::1")))
        XCTAssertFalse(acl.allows(v6("2001:db9::1")))
        XCTAssertTrue(acl.allows(v6("::ffff:127.0.0.1")), "an IPv4 rule matches the IPv4-mapped form")
        XCTAssertFalse(acl.allows(v6("::1")))
    }

    func testUnixRuleMatchesOnlyUnixClients() {
        let acl = AccessControl([AccessRule(action: .deny, match: .unixSockets)])
        XCTAssertFalse(acl.allows(SocketAddress(unixPath: "/tmp/x.sock")!))
        XCTAssertTrue(acl.allows(v4("127.0.0.1")))
    }

    /// The rules as the builder makes them from text, so these cases read like a config.
    private func rules(_ lines: [(AccessRule.Action, String)]) -> AccessControl {
        AccessControl(lines.map { action, text in
            if text == "all" { return AccessRule(action: action, match: .all) }
            let (address, prefix, _) = AddressSyntax.cidr(text)!
            return AccessRule(action: action, match: .cidr(address: address, prefixLength: prefix))
        })
    }

    /// nginx's stream access semantics for IPv6: prefixes at any bit, `all` covers every family,
    /// an IPv4 rule never matches an IPv6 client and the reverse.
    func testIPv6CIDRsAtBitBoundaries() {
        let cases: [([(AccessRule.Action, String)], String, Bool)] = [
            ([(.deny, "::/127"), (.allow, "all")], "::1", false),             // ::0-::1
            ([(.deny, "::2/127"), (.allow, "all")], "::1", true),             // ::2-::3
            ([(.deny, "::1"), (.allow, "all")], "::1", false),                // a bare address is /128
            ([(.allow, "::1/128"), (.deny, "all")], "::1", true),
            ([(.allow, "::1/128"), (.deny, "all")], "::2", false),
            ([(.deny, "127.0.0.0/8"), (.allow, "all")], "::1", true),         // IPv4 rules do not see IPv6 clients
            ([(.deny, "::/0"), (.allow, "all")], "::1", false),
            ([(.allow, "2001:db8:8000::/33"), (.deny, "all")], "2001:db8:8000::5", true),
            ([(.allow, "2001:db8:8000::/33"), (.deny, "all")], "2001:db8:7fff::5", false),
            ([(.allow, "fe80::/10"), (.deny, "all")], "febf::1", true),
            ([(.allow, "fe80::/10"), (.deny, "all")], "fec0::1", false),
            ([(.deny, "all"), (.allow, "::1")], "::1", false),                // first match wins, even "all"
        ]
        for (list, client, allowed) in cases {
            XCTAssertEqual(rules(list).allows(v6(client)), allowed, "\(list) \(client)")
        }
    }

    func testIPv4RulesAndAll() {
        let cases: [([(AccessRule.Action, String)], String, Bool)] = [
            ([(.deny, "::/0"), (.allow, "all")], "127.0.0.1", true),         // IPv6 rules do not see IPv4 clients
            ([(.deny, "0.0.0.0/0")], "127.0.0.1", false),
            ([(.deny, "127.0.0.2/31"), (.allow, "all")], "127.0.0.3", false), // masked to 127.0.0.2/31
            ([(.deny, "127.0.0.2/31"), (.allow, "all")], "127.0.0.4", true),
            ([(.allow, "127.0.1.0/25"), (.deny, "all")], "127.0.1.127", true),
            ([(.allow, "127.0.1.0/25"), (.deny, "all")], "127.0.1.128", false),
            ([], "127.0.0.1", true),                                            // no rules: allowed
        ]
        for (list, client, allowed) in cases {
            XCTAssertEqual(rules(list).allows(v4(client)), allowed, "\(list) \(client)")
        }
        XCTAssertFalse(rules([(.deny, "all")]).allows(SocketAddress(unixPath: "/tmp/u")!), "all covers unix clients too")
        XCTAssertTrue(rules([(.deny, "0.0.0.0/0"), (.deny, "::/0")]).allows(SocketAddress(unixPath: "/tmp/u")!))
    }
}
