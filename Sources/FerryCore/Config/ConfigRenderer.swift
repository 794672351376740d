// Config back to nginx-style text for `ferry -T`: every effective value spelled out, stream
// settings already merged into each server, so what is printed is what ferry runs. Loading
// the output gives an equal Config (locations aside); the tests hold it to that.

public enum ConfigRenderer {
    public static func render(_ config: Config) -> String {
        var out = "# ferry: effective configuration of \(config.file)\n"
        switch config.workerProcesses {
        case .auto: out += "worker_processes auto;\n"
        case .count(let n): out += "worker_processes \(n);\n"
        }
        if let n = config.workerRlimitNofile { out += "worker_rlimit_nofile \(n);\n" }
        if let n = config.workerConnections { out += "events { worker_connections \(n); }\n" }
        if let pid = config.pidFile { out += line(0, "pid", pid) }
        out += "worker_shutdown_timeout \(config.shutdownTimeout);\n"
        if config.busyPollingMicros > 0 { out += "busy_polling \(config.busyPollingMicros)us;\n" }
        if let log = config.errorLog { out += line(0, "error_log", log.path, log.level.rawValue) }
        if let admin = config.adminSocket { out += line(0, "admin_socket", admin.path, "mode=0" + String(admin.mode, radix: 8)) }
        if let m = config.metricsListen { out += line(0, "metrics_listen", m.address.written) }
        out += "\nstream {\n"
        for format in config.logFormats {
            out += line(1, "log_format", format.name, "escape=\(format.escape.rawValue)", format.format)
        }
        for zone in config.limitConnZones {
            out += line(1, "limit_conn_zone", zone.key, "zone=\(zone.name):\(Units.sizeText(zone.size))")
        }
        out += accessLogs(config.accessLogs, indent: 1)
        for upstream in config.upstreams { out += "\n" + render(upstream) }
        for listener in config.listeners { out += "\n" + render(listener) }
        out += "}\n"
        return out
    }

    private static func render(_ upstream: UpstreamConfig) -> String {
        var out = "    upstream \(quote(upstream.name)) {\n"
        switch upstream.method {
        case .roundRobin: break
        case .leastConn: out += line(2, "least_conn")
        case .hash(let consistent): out += line(2, ["hash", "$remote_addr"] + (consistent ? ["consistent"] : []))
        case .ipHash: out += line(2, "ip_hash")
        case .random(let two, let leastConn):
            out += line(2, ["random"] + (two ? ["two"] : []) + (leastConn ? ["least_conn"] : []))
        }
        for server in upstream.servers {
            var words = ["server", server.address.written, "weight=\(server.weight)", "max_fails=\(server.maxFails)",
                         "fail_timeout=\(server.failTimeout)", "max_conns=\(server.maxConns)"]
            if server.backup { words.append("backup") }
            if server.down { words.append("down") }
            // A name nobody gave is the address as written; spelled out it would be a parameter
            // nginx refuses, and `-T` of a plain nginx config should stay a config nginx loads.
            if server.name != server.address.written { words.append("name=\(server.name)") }
            if let port = server.agentPort { words.append("agent_port=\(port)") }
            out += line(2, words)
        }
        if let h = upstream.healthCheck {
            var words = ["health_check", "interval=\(h.interval)", "fails=\(h.fails)", "passes=\(h.passes)", "timeout=\(h.timeout)"]
            if let port = h.port { words.append("port=\(port)") }
            out += line(2, words)
        }
        if let a = upstream.agentCheck {
            var words = ["agent_check", "port=\(a.port)", "interval=\(a.interval)", "timeout=\(a.timeout)"]
            if let send = a.send { words.append("send=\(send)") }
            out += line(2, words)
        }
        if upstream.shutdownSessionsOnDown { out += line(2, ["on_marked_down", "shutdown_sessions"]) }
        return out + "    }\n"
    }

    private static func render(_ listener: ListenerConfig) -> String {
        var out = "    server {\n"
        for listen in listener.listens {
            var words = ["listen", listen.address.written, "backlog=\(listen.backlog)"]
            if listen.reusePort { words.append("reuseport") }
            if listen.keepalive != .off { words.append("so_keepalive=" + keepaliveText(listen.keepalive)) }
            if listen.proxyProtocol { words.append("proxy_protocol") }
            if !listen.ipv6Only { words.append("ipv6only=off") }
            if let n = listen.receiveBuffer { words.append("rcvbuf=" + Units.sizeText(n)) }
            if let n = listen.sendBuffer { words.append("sndbuf=" + Units.sizeText(n)) }
            if let n = listen.fastOpen { words.append("fastopen=\(n)") }
            out += line(2, words)
        }
        switch listener.proxyPass {
        case .upstream(let name): out += line(2, "proxy_pass", name)
        case .addresses(let written, _): out += line(2, "proxy_pass", written)
        }
        out += line(2, "proxy_connect_timeout", "\(listener.connectTimeout)")
        out += line(2, "proxy_timeout", "\(listener.idleTimeout)")
        out += line(2, "proxy_half_close", listener.halfClose ? "on" : "off")
        out += line(2, "proxy_next_upstream", listener.nextUpstream ? "on" : "off")
        out += line(2, "proxy_next_upstream_tries", "\(listener.nextUpstreamTries)")
        out += line(2, "proxy_next_upstream_timeout", "\(listener.nextUpstreamTimeout)")
        out += line(2, "proxy_protocol", listener.sendProxyProtocol ? "on" : "off")
        for rule in listener.access {
            let action = rule.action == .allow ? "allow" : "deny"
            switch rule.match {
            case .all: out += line(2, action, "all")
            case .unixSockets: out += line(2, action, "unix:")
            case .cidr(let address, let prefix): out += line(2, action, "\(IPText.format(address))/\(prefix)")
            }
        }
        for match in listener.realIPFrom {
            switch match {
            case .unixSockets: out += line(2, "set_real_ip_from", "unix:")
            case .cidr(let address, let prefix): out += line(2, "set_real_ip_from", "\(IPText.format(address))/\(prefix)")
            case .all: preconditionFailure("set_real_ip_from has no \"all\"")
            }
        }
        for limit in listener.limitConn { out += line(2, "limit_conn", limit.zone, "\(limit.count)") }
        if let rate = listener.connectionRate {
            let text = rate.milliPerSecond % 1000 == 0 ? "\(rate.milliPerSecond / 1000)r/s" : "\((rate.milliPerSecond * 60 + 500) / 1000)r/m"
            out += line(2, "limit_conn_rate", text, "burst=\(rate.burst)")
        }
        // ferry's own directives, shown only when set away from their defaults, so a plain
        // server's rendering stays a config nginx loads (nginx sends version 1 only).
        if listener.proxyProtocolVersion != 1 {
            out += line(2, "proxy_protocol_version", "\(listener.proxyProtocolVersion)")
        }
        if listener.listens.contains(where: \.proxyProtocol) || listener.proxyProtocolTimeout != .seconds(30) {
            out += line(2, "proxy_protocol_timeout", "\(listener.proxyProtocolTimeout)")
        }
        if listener.serverKeepalive != .off { out += line(2, "proxy_socket_keepalive", keepaliveText(listener.serverKeepalive)) }
        if listener.userTimeout > .zero { out += line(2, "tcp_user_timeout", "\(listener.userTimeout)") }
        if listener.uploadRate > 0 { out += line(2, "proxy_upload_rate", Units.sizeText(listener.uploadRate)) }
        if listener.downloadRate > 0 { out += line(2, "proxy_download_rate", Units.sizeText(listener.downloadRate)) }
        if let bind = listener.bind { out += line(2, "proxy_bind", bind.written) }
        out += accessLogs(listener.accessLogs, indent: 2)
        return out + "    }\n"
    }

    private static func keepaliveText(_ k: KeepaliveConfig) -> String {
        switch k {
        case .off: return "off"
        case .on: return "on"
        case .tuned(let idle, let interval, let count):
            return "\(idle.map { "\($0)" } ?? ""):\(interval.map { "\($0)" } ?? ""):\(count.map { "\($0)" } ?? "")"
        }
    }

    private static func accessLogs(_ logs: [AccessLogConfig], indent: Int) -> String {
        if logs.isEmpty { return line(indent, "access_log", "off") }
        var out = ""
        for log in logs {
            var words = ["access_log", log.path]
            if let format = log.format { words.append(format) }
            if let buffer = log.buffer { words.append("buffer=\(Units.sizeText(buffer))") }
            if let flush = log.flush { words.append("flush=\(flush)") }
            out += line(indent, words)
        }
        return out
    }

    private static func line(_ indent: Int, _ words: String...) -> String { line(indent, words) }

    private static func line(_ indent: Int, _ words: [String]) -> String {
        String(repeating: "    ", count: indent) + words.map(quote).joined(separator: " ") + ";\n"
    }

    /// Quotes a word when the lexer would otherwise split it, end it, or read escapes in it.
    static func quote(_ word: String) -> String {
        let plain = !word.isEmpty && !word.hasPrefix("#") && word.unicodeScalars.allSatisfy { c in
            c.value > 0x20 && c.value < 0x7f && !";{}\"'\\".unicodeScalars.contains(c)
        }
        if plain { return word }
        var out = "\""
        for c in word.unicodeScalars {
            switch c {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case "\r": out += "\\r"
            default: out.unicodeScalars.append(c)
            }
        }
        return out + "\""
    }
}
