import XCTest
import Glibc

/// Runs the real ferry binary as a child process.
enum FerryProcess {
    /// The binary under test: $FERRY_BIN, or the debug build beside the sources.
    static var binary: String {
        if let p = getenv("FERRY_BIN") { return String(cString: p) }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return root.appendingPathComponent(".build/debug/ferry").path
    }

    struct Completed { var status: Int32; var stdout: String; var stderr: String }

    /// Runs ferry with `args` and waits (bounded by `timeout` seconds).
    static func runToCompletion(_ args: [String], timeout: TimeInterval = 20) throws -> Completed {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: binary)
        p.arguments = args
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let deadline = Date().addingTimeInterval(timeout)
        while p.isRunning && Date() < deadline { usleep(10_000) }
        if p.isRunning { p.terminate(); XCTFail("ferry \(args) did not finish in \(timeout)s") }
        p.waitUntilExit()
        return Completed(status: p.terminationStatus,
                         stdout: String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self),
                         stderr: String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self))
    }
}
