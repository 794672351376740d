// A binary min-heap of deadlines whose elements know their own position, so a session
// can cancel its timer in O(log n) when it closes instead of leaving a dead entry behind
// (at thousands of connections per second, dead entries would pile up for proxy_timeout).

/// Position bookkeeping a timer target carries for the heap.
public struct TimerSlot {
    public var deadline: UInt64 = 0
    public var index: Int = -1
    public init() {}
    public var isScheduled: Bool { index >= 0 }
}

/// Something with one timer. Called on the loop thread.
public protocol TimerTarget: AnyObject {
    var timer: TimerSlot { get set }
    func timerFired(now: UInt64)
}

public final class TimerHeap {
    private var items: [any TimerTarget] = []

    public init() {}

    public var count: Int { items.count }
    public var nextDeadline: UInt64? { items.first?.timer.deadline }

    /// Schedules `t` at `deadline`, moving it if it was already scheduled.
    public func schedule(_ t: any TimerTarget, at deadline: UInt64) {
        if t.timer.isScheduled {
            let i = t.timer.index
            let old = t.timer.deadline
            t.timer.deadline = deadline
            if deadline < old { siftUp(i) } else { siftDown(i) }
            return
        }
        t.timer.deadline = deadline
        t.timer.index = items.count
        items.append(t)
        siftUp(items.count - 1)
    }

    public func cancel(_ t: any TimerTarget) {
        let i = t.timer.index
        guard i >= 0 else { return }
        precondition(i < items.count && items[i] === t, "timer heap index out of sync")
        let last = items.count - 1
        if i != last {
            swapAt(i, last)
            items.removeLast()
            siftDown(i)
            siftUp(i)
        } else {
            items.removeLast()
        }
        t.timer.index = -1
    }

    /// Removes and returns the earliest target whose deadline is at or before `now`.
    public func popExpired(now: UInt64) -> (any TimerTarget)? {
        guard let first = items.first, first.timer.deadline <= now else { return nil }
        cancel(first)
        return first
    }

    private func swapAt(_ a: Int, _ b: Int) {
        items.swapAt(a, b)
        items[a].timer.index = a
        items[b].timer.index = b
    }

    private func siftUp(_ start: Int) {
        var i = start
        while i > 0 {
            let parent = (i - 1) / 2
            guard items[i].timer.deadline < items[parent].timer.deadline else { return }
            swapAt(i, parent)
            i = parent
        }
    }

    private func siftDown(_ start: Int) {
        var i = start
        let n = items.count
        while true {
            let l = 2 * i + 1, r = l + 1
            var m = i
            if l < n && items[l].timer.deadline < items[m].timer.deadline { m = l }
            if r < n && items[r].timer.deadline < items[m].timer.deadline { m = r }
            if m == i { return }
            swapAt(i, m)
            i = m
        }
    }
}
