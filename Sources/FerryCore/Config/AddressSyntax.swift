// `host:port`, `[v6]:port`, `unix:/path`, and for `listen` also `port` and `*:port`, parsed
// as nginx's ngx_parse_url does. Host names are resolved once here, at load time; the
// callers phrase the problems for their directive.

enum AddressSyntax {
    enum Problem: Error, Equatable {
        case noPort, invalidPort, noHost, hostNotFound, noUnixPath, unixPathTooLong, invalidIPv4

        /// nginx's words for it; each directive adds where the address stood.
        var phrase: String {
            switch self {
            case .noPort: return "no port"
            case .invalidPort: return "invalid port"
            case .noHost: return "no host"
            case .hostNotFound: return "host not found"
            case .noUnixPath: return "no path in the unix domain socket"
            case .unixPathTooLong: return "too long path in the unix domain socket"
            case .invalidIPv4: return "invalid IPv4 address (write four numbers from 0 to 255, as 192.0.2.10)"
            }
        }
    }

    /// Bytes in sockaddr_un.sun_path, the terminating NUL included (108 on Linux).
    static let maximumUnixPath = SocketAddress.unixPathCapacity

    /// Every address `text` stands for, in the resolver's order: one for a literal, a unix
    /// path or a name with one address. A name with several gives one each, as nginx makes
    /// a peer (or a listen socket) of every address of a name; each is written as the address
    /// itself (`127.0.0.2:13000`, `[::1]:13000`), the name nginx gives such peers, so the admin
    /// socket, the logs and a reload tell them apart as if the file had one line per address.
    static func parseAll(_ text: String, isListen: Bool, environment: ConfigEnvironment) -> Result<[ServerAddress], Problem> {
        if text.hasPrefix("unix:") {
            let path = String(text.dropFirst(5))
            if path.isEmpty { return .failure(.noUnixPath) }
            // sun_path holds 108 bytes with its NUL; a longer path would otherwise become an
            // empty address that every connect and bind fails on.
            if path.utf8.count >= maximumUnixPath { return .failure(.unixPathTooLong) }
            return .success([ServerAddress(written: text, endpoint: .unix(path: path))])
        }
        if isListen, !text.isEmpty, text.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) {
            guard let port = port(text) else { return .failure(.invalidPort) }
            return .success([ServerAddress(written: text, endpoint: .ipv4(host: "0.0.0.0", port: port))])
        }
        let host: String
        let portText: String
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { return .failure(.hostNotFound) }
            host = String(text[text.index(after: text.startIndex)..<close])
            let rest = text[text.index(after: close)...]
            if rest.isEmpty { return .failure(.noPort) }
            guard rest.hasPrefix(":") else { return .failure(.invalidPort) }
            portText = String(rest.dropFirst())
            guard let port = port(portText) else { return .failure(.invalidPort) }
            guard let bytes = IPText.parseIPv6(host) else { return .failure(.hostNotFound) }
            return .success([ServerAddress(written: text, endpoint: .ipv6(host: IPText.format(bytes), port: port))])
        }
        guard let colon = text.lastIndex(of: ":") else { return .failure(.noPort) }
        host = String(text[..<colon])
        portText = String(text[text.index(after: colon)...])
        guard let port = port(portText) else { return .failure(.invalidPort) }
        if host.isEmpty { return .failure(.noHost) }
        if isListen && host == "*" {
            return .success([ServerAddress(written: text, endpoint: .ipv4(host: "0.0.0.0", port: port))])
        }
        if let bytes = IPText.parseDecimalIPv4(host) {
            return .success([ServerAddress(written: text, endpoint: .ipv4(host: IPText.format(bytes), port: port))])
        }
        // The resolver reads `1.2.3` as 1.2.0.3 and `010` as octal: a number that is no
        // address of nginx's form is refused, not resolved to somewhere else.
        if IPText.looksNumeric(host) { return .failure(.invalidIPv4) }
        // An unbracketed IPv6 address is ambiguous about its port. nginx takes what follows the
        // first ":" as the port and refuses it; so does ferry, in nginx's words.
        if host.contains(":") { return .failure(.invalidPort) }
        let resolved = environment.resolveHost(host)
        if resolved.isEmpty { return .failure(.hostNotFound) }
        let endpoints: [ServerAddress.Endpoint] = resolved.map {
            switch $0 {
            case .ipv4(let a): return .ipv4(host: a, port: port)
            case .ipv6(let a): return .ipv6(host: a, port: port)
            }
        }
        if endpoints.count == 1 { return .success([ServerAddress(written: text, endpoint: endpoints[0])]) }
        return .success(endpoints.map { ServerAddress(written: written($0), endpoint: $0) })
    }

    /// `127.0.0.2:13000`, `[::1]:13000`, `unix:/path`: an endpoint as a configuration writes it.
    static func written(_ e: ServerAddress.Endpoint) -> String {
        switch e {
        case .ipv4(let host, let port): return "\(host):\(port)"
        case .ipv6(let host, let port): return "[\(host)]:\(port)"
        case .unix(let path): return "unix:" + path
        }
    }

    /// For `::1:12000`, which nginx and ferry refuse: the bracketed spelling they take.
    static func bracketHint(_ text: String) -> String? {
        guard !text.hasPrefix("["), let colon = text.lastIndex(of: ":") else { return nil }
        let host = String(text[..<colon])
        guard host.contains(":"), IPText.parseIPv6(host) != nil else { return nil }
        return "an IPv6 address with a port goes in brackets: \"[\(host)]\(text[colon...])\""
    }

    /// A local address for `proxy_bind`: `192.0.2.1`, `192.0.2.1:4000`, `[2001:db8::1]`,
    /// `[2001:db8::1]:4000` or a bare `2001:db8::1`; no port means port 0 (any). Never resolves.
    static func local(_ text: String) -> ServerAddress? {
        var host = Substring(text)
        var portText: Substring? = nil
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { return nil }
            host = text[text.index(after: text.startIndex)..<close]
            let rest = text[text.index(after: close)...]
            if !rest.isEmpty {
                guard rest.hasPrefix(":") else { return nil }
                portText = rest.dropFirst()
            }
            guard IPText.parseIPv6(String(host)) != nil else { return nil }
        } else if text.filter({ $0 == ":" }).count == 1, let colon = text.firstIndex(of: ":") {
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
        }
        var port: UInt16 = 0
        if let p = portText {
            guard let n = Units.number(String(p)), n <= 65535 else { return nil }
            port = UInt16(n)
        }
        if let v4 = IPText.parseDecimalIPv4(String(host)) {
            return ServerAddress(written: text, endpoint: .ipv4(host: IPText.format(v4), port: port))
        }
        if let v6 = IPText.parseIPv6(String(host)) {
            return ServerAddress(written: text, endpoint: .ipv6(host: IPText.format(v6), port: port))
        }
        return nil
    }

    static func port(_ text: String) -> UInt16? {
        guard let n = Units.number(text), n >= 1, n <= 65535 else { return nil }
        return UInt16(n)
    }

    /// `1.2.3.4`, `10.0.0.0/8`, `::1`, `2001:db8::/32`. Returns the masked address and whether
    /// host bits had to be cleared (nginx warns "low address bits ... are meaningless").
    static func cidr(_ text: String) -> (address: [UInt8], prefix: Int, masked: Bool)? {
        var addressText = Substring(text)
        var prefix: Int?
        if let slash = text.firstIndex(of: "/") {
            addressText = text[..<slash]
            guard let p = Units.number(String(text[text.index(after: slash)...])) else { return nil }
            prefix = p
        }
        guard var bytes = IPText.parseDecimalIPv4(String(addressText)) ?? IPText.parseIPv6(String(addressText)) else { return nil }
        let bits = bytes.count * 8
        let length = prefix ?? bits
        guard length <= bits else { return nil }
        var masked = false
        for i in 0..<bytes.count {
            let keep = max(0, min(8, length - i * 8))
            let mask: UInt8 = keep == 0 ? 0 : UInt8(truncatingIfNeeded: 0xff << (8 - keep))
            if bytes[i] & ~mask != 0 { masked = true }
            bytes[i] &= mask
        }
        return (bytes, length, masked)
    }
}
