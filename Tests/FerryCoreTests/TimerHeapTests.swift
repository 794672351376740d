import XCTest
@testable import FerryCore

final class TimerHeapTests: XCTestCase {
    final class Probe: TimerTarget {
        var timer = TimerSlot()
        let name: Int
        var fired: [UInt64] = []
        init(_ name: Int) { self.name = name }
        func timerFired(now: UInt64) { fired.append(now) }
    }

    /// Pops everything due at `now`, in order, by name.
    private func due(_ heap: TimerHeap, _ now: UInt64) -> [Int] {
        var out: [Int] = []
        while let t = heap.popExpired(now: now) { out.append((t as! Probe).name) }
        return out
    }

    func testPopsInDeadlineOrderAndOnlyWhenDue() {
        let heap = TimerHeap()
        let probes = (0..<8).map(Probe.init)
        for (p, d) in zip(probes, [50, 10, 40, 30, 20, 80, 70, 60] as [UInt64]) { heap.schedule(p, at: d) }
        XCTAssertEqual(heap.nextDeadline, 10)
        XCTAssertEqual(due(heap, 9), [])
        XCTAssertEqual(due(heap, 35), [1, 4, 3])
        XCTAssertEqual(due(heap, 1000), [2, 0, 7, 6, 5])
        XCTAssertEqual(heap.count, 0)
        XCTAssertTrue(probes.allSatisfy { !$0.timer.isScheduled })
    }

    func testCancelFromTheMiddleAndRescheduleBothWays() {
        let heap = TimerHeap()
        let p = (0..<6).map(Probe.init)
        for (i, d) in [10, 20, 30, 40, 50, 60].enumerated() { heap.schedule(p[i], at: UInt64(d)) }
        heap.cancel(p[2])
        heap.cancel(p[2]) // cancelling twice is harmless
        heap.schedule(p[5], at: 5)      // earlier
        heap.schedule(p[0], at: 55)     // later
        XCTAssertEqual(due(heap, 100), [5, 1, 3, 4, 0])
    }

    func testRandomisedAgainstSortedReference() {
        var rng = SplitMix64(seed: 42)
        let heap = TimerHeap()
        var live: [Int: UInt64] = [:]
        let probes = (0..<200).map(Probe.init)
        for _ in 0..<5000 {
            let i = Int(rng.next() % 200)
            switch rng.next() % 3 {
            case 0, 1:
                let d = rng.next() % 10_000
                heap.schedule(probes[i], at: d)
                live[i] = d
            default:
                heap.cancel(probes[i])
                live[i] = nil
            }
        }
        var popped: [UInt64] = []
        while let t = heap.popExpired(now: .max) { popped.append(t.timer.deadline) }
        XCTAssertEqual(popped, live.values.sorted())
    }
}
