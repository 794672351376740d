import XCTest
import Glibc

/// `busy_polling TIME`: after events the loop polls for up to TIME before it sleeps, so a
/// conversation whose messages come within TIME of each other keeps ferry awake, and an idle
/// ferry sleeps as without it. What it buys is measured by `make bench` (BENCHMARKS.md); here
/// only what the loop does: poll through short gaps, sleep when idle, follow a reload.
final class BusyPollingTests: IntegrationCase {
    /// Times ferry went to sleep of its own accord (voluntary context switches, from /proc):
    /// each is a blocking epoll_wait. Unlike CPU time, this does not depend on how much CPU a
    /// busy machine gives a polling ferry.
    func sleeps(_ pid: Int32) -> Int {
        let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix("voluntary_ctxt_switches:") } ?? ""
        return Int(line.split(separator: ":").last?.trimmingCharacters(in: .whitespaces) ?? "") ?? -1
    }

    /// Up to 300 messages, 2 ms apart, each echoed back through ferry: (rounds, times ferry slept).
    func chat(_ f: FerryInstance) throws -> (rounds: Int, sleeps: Int) {
        let c = try TestClient.connect(f.listenPort)
        defer { c.close() }
        XCTAssertEqual(try c.banner(), "echo")
        let before = sleeps(f.pid)
        let start = Date()
        var rounds = 0
        while Date().timeIntervalSince(start) < 2.0 && rounds < 300 {
            try c.send("ecm")
            XCTAssertEqual(try c.receive(exactly: 3), Array("ecm".utf8))
            usleep(2_000)
            rounds += 1
        }
        return (rounds, sleeps(f.pid) - before)
    }

    func testPollsThroughShortGapsSleepsWhenIdleAndFollowsAReload() throws {
        let b = try backend("echo")
        let stream = "server { listen LISTEN; proxy_pass 127.0.0.1:\(b.port); }"
        let f = try ferry(stream, main: "busy_polling 10ms;\nadmin_socket @DIR@/admin.sock;")
        // Gaps of 2 ms within a 10 ms window: ferry stays awake while the client talks (a gap
        // stretched past 10 ms by a busy machine may cost a sleep now and then).
        let polling = try chat(f)
        XCTAssertGreaterThan(polling.rounds, 50)
        XCTAssertLessThan(polling.sleeps, polling.rounds / 4, "ferry slept between messages 2 ms apart with busy_polling 10ms")
        // Idle, it sleeps: the window ends 10 ms after the last event.
        let idle = cpuShareOverOneSecond(f.pid)
        XCTAssertLessThan(idle, 0.1, "an idle ferry kept polling")
        // Turned off by a reload, ferry sleeps between messages again: at least once per
        // round trip (it waits for the server's reply and for the client's next message).
        try f.reloadOverAdmin(stream: stream, main: "busy_polling off;\nadmin_socket @DIR@/admin.sock;")
        let sleeping = try chat(f)
        XCTAssertGreaterThan(sleeping.rounds, 50)
        XCTAssertGreaterThanOrEqual(sleeping.sleeps, sleeping.rounds, "ferry still polled after a reload turned busy_polling off")
    }
}
