import Glibc

/// A failed system call's errno, as a typed error. Created only by `Syscall`.
public struct Errno: Error, Equatable, Hashable, CustomStringConvertible {
    public let rawValue: Int32
    public init(_ rawValue: Int32) { self.rawValue = rawValue }

    public static let wouldBlock = Errno(EAGAIN)
    public static let inProgress = Errno(EINPROGRESS)
    public static let connectionRefused = Errno(ECONNREFUSED)
    public static let connectionReset = Errno(ECONNRESET)
    public static let brokenPipe = Errno(EPIPE)
    public static let tooManyOpenFiles = Errno(EMFILE)
    public static let tooManyOpenFilesInSystem = Errno(ENFILE)
    public static let noBufferSpace = Errno(ENOBUFS)
    public static let outOfMemory = Errno(ENOMEM)
    public static let timedOut = Errno(ETIMEDOUT)
    public static let addressInUse = Errno(EADDRINUSE)

    public var description: String { String(cString: strerror(rawValue)) }
}
