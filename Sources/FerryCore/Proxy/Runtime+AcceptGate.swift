/// The accept gate: who gets in while ferry is full.
///
/// At capacity (or when descriptors run out below it) every listener stops accepting and new
/// clients wait in the kernel's backlog; a session that ends lets the next one in. Established
/// sessions are never dropped to make room.
///
/// The log speaks of episodes, not of the gate's movements: under sustained overload the gate
/// opens for one waiting client each time a session ends and closes again at once, and one
/// line per movement would be one line per accept. So `capacity_reached` (or
/// `descriptors_exhausted`, `memory_exhausted`) starts an episode, each other cause within it
/// is named once, and `accepting_resumed` ends it once the gate has stayed open for
/// `settleNanoseconds`: the backlog has stopped refilling the room.
extension Runtime {
    /// Why the listeners are not accepting. Each cause is one kind of episode in the log.
    enum AcceptGate: Equatable {
        case open, atCapacity, outOfDescriptors, outOfMemory

        /// The event that starts an episode of this kind.
        var event: String {
            switch self {
            case .open: return "accepting"
            case .atCapacity: return "capacity_reached"
            case .outOfDescriptors: return "descriptors_exhausted"
            case .outOfMemory: return "memory_exhausted"
            }
        }
    }

    /// How long the gate must stay open before the overload counts as over.
    static let settleNanoseconds: UInt64 = 1_000_000_000
    /// How long accepting pauses when the kernel has no memory for another socket.
    static let memoryRetryNanoseconds: UInt64 = 100_000_000

    var hasRoom: Bool { gate == .open }

    /// The session limit `config` sets: `capacity`, or fewer with `worker_connections N`.
    /// nginx counts N per worker, and every connection a worker holds: the listen sockets
    /// (each worker has them all), then a client and a server connection per session. ferry's
    /// one loop takes what `worker_processes` workers would hold together (`auto`: one per
    /// online CPU, as nginx starts), so a file moved from nginx serves as many clients.
    static func configuredMaxconn(_ config: Config, capacity: Int) -> Int {
        guard let wanted = sessionsWanted(config) else { return capacity }
        return min(capacity, wanted)
    }

    /// What `worker_connections` asks for, in sessions; nil without it.
    static func sessionsWanted(_ config: Config) -> Int? {
        guard let n = config.workerConnections else { return nil }
        let workers: Int
        switch config.workerProcesses {
        case .auto: workers = ResourceLimits.onlineCPUs()
        case .count(let w): workers = w
        }
        // Both numbers come from the file: a product past Int.max is "as many as fit", not a trap.
        let (sessions, overflow) = workers.multipliedReportingOverflow(by: (n - config.listenSocketCount) / 2)
        return overflow ? Int.max : max(1, sessions)
    }

    /// The session limit in force (show info's Maxconn): the configured one, or less while
    /// `set maxconn global` holds it lower. As in HAProxy, the runtime value never exceeds the
    /// configured one, and a limit lowered below the open sessions drops none of them: new
    /// clients wait in the backlog until enough have ended.
    var maxconn: Int { min(adminMaxconn ?? configuredMaxconn, configuredMaxconn) }

    /// Sessions (and clients still sending a PROXY header) the gate lets in now.
    var sessionLimit: Int { min(maxconn, descriptorCeiling ?? capacity) }

    /// What the sessions open now (and clients still sending a PROXY header) fill: `.open`
    /// while there is room, else the limit they reached.
    private var load: AcceptGate {
        let n = sessionCount + readingHeaders
        return n >= maxconn ? .atCapacity : n >= sessionLimit ? .outOfDescriptors : .open
    }

    /// Closes the gate when the last admission filled the room.
    func closeGateIfFull() {
        let why = load
        if why != .open { closeGate(why) }
    }

    /// After the limit moved (`set maxconn global`, a reload): closes the gate at once when
    /// the open sessions fill the new limit, opens it when they fit again.
    func limitChanged() {
        closeGateIfFull()
        reopenGateIfRoom()
    }

    /// nginx warns when worker_connections asks for more than the open-file limit holds; so
    /// does ferry, saying what it runs with instead.
    func warnIfWorkerConnectionsCapped(_ config: Config) {
        guard let n = config.workerConnections, let wanted = Runtime.sessionsWanted(config), wanted > capacity else { return }
        log.log(.warn, "worker_connections_capped") {
            $0.add("worker_connections", n)
            $0.add("sessions_wanted", wanted)
            $0.add("capacity", capacity)
            $0.add("effect", "the open-file limit (\(descriptorLimit)) holds \(capacity) sessions; raise worker_rlimit_nofile or the hard limit (ulimit -Hn, LimitNOFILE=) for more")
        }
    }

    /// Opens the gate when a session ended or descriptors came free and there is room again.
    func reopenGateIfRoom() {
        if gate != .open && load == .open { openGate() }
    }

    func acceptFailed(_ error: Errno) {
        switch error {
        case .tooManyOpenFiles, .tooManyOpenFilesInSystem:
            descriptorCeiling = min(descriptorCeiling ?? capacity, sessionCount + readingHeaders)
            closeGate(.outOfDescriptors)
            // Descriptors may be held by something other than sessions: also retry on a timer.
            // A pending retry is not pushed back: failures every < 1 s would starve it.
            let t = retryTimer ?? OneShotTimer { [unowned self] _ in retryAfterExhaustion() }
            retryTimer = t
            if !t.timer.isScheduled { loop.timers.schedule(t, at: loop.now &+ 1_000_000_000) }
        case .noBufferSpace, .outOfMemory:
            // The client stays in the backlog and the listener stays readable: accepting again
            // at once would spin. Pause briefly and try again (HAProxy does the same).
            closeGate(.outOfMemory)
            let t = memoryRetryTimer ?? OneShotTimer { [unowned self] _ in
                guard gate == .outOfMemory else { return }
                // The limit may have been reached meanwhile (set maxconn global, PROXY headers
                // that completed): then the gate stays shut for that reason, and the next
                // session to end opens it.
                let why = load
                if why == .open { openGate() } else { gate = why }
            }
            memoryRetryTimer = t
            if !t.timer.isScheduled { loop.timers.schedule(t, at: loop.now &+ Runtime.memoryRetryNanoseconds) }
        default:
            // ECONNABORTED and friends concern one client that already left.
            log.log(.info, "accept_failed") { $0.add("error", error.description) }
        }
    }

    /// Raises the descriptor ceiling by the sessions that fit in the descriptors free now, and
    /// lifts it once `capacity` fits again. Nothing moves while not even a session's two
    /// descriptors can be had (the pipe tests that, for ENFILE too): reopening blindly would
    /// accept a waiting client every second only to drop it when its server socket fails.
    private func retryAfterExhaustion() {
        guard let ceiling = descriptorCeiling else { return }
        if let probe = try? Pipe.make() {
            probe.close()
            // The limit in force now, not the one read at start: it may have been lowered. When
            // the open count cannot be read, one more session at a time.
            let open = ResourceLimits.openDescriptorCount()
            let free = open < 0 ? 2 : (ResourceLimits.currentOpenFileLimit() ?? descriptorLimit) - open
            let fits = sessionCount + readingHeaders + max(1, free / 2)
            descriptorCeiling = fits >= capacity ? nil : max(ceiling, fits)
            reopenGateIfRoom()
        }
        if descriptorCeiling != nil, let t = retryTimer { loop.timers.schedule(t, at: loop.now &+ 1_000_000_000) }
    }

    private func closeGate(_ why: AcceptGate) {
        guard gate == .open else { return }
        gate = why
        for l in listeners { l.setAccepting(false) }
        // A line when an episode starts, and once for each other cause within it (capacity,
        // then descriptors). The gate closing again behind the next waiting client, or for a
        // cause already named (alternating ones too), is the same episode: no line.
        if var episode = saturation {
            guard !episode.named.contains(why) else { return }
            episode.named.append(why)
            saturation = episode
        } else {
            saturation = SaturationEpisode(cause: why, since: loop.now, named: [why])
        }
        log.log(.warn, why.event) {
            $0.add("sessions", sessionCount)
            $0.add("capacity", capacity)
            if maxconn < capacity { $0.add("maxconn", maxconn) }
            // The limit in force now: prlimit may have lowered it since start.
            $0.add("nofile", ResourceLimits.currentOpenFileLimit() ?? descriptorLimit)
        }
    }

    private func openGate() {
        guard !stopping else { return }
        gate = .open
        for l in listeners { l.setAccepting(true) }
        // Each reopening restarts the wait: the timer fires only after a quiet second.
        let t = settleTimer ?? OneShotTimer { [unowned self] now in settled(now) }
        settleTimer = t
        loop.timers.schedule(t, at: loop.now &+ Runtime.settleNanoseconds)
    }

    /// The gate has been open since its last reopening, `settleNanoseconds` ago, unless it
    /// closed again meanwhile (then the episode goes on and the next reopening re-arms this).
    private func settled(_ now: UInt64) {
        guard gate == .open, !stopping, let episode = saturation else { return }
        saturation = nil
        log.log(.notice, "accepting_resumed") {
            $0.add("after", episode.cause.event)
            $0.add("sessions", sessionCount)
            $0.add("saturated_ms", Int((now &- episode.since) / 1_000_000))
        }
    }
}

/// What closed the gate first and when, and which causes the log has named in this episode.
struct SaturationEpisode {
    let cause: Runtime.AcceptGate
    let since: UInt64
    var named: [Runtime.AcceptGate]
}
