import XCTest
@testable import FerryCore

/// The PROXY protocol header against the spec's byte layouts, written out by hand here so the
/// encoder is not checked against itself.
final class ProxyHeaderTests: XCTestCase {
    private func v4(_ h: String, _ p: UInt16) -> SocketAddress { SocketAddress(ipv4: h, port: p)! }
    private func v6(_ h: String, _ p: UInt16) -> SocketAddress { SocketAddress(ipv6: h, port: p)! }
    private let sig: [UInt8] = [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A]

    func testEncodeV1() {
        XCTAssertEqual(String(decoding: ProxyHeader.encode(.v1, source: v4("192.0.2.7", 51234), destination: v4("10.0.0.1", 12000)), as: UTF8.self),
                       "PROXY TCP4 192.0.2.7 10.0.0.1 51234 12000\r\n")
        XCTAssertEqual(String(decoding: ProxyHeader.encode(.v1, source: v6("2001:db8::7", 1), destination: v6("::1", 65535)), as: UTF8.self),
                       "PROXY TCP6 2001:db8::7 ::1 1 65535\r\n")
        XCTAssertEqual(String(decoding: ProxyHeader.encode(.v1, source: SocketAddress(unixPath: "/tmp/c")!, destination: SocketAddress(unixPath: "/tmp/l")!), as: UTF8.self),
                       "PROXY UNKNOWN\r\n")
        XCTAssertEqual(String(decoding: ProxyHeader.encode(.v1, source: v4("1.2.3.4", 1), destination: v6("::1", 2)), as: UTF8.self),
                       "PROXY UNKNOWN\r\n", "mixed families cannot be described")
        let longest = ProxyHeader.encode(.v1, source: v6("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535),
                                         destination: v6("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535))
        XCTAssertEqual(longest.count, 104)
        XCTAssertLessThanOrEqual(longest.count, ProxyHeader.v1MaxLength)
    }

    func testEncodeV2() {
        XCTAssertEqual(ProxyHeader.encode(.v2, source: v4("192.0.2.7", 0xC822), destination: v4("10.0.0.1", 12000)),
                       sig + [0x21, 0x11, 0x00, 0x0C, 192, 0, 2, 7, 10, 0, 0, 1, 0xC8, 0x22, 0x2E, 0xE0])
        XCTAssertEqual(ProxyHeader.encode(.v2, source: v6("2001:db8::7", 0x0102), destination: v6("::1", 0x0304)),
                       sig + [0x21, 0x21, 0x00, 0x24, 0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 11) + [7]
                           + [UInt8](repeating: 0, count: 15) + [1] + [0x01, 0x02, 0x03, 0x04])
        XCTAssertEqual(ProxyHeader.encode(.v2, source: SocketAddress(), destination: SocketAddress()),
                       sig + [0x20, 0x00, 0x00, 0x00], "unknown client: LOCAL, UNSPEC, no addresses")
    }

    func testDecodeRoundTrips() {
        let pairs = [(v4("127.0.0.9", 40000), v4("127.0.0.1", 12000)), (v6("::1", 5), v6("fe80::1:2", 6))]
        for (s, d) in pairs {
            for version in [ProxyHeader.Version.v1, .v2] {
                let h = ProxyHeader.encode(version, source: s, destination: d)
                XCTAssertEqual(ProxyHeader.parse(h + Array("tail".utf8)), .complete(.proxied(source: s, destination: d, length: h.count)), "\(version) \(s)")
                // Every proper prefix is incomplete, never invalid: a header may arrive byte by byte.
                for n in 0..<h.count { XCTAssertEqual(ProxyHeader.parse(Array(h[0..<n])), .incomplete, "\(version) prefix \(n)") }
            }
        }
    }

    func testDecodeLocalForms() {
        XCTAssertEqual(ProxyHeader.parse(Array("PROXY UNKNOWN\r\nabc".utf8)), .complete(.local(length: 15)))
        XCTAssertEqual(ProxyHeader.parse(Array("PROXY UNKNOWN 1.2.3.4 x y z\r\n".utf8)), .complete(.local(length: 29)))
        XCTAssertEqual(ProxyHeader.parse(sig + [0x20, 0x00, 0x00, 0x00]), .complete(.local(length: 16)))
        // LOCAL with an address block: the block is skipped, addresses ignored.
        XCTAssertEqual(ProxyHeader.parse(sig + [0x20, 0x11, 0x00, 0x0C] + [UInt8](repeating: 1, count: 12) + [9]), .complete(.local(length: 28)))
        // A unix-socket family on the sender's side: nothing usable, use the real endpoints.
        XCTAssertEqual(ProxyHeader.parse(sig + [0x21, 0x31, 0x00, 0xD8] + [UInt8](repeating: 0, count: 216)), .complete(.local(length: 232)))
    }

    func testV2TLVsAreSkipped() {
        let tlv: [UInt8] = [0x01, 0x00, 0x02, 0x68, 0x32]        // ALPN "h2"
        let h = sig + [0x21, 0x11, 0x00, UInt8(12 + tlv.count), 1, 2, 3, 4, 5, 6, 7, 8, 0, 80, 0, 81] + tlv
        XCTAssertEqual(ProxyHeader.parse(h + [0xAA]), .complete(.proxied(source: v4("1.2.3.4", 80), destination: v4("5.6.7.8", 81), length: 33)))
    }

    /// The spec's other valid families (UDP over IPv4/IPv6, unix datagram) fall back to the
    /// connection's own endpoints, as UNSPEC and unix stream do; their TLVs are still checked.
    func testV2ValidFamiliesFerryDoesNotRelayFallBackToLocal() {
        for (family, size) in [(UInt8(0x12), 12), (0x22, 36), (0x32, 216)] {
            let h = sig + [0x21, family, UInt8(size >> 8), UInt8(size & 0xFF)] + [UInt8](repeating: 7, count: size)
            XCTAssertEqual(ProxyHeader.parse(h + [0xAA]), .complete(.local(length: 16 + size)), "family \(family)")
        }
    }

    /// A TLV chain that overruns the header, or a wrong CRC32c, is a damaged header: refused.
    /// A right CRC32c (computed here over the header with the value zeroed) is accepted.
    func testV2TLVChainAndChecksumAreChecked() {
        let addresses: [UInt8] = [1, 2, 3, 4, 5, 6, 7, 8, 0, 80, 0, 81]
        func header(_ tlvs: [UInt8]) -> [UInt8] {
            sig + [0x21, 0x11, 0x00, UInt8(12 + tlvs.count)] + addresses + tlvs
        }
        XCTAssertEqual(ProxyHeader.parse(header([0x01, 0x00, 0x09, 0x68, 0x32])),
                       .invalid("v2 header: TLV 0x1 of 9 bytes runs past the header's end"))
        XCTAssertEqual(ProxyHeader.parse(header([0x01, 0x00, 0x02, 0x68, 0x32, 0x04])),
                       .invalid("v2 header: truncated TLV at byte 33"))
        XCTAssertEqual(ProxyHeader.parse(header([0x03, 0x00, 0x02, 0x00, 0x00])),
                       .invalid("v2 header: CRC32c TLV of 2 bytes, not 4"))

        var withCRC = header([0x04, 0x00, 0x01, 0x00, 0x03, 0x00, 0x04, 0, 0, 0, 0])   // NOOP, then CRC32c
        let crc = crc32c(withCRC)
        withCRC[withCRC.count - 4..<withCRC.count] = [UInt8(crc >> 24), UInt8(crc >> 16 & 0xFF), UInt8(crc >> 8 & 0xFF), UInt8(crc & 0xFF)]
        let proxied = ProxyHeader.Parse.complete(.proxied(source: v4("1.2.3.4", 80), destination: v4("5.6.7.8", 81), length: withCRC.count))
        XCTAssertEqual(ProxyHeader.parse(withCRC), proxied)
        withCRC[20] ^= 1                         // one address bit flipped in transit
        XCTAssertEqual(ProxyHeader.parse(withCRC), .invalid("v2 header: CRC32c does not match"))
    }

    /// CRC-32C by the bit, written out from the polynomial, for the test above; and the
    /// table-driven one against the standard check value of "123456789".
    private func crc32c(_ bytes: [UInt8]) -> UInt32 {
        var c: UInt32 = 0xFFFF_FFFF
        for b in bytes {
            c ^= UInt32(b)
            for _ in 0..<8 { c = (c >> 1) ^ (0x82F6_3B78 & (0 &- (c & 1))) }
        }
        return ~c
    }

    func testCRC32CCheckValue() {
        var crc = CRC32C()
        crc.update(Array("123456789".utf8))
        XCTAssertEqual(crc.value, 0xE306_9283)
        XCTAssertEqual(crc32c(Array("123456789".utf8)), 0xE306_9283)
    }

    func testInvalid() {
        let cases: [([UInt8], String)] = [
            (Array("GET / HTTP/1.0\r\n".utf8), "no PROXY protocol signature"),
            (Array("PROXZ".utf8), "no PROXY protocol signature"),
            ([0x0D, 0x0A, 0x0D, 0x0B], "no PROXY protocol signature"),
            (Array("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n".utf8), "v1 header: unexpected byte 10"),
            (Array("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX".utf8), "v1 header: CR without LF"),
            (Array("PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n".utf8), "v1 header: expected 4 fields after TCP4, got 3"),
            (Array("PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n".utf8), "v1 header: expected 4 fields after TCP4, got 5"),
            (Array("PROXY TCP4 1.2.3.4 5.6.7.8 1 65536\r\n".utf8), "v1 header: invalid port"),
            (Array("PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n".utf8), "v1 header: invalid port"),
            (Array("PROXY TCP4 ::1 5.6.7.8 1 2\r\n".utf8), "v1 header: invalid TCP4 address"),
            (Array("PROXY TCP6 1.2.3.4 ::1 1 2\r\n".utf8), "v1 header: invalid TCP6 address"),
            (Array("PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n".utf8), "v1 header: unknown protocol \"UDP4\""),
            (Array(("PROXY UNKNOWN " + String(repeating: "x", count: 100)).utf8), "v1 header longer than 107 bytes"),
            (sig + [0x11, 0x11, 0x00, 0x0C], "v2 header: version 1"),
            (sig + [0x22, 0x11, 0x00, 0x0C], "v2 header: unknown command 2"),
            (sig + [0x21, 0x13, 0x00, 0x0C] + [UInt8](repeating: 0, count: 12), "v2 header: unknown family/transport 0x13"),
            (sig + [0x21, 0x41, 0x00, 0x0C] + [UInt8](repeating: 0, count: 12), "v2 header: unknown family/transport 0x41"),
            (sig + [0x21, 0x32, 0x00, 0x0C] + [UInt8](repeating: 0, count: 12), "v2 header: address block too short for its family"),
            (sig + [0x21, 0x11, 0x00, 0x04, 1, 2, 3, 4], "v2 header: address block too short for its family"),
            (sig + [0x21, 0x11, 0xFF, 0xFF], "v2 header of 65551 bytes is longer than 4096"),
        ]
        for (bytes, message) in cases {
            XCTAssertEqual(ProxyHeader.parse(bytes), .invalid(message), String(decoding: bytes, as: UTF8.self))
        }
        // The longest legal v1 line still parses; one byte more does not.
        let legal = "PROXY UNKNOWN " + String(repeating: "x", count: 91) + "\r\n"
        XCTAssertEqual(legal.utf8.count, 107)
        XCTAssertEqual(ProxyHeader.parse(Array(legal.utf8)), .complete(.local(length: 107)))
        let tooLong = "PROXY UNKNOWN " + String(repeating: "x", count: 92) + "\r\n"
        XCTAssertEqual(ProxyHeader.parse(Array(tooLong.utf8)), .invalid("v1 header longer than 107 bytes"))
    }

    func testSocketAddressFromClientKey() {
        XCTAssertEqual(SocketAddress(clientKey: v4("127.0.0.9", 1).clientKey, port: 77), v4("127.0.0.9", 77))
        XCTAssertEqual(SocketAddress(clientKey: v6("2001:db8::9", 1).clientKey, port: 78), v6("2001:db8::9", 78))
        XCTAssertEqual(SocketAddress(clientKey: v6("::1", 1).clientKey, port: 79), v6("::1", 79))
        XCTAssertEqual(SocketAddress(clientKey: .none, port: 80).length, 0)
    }
}
