import XCTest
import Glibc

/// Start-up beside a running ferry and start-ups that fail half way: the second must fail
/// clearly and take nothing from the first; a failed one leaves no socket or pid file behind.
final class StartupTests: IntegrationCase {
    /// A second ferry (same file copied, started by mistake) on the first one's `listen unix:`
    /// path must fail like nginx (bind: Address already in use), not unlink the live socket and
    /// take its clients: the first would never accept again on that path, and whichever exits
    /// first removes the path the other still serves.
    func testSecondFerryDoesNotTakeALiveUnixListenSocket() throws {
        let b = try backend("first")
        let dir = try makeTemporaryDirectory("ferry-unix")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/l.sock"
        let f = try ferry("server { listen LISTEN; listen unix:\(path); proxy_pass 127.0.0.1:\(b.port); }")
        let conf = dir + "/second.conf"
        try "stream { server { listen unix:\(path); proxy_pass 127.0.0.1:\(b.port); } }\n"
            .write(toFile: conf, atomically: true, encoding: .utf8)
        let second = try FerryProcess.runToCompletion(["-c", conf], timeout: 5)
        XCTAssertEqual(second.status, 1, second.stderr)
        XCTAssertTrue(second.stderr.contains("bind() to unix:\(path) failed (98: Address already in use)"), second.stderr)
        XCTAssertTrue(second.stderr.contains("is another ferry running?"), second.stderr)
        let c = TestClient(fd: try AdminSocket.connect(path), timeout: 3)
        defer { c.close() }
        XCTAssertEqual(try c.banner(), "first", "the first ferry no longer serves its unix socket")
        XCTAssertTrue(f.isRunning)
    }
}
