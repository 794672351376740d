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
                    zeroWeight = n == 0  // the last weight given is the one that counts
                    if zeroWeight { value = "1" }
                }
                params.append((word == "maxconn" ? "max_conns" : "weight") + "=" + value)
                k += 2
            case "disabled":
                k += 1
            default:
                if word.hasPrefix("weight=") { zeroWeight = false }
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

    /// `set server <bk>/<srv> addr <ip> [port <port>]`, HAProxy's answers on success. Unlike
    /// HAProxy, which applies the address and then reports a bad port (and takes 70000 as
    /// 4464), ferry checks every word first and changes nothing on a bad one. New sessions go
    /// to the new address, with the server's counters, weight and state; sessions already on
    /// it stay; its probe and agent follow. A reload goes back to the file's address.
    static func setAddress(_ args: [String], _ u: Upstream, _ i: Int, _ runtime: Runtime) -> AdminAnswer {
        let usage = AdminAnswer.error("set server <b>/<s> addr requires an address and optionally a port.")
        guard let text = args.first, args.count == 1 || args.count == 3 else { return usage }
        if args.count == 3 && args[1] != "port" { return usage }
        let old = u.addresses[i]
        guard !old.isUnix else { return .error("Server '\(u.serverNames[i])' is at a unix: path, which has no IP address to change.") }
        var port = old.port
        if args.count == 3 {
            guard let p = AddressSyntax.port(args[2]) else { return .error("Invalid port '\(args[2])': expected a number from 1 to 65535.") }
            port = p
        }
        let endpoint: ServerAddress.Endpoint
        if let v4 = IPText.parseIPv4(text) {
            endpoint = .ipv4(host: IPText.format(v4), port: port)
        } else if let v6 = IPText.parseIPv6(text.hasPrefix("[") && text.hasSuffix("]") ? String(text.dropFirst().dropLast()) : text) {
            endpoint = .ipv6(host: IPText.format(v6), port: port)
        } else {
            return .error("Invalid addr '\(text)': expected an IPv4 or IPv6 address (names are not resolved here).")
        }
        let new = SocketAddress(endpoint)
        var said: [String] = []
        said.append(new.host == old.host ? "no need to change the addr" : "IP changed from '\(old.host)' to '\(new.host)'")
        if new.port != old.port { said.append("port changed from '\(old.port)' to '\(new.port)'") }
        if new != old {
            u.setAddress(i, endpoint)
            u.lastChange[i] = runtime.loop.now
            runtime.health?.addressChanged(u, index: i, to: endpoint)
            runtime.log.log(.notice, "admin_change") {
                $0.add("upstream", u.name); $0.add("server", u.serverNames[i]); $0.add("set", "addr")
                $0.add("old", old.description); $0.add("value", new.description)
            }
        }
        return .info(said.joined(separator: ", ") + " by 'stats socket command'")
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
