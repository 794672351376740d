import Glibc
import CLinux

// The one place that turns a system call's return value into a Swift value. Everything
// else in ferry calls through here and never reads errno itself.

/// Outcome of a non-blocking operation: done, or the kernel would have to wait.
public enum IOResult<T> {
    case done(T)
    case wouldBlock
}

@usableFromInline
func fatalForBug(_ e: Int32, _ what: StaticString) -> Never {
    // EBADF/EFAULT mean ferry passed a closed fd or a bad pointer: a bug, never a runtime condition.
    preconditionFailure("\(what): \(String(cString: strerror(e))) (bug: invalid descriptor or pointer)")
}

/// Runs `body` until it does not fail with EINTR; -1 becomes a thrown `Errno`.
@inlinable @inline(__always)
public func syscall<T: FixedWidthInteger>(_ what: StaticString, _ body: () -> T) throws(Errno) -> T {
    while true {
        let r = body()
        if r != -1 { return r }
        let e = ferry_errno()
        if e == EINTR { continue }
        if e == EBADF || e == EFAULT { fatalForBug(e, what) }
        throw Errno(e)
    }
}

/// Like `syscall`, but EAGAIN/EWOULDBLOCK is an ordinary `.wouldBlock` answer.
@inlinable @inline(__always)
public func nonBlockingSyscall<T: FixedWidthInteger>(_ what: StaticString, _ body: () -> T) throws(Errno) -> IOResult<T> {
    while true {
        let r = body()
        if r != -1 { return .done(r) }
        let e = ferry_errno()
        if e == EINTR { continue }
        if e == EAGAIN || e == EWOULDBLOCK { return .wouldBlock }
        if e == EBADF || e == EFAULT { fatalForBug(e, what) }
        throw Errno(e)
    }
}

/// close(2) must not be retried on EINTR on Linux: the descriptor is already gone.
@inlinable
public func closeDescriptor(_ fd: Int32) {
    if Glibc.close(fd) == -1 {
        let e = ferry_errno()
        if e == EBADF { fatalForBug(e, "close") }
    }
}
