import Glibc
import CLinux

public struct EpollEvents: OptionSet, Hashable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    public static let readable = EpollEvents(rawValue: FERRY_EPOLLIN)
    public static let writable = EpollEvents(rawValue: FERRY_EPOLLOUT)
    public static let error = EpollEvents(rawValue: FERRY_EPOLLERR)
    public static let hangup = EpollEvents(rawValue: FERRY_EPOLLHUP)
    public static let readHangup = EpollEvents(rawValue: FERRY_EPOLLRDHUP)
    public static let edgeTriggered = EpollEvents(rawValue: FERRY_EPOLLET)
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
