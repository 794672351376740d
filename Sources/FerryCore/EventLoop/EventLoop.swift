import Glibc

/// Whoever owns a registered descriptor. Called on the loop thread only.
public protocol EventHandler: AnyObject {
    /// `side` is the small tag given at registration (a session registers its two sockets as 0 and 1).
    func handleEvent(_ events: EpollEvents, side: UInt8)
}

/// One epoll loop on one thread: descriptor events, timers and a clock read once per turn.
///
/// Every registration gets a fresh generation number carried in the epoll data beside the fd,
/// so an event queued for a descriptor that was closed and reused in the same batch is dropped
/// instead of reaching the new owner.
public final class EventLoop {
    private struct Registration {
        var generation: UInt32 = 0
        var side: UInt8 = 0
        var handler: (any EventHandler)? = nil
    }

    public let epoll: Epoll
    public let timers = TimerHeap()
    /// Monotonic nanoseconds at the start of the current turn.
    public private(set) var now: UInt64
    private var registrations: [Registration]
    private var nextGeneration: UInt32 = 1
    private var events: UnsafeMutablePointer<EpollEvent>
    private let eventCapacity = 256
    private var running = false
    /// Work that must run after the current batch of events (e.g. resuming accepts).
    private var deferred: [() -> Void] = []

    public init(descriptorLimit: Int) throws(Errno) {
        epoll = try Epoll.make()
        // Grown on demand in register(): a hard limit of "infinity" must not allocate gigabytes.
        registrations = Array(repeating: Registration(), count: min(max(descriptorLimit, 64) + 16, 65_536))
        events = .allocate(capacity: eventCapacity)
        now = MonotonicClock.now()
    }

    deinit {
        events.deallocate()
        epoll.fd.close()
    }

    /// Registers `fd` for `interest` on behalf of `handler`. Precondition: fd is not registered.
    public func register(_ fd: FileDescriptor, interest: EpollEvents, handler: any EventHandler, side: UInt8 = 0) throws(Errno) {
        let i = Int(fd.rawValue)
        if i >= registrations.count {
            registrations.append(contentsOf: repeatElement(Registration(), count: i - registrations.count + 1024))
        }
        nextGeneration &+= 1
        if nextGeneration == 0 { nextGeneration = 1 }
        registrations[i] = Registration(generation: nextGeneration, side: side, handler: handler)
        do {
            try epoll.add(fd, events: interest, data: tag(fd, nextGeneration))
        } catch {
            registrations[i] = Registration()
            throw error
        }
    }

    /// Changes the interest set of a registered descriptor.
    public func modify(_ fd: FileDescriptor, interest: EpollEvents) throws(Errno) {
        let g = registrations[Int(fd.rawValue)].generation
        try epoll.modify(fd, events: interest, data: tag(fd, g))
    }

    /// Forgets `fd`. Call before closing it; the kernel drops it from epoll on close.
    /// `removeFromEpoll` is needed only when the descriptor stays open.
    public func deregister(_ fd: FileDescriptor, removeFromEpoll: Bool = false) {
        if removeFromEpoll { epoll.remove(fd) }
        registrations[Int(fd.rawValue)] = Registration()
    }

    @inline(__always)
    private func tag(_ fd: FileDescriptor, _ generation: UInt32) -> UInt64 {
        UInt64(generation) << 32 | UInt64(UInt32(bitPattern: fd.rawValue))
    }

    /// Runs `work` after the current batch of events has been handled.
    public func afterBatch(_ work: @escaping () -> Void) { deferred.append(work) }

    public func stop() { running = false }

    /// How long epoll_wait may sleep: not at all with work queued, until the next timer, or
    /// until an event.
    private func waitTimeout() -> Int32 {
        // Work queued for the next turn (a bulk pump that yielded) has no edge to wake it.
        if !deferred.isEmpty { return 0 }
        guard let d = timers.nextDeadline else { return -1 }
        let t = MonotonicClock.now()
        // Round up so a timer is never woken a hair early and spun on.
        return d <= t ? 0 : Int32(clamping: (d - t + 999_999) / 1_000_000)
    }

    /// `busy_polling`: after a turn, poll without sleeping for up to this long before waiting in
    /// the kernel. On a virtual machine an idle vCPU that sleeps takes tens of microseconds to
    /// wake (measured here: a relayed ping-pong took 100 us at p50, 42 us with 50 us of
    /// polling), so polling through the short gaps of a conversation saves the wake-ups. It
    /// costs CPU: up to this long after every turn that handled events, all of it when events
    /// keep coming within it, none when idle or when only timers fire. HAProxy's
    /// `busy-polling` polls always. 0 = off.
    public var busyPollNanos: UInt64 = 0

    /// Runs until `stop()`. Precondition: called once, on the thread that owns this loop.
    public func run() {
        running = true
        // Only a turn that handled a descriptor opens the window: one that only ran timers (a
        // 10 ms re-check, a probe) must not keep the loop on the CPU with nobody talking.
        var handledEvents = false
        while running {
            var timeout = waitTimeout()
            var n = 0
            do {
                if busyPollNanos > 0 && timeout != 0 && handledEvents {
                    // Polls until an event, the window's end or the next timer, whichever is first.
                    var until = MonotonicClock.now() &+ busyPollNanos
                    if let d = timers.nextDeadline, d < until { until = d }
                    repeat { n = try epoll.wait(into: events, capacity: eventCapacity, timeoutMs: 0) }
                    while n == 0 && MonotonicClock.now() < until
                    if n == 0 { timeout = waitTimeout() }
                }
                if n == 0 { n = try epoll.wait(into: events, capacity: eventCapacity, timeoutMs: timeout) }
            } catch {
                preconditionFailure("epoll_wait failed: \(error)")
            }
            now = MonotonicClock.now()
            handledEvents = n > 0
            for k in 0..<n {
                let ev = events[k]
                let fd = Int(UInt32(truncatingIfNeeded: ev.data))
                let generation = UInt32(truncatingIfNeeded: ev.data >> 32)
                let r = registrations[fd]
                guard r.generation == generation, let h = r.handler else { continue }
                h.handleEvent(EpollEvents(rawValue: ev.events), side: r.side)
            }
            while let t = timers.popExpired(now: now) {
                t.timerFired(now: now)
            }
            if !deferred.isEmpty {
                let work = deferred
                deferred.removeAll(keepingCapacity: true)
                for w in work { w() }
            }
        }
    }
}
