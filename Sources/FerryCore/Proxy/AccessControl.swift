import Glibc

/// `allow`/`deny` rules of one listener, evaluated at accept: first match wins, as in nginx's
/// stream access module, and a client that matches no rule is allowed.
public struct AccessControl {
    public let rules: [AccessRule]
    public init(_ rules: [AccessRule]) { self.rules = rules }

    public var isEmpty: Bool { rules.isEmpty }

    /// Whether `client` may connect. Pure: used at accept and by tests.
    public func allows(_ client: SocketAddress) -> Bool {
        let bytes = client.addressBytes
        for rule in rules where AccessControl.matches(rule.match, bytes: bytes, isUnix: client.isUnix) {
            return rule.action == .allow
        }
        return true
    }

    static func matches(_ m: AccessRule.Match, bytes: [UInt8], isUnix: Bool) -> Bool {
        switch m {
        case .all: return true
        case .unixSockets: return isUnix
        case .cidr(let address, let prefix):
            var candidate = bytes
            // An IPv4 rule also matches the same client seen as IPv4-mapped IPv6 (dual-stack sockets).
            if address.count == 4 && candidate.count == 16 && candidate[0..<12].elementsEqual([0,0,0,0,0,0,0,0,0,0,0xff,0xff]) {
                candidate = Array(candidate[12...])
            }
            guard candidate.count == address.count else { return false }
            var left = prefix
            for i in 0..<address.count where left > 0 {
                let bits = min(8, left)
                let mask: UInt8 = bits == 8 ? 0xff : ~(0xff >> UInt8(bits))
                if candidate[i] & mask != address[i] & mask { return false }
                left -= bits
            }
            return true
        }
    }
}

extension SocketAddress {
    /// The address part in network order: 4 bytes for IPv4, 16 for IPv6, none for Unix sockets.
    public var addressBytes: [UInt8] {
        withUnsafeBytes(of: storage) { raw -> [UInt8] in
            switch family {
            case AF_INET:
                let off = MemoryLayout<sockaddr_in>.offset(of: \.sin_addr)!
                return Array(raw[off..<off + 4])
            case AF_INET6:
                let off = MemoryLayout<sockaddr_in6>.offset(of: \.sin6_addr)!
                return Array(raw[off..<off + 16])
            default:
                return []
            }
        }
    }
}
