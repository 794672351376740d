import Glibc

/// A pthread mutex with one condition variable, at a fixed address (pthread objects must not move,
/// so they live in manually allocated memory rather than in a Swift struct).
public final class Mutex {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let condition: UnsafeMutablePointer<pthread_cond_t>

    public init() {
        mutex = .allocate(capacity: 1)
        condition = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(condition, nil)
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
        condition.deallocate()
    }

    @inline(__always) public func lock() { pthread_mutex_lock(mutex) }
    @inline(__always) public func unlock() { pthread_mutex_unlock(mutex) }

    /// Precondition: locked by the caller. Releases the lock while waiting.
    public func wait() { pthread_cond_wait(condition, mutex) }

    public func broadcast() { pthread_cond_broadcast(condition) }

    public func withLock<T>(_ body: () throws -> T) rethrows -> T {
        lock(); defer { unlock() }
        return try body()
    }
}

/// A plain joinable thread running `body` once. Used for the log writers, which are the only
/// work ferry does off its event loop (a write to a slow disk must not stall relaying).
public final class WorkerThread {
    private var handle = pthread_t()
    private var started = false

    private final class Box { let body: () -> Void; init(_ b: @escaping () -> Void) { body = b } }

    public init(_ body: @escaping () -> Void) throws(Errno) {
        let box = Unmanaged.passRetained(Box(body)).toOpaque()
        // The new thread starts with every signal blocked (it inherits the mask in force at
        // creation), so SIGUSR1, SIGTERM and friends always reach the loop's signalfd instead
        // of killing the process from a thread that does not read them.
        var all = sigset_t(), previous = sigset_t()
        sigfillset(&all)
        pthread_sigmask(SIG_SETMASK, &all, &previous)
        defer { pthread_sigmask(SIG_SETMASK, &previous, nil) }
        let r = pthread_create(&handle, nil, { raw in
            let b = Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue()
            b.body()
            return nil
        }, box)
        // pthread_create returns the error number instead of setting errno.
        if r != 0 {
            Unmanaged<Box>.fromOpaque(box).release()
            throw Errno(r)
        }
        started = true
    }

    /// Lets the thread run on unjoined, for one that may never return (stuck in a write) when
    /// the process is about to exit. Call once, instead of `join`.
    public func detach() {
        guard started else { return }
        started = false
        pthread_detach(handle)
    }

    /// Waits for the body to return. Call once.
    public func join() {
        guard started else { return }
        started = false
        pthread_join(handle, nil)
    }
}
