#if canImport(Glibc)
import Glibc
#endif

// Everything the loader asks of the outside world: files, globs and name resolution. The
// system environment is the real one; tests and the fuzz target substitute their own, so
// arbitrary input never reads the disk or waits on DNS.

public struct ConfigEnvironment {
    public enum Resolved: Equatable, Sendable { case ipv4(String), ipv6(String) }

    /// The file's bytes, or nginx's wording of why not: `open() "x" failed (2: No such file or directory)`.
    public var readFile: (String) -> Result<[UInt8], FileProblem>
    /// Paths matching a pattern that contains `*`, `?` or `[`, sorted; none is not an error (as nginx).
    public var glob: (String) -> [String]
    /// The identity of a file for include-loop detection.
    public var canonicalPath: (String) -> String
    /// Every address of a host name in the resolver's order (duplicates removed); none when it
    /// does not resolve. Each becomes a server or a listen socket, as in nginx.
    public var resolveHost: (String) -> [Resolved]

    public struct FileProblem: Error, Equatable, Sendable {
        public var message: String
        public init(_ message: String) { self.message = message }
    }

    public init(readFile: @escaping (String) -> Result<[UInt8], FileProblem>,
                glob: @escaping (String) -> [String],
                canonicalPath: @escaping (String) -> String,
                resolveHost: @escaping (String) -> [Resolved]) {
        self.readFile = readFile; self.glob = glob; self.canonicalPath = canonicalPath; self.resolveHost = resolveHost
    }

    /// Configuration files bigger than this are refused: a runaway glob must not eat memory.
    public static let maxFileSize = 16 << 20

    public static var system: ConfigEnvironment {
        ConfigEnvironment(readFile: systemRead, glob: systemGlob, canonicalPath: systemCanonical, resolveHost: systemResolve)
    }

    private static func errnoText(_ e: Errno) -> String { "\(e.rawValue): \(e)" }

    private static func systemRead(_ path: String) -> Result<[UInt8], FileProblem> {
        let fd: Int32
        do { fd = try syscall("open") { open(path, O_RDONLY | O_CLOEXEC) } } catch {
            return .failure(FileProblem("open() \"\(path)\" failed (\(errnoText(error)))"))
        }
        defer { close(fd) }
        var info = stat()
        do { _ = try syscall("fstat") { fstat(fd, &info) } } catch {
            return .failure(FileProblem("fstat() \"\(path)\" failed (\(errnoText(error)))"))
        }
        if (info.st_mode & S_IFMT) == S_IFDIR {
            return .failure(FileProblem("\"\(path)\" is a directory"))
        }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n: Int
            do { n = try syscall("read") { chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) } } } catch {
                return .failure(FileProblem("read() \"\(path)\" failed (\(errnoText(error)))"))
            }
            if n == 0 { return .success(out) }
            out.append(contentsOf: chunk[0..<n])
            if out.count > maxFileSize { return .failure(FileProblem("\"\(path)\" is larger than \(maxFileSize) bytes")) }
        }
    }

    private static func systemGlob(_ pattern: String) -> [String] {
        var g = glob_t()
        defer { globfree(&g) }
        guard Glibc.glob(pattern, 0, nil, &g) == 0 else { return [] }
        var paths: [String] = []
        for i in 0..<Int(g.gl_pathc) {
            if let p = g.gl_pathv[i] { paths.append(String(cString: p)) }
        }
        return paths
    }

    private static func systemCanonical(_ path: String) -> String {
        guard let resolved = realpath(path, nil) else { return path }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    private static func systemResolve(_ host: String) -> [Resolved] {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, nil, &hints, &list) == 0, let first = list else { return [] }
        defer { freeaddrinfo(list) }
        var found: [Resolved] = []
        var cursor: UnsafeMutablePointer<addrinfo>? = first
        while let info = cursor {
            cursor = info.pointee.ai_next
            guard let sa = info.pointee.ai_addr else { continue }
            let address: Resolved
            if info.pointee.ai_family == AF_INET {
                let bytes = sa.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { sin in
                    withUnsafeBytes(of: sin.pointee.sin_addr) { Array($0) }
                }
                address = .ipv4(IPText.format(bytes))
            } else if info.pointee.ai_family == AF_INET6 {
                let bytes = sa.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { sin6 in
                    withUnsafeBytes(of: sin6.pointee.sin6_addr) { Array($0) }
                }
                address = .ipv6(IPText.format(bytes))
            } else {
                continue
            }
            if !found.contains(address) { found.append(address) }
        }
        return found
    }
}

/// Textual IP addresses, through the C library so ferry spells them as every other tool does.
enum IPText {
    static func parseIPv4(_ text: String) -> [UInt8]? {
        var addr = in_addr()
        guard inet_pton(AF_INET, text, &addr) == 1 else { return nil }
        return withUnsafeBytes(of: addr) { Array($0) }
    }

    /// An IPv4 address as nginx's configuration reads one (ngx_inet_addr): four decimal
    /// numbers from 0 to 255, leading zeros allowed and still decimal, so `127.0.0.010` is
    /// 127.0.0.10. inet_pton refuses leading zeros, and the resolver (inet_aton) would read
    /// them as octal: 127.0.0.8, another address than nginx's. Stricter than nginx in one
    /// way: an empty number (`127.0..1`, which nginx reads as 127.0.0.1) is refused.
    static func parseDecimalIPv4(_ text: String) -> [UInt8]? {
        var bytes: [UInt8] = []
        var value = 0, digits = 0
        for c in text.utf8 {
            if c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9") {
                value = value * 10 + Int(c - UInt8(ascii: "0"))
                digits += 1
                guard value <= 255 else { return nil }
            } else if c == UInt8(ascii: ".") {
                guard digits > 0, bytes.count < 3 else { return nil }
                bytes.append(UInt8(value))
                value = 0
                digits = 0
            } else {
                return nil
            }
        }
        guard digits > 0, bytes.count == 3 else { return nil }
        return bytes + [UInt8(value)]
    }

    /// Digits and dots only: meant as an IPv4 address, never as a host name to resolve.
    static func looksNumeric(_ text: String) -> Bool {
        !text.isEmpty && text.utf8.allSatisfy { ($0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9")) || $0 == UInt8(ascii: ".") }
    }

    static func parseIPv6(_ text: String) -> [UInt8]? {
        var addr = in6_addr()
        guard inet_pton(AF_INET6, text, &addr) == 1 else { return nil }
        return withUnsafeBytes(of: addr) { Array($0) }
    }

    /// 4 bytes to a dotted quad, 16 bytes to RFC 5952 text.
    static func format(_ bytes: [UInt8]) -> String {
        let family = bytes.count == 4 ? AF_INET : AF_INET6
        var buffer = [CChar](repeating: 0, count: 64)
        let ok = bytes.withUnsafeBytes { raw in
            buffer.withUnsafeMutableBufferPointer { inet_ntop(family, raw.baseAddress, $0.baseAddress, 64) != nil }
        }
        precondition(ok, "inet_ntop cannot fail on a 4- or 16-byte address")
        return String(cString: buffer)
    }
}
