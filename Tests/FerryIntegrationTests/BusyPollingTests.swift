import XCTest
import Glibc

/// `busy_polling TIME`: after events the loop polls for up to TIME before it sleeps, so a
/// conversation whose messages come within TIME of each other keeps ferry on the CPU, and an
/// idle ferry sleeps as without it. The figures it buys are in BENCHMARKS.md; here only what
/// the loop does: poll through short gaps, sleep when idle, follow a reload.
final class BusyPollingTests: IntegrationCase {
    /// A message every 2 ms for a second, each echoed back through ferry; the CPU share ferry
    /// used over that second.
    func cpuShareWhileChatting(_ f: FerryInstance) throws -> Double {
        let c = try TestClient.connect(f.listenPort)
        defer { c.close() }
        XCTAssertEqual(try c.banner(), "echo")
        let before = cpuTicks(f.pid)
        let start = Date()
        var rounds = 0
        while Date().timeIntervalSince(start) < 1.0 && rounds < 1000 {
            try c.send("ecm")
            XCTAssertEqual(try c.receive(exactly: 3), Array("ecm".utf8))
            usleep(2_000)
            rounds += 1
        }
        let seconds = Date().timeIntervalSince(start)
        return Double(cpuTicks(f.pid) - before) / Double(sysconf(Int32(_SC_CLK_TCK))) / seconds
    }

    func testPollsThroughShortGapsSleepsWhenIdleAndFollowsAReload() throws {
        let b = try backend("echo")
        let stream = "server { listen LISTEN; proxy_pass 127.0.0.1:\(b.port); }"
        let f = try ferry(stream, main: "busy_polling 10ms;\nadmin_socket @DIR@/admin.sock;")
        // Gaps of 2 ms within a 10 ms window: ferry never sleeps while the client talks.
        let polling = try cpuShareWhileChatting(f)
        XCTAssertGreaterThan(polling, 0.5, "ferry slept between messages 2 ms apart with busy_polling 10ms")
        // Idle, it sleeps: the window ends 10 ms after the last event.
        let idle = cpuShareOverOneSecond(f.pid)
        XCTAssertLessThan(idle, 0.1, "an idle ferry kept polling")
        // Turned off by a reload, the same conversation leaves ferry asleep between messages.
        try f.reloadOverAdmin(stream: stream, main: "busy_polling off;\nadmin_socket @DIR@/admin.sock;")
        let sleeping = try cpuShareWhileChatting(f)
        XCTAssertLessThan(sleeping, 0.3, "ferry still polled after a reload turned busy_polling off")
        XCTAssertGreaterThan(polling, 2 * sleeping, "polling \(polling), not polling \(sleeping)")
    }
}
