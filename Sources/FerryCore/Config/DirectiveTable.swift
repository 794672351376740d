// The one place that says which directives exist, where they may appear and how many
// arguments they take. The Builder checks every directive against this table before the
// handler named here sees it, so handlers only deal with meaning.

enum DirectiveContext: Hashable, Sendable {
    case main       // the top of the file; also stream context when the file has no `stream` block
    case stream
    case upstream
    case server     // a stream `server { }`, i.e. a listener
    case events     // nginx's `events { }`
}

struct DirectiveSpec {
    enum Arity: Equatable {
        case exactly(Int)
        case between(Int, Int)
        case atLeast(Int)

        func accepts(_ n: Int) -> Bool {
            switch self {
            case .exactly(let k): return n == k
            case .between(let lo, let hi): return n >= lo && n <= hi
            case .atLeast(let lo): return n >= lo
            }
        }
    }

    let name: String
    let contexts: Set<DirectiveContext>
    let arity: Arity
    /// `name args { ... }` rather than `name args;`.
    let takesBlock: Bool
    /// A second one in the same block is an error: nginx's `"x" directive is duplicate`.
    let once: Bool
    let apply: (ConfigBuilder) -> (Directive) throws -> Void

    init(_ name: String, _ contexts: Set<DirectiveContext>, _ arity: Arity, block: Bool = false, once: Bool = false,
         _ apply: @escaping (ConfigBuilder) -> (Directive) throws -> Void) {
        self.name = name; self.contexts = contexts; self.arity = arity
        self.takesBlock = block; self.once = once; self.apply = apply
    }
}

enum DirectiveTable {
    private static let streamLevel: Set<DirectiveContext> = [.stream, .server]

    static let all: [DirectiveSpec] = [
        // main
        DirectiveSpec("worker_processes", [.main], .exactly(1), once: true, ConfigBuilder.workerProcesses),
        DirectiveSpec("worker_rlimit_nofile", [.main], .exactly(1), once: true, ConfigBuilder.workerRlimitNofile),
        DirectiveSpec("pid", [.main], .exactly(1), once: true, ConfigBuilder.pidFile),
        DirectiveSpec("worker_shutdown_timeout", [.main], .exactly(1), once: true, ConfigBuilder.workerShutdownTimeout),
        DirectiveSpec("busy_polling", [.main], .exactly(1), once: true, ConfigBuilder.busyPolling),
        DirectiveSpec("error_log", [.main, .stream, .server], .between(1, 2), ConfigBuilder.errorLog),
        DirectiveSpec("admin_socket", [.main, .stream], .between(1, 2), once: true, ConfigBuilder.adminSocket),
        DirectiveSpec("metrics_listen", [.main, .stream], .exactly(1), once: true, ConfigBuilder.metricsListen),
        DirectiveSpec("stream", [.main], .exactly(0), block: true, once: true, ConfigBuilder.stream),
        DirectiveSpec("events", [.main], .exactly(0), block: true, once: true, ConfigBuilder.events),
        // nginx main-context directives that mean nothing to ferry: accepted so an nginx
        // file loads unchanged, with a warning so nobody believes they take effect.
        DirectiveSpec("load_module", [.main], .exactly(1), ConfigBuilder.ignored),
        DirectiveSpec("daemon", [.main], .exactly(1), once: true, ConfigBuilder.ignoredFlag),
        DirectiveSpec("user", [.main], .between(1, 2), once: true, ConfigBuilder.ignored),
        DirectiveSpec("master_process", [.main], .exactly(1), once: true, ConfigBuilder.ignoredFlag),
        DirectiveSpec("pcre_jit", [.main], .exactly(1), once: true, ConfigBuilder.ignoredFlag),
        DirectiveSpec("env", [.main], .exactly(1), ConfigBuilder.ignored),
        DirectiveSpec("worker_cpu_affinity", [.main], .atLeast(1), once: true, ConfigBuilder.ignored),
        DirectiveSpec("worker_priority", [.main], .exactly(1), once: true, ConfigBuilder.ignoredPriority),
        DirectiveSpec("timer_resolution", [.main], .exactly(1), once: true, ConfigBuilder.ignoredTime),
        DirectiveSpec("lock_file", [.main], .exactly(1), once: true, ConfigBuilder.ignored),
        DirectiveSpec("working_directory", [.main], .exactly(1), once: true, ConfigBuilder.ignored),
        DirectiveSpec("worker_rlimit_core", [.main], .exactly(1), once: true, ConfigBuilder.ignoredOffset),
        DirectiveSpec("thread_pool", [.main], .between(2, 3), ConfigBuilder.ignored),
        // The rest of an nginx.conf: skipped with a warning so /etc/nginx/nginx.conf loads and
        // ferry runs its stream part; nobody must believe ferry serves what these blocks hold.
        DirectiveSpec("http", [.main], .exactly(0), block: true, once: true, ConfigBuilder.skippedBlock),
        DirectiveSpec("mail", [.main], .exactly(0), block: true, once: true, ConfigBuilder.skippedBlock),

        // stream
        DirectiveSpec("upstream", [.stream], .exactly(1), block: true, ConfigBuilder.upstream),
        DirectiveSpec("server", [.stream], .exactly(0), block: true, ConfigBuilder.listener),
        DirectiveSpec("log_format", [.stream], .atLeast(2), ConfigBuilder.logFormat),
        DirectiveSpec("limit_conn_zone", [.stream], .exactly(2), ConfigBuilder.limitConnZone),
        DirectiveSpec("limit_conn", streamLevel, .exactly(2), ConfigBuilder.limitConn),
        DirectiveSpec("access_log", streamLevel, .atLeast(1), ConfigBuilder.accessLog),
        DirectiveSpec("proxy_connect_timeout", streamLevel, .exactly(1), once: true, ConfigBuilder.proxyConnectTimeout),
        DirectiveSpec("proxy_timeout", streamLevel, .exactly(1), once: true, ConfigBuilder.proxyTimeout),
        DirectiveSpec("proxy_next_upstream", streamLevel, .exactly(1), once: true, ConfigBuilder.proxyNextUpstream),
        DirectiveSpec("proxy_half_close", streamLevel, .exactly(1), once: true, ConfigBuilder.proxyHalfClose),
        DirectiveSpec("proxy_next_upstream_tries", streamLevel, .exactly(1), once: true, ConfigBuilder.proxyNextUpstreamTries),
        DirectiveSpec("proxy_next_upstream_timeout", streamLevel, .exactly(1), once: true, ConfigBuilder.proxyNextUpstreamTimeout),
        DirectiveSpec("proxy_protocol", streamLevel, .exactly(1), once: true, ConfigBuilder.proxyProtocol),
        DirectiveSpec("proxy_protocol_version", streamLevel, .exactly(1), once: true, ConfigBuilder.proxyProtocolVersion),
        DirectiveSpec("proxy_protocol_timeout", streamLevel, .exactly(1), once: true, ConfigBuilder.proxyProtocolTimeout),
        DirectiveSpec("proxy_socket_keepalive", streamLevel, .exactly(1), once: true, ConfigBuilder.proxySocketKeepalive),
        DirectiveSpec("tcp_user_timeout", streamLevel, .exactly(1), once: true, ConfigBuilder.tcpUserTimeout),
        DirectiveSpec("limit_conn_rate", streamLevel, .between(1, 2), once: true, ConfigBuilder.limitConnRate),
        DirectiveSpec("proxy_bind", streamLevel, .between(1, 2), once: true, ConfigBuilder.proxyBind),
        DirectiveSpec("set_real_ip_from", streamLevel, .exactly(1), ConfigBuilder.setRealIPFrom),
        DirectiveSpec("proxy_upload_rate", streamLevel, .exactly(1), once: true, ConfigBuilder.proxyRate),
        DirectiveSpec("proxy_download_rate", streamLevel, .exactly(1), once: true, ConfigBuilder.proxyRate),
        DirectiveSpec("allow", streamLevel, .exactly(1), ConfigBuilder.accessRule),
        DirectiveSpec("deny", streamLevel, .exactly(1), ConfigBuilder.accessRule),
        // nginx stream tuning that ferry's splice relay has no use for.
        DirectiveSpec("tcp_nodelay", streamLevel, .exactly(1), once: true, ConfigBuilder.ignoredFlag),
        DirectiveSpec("proxy_buffer_size", streamLevel, .exactly(1), once: true, ConfigBuilder.ignoredSize),
        DirectiveSpec("resolver", streamLevel, .atLeast(1), once: true, ConfigBuilder.ignored),
        DirectiveSpec("resolver_timeout", streamLevel, .exactly(1), once: true, ConfigBuilder.ignoredTime),
        DirectiveSpec("preread_buffer_size", streamLevel, .exactly(1), once: true, ConfigBuilder.ignoredSize),
        DirectiveSpec("preread_timeout", streamLevel, .exactly(1), once: true, ConfigBuilder.ignoredTime),
        DirectiveSpec("limit_conn_log_level", streamLevel, .exactly(1), once: true, ConfigBuilder.ignoredLogLevel),
        DirectiveSpec("variables_hash_max_size", [.stream], .exactly(1), once: true, ConfigBuilder.ignoredNumber),
        DirectiveSpec("variables_hash_bucket_size", [.stream], .exactly(1), once: true, ConfigBuilder.ignoredNumber),
        // UDP only in nginx; ferry balances TCP, where they change nothing there either.
        DirectiveSpec("proxy_requests", streamLevel, .exactly(1), once: true, ConfigBuilder.ignoredNumber),
        DirectiveSpec("proxy_responses", streamLevel, .exactly(1), once: true, ConfigBuilder.ignoredNumber),

        // events: ferry runs one epoll loop, so only worker_connections changes anything; the
        // others are read as nginx reads them and ignored with a warning.
        DirectiveSpec("worker_connections", [.events], .exactly(1), once: true, ConfigBuilder.workerConnections),
        DirectiveSpec("use", [.events], .exactly(1), once: true, ConfigBuilder.eventMethod),
        DirectiveSpec("multi_accept", [.events], .exactly(1), once: true, ConfigBuilder.ignoredFlag),
        DirectiveSpec("accept_mutex", [.events], .exactly(1), once: true, ConfigBuilder.ignoredFlag),
        DirectiveSpec("accept_mutex_delay", [.events], .exactly(1), once: true, ConfigBuilder.ignoredTime),
        DirectiveSpec("worker_aio_requests", [.events], .exactly(1), once: true, ConfigBuilder.ignoredNumber),
        DirectiveSpec("epoll_events", [.events], .exactly(1), once: true, ConfigBuilder.ignoredNumber),
        DirectiveSpec("debug_connection", [.events], .exactly(1), ConfigBuilder.ignored),

        // upstream
        DirectiveSpec("server", [.upstream], .atLeast(1), ConfigBuilder.upstreamServer),
        DirectiveSpec("least_conn", [.upstream], .exactly(0), ConfigBuilder.leastConn),
        DirectiveSpec("hash", [.upstream], .between(1, 2), ConfigBuilder.hash),
        DirectiveSpec("ip_hash", [.upstream], .exactly(0), ConfigBuilder.ipHash),
        DirectiveSpec("random", [.upstream], .between(0, 2), ConfigBuilder.random),
        DirectiveSpec("health_check", [.upstream], .atLeast(0), once: true, ConfigBuilder.healthCheck),
        DirectiveSpec("agent_check", [.upstream], .atLeast(1), once: true, ConfigBuilder.agentCheck),
        DirectiveSpec("on_marked_down", [.upstream], .exactly(1), once: true, ConfigBuilder.onMarkedDown),
        DirectiveSpec("zone", [.upstream], .between(1, 2), once: true, ConfigBuilder.ignoredZone),

        // server (listener)
        DirectiveSpec("listen", [.server], .atLeast(1), ConfigBuilder.listen),
        DirectiveSpec("proxy_pass", [.server], .exactly(1), once: true, ConfigBuilder.proxyPass),
    ]

    private static let byName: [String: [DirectiveSpec]] = Dictionary(grouping: all, by: { $0.name })

    static func specs(named name: String) -> [DirectiveSpec] { byName[name] ?? [] }

    /// Every known name, for "did you mean"; `include` is handled before the table but is a name.
    static let names: [String] = {
        var seen = Set<String>()
        return (all.map(\.name) + ["include"]).filter { seen.insert($0).inserted }
    }()

    private static let http = "is an http directive"
    private static let noTLS = "ferry does not terminate TLS; it passes TLS through as bytes"

    /// Names an nginx user brings from http{} config, with what to write instead.
    static let httpHints: [String: String] = [
        "proxy_read_timeout": "\"proxy_read_timeout\" \(http); in a stream server use \"proxy_timeout\"",
        "proxy_send_timeout": "\"proxy_send_timeout\" \(http); in a stream server use \"proxy_timeout\"",
        "send_timeout": "\"send_timeout\" \(http); in a stream server use \"proxy_timeout\"",
        "keepalive_timeout": "\"keepalive_timeout\" \(http); in a stream server use \"proxy_timeout\" for idle sessions or \"listen ... so_keepalive=on\" for TCP keepalive",
        "location": "\"location\" \(http); a stream server has no locations, put \"proxy_pass\" directly in \"server\"",
        "server_name": "\"server_name\" \(http); a stream server is chosen by its \"listen\" address only",
        "keepalive": "\"keepalive\" is an http upstream directive; ferry does not pool upstream connections",
        "proxy_set_header": "\"proxy_set_header\" \(http); ferry relays TCP bytes and does not look inside them",
        "proxy_http_version": "\"proxy_http_version\" \(http); ferry relays TCP bytes and does not look inside them",
        "proxy_buffering": "\"proxy_buffering\" \(http); ferry relays TCP bytes and does not look inside them",
        "client_max_body_size": "\"client_max_body_size\" \(http); ferry relays TCP bytes and does not look inside them",
        "ssl_certificate": noTLS,
        "ssl_certificate_key": noTLS,
        "ssl_protocols": noTLS,
        "proxy_ssl": noTLS,
    ]

    private static func notImplemented(_ name: String, _ why: String) -> String {
        "\"\(name)\" is an nginx stream directive that ferry does not implement; \(why)"
    }
    private static let noVariables = "ferry has no variables beyond its log formats, so a server block's behaviour is fixed by its directives"

    /// nginx stream directives with a meaning ferry does not provide: refused (ignoring them
    /// would change where or whether traffic goes), with a hint so they do not read as typos.
    static func streamHint(_ name: String) -> String? {
        switch name {
        case "ssl_preread": return notImplemented(name, "ferry does not read the TLS ClientHello, so it cannot choose by SNI or ALPN")
        case "map", "geo", "geoip_country", "geoip_city", "split_clients", "set": return notImplemented(name, noVariables)
        case "return": return notImplemented(name, "a server block always proxies; use \"deny all;\" to refuse clients")
        case "pass": return notImplemented(name, "use \"proxy_pass\"")
        case "limit_conn_dry_run": return notImplemented(name, "remove it, or \"limit_conn\" to enforce the limit")
        default: break
        }
        if name.hasPrefix("js_") { return notImplemented(name, "ferry runs no scripts (njs)") }
        if name.hasPrefix("proxy_ssl") { return notImplemented(name, "ferry does not speak TLS to servers; it passes TLS through as bytes") }
        if name.hasPrefix("ssl_") { return notImplemented(name, noTLS) }
        return nil
    }

    /// `listen` parameters that make sense only elsewhere.
    static let listenHints: [String: String] = [
        "ssl": noTLS,
        "http2": "\"http2\" is an http parameter; ferry relays TCP bytes and does not look inside them",
        "default_server": "\"default_server\" is an http parameter; a stream server is chosen by its \"listen\" address only",
        "udp": "ferry balances TCP only",
    ]
}
