import XCTest
import Glibc

/// The connection log on a full disk: sessions keep flowing, lost lines are counted in the
/// metrics and announced in the event log.
final class LogFullDiskTests: IntegrationCase {
    /// A 16 KiB tmpfs when running as root (mount(8) works), else /dev/full, whose every write
    /// fails with ENOSPC: both are "the disk is full" as far as write(2) tells ferry.
    func fullDiskLogPath() throws -> (path: String, how: String) {
        let dir = try temporaryDirectory(self, "ferry-full")
        if geteuid() == 0 {
            let mount = Process()
            mount.executableURL = URL(fileURLWithPath: "/bin/mount")
            mount.arguments = ["-t", "tmpfs", "-o", "size=16k", "tmpfs", dir]
            mount.standardError = FileHandle.nullDevice
            if (try? mount.run()) != nil {
                mount.waitUntilExit()
                if mount.terminationStatus == 0 {
                    addTeardownBlock {
                        let u = Process()
                        u.executableURL = URL(fileURLWithPath: "/bin/umount")
                        u.arguments = ["-l", dir]
                        try? u.run()
                        u.waitUntilExit()
                    }
                    return (dir + "/access.log", "tmpfs of 16 KiB")
                }
            }
        }
        return ("/dev/full", "/dev/full")
    }

    func testSessionsFlowAndDropsAreCounted() throws {
        let (path, how) = try fullDiskLogPath()
        let b = try backend("b1", .banner)
        let mport = try Net.freePort()
        let f = try ferry("""
            access_log \(path) buffer=4k flush=50ms;
            server { listen LISTEN; proxy_pass 127.0.0.1:\(b.port); }
            """, main: "metrics_listen 127.0.0.1:\(mport);")
        XCTAssertTrue(waitUntil(timeout: 5) { FerryInstance.isListening(mport) })
        let sessions = 300
        var ok = 0
        let started = Date()
        for _ in 0..<sessions {
            if (try? bannerThrough(f.listenPort)) == "b1" { ok += 1 }
            if Date().timeIntervalSince(started) > 60 { break }
        }
        XCTAssertEqual(ok, sessions, "every session relayed with the log on \(how)")
        func scrape() -> [ExpositionChecker.Sample] {
            guard let r = try? HTTPExchange.send("GET /metrics HTTP/1.1\r\n\r\n", port: mport) else { return [] }
            return ExpositionChecker.check(r.body).samples
        }
        func metric(_ s: [ExpositionChecker.Sample], _ name: String) -> Double {
            s.first { $0.name == name && $0.labels["path"] == path }?.value ?? -1
        }
        func keptLines() -> [Substring] {
            path == "/dev/full" ? [] : JSONLinesFile(path: path).text.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
        }
        var samples: [ExpositionChecker.Sample] = []
        // Sessions end (and produce their line) just after their clients close: wait until every
        // line is accounted for, written or dropped.
        XCTAssertTrue(waitUntil(timeout: 15) {
            samples = scrape()
            let dropped = metric(samples, "ferry_connection_log_dropped_lines_total")
            return metric(samples, "ferry_connection_log_lines_total") == Double(sessions) && dropped > 0
                && (path == "/dev/full" ? dropped == Double(sessions) : Double(keptLines().count) + dropped >= Double(sessions))
        }, "lines not all written or counted on \(how): \(samples.filter { $0.name.hasPrefix("ferry_connection_log") })")
        XCTAssertLessThanOrEqual(metric(samples, "ferry_connection_log_dropped_lines_total"), Double(sessions))
        XCTAssertTrue(waitUntil(timeout: 5) { f.events("log_lines_dropped") > 0 }, f.stderr)
        XCTAssertTrue(f.stderr.contains("\"path\":\"\(path)\""), f.stderr)
        if path != "/dev/full" {
            // What did fit is whole lines: every line in the file parses, but for at most one
            // cut short when the disk filled (that one is counted as dropped).
            let lines = keptLines()
            let parsed = lines.filter { (try? JSONSerialization.jsonObject(with: Data($0.utf8))) != nil }
            XCTAssertGreaterThanOrEqual(parsed.count, lines.count - 1, "at most one line cut by the full disk")
            XCTAssertGreaterThan(parsed.count, 0, "the first lines fit in 16 KiB")
            let dropped = metric(samples, "ferry_connection_log_dropped_lines_total")
            XCTAssertEqual(Double(parsed.count) + dropped, Double(sessions), accuracy: 1)
        }
        XCTAssertTrue(f.isRunning)
    }
}
