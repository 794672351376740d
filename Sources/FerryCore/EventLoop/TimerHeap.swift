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
    /// The deadline is kept beside the target, so sifting compares plain integers instead of
    /// reading each target's slot through the protocol (that made a session's four heap
    /// operations cost ~6,000 instructions).
    ///
    /// The target is held without reference counting: the heap owns one explicit reference per
    /// scheduled target, taken in `schedule` and given back in `cancel`, so the moves while
    /// sifting (several per operation) cost no retain/release pairs.
    private struct Entry {
        var deadline: UInt64
        unowned(unsafe) let target: any TimerTarget
    }

    private var items: [Entry] = []

    public init() {}

    deinit {
        // Give back the references of targets still scheduled (a loop torn down in tests).
        let owned = items
        items.removeAll()
        for e in owned {
            e.target.timer.index = -1
            Unmanaged.passUnretained(e.target as AnyObject).release()
        }
    }

    public var count: Int { items.count }
    public var nextDeadline: UInt64? { items.first?.deadline }

    /// Schedules `t` at `deadline`, moving it if it was already scheduled.
    public func schedule(_ t: any TimerTarget, at deadline: UInt64) {
        let i = t.timer.index
        t.timer.deadline = deadline
        if i >= 0 {
            precondition(i < items.count && items[i].target === t, "timer heap index out of sync")
            let old = items[i].deadline
            items[i].deadline = deadline
            if deadline < old { siftUp(i) } else { siftDown(i) }
            return
        }
        t.timer.index = items.count
        _ = Unmanaged.passRetained(t as AnyObject)
        items.append(Entry(deadline: deadline, target: t))
        siftUp(items.count - 1)
    }

    public func cancel(_ t: any TimerTarget) {
        let i = t.timer.index
        guard i >= 0 else { return }
        precondition(i < items.count && items[i].target === t, "timer heap index out of sync")
        let last = items.count - 1
        if i != last {
            items[i] = items[last]
            items.removeLast()
            items[i].target.timer.index = i
            siftDown(i)
            siftUp(i)
        } else {
            items.removeLast()
        }
        t.timer.index = -1
        Unmanaged.passUnretained(t as AnyObject).release()  // the caller's reference keeps t alive
    }

    /// Removes and returns the earliest target whose deadline is at or before `now`.
    public func popExpired(now: UInt64) -> (any TimerTarget)? {
        guard let first = items.first, first.deadline <= now else { return nil }
        let target: any TimerTarget = first.target  // a counted reference before the heap lets go
        cancel(target)
        return target
    }

    // Sifting moves the hole, not the element, and tells each moved target its new place.
    private func siftUp(_ start: Int) {
        var i = start
        let moving = items[i]
        while i > 0 {
            let parent = (i - 1) / 2
            guard moving.deadline < items[parent].deadline else { break }
            items[i] = items[parent]
            items[i].target.timer.index = i
            i = parent
        }
        if i != start {
            items[i] = moving
            moving.target.timer.index = i
        }
    }

    private func siftDown(_ start: Int) {
        var i = start
        let n = items.count
        let moving = items[i]
        while true {
            let l = 2 * i + 1, r = l + 1
            guard l < n else { break }
            let m = r < n && items[r].deadline < items[l].deadline ? r : l
            guard items[m].deadline < moving.deadline else { break }
            items[i] = items[m]
            items[i].target.timer.index = i
            i = m
        }
        if i != start {
            items[i] = moving
            moving.target.timer.index = i
        }
    }
}
