import Glibc

// Every server one session tried and how each attempt ended, for the connection log
// ($upstream_addr, $upstream_connect_time, ferry's "tried" list). Kept per session, so it is
// small: two attempts inline (nearly every session makes one), more spill into an array that
// exists only for sessions that retried twice.

/// How one connect attempt ended.
public enum AttemptOutcome: UInt8, Sendable {
    case pending        // still connecting
    case connected
    case refused        // ECONNREFUSED
    case timedOut       // proxy_connect_timeout, or ETIMEDOUT
    case reset          // ECONNRESET during the handshake
    case unreachable    // EHOSTUNREACH, ENETUNREACH
    case localError     // ferry's side failed (out of descriptors): not held against the server
    case error          // anything else

    public var name: String {
        switch self {
        case .pending: return "abandoned"   // the session ended while still connecting
        case .connected: return "connected"
        case .refused: return "refused"
        case .timedOut: return "timeout"
        case .reset: return "reset"
        case .unreachable: return "unreachable"
        case .localError: return "local_error"
        case .error: return "error"
        }
    }

    init(_ cause: Errno) {
        switch cause {
        case .connectionRefused: self = .refused
        case .timedOut: self = .timedOut
        case .connectionReset: self = .reset
        case .tooManyOpenFiles, .tooManyOpenFilesInSystem: self = .localError
        case Errno(EHOSTUNREACH), Errno(ENETUNREACH): self = .unreachable
        default: self = .error
        }
    }
}

/// One attempt: which server, when it started and how long it took, relative to the session's
/// start in microseconds (UInt32 holds 71 minutes; longer values saturate).
public struct Attempt: Equatable, Sendable {
    public var peer: UInt32
    public var startMicros: UInt32
    public var durationMicros: UInt32
    public var outcome: AttemptOutcome
}

public struct AttemptLog: Sendable {
    private var first = Attempt(peer: 0, startMicros: 0, durationMicros: 0, outcome: .pending)
    private var second = Attempt(peer: 0, startMicros: 0, durationMicros: 0, outcome: .pending)
    /// Attempts past the second, and the servers a reload dropped after the session tried
    /// them. One reference, absent for nearly every session, so a session stays small.
    private var spill: Spill? = nil
    public private(set) var count: UInt8 = 0
    /// When the connected server's first read gave something (bytes, its FIN or an error), in
    /// µs after the session started; `noFirstByte` until then. Its room is the padding after
    /// `count` (the log's size rounds up to 48 either way), so it costs a session nothing.
    public private(set) var firstByteMicros: UInt32 = AttemptLog.noFirstByte

    static let noFirstByte = UInt32.max

    final class Spill: @unchecked Sendable {
        var more: [Attempt] = []
        /// Name and address of each dropped server; an attempt on one has peer `departedBase + k`.
        var departed: [(name: String, address: String)] = []
        init() {}
        init(_ other: Spill) { more = other.more; departed = other.departed }
    }

    /// The spill, copied first if another log shares it (copy on write: a log is a value).
    private mutating func spillForWriting() -> Spill {
        if isKnownUniquelyReferenced(&spill) { return spill! }
        let s = spill.map(Spill.init) ?? Spill()
        spill = s
        return s
    }

    /// Server indices at or above this name a `departed` entry, not a server of the upstream.
    static let departedBase: UInt32 = 0x8000_0000

    public init() {}

    static func micros(_ nanos: UInt64) -> UInt32 { UInt32(clamping: nanos / 1000) }

    /// A new attempt on `peer`, `offset` ns after the session started.
    public mutating func begin(peer: Int, offset: UInt64) {
        let a = Attempt(peer: UInt32(truncatingIfNeeded: peer), startMicros: AttemptLog.micros(offset), durationMicros: 0, outcome: .pending)
        switch count {
        case 0: first = a
        case 1: second = a
        default: spillForWriting().more.append(a)
        }
        count &+= count == .max ? 0 : 1
    }

    /// Ends the latest attempt `offset` ns after the session started.
    public mutating func finish(_ outcome: AttemptOutcome, offset: UInt64) {
        guard count > 0 else { return }
        update(Int(count) - 1) { a in
            a.outcome = outcome
            a.durationMicros = AttemptLog.micros(offset) &- min(a.startMicros, AttemptLog.micros(offset))
        }
    }

    /// The session ended while its last attempt was still connecting: the attempt stays
    /// pending ("abandoned", no connect time) but gets the time it ran.
    public mutating func abandon(offset: UInt64) {
        guard count > 0 else { return }
        update(Int(count) - 1) { a in
            guard a.outcome == .pending else { return }
            a.durationMicros = AttemptLog.micros(offset) &- min(a.startMicros, AttemptLog.micros(offset))
        }
    }

    /// The first read from the connected server, `offset` ns after the session started
    /// ($upstream_first_byte_time). Only the first call counts.
    public mutating func firstByte(offset: UInt64) {
        guard firstByteMicros == AttemptLog.noFirstByte else { return }
        firstByteMicros = min(AttemptLog.micros(offset), AttemptLog.noFirstByte - 1)
    }

    public var hasFirstByte: Bool { firstByteMicros != AttemptLog.noFirstByte }

    /// Time from the start of attempt `a` to its server's first byte, in µs; nil for an attempt
    /// that never got one (only the connected attempt can).
    public func firstByteMicros(of a: Attempt) -> UInt32? {
        guard a.outcome == .connected, firstByteMicros != AttemptLog.noFirstByte else { return nil }
        return firstByteMicros &- min(a.startMicros, firstByteMicros)
    }

    private mutating func update(_ i: Int, _ body: (inout Attempt) -> Void) {
        switch i {
        case 0: body(&first)
        case 1: body(&second)
        default:
            if i - 2 < (spill?.more.count ?? 0) { body(&spillForWriting().more[i - 2]) }
        }
    }

    public subscript(i: Int) -> Attempt {
        switch i {
        case 0: return first
        case 1: return second
        default: return spill!.more[i - 2]
        }
    }

    /// How many attempts are recorded (`count` saturates at 255; the spill array does not).
    public var total: Int { min(Int(count), 2 + (spill?.more.count ?? 0)) }

    /// The attempts in order (a copy: for tests and cold paths).
    public var all: [Attempt] { (0..<total).map { self[$0] } }

    /// Renumbers the attempts for a reload that moved the session from `old` to a new upstream
    /// object: `map[i]` is old server i's index there. An attempt on a server the reload
    /// dropped keeps its server's name and address (its index means nothing any more), so the
    /// log line still says where the session tried, and a 502 names the servers that failed.
    public mutating func remap(_ map: [Int?], from old: Upstream) {
        for i in 0..<total {
            let p = self[i].peer
            guard p < AttemptLog.departedBase else { continue }   // dropped earlier: already named
            let peer: UInt32
            if Int(p) < map.count, let j = map[Int(p)] {
                peer = UInt32(j)
            } else {
                let d = spillForWriting()
                peer = AttemptLog.departedBase + UInt32(d.departed.count)
                d.departed.append(Int(p) < old.serverNames.count ? (old.serverNames[Int(p)], old.addressTexts[Int(p)]) : ("?", "?"))
            }
            update(i) { $0.peer = peer }
        }
    }

    /// The name and address (as written) of the server attempt `a` went to; `u` is the
    /// session's upstream now.
    public func server(of a: Attempt, in u: Upstream) -> (name: String, address: String) {
        if a.peer >= AttemptLog.departedBase {
            let k = Int(a.peer - AttemptLog.departedBase)
            if let d = spill?.departed, k < d.count { return d[k] }
            return ("?", "?")
        }
        return (u.serverNames[Int(a.peer)], u.addressTexts[Int(a.peer)])
    }

    /// The attempt that connected, if any (always the last one).
    public var connected: Attempt? {
        guard total > 0 else { return nil }
        let last = self[total - 1]
        return last.outcome == .connected ? last : nil
    }
}
