import XCTest
import Glibc

/// Socket plumbing for the integration tests, in plain Glibc so the tests exercise ferry
/// and not FerryCore's own wrappers. Every blocking call here is bounded by a timeout.
struct SocketError: Error, CustomStringConvertible {
    let what: String
    let code: Int32
    init(_ what: String, _ code: Int32 = errno) { self.what = what; self.code = code }
    var description: String { "\(what): \(String(cString: strerror(code))) (\(code))" }
}

enum Net {
    /// An IPv4 loopback sockaddr for `host` ("127.x.y.z") and `port`.
    static func address(_ host: String, _ port: UInt16) -> sockaddr_in {
        var a = sockaddr_in()
        a.sin_family = sa_family_t(AF_INET)
        a.sin_port = port.bigEndian
        precondition(inet_pton(AF_INET, host, &a.sin_addr) == 1, "bad address \(host)")
        return a
    }

    static func bind(_ fd: Int32, _ host: String, _ port: UInt16) throws {
        var a = address(host, port)
        let r = withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        if r != 0 { throw SocketError("bind \(host):\(port)") }
    }

    static func localPort(_ fd: Int32) -> UInt16 {
        var a = sockaddr_in()
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        return UInt16(bigEndian: a.sin_port)
    }

    static func tcpSocket() throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        if fd < 0 { throw SocketError("socket") }
        return fd
    }

    /// A loopback port nothing listens on right now: bind port 0 to learn one, then close.
    /// Connecting to it is refused (RST), which is also how tests get a "closed port".
    static func freePort() throws -> UInt16 {
        let fd = try tcpSocket()
        defer { close(fd) }
        try bind(fd, "127.0.0.1", 0)
        return localPort(fd)
    }

    static func setNonBlocking(_ fd: Int32, _ on: Bool) {
        let flags = fcntl(fd, F_GETFL)
        _ = fcntl(fd, F_SETFL, on ? flags | O_NONBLOCK : flags & ~O_NONBLOCK)
    }

    static func setTimeouts(_ fd: Int32, _ seconds: Double) {
        var tv = timeval(tv_sec: Int(seconds), tv_usec: Int((seconds - Double(Int(seconds))) * 1_000_000))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    static func setInt(_ fd: Int32, _ level: Int32, _ name: Int32, _ value: Int32) {
        var v = value
        setsockopt(fd, level, name, &v, socklen_t(MemoryLayout<Int32>.size))
    }

    /// Non-blocking connect from `source` (any 127/8 address works on Linux without configuring
    /// it) to host:port, waiting at most `timeout`. Returns the connected fd, still non-blocking.
    static func connectNonBlocking(to port: UInt16, host: String = "127.0.0.1", from source: String? = nil, timeout: Double) throws -> Int32 {
        let fd = try tcpSocket()
        do {
            if let s = source { try bind(fd, s, 0) }
            setNonBlocking(fd, true)
            var a = address(host, port)
            let r = withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
            if r != 0 {
                guard errno == EINPROGRESS else { throw SocketError("connect \(host):\(port)") }
                var p = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                let n = poll(&p, 1, Int32(timeout * 1000))
                if n == 0 { throw SocketError("connect \(host):\(port) timed out", ETIMEDOUT) }
                var err: Int32 = 0
                var len = socklen_t(MemoryLayout<Int32>.size)
                getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len)
                if err != 0 { throw SocketError("connect \(host):\(port)", err) }
            }
            return fd
        } catch {
            close(fd)
            throw error
        }
    }

    static func listen(host: String = "127.0.0.1", port: UInt16 = 0, backlog: Int32 = 4096) throws -> Int32 {
        let fd = try tcpSocket()
        setInt(fd, SOL_SOCKET, SO_REUSEADDR, 1)
        do {
            try bind(fd, host, port)
            if Glibc.listen(fd, backlog) != 0 { throw SocketError("listen") }
        } catch { close(fd); throw error }
        return fd
    }
}

/// A blocking client connection whose reads and writes time out (SO_RCVTIMEO/SO_SNDTIMEO).
final class TestClient {
    private(set) var fd: Int32
    let timeout: Double

    init(fd: Int32, timeout: Double) {
        self.fd = fd
        self.timeout = timeout
        Net.setNonBlocking(fd, false)
        Net.setTimeouts(fd, timeout)
    }

    /// Connects to 127.0.0.1:port, optionally from a chosen 127.x.y.z source address.
    static func connect(_ port: UInt16, from source: String? = nil, timeout: Double = 3) throws -> TestClient {
        TestClient(fd: try Net.connectNonBlocking(to: port, from: source, timeout: timeout), timeout: timeout)
    }

    deinit { close() }

    func close() {
        if fd >= 0 { Glibc.close(fd); fd = -1 }
    }

    /// Hands the descriptor over to the caller, who closes it.
    func detach() -> Int32 {
        defer { fd = -1 }
        return fd
    }

    /// Closes with RST instead of FIN (SO_LINGER 0).
    func reset() {
        var l = linger(l_onoff: 1, l_linger: 0)
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, socklen_t(MemoryLayout<linger>.size))
        close()
    }

    func send(_ bytes: [UInt8]) throws {
        var off = 0
        while off < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + off, bytes.count - off, Int32(MSG_NOSIGNAL)) }
            if n < 0 {
                if errno == EINTR { continue }
                throw SocketError("send")
            }
            off += n
        }
    }

    func send(_ s: String) throws { try send(Array(s.utf8)) }

    func shutdownWrite() { _ = shutdown(fd, Int32(SHUT_WR)) }

    /// One recv: bytes (empty at EOF). Throws on timeout or error.
    func receiveSome(max: Int = 65536) throws -> [UInt8] {
        var buf = [UInt8](repeating: 0, count: max)
        while true {
            let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress!, max, 0) }
            if n < 0 {
                if errno == EINTR { continue }
                throw SocketError("recv")
            }
            return Array(buf[0..<n])
        }
    }

    /// Exactly `count` bytes; throws on timeout, error, or EOF before `count`.
    func receive(exactly count: Int) throws -> [UInt8] {
        var out: [UInt8] = []
        while out.count < count {
            let chunk = try receiveSome(max: count - out.count)
            if chunk.isEmpty { throw SocketError("EOF after \(out.count) of \(count) bytes", 0) }
            out += chunk
        }
        return out
    }

    /// Everything until EOF (bounded by `limit` bytes and the socket timeout per read).
    func receiveToEOF(limit: Int = 1 << 20) throws -> [UInt8] {
        var out: [UInt8] = []
        while out.count <= limit {
            let chunk = try receiveSome()
            if chunk.isEmpty { return out }
            out += chunk
        }
        throw SocketError("more than \(limit) bytes before EOF", 0)
    }

    enum Ending: Equatable { case eof, reset, timeout, data }

    /// Waits for the connection to end; says how it ended (data received first counts as `.data`).
    func waitForEnd() -> Ending {
        var b: UInt8 = 0
        let n = recv(fd, &b, 1, 0)
        if n == 0 { return .eof }
        if n > 0 { return .data }
        if errno == EAGAIN || errno == EWOULDBLOCK { return .timeout }
        return .reset
    }

    /// Reads a 16-byte banner and returns it with padding trimmed.
    func banner() throws -> String {
        TestBackend.name(fromBanner: try receive(exactly: TestBackend.bannerSize))
    }
}

/// The process's own descriptor limit: fd-heavy tests raise the soft limit to the hard one.
enum ProcessLimits {
    @discardableResult
    static func raiseNoFile() -> Int {
        var r = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &r)
        if r.rlim_cur < r.rlim_max {
            r.rlim_cur = r.rlim_max
            setrlimit(Int32(RLIMIT_NOFILE.rawValue), &r)
            getrlimit(Int32(RLIMIT_NOFILE.rawValue), &r)
        }
        return Int(r.rlim_cur)
    }
}

/// FNV-1a over 64-bit little-endian words (plus a final partial word and the length):
/// order-sensitive like byte-wise FNV, but 8x fewer steps, which matters for 64 MiB in a debug build.
struct StreamHash: Equatable {
    private var h: UInt64 = 0xcbf2_9ce4_8422_2325
    private var pending: UInt64 = 0
    private var pendingCount = 0
    private(set) var count = 0

    private mutating func mix(_ w: UInt64) { h = (h ^ w) &* 0x0000_0100_0000_01B3; h ^= h >> 31 }

    mutating func update(_ p: UnsafeRawBufferPointer) {
        let n = p.count
        var i = 0
        count += n
        while pendingCount != 0 && i < n {
            pending |= UInt64(p[i]) << UInt64(8 * pendingCount)
            pendingCount += 1; i += 1
            if pendingCount == 8 { mix(pending); pending = 0; pendingCount = 0 }
        }
        while i + 8 <= n { mix(p.loadUnaligned(fromByteOffset: i, as: UInt64.self)); i += 8 }
        while i < n { pending |= UInt64(p[i]) << UInt64(8 * pendingCount); pendingCount += 1; i += 1 }
    }

    var value: UInt64 {
        var c = self
        c.mix(pending ^ (UInt64(pendingCount) << 56))
        c.mix(UInt64(count))
        return c.h
    }
}

/// A value shared between a test and its backend threads.
final class Box<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var v: T
    init(_ v: T) { self.v = v }
    var value: T {
        get { lock.lock(); defer { lock.unlock() }; return v }
        set { lock.lock(); v = newValue; lock.unlock() }
    }
    func update(_ f: (inout T) -> Void) { lock.lock(); f(&v); lock.unlock() }
}

/// A fast deterministic byte stream (xorshift64*), seeded per direction.
struct ByteStream {
    var state: UInt64
    init(seed: UInt64) { state = seed | 1 }
    mutating func fill(_ p: UnsafeMutableRawBufferPointer) {
        var i = 0
        while i + 8 <= p.count {
            state ^= state >> 12; state ^= state << 25; state ^= state >> 27
            p.storeBytes(of: state &* 0x2545_F491_4F6C_DD1D, toByteOffset: i, as: UInt64.self)
            i += 8
        }
        while i < p.count { state ^= state >> 12; state ^= state << 25; state ^= state >> 27; p[i] = UInt8(truncatingIfNeeded: state); i += 1 }
    }
}

/// Runs `body` on a new thread; `join()` waits (bounded) and reports whether it finished.
final class TestThread: @unchecked Sendable {
    private let done = DispatchSemaphoreLike()
    init(_ body: @escaping () -> Void) {
        let t = Thread { [done] in body(); done.signal() }
        t.stackSize = 1 << 20
        t.start()
    }
    func join(timeout: Double) -> Bool { done.wait(timeout: timeout) }
}

/// A one-shot completion flag with a bounded wait.
final class DispatchSemaphoreLike: @unchecked Sendable {
    private let cond = NSCondition()
    private var fired = false
    func signal() { cond.lock(); fired = true; cond.broadcast(); cond.unlock() }
    func wait(timeout: Double) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        cond.lock(); defer { cond.unlock() }
        while !fired { if !cond.wait(until: deadline) { return fired } }
        return true
    }
}

/// Polls `condition` every 10 ms until it holds or `timeout` passes; returns the last result.
func waitUntil(timeout: Double, _ condition: () -> Bool) -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        if condition() { return true }
        usleep(10_000)
    }
    return condition()
}
