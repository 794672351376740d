/// A timer that runs a closure once, for the loop's own rare deadlines (shutdown, accept retry).
public final class OneShotTimer: TimerTarget {
    public var timer = TimerSlot()
    private let action: (UInt64) -> Void
    public init(_ action: @escaping (UInt64) -> Void) { self.action = action }
    public func timerFired(now: UInt64) { action(now) }
}
