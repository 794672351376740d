import Glibc

/// ferry's own events (start, capacity, failures), one JSON object per line, to stderr by default
/// or to the `error_log` file. Called on the loop thread; a line is written with one write(2) so
/// lines never interleave. Events are rare (not one per session), so they are written directly;
/// the per-session connection log is the one that goes through a buffer and a writer thread.
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
        let new = try FileDescriptor.openForAppend(path)
        if self.path != nil { closeDescriptor(fd) }
        fd = new.rawValue
        self.path = path
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

    public func log(_ level: LogLevel, _ event: String, _ fields: (inout JSONLine) -> Void = { _ in }) {
        guard level >= minimumLevel else { return }
        var line = JSONLine()
        line.add("time", Timestamp.iso8601(milliseconds: WallClock.nowMilliseconds()))
        line.add("level", level.rawValue)
        line.add("event", event)
        fields(&line)
        FileHandleWriter(fd: fd).write(line.string + "\n")
    }
}
