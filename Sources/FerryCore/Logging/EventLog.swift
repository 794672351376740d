import Glibc

/// ferry's own events (start, capacity, failures), one JSON object per line, to stderr by default
/// or to the `error_log` file. Called on the loop thread; a line is written with one write(2) so
/// lines never interleave. Events are rarer than sessions, so they are written directly (the
/// per-session connection log goes through a buffer and a writer thread), but only when the
/// write cannot wait: a stalled reader costs dropped, counted lines, never a stopped loop.
public final class EventLog {
    public var minimumLevel: LogLevel
    public var fd: Int32
    /// The file behind `fd`, reopened on SIGUSR1; nil for stderr.
    public private(set) var path: String? = nil

    public init(fd: Int32 = 2, minimumLevel: LogLevel = .notice) {
        self.fd = fd
        self.minimumLevel = minimumLevel
    }

    /// Sends events to `path` from now on (`stderr` keeps standard error).
    public func open(path: String) throws(Errno) {
        guard path != "stderr" else { return }
        move(to: try FileDescriptor.openForAppend(path), path: path)
    }

    /// A reload moved `error_log`: events go to `fd`, opened by the caller (so a file that
    /// cannot be opened fails the reload before anything changes), or back to standard error
    /// when the new configuration has no file.
    public func move(to file: FileDescriptor?, path: String?) {
        if self.path != nil { closeDescriptor(fd) }
        fd = file?.rawValue ?? 2
        self.path = file == nil ? nil : path
    }

    /// logrotate moved the file: continue in a new one at the same path. On failure the old
    /// descriptor stays, and the failure is written to it.
    public func reopen() {
        guard let p = path else { return }
        do {
            let new = try FileDescriptor.openForAppend(p)
            closeDescriptor(fd)
            fd = new.rawValue
        } catch {
            log(.error, "log_reopen_failed") { $0.add("path", p); $0.add("error", "\(error.rawValue): \(error)") }
        }
    }

    /// Lines not written because the reader of `fd` (a pipe, a FIFO, a terminal) was not taking
    /// them, and how many of those a `log_lines_dropped` line has reported.
    public private(set) var dropped: UInt64 = 0
    private var reportedDropped: UInt64 = 0

    public func log(_ level: LogLevel, _ event: String, _ fields: (inout JSONLine) -> Void = { _ in }) {
        guard level >= minimumLevel else { return }
        // The loop writes these lines itself: waiting on a stalled reader would stop every
        // session. Such lines are counted and reported once the reader takes lines again.
        guard FileDescriptor(fd).isWritableNow else {
            dropped &+= 1
            return
        }
        let now = Timestamp.iso8601(milliseconds: WallClock.nowMilliseconds())
        if dropped != reportedDropped {
            var report = JSONLine()
            report.add("time", now)
            report.add("level", LogLevel.warn.rawValue)
            report.add("event", "log_lines_dropped")
            report.add("path", path ?? "stderr")
            report.add("dropped", dropped &- reportedDropped)
            report.add("dropped_total", dropped)
            reportedDropped = dropped
            FileHandleWriter(fd: fd).write(report.string + "\n")
        }
        var line = JSONLine()
        line.add("time", now)
        line.add("level", level.rawValue)
        line.add("event", event)
        fields(&line)
        FileHandleWriter(fd: fd).write(line.string + "\n")
    }
}
