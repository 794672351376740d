import Glibc

/// One connection-log file, written without ever making the event loop wait.
///
/// The loop appends whole lines to an in-memory buffer; a writer thread writes full buffers to
/// the file. While the writer is still busy with the previous buffer, the loop's buffer grows
/// past its size up to `burstLimit`: many sessions end in one batch (a `shutdown sessions` of a
/// busy server, a flood's clients leaving, a backend's resets), far more lines than one buffer
/// holds, and the writer thread may not even have been scheduled yet on a busy machine; those
/// lines must not be lost on a healthy disk. Only a writer that stays behind (slow or stalled
/// disk) past `burstLimit`, or a write that fails (disk full), costs lines, dropped and counted:
/// a session is never held up by its log line. Memory stays bounded by three buffers of at
/// most `burstLimit` (the loop's, the one handed over, the writer's).
///
/// Flushing: a buffer goes to the writer when half full, when `flushInterval` has passed since
/// its first line, on reopen and at exit. nginx's unbuffered `access_log` writes every line at
/// once; ferry's default (no `buffer=`) is a 64 KiB buffer flushed after 100 ms, so lines reach
/// the file within a tenth of a second without a write per session.
public final class LogFile: TimerTarget {
    public static let defaultBufferSize = 64 * 1024
    public static let defaultFlushInterval: UInt64 = 100_000_000
    public static let minimumBufferSize = AccessLogConfig.minimumBufferSize
    public static let maximumBufferSize = AccessLogConfig.maximumBufferSize
    /// ~12,000 JSON lines: a burst of session ends that size waits for the writer.
    public static let burstLimit = 4 * 1024 * 1024

    public let path: String
    public let bufferSize: Int
    /// nil: flushed only when full (nginx's `buffer=` without `flush=`).
    public let flushInterval: UInt64?
    public var timer = TimerSlot()
    private weak var loop: EventLoop?

    // Loop side.
    private var active: [UInt8] = []
    private var activeLines = 0
    private var droppedOnLoop: UInt64 = 0
    /// Lines produced, written or dropped.
    public private(set) var linesAppended: UInt64 = 0

    // Shared with the writer thread, under `mutex`.
    private let mutex = Mutex()
    private var handed: [UInt8] = []
    private var handedLines = 0
    private var writerBusy = false
    /// `retire()` left the loop's last lines in `handed` while the writer was busy: it takes
    /// them after its batch instead of going idle.
    private var handedWaiting = false
    private var reopenRequested = false
    private var stopRequested = false
    private var droppedOnWrite: UInt64 = 0
    private var linesWritten: UInt64 = 0
    private var lastError: Errno? = nil
    private var writerExited = false
    /// Set by `retire()`: a late line (a PROXY-header client of a listen socket two reloads gone)
    /// is counted as dropped rather than left in a buffer no writer will ever take.
    private var isClosed = false
    private var fd: FileDescriptor
    private var thread: WorkerThread? = nil
    /// Writer thread only, after init: dropped once it has finished (see init's `after`).
    private var predecessor: LogFile?

    /// Opens the file at once, so a path that cannot be written stops the start (nginx does the same).
    /// `after`: a retired file of the same path whose writer may still be writing its last
    /// lines (a reload moved the log away and the next one moved it back). This file's writer
    /// waits for it before writing, so the old lines come first and no write of one splits a
    /// line of the other (pipe writes over PIPE_BUF are not atomic).
    public init(path: String, bufferSize: Int? = nil, flushInterval: UInt64?, loop: EventLoop?, after predecessor: LogFile? = nil) throws(Errno) {
        self.path = path
        self.predecessor = predecessor
        self.bufferSize = max(bufferSize ?? LogFile.defaultBufferSize, LogFile.minimumBufferSize)
        self.flushInterval = bufferSize == nil ? (flushInterval ?? LogFile.defaultFlushInterval) : flushInterval
        self.loop = loop
        fd = try FileDescriptor.openForAppend(path)
        active.reserveCapacity(self.bufferSize)
        handed.reserveCapacity(self.bufferSize)
        do {
            // The thread keeps the file alive until `retire()`/`close()` stops it, so a LogFile dropped
            // without closing (a start that failed later) never leaves the writer on freed memory.
            thread = try WorkerThread { self.writerMain() }
        } catch {
            fd.close()
            throw error
        }
    }

    /// Lines dropped so far: no room while the writer was busy, or the write failed.
    public var dropped: UInt64 { droppedOnLoop &+ mutex.withLock { droppedOnWrite } }
    public var written: UInt64 { mutex.withLock { linesWritten } }
    /// The most recent write or reopen error, cleared by reading it.
    public func takeError() -> Errno? { mutex.withLock { defer { lastError = nil }; return lastError } }

    /// Adds one line (without its newline). Loop thread only.
    public func append(_ line: String) {
        var line = line
        line.withUTF8 { append(bytes: $0) }
    }

    public func append(bytes: UnsafeBufferPointer<UInt8>) {
        linesAppended &+= 1
        if isClosed { droppedOnLoop &+= 1; return }
        let need = bytes.count + 1
        if active.count + need > bufferSize {
            handOff()
            if active.count + need > max(bufferSize, LogFile.burstLimit) && !active.isEmpty {
                droppedOnLoop &+= 1
                return
            }
        }
        let wasEmpty = active.isEmpty
        active.append(contentsOf: bytes)
        active.append(UInt8(ascii: "\n"))
        activeLines += 1
        if active.count * 2 >= bufferSize {
            handOff()
        } else if wasEmpty, let interval = flushInterval, let loop, !timer.isScheduled {
            loop.timers.schedule(self, at: loop.now &+ interval)
        }
    }

    public func timerFired(now: UInt64) {
        handOff()
        // The writer was busy: try again a little later rather than sitting on the lines.
        if !active.isEmpty, let interval = flushInterval, let loop {
            loop.timers.schedule(self, at: now &+ min(interval, 50_000_000))
        }
    }

    /// Gives the filled buffer to the writer if it is idle; otherwise keeps filling.
    @discardableResult
    public func handOff() -> Bool {
        guard !active.isEmpty else { return true }
        mutex.lock()
        defer { mutex.unlock() }
        guard !writerBusy else { return false }
        swap(&active, &handed)
        handedLines = activeLines
        activeLines = 0
        writerBusy = true
        mutex.broadcast()
        if let loop, timer.isScheduled { loop.timers.cancel(self) }
        return true
    }

    /// logrotate moved the file away: the writer opens `path` afresh before its next write.
    public func reopen() {
        handOff()
        mutex.withLock {
            reopenRequested = true
            mutex.broadcast()
        }
    }

    /// Stops taking lines and leaves what is buffered to the writer, which writes it and exits
    /// on its own time: a reload retiring a file whose writer is stuck (a FIFO nobody reads, a
    /// hung NFS mount) must not hold the relay while it waits, nor lose the lines it has.
    /// Idempotent. `reap()` tells when the writer is done.
    public func retire() {
        if isClosed { return }
        isClosed = true
        if let loop, timer.isScheduled { loop.timers.cancel(self) }
        mutex.withLock {
            if !active.isEmpty {
                if !handed.isEmpty {
                    // Handed over but not yet taken: the writer takes these lines with it.
                    handed.append(contentsOf: active)
                    handedLines += activeLines
                } else {
                    // Idle writer, or one busy with a batch it has taken (`handed` is then its
                    // empty spare buffer): these lines are the next batch.
                    swap(&active, &handed)
                    handedLines = activeLines
                    if writerBusy { handedWaiting = true } else { writerBusy = true }
                }
            }
            stopRequested = true
            mutex.broadcast()
        }
        active = []
        activeLines = 0
    }

    /// After `retire()`: true once the writer has written everything and exited.
    public func reap() -> Bool {
        guard thread != nil else { return true }
        guard mutex.withLock({ writerExited }) else { return false }
        thread?.join()
        thread = nil
        return true
    }

    /// Writes what is buffered (waiting at most `timeout` ns) and stops the writer.
    public func close(timeout: UInt64 = 2_000_000_000) {
        close(deadline: MonotonicClock.now() &+ timeout)
    }

    /// `close` with a deadline on the monotonic clock, so several files can share one wait.
    public func close(deadline: UInt64) {
        retire()
        // A writer blocked in write(2) on a FIFO or pipe nobody reads would never return, and
        // joining it would keep ferry from exiting (SIGTERM, `ferry -s quit`) until SIGKILL.
        // Give it until `deadline` to finish; then leave it, and count what it still holds as dropped.
        while !reap() && MonotonicClock.now() < deadline { usleep(1000) }
        if thread != nil {
            thread?.detach()
            thread = nil
            let settled = droppedOnLoop &+ mutex.withLock { droppedOnWrite &+ linesWritten }
            droppedOnLoop &+= linesAppended &- settled
        }
    }

    // MARK: writer thread

    /// Blocks the calling (writer) thread until this file's writer has exited.
    private func waitForWriterExit() {
        mutex.lock()
        while !writerExited { mutex.wait() }
        mutex.unlock()
    }

    private func writerMain() {
        var batch: [UInt8] = []
        batch.reserveCapacity(bufferSize)
        predecessor?.waitForWriterExit()
        predecessor = nil
        mutex.lock()
        while true {
            while !writerBusy && !reopenRequested && !stopRequested { mutex.wait() }
            let reopening = reopenRequested
            reopenRequested = false
            var lines = 0
            if writerBusy {
                swap(&batch, &handed)
                lines = handedLines
            }
            let stopping = stopRequested && !writerBusy
            let hadBatch = writerBusy
            mutex.unlock()

            var error: Errno? = nil
            if reopening {
                do {
                    let new = try FileDescriptor.openForAppend(path)
                    fd.close()
                    fd = new
                } catch let e {
                    error = e   // keep writing to the old descriptor
                }
            }
            var unwritten = 0
            if hadBatch {
                let (droppedLines, writeError) = writeAll(batch)
                unwritten = droppedLines
                if writeError != nil { error = writeError }
                // A burst grew this buffer; do not keep megabytes for the quiet that follows.
                if batch.capacity > 2 * bufferSize {
                    batch = []
                    batch.reserveCapacity(bufferSize)
                } else {
                    batch.removeAll(keepingCapacity: true)
                }
            }

            mutex.lock()
            if hadBatch {
                droppedOnWrite &+= UInt64(unwritten)
                linesWritten &+= UInt64(lines - unwritten)
                writerBusy = handedWaiting
                handedWaiting = false
            }
            if let error { lastError = error }
            if stopping { break }
        }
        writerExited = true
        mutex.broadcast()   // a successor of the same path may be waiting (waitForWriterExit)
        mutex.unlock()
        fd.close()
    }

    /// Writes `data`; on failure returns how many lines (newlines) were not fully written.
    private func writeAll(_ data: [UInt8]) -> (Int, Errno?) {
        data.withUnsafeBytes { raw -> (Int, Errno?) in
            var offset = 0
            while offset < raw.count {
                switch fd.writeSome(raw.baseAddress! + offset, count: raw.count - offset) {
                case .success(let n) where n > 0:
                    offset += n
                case .success:
                    return (LogFile.lines(in: raw, from: offset), Errno(EIO))
                case .failure(let e):
                    return (LogFile.lines(in: raw, from: offset), e)
                }
            }
            return (0, nil)
        }
    }

    /// Lines that end at or after `offset`: a line cut by a failed write counts as lost.
    static func lines(in raw: UnsafeRawBufferPointer, from offset: Int) -> Int {
        var n = 0
        for i in offset..<raw.count where raw[i] == UInt8(ascii: "\n") { n += 1 }
        return n
    }
}
