/// The connection log: which files each listener writes, in which format, and the accounting
/// of lines dropped. One `LogFile` per path however many `access_log` lines name it.
/// Loop thread only.
public final class ConnectionLog {
    /// One `access_log` line as the runtime applies it.
    public struct Target {
        public let file: LogFile
        /// nil: ferry's JSON record.
        public let template: LogTemplate?
    }

    public private(set) var files: [LogFile] = []
    private let loop: EventLoop
    private let events: EventLog
    private var reported: [UInt64] = []
    /// Files a reload dropped whose writers are still writing their last lines, with the drops
    /// already reported; swept every `reportInterval`.
    private var retiring: [(file: LogFile, reported: UInt64)] = []
    private var reportTimer: OneShotTimer? = nil
    /// One line at a time is made here, reused so a line costs no allocation.
    private var scratch = LineBuffer(capacity: 1024)
    static let reportInterval: UInt64 = 1_000_000_000

    public init(loop: EventLoop, events: EventLog) {
        self.loop = loop
        self.events = events
    }

    /// The targets for one server block's `access_log` lines, opening files not yet open.
    public func targets(for logs: [AccessLogConfig], formats: [LogFormatConfig], location: SourceLocation) throws(StartupError) -> [Target] {
        var out: [Target] = []
        for log in logs {
            let file: LogFile
            if let existing = files.first(where: { $0.path == log.path }) {
                file = existing
            } else {
                do {
                    file = try LogFile(path: log.path, bufferSize: log.buffer, flushInterval: log.flush?.nanoseconds, loop: loop,
                                       after: retiring.last { $0.file.path == log.path }?.file)
                } catch {
                    throw StartupError("open() \"\(log.path)\" failed (\(error.rawValue): \(error))", location)
                }
                files.append(file)
                reported.append(0)
            }
            var template: LogTemplate? = nil
            if let name = log.format, let format = formats.first(where: { $0.name == name }) {
                switch LogTemplate.compile(format.format, escape: format.escape) {
                case .success(let t): template = t
                case .failure(let problem):
                    // The builder has already checked every format; this is a guard, not a path.
                    throw StartupError("log_format \"\(name)\": \(problem)", location)
                }
            }
            out.append(Target(file: file, template: template))
        }
        if !files.isEmpty && reportTimer == nil { startReporting() }
        return out
    }

    private func startReporting() {
        let t = OneShotTimer { [unowned self] now in reportDrops(now: now) }
        reportTimer = t
        loop.timers.schedule(t, at: loop.now &+ ConnectionLog.reportInterval)
    }

    /// Writes `record` to every target. Never blocks: a line without room is counted as dropped.
    public func write(_ record: ConnectionRecord, to targets: [Target]) {
        var jsonDone = false
        for t in targets {
            if let template = t.template {
                scratch.reset()
                template.render(record, into: &scratch)
                scratch.withBytes { t.file.append(bytes: $0) }
                jsonDone = false
            } else {
                if !jsonDone {
                    scratch.reset()
                    record.writeJSON(into: &scratch)
                    jsonDone = true
                }
                scratch.withBytes { t.file.append(bytes: $0) }
            }
        }
    }

    public var dropped: UInt64 { files.reduce(0) { $0 &+ $1.dropped } }

    /// SIGUSR1: every file is reopened by its writer, after the lines already buffered.
    public func reopen() {
        for f in files { f.reopen() }
        events.log(.notice, "logs_reopened") { $0.add("files", files.count) }
    }

    /// Closes the files opened since there were `count`: a reload that failed after opening
    /// them must not keep them (and their writer threads) open.
    public func closeFiles(openedAfter count: Int) {
        guard files.count > count else { return }
        for f in files[count...] { f.close() }
        files.removeSubrange(count...)
        reported.removeSubrange(count...)
    }

    /// Retires the files none of `used` writes to (a reload changed or removed their
    /// `access_log`): without this every path a reload dropped kept its descriptor and writer
    /// thread for as long as ferry ran. The loop does not wait: each writer writes what is
    /// buffered and exits, and the next report sweep joins it and reports its drops.
    public func closeFiles(notIn used: Set<ObjectIdentifier>) {
        var i = files.count - 1
        while i >= 0 {
            let f = files[i]
            if !used.contains(ObjectIdentifier(f)) {
                f.retire()
                retiring.append((f, reported[i]))
                files.remove(at: i)
                reported.remove(at: i)
            }
            i -= 1
        }
        if !retiring.isEmpty && reportTimer == nil { startReporting() }
    }

    /// At exit: writes what is buffered and stops the writers.
    public func close() {
        if let t = reportTimer { loop.timers.cancel(t) }
        // Every writer is told first and all share one deadline: exit waits 2 s at most,
        // not 2 s per stuck writer.
        let all = files + retiring.map(\.file)
        for f in all { f.retire() }
        let deadline = MonotonicClock.now() &+ 2_000_000_000
        for f in all { f.close(deadline: deadline) }
        reportDrops(now: loop.now, rearm: false)
    }

    /// One event line per file per interval while lines are being dropped, so a full disk is
    /// visible in the event log without a line per lost session.
    private func reportDrops(now: UInt64, rearm: Bool = true) {
        for (i, f) in files.enumerated() { reported[i] = report(f, since: reported[i]) }
        // A retiring file is reported once, when its writer is done (or at exit).
        retiring.removeAll { r in
            let done = r.file.reap()
            if done || !rearm { report(r.file, since: r.reported) }
            return done
        }
        if rearm, let t = reportTimer { loop.timers.schedule(t, at: now &+ ConnectionLog.reportInterval) }
    }

    /// Logs `f`'s write error and the lines dropped since `reported`; returns its drop total.
    @discardableResult
    private func report(_ f: LogFile, since reported: UInt64) -> UInt64 {
        if let e = f.takeError() {
            events.log(.error, "log_write_failed") { $0.add("path", f.path); $0.add("error", "\(e.rawValue): \(e)") }
        }
        let d = f.dropped
        if d > reported {
            events.log(.warn, "log_lines_dropped") {
                $0.add("path", f.path)
                $0.add("dropped", d - reported)
                $0.add("dropped_total", d)
            }
        }
        return d
    }
}
