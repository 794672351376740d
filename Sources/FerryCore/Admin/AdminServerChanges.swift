/// `add server` and `del server`, with HAProxy's rules: a new server starts in maintenance
/// (so it takes traffic only once the operator says `enable server` / `state ready`), and only
/// a server in maintenance with no sessions can be deleted.
enum AdminServerChanges {
    static func add(_ args: [String], _ runtime: Runtime) -> AdminAnswer {
        guard let target = args.first, let slash = target.lastIndex(of: "/") else { return .error("Require 'backend/server'.") }
        let backendName = String(target[..<slash])
        let name = String(target[target.index(after: slash)...])
        guard let u = AdminCommands.backend(backendName, runtime) else { return .error("No such backend.") }
        guard args.count >= 2, !name.isEmpty else { return .error("'server' expects <name> and <addr>[:<port>] as arguments.") }
        guard name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "._-:".contains($0)) }) else {
            return .error("Invalid server name '\(name)': use letters, digits, '.', '_', '-' and ':'.")
        }
        guard u.server(named: name) == nil else {
            return .error("Already exists a server with the same name in backend.")
        }
        // The address goes into a configuration text below: nothing that could end the
        // directive or start another one (`;`, braces, quotes, spaces, `#`, `$`, backslash).
        guard args[1].allSatisfy({ $0.isASCII && !$0.isWhitespace && !"{};\"'#$\\".contains($0) }) else {
            return .error("Invalid address '\(args[1])'.")
        }
        // Parameters: nginx's (`weight=3 max_conns=30 backup`) or HAProxy's (`weight 3 maxconn 30 backup`).
        var params: [String] = []
        var zeroWeight = false
        var k = 2
        while k < args.count {
            let word = args[k]
            switch word {
            case "weight", "maxconn":
                guard k + 1 < args.count, !args[k + 1].isEmpty, args[k + 1].allSatisfy({ $0.isASCII && $0.isNumber }) else {
                    return .error("'\(word)' expects an integer argument.")
                }
                var value = args[k + 1]
                // HAProxy's `weight N` is 0-256 (0: takes no new sessions), nginx's `weight=N`
                // 1-1000000: each form keeps its own range, so a HAProxy line means what it
                // means there. Weight 0 is the runtime weight of a server configured with 1,
                // as `set server ... weight 0` leaves it.
                if word == "weight" {
                    guard let n = Int(value), n <= 256 else {
                        return .error("'weight' expects an integer between 0 and 256 (HAProxy's range; nginx's weight=N takes up to 1000000).")
                    }
                    if n == 0 { zeroWeight = true; value = "1" }
                }
                params.append((word == "maxconn" ? "max_conns" : "weight") + "=" + value)
                k += 2
            case "disabled":
                k += 1
            default:
                guard word.allSatisfy({ $0.isASCII && !$0.isWhitespace && !"{};\"'#$\\".contains($0) }) else { return .error("unknown keyword '\(word)'.") }
                // The name comes from <bk>/<srv>: a name= would silently register the server
                // under another name (even one already taken). Agents are started with the
                // configuration, so an added server's agent_port= would never be asked.
                if word.hasPrefix("name=") {
                    return .error("'name=' is not allowed here: the server's name is the <srv> of <bk>/<srv>.")
                }
                if word.hasPrefix("agent_port=") {
                    return .error("'agent_port=' is not supported by add server: agents start with the configuration; add the server to the file and reload.")
                }
                params.append(word)
                k += 1
            }
        }
        // The server line goes through the configuration parser, so it accepts exactly what a
        // `server` line in the file accepts and fails with the same messages.
        let text = "upstream u { server \(args[1]) name=\(name) \(params.joined(separator: " ")); }"
        let parsed: UpstreamServerConfig
        do {
            let loaded = try ConfigLoader.load(text: text, file: "add server")
            guard let s = loaded.config.upstreams.first?.servers.first else { return .error("Invalid server definition.") }
            parsed = s
        } catch let e as ConfigError {
            let text = e.message + (e.diagnostic.hint.map { "; \($0)" } ?? "")
            return .error(text.hasSuffix("?") || text.hasSuffix(".") ? text : text + ".")
        } catch {
            return .error("\(error).")
        }
        var state = Upstream.peer(parsed)
        state.admin = .maint
        if zeroWeight { state.weight = 0 }
        let i = u.addServer(parsed, state: state, now: runtime.loop.now)
        runtime.health?.serverAdded(u, index: i, server: parsed)
        // Sessions that stayed on this server when a reload dropped it count here again.
        runtime.rejoinReturningServers(only: u.name)
        runtime.log.log(.notice, "admin_add_server") { $0.add("upstream", u.name); $0.add("server", name); $0.add("address", parsed.address.written); $0.add("id", i + 1) }
        return .info("New server registered.")
    }

    static func delete(_ target: String?, _ runtime: Runtime) -> AdminAnswer {
        switch AdminCommands.server(target, runtime) {
        case .failure(let e): return e
        case .success(let (u, i)):
            let p = u.scheduler.peers[i]
            guard p.admin == .maint else { return .error("Only servers in maintenance mode can be deleted.") }
            // `active` alone is not enough: a server that reset gives its slot back while its
            // client is still taking the bytes before the reset (Session.abort). Such a session
            // still shows in `show sessions` and reports its bytes to this server at its end.
            guard p.active == 0, runtime.sessions(on: u, peer: i).isEmpty else {
                return .error("Server still has connections attached to it, cannot remove it.")
            }
            u.removeServer(i)
            runtime.health?.serverRemoved(u, index: i)
            runtime.log.log(.notice, "admin_del_server") { $0.add("upstream", u.name); $0.add("server", u.serverNames[i]) }
            return .info("Server deleted.")
        }
    }
}
