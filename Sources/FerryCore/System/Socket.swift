import Glibc
import CLinux

/// A stream socket. Every call goes through `syscall`/`nonBlockingSyscall`.
public struct Socket: Equatable {
    public let fd: FileDescriptor
    public init(_ fd: FileDescriptor) { self.fd = fd }

    /// A new non-blocking, close-on-exec stream socket of the given family.
    public static func stream(family: Int32) throws(Errno) -> Socket {
        let s = try syscall("socket") { Glibc.socket(family, FERRY_SOCK_STREAM | FERRY_SOCK_NONBLOCK | FERRY_SOCK_CLOEXEC, 0) }
        return Socket(FileDescriptor(s))
    }

    public func close() { fd.close() }

    /// A blocking, close-on-exec stream socket, for command-line clients (`ferry ctl`) that
    /// have nothing else to do while they wait.
    public static func blockingStream(family: Int32) throws(Errno) -> Socket {
        let s = try syscall("socket") { Glibc.socket(family, FERRY_SOCK_STREAM | FERRY_SOCK_CLOEXEC, 0) }
        return Socket(FileDescriptor(s))
    }

    public func bind(_ address: SocketAddress) throws(Errno) {
        var a = address
        _ = try syscall("bind") {
            withUnsafePointer(to: &a.storage) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(fd.rawValue, $0, a.length) } }
        }
    }

    public func listen(backlog: Int) throws(Errno) {
        _ = try syscall("listen") { Glibc.listen(fd.rawValue, Int32(clamping: backlog)) }
    }

    /// accept4 with SOCK_NONBLOCK|SOCK_CLOEXEC; the peer address is filled in.
    @inline(__always)
    public func accept(peer: inout SocketAddress) throws(Errno) -> IOResult<Socket> {
        peer.length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let r = try nonBlockingSyscall("accept4") {
            withUnsafeMutablePointer(to: &peer.storage) { p in
                p.withMemoryRebound(to: sockaddr.self, capacity: 1) { ferry_accept4(fd.rawValue, $0, &peer.length, FERRY_SOCK_NONBLOCK | FERRY_SOCK_CLOEXEC) }
            }
        }
        switch r {
        case .done(let s): return .done(Socket(FileDescriptor(s)))
        case .wouldBlock: return .wouldBlock
        }
    }

    /// Non-blocking connect: `.wouldBlock` means in progress (EINPROGRESS), completion comes as
    /// EPOLLOUT. A Unix socket whose backlog is full answers EAGAIN: that connect did not happen
    /// and is thrown like any other failure.
    public func connect(to address: SocketAddress) throws(Errno) -> IOResult<Void> {
        var a = address
        do {
            _ = try syscall("connect") {
                withUnsafePointer(to: &a.storage) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd.rawValue, $0, a.length) } }
            }
            return .done(())
        } catch let e where e == .inProgress {
            return .wouldBlock
        }
    }

    /// The deferred result of a connect, or of an error reported by EPOLLERR.
    public func pendingError() -> Errno? {
        var err: Int32 = 0
        var len = socklen_t(MemoryLayout<Int32>.size)
        do {
            _ = try syscall("getsockopt(SO_ERROR)") { getsockopt(fd.rawValue, SOL_SOCKET, SO_ERROR, &err, &len) }
        } catch { return error }
        return err == 0 ? nil : Errno(err)
    }

    /// Whether bytes wait to be read (FIONREAD), without taking them or the socket's pending
    /// error, which a peeking recv would return and clear: a refused connect must still say
    /// why it failed (SO_ERROR). Queued bytes come before a reset when they are read.
    public func hasQueuedBytes() -> Bool {
        var n: Int32 = 0
        guard (try? syscall("ioctl(FIONREAD)") { ferry_queued_bytes(fd.rawValue, &n) }) != nil else { return false }
        return n > 0
    }

    @inline(__always)
    public func receive(into buffer: UnsafeMutableRawPointer, count: Int) throws(Errno) -> IOResult<Int> {
        try nonBlockingSyscall("recv") { Glibc.recv(fd.rawValue, buffer, count, 0) }
    }

    /// send with MSG_NOSIGNAL: a peer that went away is an EPIPE error, never a signal.
    @inline(__always)
    public func send(from buffer: UnsafeRawPointer, count: Int) throws(Errno) -> IOResult<Int> {
        try nonBlockingSyscall("send") { Glibc.send(fd.rawValue, buffer, count, Int32(MSG_NOSIGNAL)) }
    }

    public enum Direction { case read, write, both }
    public func shutdown(_ how: Direction) {
        let h: Int32
        switch how {
        case .read: h = Int32(SHUT_RD)
        case .write: h = Int32(SHUT_WR)
        case .both: h = Int32(SHUT_RDWR)
        }
        // ENOTCONN after the peer reset is expected and harmless.
        _ = try? syscall("shutdown") { Glibc.shutdown(fd.rawValue, h) }
    }

    /// For a blocking socket (`ferry ctl`): a send or receive that waits longer than `seconds`
    /// returns `.wouldBlock` instead of waiting on.
    public func setBlockingTimeout(seconds: Int) throws(Errno) {
        var tv = timeval(tv_sec: seconds, tv_usec: 0)
        for name in [SO_RCVTIMEO, SO_SNDTIMEO] {
            _ = try syscall("setsockopt") { setsockopt(fd.rawValue, SOL_SOCKET, name, &tv, socklen_t(MemoryLayout<timeval>.size)) }
        }
    }

    public func setOption(level: Int32, name: Int32, value: Int32) throws(Errno) {
        var v = value
        _ = try syscall("setsockopt") { setsockopt(fd.rawValue, level, name, &v, socklen_t(MemoryLayout<Int32>.size)) }
    }

    public func setNoDelay() { try? setOption(level: Int32(IPPROTO_TCP), name: TCP_NODELAY, value: 1) }
    public func setReuseAddress() throws(Errno) { try setOption(level: SOL_SOCKET, name: SO_REUSEADDR, value: 1) }
    public func setReusePort() throws(Errno) { try setOption(level: SOL_SOCKET, name: SO_REUSEPORT, value: 1) }
    public func setIPv6Only(_ on: Bool) throws(Errno) { try setOption(level: Int32(IPPROTO_IPV6), name: IPV6_V6ONLY, value: on ? 1 : 0) }
    public func setReceiveBuffer(_ bytes: Int) throws(Errno) { try setOption(level: SOL_SOCKET, name: SO_RCVBUF, value: Int32(bytes)) }
    public func setSendBuffer(_ bytes: Int) throws(Errno) { try setOption(level: SOL_SOCKET, name: SO_SNDBUF, value: Int32(bytes)) }
    /// On a listening socket: how many connections may wait with data sent in their SYN.
    public func setFastOpen(queueLength: Int) throws(Errno) { try setOption(level: Int32(IPPROTO_TCP), name: TCP_FASTOPEN, value: Int32(queueLength)) }

    /// Before binding a client socket to an address with port 0: the kernel picks the port at
    /// connect, per destination, instead of reserving one at bind for every destination (which
    /// would run the ephemeral range dry at a few tens of thousands of sessions). Linux 4.2+;
    /// an older kernel's refusal changes nothing else, so it is ignored, as nginx does.
    public func setBindAddressNoPort() {
        try? setOption(level: Int32(IPPROTO_IP), name: Int32(IP_BIND_ADDRESS_NO_PORT), value: 1)
    }

    /// SO_KEEPALIVE plus the optional per-socket timings (seconds).
    public func setKeepalive(idle: Int?, interval: Int?, count: Int?) throws(Errno) {
        try setOption(level: SOL_SOCKET, name: SO_KEEPALIVE, value: 1)
        if let i = idle { try setOption(level: Int32(IPPROTO_TCP), name: TCP_KEEPIDLE, value: Int32(clamping: i)) }
        if let i = interval { try setOption(level: Int32(IPPROTO_TCP), name: TCP_KEEPINTVL, value: Int32(clamping: i)) }
        if let c = count { try setOption(level: Int32(IPPROTO_TCP), name: TCP_KEEPCNT, value: Int32(clamping: c)) }
    }

    /// TCP_USER_TIMEOUT in milliseconds: data (or keepalive probes) unacknowledged for this
    /// long end the connection with ETIMEDOUT. Accepted sockets inherit it from the listener.
    public func setUserTimeout(milliseconds: Int) throws(Errno) {
        try setOption(level: Int32(IPPROTO_TCP), name: TCP_USER_TIMEOUT, value: Int32(clamping: milliseconds))
    }

    /// Reads back an integer option, for tests that check what the kernel holds.
    public func option(level: Int32, name: Int32) -> Int32? {
        var v: Int32 = 0
        var len = socklen_t(MemoryLayout<Int32>.size)
        return (try? syscall("getsockopt") { getsockopt(fd.rawValue, level, name, &v, &len) }) != nil ? v : nil
    }

    /// Bytes written to the socket that the peer has not acknowledged yet (SIOCOUTQ: unsent
    /// and in flight, a queued FIN counting one); nil when the kernel will not say. Only for a
    /// connection still open (`isOpenTCP`): after a reset the count stays where it was.
    public func unacknowledgedBytes() -> Int? {
        var n: Int32 = 0
        guard (try? syscall("ioctl(SIOCOUTQ)") { ferry_unacked_bytes(fd.rawValue, &n) }) != nil else { return nil }
        return Int(n)
    }

    /// True for a TCP connection the kernel has not closed (reset, timed out); false for a
    /// closed one and for anything not TCP (a Unix socket), where acknowledgement means nothing.
    public func isOpenTCP() -> Bool {
        // tcpi_state is the first byte of struct tcp_info; the kernel copies as much as asked.
        var info: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) = (0, 0, 0, 0, 0, 0, 0, 0)
        var len = socklen_t(MemoryLayout.size(ofValue: info))
        guard (try? syscall("getsockopt(TCP_INFO)") { getsockopt(fd.rawValue, Int32(IPPROTO_TCP), TCP_INFO, &info, &len) }) != nil,
              len >= 1 else { return false }
        return Int(info.0) != Int(TCP_CLOSE)
    }

    /// Closing with linger 0 sends a RST instead of a FIN: how a reset is relayed.
    public func closeWithReset() {
        var l = linger(l_onoff: 1, l_linger: 0)
        _ = try? syscall("setsockopt(SO_LINGER)") { setsockopt(fd.rawValue, SOL_SOCKET, SO_LINGER, &l, socklen_t(MemoryLayout<linger>.size)) }
        close()
    }

    public func localAddress() -> SocketAddress? {
        var a = SocketAddress()
        a.length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let ok = (try? syscall("getsockname") {
            withUnsafeMutablePointer(to: &a.storage) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd.rawValue, $0, &a.length) } }
        }) != nil
        return ok ? a : nil
    }

    /// The connected peer's address (getpeername), for cold-path listings.
    public func remoteAddress() -> SocketAddress? {
        var a = SocketAddress()
        a.length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let ok = (try? syscall("getpeername") {
            withUnsafeMutablePointer(to: &a.storage) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getpeername(fd.rawValue, $0, &a.length) } }
        }) != nil
        return ok ? a : nil
    }
}
