/// The PROXY protocol header (HAProxy's proxy-protocol.txt): version 1 is one text line,
/// version 2 a binary block. Pure encoding and decoding, no I/O: the header reader and the
/// session do the reading and sending, and the tests check bytes against the spec.
public enum ProxyHeader {
    public enum Version: Int, Equatable, Sendable { case v1 = 1, v2 = 2 }

    /// The 12 bytes that open every version 2 header; chosen by the spec so that no text
    /// protocol can start with them.
    public static let v2Signature: [UInt8] = [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A]
    static let v1Prefix = Array("PROXY ".utf8)
    /// The spec's bound for a v1 line, CRLF included ("PROXY TCP6" with two full IPv6 addresses).
    public static let v1MaxLength = 107
    /// ferry's bound for a v2 header: the spec allows 16 + 65,535 bytes, but addresses take at
    /// most 216 and the TLVs senders add (ALPN, authority, unique id, TLS facts) fit easily;
    /// anything longer is treated as an attack on the buffer, not a header.
    public static let v2MaxLength = 4096

    /// What a header says about the connection.
    public enum Decoded: Equatable {
        /// PROXY with TCP over IPv4 or IPv6: the real client and the address it connected to.
        case proxied(source: SocketAddress, destination: SocketAddress, length: Int)
        /// v1 UNKNOWN, v2 LOCAL, or a v2 family ferry does not relay (UNSPEC, unix): the spec
        /// says to use the connection's own endpoints.
        case local(length: Int)
    }

    /// Result of looking at the bytes received so far.
    public enum Parse: Equatable {
        case incomplete
        case invalid(String)
        case complete(Decoded)
    }

    // MARK: encoding

    /// The header describing a client `source` that connected to `destination`. Unix clients,
    /// or endpoints of different families, give "PROXY UNKNOWN" (v1) or LOCAL/UNSPEC (v2):
    /// the receiver then uses the connection's own endpoints, which is all that can be said.
    public static func encode(_ version: Version, source: SocketAddress, destination: SocketAddress) -> [UInt8] {
        let inet = (source.isIPv4 && destination.isIPv4) || (source.isIPv6 && destination.isIPv6)
        switch version {
        case .v1:
            guard inet else { return Array("PROXY UNKNOWN\r\n".utf8) }
            let proto = source.isIPv4 ? "TCP4" : "TCP6"
            return Array("PROXY \(proto) \(source.host) \(destination.host) \(source.port) \(destination.port)\r\n".utf8)
        case .v2:
            var out = v2Signature
            guard inet else {
                out += [0x20, 0x00, 0x00, 0x00]     // version 2, LOCAL; UNSPEC; no address block
                return out
            }
            let src = source.addressBytes, dst = destination.addressBytes
            let block = src.count * 2 + 4
            out += [0x21, source.isIPv4 ? 0x11 : 0x21, UInt8(block >> 8), UInt8(block & 0xff)]
            out += src + dst
            out += [UInt8(source.port >> 8), UInt8(source.port & 0xff), UInt8(destination.port >> 8), UInt8(destination.port & 0xff)]
            return out
        }
    }

    // MARK: decoding

    /// Looks at the first bytes of a connection. `.incomplete` while they are a prefix of a
    /// possible header; `.invalid` as soon as they cannot be one (so a wrong signature is
    /// refused after its first byte, not after the timeout).
    public static func parse(_ bytes: UnsafeRawBufferPointer) -> Parse {
        guard let first = bytes.first else { return .incomplete }
        switch first {
        case v1Prefix[0]: return parseV1(bytes)
        case v2Signature[0]: return parseV2(bytes)
        default: return .invalid("no PROXY protocol signature")
        }
    }

    /// Convenience for tests and callers holding an array.
    public static func parse(_ bytes: [UInt8]) -> Parse {
        bytes.withUnsafeBytes { parse($0) }
    }

    private static func parseV1(_ bytes: UnsafeRawBufferPointer) -> Parse {
        let n = bytes.count
        for i in 0..<min(n, v1Prefix.count) where bytes[i] != v1Prefix[i] {
            return .invalid("no PROXY protocol signature")
        }
        guard n > v1Prefix.count else { return .incomplete }
        // Find CRLF within the spec's bound (the CR at index 105 at the latest); a bare LF, or
        // control bytes, are not a header.
        var end = -1
        for i in v1Prefix.count..<min(n, v1MaxLength - 1) {
            let c = bytes[i]
            if c == 0x0D {
                guard i + 1 < n else { return .incomplete }
                guard bytes[i + 1] == 0x0A else { return .invalid("v1 header: CR without LF") }
                end = i
                break
            }
            if c < 0x20 || c > 0x7E { return .invalid("v1 header: unexpected byte \(c)") }
        }
        if end < 0 {
            return n >= v1MaxLength - 1 ? .invalid("v1 header longer than \(v1MaxLength) bytes") : .incomplete
        }
        let line = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[v1Prefix.count..<end]), as: UTF8.self)
        let length = end + 2
        let words = line.split(separator: " ", omittingEmptySubsequences: false).map(String.init)
        guard let proto = words.first else { return .invalid("v1 header: no protocol") }
        switch proto {
        case "UNKNOWN":
            // Anything may follow UNKNOWN; the receiver ignores it.
            return .complete(.local(length: length))
        case "TCP4", "TCP6":
            guard words.count == 5 else { return .invalid("v1 header: expected 4 fields after \(proto), got \(words.count - 1)") }
            guard let sport = v1Port(words[3]), let dport = v1Port(words[4]) else { return .invalid("v1 header: invalid port") }
            let make: (String, UInt16) -> SocketAddress? = proto == "TCP4"
                ? { SocketAddress(ipv4: $0, port: $1) } : { SocketAddress(ipv6: $0, port: $1) }
            guard let src = make(words[1], sport), let dst = make(words[2], dport) else {
                return .invalid("v1 header: invalid \(proto) address")
            }
            return .complete(.proxied(source: src, destination: dst, length: length))
        default:
            return .invalid("v1 header: unknown protocol \"\(proto.prefix(16))\"")
        }
    }

    /// 0-65535 in plain decimal; the spec forbids leading zeros ("0" aside).
    private static func v1Port(_ text: String) -> UInt16? {
        guard !text.isEmpty, text.count <= 5, text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
        if text.count > 1 && text.hasPrefix("0") { return nil }
        guard let v = Int(text), v <= 65535 else { return nil }
        return UInt16(v)
    }

    private static func parseV2(_ bytes: UnsafeRawBufferPointer) -> Parse {
        let n = bytes.count
        for i in 0..<min(n, v2Signature.count) where bytes[i] != v2Signature[i] {
            return .invalid("no PROXY protocol signature")
        }
        guard n >= 16 else { return .incomplete }
        let versionCommand = bytes[12]
        guard versionCommand >> 4 == 2 else { return .invalid("v2 header: version \(versionCommand >> 4)") }
        let command = versionCommand & 0x0F
        guard command <= 1 else { return .invalid("v2 header: unknown command \(command)") }
        let family = bytes[13]
        let blockLength = Int(bytes[14]) << 8 | Int(bytes[15])
        let length = 16 + blockLength
        guard length <= v2MaxLength else { return .invalid("v2 header of \(length) bytes is longer than \(v2MaxLength)") }
        guard n >= length else { return .incomplete }
        // LOCAL: a connection the sender made for itself (a health check); addresses ignored.
        if command == 0 { return .complete(.local(length: length)) }
        func address(_ size: Int) -> (SocketAddress, SocketAddress)? {
            guard blockLength >= 2 * size + 4 else { return nil }
            let p = 16 + 2 * size
            let sport = UInt16(bytes[p]) << 8 | UInt16(bytes[p + 1])
            let dport = UInt16(bytes[p + 2]) << 8 | UInt16(bytes[p + 3])
            guard let s = SocketAddress(addressBytes: Array(bytes[16..<16 + size]), port: sport),
                  let d = SocketAddress(addressBytes: Array(bytes[16 + size..<16 + 2 * size]), port: dport) else { return nil }
            return (s, d)
        }
        // Address block sizes of the spec's valid families: TCP or UDP over IPv4 (12), over IPv6
        // (36), unix stream or datagram (216). TLVs follow it, up to `length`.
        let addressSize: Int
        switch family {
        case 0x00:
            // UNSPEC: the block is unspecified and ignored, TLVs included.
            return .complete(.local(length: length))
        case 0x11, 0x12: addressSize = 12
        case 0x21, 0x22: addressSize = 36
        case 0x31, 0x32: addressSize = 216
        default:
            return .invalid("v2 header: unknown family/transport 0x\(String(family, radix: 16))")
        }
        guard blockLength >= addressSize else { return .invalid("v2 header: address block too short for its family") }
        if let problem = checkTLVs(bytes, from: 16 + addressSize, to: length) { return .invalid(problem) }
        switch family {
        case 0x11, 0x21:
            guard let (s, d) = address(family == 0x11 ? 4 : 16) else { return .invalid("v2 header: invalid address") }
            return .complete(.proxied(source: s, destination: d, length: length))
        default:
            // UDP, or a unix socket on the sender's side: nothing ferry relays or can use as a
            // client address. The spec lets a receiver treat valid families it does not support
            // as UNSPEC, so the connection's own endpoints stand.
            return .complete(.local(length: length))
        }
    }

    /// TLV type whose 4-byte value is the CRC32c of the whole header with this value zeroed.
    static let crc32cType: UInt8 = 0x03

    /// Walks the TLVs between the address block and the header's end. ferry uses none of
    /// them, but a chain that overruns the header, or a checksum that does not match, means
    /// the header is not what its sender wrote: refused, as HAProxy refuses it, rather than
    /// relaying for an address read from damaged bytes. (The spec makes checking the CRC
    /// optional; a receiver that checks must drop a connection whose CRC is wrong.)
    private static func checkTLVs(_ bytes: UnsafeRawBufferPointer, from start: Int, to end: Int) -> String? {
        var at = start
        while at < end {                          // each TLV moves `at` on by 3 bytes or more
            guard at + 3 <= end else { return "v2 header: truncated TLV at byte \(at)" }
            let type = bytes[at]
            let valueLength = Int(bytes[at + 1]) << 8 | Int(bytes[at + 2])
            guard at + 3 + valueLength <= end else {
                return "v2 header: TLV 0x\(String(type, radix: 16)) of \(valueLength) bytes runs past the header's end"
            }
            if type == crc32cType {
                guard valueLength == 4 else { return "v2 header: CRC32c TLV of \(valueLength) bytes, not 4" }
                let value = at + 3
                let sent = (0..<4).reduce(UInt32(0)) { $0 << 8 | UInt32(bytes[value + $1]) }
                var crc = CRC32C()
                crc.update(UnsafeRawBufferPointer(rebasing: bytes[0..<value]))
                crc.update([0, 0, 0, 0])
                crc.update(UnsafeRawBufferPointer(rebasing: bytes[(value + 4)..<end]))
                guard crc.value == sent else { return "v2 header: CRC32c does not match" }
            }
            at += 3 + valueLength
        }
        return nil
    }
}
