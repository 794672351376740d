import Glibc
import CLinux

/// A raw descriptor with the few generic operations ferry needs. Not reference counted:
/// its owner closes it exactly once.
public struct FileDescriptor: Equatable, Hashable, CustomStringConvertible {
    public let rawValue: Int32
    public init(_ rawValue: Int32) { self.rawValue = rawValue }
    public var description: String { "fd \(rawValue)" }

    public func close() { closeDescriptor(rawValue) }

    @inline(__always)
    public func read(into buffer: UnsafeMutableRawPointer, count: Int) throws(Errno) -> IOResult<Int> {
        try nonBlockingSyscall("read") { Glibc.read(rawValue, buffer, count) }
    }

    @inline(__always)
    public func write(from buffer: UnsafeRawPointer, count: Int) throws(Errno) -> IOResult<Int> {
        // MSG_NOSIGNAL only exists for send(); sockets use Socket.send. Plain write is for pipes/files.
        try nonBlockingSyscall("write") { Glibc.write(rawValue, buffer, count) }
    }

}
