import XCTest
import FerryCore

/// The CLI's own argument handling, through the real binary.
final class CommandLineTests: XCTestCase {
    func testVersionAndUnknownOption() throws {
        let v = try FerryProcess.runToCompletion(["-v"])
        XCTAssertEqual(v.status, 0)
        XCTAssertEqual(v.stdout, "ferry version \(FerryCommand.version)\n")
        let bad = try FerryProcess.runToCompletion(["--frobnicate"])
        XCTAssertEqual(bad.status, 1)
        XCTAssertTrue(bad.stderr.hasPrefix("ferry: invalid option: \"--frobnicate\""), bad.stderr)
        let missing = try FerryProcess.runToCompletion(["-c"])
        XCTAssertEqual(missing.status, 1)
        XCTAssertEqual(missing.stderr, "ferry: option \"-c\" requires file name\n")
    }

    /// A pid file left by a ferry that did not clean up (SIGKILL, a crash) names a number the
    /// kernel may have given to another program: `ferry -s stop` must not SIGQUIT it.
    func testSignalRefusesAStalePidFile() throws {
        let dir = try makeTemporaryDirectory("ferry-pid")
        let conf = dir + "/ferry.conf", pidPath = dir + "/ferry.pid"
        try "pid \(pidPath);\nstream { server { listen 127.0.0.1:\(try Net.freePort()); proxy_pass 127.0.0.1:1; } }\n"
            .write(toFile: conf, atomically: true, encoding: .utf8)
        let stranger = Process()
        stranger.executableURL = URL(fileURLWithPath: "/bin/sleep")
        stranger.arguments = ["30"]
        try stranger.run()
        defer { stranger.terminate(); stranger.waitUntilExit() }
        try "\(stranger.processIdentifier)\n".write(toFile: pidPath, atomically: true, encoding: .utf8)
        for name in ["stop", "quit", "reload", "reopen"] {
            let r = try FerryProcess.runToCompletion(["-c", conf, "-s", name])
            XCTAssertEqual(r.status, 1, r.stderr)
            XCTAssertTrue(r.stderr.contains("is \"sleep\", not ferry"), r.stderr)
        }
        usleep(100_000)
        XCTAssertTrue(stranger.isRunning, "ferry -s signalled a process that is not ferry")
        // No process at all with that number: said as such.
        try "999999999\n".write(toFile: pidPath, atomically: true, encoding: .utf8)
        let gone = try FerryProcess.runToCompletion(["-c", conf, "-s", "reload"])
        XCTAssertEqual(gone.status, 1)
        XCTAssertTrue(gone.stderr.contains("the pid file is stale"), gone.stderr)
    }
}
