import Foundation
import Glibc

/// A new directory under the temp dir; the caller removes it.
func makeTemporaryDirectory(_ prefix: String) throws -> String {
    var chars = Array((NSTemporaryDirectory() + prefix + "-XXXXXX").utf8CString)
    guard mkdtemp(&chars) != nil else { throw SocketError("mkdtemp") }
    return String(cString: chars)
}

/// A program a test runs beside ferry (HAProxy, ferry inside a network namespace), in a
/// directory of its own with its stderr in `stderr.log` there. `stop` sends SIGTERM, then
/// SIGKILL after 5 s, and removes the directory; it is safe to call more than once.
final class ChildProcess {
    let directory: String
    let stderrPath: String
    private let process = Process()

    init(directory: String, executable: String, arguments: [String]) throws {
        self.directory = directory
        stderrPath = directory + "/stderr.log"
        _ = FileManager.default.createFile(atPath: stderrPath, contents: nil)
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle(forWritingAtPath: stderrPath)!
        try process.run()
    }

    var isRunning: Bool { process.isRunning }
    var pid: Int32 { process.processIdentifier }
    var stderr: String { (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "" }

    func stop() {
        if process.isRunning {
            kill(pid, SIGTERM)
            if !waitUntil(timeout: 5, { !process.isRunning }) { kill(pid, SIGKILL) }
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(atPath: directory)
    }

    deinit { stop() }
}
