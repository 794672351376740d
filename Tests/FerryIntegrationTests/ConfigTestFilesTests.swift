import XCTest
import FerryCore

/// `ferry -t` opens the log files a configuration names, as `nginx -t` does: a file the start
/// could not open must fail the test, not the start or the reload an operator runs after it.
final class ConfigTestFilesTests: XCTestCase {
    func testUnopenableLogFilesFailTheTestAndMissingOnesAreCreated() throws {
        let dir = try makeTemporaryDirectory("ferry-t-files")
        let conf = dir + "/ferry.conf"
        func check(main: String = "", stream: String = "") throws -> (status: Int32, stderr: String) {
            try "\(main)\nstream { \(stream) server { listen 127.0.0.1:1; proxy_pass 127.0.0.1:1; } }\n"
                .write(toFile: conf, atomically: true, encoding: .utf8)
            let r = try FerryProcess.runToCompletion(["-t", "-c", conf])
            return (r.status, r.stderr)
        }

        let missingDir = try check(stream: "access_log \(dir)/no/such/dir/access.log;")
        XCTAssertEqual(missingDir.status, 1, missingDir.stderr)
        XCTAssertEqual(missingDir.stderr, """
            ferry: [emerg] open() "\(dir)/no/such/dir/access.log" failed (2: No such file or directory)
            ferry: configuration file \(conf) test failed

            """)

        // A FIFO nobody reads: the start fails with ENXIO, so the test does too (and does not hang).
        let fifo = dir + "/events.fifo"
        XCTAssertEqual(mkfifo(fifo, 0o600), 0)
        let noReader = try check(main: "error_log \(fifo) info;")
        XCTAssertEqual(noReader.status, 1, noReader.stderr)
        XCTAssertTrue(noReader.stderr.contains("open() \"\(fifo)\" failed (6: "), noReader.stderr)

        // A server block's own access_log is checked too.
        try "stream { server { listen 127.0.0.1:1; proxy_pass 127.0.0.1:1; access_log \(dir)/x/y.log; } }\n"
            .write(toFile: conf, atomically: true, encoding: .utf8)
        let perServer = try FerryProcess.runToCompletion(["-t", "-c", conf])
        XCTAssertEqual(perServer.status, 1, perServer.stderr)
        XCTAssertTrue(perServer.stderr.contains("open() \"\(dir)/x/y.log\" failed (2: "), perServer.stderr)

        // Paths that can be opened pass, and a missing file is created, as nginx -t creates it.
        let ok = try check(main: "error_log \(dir)/error.log;", stream: "access_log \(dir)/access.log;")
        XCTAssertEqual(ok.status, 0, ok.stderr)
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/access.log"))
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/error.log"))
    }
}
