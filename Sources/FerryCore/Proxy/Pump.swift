import Glibc

/// What a relay direction needs from the loop: the shared scratch buffer and the pools.
public final class RelayContext {
    /// Messages are received here and sent on at once; only a remainder the destination
    /// refused is copied into a borrowed buffer. Safe to share: one loop, one thread.
    public let scratch: UnsafeMutableRawPointer
    public let scratchSize: Int
    public let buffers: BufferPool
    public let pipes: PipePool
    public let policy: RelayPolicy

    public init(scratchSize: Int, buffers: BufferPool, pipes: PipePool, policy: RelayPolicy) {
        self.scratchSize = scratchSize
        scratch = .allocate(byteCount: scratchSize, alignment: 16)
        self.buffers = buffers
        self.pipes = pipes
        self.policy = policy
    }

    deinit { scratch.deallocate() }
}

/// How a direction chooses between copying and splicing.
///
/// Small messages (CCcam's 100-400 bytes) cost the same two system calls either way, and
/// copying needs no pipe, so a direction starts by copying. After `spliceAfterLargeReads`
/// consecutive reads of at least `largeRead` bytes it is a bulk transfer and switches to
/// splice; after `copyAfterSmallReads` small splices it goes back.
public struct RelayPolicy {
    public enum Mode: String { case auto, copy, splice }
    public var mode: Mode = .auto
    public var largeRead = 16 * 1024
    public var spliceAfterLargeReads: UInt8 = 2
    public var copyAfterSmallReads: UInt8 = 4
    public var spliceChunk = 64 * 1024
    public init(mode: Mode = .auto) { self.mode = mode }
}

public enum PumpOutcome: Equatable {
    /// Nothing more to do until the source has data or the destination has room.
    case waiting
    /// The direction did a bounded amount of work and wants another turn.
    case yielded
    /// The source ended and everything before its FIN reached the destination.
    case finished
    case sourceFailed(Errno)
    case destinationFailed(Errno)
}

/// How many bytes one run of a pump may still read. The ordinary relay passes `Unlimited`,
/// whose calls the optimiser folds away in the specialised copy of `run`, so sessions without
/// `proxy_upload_rate`/`proxy_download_rate` run exactly the code they ran before; rate-limited
/// ones pass a `ReadBudget`.
protocol ReadAllowance {
    /// What the next read may ask for, at most `wanted`.
    func cap(_ wanted: Int) -> Int
    mutating func spend(_ n: Int)
    var isSpent: Bool { get }
}

struct Unlimited: ReadAllowance {
    @inline(__always) func cap(_ wanted: Int) -> Int { wanted }
    @inline(__always) mutating func spend(_ n: Int) {}
    var isSpent: Bool { @inline(__always) get { false } }
}

struct ReadBudget: ReadAllowance {
    var left: Int
    func cap(_ wanted: Int) -> Int { min(wanted, left) }
    mutating func spend(_ n: Int) { left -= n }
    var isSpent: Bool { left <= 0 }
}

/// One direction of a session: source socket -> (scratch buffer | pipe) -> destination socket.
/// Holds a buffer or a pipe only while the destination has not taken everything.
public struct Pump {
    enum Transport: UInt8 { case copy, splice }

    var held: UnsafeMutableRawPointer? = nil
    var heldOffset: Int32 = 0
    var heldLength: Int32 = 0
    var pipe: Pipe? = nil
    // The one-byte fields sit in the optional pipe's padding, and the two Int32s after them,
    // so the pump stays 48 bytes: it is paid twice per held connection.
    var transport: Transport = .copy
    var largeReads: UInt8 = 0
    var smallReads: UInt8 = 0
    /// The source's last event said it hung up (EPOLLRDHUP/HUP): its FIN may sit behind the
    /// data already read, and no further edge will announce it, so read until EOF.
    var sourceHungUp = false
    /// The source sent FIN; it is relayed once nothing is held.
    var sourceEnded = false
    var finished = false
    var pipeBytes: Int32 = 0
    /// What was written to the destination differs from what was read by what this direction
    /// added itself (a PROXY header: +) and what it dropped, unsent, at an abnormal end (-).
    /// Bytes still held are not in it yet; `written` takes them off.
    var writtenAdjustment: Int32 = 0
    /// Bytes read from the source. Never goes down: the metrics' byte counters are fed from it.
    public internal(set) var bytes: UInt64 = 0

    /// Bytes the destination's socket accepted: nginx's $bytes_sent and $upstream_bytes_sent
    /// count writes, so a PROXY header counts and bytes lost at an abnormal end do not.
    public var written: UInt64 {
        let pending = Int64(held == nil ? 0 : heldLength - heldOffset) + Int64(pipeBytes)
        return UInt64(max(0, Int64(bytes) + Int64(writtenAdjustment) - pending))
    }

    public init() {}

    var isHolding: Bool { held != nil || pipeBytes > 0 }

    /// Moves bytes until the source is drained, the destination is full, or the work bound is hit.
    /// Precondition: called on the loop thread; `allowSplice` is false for Unix-socket peers.
    mutating func run(from src: Socket, to dst: Socket, _ ctx: RelayContext, allowSplice: Bool) -> PumpOutcome {
        var unlimited = Unlimited()
        return run(from: src, to: dst, ctx, allowSplice: allowSplice, allowance: &unlimited)
    }

    /// The same, reading at most what `allowance` permits; a spent allowance still flushes
    /// what is held and passes on a FIN already read, but reads nothing (`.waiting`).
    mutating func run<A: ReadAllowance>(from src: Socket, to dst: Socket, _ ctx: RelayContext, allowSplice: Bool,
                                        allowance: inout A) -> PumpOutcome {
        do {
            guard try flushHeld(to: dst, ctx) else { return .waiting }
            if sourceEnded { return finished ? .waiting : finish(dst) }
            if transport == .copy && ctx.policy.mode == .splice && allowSplice { transport = .splice }
            // Bounded so one bulk session cannot monopolise a turn of the loop.
            for round in 0..<Pump.roundsPerRun {
                if allowance.isSpent { return .waiting }
                let step: Step
                if transport == .splice, allowSplice, pipe != nil || borrowPipe(ctx) {
                    step = try spliceRound(from: src, to: dst, ctx, &allowance, lastRound: round == Pump.roundsPerRun - 1)
                } else {
                    step = try copyRound(from: src, to: dst, ctx, allowSplice: allowSplice, &allowance)
                }
                switch step {
                case .again: continue
                case .drained: return .waiting
                case .blocked: return .waiting
                case .ended: return finish(dst)
                }
            }
            return .yielded
        } catch let failure as PumpFailure {
            return failure.outcome
        } catch {
            preconditionFailure("unexpected relay error \(error)")
        }
    }

    enum Step { case again, drained, blocked, ended }

    /// Rounds one run may do before it yields its turn of the loop.
    static let roundsPerRun = 16

    struct PumpFailure: Error {
        let outcome: PumpOutcome
    }

    /// The source has ended and nothing is held: the session passes the FIN on (or closes,
    /// when the other direction is already done, which saves a shutdown call per session).
    private mutating func finish(_ dst: Socket) -> PumpOutcome {
        finished = true
        return .finished
    }

    private mutating func copyRound<A: ReadAllowance>(from src: Socket, to dst: Socket, _ ctx: RelayContext, allowSplice: Bool,
                                                     _ allowance: inout A) throws -> Step {
        let n: Int
        let wanted = allowance.cap(ctx.scratchSize)
        do {
            switch try src.receive(into: ctx.scratch, count: wanted) {
            case .wouldBlock: return .drained
            case .done(let k): n = k
            }
        } catch { throw PumpFailure(outcome: .sourceFailed(error)) }
        if n == 0 { sourceEnded = true; return .ended }
        bytes &+= UInt64(n)
        allowance.spend(n)
        var sent = 0
        do {
            if case .done(let k) = try dst.send(from: ctx.scratch, count: n) { sent = k }
        } catch {
            writtenAdjustment -= Int32(n)   // read into scratch, never held: lost with the session
            throw PumpFailure(outcome: .destinationFailed(error))
        }
        if sent < n {
            let b = ctx.buffers.borrow()
            b.copyMemory(from: ctx.scratch + sent, byteCount: n - sent)
            held = b
            heldOffset = 0
            heldLength = Int32(n - sent)
            return .blocked
        }
        if n >= ctx.policy.largeRead {
            largeReads &+= 1
            if allowSplice && ctx.policy.mode == .auto && largeReads >= ctx.policy.spliceAfterLargeReads {
                transport = .splice
                smallReads = 0
            }
        } else {
            largeReads = 0
        }
        // Edge-triggered: a read shorter than asked means the socket was empty at that moment,
        // and any later byte raises a new edge, so reading again would only return EAGAIN.
        // Not so for a FIN that came in the same event as the data: then read on to the EOF.
        return n < wanted && !sourceHungUp ? .drained : .again
    }

    private mutating func borrowPipe(_ ctx: RelayContext) -> Bool {
        guard let p = ctx.pipes.borrow() else {
            transport = .copy
            largeReads = 0
            return false
        }
        pipe = p
        return true
    }

    private mutating func returnPipe(_ ctx: RelayContext) {
        if let p = pipe, pipeBytes == 0 {
            ctx.pipes.giveBack(p)
            pipe = nil
        }
    }

    private mutating func spliceRound<A: ReadAllowance>(from src: Socket, to dst: Socket, _ ctx: RelayContext,
                                                       _ allowance: inout A, lastRound: Bool) throws -> Step {
        let p = pipe!
        // Fill only an empty pipe: EAGAIN must mean "source empty", never "pipe full",
        // or an edge-triggered source would be forgotten.
        var more = false
        if pipeBytes == 0 {
            let n: Int
            let asked = allowance.cap(ctx.policy.spliceChunk)
            do {
                switch try splice(from: src.fd, to: p.writeEnd, count: asked, more: false) {
                case .wouldBlock: returnPipe(ctx); return .drained
                case .done(let k): n = k
                }
            } catch { returnPipe(ctx); throw PumpFailure(outcome: .sourceFailed(error)) }
            if n == 0 { returnPipe(ctx); sourceEnded = true; return .ended }
            pipeBytes = Int32(n)
            bytes &+= UInt64(n)
            allowance.spend(n)
            if n < ctx.policy.largeRead { smallReads &+= 1 } else { smallReads = 0 }
            // A whole unthrottled chunk with more already queued behind it: SPLICE_F_MORE lets
            // the kernel keep the chunk's tail for the next one instead of sending it alone
            // under TCP_NODELAY (64 KiB is one loopback segment and a 52-byte runt), and
            // spares the receiver a push per chunk: iperf3 through ferry went from 15.5-16.0
            // to 18.1-18.4 Gbit/s and from 0.38-0.39 to 0.30-0.31 CPU s/GB. (Reading whole
            // segments instead, which only avoids the runt, gained 3%.) Only when the next
            // chunk is certain to follow at once (bytes queued, the allowance not spent, and
            // not the run's last round, after which the session yields to the rest of the
            // loop's batch): the last chunk of a burst goes without, or its tail would wait for
            // an ACK or a timer (44 ms per 64 KiB request and reply, measured).
            more = !lastRound && n == asked && asked == ctx.policy.spliceChunk && !allowance.isSpent && src.hasQueuedBytes()
        }
        guard try drainPipe(to: dst, more: more) else { return .blocked }
        returnPipe(ctx)
        if ctx.policy.mode == .auto && smallReads >= ctx.policy.copyAfterSmallReads {
            transport = .copy
            largeReads = 0
        }
        // A short splice does not prove the socket empty (the pipe's slots may have run out first),
        // so splice mode reads until EAGAIN.
        return .again
    }

    /// Sends what the pipe holds; false when the destination is full. `more`: the source's next
    /// chunk follows at once (see spliceRound); a later flush of the rest sends without it.
    private mutating func drainPipe(to dst: Socket, more: Bool = false) throws -> Bool {
        guard let p = pipe else { return true }
        while pipeBytes > 0 {
            do {
                switch try splice(from: p.readEnd, to: dst.fd, count: Int(pipeBytes), more: more) {
                case .wouldBlock: return false
                case .done(let k): pipeBytes -= Int32(k)
                }
            } catch { throw PumpFailure(outcome: .destinationFailed(error)) }
        }
        return true
    }

    /// Sends what an earlier round could not; true when nothing is held any more.
    private mutating func flushHeld(to dst: Socket, _ ctx: RelayContext) throws -> Bool {
        if let b = held {
            while heldOffset < heldLength {
                do {
                    switch try dst.send(from: b + Int(heldOffset), count: Int(heldLength - heldOffset)) {
                    case .wouldBlock: return false
                    case .done(let k): heldOffset += Int32(k)
                    }
                } catch { throw PumpFailure(outcome: .destinationFailed(error)) }
            }
            ctx.buffers.giveBack(b)
            held = nil
        }
        if pipeBytes > 0 {
            guard try drainPipe(to: dst) else { return false }
            returnPipe(ctx)
        }
        return true
    }

    /// Takes a borrowed buffer whose bytes [offset, offset+length) were read from the source
    /// before the session began (after a PROXY header): sent first, counted as relayed.
    /// Precondition: nothing held yet.
    mutating func hold(_ buffer: UnsafeMutableRawPointer, offset: Int, length: Int) {
        precondition(held == nil && pipeBytes == 0, "hold: already holding")
        held = buffer
        heldOffset = Int32(offset)
        heldLength = Int32(offset + length)
        bytes &+= UInt64(length)
    }

    /// Puts `prefix` (a PROXY header) in front of whatever is held, borrowing a buffer if
    /// needed. Not counted in `bytes` (nothing was read), but in `written` once sent.
    /// Precondition: no pipe in use (before relaying).
    mutating func prepend(_ prefix: [UInt8], _ ctx: RelayContext) {
        precondition(pipeBytes == 0, "prepend: pipe in use")
        let b = held ?? ctx.buffers.borrow()
        let kept = held == nil ? 0 : Int(heldLength - heldOffset)
        precondition(prefix.count + kept <= ctx.buffers.bufferSize, "prepend: does not fit")
        if kept > 0 { (b + prefix.count).copyMemory(from: b + Int(heldOffset), byteCount: kept) }
        prefix.withUnsafeBytes { b.copyMemory(from: $0.baseAddress!, byteCount: prefix.count) }
        held = b
        heldOffset = 0
        heldLength = Int32(prefix.count + kept)
        writtenAdjustment += Int32(prefix.count)
    }

    /// Gives back whatever is borrowed; bytes still held are lost with the session. `bytes`
    /// keeps counting them: it is what was read (nginx's $bytes_received counts reads too), and
    /// the metrics' byte counters, fed from it, must never go down; `written` leaves them out.
    mutating func release(_ ctx: RelayContext) {
        if let b = held {
            writtenAdjustment -= heldLength - heldOffset
            ctx.buffers.giveBack(b)
            held = nil
        }
        if let p = pipe {
            writtenAdjustment -= pipeBytes
            if pipeBytes > 0 { ctx.pipes.discard(p) } else { ctx.pipes.giveBack(p) }
            pipe = nil
            pipeBytes = 0
        }
    }
}
