import XCTest
@testable import FerryCore

/// An environment with no disk and no DNS: files come from `files`, a few names resolve.
func offlineEnvironment(files: [String: String] = [:]) -> ConfigEnvironment {
    ConfigEnvironment(
        readFile: { path in
            if let text = files[path] { return .success(Array(text.utf8)) }
            return .failure(.init("open() \"\(path)\" failed (2: No such file or directory)"))
        },
        glob: { pattern in
            // Enough glob for the tests: a trailing `*.conf`.
            let prefix = String(pattern.dropLast("*.conf".count))
            return files.keys.filter { $0.hasPrefix(prefix) && $0.hasSuffix(".conf") }.sorted()
        },
        canonicalPath: { $0 },
        resolveHost: { host in
            switch host {
            case "localhost": return [.ipv4("127.0.0.1")]
            case "backend.example": return [.ipv4("192.0.2.10")]
            case "v6.example": return [.ipv6("2001:db8::10")]
            // one name, two loopback addresses, as /etc/hosts may give
            case "twin.example": return [.ipv4("127.0.0.2"), .ipv4("127.0.0.3")]
            case "dual.example": return [.ipv6("::1"), .ipv4("127.0.0.1")]
            default: return []
            }
        })
}

func load(_ text: String, files: [String: String] = [:]) throws -> LoadedConfig {
    try ConfigLoader.load(text: text, file: "t.conf", environment: offlineEnvironment(files: files))
}

let nowhere = SourceLocation(file: "", line: 0, column: 0)

extension Config {
    /// The same configuration with every location blanked, for comparing what was meant
    /// rather than where it was written.
    func normalized() -> Config {
        var c = self
        c.file = ""
        for i in c.upstreams.indices {
            c.upstreams[i].location = nowhere
            for j in c.upstreams[i].servers.indices { c.upstreams[i].servers[j].location = nowhere }
        }
        for i in c.listeners.indices {
            c.listeners[i].location = nowhere
            for j in c.listeners[i].listens.indices { c.listeners[i].listens[j].location = nowhere }
        }
        return c
    }
}

func v4(_ text: String, _ host: String, _ port: UInt16) -> ServerAddress {
    ServerAddress(written: text, endpoint: .ipv4(host: host, port: port))
}

func upstreamServer(_ address: ServerAddress, _ change: (inout UpstreamServerConfig) -> Void = { _ in }) -> UpstreamServerConfig {
    var s = UpstreamServerConfig(address: address, name: address.written, location: nowhere)
    change(&s)
    return s
}

func upstream(_ name: String, _ method: BalancingMethodConfig = .roundRobin, _ servers: [UpstreamServerConfig],
              _ change: (inout UpstreamConfig) -> Void = { _ in }) -> UpstreamConfig {
    var u = UpstreamConfig(name: name, location: nowhere)
    u.method = method
    u.servers = servers
    change(&u)
    return u
}

func listener(_ listens: [ListenConfig], _ target: ProxyTarget, _ change: (inout ListenerConfig) -> Void = { _ in }) -> ListenerConfig {
    var l = ListenerConfig(proxyPass: target, location: nowhere)
    l.listens = listens
    change(&l)
    return l
}

func listen(_ address: ServerAddress, _ change: (inout ListenConfig) -> Void = { _ in }) -> ListenConfig {
    var l = ListenConfig(address: address, location: nowhere)
    change(&l)
    return l
}

func config(_ change: (inout Config) -> Void) -> Config {
    var c = Config(file: "")
    change(&c)
    return c
}

/// The repository root, found from this file so no resources are needed in Package.swift.
let repositoryRoot: String = {
    var parts = #filePath.split(separator: "/", omittingEmptySubsequences: false)
    parts.removeLast(3)   // Tests/FerryCoreTests/<file>
    return parts.joined(separator: "/")
}()

extension ProxyTarget {
    /// `proxy_pass` of an address that stands for itself alone.
    static func address(_ a: ServerAddress) -> ProxyTarget { .addresses(a.written, [a]) }
}
