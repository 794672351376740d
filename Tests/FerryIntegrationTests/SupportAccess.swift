import XCTest
import Glibc

/// IPv6 loopback plumbing, a backend that records what reaches it, and HAProxy as a peer.
enum Net6 {
    static func address(_ host: String, _ port: UInt16) -> sockaddr_in6 {
        var a = sockaddr_in6()
        a.sin6_family = sa_family_t(AF_INET6)
        a.sin6_port = port.bigEndian
        precondition(inet_pton(AF_INET6, host, &a.sin6_addr) == 1, "bad address \(host)")
        return a
    }

    /// A port free on [::1] right now.
    static func freePort() throws -> UInt16 {
        let fd = socket(AF_INET6, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        if fd < 0 { throw SocketError("socket6") }
        defer { close(fd) }
        var a = address("::1", 0)
        let r = withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) } }
        if r != 0 { throw SocketError("bind [::1]:0") }
        return localPort(fd)
    }

    /// The local port of an IPv4 or IPv6 socket.
    static func localPort(_ fd: Int32) -> UInt16 {
        var s = sockaddr_storage()
        var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
        _ = withUnsafeMutablePointer(to: &s) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        return withUnsafeBytes(of: s) { raw in
            Int32(s.ss_family) == AF_INET6 ? UInt16(bigEndian: raw.load(as: sockaddr_in6.self).sin6_port)
                                           : UInt16(bigEndian: raw.load(as: sockaddr_in.self).sin_port)
        }
    }

    /// A blocking client connected to [::1]:port within `timeout`.
    static func connect(_ port: UInt16, timeout: Double = 3) throws -> TestClient {
        let fd = socket(AF_INET6, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        if fd < 0 { throw SocketError("socket6") }
        Net.setNonBlocking(fd, true)
        var a = address("::1", port)
        let r = withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) } }
        if r != 0 {
            guard errno == EINPROGRESS else { close(fd); throw SocketError("connect [::1]:\(port)") }
            var p = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
            if poll(&p, 1, Int32(timeout * 1000)) == 0 { close(fd); throw SocketError("connect [::1]:\(port) timed out", ETIMEDOUT) }
            var err: Int32 = 0
            var len = socklen_t(MemoryLayout<Int32>.size)
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len)
            if err != 0 { close(fd); throw SocketError("connect [::1]:\(port)", err) }
        }
        return TestClient(fd: fd, timeout: timeout)
    }
}

extension TestClient {
    var localPort: UInt16 { Net6.localPort(fd) }

    /// Whether ferry closed this client without serving it: EOF or reset, and no byte first.
    func wasRefused() -> Bool {
        let e = waitForEnd()
        return e == .eof || e == .reset
    }
}

/// A backend that records, per connection, every byte up to and including the first
/// occurrence of `marker`, answers "ok", then holds the connection until the peer closes.
/// What a server behind ferry (or HAProxy) receives is then compared byte for byte.
final class RecordingBackend: @unchecked Sendable {
    let received = Box<[[UInt8]]>([])
    private let backend: ScriptedBackend
    var port: UInt16 { backend.port }

    init(marker: [UInt8] = Array("hello".utf8)) throws {
        let received = self.received
        backend = try ScriptedBackend { fd in
            Net.setTimeouts(fd, 5)
            var got: [UInt8] = []
            var buf = [UInt8](repeating: 0, count: 4096)
            while got.count < 16_384 {
                let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress!, 4096, 0) }
                if n <= 0 { break }
                got += buf[0..<n]
                if got.count >= marker.count && RecordingBackend.contains(got, marker) { break }
            }
            received.update { $0.append(got) }
            _ = send(fd, "ok", 2, Int32(MSG_NOSIGNAL))
            // Hold until the peer closes (bounded by the receive timeout).
            while buf.withUnsafeMutableBytes({ recv(fd, $0.baseAddress!, 4096, 0) }) > 0 {}
        }
    }

    static func contains(_ hay: [UInt8], _ needle: [UInt8]) -> Bool {
        guard hay.count >= needle.count else { return false }
        for i in 0...(hay.count - needle.count) where Array(hay[i..<i + needle.count]) == needle { return true }
        return false
    }

    /// Waits (bounded) until `count` connections have been recorded.
    func waitForRecords(_ count: Int, timeout: Double = 5) -> [[UInt8]] {
        _ = waitUntil(timeout: timeout) { received.value.count >= count }
        return received.value
    }

    func stop() { backend.stop() }
}

/// HAProxy as a peer, in the foreground, logging to a file in its temp directory.
final class HAProxyInstance {
    static let binary = "/usr/sbin/haproxy"
    private let child: ChildProcess
    var directory: String { child.directory }

    /// `body` is everything after `global`/`defaults` (frontends and backends); `port` is one
    /// of its bind ports on 127.0.0.1, waited for before returning.
    init(_ body: String, waitForPort port: UInt16) throws {
        let directory = try makeTemporaryDirectory("ferry-haproxy")
        let config = """
            global
                maxconn 200
            defaults
                mode tcp
                timeout connect 3s
                timeout client 20s
                timeout server 20s
            \(body)

            """
        let path = directory + "/haproxy.cfg"
        try config.write(toFile: path, atomically: true, encoding: .utf8)
        child = try ChildProcess(directory: directory, executable: HAProxyInstance.binary, arguments: ["-db", "-f", path])
        guard waitUntil(timeout: 5, { [child] in !child.isRunning || FerryInstance.isListening(port) }), child.isRunning else {
            let log = child.stderr
            child.stop()
            throw SocketError("haproxy did not listen on \(port) in 5 s:\n\(config)\n\(log)", 0)
        }
    }

    func stop() { child.stop() }
}

extension IntegrationCase {
    func recorder(marker: [UInt8] = Array("hello".utf8)) throws -> RecordingBackend {
        let r = try RecordingBackend(marker: marker)
        addTeardownBlock { r.stop() }
        return r
    }

    func haproxy(_ body: String, waitForPort port: UInt16) throws -> HAProxyInstance {
        guard FileManager.default.isExecutableFile(atPath: HAProxyInstance.binary) else {
            throw XCTSkip("haproxy is not installed at \(HAProxyInstance.binary)")
        }
        let h = try HAProxyInstance(body, waitForPort: port)
        addTeardownBlock { h.stop() }
        return h
    }
}

/// Text for comparing recorded bytes in failure messages (v2 headers are binary).
func printable(_ bytes: [UInt8]) -> String {
    bytes.map { $0 >= 0x20 && $0 < 0x7f ? String(UnicodeScalar($0)) : String(format: "\\x%02x", $0) }.joined()
}
