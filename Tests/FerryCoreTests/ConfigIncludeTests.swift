import XCTest
@testable import FerryCore

/// `include` on real files: globs, paths relative to the main file (as nginx), loops, limits.
final class ConfigIncludeTests: XCTestCase {
    var dir = ""

    override func setUpWithError() throws {
        var template = Array("/tmp/ferry-include-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw XCTSkip("mkdtemp failed") }
        dir = String(cString: made)
    }

    override func tearDown() {
        _ = try? runProgram("/bin/rm", ["-rf", dir])
    }

    private func write(_ relative: String, _ text: String) throws {
        let path = dir + "/" + relative
        if let slash = path.lastIndex(of: "/") { _ = try runProgram("/bin/mkdir", ["-p", String(path[..<slash])]) }
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        XCTAssertGreaterThanOrEqual(fd, 0)
        _ = text.withCString { Glibc.write(fd, $0, strlen($0)) }
        close(fd)
    }

    func testGlobsExpandInOrderRelativeToTheMainFile() throws {
        try write("ferry.conf", "stream {\n  include conf.d/*.conf;\n  include servers/main.inc;\n}\n")
        try write("conf.d/20-b.conf", "upstream b { server 127.0.0.1:2; }\n")
        try write("conf.d/10-a.conf", "upstream a { server 127.0.0.1:1; }\n")
        // As nginx (its conf prefix): a relative include in an included file is relative to
        // the main file's directory, not to the file it is written in.
        try write("servers/main.inc", "server { listen 80; include conf.d/none-*.conf; include more/p.inc; }\n")
        try write("more/p.inc", "proxy_pass b;\n")
        try write("servers/more/p.inc", "proxy_pass a;\n")
        let loaded = try ConfigLoader.load(path: dir + "/ferry.conf")
        XCTAssertEqual(loaded.config.upstreams.map(\.name), ["a", "b"])
        XCTAssertEqual(loaded.config.upstreams[0].location, SourceLocation(file: dir + "/conf.d/10-a.conf", line: 1, column: 1))
        XCTAssertEqual(loaded.config.listeners[0].proxyPass, .upstream("b"))
    }

    func testErrorsNameTheIncludedFile() throws {
        try write("ferry.conf", "include sub.conf;\n")
        try write("sub.conf", "\n  lisen 80;\n")
        XCTAssertThrowsError(try ConfigLoader.load(path: dir + "/ferry.conf")) {
            XCTAssertEqual("\($0)", #"unknown directive "lisen" in \#(dir)/sub.conf:2:3; did you mean "listen"?"#)
        }
    }

    func testMissingFileAndLoopThroughASymlink() throws {
        try write("missing.conf", "include nothere.conf;\n")
        XCTAssertThrowsError(try ConfigLoader.load(path: dir + "/missing.conf")) {
            XCTAssertEqual("\($0)", #"open() "\#(dir)/nothere.conf" failed (2: No such file or directory) in \#(dir)/missing.conf:1:1"#)
        }
        try write("loop.conf", "include link.conf;\n")
        XCTAssertEqual(symlink(dir + "/loop.conf", dir + "/link.conf"), 0)
        XCTAssertThrowsError(try ConfigLoader.load(path: dir + "/loop.conf")) {
            XCTAssertEqual("\($0)", #"include loop: "\#(dir)/link.conf" is already being included in \#(dir)/loop.conf:1:1"#)
        }
    }

    func testMainFileErrorsHaveNoLocation() {
        XCTAssertThrowsError(try ConfigLoader.load(path: dir + "/absent.conf")) {
            XCTAssertEqual("\($0)", #"open() "\#(dir)/absent.conf" failed (2: No such file or directory)"#)
        }
    }

    func testDepthAndCountLimitsBoundTheWork() {
        // A chain of distinct files deeper than the limit.
        var files: [String: String] = [:]
        for i in 0..<40 { files["f\(i).conf"] = "include f\(i + 1).conf;" }
        XCTAssertThrowsError(try load("include f0.conf;", files: files)) {
            XCTAssertEqual("\($0)", #"includes nested too deeply (more than 16) in f15.conf:1:1"#)
        }
        // Fan-out: each file includes the next level three times; 3^8 files without the count limit.
        var fan: [String: String] = [:]
        for i in 0..<8 { fan["g\(i).conf"] = "include g\(i + 1).conf; include g\(i + 1).conf; include g\(i + 1).conf;" }
        fan["g8.conf"] = ""
        XCTAssertThrowsError(try load("include g0.conf;", files: fan)) {
            XCTAssertTrue("\($0)".hasPrefix("too many included files (more than 1024) in g"), "\($0)")
        }
    }
}

/// Runs a program and waits; the include tests use it for mkdir -p and rm -rf.
@discardableResult
func runProgram(_ program: String, _ arguments: [String], quiet: Bool = false) throws -> Int32 {
    var pid = pid_t()
    let argv = ([program] + arguments).map { strdup($0) } + [nil]
    defer { argv.forEach { free($0) } }
    // `quiet` sends stderr to /dev/null, for runs whose failure is the expected outcome.
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    if quiet { posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0) }
    guard posix_spawn(&pid, program, &actions, nil, argv, environ) == 0 else { throw XCTSkip("cannot spawn \(program)") }
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    return (status >> 8) & 0xff
}
