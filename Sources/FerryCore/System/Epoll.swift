import Glibc
import CLinux

public struct EpollEvents: OptionSet, Hashable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    // Literals (Linux ABI values, checked against <sys/epoll.h> through the C shim in
    // SystemTests) rather than the shim's constants: a literal initializer is folded at compile
    // time, while a value read from C makes every use in the hot path go through a lazy
    // initializer check (swift_once).
    public static let readable = EpollEvents(rawValue: 0x001)
    public static let writable = EpollEvents(rawValue: 0x004)
    public static let error = EpollEvents(rawValue: 0x008)
    public static let hangup = EpollEvents(rawValue: 0x010)
    public static let readHangup = EpollEvents(rawValue: 0x2000)
    public static let edgeTriggered = EpollEvents(rawValue: 0x8000_0000)
}

public typealias EpollEvent = ferry_epoll_event

/// An epoll instance.
public struct Epoll {
    public let fd: FileDescriptor

    public static func make() throws(Errno) -> Epoll {
        Epoll(fd: FileDescriptor(try syscall("epoll_create1") { epoll_create1(Int32(EPOLL_CLOEXEC)) }))
    }

    public func add(_ target: FileDescriptor, events: EpollEvents, data: UInt64) throws(Errno) {
        _ = try syscall("epoll_ctl(ADD)") { ferry_epoll_ctl(fd.rawValue, EPOLL_CTL_ADD, target.rawValue, events.rawValue, data) }
    }

    public func modify(_ target: FileDescriptor, events: EpollEvents, data: UInt64) throws(Errno) {
        _ = try syscall("epoll_ctl(MOD)") { ferry_epoll_ctl(fd.rawValue, EPOLL_CTL_MOD, target.rawValue, events.rawValue, data) }
    }

    public func remove(_ target: FileDescriptor) {
        // Closing a descriptor removes it from epoll anyway; an error here is not actionable.
        _ = try? syscall("epoll_ctl(DEL)") { ferry_epoll_ctl(fd.rawValue, EPOLL_CTL_DEL, target.rawValue, 0, 0) }
    }

    /// Waits up to `timeoutMs` (-1 forever); returns how many events were written to `events`.
    @inline(__always)
    public func wait(into events: UnsafeMutablePointer<EpollEvent>, capacity: Int, timeoutMs: Int32) throws(Errno) -> Int {
        // EINTR is retried by `syscall`; a timer deadline is recomputed by the caller on the next turn.
        Int(try syscall("epoll_wait") { ferry_epoll_wait(fd.rawValue, events, Int32(capacity), timeoutMs) })
    }
}
