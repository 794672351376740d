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
}
