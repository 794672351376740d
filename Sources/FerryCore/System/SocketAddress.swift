import Glibc

/// An IPv4, IPv6 or Unix-domain socket address in the kernel's own layout.
public struct SocketAddress: Equatable, CustomStringConvertible {
    public var storage = sockaddr_storage()
    public var length: socklen_t = 0

    public init() {}

    public init?(ipv4 host: String, port: UInt16) {
        var sin = sockaddr_in()
        sin.sin_family = sa_family_t(AF_INET)
        sin.sin_port = port.bigEndian
        guard inet_pton(AF_INET, host, &sin.sin_addr) == 1 else { return nil }
        withUnsafeMutableBytes(of: &storage) { dst in withUnsafeBytes(of: sin) { dst.copyMemory(from: $0) } }
        length = socklen_t(MemoryLayout<sockaddr_in>.size)
    }

    public init?(ipv6 host: String, port: UInt16) {
        var sin6 = sockaddr_in6()
        sin6.sin6_family = sa_family_t(AF_INET6)
        sin6.sin6_port = port.bigEndian
        guard inet_pton(AF_INET6, host, &sin6.sin6_addr) == 1 else { return nil }
        withUnsafeMutableBytes(of: &storage) { dst in withUnsafeBytes(of: sin6) { dst.copyMemory(from: $0) } }
        length = socklen_t(MemoryLayout<sockaddr_in6>.size)
    }

    /// Bytes in sockaddr_un.sun_path, the terminating NUL included: a path must be shorter.
    public static let unixPathCapacity = MemoryLayout.size(ofValue: sockaddr_un().sun_path)

    public init?(unixPath path: String) {
        var sun = sockaddr_un()
        sun.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < SocketAddress.unixPathCapacity else { return nil }
        withUnsafeMutableBytes(of: &sun.sun_path) { p in
            p.copyBytes(from: bytes)
            p[bytes.count] = 0
        }
        withUnsafeMutableBytes(of: &storage) { dst in withUnsafeBytes(of: sun) { dst.copyMemory(from: $0) } }
        length = socklen_t(MemoryLayout<sa_family_t>.size + bytes.count + 1)
    }

    /// An IPv4 (4 bytes) or IPv6 (16 bytes) address in network order, as a PROXY protocol v2
    /// header carries it; nil for any other length.
    public init?(addressBytes bytes: [UInt8], port: UInt16) {
        switch bytes.count {
        case 4:
            var sin = sockaddr_in()
            sin.sin_family = sa_family_t(AF_INET)
            sin.sin_port = port.bigEndian
            withUnsafeMutableBytes(of: &sin.sin_addr) { $0.copyBytes(from: bytes) }
            withUnsafeMutableBytes(of: &storage) { dst in withUnsafeBytes(of: sin) { dst.copyMemory(from: $0) } }
            length = socklen_t(MemoryLayout<sockaddr_in>.size)
        case 16:
            var sin6 = sockaddr_in6()
            sin6.sin6_family = sa_family_t(AF_INET6)
            sin6.sin6_port = port.bigEndian
            withUnsafeMutableBytes(of: &sin6.sin6_addr) { $0.copyBytes(from: bytes) }
            withUnsafeMutableBytes(of: &storage) { dst in withUnsafeBytes(of: sin6) { dst.copyMemory(from: $0) } }
            length = socklen_t(MemoryLayout<sockaddr_in6>.size)
        default:
            return nil
        }
    }

    /// The address a session's client key and port stand for: sessions keep only those two
    /// (16 + 2 bytes, not a 128-byte sockaddr), and rebuild the address when a PROXY header
    /// needs it. An IPv4-mapped key becomes IPv4 (listeners are IPV6_V6ONLY, so a real IPv6
    /// client never has that form); `.none` becomes an empty address, i.e. "unknown".
    public init(clientKey key: ClientKey, port: UInt16) {
        if key == .none { self.init(); return }
        if key.high == 0 && key.low >> 32 == 0x0000_FFFF {
            let v = UInt32(truncatingIfNeeded: key.low)
            self = SocketAddress(addressBytes: [UInt8(v >> 24), UInt8(v >> 16 & 0xff), UInt8(v >> 8 & 0xff), UInt8(v & 0xff)], port: port)!
            return
        }
        var bytes: [UInt8] = []
        for word in [key.high, key.low] { for shift in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8(word >> UInt64(shift) & 0xff)) } }
        self = SocketAddress(addressBytes: bytes, port: port)!
    }

    public init(_ endpoint: ServerAddress.Endpoint) {
        switch endpoint {
        case .ipv4(let h, let p): self = SocketAddress(ipv4: h, port: p) ?? SocketAddress()
        case .ipv6(let h, let p): self = SocketAddress(ipv6: h, port: p) ?? SocketAddress()
        case .unix(let path): self = SocketAddress(unixPath: path) ?? SocketAddress()
        }
    }

    public var family: Int32 { Int32(storage.ss_family) }
    public var isUnix: Bool { family == AF_UNIX }
    public var isIPv4: Bool { family == AF_INET }
    public var isIPv6: Bool { family == AF_INET6 }

    public var port: UInt16 {
        withUnsafeBytes(of: storage) { raw in
            switch family {
            case AF_INET: return UInt16(bigEndian: raw.load(as: sockaddr_in.self).sin_port)
            case AF_INET6: return UInt16(bigEndian: raw.load(as: sockaddr_in6.self).sin6_port)
            default: return 0
            }
        }
    }

    /// The host part as text (no port), as nginx's $remote_addr prints it.
    public var host: String {
        withUnsafeBytes(of: storage) { raw -> String in
            var buf = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
            switch family {
            case AF_INET:
                var a = raw.load(as: sockaddr_in.self).sin_addr
                inet_ntop(AF_INET, &a, &buf, socklen_t(buf.count))
            case AF_INET6:
                var a = raw.load(as: sockaddr_in6.self).sin6_addr
                inet_ntop(AF_INET6, &a, &buf, socklen_t(buf.count))
            case AF_UNIX:
                return "unix:" + withUnsafeBytes(of: raw.load(as: sockaddr_un.self).sun_path) { p in
                    String(decoding: p.prefix(while: { $0 != 0 }), as: UTF8.self)
                }
            default: return "-"
            }
            return String(cString: buf)
        }
    }

    public var description: String {
        switch family {
        case AF_INET: return "\(host):\(port)"
        case AF_INET6: return "[\(host)]:\(port)"
        default: return host
        }
    }

    /// The client key the hash methods use: IPv4 mapped into IPv6 so both share one space.
    public var clientKey: ClientKey {
        withUnsafeBytes(of: storage) { raw in
            switch family {
            case AF_INET:
                let a = UInt32(bigEndian: raw.load(as: sockaddr_in.self).sin_addr.s_addr)
                return ClientKey(high: 0, low: 0x0000_FFFF_0000_0000 | UInt64(a))
            case AF_INET6:
                let off = MemoryLayout<sockaddr_in6>.offset(of: \.sin6_addr)!
                let hi = UInt64(bigEndian: raw.loadUnaligned(fromByteOffset: off, as: UInt64.self))
                let lo = UInt64(bigEndian: raw.loadUnaligned(fromByteOffset: off + 8, as: UInt64.self))
                return ClientKey(high: hi, low: lo)
            default:
                return .none
            }
        }
    }

    public static func == (a: SocketAddress, b: SocketAddress) -> Bool {
        guard a.length == b.length else { return false }
        return withUnsafeBytes(of: a.storage) { pa in
            withUnsafeBytes(of: b.storage) { pb in memcmp(pa.baseAddress!, pb.baseAddress!, Int(a.length)) == 0 }
        }
    }
}
