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

    /// A start that fails after the admin socket and a `listen unix:` socket were bound
    /// (here: metrics_listen on a port in use) removes both files: nothing half-started is
    /// left for the next start or for `ferry ctl` to trip over.
    func testFailedStartLeavesNoSocketFiles() throws {
        let busy = try Net.listen()
        defer { Glibc.close(busy) }
        let dir = try makeTemporaryDirectory("ferry-half")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let conf = dir + "/ferry.conf"
        try """
            pid \(dir)/ferry.pid;
            admin_socket \(dir)/admin.sock;
            metrics_listen 127.0.0.1:\(Net.localPort(busy));
            stream { server { listen unix:\(dir)/l.sock; proxy_pass 127.0.0.1:1; } }

            """.write(toFile: conf, atomically: true, encoding: .utf8)
        let r = try FerryProcess.runToCompletion(["-c", conf], timeout: 10)
        XCTAssertEqual(r.status, 1, r.stderr)
        XCTAssertTrue(r.stderr.contains("\"startup_failed\""), r.stderr)
        XCTAssertTrue(r.stderr.contains("(98: Address already in use)"), r.stderr)
        let left = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
        XCTAssertEqual(left.sorted(), ["ferry.conf"], "left behind by a failed start")
    }

    /// worker_rlimit_nofile above the hard limit (which only root can raise) cannot be had;
    /// ferry runs with the hard limit and says so, as nginx logs setrlimit's failure, instead
    /// of quietly starting with fewer descriptors than the file asks for.
    func testRlimitAboveTheHardLimitIsReported() throws {
        var lim = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &lim)
        guard lim.rlim_max < 1_000_000_000 else { throw XCTSkip("hard RLIMIT_NOFILE is unlimited here") }
        let f = try ferry("server { listen LISTEN; proxy_pass 127.0.0.1:1; }", main: "worker_rlimit_nofile 1000000000;")
        XCTAssertEqual(f.events("rlimit_nofile_capped"), 1, f.stderr)
        XCTAssertEqual(f.field("wanted", ofEvent: "rlimit_nofile_capped"), 1_000_000_000)
        XCTAssertEqual(f.field("nofile", ofEvent: "start"), f.field("hard_limit", ofEvent: "rlimit_nofile_capped"))
    }
}
