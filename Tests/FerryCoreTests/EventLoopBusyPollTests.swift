import XCTest
import Glibc
@testable import FerryCore

final class EventLoopBusyPollTests: XCTestCase {
    private func threadCPUNanos() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }

    /// busy_polling opens its window only after a turn that handled a descriptor: a timer due
    /// every 2 ms, with a 10 ms window and nothing else, would otherwise keep the loop polling
    /// from one timer to the next, a whole core for a loop with nothing to relay.
    func testTimersAloneDoNotOpenThePollingWindow() throws {
        let loop = try EventLoop(descriptorLimit: 64)
        loop.busyPollNanos = 10_000_000
        var fires = 0
        var tick: OneShotTimer? = nil
        tick = OneShotTimer { now in
            fires += 1
            if fires >= 100 { loop.stop() } else { loop.timers.schedule(tick!, at: now &+ 2_000_000) }
        }
        loop.timers.schedule(tick!, at: MonotonicClock.now() &+ 2_000_000)
        let cpu = threadCPUNanos(), wall = MonotonicClock.now()
        loop.run()
        let share = Double(threadCPUNanos() - cpu) / Double(MonotonicClock.now() - wall)
        tick = nil
        XCTAssertEqual(fires, 100)
        XCTAssertLessThan(share, 0.3, "the loop polled between timers with no descriptor events")
    }
}
