import Glibc

/// What the connection log knows about one session when it ends (or one client refused before
/// it became a session). Built only when a log is configured; renders as ferry's JSON line or
/// through an nginx `log_format`.
public struct ConnectionRecord {
    /// Wall-clock time of the end, ms since the epoch (nginx logs the end time too).
    public var timeMillis: Int64
    /// The `listen` address as written.
    public var listener: String
    /// $server_addr / $server_port: the address the client connected to.
    public var localHost: String
    public var localPort: String
    /// The client's address (ClientKey.none for Unix-socket clients).
    public var client: ClientKey
    /// nil for Unix-socket clients.
    public var clientPort: UInt16?
    public var upstream: Upstream?
    public var attempts: AttemptLog
    public var sessionNanos: UInt64
    /// Bytes read from the client, and from the server (for the client).
    public var bytesFromClient: UInt64
    public var bytesToClient: UInt64
    /// Bytes written to the server (with a PROXY header ferry sent) and to the client: nginx's
    /// $upstream_bytes_sent and $bytes_sent count writes, so these leave out bytes an abnormal
    /// end dropped.
    public var bytesWrittenToServer: UInt64
    public var bytesWrittenToClient: UInt64
    public var reason: SessionEnd
    /// $connection: the serial number of the accepted connection.
    public var connection: UInt64
    /// The client's PROXY header, where the session kept one ($proxy_protocol_*, $realip_*).
    public var origin: ClientOrigin?

    public init(timeMillis: Int64, listener: String, localHost: String, localPort: String, client: ClientKey,
                clientPort: UInt16?, upstream: Upstream?, attempts: AttemptLog, sessionNanos: UInt64,
                bytesFromClient: UInt64, bytesToClient: UInt64, bytesWrittenToServer: UInt64,
                bytesWrittenToClient: UInt64, reason: SessionEnd, connection: UInt64, origin: ClientOrigin? = nil) {
        self.timeMillis = timeMillis; self.listener = listener; self.localHost = localHost; self.localPort = localPort
        self.client = client; self.clientPort = clientPort; self.upstream = upstream; self.attempts = attempts
        self.sessionNanos = sessionNanos; self.bytesFromClient = bytesFromClient; self.bytesToClient = bytesToClient
        self.bytesWrittenToServer = bytesWrittenToServer; self.bytesWrittenToClient = bytesWrittenToClient
        self.reason = reason; self.connection = connection; self.origin = origin
    }

    // MARK: ferry's JSON line

    /// ferry's own record: stable keys, documented in the README. Keys are always present;
    /// what does not apply (no server reached) is null.
    public var json: String {
        var b = LineBuffer()
        writeJSON(into: &b)
        return b.string
    }

    /// The JSON record as bytes. Runs once per session, so it writes bytes directly: constant
    /// keys need no escaping and numbers no String.
    public func writeJSON(into b: inout LineBuffer) {
        b.append("{\"time\":\"")
        Timestamp.write(milliseconds: timeMillis, into: &b)
        b.append("\",\"listener\":")
        b.append(jsonQuoted: listener)
        b.append(",\"client\":\"")
        if clientPort == nil { b.append("unix:") } else { b.append(client: client) }
        b.append("\",\"client_port\":")
        if let p = clientPort { b.append(number: UInt64(p)) } else { b.append("null") }
        b.append(",\"upstream\":")
        if let u = upstream { b.append(jsonQuoted: u.name) } else { b.append("null") }
        let connected = attempts.connected
        if let u = upstream, let a = connected {
            let server = attempts.server(of: a, in: u)
            b.append(",\"server\":")
            b.append(jsonQuoted: server.name)
            b.append(",\"server_address\":")
            b.append(jsonQuoted: server.address)
        } else {
            b.append(",\"server\":null,\"server_address\":null")
        }
        b.append(",\"tried\":[")
        if let u = upstream {
            for i in 0..<attempts.total {
                let a = attempts[i]
                let server = attempts.server(of: a, in: u)
                b.append(i > 0 ? ",{\"server\":" : "{\"server\":")
                b.append(jsonQuoted: server.name)
                b.append(",\"address\":")
                b.append(jsonQuoted: server.address)
                b.append(",\"outcome\":\"")
                b.append(text: a.outcome.name)
                b.append("\",\"ms\":")
                b.append(fixed: UInt64(a.durationMicros), places: 3)
                b.append("}")
            }
        }
        b.append("],\"connect_ms\":")
        if let a = connected { b.append(fixed: UInt64(a.durationMicros), places: 3) } else { b.append("null") }
        b.append(",\"duration_ms\":")
        b.append(fixed: sessionNanos / 1000, places: 3)
        b.append(",\"bytes_from_client\":")
        b.append(number: bytesFromClient)
        b.append(",\"bytes_to_client\":")
        b.append(number: bytesToClient)
        b.append(",\"end\":\"")
        b.append(text: reason.rawValue)
        b.append("\",\"status\":")
        b.append(number: reason.status)
        b.append(",\"connection\":")
        b.append(number: connection)
        b.append("}")
    }

    // MARK: nginx variables

    /// Writes the value of an nginx variable; false where nginx's is "not found" (no upstream
    /// reached), for the caller to write "-" or nothing.
    public func write(_ v: LogVariable, escape: LogFormatConfig.Escape, into b: inout LineBuffer) -> Bool {
        switch v {
        case .remoteAddr: if clientPort == nil { b.append("unix:") } else { b.append(client: client) }
        case .remotePort: if let p = clientPort { b.append(number: UInt64(p)) }
        case .serverAddr: b.append(localHost, escape: escape)
        case .serverPort: b.append(localPort, escape: escape)
        case .bytesSent: b.append(number: bytesWrittenToClient)
        case .bytesReceived: b.append(number: bytesFromClient)
        case .sessionTime: b.append(fixed: sessionNanos / 1_000_000, places: 3)
        case .status: b.append(number: reason.status)
        case .timeISO8601: b.append(text: ConnectionRecord.localTime(timeMillis, iso: true))
        case .timeLocal: b.append(text: ConnectionRecord.localTime(timeMillis, iso: false))
        case .msec: b.append(fixed: UInt64(max(0, timeMillis)), places: 3)
        case .connection: b.append(number: connection)
        case .protocol: b.append("TCP")
        case .pid: b.append(number: UInt64(getpid()))
        case .hostname: b.append(ConnectionRecord.hostname, escape: escape)
        case .binaryRemoteAddr: writeBinaryAddress(escape: escape, into: &b)
        // nginx: "not found" without a header (or with v1 UNKNOWN, v2 LOCAL); a port of 0 is empty.
        case .proxyProtocolAddr:
            guard let o = origin else { return false }
            b.append(o.headerSource.host, escape: escape)
        case .proxyProtocolPort:
            guard let o = origin else { return false }
            if o.headerSource.port > 0 { b.append(number: UInt64(o.headerSource.port)) }
        case .proxyProtocolServerAddr:
            guard let o = origin else { return false }
            b.append(o.headerDestination.host, escape: escape)
        case .proxyProtocolServerPort:
            guard let o = origin else { return false }
            if o.headerDestination.port > 0 { b.append(number: UInt64(o.headerDestination.port)) }
        // The sender of a header whose address replaced it; otherwise $remote_addr/_port.
        case .realipRemoteAddr:
            guard let o = origin, o.replacesSender else { return write(.remoteAddr, escape: escape, into: &b) }
            if o.sender == .none { b.append("unix:") } else { b.append(client: o.sender) }
        case .realipRemotePort:
            guard let o = origin, o.replacesSender else { return write(.remotePort, escape: escape, into: &b) }
            if o.senderPort > 0 { b.append(number: UInt64(o.senderPort)) }
        case .upstreamFirstByteTime:
            return perAttempt(&b, noServer: { b in b.append("-") }) { b, _, a in
                if let micros = attempts.firstByteMicros(of: a) { b.append(fixed: UInt64(micros) / 1000, places: 3) } else { b.append("-") }
            }
        case .upstreamAddr:
            return perAttempt(&b, noServer: { b in b.append(upstream?.name ?? "", escape: escape) }) { b, u, a in
                b.append(attempts.server(of: a, in: u).address, escape: escape)
            }
        case .upstreamConnectTime:
            return perAttempt(&b, noServer: { b in b.append("-") }) { b, _, a in
                if a.outcome == .connected { b.append(fixed: UInt64(a.durationMicros) / 1000, places: 3) } else { b.append("-") }
            }
        case .upstreamBytesSent:
            return perAttempt(&b, noServer: { b in b.append("0") }) { b, _, a in
                b.append(number: a.outcome == .connected ? bytesWrittenToServer : 0)
            }
        case .upstreamBytesReceived:
            return perAttempt(&b, noServer: { b in b.append("0") }) { b, _, a in
                b.append(number: a.outcome == .connected ? bytesToClient : 0)
            }
        case .upstreamSessionTime:
            return perAttempt(&b, noServer: { b in b.append("0.000") }) { b, _, a in
                let micros = a.outcome == .connected ? sessionNanos / 1000 &- min(sessionNanos / 1000, UInt64(a.startMicros))
                                                     : UInt64(a.durationMicros)
                b.append(fixed: micros / 1000, places: 3)
            }
        }
        return true
    }

    /// nginx's $binary_remote_addr: the address's 4 (IPv4) or 16 (IPv6) bytes in network
    /// order, escaped as the format says; "unix:" for a Unix-socket client.
    private func writeBinaryAddress(escape: LogFormatConfig.Escape, into b: inout LineBuffer) {
        guard clientPort != nil, client != .none else { return b.append("unix:") }
        var bytes = (client.high.bigEndian, client.low.bigEndian)
        withUnsafeBytes(of: &bytes) { raw in
            let isIPv4 = client.high == 0 && client.low >> 32 == 0xFFFF
            LogTemplate.append(rawBytes: isIPv4 ? UnsafeRawBufferPointer(rebasing: raw[12..<16]) : raw, escape: escape, to: &b)
        }
    }

    /// nginx joins one value per upstream attempt with ", ". When no server could be chosen at
    /// all ("no live upstreams") nginx still records one attempt, named after the upstream.
    private func perAttempt(_ b: inout LineBuffer, noServer: (inout LineBuffer) -> Void,
                            _ each: (inout LineBuffer, Upstream, Attempt) -> Void) -> Bool {
        guard let u = upstream else { return false }
        if attempts.total == 0 {
            guard reason == .noServer else { return false }
            noServer(&b)
            return true
        }
        for i in 0..<attempts.total {
            if i > 0 { b.append(", ") }
            each(&b, u, attempts[i])
        }
        return true
    }

    // MARK: formatting helpers

    static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    /// nginx's $time_iso8601 (`2026-11-22T10:04:05+01:00`) or $time_local (`22/Nov/2026:10:04:05 +0100`),
    /// both in the local time zone.
    public static func localTime(_ ms: Int64, iso: Bool) -> String {
        // Once per second and form: the loop formats every line, so a cache of one is enough.
        let second = ms / 1000
        let slot = iso ? 0 : 1
        if cachedTimeSecond[slot] == second { return cachedTimeText[slot] }
        let text = formatLocalTime(second, iso: iso)
        cachedTimeSecond[slot] = second
        cachedTimeText[slot] = text
        return text
    }

    nonisolated(unsafe) private static var cachedTimeSecond: [Int64] = [-1, -1]
    nonisolated(unsafe) private static var cachedTimeText: [String] = ["", ""]

    static func formatLocalTime(_ second: Int64, iso: Bool) -> String {
        var t = time_t(second)
        var tmv = tm()
        localtime_r(&t, &tmv)
        func pad(_ v: Int, _ w: Int = 2) -> String {
            let s = String(v)
            return String(repeating: "0", count: max(0, w - s.count)) + s
        }
        let off = tmv.tm_gmtoff
        let sign = off < 0 ? "-" : "+"
        let oh = pad(abs(off) / 3600), om = pad(abs(off) % 3600 / 60)
        let y = Int(tmv.tm_year) + 1900, mo = Int(tmv.tm_mon), d = Int(tmv.tm_mday)
        let h = pad(Int(tmv.tm_hour)), mi = pad(Int(tmv.tm_min)), s = pad(Int(tmv.tm_sec))
        if iso {
            return "\(pad(y, 4))-\(pad(mo + 1))-\(pad(d))T\(h):\(mi):\(s)\(sign)\(oh):\(om)"
        }
        return "\(pad(d))/\(months[mo])/\(pad(y, 4)):\(h):\(mi):\(s) \(sign)\(oh)\(om)"
    }

    static let hostname: String = {
        var buf = [CChar](repeating: 0, count: 256)
        gethostname(&buf, buf.count - 1)
        return String(cString: buf)
    }()
}

extension ClientKey {
    /// The client's address as nginx's $remote_addr prints it ("unix:" for Unix-socket clients).
    public var hostText: String {
        if self == .none { return "unix:" }
        if high == 0 && low >> 32 == 0xFFFF {
            // The common case, without inet_ntop's buffer round trip.
            let a = UInt32(truncatingIfNeeded: low)
            return "\(a >> 24).\(a >> 16 & 0xFF).\(a >> 8 & 0xFF).\(a & 0xFF)"
        }
        var buf = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
        if high == 0 && low >> 32 == 0xFFFF {
            var a = in_addr(s_addr: UInt32(truncatingIfNeeded: low).bigEndian)
            inet_ntop(AF_INET, &a, &buf, socklen_t(buf.count))
        } else {
            var a = in6_addr()
            withUnsafeMutableBytes(of: &a) { p in
                p.storeBytes(of: high.bigEndian, toByteOffset: 0, as: UInt64.self)
                p.storeBytes(of: low.bigEndian, toByteOffset: 8, as: UInt64.self)
            }
            inet_ntop(AF_INET6, &a, &buf, socklen_t(buf.count))
        }
        return String(cString: buf)
    }
}
