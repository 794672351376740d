import Glibc

/// Fixed-size userspace buffers lent to a relay direction only while it holds bytes the
/// destination has not taken yet (a partial send). The common case, a message that is
/// received and sent whole, goes through the loop's one scratch buffer and borrows nothing.
public final class BufferPool {
    public let bufferSize: Int
    public let maxIdle: Int
    private var idle: [UnsafeMutableRawPointer] = []
    public private(set) var inUse = 0

    public init(bufferSize: Int, maxIdle: Int) {
        self.bufferSize = bufferSize
        self.maxIdle = maxIdle
    }

    public var idleCount: Int { idle.count }

    public func borrow() -> UnsafeMutableRawPointer {
        inUse += 1
        return idle.popLast() ?? .allocate(byteCount: bufferSize, alignment: 16)
    }

    public func giveBack(_ p: UnsafeMutableRawPointer) {
        inUse -= 1
        if idle.count < maxIdle { idle.append(p) } else { p.deallocate() }
    }

    deinit { for p in idle { p.deallocate() } }
}
