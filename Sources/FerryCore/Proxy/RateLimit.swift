/// `proxy_upload_rate` / `proxy_download_rate` for one session, with nginx's arithmetic
/// (ngx_stream_proxy_process): a direction may have read at most `rate * (elapsed + 1 s)` bytes
/// since the session began; when that is used up it reads nothing until it is not, and after
/// each run that read n bytes it rests n / rate, so the bytes come at the rate rather than in
/// one burst per second. Times are kept in nanoseconds where nginx counts whole seconds.
///
/// Allocated only for sessions whose route sets a rate; everyone else pays the `nil` test in
/// `Session.pumpUp`/`pumpDown`. A resting direction holds no buffer or pipe of its own making:
/// it runs with a spent allowance, which flushes what is held and reads nothing.
final class SessionRateLimit: TimerTarget {
    unowned(unsafe) let session: Session
    /// Bytes per second; 0 = this direction is not limited.
    let uploadRate: Int
    let downloadRate: Int
    /// Monotonic time until which a direction rests; 0 = not resting.
    private var upResumeAt: UInt64 = 0
    private var downResumeAt: UInt64 = 0
    var timer = TimerSlot()

    /// One run reads at most this much, like nginx's one buffer per read: a direction idle for a
    /// long time has a large allowance, and it comes in steps of this size, each followed by its rest.
    static let maximumRun = 64 * 1024

    init(session: Session, uploadRate: Int, downloadRate: Int) {
        self.session = session
        self.uploadRate = uploadRate
        self.downloadRate = downloadRate
    }

    func isResting(upload: Bool) -> Bool { (upload ? upResumeAt : downResumeAt) != 0 }

    /// Bytes the direction may read now; 0 while resting or when the allowance is used up (then
    /// it rests until it is not). `received` is what the direction has read so far.
    func allowance(upload: Bool, now: UInt64, startedAt: UInt64, received: UInt64) -> Int {
        if isResting(upload: upload) {
            if now < (upload ? upResumeAt : downResumeAt) { return 0 }
            setResume(upload: upload, at: 0)
        }
        let rate = upload ? uploadRate : downloadRate
        let elapsedMs = Int(min((now &- startedAt) / 1_000_000, 1 << 40)) + 1000
        let (product, overflow) = rate.multipliedReportingOverflow(by: elapsedMs)
        if overflow { return SessionRateLimit.maximumRun }
        let limit = product / 1000 - Int(clamping: received)
        if limit <= 0 {
            rest(upload: upload, now: now, nanoseconds: UInt64(-limit) * 1_000_000_000 / UInt64(rate) + 1_000_000)
            return 0
        }
        return min(limit, SessionRateLimit.maximumRun)
    }

    /// After a run that read `n` bytes: rest for the time they are worth at the rate.
    func didRead(_ n: UInt64, upload: Bool, now: UInt64) {
        guard n > 0 else { return }
        let rate = UInt64(upload ? uploadRate : downloadRate)
        let (ns, overflow) = n.multipliedReportingOverflow(by: 1_000_000_000)
        // Rounded up: a rest of 0 would schedule nothing, and a run stopped by its budget (not by
        // an empty socket) gets no new edge, so the direction would stall until the peer sent more.
        rest(upload: upload, now: now, nanoseconds: overflow ? UInt64(1) << 50 : ns / rate + (ns % rate == 0 ? 0 : 1))
    }

    private func rest(upload: Bool, now: UInt64, nanoseconds: UInt64) {
        guard nanoseconds > 0 else { return }
        setResume(upload: upload, at: now &+ nanoseconds)
    }

    private func setResume(upload: Bool, at t: UInt64) {
        if upload { upResumeAt = t } else { downResumeAt = t }
        if let next = nextResume { session.runtime.loop.timers.schedule(self, at: next) } else { session.runtime.loop.timers.cancel(self) }
    }

    /// The earlier of the two resume times that are set (no array: this runs on every read run).
    private var nextResume: UInt64? {
        switch (upResumeAt, downResumeAt) {
        case (0, 0): return nil
        case (0, let d): return d
        case (let u, 0): return u
        case (let u, let d): return min(u, d)
        }
    }

    /// A rest is over: the direction reads again, with no new edge to say so. Precondition: loop thread.
    func timerFired(now: UInt64) {
        // A run may end the session, which drops the runtime's reference to it: held strongly
        // here so the reads of `phase` after the run are not of freed memory.
        let session = self.session
        withExtendedLifetime(session) {
            // A session passing a reset on has dropped its limit (Session.abort), possibly during
            // the first run below: then this limit pumps and re-arms no more.
            var inForce: Bool { session.phase == .relaying && session.rateLimit === self }
            guard inForce else { return }
            if upResumeAt != 0 && now >= upResumeAt { session.pumpLimited(self, upload: true) }
            guard inForce else { return }
            if downResumeAt != 0 && now >= downResumeAt { session.pumpLimited(self, upload: false) }
            // Re-arm for a direction still resting (a run above may also have scheduled its own).
            if inForce && !timer.isScheduled, let next = nextResume {
                session.runtime.loop.timers.schedule(self, at: next)
            }
        }
    }
}

extension Session {
    /// One run of a rate-limited direction. Precondition: phase == .relaying, loop thread.
    func pumpLimited(_ limit: SessionRateLimit, upload: Bool) {
        let now = runtime.loop.now
        let before = upload ? up.bytes : down.bytes
        var budget = ReadBudget(left: limit.allowance(upload: upload, now: now, startedAt: startedAt, received: before))
        let outcome = upload
            ? up.run(from: client, to: server, runtime.relay, allowSplice: !serverIsUnix, allowance: &budget)
            : down.run(from: server, to: client, runtime.relay, allowSplice: !serverIsUnix, allowance: &budget)
        let read = (upload ? up.bytes : down.bytes) &- before
        // Only bytes count as activity for proxy_timeout: a rest ending on an idle socket is none.
        if read > 0 { lastActivity = now }
        limit.didRead(read, upload: upload, now: now)
        if !upload && !attemptLog.hasFirstByte { serverAnswered(outcome) }
        settle(outcome, sourceIsClient: upload)
    }
}
