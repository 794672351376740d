/// What one conversation with an agent produced. Only `.reply` changes anything: "failure to
/// connect to the agent is not an error" (HAProxy), connectivity is the TCP probe's business.
enum AgentOutcome: Equatable {
    case reply([UInt8])
    case unreachable(Errno)
    case timedOut
    /// The agent closed before sending a line end.
    case incomplete
    /// No line end within AgentLineBuffer's limit.
    case tooLong
    /// A NUL byte before the line end (HAProxy ignores such a reply as incomplete).
    case nulByte

    /// Short name for logs; equal names are one episode.
    var reason: String {
        switch self {
        case .reply: return "reply"
        case .unreachable(let e): return e.description
        case .timedOut: return "timed out"
        case .incomplete: return "closed before a line end"
        case .tooLong: return "no line end in \(AgentLineBuffer.defaultLimit) bytes"
        case .nulByte: return "a NUL byte before the line end"
        }
    }
}

/// One server's agent check: every `interval`, connect to the agent, send `send` if set,
/// read one line, close. Bounded by `timeout` from the start of the connect. Same shape and
/// same reasons as TCPProbe (event loop, reset on close, fixed phase).
final class AgentProbe: EventHandler, TimerTarget {
    private enum Phase { case idle, connecting, reading }

    unowned(unsafe) let checks: HealthChecks
    let target: ProbeTarget
    /// The server's host at the agent's port; moved by `set server ... addr`.
    var address: SocketAddress
    let checkPort: UInt16
    let interval: UInt64
    let timeout: UInt64
    /// `send=` with \n, \r, \t and \\ turned into the bytes they name, as in HAProxy's
    /// quoted `agent-send "...\n"`.
    let request: [UInt8]
    var timer = TimerSlot()
    /// False after `disable agent`: the agent is not asked until `enable agent` or a reload.
    var enabled = true
    /// The reason of the previous outcome, so repeated failures are logged once per episode.
    var lastReason: String? = nil
    /// The previous reply line, so a reply's problems are logged when it changes, not every interval.
    var lastReply: [UInt8]? = nil
    private var phase: Phase = .idle
    private var socket = Socket(FileDescriptor(-1))
    private var startedAt: UInt64 = 0
    private var line = AgentLineBuffer()

    init(checks: HealthChecks, target: ProbeTarget, address: SocketAddress, config: AgentCheckConfig) {
        self.checks = checks
        self.target = target
        self.address = address
        checkPort = config.port
        interval = config.interval.nanoseconds
        timeout = config.timeout.nanoseconds
        request = AgentProbe.unescape(config.send ?? "")
    }

    /// Schedules the first check. Precondition: on the loop's thread, not yet started.
    func start(at deadline: UInt64) {
        checks.loop.timers.schedule(self, at: deadline)
    }

    func timerFired(now: UInt64) {
        switch phase {
        case .idle where !enabled: checks.loop.timers.schedule(self, at: now &+ interval)  // keeps the phase
        case .idle: begin(now: now)
        case .connecting, .reading: finish(.timedOut)
        }
    }

    func handleEvent(_ events: EpollEvents, side: UInt8) {
        switch phase {
        case .idle:
            return
        case .connecting:
            if let e = socket.pendingError() { return finish(.unreachable(e)) }
            if !events.contains(.writable) && !events.isDisjoint(with: [.error, .hangup]) {
                return finish(.unreachable(.connectionRefused))
            }
            connected()
        case .reading:
            readLine()
        }
    }

    private func begin(now: UInt64) {
        startedAt = now
        line = AgentLineBuffer()
        do {
            socket = try Socket.stream(family: address.family)
            let pending = try socket.connect(to: address)
            // Edge-triggered, like sessions: every event is read to EAGAIN.
            try checks.loop.register(socket.fd, interest: [.readable, .writable, .readHangup, .edgeTriggered], handler: self)
            phase = .connecting
            checks.loop.timers.schedule(self, at: now &+ timeout)
            if case .done = pending { connected() }
        } catch {
            finish(.unreachable(error))
        }
    }

    private func connected() {
        phase = .reading
        if !request.isEmpty {
            // A few bytes into an empty socket buffer: a short write does not happen in practice,
            // and an agent that gets part of its question answers nothing useful anyway.
            let failure: Errno? = request.withUnsafeBytes { bytes in
                do throws(Errno) {
                    _ = try socket.send(from: bytes.baseAddress!, count: bytes.count)
                    return nil
                } catch {
                    return error
                }
            }
            if let failure { return finish(.unreachable(failure)) }
        }
        readLine()
    }

    private func readLine() {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 512) { buffer in
            while phase == .reading {
                let r: IOResult<Int>
                do throws(Errno) {
                    r = try socket.receive(into: UnsafeMutableRawPointer(buffer.baseAddress!), count: buffer.count)
                } catch {
                    return finish(.unreachable(error))
                }
                switch r {
                case .wouldBlock:
                    return
                case .done(0):
                    return finish(.incomplete)
                case .done(let n):
                    switch line.append(UnsafeBufferPointer(rebasing: buffer[0..<n])) {
                    case .incomplete: continue
                    case .line(let bytes): return finish(.reply(bytes))
                    case .tooLong: return finish(.tooLong)
                    case .nulByte: return finish(.nulByte)
                    }
                }
            }
        }
    }

    private func finish(_ outcome: AgentOutcome) {
        closeSocket()
        checks.agentFinished(self, outcome)
        let now = checks.loop.now
        let next = startedAt &+ interval
        checks.loop.timers.schedule(self, at: next > now ? next : now)
    }

    /// Closes an in-flight check at shutdown without reporting.
    func stop() {
        closeSocket()
    }

    private func closeSocket() {
        checks.loop.timers.cancel(self)
        if socket.fd.rawValue >= 0 {
            if phase != .idle { checks.loop.deregister(socket.fd) }
            socket.closeWithReset()
            socket = Socket(FileDescriptor(-1))
        }
        phase = .idle
    }

    static func unescape(_ s: String) -> [UInt8] {
        var out: [UInt8] = []
        var escaped = false
        for b in s.utf8 {
            if escaped {
                switch b {
                case UInt8(ascii: "n"): out.append(UInt8(ascii: "\n"))
                case UInt8(ascii: "r"): out.append(UInt8(ascii: "\r"))
                case UInt8(ascii: "t"): out.append(UInt8(ascii: "\t"))
                default: out.append(b)
                }
                escaped = false
            } else if b == UInt8(ascii: "\\") {
                escaped = true
            } else {
                out.append(b)
            }
        }
        if escaped { out.append(UInt8(ascii: "\\")) }
        return out
    }
}
