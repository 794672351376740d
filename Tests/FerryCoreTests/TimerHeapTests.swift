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

    /// The heap holds exactly one reference per scheduled target (its entries are not
    /// counted): a scheduled target outlives its other owners, and is freed once it is
    /// cancelled, popped, or the heap itself goes away.
    func testHeapOwnsScheduledTargetsOnce() {
        var heap: TimerHeap? = TimerHeap()
        weak var cancelled: Probe?, popped: Probe?, leftover: Probe?
        do {
            let a = Probe(1), b = Probe(2), c = Probe(3)
            cancelled = a; popped = b; leftover = c
            // Several entries, so sifting moves every target around a few times.
            for (p, d) in [(a, 30), (b, 10), (c, 50)] as [(Probe, UInt64)] { heap!.schedule(p, at: d) }
            heap!.schedule(a, at: 5)
            heap!.schedule(a, at: 40)
        }
        XCTAssertNotNil(cancelled); XCTAssertNotNil(popped); XCTAssertNotNil(leftover)
        heap!.cancel(cancelled!)
        XCTAssertNil(cancelled, "a cancelled target is released")
        XCTAssertEqual((heap!.popExpired(now: 20) as? Probe)?.name, 2, "the popped target is alive for its caller")
        XCTAssertNil(popped, "and released once the caller drops it")
        XCTAssertNotNil(leftover)
        heap = nil
        XCTAssertNil(leftover, "a heap going away releases what it still holds")
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
