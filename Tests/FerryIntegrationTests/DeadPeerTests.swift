import XCTest
import Glibc

/// Two network namespaces the test creates, joined by a veth pair: ferry and its servers
/// in one (192.0.2.1, plus its own loopback), clients in the other (192.0.2.2). Setting the
/// client side's link down makes a client vanish without FIN or RST: ferry's packets to it
/// are dropped, exactly as when a client's line dies. Nothing touches the machine's own
/// namespace; needs root (or CAP_NET_ADMIN) and `ip`, else the test is skipped.
final class NetnsLab {
    let ferryNS: String
    let clientNS: String
    static let ferryAddress = "192.0.2.1"
    private var created: [String] = []

    init() throws {
        guard getuid() == 0, FileManager.default.isExecutableFile(atPath: "/usr/sbin/ip") else {
            throw XCTSkip("network namespaces need root and /usr/sbin/ip")
        }
        let tag = "\(getpid() % 100_000)-\(Int.random(in: 0..<1000))"
        ferryNS = "ferry-dp-s\(tag)"
        clientNS = "ferry-dp-c\(tag)"
        do {
            for ns in [ferryNS, clientNS] {
                try ip(["netns", "add", ns])
                created.append(ns)
                try ip(["-n", ns, "link", "set", "lo", "up"])
            }
            // Created inside the ferry namespace, the peer moved straight into the client's.
            try ip(["-n", ferryNS, "link", "add", "fv", "type", "veth", "peer", "name", "cv", "netns", clientNS])
            try ip(["-n", ferryNS, "addr", "add", "\(NetnsLab.ferryAddress)/24", "dev", "fv"])
            try ip(["-n", clientNS, "addr", "add", "192.0.2.2/24", "dev", "cv"])
            try ip(["-n", ferryNS, "link", "set", "fv", "up"])
            try ip(["-n", clientNS, "link", "set", "cv", "up"])
        } catch {
            close()
            throw XCTSkip("cannot build the namespace lab here: \(error)")
        }
    }

    /// The client side's link goes down: from now on nothing reaches the clients and they send nothing.
    func cutClients() throws { try ip(["-n", clientNS, "link", "set", "cv", "down"]) }

    func close() {
        for ns in created.reversed() { _ = try? ip(["netns", "del", ns]) }
        created.removeAll()
    }

    deinit { close() }

    @discardableResult
    func ip(_ args: [String]) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/sbin/ip")
        p.arguments = args
        let err = Pipe()
        p.standardError = err
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        guard waitUntil(timeout: 10, { !p.isRunning }) else { p.terminate(); throw SocketError("ip \(args) hung", 0) }
        p.waitUntilExit()
        let text = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        guard p.terminationStatus == 0 else { throw SocketError("ip \(args.joined(separator: " ")): \(text)", 0) }
        return text
    }

    /// Runs `body` on this thread inside namespace `ns`: sockets it creates live there for good.
    /// setns(CLONE_NEWNET) is per thread, so the rest of the test process is unaffected.
    func inside<T>(_ ns: String, _ body: () throws -> T) throws -> T {
        // setns is a GNU extension Swift's Glibc module does not declare: found at run time.
        typealias SetNS = @convention(c) (Int32, Int32) -> Int32
        guard let sym = dlsym(nil, "setns") else { throw SocketError("no setns", 0) }
        let setns = unsafeBitCast(sym, to: SetNS.self)
        let cloneNewNet: Int32 = 0x4000_0000
        let original = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC)
        let target = open("/run/netns/\(ns)", O_RDONLY | O_CLOEXEC)
        defer { Glibc.close(original); Glibc.close(target) }
        guard original >= 0, target >= 0, setns(target, cloneNewNet) == 0 else { throw SocketError("setns \(ns)") }
        defer { precondition(setns(original, cloneNewNet) == 0, "could not return to the test's network namespace") }
        return try body()
    }

    /// Starts ferry inside the ferry namespace with `stream` as its stream block.
    func ferry(_ stream: String) throws -> NetnsFerry { try NetnsFerry(lab: self, stream: stream) }
}

/// ferry run with `ip netns exec` (which execs, so the pid is ferry's).
final class NetnsFerry {
    private let child: ChildProcess

    init(lab: NetnsLab, stream: String) throws {
        let directory = try makeTemporaryDirectory("ferry-netns")
        let config = directory + "/ferry.conf"
        try "stream {\n\(stream)\n}\n".write(toFile: config, atomically: true, encoding: .utf8)
        child = try ChildProcess(directory: directory, executable: "/usr/sbin/ip",
                                 arguments: ["netns", "exec", lab.ferryNS, FerryProcess.binary, "-c", config])
        guard waitUntil(timeout: 5, { [child] in !child.isRunning || child.stderr.contains("\"event\":\"start\"") }),
              child.isRunning else {
            let log = child.stderr
            child.stop()
            throw SocketError("ferry did not start in the namespace:\n\(log)", 0)
        }
    }

    var stderr: String { child.stderr }
    var openFDCount: Int { (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(child.pid)/fd").count) ?? -1 }

    func stop() { child.stop() }
}

/// A backend that sends a banner, then waits for its connection to end and notes when.
final class EndWatchingBackend: @unchecked Sendable {
    let ended = Box<Date?>(nil)
    let accepted = Box(0)
    private let backend: ScriptedBackend
    var port: UInt16 { backend.port }

    init(name: String, host: String = "127.0.0.1") throws {
        let ended = self.ended, accepted = self.accepted
        backend = try ScriptedBackend(host: host) { fd in
            accepted.update { $0 += 1 }
            Net.setTimeouts(fd, 60)
            _ = TestBackend.banner(name).withUnsafeBytes { send(fd, $0.baseAddress!, $0.count, Int32(MSG_NOSIGNAL)) }
            var b = [UInt8](repeating: 0, count: 256)
            // EOF or reset ends it; a 60 s timeout (EAGAIN) would mean ferry never let go.
            while true {
                let n = b.withUnsafeMutableBytes { recv(fd, $0.baseAddress!, 256, 0) }
                if n > 0 { continue }
                if n < 0 && errno == EINTR { continue }
                if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) { return }
                break
            }
            ended.value = Date()
        }
    }

    func stop() { backend.stop() }
}

final class DeadPeerTests: IntegrationCase {
    /// A client that vanishes without FIN is found by keepalive probes (so_keepalive=1:1:2) and
    /// TCP_USER_TIMEOUT (tcp_user_timeout 3s) and its session and server connection are released
    /// within seconds; the same vanished client on a listener without them is still held.
    func testVanishedClientIsDetectedAndReleased() throws {
        let lab = try NetnsLab()
        defer { lab.close() }
        let (watched, control) = try lab.inside(lab.ferryNS) { (try EndWatchingBackend(name: "watched"), try EndWatchingBackend(name: "control")) }
        defer { watched.stop(); control.stop() }
        let a = NetnsLab.ferryAddress
        let f = try lab.ferry("""
            server { listen \(a):12001 so_keepalive=1:1:2; proxy_pass 127.0.0.1:\(watched.port); tcp_user_timeout 3s; proxy_timeout 10m; }
            server { listen \(a):12002; proxy_pass 127.0.0.1:\(control.port); proxy_timeout 10m; }
            """)
        defer { f.stop() }
        let (c1, c2) = try lab.inside(lab.clientNS) {
            (TestClient(fd: try Net.connectNonBlocking(to: 12001, host: a, timeout: 3), timeout: 3),
             TestClient(fd: try Net.connectNonBlocking(to: 12002, host: a, timeout: 3), timeout: 3))
        }
        defer { c1.close(); c2.close() }
        XCTAssertEqual(try c1.banner(), "watched")
        XCTAssertEqual(try c2.banner(), "control")
        let fdsBefore = f.openFDCount
        try lab.cutClients()
        let cut = Date()
        // Expected near idle 1 s + 2 probes x 1 s, or the 3 s user timeout: allow 20 s on a busy machine.
        XCTAssertTrue(waitUntil(timeout: 20) { watched.ended.value != nil }, "the vanished client's session was not released:\n\(f.stderr)")
        if let end = watched.ended.value {
            let took = end.timeIntervalSince(cut)
            print("dead peer: session released \(String(format: "%.2f", took)) s after the client vanished")
            XCTAssertGreaterThan(took, 1.5, "released before any probe could have failed")
            XCTAssertLessThan(took, 20)
        }
        XCTAssertTrue(waitUntil(timeout: 2) { f.openFDCount == fdsBefore - 2 }, "ferry holds \(f.openFDCount) descriptors, expected \(fdsBefore - 2)")
        // Without keepalive or a user timeout the same loss goes unnoticed.
        usleep(1_000_000)
        XCTAssertNil(control.ended.value, "the control session ended: the test cannot tell detection from something else")
    }

    /// The same for a server that vanishes: `proxy_socket_keepalive 1:1:2` and the user timeout
    /// on the server socket end the session, and the client is told with a reset.
    func testVanishedServerIsDetectedAndTheClientReleased() throws {
        let lab = try NetnsLab()
        defer { lab.close() }
        let far = try lab.inside(lab.clientNS) { try EndWatchingBackend(name: "far", host: "192.0.2.2") }
        defer { far.stop() }
        let f = try lab.ferry("""
            server { listen 127.0.0.1:12003; proxy_pass 192.0.2.2:\(far.port); proxy_socket_keepalive 1:1:2; tcp_user_timeout 3s; proxy_timeout 10m; }
            server { listen 127.0.0.1:12004; proxy_pass 192.0.2.2:\(far.port); proxy_timeout 10m; }
            """)
        defer { f.stop() }
        let (watched, control) = try lab.inside(lab.ferryNS) {
            (TestClient(fd: try Net.connectNonBlocking(to: 12003, timeout: 3), timeout: 20),
             TestClient(fd: try Net.connectNonBlocking(to: 12004, timeout: 3), timeout: 1))
        }
        defer { watched.close(); control.close() }
        XCTAssertEqual(try watched.banner(), "far")
        XCTAssertEqual(try control.banner(), "far")
        try lab.cutClients()
        let cut = Date()
        let ending = watched.waitForEnd()
        let took = Date().timeIntervalSince(cut)
        print("dead peer: server loss ended the session \(String(format: "%.2f", took)) s after the server vanished")
        XCTAssertTrue(ending == .reset || ending == .eof, "the session on a vanished server was not ended: \(ending)\n\(f.stderr)")
        XCTAssertGreaterThan(took, 1.5)
        XCTAssertLessThan(took, 19)
        XCTAssertEqual(control.waitForEnd(), .timeout, "the control session ended: the test cannot tell detection from something else")
    }
}
