import XCTest
import Glibc
@testable import FerryCore

/// The connection-log writer on real descriptors: lines arrive whole, reopen follows a rename,
/// and a writer stuck on a slow file costs the caller nothing but counted drops.
final class LogFileTests: XCTestCase {
    func withDirectory(_ body: (String) throws -> Void) throws {
        var chars = Array("/tmp/ferry-logfile-XXXXXX".utf8CString)
        guard mkdtemp(&chars) != nil else { return XCTFail("mkdtemp") }
        let dir = String(cString: chars)
        defer { _ = try? FileManager.default.removeItem(atPath: dir) }
        try body(dir)
    }

    func lines(_ path: String) -> [String] {
        ((try? String(contentsOfFile: path, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
    }

    func testLinesArriveWholeAndInOrderAtClose() throws {
        try withDirectory { dir in
            let f = try LogFile(path: dir + "/a.log", bufferSize: 1024, flushInterval: nil, loop: nil)
            for i in 0..<500 { f.append("line \(i) " + String(repeating: "x", count: i % 50)) }
            f.close()
            let got = lines(dir + "/a.log")
            XCTAssertEqual(got.count + Int(f.dropped), 500)
            XCTAssertEqual(got.first, "line 0 ")
            // Kept lines are whole and in order (drops, if the writer fell behind, leave gaps only).
            let numbers = got.map { Int($0.split(separator: " ")[1])! }
            XCTAssertEqual(numbers, numbers.sorted())
            for l in got { XCTAssertEqual(l.count, "line \(l.split(separator: " ")[1]) ".count + Int(l.split(separator: " ")[1])! % 50) }
            XCTAssertEqual(f.linesAppended, 500)
            XCTAssertEqual(f.written, UInt64(got.count))
        }
    }

    /// A line for a file a reload already closed is counted as dropped, not kept in a buffer
    /// that no writer will take (it used to stay there, with a flush timer re-armed forever).
    func testALineAfterCloseIsCountedAsDropped() throws {
        try withDirectory { dir in
            let f = try LogFile(path: dir + "/a.log", bufferSize: 1024, flushInterval: nil, loop: nil)
            f.append("before")
            f.close()
            f.append("after")
            XCTAssertEqual(lines(dir + "/a.log"), ["before"])
            XCTAssertEqual(f.dropped, 1)
        }
    }

    func testReopenWritesIntoANewFileAtThePath() throws {
        try withDirectory { dir in
            let f = try LogFile(path: dir + "/a.log", bufferSize: 4096, flushInterval: nil, loop: nil)
            f.append("before")
            XCTAssertTrue(f.handOff())
            XCTAssertTrue(waitFor { self.lines(dir + "/a.log") == ["before"] })
            XCTAssertEqual(rename(dir + "/a.log", dir + "/a.log.1"), 0)
            f.reopen()
            XCTAssertTrue(waitFor { FileManager.default.fileExists(atPath: dir + "/a.log") })
            f.append("after")
            f.close()
            XCTAssertEqual(lines(dir + "/a.log.1"), ["before"])
            XCTAssertEqual(lines(dir + "/a.log"), ["after"])
        }
    }

    /// A FIFO nobody reads stands in for a disk that has stopped answering: the writer thread
    /// blocks in write(2), and the caller keeps going, dropping and counting lines.
    func testAStuckWriterNeverBlocksTheCaller() throws {
        try withDirectory { dir in
            let fifo = dir + "/slow"
            XCTAssertEqual(mkfifo(fifo, 0o600), 0)
            let reader = open(fifo, O_RDONLY | O_NONBLOCK)
            XCTAssertGreaterThanOrEqual(reader, 0)
            defer { close(reader) }
            let f = try LogFile(path: fifo, bufferSize: 8192, flushInterval: nil, loop: nil)
            let line = String(repeating: "y", count: 199)
            let started = MonotonicClock.now()
            // Past everything that may hold lines before any is dropped: the FIFO (64 KiB, up to
            // 1 MiB), and up to a burst each in the loop's buffer, the one handed over and the
            // writer's. On a loaded machine the writer thread can start late and take a buffer
            // that grew to a whole burst, so one burst's worth was sometimes all held.
            let total = (3 * LogFile.burstLimit + (1 << 20)) / 200 + 5000
            for _ in 0..<total { f.append(line) }
            let elapsed = Double(MonotonicClock.now() - started) / 1e9
            XCTAssertLessThan(elapsed, 2.0, "appending must not wait for the writer")
            XCTAssertGreaterThan(f.dropped, 0)
            XCTAssertEqual(f.linesAppended, UInt64(total))
            // Unblock the writer so close() can finish: drain the FIFO until the writer is done.
            let drained = DispatchSemaphore(value: 0)
            let drainer = Thread {
                defer { drained.signal() }
                var buf = [UInt8](repeating: 0, count: 65536)
                let deadline = Date().addingTimeInterval(10)
                while Date() < deadline {
                    let n = read(reader, &buf, buf.count)
                    if n == 0 { break }
                    if n < 0 { usleep(1000) }
                }
            }
            drainer.start()
            f.close()
            XCTAssertEqual(f.written + f.dropped, UInt64(total))
            // `reader` is closed when this returns: the drainer must be done first, or it goes on
            // reading that descriptor number, which the next test's next open(2) gets (it once
            // read a log file empty under testReopenWritesIntoANewFileAtThePath).
            XCTAssertEqual(drained.wait(timeout: .now() + 15), .success, "the drainer did not see the FIFO's end")
        }
    }

    func waitFor(_ condition: () -> Bool) -> Bool {
        for _ in 0..<500 { if condition() { return true }; usleep(10_000) }
        return condition()
    }
}
