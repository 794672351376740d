import XCTest
import Glibc

/// A fake HAProxy agent on loopback: every connection gets the current scripted reply, then
/// the agent closes. Each reply has a generation so a test can wait until the checker has
/// certainly read it: once two connections got it, the first one has been processed (a
/// server's agent checks run one at a time).
final class FakeAgent: @unchecked Sendable {
    private struct Served { var generation: Int }
    private let script = Box<(bytes: [UInt8], generation: Int)>((Array("up\n".utf8), 0))
    private let served = Box<[Served]>([])
    private var backend: ScriptedBackend! = nil
    var port: UInt16 { backend.port }

    init(_ first: String = "up", host: String = "127.0.0.1") throws {
        script.value = (Array((first + "\n").utf8), 0)
        backend = try ScriptedBackend(host: host) { [script, served] fd in
            let (bytes, generation) = script.value
            _ = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress!, $0.count, Int32(MSG_NOSIGNAL)) }
            served.update { $0.append(Served(generation: generation)) }
        }
    }

    /// From now on answer `line`, with "\n" unless `newline` is false (then the agent closes
    /// after the bytes, an incomplete line).
    func say(_ line: String, newline: Bool = true) {
        script.update { $0 = (Array((line + (newline ? "\n" : "")).utf8), $0.generation + 1) }
    }

    /// Connections served since the current reply was set.
    var servedCurrent: Int {
        let g = script.value.generation
        return served.value.filter { $0.generation == g }.count
    }

    var servedTotal: Int { served.value.count }

    /// Waits until `n` connections got the current reply.
    @discardableResult
    func waitServed(_ n: Int = 2, timeout: Double = 10) -> Bool {
        waitUntil(timeout: timeout) { servedCurrent >= n }
    }

    /// Stops listening: connections to its port are refused from now on.
    func stop() { backend.stop() }
}

extension IntegrationCase {
    func agent(_ first: String = "up", host: String = "127.0.0.1") throws -> FakeAgent {
        let a = try FakeAgent(first, host: host)
        addTeardownBlock { a.stop() }
        return a
    }
}

extension FerryInstance {
    /// Every log line of event `name`, decoded.
    func eventLines(_ name: String) -> [[String: Any]] {
        stderr.split(separator: "\n").compactMap { line in
            guard line.contains("\"event\":\"\(name)\""),
                  let o = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else { return nil }
            return o
        }
    }

    /// `server_state` lines for one server.
    func stateChanges(_ server: String) -> [[String: Any]] {
        eventLines("server_state").filter { $0["server"] as? String == server }
    }

    /// Waits for a `server_state` line for `server` with field/new as given; returns it.
    func waitForState(_ server: String, field: String, new: String, after count: Int = 0, timeout: Double = 10) -> [String: Any]? {
        var found: [String: Any]? = nil
        _ = waitUntil(timeout: timeout) {
            found = stateChanges(server).dropFirst(count).first { $0["field"] as? String == field && $0["new"] as? String == new }
            return found != nil
        }
        return found
    }
}

/// The wall-clock time of a log line (`time` is ISO 8601 with milliseconds, UTC).
func logTime(_ line: [String: Any]) -> Date? {
    guard let s = line["time"] as? String else { return nil }
    let f = DateFormatter()
    f.locale = Locale(identifier: "en_US_POSIX")
    f.dateFormat = "yyyy-MM-dd'T'HH:mm:ss.SSSxxx"
    return f.date(from: s)
}
