import XCTest
import Glibc

/// `proxy_download_rate` / `proxy_upload_rate`: nginx's per-session read rate, measured with
/// generous bounds (behaviour, not performance): 300 KB at 100k must take about two seconds
/// or more (the first second's allowance comes at once), and arrive intact; without a rate it
/// takes well under that.
final class RateLimitTests: IntegrationCase {
    static let size = 300 * 1024
    static let payload: [UInt8] = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ $0 >> 8) }

    /// A backend that sends the payload at once, then half-closes and waits for the client.
    private func sender() throws -> ScriptedBackend {
        try scripted { fd in
            Net.setTimeouts(fd, 15)
            var sent = 0
            while sent < RateLimitTests.size {
                let n = RateLimitTests.payload.withUnsafeBytes { send(fd, $0.baseAddress! + sent, RateLimitTests.size - sent, Int32(MSG_NOSIGNAL)) }
                if n <= 0 { return }
                sent += n
            }
            shutdown(fd, Int32(SHUT_WR))
            var b = [UInt8](repeating: 0, count: 64)
            while b.withUnsafeMutableBytes({ recv(fd, $0.baseAddress!, 64, 0) }) > 0 {}
        }
    }

    /// A backend that reads until EOF and answers with the byte count and whether the bytes were the payload.
    private func receiver() throws -> ScriptedBackend {
        try scripted { fd in
            Net.setTimeouts(fd, 15)
            var got: [UInt8] = []
            var buf = [UInt8](repeating: 0, count: 65536)
            while true {
                let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress!, 65536, 0) }
                if n <= 0 { break }
                got += buf[0..<n]
            }
            let answer = "\(got.count) \(got == RateLimitTests.payload ? "intact" : "corrupt")\n"
            _ = send(fd, answer, answer.utf8.count, Int32(MSG_NOSIGNAL))
        }
    }

    private func download(_ port: UInt16) throws -> (seconds: Double, intact: Bool) {
        let c = try TestClient.connect(port, timeout: 15)
        defer { c.close() }
        let start = Date()
        let got = try c.receiveToEOF()
        return (Date().timeIntervalSince(start), got == Self.payload)
    }

    private func upload(_ port: UInt16) throws -> (seconds: Double, answer: String) {
        let c = try TestClient.connect(port, timeout: 15)
        defer { c.close() }
        let start = Date()
        try c.send(Self.payload)
        c.shutdownWrite()
        let answer = String(decoding: try c.receiveToEOF(), as: UTF8.self)
        return (Date().timeIntervalSince(start), answer)
    }

    /// The server's bytes come at the rate, intact and followed by its FIN (a half-close that
    /// arrives while the direction rests is passed on once the bytes before it are through).
    func testDownloadRateLimitsServerToClient() throws {
        let b = try sender()
        let free = try Net.freePort()
        let f = try ferry("""
            server { listen LISTEN; proxy_pass 127.0.0.1:\(b.port); proxy_download_rate 100k; }
            server { listen 127.0.0.1:\(free); proxy_pass 127.0.0.1:\(b.port); }
            """)
        let fast = try download(free)
        XCTAssertTrue(fast.intact)
        XCTAssertLessThan(fast.seconds, 1.5, "without a rate the 300 KB took \(fast.seconds) s")
        let slow = try download(f.listenPort)
        XCTAssertTrue(slow.intact, "rate-limited bytes were not the payload")
        XCTAssertGreaterThan(slow.seconds, 1.8, "300 KB at 100k took only \(slow.seconds) s")
        XCTAssertLessThan(slow.seconds, 8, "300 KB at 100k took \(slow.seconds) s")
    }

    /// The client's bytes reach the server at the rate; the other direction is not limited.
    func testUploadRateLimitsClientToServer() throws {
        let b = try receiver()
        let f = try ferry("server { listen LISTEN; proxy_pass 127.0.0.1:\(b.port); proxy_upload_rate 100k; proxy_download_rate 0; }")
        let slow = try upload(f.listenPort)
        XCTAssertEqual(slow.answer, "\(Self.size) intact\n")
        XCTAssertGreaterThan(slow.seconds, 1.8, "300 KB at 100k took only \(slow.seconds) s")
        XCTAssertLessThan(slow.seconds, 8, "300 KB at 100k took \(slow.seconds) s")
    }

    /// A direction resting under its rate still ends with the session: a stop ends it at once
    /// instead of waiting for the transfer to finish at the rate.
    func testARestingSessionEndsAtShutdown() throws {
        let b = try sender()
        let f = try ferry("server { listen LISTEN; proxy_pass 127.0.0.1:\(b.port); proxy_download_rate 10k; }", main: "worker_shutdown_timeout 200ms;")
        let c = try TestClient.connect(f.listenPort, timeout: 10)
        defer { c.close() }
        XCTAssertFalse(try c.receiveSome().isEmpty)
        let start = Date()
        f.signal(SIGTERM)
        XCTAssertEqual(f.waitExit(timeout: 5), 0, "ferry did not stop cleanly: \(f.stderr)")
        XCTAssertLessThan(Date().timeIntervalSince(start), 3)
    }

    /// With half-close off, the server's FIN seen when a rest ends ends the whole session from the
    /// rate limiter's own timer: the bytes still arrive intact, and ferry goes on serving and
    /// stops cleanly (the session is released while that timer is still running).
    func testASessionEndedWhenARestEndsIsReleasedCleanly() throws {
        let b = try sender()
        let f = try ferry("server { listen LISTEN; proxy_pass 127.0.0.1:\(b.port); proxy_download_rate 200k; proxy_half_close off; }")
        for round in 0..<2 {
            let got = try download(f.listenPort)
            XCTAssertTrue(got.intact, "round \(round): the bytes were not the payload")
        }
        XCTAssertTrue(f.isRunning, f.stderr)
        f.signal(SIGTERM)
        XCTAssertEqual(f.waitExit(timeout: 5), 0, f.stderr)
    }
}
