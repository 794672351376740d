import XCTest
import Glibc

/// How the admin socket cuts its input into commands, as HAProxy 2.6 does: only complete lines
/// run, and only a complete line keeps a silent client's place.
final class AdminFramingTests: IntegrationCase {
    let main = "admin_socket @DIR@/admin.sock;"

    func twoServers() throws -> FerryInstance {
        let b = try ["b1", "b2"].map { try backend($0) }
        return try ferry("""
            upstream u { server 127.0.0.1:\(b[0].port) name=b1 weight=5; server 127.0.0.1:\(b[1].port) name=b2 weight=5; }
            server { listen LISTEN; proxy_pass u; }
            """, main: main)
    }

    /// Sends `input` in one write, then closes the sending side if `finish`; reads to EOF.
    func exchange(_ path: String, _ input: String, finish: Bool) throws -> String {
        let c = TestClient(fd: try AdminSocket.connect(path), timeout: 5)
        try c.send(input)
        if finish { c.shutdownWrite() }
        return String(decoding: try c.receiveToEOF(), as: UTF8.self)
    }

    func weights(_ f: FerryInstance) throws -> String {
        try AdminSocket.command(f.adminPath, "get weight u/b1; get weight u/b2")
    }

    /// A script killed in the middle of `set weight u/b1 100` must not leave b1 at weight 1.
    func testLineCutOffBeforeItsNewlineIsNotRun() throws {
        let f = try twoServers()
        XCTAssertEqual(try exchange(f.adminPath, "set weight u/b1 1", finish: true), "")
        XCTAssertEqual(try exchange(f.adminPath, "prompt\nset weight u/b2 2", finish: true), "\n> ")
        XCTAssertEqual(try exchange(f.adminPath, "set weight u/b1 3\nset weight u/b2 3", finish: true), "\n")
        XCTAssertEqual(try weights(f), "3 (initial 5)\n\n5 (initial 5)\n\n")
    }

    /// Only a complete line (or output taken) re-arms the 10 s idle timeout: a client dripping
    /// a byte every 3 s is closed after 10 s, while a prompt-mode client sending a line as
    /// often stays. Without this, 64 drippers hold every place for as long as they like.
    func testIdleTimeoutIgnoresBytesWithoutANewline() throws {
        let f = try twoServers()
        let dripper = TestClient(fd: try AdminSocket.connect(f.adminPath), timeout: 3)
        let talker = TestClient(fd: try AdminSocket.connect(f.adminPath), timeout: 3)
        try talker.send("prompt\n")
        XCTAssertEqual(try talker.receive(exactly: 3), Array("\n> ".utf8))
        let start = Date()
        var closedAfter: Double?
        while Date().timeIntervalSince(start) < 16 {
            try? dripper.send("x")
            try talker.send("get weight u/b1\n")
            XCTAssertEqual(String(decoding: try talker.receive(exactly: 17), as: UTF8.self), "5 (initial 5)\n\n> ")
            // Waits up to 3 s (the socket timeout) for the dripper's end.
            if dripper.waitForEnd() == .eof {
                closedAfter = Date().timeIntervalSince(start)
                break
            }
        }
        let after = try XCTUnwrap(closedAfter, "a client sending bytes without a newline was never timed out")
        XCTAssertGreaterThan(after, 8.5)
        XCTAssertLessThan(after, 13.5)
        try talker.send("get weight u/b2\n")
        XCTAssertEqual(String(decoding: try talker.receive(exactly: 17), as: UTF8.self), "5 (initial 5)\n\n> ",
                       "a client sending complete lines keeps its place")
        XCTAssertTrue(f.isRunning)
    }
}
