import Glibc

/// Pipes lent to sessions only while spliced bytes are in flight. An idle session holds none.
///
/// Bounded twice: `maxPipes` caps pipes in existence (each costs two descriptors, counted in the
/// connection capacity, and kernel pages charged against fs.pipe-user-pages-soft, beyond which
/// new pipes shrink to one page), and `maxIdle` caps pipes kept open while nobody needs them.
public final class PipePool {
    public let maxPipes: Int
    public let maxIdle: Int
    private var idle: [Pipe] = []
    public private(set) var inUse = 0
    /// Borrow attempts refused (pool at its cap, or the kernel would not make a pipe); the
    /// direction copies instead.
    public private(set) var exhausted = 0

    public init(maxPipes: Int, maxIdle: Int) {
        self.maxPipes = maxPipes
        self.maxIdle = min(maxIdle, maxPipes)
    }

    public var idleCount: Int { idle.count }

    /// A pipe, or nil when the cap is reached or the kernel refuses (the caller copies instead).
    public func borrow() -> Pipe? {
        if let p = idle.popLast() { inUse += 1; return p }
        guard inUse < maxPipes, let p = try? Pipe.make() else { exhausted += 1; return nil }
        inUse += 1
        return p
    }

    /// Returns an empty pipe. A pipe that still holds bytes must be `discard`ed instead.
    public func giveBack(_ p: Pipe) {
        inUse -= 1
        if idle.count < maxIdle { idle.append(p) } else { p.close() }
    }

    /// Closes a pipe whose contents are abandoned (its session ended mid-transfer).
    public func discard(_ p: Pipe) {
        inUse -= 1
        p.close()
    }

    public func closeAll() {
        for p in idle { p.close() }
        idle.removeAll()
    }
}
