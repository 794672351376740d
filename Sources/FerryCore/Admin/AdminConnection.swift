import Glibc

/// One client of the admin socket, with HAProxy's conventions: one line of commands per
/// connection (several separated by `;`), each answer ending with an empty line; after
/// `prompt` the connection stays open and a `> ` prompt follows every answer until `quit`.
///
/// Bad input is bounded: a line longer than `maxLine` is answered once and the connection
/// closed; binary bytes are just unknown commands; a silent client is closed after the
/// server's idle timeout. Output waits in a per-connection buffer while the client is slow.
final class AdminConnection: EventHandler, TimerTarget {
    unowned(unsafe) let server: AdminServer
    let socket: Socket
    var timer = TimerSlot()
    private var input: [UInt8] = []
    private var output: [UInt8] = []
    private var sent = 0
    private var interactive = false
    private enum SeverityOutput { case none, number, string }
    private var severityOutput = SeverityOutput.none
    private var closing = false
    private var closed = false
    static let maxLine = 16 * 1024

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
        if events.contains(.writable) { flush() }
        guard !closed else { return }
        if !events.isDisjoint(with: [.readable, .readHangup, .hangup, .error]) { readInput(events) }
    }

    private func readInput(_ events: EpollEvents) {
        var chunk = [UInt8](repeating: 0, count: 4096)
        // Bounded: at most 16 reads per event, so one client cannot hold the loop.
        for _ in 0..<16 {
            let result = chunk.withUnsafeMutableBytes { b in Result { () throws(Errno) in try socket.receive(into: b.baseAddress!, count: b.count) } }
            switch result {
            case .failure:
                return close()
            case .success(.wouldBlock):
                return
            case .success(.done(0)):
                // The client finished sending: answer what is complete, then close.
                if !input.isEmpty && !closing { runLine(input); input.removeAll() }
                closing = true
                return flush()
            case .success(.done(let n)):
                input.append(contentsOf: chunk[0..<n])
                armTimer()
                processLines()
                if closed || closing { return }
            }
        }
    }

    private func processLines() {
        while !closing, let nl = input.firstIndex(of: UInt8(ascii: "\n")) {
            var line = Array(input[input.startIndex..<nl])
            input.removeSubrange(input.startIndex...nl)
            if line.last == UInt8(ascii: "\r") { line.removeLast() }
            runLine(line)
        }
        if !closing && input.count > AdminConnection.maxLine {
            input.removeAll()
            reply("Line too long (at most \(AdminConnection.maxLine) bytes).\n\n")
            closing = true
        }
        flush()
    }

    private func runLine(_ bytes: [UInt8]) {
        let line = String(decoding: bytes, as: UTF8.self)
        let wasInteractive = interactive
        for command in AdminCommandLine.split(line) {
            if command.words.first == "prompt" && command.words.count == 1 {
                interactive.toggle()
                if !interactive { closing = true }
                reply("\n")
                continue
            }
            if command.words.first == "quit" && command.words.count == 1 {
                closing = true
                break
            }
            if command.words.count == 3 && command.words[0] == "set" && command.words[1] == "severity-output" {
                switch command.words[2] {
                case "none": severityOutput = .none
                case "number": severityOutput = .number
                case "string": severityOutput = .string
                default: reply(prefix(.error) + "one of 'none', 'number', 'string' is required\n\n"); continue
                }
                reply("\n")
                continue
            }
            let answer = AdminCommands.run(command, runtime: server.runtime)
            if answer.kind != .data { reply(prefix(answer.kind)) }
            reply(answer.text.hasSuffix("\n") || answer.text.isEmpty ? answer.text : answer.text + "\n")
            reply("\n")
        }
        if interactive && !closing {
            reply("> ")
        } else if !wasInteractive && !interactive {
            closing = true
        }
    }

    /// HAProxy's severity prefix: syslog level 3 (err) for errors, 6 (info) for notices.
    private func prefix(_ kind: AdminAnswer.Kind) -> String {
        let error = kind == .error
        switch severityOutput {
        case .none: return ""
        case .number: return error ? "[3]: " : "[6]: "
        case .string: return error ? "[err]: " : "[info]: "
        }
    }

    private func reply(_ s: String) { output.append(contentsOf: Array(s.utf8)) }

    private func flush() {
        while sent < output.count {
            let result = output.withUnsafeBytes { b in
                Result { () throws(Errno) in try socket.send(from: b.baseAddress! + sent, count: b.count - sent) }
            }
            switch result {
            case .failure: return close()
            case .success(.wouldBlock):
                try? server.runtime.loop.modify(socket.fd, interest: [.readable, .readHangup, .writable])
                return
            case .success(.done(let n)): sent += n
            }
        }
        output.removeAll(keepingCapacity: true)
        sent = 0
        if closing { close() }
    }

    func timerFired(now: UInt64) { close() }

    func close() {
        guard !closed else { return }
        closed = true
        let loop = server.runtime.loop
        loop.timers.cancel(self)
        loop.deregister(socket.fd)
        socket.close()
        server.connectionClosed()
    }
}
