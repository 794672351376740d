import XCTest
import Glibc

/// How the admin socket cuts its input into commands, as HAProxy 2.6 does: only complete lines
/// run, every complete line sent before the answers end is run, every command (an empty one
/// too) gets an answer, and only a complete line keeps a silent client's place.
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

    /// Without `prompt`, every line received by the time the earlier ones are answered is run,
    /// then the connection closes (the client does not have to close first).
    func testPipelinedLinesAreAllRun() throws {
        let f = try twoServers()
        XCTAssertEqual(try exchange(f.adminPath, "set weight u/b1 7\nset weight u/b2 7\n", finish: false), "\n\n")
        XCTAssertEqual(try weights(f), "7 (initial 5)\n\n7 (initial 5)\n\n")
        XCTAssertEqual(try exchange(f.adminPath, "set weight u/b1 4\nget weight u/b1\nset weight u/b2 4\n", finish: false),
                       "\n4 (initial 5)\n\n\n")
        // `prompt` twice is back to one-shot mode, and the line after it is still answered.
        XCTAssertEqual(try exchange(f.adminPath, "prompt\nprompt\nget weight u/b1\n", finish: false), "\n> \n4 (initial 5)\n\n")
        // A line still arriving when the first answer is done keeps the connection open for its rest.
        let c = TestClient(fd: try AdminSocket.connect(f.adminPath), timeout: 5)
        try c.send("set weight u/b1 2\nset weight u/")
        XCTAssertEqual(try c.receive(exactly: 1), Array("\n".utf8))
        usleep(300_000)
        try c.send("b2 2\n")
        XCTAssertEqual(String(decoding: try c.receiveToEOF(), as: UTF8.self), "\n")
        XCTAssertEqual(try weights(f), "2 (initial 5)\n\n2 (initial 5)\n\n")
    }

    /// Blank lines, whitespace and `;;` are empty commands; each is answered with HAProxy's
    /// unknown-command text (and a prompt after each in prompt mode), never with silence.
    func testEmptyCommandsAreAnswered() throws {
        let f = try twoServers()
        let help = "Unknown command. Please enter one of the following commands only:\n"
        for input in ["\n", "   \n", "\t\r\n"] {
            let answer = try exchange(f.adminPath, input, finish: false)
            XCTAssertTrue(answer.hasPrefix(help), "\(input.debugDescription): \(answer)")
            XCTAssertTrue(answer.contains("  get weight <bk>/<srv>"), "the command list follows")
            XCTAssertTrue(answer.hasSuffix("\n\n"), "ends with an empty line")
            XCTAssertEqual(answer.components(separatedBy: help).count - 1, 1)
        }
        let four = try exchange(f.adminPath, ";;;\n", finish: false)
        XCTAssertEqual(four.components(separatedBy: help).count - 1, 4, four)
        XCTAssertEqual(four.components(separatedBy: "\n\n").count - 1, 4, "four answers, each ending with an empty line")
        let after = try exchange(f.adminPath, "get weight u/b1;\n", finish: false)
        XCTAssertTrue(after.hasPrefix("5 (initial 5)\n\n" + help), after)
        let helpAnswer = try exchange(f.adminPath, "\n", finish: false)
        XCTAssertEqual(try exchange(f.adminPath, "prompt\n\n;get weight u/b1\nquit\n", finish: false),
                       "\n> " + helpAnswer + "> " + helpAnswer + "> 5 (initial 5)\n\n> ")
        XCTAssertEqual(try exchange(f.adminPath, "set severity-output number;\n", finish: false).prefix(6 + help.count), "\n[3]: " + help)
    }

    /// In prompt mode the prompt follows every command, also several on one line.
    func testPromptAfterEachCommand() throws {
        let f = try twoServers()
        XCTAssertEqual(try exchange(f.adminPath, "prompt\nget weight u/b1;get weight u/b2\n", finish: true),
                       "\n> 5 (initial 5)\n\n> 5 (initial 5)\n\n> ")
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
