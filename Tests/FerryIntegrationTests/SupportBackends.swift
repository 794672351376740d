import XCTest
import Glibc

/// A loopback backend on one thread with non-blocking sockets and poll(), so one instance
/// can hold thousands of connections. Counts accepted and currently open connections.
final class TestBackend: @unchecked Sendable {
    enum Mode {
        /// Sends a 16-byte banner naming the backend on accept (like a CCcam server), then echoes.
        case banner
        /// Echoes what it receives.
        case echo
        /// Replies with its name (16-byte banner form) to every read that returned data.
        case nameReply
    }

    static let bannerSize = 16

    static func banner(_ name: String) -> [UInt8] {
        var b = Array(name.utf8.prefix(bannerSize))
        b += [UInt8](repeating: UInt8(ascii: " "), count: bannerSize - b.count)
        return b
    }

    static func name(fromBanner b: [UInt8]) -> String {
        String(decoding: b, as: UTF8.self).trimmingCharacters(in: .whitespaces)
    }

    let name: String
    let mode: Mode
    let port: UInt16
    private var listenFD: Int32
    private let lock = NSLock()
    private var _accepted = 0
    private var _open = 0
    private var stopFlag = false
    private var finished = DispatchSemaphoreLike()

    convenience init(name: String, mode: Mode = .banner, port: UInt16 = 0) throws {
        self.init(name: name, mode: mode, listening: try Net.listen(port: port))
    }

    /// Serves on `fd`, a listening socket it now owns (BlackholeListener.release hands one over).
    init(name: String, mode: Mode = .banner, listening fd: Int32) {
        self.name = name
        self.mode = mode
        listenFD = fd
        Net.setNonBlocking(listenFD, true)
        self.port = Net.localPort(listenFD)
        let t = Thread { [self] in run() }
        t.stackSize = 1 << 20
        t.start()
    }

    var accepted: Int { lock.lock(); defer { lock.unlock() }; return _accepted }
    var open: Int { lock.lock(); defer { lock.unlock() }; return _open }

    /// Stops the thread, closes every connection and the listener (its port is then refused).
    func stop() {
        lock.lock()
        let already = stopFlag
        stopFlag = true
        lock.unlock()
        if already { return }
        if !finished.wait(timeout: 5) { XCTFail("backend \(name) did not stop in 5 s") }
    }

    /// One thread, level-triggered poll(): O(n) per wake-up, which is fine at 5,000 sockets.
    /// Slot 0 is the listener; closed connections leave the array at the next rebuild.
    private func run() {
        var fds = [pollfd(fd: listenFD, events: Int16(POLLIN), revents: 0)]
        var buf = [UInt8](repeating: 0, count: 65536)
        let reply = TestBackend.banner(name)
        while true {
            lock.lock(); let stopping = stopFlag; lock.unlock()
            if stopping { break }
            let n = poll(&fds, nfds_t(fds.count), 50)
            if n <= 0 { continue }
            var changed = false
            for i in 1..<max(1, fds.count) where fds[i].revents != 0 && fds[i].fd >= 0 {
                let fd = fds[i].fd
                let r = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress!, 65536, Int32(MSG_DONTWAIT)) }
                if r > 0 {
                    switch mode {
                    case .banner, .echo: _ = buf.withUnsafeBytes { Glibc.send(fd, $0.baseAddress!, r, Int32(MSG_NOSIGNAL | MSG_DONTWAIT)) }
                    case .nameReply: _ = reply.withUnsafeBytes { Glibc.send(fd, $0.baseAddress!, reply.count, Int32(MSG_NOSIGNAL | MSG_DONTWAIT)) }
                    }
                } else if r == 0 || (errno != EAGAIN && errno != EINTR) {
                    close(fd)
                    fds[i].fd = -1
                    changed = true
                    lock.lock(); _open -= 1; lock.unlock()
                }
            }
            if fds[0].revents != 0 {
                while true {
                    let fd = accept(listenFD, nil, nil)
                    if fd < 0 { break }
                    _ = fcntl(fd, F_SETFD, FD_CLOEXEC) // ferry children must not inherit it
                    fds.append(pollfd(fd: fd, events: Int16(POLLIN), revents: 0))
                    lock.lock(); _accepted += 1; _open += 1; lock.unlock()
                    if mode == .banner {
                        _ = reply.withUnsafeBytes { Glibc.send(fd, $0.baseAddress!, reply.count, Int32(MSG_NOSIGNAL | MSG_DONTWAIT)) }
                    }
                }
            }
            if changed { fds.removeAll { $0.fd < 0 } }
        }
        for p in fds.dropFirst() where p.fd >= 0 { close(p.fd) }
        lock.lock(); _open = 0; lock.unlock()
        close(listenFD)
        listenFD = -1
        finished.signal()
    }
}

/// A backend that hands each accepted connection (a blocking fd) to `handler` on its own
/// thread. For tests that need a scripted conversation: bulk transfer, half-close.
final class ScriptedBackend: @unchecked Sendable {
    let port: UInt16
    private let listenFD: Int32
    private let acceptThread: TestThread

    /// `handler` owns nothing: the connection is closed when it returns.
    init(host: String = "127.0.0.1", handler: @escaping (Int32) -> Void) throws {
        let fd = try Net.listen(host: host)
        listenFD = fd
        port = Net.localPort(fd)
        acceptThread = TestThread {
            while true {
                let c = accept(fd, nil, nil)
                if c < 0 { if errno == EINTR { continue }; break }
                _ = fcntl(c, F_SETFD, FD_CLOEXEC)
                _ = TestThread { handler(c); close(c) }
            }
        }
    }

    private let stopped = Box(false)

    /// Stops accepting. shutdown() wakes the blocked accept with EINVAL. Safe to call more than
    /// once (a test's own stop, then its teardown): only the first call touches the descriptor,
    /// whose number may belong to someone else by the second.
    func stop() {
        var first = false
        stopped.update { first = !$0; $0 = true }
        guard first else { return }
        shutdown(listenFD, Int32(SHUT_RDWR))
        _ = acceptThread.join(timeout: 5)
        close(listenFD)
    }
}

/// A listener that never completes a handshake: backlog 0 and its accept queue filled by
/// our own connections, so Linux drops further SYNs and connects to it time out. Nothing
/// calls accept() on it.
final class BlackholeListener {
    let port: UInt16
    private let listenFD: Int32
    private var fillers: [Int32] = []
    private var closed = false

    init() throws {
        listenFD = try Net.listen(backlog: 0)
        port = Net.localPort(listenFD)
        // The queue holds backlog+1 connections; fill until a handshake does not complete.
        for _ in 0..<8 {
            let fd = try Net.tcpSocket()
            Net.setNonBlocking(fd, true)
            var a = Net.address("127.0.0.1", port)
            _ = withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
            fillers.append(fd)
            var p = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
            if poll(&p, 1, 300) == 0 { return }
        }
        throw SocketError("could not fill the accept queue of a backlog-0 listener", 0)
    }

    func close() {
        guard !closed else { return }
        closed = true
        for f in fillers { Glibc.close(f) }
        fillers.removeAll()
        Glibc.close(listenFD)
    }

    /// Starts accepting: a banner backend called `name` takes the listening socket over. A
    /// connect that was waiting (its SYNs dropped) completes at its next SYN retransmission,
    /// 1 s, then 3 s, 7 s... after its first SYN. Our fillers close; the one in the accept
    /// queue stays there until the backend accepts it, which frees the queue.
    func release(as name: String) -> TestBackend {
        precondition(!closed, "release after close")
        closed = true
        let b = TestBackend(name: name, listening: listenFD)
        for f in fillers { Glibc.close(f) }
        fillers.removeAll()
        return b
    }

    deinit { close() }
}
