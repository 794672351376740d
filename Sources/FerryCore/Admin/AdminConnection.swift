import Glibc

/// One client of the admin socket, with HAProxy 2.6's conventions: a line holds commands
/// separated by `;`, and every command, an empty one included, gets an answer ending with an
/// empty line. Without `prompt`, every complete line received by the time the earlier ones are
/// answered is run, then the connection closes (HAProxy's pipelining: a script may send several
/// lines in one write); after `prompt` the connection stays open and a `> ` prompt follows every
/// answer until `quit`. Only complete lines run: a line cut off by EOF is dropped, so a script
/// killed mid-write cannot half-apply a command (`set weight u/b 1` of an intended `100`).
///
/// Bad input is bounded so it costs the loop nothing: a line longer than `maxLine` is answered
/// once and the connection closed; at most `maxCommands` commands per line; while more than
/// `maxPendingOutput` bytes wait for a slow reader no further line is run and nothing more is
/// read; once the connection is closing (answered, EOF, error) it is no longer read at all; the
/// idle timeout is re-armed only when the client makes progress (sends a complete line or takes
/// output), so a client dripping bytes without a newline cannot hold one of the 64 places.
final class AdminConnection: EventHandler, TimerTarget {
    /// Strong: the connection may outlive the server's socket by a few events (a reload that
    /// moves the admin socket closes the server, which closes its connections).
    let server: AdminServer
    let socket: Socket
    var timer = TimerSlot()
    private var input: [UInt8] = []
    private var output: [UInt8] = []
    private var sent = 0
    private var interactive = false
    /// A line has been run: from then on a non-interactive connection ends once it has no more input.
    private var answered = false
    private var closing = false
    private var closed = false
    private var reading = true
    private var wantsWrite = false
    private enum SeverityOutput { case none, number, string }
    private var severityOutput = SeverityOutput.none
    static let maxLine = 16 * 1024
    static let maxCommands = 100
    static let maxPendingOutput = 256 * 1024

    init(server: AdminServer, socket: Socket) {
        self.server = server
        self.socket = socket
    }

    func armTimer() {
        let loop = server.runtime.loop
        loop.timers.schedule(self, at: loop.now &+ AdminServer.idleTimeout)
    }

    func handleEvent(_ events: EpollEvents, side: UInt8) {
        guard !closed else { return }
        let wasBlocked = pendingOutput > 0
        if events.contains(.writable) { flush() }
        guard !closed else { return }
        // Once a backlog has drained, read even without a readable event: the socket may have
        // nothing more, and only a read that finds it empty may end a non-interactive connection.
        let drained = wasBlocked && pendingOutput == 0
        if mayRead && (drained || !events.isDisjoint(with: [.readable, .readHangup, .hangup, .error])) { readInput() }
        updateInterest()
    }

    private var pendingOutput: Int { output.count - sent }
    private var mayRead: Bool { !closing && !closed && pendingOutput <= AdminConnection.maxPendingOutput }

    private func readInput() {
        var chunk = [UInt8](repeating: 0, count: 4096)
        // Bounded: at most 16 reads per event, so one client cannot hold the loop.
        for _ in 0..<16 {
            guard mayRead else { return }
            let result = chunk.withUnsafeMutableBytes { b in Result { () throws(Errno) in try socket.receive(into: b.baseAddress!, count: b.count) } }
            switch result {
            case .failure:
                return close()
            case .success(.wouldBlock):
                // All the client has sent so far is read.
                if !interactive && answered && input.isEmpty && !closing {
                    closing = true
                    flush()
                }
                return
            case .success(.done(0)):
                // The client finished sending: answer the complete lines, then close. A rest
                // without its newline is dropped, not run: it may be a command cut short.
                processLines()
                input.removeAll()
                closing = true
                return flush()
            case .success(.done(let n)):
                // No timer re-arm here: bytes without a newline are not progress.
                input.append(contentsOf: chunk[0..<n])
                processLines()
            }
        }
    }

    private func processLines() {
        while !closing && pendingOutput <= AdminConnection.maxPendingOutput, let nl = input.firstIndex(of: UInt8(ascii: "\n")) {
            // Reads come in 4 KiB chunks, so a line can be complete before the check below sees
            // it pass the limit: check the line itself too.
            if nl - input.startIndex > AdminConnection.maxLine { refuseLongLine(); break }
            var line = Array(input[input.startIndex..<nl])
            input.removeSubrange(input.startIndex...nl)
            if line.last == UInt8(ascii: "\r") { line.removeLast() }
            armTimer()
            runLine(line)
        }
        if !closing && input.count > AdminConnection.maxLine && input.firstIndex(of: UInt8(ascii: "\n")) == nil {
            refuseLongLine()
        }
        if closing { input.removeAll() }
        if pendingOutput > 0 || closing { flush() }
    }

    private func refuseLongLine() {
        input.removeAll()
        reply("Line too long (at most \(AdminConnection.maxLine) bytes).\n\n")
        closing = true
    }

    private func runLine(_ bytes: [UInt8]) {
        answered = true
        // HAProxy reads the line as a C string and runs what comes before a NUL, ignoring the
        // rest unseen; ferry answers the line with an error, so no half of it runs.
        if bytes.contains(0) {
            reply(prefix(.error) + "A command line may not contain NUL bytes.\n\n")
            if interactive { reply("> ") }
            return
        }
        let line = String(decoding: bytes, as: UTF8.self)
        let commands = AdminCommandLine.split(line)
        if commands.count > AdminConnection.maxCommands {
            reply(prefix(.error) + "Too many commands on one line (at most \(AdminConnection.maxCommands)).\n\n")
            closing = true
            return
        }
        for command in commands {
            run(command)
            if closed || closing { return }
            // HAProxy prompts after each command, not after each line.
            if interactive { reply("> ") }
        }
    }

    /// Answers one command; the connection's own commands (`prompt`, `quit`, severity) are here.
    private func run(_ command: AdminCommandLine) {
        let words = command.words
        if words == ["prompt"] {
            // Toggling off does not close: the lines already received are still answered.
            interactive.toggle()
            return reply("\n")
        }
        if words == ["quit"] {
            closing = true
            return
        }
        // HAProxy ignores words after these; ferry says so instead of doing what was not asked.
        if words.count > 1 && (words[0] == "prompt" || words[0] == "quit") {
            return reply(prefix(.error) + "'\(words[0])' takes no argument.\n\n")
        }
        if words.count >= 2 && words[0] == "set" && words[1] == "severity-output" {
            guard words.count <= 3 else { return reply(prefix(.error) + "'set severity-output' takes one argument.\n\n") }
            switch words.count == 3 ? words[2] : "" {
            case "none": severityOutput = .none
            case "number": severityOutput = .number
            case "string": severityOutput = .string
            default: return reply(prefix(.error) + "one of 'none', 'number', 'string' is a required argument\n\n")
            }
            return reply("\n")
        }
        let answer = AdminCommands.run(command, runtime: server.runtime)
        // A reload run by this command may have closed the admin socket and its clients.
        if closed { return }
        if answer.kind != .data { reply(prefix(answer.kind)) }
        reply(answer.text.hasSuffix("\n") || answer.text.isEmpty ? answer.text : answer.text + "\n")
        reply("\n")
    }

    /// HAProxy's severity prefix: syslog level 3 (err) for errors, 5 (notice) for a request
    /// that changed nothing, 6 (info) for other messages.
    private func prefix(_ kind: AdminAnswer.Kind) -> String {
        let (number, name): (Int, String)
        switch kind {
        case .error: (number, name) = (3, "err")
        case .notice: (number, name) = (5, "notice")
        case .info, .data: (number, name) = (6, "info")
        }
        switch severityOutput {
        case .none: return ""
        case .number: return "[\(number)]: "
        case .string: return "[\(name)]: "
        }
    }

    private func reply(_ s: String) { output.append(contentsOf: Array(s.utf8)) }

    private func flush() {
        guard !closed else { return }
        var progressed = false
        while sent < output.count {
            let result = output.withUnsafeBytes { b in
                Result { () throws(Errno) in try socket.send(from: b.baseAddress! + sent, count: b.count - sent) }
            }
            switch result {
            case .failure: return close()
            case .success(.wouldBlock):
                if progressed { armTimer() }
                return updateInterest()
            case .success(.done(let n)):
                sent += n
                progressed = true
            }
        }
        output.removeAll(keepingCapacity: output.capacity <= 64 * 1024)
        sent = 0
        if closing { return close() }
        if progressed { armTimer() }
        // Lines held back while output was pending can run now.
        if input.contains(UInt8(ascii: "\n")) { processLines() }
        updateInterest()
    }

    /// Reads only while the connection may still take commands and its output is not backed
    /// up; asks for EPOLLOUT only while output waits. The listener is level-triggered, so an
    /// interest that is no longer wanted must be dropped or the loop would spin on it.
    private func updateInterest() {
        guard !closed else { return }
        let wantRead = !closing && pendingOutput <= AdminConnection.maxPendingOutput
        let wantWrite = pendingOutput > 0
        guard wantRead != reading || wantWrite != wantsWrite else { return }
        reading = wantRead
        wantsWrite = wantWrite
        var interest: EpollEvents = []
        if wantRead { interest.formUnion([.readable, .readHangup]) }
        if wantWrite { interest.insert(.writable) }
        try? server.runtime.loop.modify(socket.fd, interest: interest)
    }

    func timerFired(now: UInt64) { close() }

    func close() {
        guard !closed else { return }
        closed = true
        let loop = server.runtime.loop
        loop.timers.cancel(self)
        loop.deregister(socket.fd)
        socket.close()
        server.connectionClosed(self)
    }
}
