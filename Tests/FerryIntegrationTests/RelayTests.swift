import XCTest
import Glibc

/// Bytes through ferry: bulk both ways, servers that speak first, half-close, idle timeout.
final class RelayTests: IntegrationCase {
    static let bulkSize = 64 << 20

    /// Sends `count` bytes of the stream seeded with `seed` on `fd`; returns the hash of what was sent.
    static func sendStream(_ fd: Int32, seed: UInt64, count: Int) -> (StreamHash, Int32) {
        var hash = StreamHash()
        var gen = ByteStream(seed: seed)
        let chunk = UnsafeMutableRawBufferPointer.allocate(byteCount: 256 * 1024, alignment: 16)
        defer { chunk.deallocate() }
        var left = count
        while left > 0 {
            let part = UnsafeMutableRawBufferPointer(rebasing: chunk[0..<min(left, chunk.count)])
            gen.fill(part)
            hash.update(UnsafeRawBufferPointer(part))
            var off = 0
            while off < part.count {
                let n = Glibc.send(fd, part.baseAddress! + off, part.count - off, Int32(MSG_NOSIGNAL))
                if n < 0 { if errno == EINTR { continue }; return (hash, errno) }
                off += n
            }
            left -= part.count
        }
        return (hash, 0)
    }

    /// Receives until EOF (or error/timeout) and hashes it.
    static func receiveStream(_ fd: Int32) -> (StreamHash, Int32) {
        var hash = StreamHash()
        let buf = UnsafeMutableRawBufferPointer.allocate(byteCount: 256 * 1024, alignment: 16)
        defer { buf.deallocate() }
        while true {
            let n = recv(fd, buf.baseAddress!, buf.count, 0)
            if n == 0 { return (hash, 0) }
            if n < 0 { if errno == EINTR { continue }; return (hash, errno) }
            hash.update(UnsafeRawBufferPointer(rebasing: buf[0..<n]))
        }
    }

    /// 1. 64 MiB of pseudo-random bytes each way at once arrive intact, in order, and complete.
    func testBulkBothWaysIntact() throws {
        let size = RelayTests.bulkSize
        struct Side { var sent = StreamHash(); var received = StreamHash(); var sendErr: Int32 = -1; var recvErr: Int32 = -1 }
        let server = Box(Side())
        let serverDone = DispatchSemaphoreLike()
        let b = try scripted { fd in
            Net.setTimeouts(fd, 15)
            let reader = TestThread {
                let (h, e) = RelayTests.receiveStream(fd)
                server.update { $0.received = h; $0.recvErr = e }
            }
            let (h, e) = RelayTests.sendStream(fd, seed: 0xB0B, count: size)
            server.update { $0.sent = h; $0.sendErr = e }
            shutdown(fd, Int32(SHUT_WR))
            _ = reader.join(timeout: 30)
            serverDone.signal()
        }
        let f = try ferry("server { listen LISTEN; proxy_pass 127.0.0.1:\(b.port); proxy_connect_timeout 1s; proxy_timeout 10s; }")
        let c = try TestClient.connect(f.listenPort, timeout: 15)
        let client = Box(Side())
        let writer = TestThread {
            let (h, e) = RelayTests.sendStream(c.fd, seed: 0xC11E, count: size)
            client.update { $0.sent = h; $0.sendErr = e }
            c.shutdownWrite()
        }
        let (h, e) = RelayTests.receiveStream(c.fd)
        client.update { $0.received = h; $0.recvErr = e }
        XCTAssertTrue(writer.join(timeout: 30), "client writer did not finish")
        XCTAssertTrue(serverDone.wait(timeout: 30), "backend did not finish")
        let s = server.value, k = client.value
        XCTAssertEqual(k.sendErr, 0, "client send failed: errno \(k.sendErr)")
        XCTAssertEqual(k.recvErr, 0, "client receive failed: errno \(k.recvErr)")
        XCTAssertEqual(s.sendErr, 0, "backend send failed: errno \(s.sendErr)")
        XCTAssertEqual(s.recvErr, 0, "backend receive failed: errno \(s.recvErr)")
        XCTAssertEqual(s.received.count, size, "client->backend byte count")
        XCTAssertEqual(k.received.count, size, "backend->client byte count")
        XCTAssertEqual(s.received.value, k.sent.value, "client->backend checksum")
        XCTAssertEqual(k.received.value, s.sent.value, "backend->client checksum")
    }

    /// 2. A server that speaks first: the banner reaches a client that sends nothing.
    func testServerSpeaksFirst() throws {
        let b = try backend("cccam-1")
        let f = try ferry("server { listen LISTEN; proxy_pass 127.0.0.1:\(b.port); proxy_connect_timeout 1s; proxy_timeout 5s; }")
        let start = Date()
        let c = try TestClient.connect(f.listenPort, timeout: 2)
        defer { c.close() }
        let bytes = try c.receive(exactly: TestBackend.bannerSize)
        XCTAssertEqual(bytes, TestBackend.banner("cccam-1"))
        XCTAssertLessThan(Date().timeIntervalSince(start), 2)
    }

    /// 3a. Client half-closes: the backend sees EOF and can still answer; the client gets it all.
    func testClientHalfCloseRelayed() throws {
        let b = try scripted { fd in
            Net.setTimeouts(fd, 5)
            let c = TestClient(fd: fcntl(fd, F_DUPFD_CLOEXEC, 0), timeout: 5)
            guard let got = try? c.receiveToEOF() else { try? c.send("backend saw no EOF"); return }
            usleep(100_000) // the answer must not depend on arriving before ferry sees the FIN
            try? c.send("got:" + String(decoding: got, as: UTF8.self))
        }
        let f = try ferry("server { listen LISTEN; proxy_pass 127.0.0.1:\(b.port); proxy_connect_timeout 1s; proxy_timeout 5s; }")
        let c = try TestClient.connect(f.listenPort, timeout: 5)
        try c.send("hello, half-closed")
        c.shutdownWrite()
        let reply = try c.receiveToEOF()
        XCTAssertEqual(String(decoding: reply, as: UTF8.self), "got:hello, half-closed")
    }

    /// 3b. Backend half-closes first: the client gets EOF and can still send; the backend gets it.
    func testServerHalfCloseRelayed() throws {
        let received = Box<String?>(nil)
        let b = try scripted { fd in
            Net.setTimeouts(fd, 5)
            let c = TestClient(fd: fcntl(fd, F_DUPFD_CLOEXEC, 0), timeout: 5)
            try? c.send("bye-from-server")
            c.shutdownWrite()
            let got = try? c.receiveToEOF()
            received.value = got.map { String(decoding: $0, as: UTF8.self) } ?? "<timeout or error>"
        }
        let f = try ferry("server { listen LISTEN; proxy_pass 127.0.0.1:\(b.port); proxy_connect_timeout 1s; proxy_timeout 5s; }")
        let c = try TestClient.connect(f.listenPort, timeout: 5)
        defer { c.close() }
        XCTAssertEqual(String(decoding: try c.receiveToEOF(), as: UTF8.self), "bye-from-server")
        usleep(100_000)
        try c.send("client-still-talking")
        c.shutdownWrite()
        XCTAssertTrue(waitUntil(timeout: 5) { received.value != nil }, "backend never finished reading")
        XCTAssertEqual(received.value, "client-still-talking")
    }

    /// 11. proxy_timeout ends a session idle both ways; one with traffic every 300 ms lives on.
    func testIdleTimeout() throws {
        let b = try backend("idle", .echo)
        let f = try ferry("server { listen LISTEN; proxy_pass 127.0.0.1:\(b.port); proxy_connect_timeout 1s; proxy_timeout 1s; }")

        let idle = try TestClient.connect(f.listenPort, timeout: 6)
        let start = Date()
        let ending = idle.waitForEnd()
        let elapsed = Date().timeIntervalSince(start)
        XCTAssertEqual(ending, .eof, "idle session should be closed by ferry")
        XCTAssertGreaterThanOrEqual(elapsed, 0.8, "closed before proxy_timeout")
        XCTAssertLessThanOrEqual(elapsed, 4, "not closed within 4 s of a 1 s proxy_timeout")

        let busy = try TestClient.connect(f.listenPort, timeout: 2)
        defer { busy.close() }
        let busyStart = Date()
        var round = 0
        while Date().timeIntervalSince(busyStart) < 2.5 && round < 20 {
            round += 1
            try busy.send([UInt8(round)])
            XCTAssertEqual(try busy.receive(exactly: 1), [UInt8(round)], "echo \(round) at \(Date().timeIntervalSince(busyStart)) s")
            usleep(300_000)
        }
        XCTAssertGreaterThanOrEqual(Date().timeIntervalSince(busyStart), 2.0)
        try busy.send([0xEE])
        XCTAssertEqual(try busy.receive(exactly: 1), [0xEE], "busy session did not survive past 2 s")
    }
}
