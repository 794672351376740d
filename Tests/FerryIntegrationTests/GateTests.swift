import XCTest
import Glibc

/// Who gets in and when: capacity, allow/deny, retry switched off, the graceful-stop deadline.
final class GateTests: IntegrationCase {
    /// At capacity ferry stops accepting: the next client waits in the backlog (no banner, not
    /// refused) and is served as soon as a session ends. Established sessions are kept. The log
    /// has one line for the whole episode, however many clients it lets in one by one, and one
    /// when the overload is over.
    func testCapacityHoldsNextClientInBacklog() throws {
        let b = try backend("cap")
        let f = try ferry("server { listen LISTEN; proxy_pass 127.0.0.1:\(b.port); proxy_connect_timeout 1s; proxy_timeout 30s; }",
                          main: "worker_rlimit_nofile 200;")
        XCTAssertEqual(f.field("nofile", ofEvent: "start"), 200, f.stderr)
        let capacity = try XCTUnwrap(f.field("capacity", ofEvent: "start"))
        XCTAssertGreaterThan(capacity, 10)
        XCTAssertLessThan(capacity, 100, "two descriptors per session must bound capacity below nofile/2")
        var held: [TestClient] = []
        defer { held.forEach { $0.close() } }
        for i in 0..<capacity {
            let c = try TestClient.connect(f.listenPort)
            XCTAssertEqual(try c.banner(), "cap", "session \(i)")
            held.append(c)
        }
        XCTAssertTrue(waitUntil(timeout: 2) { f.events("capacity_reached") == 1 }, f.stderr)
        let waiting = try TestClient.connect(f.listenPort, timeout: 0.7)
        defer { waiting.close() }
        XCTAssertThrowsError(try waiting.receive(exactly: 16), "a client beyond capacity was served")
        XCTAssertEqual(b.open, capacity)
        held.removeFirst().close()
        Net.setTimeouts(waiting.fd, 3)
        XCTAssertEqual(TestBackend.name(fromBanner: try waiting.receive(exactly: 16)), "cap", "waiting client not served after a session ended")
        held.append(waiting)
        // Churn at capacity: each ending lets exactly one waiting client in; still one episode.
        for i in 0..<5 {
            let next = try TestClient.connect(f.listenPort, timeout: 3)
            held.removeFirst().close()
            XCTAssertEqual(try next.banner(), "cap", "waiting client \(i) not served")
            held.append(next)
        }
        XCTAssertEqual(held.count, capacity)
        // Past the settle time: the gate reopened six times but closed again at once each time.
        usleep(UInt32(1_500_000))
        XCTAssertEqual(f.events("capacity_reached"), 1, f.stderr)
        XCTAssertEqual(f.events("accepting_resumed"), 0, "a resume logged while clients kept filling the room:\n\(f.stderr)")
        try held.last!.send("x")
        XCTAssertEqual(try held.last!.receive(exactly: 1), Array("x".utf8), "an established session was disturbed")
        // The overload ends: room stays free, and one line says so.
        held.removeFirst().close()
        held.removeFirst().close()
        XCTAssertTrue(waitUntil(timeout: 4) { f.events("accepting_resumed") == 1 }, f.stderr)
        XCTAssertEqual(f.events("capacity_reached"), 1, f.stderr)
    }

    /// allow/deny: first match wins; a denied client is closed and never reaches a server.
    func testAllowDeny() throws {
        let b = try backend("acl")
        let f = try ferry("server { listen LISTEN; proxy_pass 127.0.0.1:\(b.port); allow 127.0.0.1; deny 127.0.0.0/8; proxy_connect_timeout 1s; proxy_timeout 5s; }")
        XCTAssertEqual(try bannerThrough(f.listenPort, from: "127.0.0.1"), "acl")
        let denied = try TestClient.connect(f.listenPort, from: "127.0.0.2", timeout: 3)
        defer { denied.close() }
        let ending = denied.waitForEnd()
        XCTAssertTrue(ending == .eof || ending == .reset, "denied client got \(ending)")
        usleep(100_000)
        XCTAssertEqual(b.accepted, 1, "the denied client reached the backend")
    }

    /// proxy_next_upstream off: a refused connect ends the session instead of trying the next server.
    func testNextUpstreamOffDoesNotRetry() throws {
        let closed = try Net.freePort()
        let live = try backend("live")
        let f = try ferry("""
            upstream u { server 127.0.0.1:\(closed) name=dead weight=5; server 127.0.0.1:\(live.port) name=live; }
            server { listen LISTEN; proxy_pass u; proxy_connect_timeout 1s; proxy_timeout 5s; proxy_next_upstream off; }
            """)
        let c = try TestClient.connect(f.listenPort, timeout: 3)
        defer { c.close() }
        let ending = c.waitForEnd()
        XCTAssertTrue(ending == .eof || ending == .reset, "client should be closed, got \(ending)")
        XCTAssertEqual(live.accepted, 0, "the session was retried on the next server")
        XCTAssertEqual(f.events("connect_failed"), 1, f.stderr)
    }

    /// worker_shutdown_timeout bounds a graceful stop: sessions still open are ended after it.
    func testShutdownTimeoutEndsLingeringSessions() throws {
        let b = try backend("linger")
        let f = try ferry("server { listen LISTEN; proxy_pass 127.0.0.1:\(b.port); proxy_connect_timeout 1s; proxy_timeout 30s; }",
                          main: "worker_shutdown_timeout 1s;")
        let c = try TestClient.connect(f.listenPort, timeout: 6)
        defer { c.close() }
        XCTAssertEqual(try c.banner(), "linger")
        let start = Date()
        f.signal(SIGTERM)
        let status = f.waitExit(timeout: 5)
        let elapsed = Date().timeIntervalSince(start)
        XCTAssertEqual(status, 0, f.stderr)
        XCTAssertGreaterThanOrEqual(elapsed, 0.8, "ended sessions before worker_shutdown_timeout")
        XCTAssertLessThanOrEqual(elapsed, 4)
        let ending = c.waitForEnd()
        XCTAssertTrue(ending == .eof || ending == .reset, "got \(ending)")
    }

    /// Descriptors run out below the computed capacity (here: the limit is lowered under the
    /// running ferry; in production ENFILE, or descriptors held by something the capacity does
    /// not foresee). The client that finds out may be lost, but the clients behind it wait in
    /// the backlog instead of being accepted and dropped one after another; one log line for
    /// the episode; they are served when sessions end, and established sessions are kept.
    func testDescriptorExhaustionHoldsClientsInBacklog() throws {
        let b = try backend("fd")
        let f = try ferry("server { listen LISTEN; proxy_pass 127.0.0.1:\(b.port); proxy_connect_timeout 1s; proxy_timeout 30s; }",
                          main: "worker_rlimit_nofile 300;")
        // prlimit(1) from util-linux: Glibc's prlimit(2) wrapper is not visible to Swift.
        let lower = Process()
        lower.executableURL = URL(fileURLWithPath: "/usr/bin/prlimit")
        lower.arguments = ["--pid", "\(f.pid)", "--nofile=160:300"]
        try lower.run()
        lower.waitUntilExit()
        XCTAssertEqual(lower.terminationStatus, 0, "prlimit failed")
        let capacity = try XCTUnwrap(f.field("capacity", ofEvent: "start"))
        var held: [TestClient] = []
        defer { held.forEach { $0.close() } }
        var dropped = 0
        var waiting: [TestClient] = []
        defer { waiting.forEach { $0.close() } }
        while held.count + dropped < capacity && waiting.isEmpty {
            // Until ferry says descriptors ran out, a slow banner is only a loaded machine.
            let c = try TestClient.connect(f.listenPort, timeout: f.events("descriptors_exhausted") == 0 ? 3 : 0.5)
            if let banner = try? c.banner() {
                XCTAssertEqual(banner, "fd")
                held.append(c)
                continue
            }
            Net.setTimeouts(c.fd, 0.05)
            let ending = c.waitForEnd()
            if ending == .timeout { waiting.append(c) } else { dropped += 1; c.close() }
        }
        XCTAssertFalse(waiting.isEmpty, "descriptors never ran out below capacity \(capacity)")
        XCTAssertLessThanOrEqual(dropped, 1, "clients were accepted and dropped instead of waiting in the backlog")
        for _ in 0..<4 { waiting.append(try TestClient.connect(f.listenPort, timeout: 0.05)) }
        // Longer than the one-second retry: waiting clients stay in the backlog while descriptors lack.
        usleep(1_500_000)
        for (i, c) in waiting.enumerated() {
            XCTAssertEqual(c.waitForEnd(), .timeout, "waiting client \(i) was accepted and dropped")
        }
        XCTAssertEqual(f.events("descriptors_exhausted"), 1, f.stderr)
        XCTAssertEqual(f.field("nofile", ofEvent: "descriptors_exhausted"), 160, "the limit in force, not the one at start")
        XCTAssertEqual(f.events("accepting_resumed"), 0, f.stderr)
        XCTAssertEqual(b.open, held.count)
        for _ in 0..<waiting.count { held.removeFirst().close() }
        for (i, c) in waiting.enumerated() {
            Net.setTimeouts(c.fd, 3)
            XCTAssertEqual(TestBackend.name(fromBanner: (try? c.receive(exactly: 16)) ?? []), "fd", "waiting client \(i) not served after sessions ended")
        }
        try held.last!.send("x")
        XCTAssertEqual(try held.last!.receive(exactly: 1), Array("x".utf8), "an established session was disturbed")
        // Descriptors come free: the retry lifts the ceiling, and the episode's one end line.
        for _ in 0..<10 { held.removeFirst().close() }
        XCTAssertTrue(waitUntil(timeout: 5) { f.events("accepting_resumed") == 1 }, f.stderr)
        XCTAssertEqual(f.events("descriptors_exhausted"), 1, f.stderr)
        // The ceiling rose by what the lowered limit frees, not by what the limit at start
        // would: more clients than fit are served or wait, and none is accepted and dropped.
        var late: [TestClient] = []
        defer { late.forEach { $0.close() } }
        var lateDropped = 0
        for _ in 0..<15 {
            let c = try TestClient.connect(f.listenPort, timeout: 0.5)
            if (try? c.banner()) != nil { late.append(c); continue }
            Net.setTimeouts(c.fd, 0.05)
            if c.waitForEnd() == .timeout { late.append(c) } else { lateDropped += 1; c.close() }
        }
        XCTAssertEqual(lateDropped, 0, "clients were dropped: the ceiling was lifted past the descriptors free\n\(f.stderr)")
    }

    /// accept4 failing for lack of kernel memory (ENOBUFS/ENOMEM, injected by strace) leaves the
    /// client in the backlog and the listener readable: ferry pauses and retries every 100 ms
    /// instead of spinning, logs the episode once, serves the waiting client once accept works
    /// again, and keeps its established session.
    func testAcceptOutOfMemoryPausesInsteadOfSpinning() throws {
        let strace = "/usr/bin/strace"
        guard FileManager.default.isExecutableFile(atPath: strace) else {
            throw XCTSkip("needs strace (apt-get install strace; .ci/run installs it)")
        }
        let b = try backend("mem")
        let f = try ferry("server { listen LISTEN; proxy_pass 127.0.0.1:\(b.port); proxy_connect_timeout 1s; proxy_timeout 30s; }")
        let established = try TestClient.connect(f.listenPort)
        defer { established.close() }
        XCTAssertEqual(try established.banner(), "mem")
        let trace = f.directory.appendingPathComponent("accept4.trace").path
        let said = f.directory.appendingPathComponent("strace.stderr").path
        _ = FileManager.default.createFile(atPath: said, contents: nil)
        let injector = Process()
        injector.executableURL = URL(fileURLWithPath: strace)
        injector.arguments = ["-p", "\(f.pid)", "-o", trace, "-e", "trace=accept4", "-e", "inject=accept4:error=ENOBUFS"]
        injector.standardOutput = FileHandle.nullDevice
        injector.standardError = FileHandle(forWritingAtPath: said)!
        try injector.run()
        defer { if injector.isRunning { injector.terminate() }; injector.waitUntilExit() }
        guard waitUntil(timeout: 5, { ((try? String(contentsOfFile: said, encoding: .utf8)) ?? "").contains("attached") }) else {
            throw XCTSkip("strace could not attach to ferry (ptrace not permitted here)")
        }
        let waiting = try TestClient.connect(f.listenPort, timeout: 3)
        defer { waiting.close() }
        usleep(1_500_000)
        let calls = ((try? String(contentsOfFile: trace, encoding: .utf8)) ?? "").split(separator: "\n").filter { $0.contains("accept4(") }.count
        XCTAssertGreaterThan(calls, 2, "the injected failure was never hit")
        // 1.5 s at one try per 100 ms is about 15; a spinning listener makes thousands.
        XCTAssertLessThan(calls, 60, "ferry retried accept4 \(calls) times in 1.5 s")
        XCTAssertEqual(f.events("memory_exhausted"), 1, f.stderr)
        XCTAssertEqual(f.events("accepting_resumed"), 0, f.stderr)
        injector.terminate()
        injector.waitUntilExit()
        Net.setTimeouts(waiting.fd, 3)
        XCTAssertEqual(TestBackend.name(fromBanner: (try? waiting.receive(exactly: 16)) ?? []), "mem", "the waiting client was not served once accept worked again")
        XCTAssertTrue(waitUntil(timeout: 4) { f.events("accepting_resumed") == 1 }, f.stderr)
        try established.send("x")
        XCTAssertEqual(try established.receive(exactly: 1), Array("x".utf8), "an established session was disturbed")
    }

    /// The capacity leaves room for every descriptor the configuration may hold besides
    /// sessions: all listen sockets of a server block, and the admin and metrics sockets with
    /// as many clients as they take. Sessions fill up to capacity with all of those held and
    /// descriptors never run out (they did: each server block counted as one listen socket and
    /// admin and metrics clients came out of a small reserve).
    func testCapacityLeavesRoomForEveryListenSocketAndControlClient() throws {
        let b = try backend("cap")
        let ports = try distinctFreePorts(41)
        let mport = ports[40]
        let listens = ports[0..<40].map { " listen 127.0.0.1:\($0);" }.joined()
        let f = try ferry("server { listen LISTEN;\(listens) proxy_pass 127.0.0.1:\(b.port); proxy_connect_timeout 1s; proxy_timeout 30s; }",
                          main: "worker_rlimit_nofile 300; admin_socket @DIR@/admin.sock; metrics_listen 127.0.0.1:\(mport);")
        XCTAssertTrue(waitUntil(timeout: 5) { FerryInstance.isListening(mport) })
        let capacity = try XCTUnwrap(f.field("capacity", ofEvent: "start"))
        // Control clients at their bounds (64 admin, 16 metrics), silent: each holds a descriptor.
        var control: [Int32] = []
        defer { control.forEach { Glibc.close($0) } }
        for _ in 0..<64 { control.append(try AdminSocket.connect(f.adminPath)) }
        for _ in 0..<16 { control.append(try TestClient.connect(mport).detach()) }
        var held: [TestClient] = []
        defer { held.forEach { $0.close() } }
        for i in 0..<capacity {
            let c = try TestClient.connect(f.listenPort, timeout: 2)
            guard let banner = try? c.banner() else { XCTFail("session \(i) of \(capacity) not served:\n\(f.stderr)"); break }
            XCTAssertEqual(banner, "cap")
            held.append(c)
        }
        XCTAssertTrue(waitUntil(timeout: 2) { f.events("capacity_reached") == 1 }, f.stderr)
        XCTAssertEqual(f.events("descriptors_exhausted"), 0, f.stderr)
    }
}
