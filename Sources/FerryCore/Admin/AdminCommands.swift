import Glibc

/// What one admin command answers. HAProxy prints data as is and messages (errors, notices)
/// as one line; with `set severity-output`, messages carry a `[level]: ` prefix, which is how
/// `ferry ctl` tells an error answer from a good one.
public struct AdminAnswer: Equatable, Error {
    public enum Kind: Equatable { case data, info, notice, error }
    public var kind: Kind
    public var text: String
    static func data(_ t: String) -> AdminAnswer { AdminAnswer(kind: .data, text: t) }
    static func info(_ t: String) -> AdminAnswer { AdminAnswer(kind: .info, text: t) }
    /// HAProxy's notice level (5): a request that changed nothing, as "already disabled".
    static func notice(_ t: String) -> AdminAnswer { AdminAnswer(kind: .notice, text: t) }
    static func error(_ t: String) -> AdminAnswer { AdminAnswer(kind: .error, text: t) }
    static let empty = AdminAnswer(kind: .data, text: "")
}

/// HAProxy's runtime API, the part that makes sense for a TCP balancer, with its syntax, output
/// formats and error texts; an upstream is a "backend", a listen socket a "frontend". Commands run
/// on the event loop and touch only the scheduler's state (never a socket of a session, except
/// `shutdown sessions`), so a slow or hostile admin client cannot stall the relay.
enum AdminCommands {
    static let help: [(String, String)] = [
        ("add server <bk>/<srv> <addr> [params]", "create a new server (in maintenance; nginx or HAProxy parameters)"),
        ("clear counters [all]", "clear max statistics counters (or all counters)"),
        ("del server <bk>/<srv>", "remove a server in maintenance with no sessions"),
        ("disable agent <bk>/<srv>", "stop asking a server's agent (its down no longer holds the server down)"),
        ("disable frontend <frontend>", "stop listening: new clients are refused, sessions go on"),
        ("disable health <bk>/<srv>", "stop a server's TCP probe (the verdict stays as it is)"),
        ("disable server <bk>/<srv>", "put a server in maintenance (same as 'set server ... state maint')"),
        ("enable agent <bk>/<srv>", "ask a server's agent again"),
        ("enable frontend <frontend>", "listen again on a disabled frontend"),
        ("enable health <bk>/<srv>", "resume a server's TCP probe"),
        ("enable server <bk>/<srv>", "take a server out of maintenance (same as 'set server ... state ready')"),
        ("get weight <bk>/<srv>", "report a server's current and initial weight"),
        ("help", "list all commands"),
        ("prompt", "toggle interactive mode with prompt"),
        ("quit", "disconnect"),
        ("reload", "re-read the configuration file (like SIGHUP)"),
        ("set maxconn frontend <frontend> <n>", "change a listen socket's session limit (0 = none of its own)"),
        ("set maxconn global <n>", "change the session limit, up to Hard_maxconn (0 = back to it)"),
        ("set maxconn server <bk>/<srv> <n>", "change a server's max_conns (0 = unlimited)"),
        ("set server <bk>/<srv> addr <ip> [port <p>]", "move a server to another address (new sessions)"),
        ("set server <bk>/<srv> agent up|down", "force the agent's health verdict"),
        ("set server <bk>/<srv> health up|stopping|down", "force the TCP probe's verdict"),
        ("set server <bk>/<srv> state ready|drain|maint", "change a server's admin state"),
        ("set server <bk>/<srv> weight <w>[%]", "change a server's weight (0-256, or % of the initial weight)"),
        ("set severity-output none|number|string", "prefix messages with their severity"),
        ("set weight <bk>/<srv> <w>[%]", "same as 'set server <bk>/<srv> weight'"),
        ("show backend", "list backends (upstreams)"),
        ("show info", "report information about the running process"),
        ("show servers state [<bk>]", "dump the servers' state (HAProxy's server-state format)"),
        ("show sessions [<bk>/<srv>]", "list sessions: id, client, server, age, bytes (ferry's own)"),
        ("show stat [<px> <type> <sid>] [up|no-maint]", "report counters in HAProxy's CSV format"),
        ("shutdown session <id>", "close one session (its id from 'show sessions')"),
        ("shutdown sessions server <bk>/<srv> [rate <n>/s]", "close a server's sessions, all at once or paced"),
    ]

    static var helpText: String { helpText(matching: []) }

    /// `help <words>` as HAProxy's: the commands whose words start with the ones given, and
    /// the connection's own (help, prompt, quit); every command when none matches.
    static func helpText(matching words: [String]) -> String {
        let always: Set<String> = ["help", "prompt", "quit"]
        let matching = help.filter { cmd, _ in
            let parts = cmd.split(separator: " ")
            return !words.isEmpty && words.count <= parts.count && zip(words, parts).allSatisfy { $1.hasPrefix($0) }
        }
        let shown = matching.contains { !always.contains($0.0) }
            ? help.filter { cmd, _ in always.contains(cmd) || matching.contains { $0.0 == cmd } }
            : help
        return shown.map { cmd, what in
            let padded = cmd.count < 46 ? cmd + String(repeating: " ", count: 46 - cmd.count) : cmd + " "
            return "  \(padded): \(what)\n"
        }.joined()
    }

    static func run(_ command: AdminCommandLine, runtime: Runtime) -> AdminAnswer {
        let w = command.words
        func at(_ i: Int) -> String? { i < w.count ? w[i] : nil }
        switch (at(0), at(1)) {
        case (nil, _):
            // HAProxy's answer to an empty command, word for word, then ferry's own command list.
            return .error("Unknown command. Please enter one of the following commands only:\n" + helpText)
        case ("help", _):
            return .data("The following commands are valid at this level:\n" + helpText(matching: Array(w.dropFirst())))
        case ("show", "info"): return .data(AdminReports.info(runtime))
        case ("show", "stat"):
            let names = { (name: String) -> Int? in
                // `#ID` as in <bk>/<srv> names and HAProxy's proxy_find_by_name.
                if name.hasPrefix("#"), let id = Int(name.dropFirst()), id > 0 { return id }
                return runtime.upstreams[name]?.id ?? frontend(name, runtime)?.id
            }
            switch StatFilter.parse(w[2...], proxyID: names) {
            case .failure(let e): return e
            case .success(let filter): return .data(AdminReports.stat(runtime, filter))
            }
        case ("show", "servers"):
            guard at(2) == "state" else { return .error("Expects 'state'.") }
            if let name = at(3) {
                guard let u = backend(name, runtime) else { return .error("Can't find backend.") }
                return .data(AdminReports.serversState(runtime, only: u))
            }
            return .data(AdminReports.serversState(runtime, only: nil))
        case ("show", "backend"):
            return .data("# name\n" + runtime.upstreamList.map { $0.name + "\n" }.joined())
        case ("show", "sessions"), ("show", "sess"):
            if let target = at(2) {
                switch server(target, runtime) {
                case .failure(let e): return e
                case .success(let (u, i)): return .data(AdminReports.sessions(runtime, upstream: u, peer: i))
                }
            }
            return .data(AdminReports.sessions(runtime, upstream: nil, peer: nil))
        case ("get", "weight"):
            return withServer(at(2), runtime) { u, i in
                let p = u.scheduler.peers[i]
                return .data("\(p.weight) (initial \(p.configWeight))\n")
            }
        case ("set", "weight"):
            return withServer(at(2), runtime) { u, i in setWeight(at(3), u, i, runtime) }
        case ("set", "server"):
            return withServer(at(2), runtime) { u, i in setServer(Array(w.dropFirst(3)), u, i, runtime) }
        case ("set", "maxconn") where at(2) == "global":
            return setGlobalMaxconn(Array(w.dropFirst(3)), runtime)
        case ("set", "maxconn") where at(2) == "frontend":
            return setFrontendMaxconn(Array(w.dropFirst(3)), runtime)
        case ("set", "maxconn"):
            guard at(2) == "server" else { return .error("'set maxconn' only supports 'frontend', 'global' and 'server'.") }
            return withServer(at(3), runtime) { u, i in
                guard let text = at(4) else { return .error("Require <maxconn>.") }
                let n: Int
                switch parseMaxConn(text) {
                case .failure(let e): return e
                case .success(let v): n = v
                }
                change(u, i, runtime, "maxconn", "\(n)") { $0.maxConns = n }
                return .empty
            }
        case ("enable", "server"):
            return withServer(at(2), runtime) { u, i in
                change(u, i, runtime, "state", "ready") { $0.admin = .ready }
                return .empty
            }
        case ("disable", "server"):
            return withServer(at(2), runtime) { u, i in
                change(u, i, runtime, "state", "maint") { $0.admin = .maint }
                return .empty
            }
        case ("enable", "frontend"), ("disable", "frontend"):
            return frontendState(w, on: at(0) == "enable", runtime)
        case ("enable", "health"), ("disable", "health"):
            let on = at(0) == "enable"
            return withServer(at(2), runtime) { u, i in
                guard runtime.health?.setProbeEnabled(u, index: i, on) == true else {
                    return .error("health checks are not enabled on this server.")
                }
                change(u, i, runtime, "health_check", on ? "enabled" : "disabled") { _ in }
                return .empty
            }
        case ("enable", "agent"), ("disable", "agent"):
            let on = at(0) == "enable"
            return withServer(at(2), runtime) { u, i in
                guard runtime.health?.setAgentEnabled(u, index: i, on) == true else {
                    return .error("agent checks are not enabled on this server.")
                }
                // As in HAProxy, a disabled agent's down no longer holds the server down; its
                // weight and drain stay until the operator or the agent, once enabled, changes them.
                change(u, i, runtime, "agent_check", on ? "enabled" : "disabled") { if !on { $0.agentUp = true } }
                return .empty
            }
        case ("shutdown", "session"):
            // HAProxy's id is a pointer from `show sess`; ferry's is the connection serial that
            // `show sessions` and the connection log give.
            guard let text = at(2), let id = UInt64(text), w.count == 3 else { return .error("Session id expected (use 'show sessions').") }
            var s = runtime.sessions
            while let current = s, current.connection != id { s = current.next }
            guard let victim = s else { return .error("No such session (use 'show sessions').") }
            runtime.log.log(.notice, "admin_shutdown_session") {
                $0.add("connection", id); $0.add("upstream", victim.upstream.name)
                $0.add("server", victim.peer >= 0 ? victim.upstream.serverNames[victim.peer] : "-")
            }
            victim.end(.adminShutdown)
            return .empty
        case ("shutdown", "sessions"):
            guard at(2) == "server" else { return .error("'shutdown sessions' only supports 'server'.") }
            return withServer(at(3), runtime) { u, i in
                var rate = 0
                if let word = at(4) {
                    guard word == "rate", let r = at(5), let n = AdminCommands.rate(r) else {
                        return .error("Usage: shutdown sessions server <bk>/<srv> [rate <n>/s] (n from 1 to 100000).")
                    }
                    rate = n
                }
                let count = runtime.shutdownSessions(upstream: u, peer: i, perSecond: rate)
                runtime.log.log(.notice, "admin_shutdown_sessions") {
                    $0.add("upstream", u.name); $0.add("server", u.serverNames[i]); $0.add("sessions", count); $0.add("per_second", rate)
                }
                return .empty
            }
        case ("add", "server"):
            return AdminServerChanges.add(Array(w.dropFirst(2)), runtime)
        case ("del", "server"):
            return AdminServerChanges.delete(at(2), runtime)
        case ("clear", "counters"):
            // HAProxy reads any third word but `all` as "maxima only"; a typo of `all` must not
            // quietly clear less than asked, so anything else is refused.
            guard w.count == 2 || (w.count == 3 && w[2] == "all") else { return .error("Usage: clear counters [all]") }
            let all = w.count == 3
            CounterReset.clear(runtime, all: all)
            runtime.log.log(.notice, "admin_clear_counters") { $0.add("all", all) }
            return .empty
        case ("reload", nil):
            switch runtime.reload() {
            case .reloaded(let opened, let closed, let moved):
                return .info("Configuration reloaded: \(opened) listen socket(s) opened, \(closed) closed, \(moved) session(s) kept on their servers.")
            case .failed(let why):
                return .error("Reload failed, the previous configuration keeps running: \(why)")
            }
        default:
            return .error("Unknown command: '\(w.joined(separator: " "))'. The following commands are valid at this level:\n" + helpText)
        }
    }

    /// `disable frontend` / `enable frontend` with HAProxy's answers; a frontend is named by
    /// its listen address as written, or `#iid`.
    static func frontendState(_ w: [String], on: Bool, _ runtime: Runtime) -> AdminAnswer {
        guard w.count >= 3 else { return .error("A frontend name is expected.") }
        guard w.count == 3 else { return .error("Usage: \(w[0]) frontend <frontend>") }
        let name = w[2]
        guard let l = frontend(name, runtime) else { return .error("No such frontend.") }
        if l.paused != on { return .notice(on ? "All sockets are already enabled." : "All sockets are already disabled.") }
        if on {
            do { try l.resume() } catch {
                runtime.log.log(.error, "frontend_resume_failed") { $0.add("listen", name); $0.add("error", "\(error.rawValue): \(error)") }
                return .error("Failed to resume frontend, check logs for precise cause (port conflict?).")
            }
        } else {
            do { try l.pause() } catch {
                return .error("Frontend \(name) is a unix socket, which cannot listen again once paused; remove its listen line and reload instead.")
            }
        }
        runtime.log.log(.notice, on ? "admin_enable_frontend" : "admin_disable_frontend") { $0.add("listen", AdminReports.frontendName(l)) }
        return .empty
    }

    /// A listen socket by the address its `listen` wrote, or by `#iid`.
    static func frontend(_ name: String, _ runtime: Runtime) -> Listener? {
        let id = name.hasPrefix("#") ? Int(name.dropFirst()) : nil
        return runtime.listeners.first { AdminReports.frontendName($0) == name || $0.id == id }
    }

    /// `N/s` (or plain `N`), 1 to 100000 sessions per second.
    static func rate(_ text: String) -> Int? {
        let digits = text.hasSuffix("/s") ? String(text.dropLast(2)) : text
        guard let n = Int(digits), n >= 1, n <= 100_000 else { return nil }
        return n
    }

    static func backend(_ name: String, _ runtime: Runtime) -> Upstream? {
        if name.hasPrefix("#"), let id = Int(name.dropFirst()) {
            return runtime.upstreamList.first { $0.id == id }
        }
        return runtime.upstreams[name]
    }

    /// Resolves `backend/server` as HAProxy does: `#ID` or name for both parts; ferry also
    /// accepts the server's address as written in the configuration.
    static func server(_ text: String?, _ runtime: Runtime) -> Result<(Upstream, Int), AdminAnswer> {
        // HAProxy's test: something after the first '/' (an empty backend name is just unknown).
        guard let text, let slash = text.firstIndex(of: "/"), text.index(after: slash) != text.endIndex else {
            return .failure(.error("Require 'backend/server'."))
        }
        guard let (u, server) = splitBackend(text, runtime) else { return .failure(.error("No such backend.")) }
        guard let i = u.server(named: server) else { return .failure(.error("No such server.")) }
        return .success((u, i))
    }

    /// Splits `backend/server` at the first `/` that ends a backend's name (HAProxy splits at
    /// the first): a server named by its address may hold slashes itself (`u/unix:/run/b.sock`).
    static func splitBackend(_ text: String, _ runtime: Runtime) -> (Upstream, String)? {
        for slash in text.indices where text[slash] == "/" {
            if let u = backend(String(text[..<slash]), runtime) { return (u, String(text[text.index(after: slash)...])) }
        }
        return nil
    }

    static func withServer(_ text: String?, _ runtime: Runtime, _ body: (Upstream, Int) -> AdminAnswer) -> AdminAnswer {
        switch server(text, runtime) {
        case .failure(let answer): return answer
        case .success(let (u, i)): return body(u, i)
        }
    }

    /// Applies one change to one server, stamps its last-change time and logs it.
    static func change(_ u: Upstream, _ i: Int, _ runtime: Runtime, _ what: String, _ value: String,
                       _ body: (inout PeerState) -> Void) {
        let before = u.scheduler.peers[i]
        u.scheduler.update(i, body)
        if u.scheduler.peers[i] != before { u.lastChange[i] = runtime.loop.now }
        runtime.log.log(.notice, "admin_change") {
            $0.add("upstream", u.name); $0.add("server", u.serverNames[i]); $0.add("set", what); $0.add("value", value)
        }
        if before.healthy && !u.scheduler.peers[i].healthy { runtime.markedDown(u, peer: i) }
    }

    /// HAProxy's weight syntax and errors (server_parse_weight_change_request): `N` absolute
    /// (0-256) or `N%` of the initial weight, read like strtol (optional sign, then digits) and
    /// checked in HAProxy's order. A relative weight is capped, not refused, as in HAProxy: at
    /// 256, or at the initial weight where the configuration set more, so `100%` always
    /// restores a server (AgentReply.resolve caps the same way).
    static func parseWeight(_ text: String?, initial: Int) -> Result<Int, AdminAnswer> {
        guard let text, !text.isEmpty else { return .failure(.error("Require <weight> or <weight%>.")) }
        guard let (n, after) = leadingInteger(text) else { return .failure(.error("Empty weight string empty or preceded by garbage")) }
        if after == "%" {
            guard n >= 0 else { return .failure(.error("Relative weight must be positive.")) }
            return .success(min(initial * min(n, 25_600) / 100, max(256, initial)))
        }
        guard n >= 0 && n <= 256 else { return .failure(.error("Absolute weight can only be between 0 and 256 inclusive.")) }
        guard after.isEmpty else { return .failure(.error("Trailing garbage in weight string")) }
        return .success(n)
    }

    /// HAProxy's maxconn syntax and errors (server_parse_maxconn_change_request), except that
    /// a negative value is refused (HAProxy stores it); past Int.max the value saturates.
    static func parseMaxConn(_ text: String) -> Result<Int, AdminAnswer> {
        guard let (n, after) = leadingInteger(text) else { return .failure(.error("maxconn string empty or preceded by garbage")) }
        guard after.isEmpty else { return .failure(.error("Trailing garbage in maxconn string")) }
        if n < 0 { return .failure(.error("maxconn must not be negative; 0 means unlimited.")) }
        return .success(n)
    }

    /// `set maxconn global <n>`: HAProxy's, within the configured limit (Hard_maxconn), 0
    /// restoring it. HAProxy reads the value with atoi, so a typo or a negative number restores
    /// the limit too; ferry refuses them, as it refuses extra words.
    static func setGlobalMaxconn(_ args: [String], _ runtime: Runtime) -> AdminAnswer {
        guard let text = args.first else { return .error("Expects an integer value.") }
        guard args.count == 1 else { return .error("Usage: set maxconn global <n>") }
        guard let (n, after) = leadingInteger(text), after.isEmpty else {
            return .error("Expects an integer value (0 restores Hard_maxconn, \(runtime.configuredMaxconn)).")
        }
        guard n >= 0, n <= runtime.configuredMaxconn else {
            return .error("Value out of range: from 1 to Hard_maxconn (\(runtime.configuredMaxconn)), or 0 to restore it.")
        }
        runtime.adminMaxconn = n == 0 ? nil : n
        runtime.log.log(.notice, "admin_set_maxconn") {
            $0.add("maxconn", runtime.maxconn); $0.add("hard_maxconn", runtime.configuredMaxconn); $0.add("sessions", runtime.sessionCount)
        }
        runtime.limitChanged()
        return .empty
    }

    /// `set maxconn frontend <frontend> <n>`: HAProxy's words for a missing or unknown name
    /// and a negative value. 0 is "no limit of its own", as for a server (HAProxy stores 0,
    /// and its 2.6 stopped serving that frontend: no operator means that). A value HAProxy's
    /// atoi would read as 0 is refused, and so are extra words.
    static func setFrontendMaxconn(_ args: [String], _ runtime: Runtime) -> AdminAnswer {
        guard let name = args.first else { return .error("A frontend name is expected.") }
        guard let l = frontend(name, runtime) else { return .error("No such frontend.") }
        guard args.count >= 2 else { return .error("Integer value expected.") }
        guard args.count == 2 else { return .error("Usage: set maxconn frontend <frontend> <n>") }
        guard let (n, after) = leadingInteger(args[1]), after.isEmpty else {
            return .error("Integer value expected (0 = no limit of the frontend's own).")
        }
        guard n >= 0 else { return .error("Value out of range.") }
        l.maxconn = n
        runtime.log.log(.notice, "admin_set_maxconn") {
            $0.add("listen", AdminReports.frontendName(l)); $0.add("maxconn", n); $0.add("sessions", l.inUse)
        }
        return .empty
    }

    /// The integer `text` starts with, read like strtol (an optional sign, then digits; the
    /// magnitude saturates), and what follows it; nil when no digit comes first.
    static func leadingInteger(_ text: String) -> (value: Int, after: Substring)? {
        var rest = Substring(text)
        var negative = false
        if let c = rest.first, c == "+" || c == "-" { negative = c == "-"; rest = rest.dropFirst() }
        let digits = rest.prefix { $0.isASCII && $0.isNumber }
        guard !digits.isEmpty else { return nil }
        let magnitude = digits.utf8.reduce(0) { $0 > (Int.max - 9) / 10 ? Int.max : $0 * 10 + Int($1 - UInt8(ascii: "0")) }
        return (negative ? -magnitude : magnitude, rest.dropFirst(digits.count))
    }

    static func setWeight(_ text: String?, _ u: Upstream, _ i: Int, _ runtime: Runtime) -> AdminAnswer {
        switch parseWeight(text, initial: u.scheduler.peers[i].configWeight) {
        case .failure(let e): return e
        case .success(let w):
            change(u, i, runtime, "weight", "\(w)") { $0.weight = w }
            return .empty
        }
    }

    static func setServer(_ args: [String], _ u: Upstream, _ i: Int, _ runtime: Runtime) -> AdminAnswer {
        let usage = AdminAnswer.error("usage: set server <backend>/<server> addr | agent | health | state | weight")
        guard let what = args.first else { return usage }
        let value = args.count > 1 ? args[1] : nil
        switch what {
        case "weight":
            return setWeight(value, u, i, runtime)
        case "addr":
            return AdminServerChanges.setAddress(Array(args.dropFirst()), u, i, runtime)
        case "state":
            let state: PeerState.Admin
            switch value {
            case "ready": state = .ready
            case "drain": state = .drain
            case "maint": state = .maint
            default: return .error("'set server <srv> state' expects 'ready', 'drain' and 'maint'.")
            }
            change(u, i, runtime, "state", value!) { $0.admin = state }
            return .empty
        case "agent":
            guard u.config.agentCheck != nil || (i < u.config.servers.count && u.config.servers[i].agentPort != nil) else {
                return .error("agent checks are not enabled on this server.")
            }
            switch value {
            case "up": change(u, i, runtime, "agent", "up") { $0.agentUp = true }
            case "down": change(u, i, runtime, "agent", "down") { $0.agentUp = false }
            default: return .error("'set server <srv> agent' expects 'up' or 'down'.")
            }
            return .empty
        case "health":
            guard u.config.healthCheck != nil else { return .error("health checks are not enabled on this server.") }
            switch value {
            case "up", "down", "stopping":
                // `stopping` is HAProxy's NOLB: fully up as for `up`, but it takes no new
                // sessions and, not being down, never has its sessions shut down.
                let up = value != "down", stopping = value == "stopping"
                runtime.health?.forced(u, index: i, up: up)
                change(u, i, runtime, "health", value!) { $0.probeUp = up; $0.probeStopping = stopping }
            default: return .error("'set server <srv> health' expects 'up', 'stopping', or 'down'.")
            }
            return .empty
        default:
            return usage
        }
    }
}
