import Glibc
import CLinux

/// Signals delivered as readable events on a descriptor, so they are handled on the event loop.
public struct SignalDescriptor {
    public let fd: FileDescriptor

    /// Blocks `signals` for the process and returns a descriptor that reports them.
    public static func make(_ signals: [Int32]) throws(Errno) -> SignalDescriptor {
        _ = try syscall("sigprocmask") { signals.withUnsafeBufferPointer { ferry_block_signals($0.baseAddress, Int32($0.count)) } }
        let fd = try syscall("signalfd") { signals.withUnsafeBufferPointer { ferry_signalfd($0.baseAddress, Int32($0.count)) } }
        return SignalDescriptor(fd: FileDescriptor(fd))
    }

    /// Reads one pending signal number, or nil when none is pending.
    public func next() -> Int32? {
        var info = signalfd_siginfo()
        let r = try? nonBlockingSyscall("read(signalfd)") { Glibc.read(fd.rawValue, &info, MemoryLayout<signalfd_siginfo>.size) }
        if case .done(let n)? = r, n == MemoryLayout<signalfd_siginfo>.size { return Int32(info.ssi_signo) }
        return nil
    }
}
