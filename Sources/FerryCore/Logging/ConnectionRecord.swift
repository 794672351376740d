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
    public var clientHost: String
    /// nil for Unix-socket clients.
    public var clientPort: UInt16?
    public var upstream: Upstream?
    public var attempts: AttemptLog
    public var sessionNanos: UInt64
    public var bytesFromClient: UInt64
    public var bytesToClient: UInt64
    public var reason: SessionEnd
    /// $connection: the serial number of the accepted connection.
    public var connection: UInt64

    public init(timeMillis: Int64, listener: String, localHost: String, localPort: String, clientHost: String,
                clientPort: UInt16?, upstream: Upstream?, attempts: AttemptLog, sessionNanos: UInt64,
                bytesFromClient: UInt64, bytesToClient: UInt64, reason: SessionEnd, connection: UInt64) {
        self.timeMillis = timeMillis; self.listener = listener; self.localHost = localHost; self.localPort = localPort
        self.clientHost = clientHost; self.clientPort = clientPort; self.upstream = upstream; self.attempts = attempts
        self.sessionNanos = sessionNanos; self.bytesFromClient = bytesFromClient; self.bytesToClient = bytesToClient
        self.reason = reason; self.connection = connection
    }

    // MARK: ferry's JSON line

    /// ferry's own record: stable keys, documented in the README. Keys are always present;
    /// what does not apply (no server reached) is null. Written by hand rather than through
    /// JSONLine: it runs once per session, and constant keys need no escaping.
    public var json: String {
        var o = ""
        o.reserveCapacity(384)
        o += "{\"time\":\""
        o += Timestamp.iso8601(milliseconds: timeMillis)
        o += "\",\"listener\":"
        ConnectionRecord.quoted(listener, &o)
        o += ",\"client\":"
        ConnectionRecord.quoted(clientHost, &o)
        o += ",\"client_port\":"
        if let p = clientPort { o += String(p) } else { o += "null" }
        o += ",\"upstream\":"
        if let u = upstream { ConnectionRecord.quoted(u.name, &o) } else { o += "null" }
        let connected = attempts.connected
        if let u = upstream, let a = connected {
            o += ",\"server\":"
            ConnectionRecord.quoted(u.serverNames[Int(a.peer)], &o)
            o += ",\"server_address\":"
            ConnectionRecord.quoted(u.addressTexts[Int(a.peer)], &o)
        } else {
            o += ",\"server\":null,\"server_address\":null"
        }
        o += ",\"tried\":["
        if let u = upstream {
            for i in 0..<attempts.total {
                let a = attempts[i]
                o += i > 0 ? ",{\"server\":" : "{\"server\":"
                ConnectionRecord.quoted(u.serverNames[Int(a.peer)], &o)
                o += ",\"address\":"
                ConnectionRecord.quoted(u.addressTexts[Int(a.peer)], &o)
                o += ",\"outcome\":\""
                o += a.outcome.name
                o += "\",\"ms\":"
                o += ConnectionRecord.decimal(UInt64(a.durationMicros), places: 3)
                o += "}"
            }
        }
        o += "],\"connect_ms\":"
        if let a = connected { o += ConnectionRecord.decimal(UInt64(a.durationMicros), places: 3) } else { o += "null" }
        o += ",\"duration_ms\":"
        o += ConnectionRecord.decimal(sessionNanos / 1000, places: 3)
        o += ",\"bytes_from_client\":"
        o += String(bytesFromClient)
        o += ",\"bytes_to_client\":"
        o += String(bytesToClient)
        o += ",\"end\":\""
        o += reason.rawValue
        o += "\",\"status\":"
        o += String(reason.status)
        o += ",\"connection\":"
        o += String(connection)
        o += "}"
        return o
    }

    /// A JSON string; the escaping pass only when a character needs it.
    static func quoted(_ s: String, _ out: inout String) {
        out += "\""
        if s.utf8.allSatisfy({ $0 >= 0x20 && $0 != UInt8(ascii: "\"") && $0 != UInt8(ascii: "\\") }) {
            out += s
        } else {
            JSONLine.escape(s, into: &out)
        }
        out += "\""
    }

    // MARK: nginx variables

    /// The value of an nginx variable; nil where nginx's is "not found" (no upstream reached).
    public func value(of v: LogVariable) -> String? {
        switch v {
        case .remoteAddr: return clientHost
        case .remotePort: return clientPort.map { String($0) } ?? ""
        case .serverAddr: return localHost
        case .serverPort: return localPort
        case .bytesSent: return String(bytesToClient)
        case .bytesReceived: return String(bytesFromClient)
        case .sessionTime: return ConnectionRecord.decimal(sessionNanos / 1_000_000, places: 3)
        case .status: return String(reason.status)
        case .timeISO8601: return ConnectionRecord.localTime(timeMillis, iso: true)
        case .timeLocal: return ConnectionRecord.localTime(timeMillis, iso: false)
        case .msec: return ConnectionRecord.decimal(UInt64(max(0, timeMillis)), places: 3)
        case .connection: return String(connection)
        case .protocol: return "TCP"
        case .pid: return String(getpid())
        case .hostname: return ConnectionRecord.hostname
        case .upstreamAddr:
            return perAttempt(noServer: upstream?.name) { u, a in u.addressTexts[Int(a.peer)] }
        case .upstreamConnectTime:
            return perAttempt(noServer: "-") { _, a in
                a.outcome == .connected ? ConnectionRecord.decimal(UInt64(a.durationMicros) / 1000, places: 3) : "-"
            }
        case .upstreamBytesSent:
            return perAttempt(noServer: "0") { _, a in a.outcome == .connected ? String(bytesFromClient) : "0" }
        case .upstreamBytesReceived:
            return perAttempt(noServer: "0") { _, a in a.outcome == .connected ? String(bytesToClient) : "0" }
        case .upstreamSessionTime:
            return perAttempt(noServer: "0.000") { _, a in
                let micros = a.outcome == .connected ? sessionNanos / 1000 &- min(sessionNanos / 1000, UInt64(a.startMicros))
                                                     : UInt64(a.durationMicros)
                return ConnectionRecord.decimal(micros / 1000, places: 3)
            }
        }
    }

    /// nginx joins one value per upstream attempt with ", ". When no server could be chosen at
    /// all ("no live upstreams") nginx still records one attempt, named after the upstream.
    private func perAttempt(noServer: String?, _ each: (Upstream, Attempt) -> String) -> String? {
        guard let u = upstream else { return nil }
        if attempts.count == 0 { return reason == .noServer ? noServer : nil }
        var out = ""
        for i in 0..<attempts.total {
            if i > 0 { out += ", " }
            out += each(u, attempts[i])
        }
        return out
    }

    // MARK: formatting helpers

    /// `value` in units of 10^-places, written as a decimal: 1234 with 3 places is "1.234".
    public static func decimal(_ value: UInt64, places: Int) -> String {
        var scale: UInt64 = 1
        for _ in 0..<places { scale &*= 10 }
        var frac = value % scale
        var digits = [UInt8](repeating: UInt8(ascii: "0"), count: places)
        var i = places
        while i > 0 { i -= 1; digits[i] = UInt8(ascii: "0") + UInt8(frac % 10); frac /= 10 }
        return String(value / scale) + "." + String(decoding: digits, as: UTF8.self)
    }

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
