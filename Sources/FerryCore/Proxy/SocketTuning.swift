/// Dead-peer detection settings, applied where sockets are made: listening sockets (accepted
/// clients inherit them, so there is no system call per accept) and server sockets (one or
/// two calls per connect, only when configured).
///
/// A peer that vanished without FIN or RST (power cut, NAT state dropped, cable pulled) is
/// otherwise noticed only when ferry sends to it and the kernel's retransmissions give up
/// (about 15 minutes), or never while the session is idle. Keepalive probes find an idle
/// one after idle + interval x count; TCP_USER_TIMEOUT bounds how long sent data or probes
/// may stay unacknowledged. The kernel then reports ETIMEDOUT, the session ends with a reset
/// to the other side, and its server slot (least_conn count, max_conns, limit_conn) is freed.
extension Socket {
    func applyKeepalive(_ keepalive: KeepaliveConfig) throws(Errno) {
        switch keepalive {
        case .off: return
        case .on: try setKeepalive(idle: nil, interval: nil, count: nil)
        case .tuned(let idle, let interval, let count):
            try setKeepalive(idle: idle.map { Int($0.milliseconds / 1000) },
                             interval: interval.map { Int($0.milliseconds / 1000) }, count: count)
        }
    }

    func applyDeadPeerDetection(keepalive: KeepaliveConfig, userTimeoutMilliseconds: Int) throws(Errno) {
        try applyKeepalive(keepalive)
        if userTimeoutMilliseconds > 0 { try setUserTimeout(milliseconds: userTimeoutMilliseconds) }
    }
}
