// Directive tree to typed Config. Structure (context, arity, block, duplicates) is checked
// against DirectiveTable in `walk`; each handler below gives one directive its meaning.
// Stream-level proxy settings are merged into every server that does not set them after
// the whole file is read, as nginx's merge_srv_conf does, so their order does not matter.

final class ConfigBuilder {
    /// Settings a stream `server` inherits from the stream level when it does not set them.
    struct ProxySettings {
        var connectTimeout: Duration?
        var idleTimeout: Duration?
        var nextUpstream: Bool?
        var halfClose: Bool?
        var nextUpstreamTries: Int?
        var nextUpstreamTimeout: Duration?
        var sendProxyProtocol: Bool?
        var access: [AccessRule]?
        var limitConn: [LimitConnConfig]?
        var connectionRate: ConnectionRateConfig??
        var proxyProtocolVersion: Int?
        var proxyProtocolTimeout: Duration?
        var serverKeepalive: KeepaliveConfig?
        var userTimeout: Duration?
        var accessLogs: [AccessLogConfig]?
        /// `.some(nil)` is `proxy_bind off;`, which cancels an inherited address.
        var bind: LocalBind??
        var realIPFrom: [AccessRule.Match]?
        var uploadRate: Int?
        var downloadRate: Int?
    }

    /// A `proxy_bind` address and where it was written, for the family check after the file is read.
    struct LocalBind {
        var address: ServerAddress
        var location: SourceLocation
    }

    struct ListenerDraft {
        var listens: [ListenConfig] = []
        var proxyPass: Argument?
        var settings = ProxySettings()
        var location: SourceLocation
    }

    struct UpstreamDraft {
        var upstream: UpstreamConfig
        var methodName: String?
        var backupLocations: [SourceLocation] = []
        /// Index of the first server given each `name=`, and of the first written at each
        /// address: a 10,000-server upstream checked pairwise took seconds of every reload.
        var explicitNames: [String: Int] = [:]
        var writtenAddresses: [String: Int] = [:]
    }

    private(set) var config: Config
    private(set) var diagnostics: [Diagnostic] = []
    private let environment: ConfigEnvironment

    private var context: DirectiveContext = .main
    private var hasStreamBlock = false
    private var errorLogFromStream = false
    /// Where each context wrote its error_log, to say so at a second one.
    private var errorLogLines: [DirectiveContext: SourceLocation] = [:]
    private var stream = ProxySettings()
    private var listeners: [ListenerDraft] = []
    private var currentListener: ListenerDraft?
    private var currentUpstream: UpstreamDraft?
    private var listenAddresses: [ServerAddress.Endpoint: (written: String, location: SourceLocation, reusePort: Bool, dualStack: Bool)] = [:]
    private var formatReferences: [(name: String, location: SourceLocation)] = []
    private var zoneReferences: [(name: String, location: SourceLocation)] = []
    private var workerConnectionsLocation: SourceLocation? = nil

    init(file: String, environment: ConfigEnvironment) {
        config = Config(file: file)
        self.environment = environment
    }

    func build(_ tree: [Directive]) throws -> Config {
        hasStreamBlock = tree.contains { $0.name == "stream" && $0.block != nil }
        try walk(tree, in: .main)
        try finish()
        return config
    }

    // MARK: structure

    private func walk(_ list: [Directive], in context: DirectiveContext) throws {
        var seen = Set<String>()
        for directive in list {
            let spec = try lookup(directive, in: context)
            if spec.once && !seen.insert(directive.name).inserted {
                throw ConfigError("\"\(directive.name)\" directive is duplicate", at: directive.location)
            }
            if spec.takesBlock && directive.block == nil {
                throw ConfigError("directive \"\(directive.name)\" has no opening \"{\"", at: directive.location)
            }
            if !spec.takesBlock && directive.block != nil {
                throw ConfigError("directive \"\(directive.name)\" is not terminated by \";\"", at: directive.location)
            }
            if !spec.arity.accepts(directive.arguments.count) {
                throw ConfigError("invalid number of arguments in \"\(directive.name)\" directive", at: directive.location)
            }
            self.context = context
            try spec.apply(self)(directive)
        }
    }

    private func allows(_ spec: DirectiveSpec, in context: DirectiveContext) -> Bool {
        if spec.contexts.contains(context) { return true }
        // Without a `stream` block the top of the file is the stream level (ferry's short form).
        return context == .main && !hasStreamBlock && spec.contexts.contains(.stream)
    }

    private func lookup(_ directive: Directive, in context: DirectiveContext) throws -> DirectiveSpec {
        let specs = DirectiveTable.specs(named: directive.name)
        if let spec = specs.first(where: { allows($0, in: context) }) { return spec }
        if !specs.isEmpty {
            let hint = context == .main && specs.contains(where: { $0.contexts.contains(.stream) })
                ? "this file has a \"stream\" block, put it inside"
                : specs.allSatisfy({ $0.contexts == [.events] }) ? "it belongs in the \"events { }\" block, as in nginx" : nil
            throw ConfigError("\"\(directive.name)\" directive is not allowed here", at: directive.location, hint: hint)
        }
        let hint = DirectiveTable.httpHints[directive.name] ?? DirectiveTable.streamHint(directive.name)
            ?? NameSuggestion.nearest(to: directive.name, in: DirectiveTable.names).map { "did you mean \"\($0)\"?" }
        throw ConfigError("unknown directive \"\(directive.name)\"", at: directive.location, hint: hint)
    }

    private func warn(_ message: String, at location: SourceLocation) {
        diagnostics.append(Diagnostic(level: .warn, message: message, location: location))
    }

    // MARK: shared value parsing

    private func invalidParameter(_ argument: Argument, known: [String], hint: String? = nil) -> ConfigError {
        let text = argument.text
        var suggestion = hint
        if suggestion == nil {
            let key = text.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let hasValue = key.count == 2
            let candidates = known.filter { $0.hasSuffix("=") == hasValue }.map { String($0.dropLast(hasValue ? 1 : 0)) }
            if let near = NameSuggestion.nearest(to: String(key[0]), in: candidates) {
                suggestion = "did you mean \"\(hasValue ? near + "=" + key[1] : near)\"?"
            }
        }
        return ConfigError("invalid parameter \"\(text)\"", at: argument.location, hint: suggestion)
    }

    /// `key=value` split at the first `=`; nil for a bare flag.
    private func parameter(_ argument: Argument) -> (key: String, value: String)? {
        guard let eq = argument.text.firstIndex(of: "=") else { return nil }
        return (String(argument.text[..<eq]), String(argument.text[argument.text.index(after: eq)...]))
    }

    private func invalidValue(_ directive: Directive, _ argument: Argument, hint: String? = nil) -> ConfigError {
        ConfigError("\"\(directive.name)\" directive invalid value \"\(argument.text)\"", at: argument.location, hint: hint)
    }

    /// A `key=TIME` parameter's value that must be more than zero.
    private func positiveTime(_ value: String, _ arg: Argument) throws -> Duration {
        guard let t = Units.time(value), t > .zero else { throw invalidParameter(arg, known: [], hint: Units.timeHint(value)) }
        return t
    }

    private func time(_ directive: Directive) throws -> Duration {
        let text = directive.arguments[0].text
        guard let value = Units.time(text) else { throw invalidValue(directive, directive.arguments[0], hint: Units.timeHint(text)) }
        return value
    }

    /// nginx's flag slot compares without case (`ON`, `Off`), unlike the `on`/`off` values of
    /// listen parameters and `access_log off`, which it compares exactly.
    private func flag(_ directive: Directive) throws -> Bool {
        switch directive.arguments[0].text.lowercased() {
        case "on": return true
        case "off": return false
        default:
            throw ConfigError("invalid value \"\(directive.arguments[0].text)\" in \"\(directive.name)\" directive, it must be \"on\" or \"off\"",
                              at: directive.arguments[0].location)
        }
    }

    private func count(_ argument: Argument, minimum: Int) -> Int? {
        guard let n = Units.number(argument.text), n >= minimum else { return nil }
        return n
    }

    private func withSettings(_ body: (inout ProxySettings) -> Void) {
        if context == .server { body(&currentListener!.settings) } else { body(&stream) }
    }

    private func settings() -> ProxySettings { context == .server ? currentListener!.settings : stream }

    // MARK: main

    func ignored(_ d: Directive) throws {
        warn("\"\(d.name)\" directive is ignored by ferry", at: d.location)
    }

    // Ignored, but read as nginx reads them first: a value nginx refuses is an error here too,
    // so a file ferry loads is one nginx loads, and a typo does not wait for the day the file
    // goes back to nginx.

    func ignoredFlag(_ d: Directive) throws {
        _ = try flag(d)
        try ignored(d)
    }

    func ignoredTime(_ d: Directive) throws {
        _ = try time(d)
        try ignored(d)
    }

    func ignoredSize(_ d: Directive) throws {
        guard Units.size(d.arguments[0].text) != nil else { throw invalidValue(d, d.arguments[0]) }
        try ignored(d)
    }

    /// The upstream's `zone NAME [SIZE]` (shared memory ferry has no use for): the size as
    /// nginx reads it, k or m (`10g` is nginx's "invalid zone size" too), and at least nginx's
    /// eight pages.
    func ignoredZone(_ d: Directive) throws {
        if d.arguments.count == 2 {
            let arg = d.arguments[1]
            guard let size = Units.size(arg.text) else {
                throw ConfigError("invalid zone size \"\(arg.text)\"", at: arg.location,
                                  hint: "write a size in bytes, optionally with k or m, e.g. \"64k\"")
            }
            guard size >= 8 * 4096 else {   // eight pages of 4 KiB, the page size nginx runs with here
                throw ConfigError("zone \"\(d.arguments[0].text)\" is too small", at: arg.location,
                                  hint: "nginx takes at least eight pages (32k with 4 KiB pages); ferry ignores the zone, so any such size will do")
            }
        }
        try ignored(d)
    }

    /// nginx's offset slot (`worker_rlimit_core`): a size that may also be in gigabytes.
    func ignoredOffset(_ d: Directive) throws {
        let text = d.arguments[0].text
        let gigabytes = text.last.map { "gG".contains($0) } == true && Units.number(String(text.dropLast())) != nil
        guard gigabytes || Units.size(text) != nil else { throw invalidValue(d, d.arguments[0]) }
        try ignored(d)
    }

    func ignoredNumber(_ d: Directive) throws {
        guard count(d.arguments[0], minimum: 0) != nil else { throw invalidValue(d, d.arguments[0]) }
        try ignored(d)
    }

    /// nginx's `worker_priority`: a signed number of the nice scale.
    func ignoredPriority(_ d: Directive) throws {
        let text = d.arguments[0].text
        let digits = text.hasPrefix("-") || text.hasPrefix("+") ? String(text.dropFirst()) : text
        guard Units.number(digits) != nil else { throw invalidValue(d, d.arguments[0]) }
        try ignored(d)
    }

    func ignoredLogLevel(_ d: Directive) throws {
        let levels = ["info", "notice", "warn", "error"]
        // nginx's enum slot compares without case (`WARN`).
        guard levels.contains(d.arguments[0].text.lowercased()) else {
            throw ConfigError("invalid value \"\(d.arguments[0].text)\" in \"\(d.name)\" directive, it must be \"info\", \"notice\", \"warn\" or \"error\"",
                              at: d.arguments[0].location)
        }
        try ignored(d)
    }

    func skippedBlock(_ d: Directive) throws {
        warn("\"\(d.name)\" block is skipped: ferry runs only the \"stream\" part of an nginx configuration, and nothing in this block is served", at: d.location)
    }

    func workerProcesses(_ d: Directive) throws {
        let arg = d.arguments[0]
        if arg.text == "auto" { config.workerProcesses = .auto; return }
        guard let n = count(arg, minimum: 1) else { throw invalidValue(d, arg) }
        config.workerProcesses = .count(n)
    }

    func workerRlimitNofile(_ d: Directive) throws {
        guard let n = count(d.arguments[0], minimum: 1) else { throw invalidValue(d, d.arguments[0]) }
        config.workerRlimitNofile = n
    }

    func events(_ d: Directive) throws {
        try walk(d.block!, in: .events)
    }

    /// Checked against the listen sockets once they are all known (finish), as nginx checks
    /// at start: zero passes here and fails there with nginx's message.
    func workerConnections(_ d: Directive) throws {
        guard let n = count(d.arguments[0], minimum: 0) else {
            throw ConfigError("invalid number \"\(d.arguments[0].text)\"", at: d.arguments[0].location)
        }
        config.workerConnections = n
        workerConnectionsLocation = d.location
    }

    /// `use METHOD`: ferry's loop is always epoll, which is what `use epoll` asks. nginx on
    /// Linux builds no other method unless told to (its poll and select modules are off where
    /// epoll exists), so any other word is its error here too.
    func eventMethod(_ d: Directive) throws {
        let arg = d.arguments[0]
        guard arg.text == "epoll" else {
            throw ConfigError("invalid event type \"\(arg.text)\"", at: arg.location, hint: "ferry always runs epoll: write \"use epoll;\" or leave \"use\" out")
        }
    }

    /// nginx's `worker_shutdown_timeout`: how long a graceful stop waits for sessions.
    func pidFile(_ d: Directive) throws {
        config.pidFile = d.arguments[0].text
    }

    func workerShutdownTimeout(_ d: Directive) throws {
        config.shutdownTimeout = try time(d)
    }

    /// `busy_polling off | TIME`: TIME in nginx's units or in microseconds (`50us`), at most
    /// 10ms. Past a few hundred microseconds polling only burns CPU: the wake-up it saves
    /// costs tens of microseconds.
    func busyPolling(_ d: Directive) throws {
        let a = d.arguments[0]
        if a.text == "off" { config.busyPollingMicros = 0; return }
        var micros: Int64? = nil
        if a.text.hasSuffix("us") {
            micros = Int64(a.text.dropLast(2))
        } else if let t = Units.time(a.text), t.milliseconds <= 10 {
            micros = t.milliseconds * 1000
        }
        guard let m = micros, m > 0, m <= 10_000 else {
            throw ConfigError("\"busy_polling\" directive invalid value \"\(a.text)\"", at: a.location,
                              hint: "write \"off\" or a time from 1us to 10ms, such as \"50us\"")
        }
        config.busyPollingMicros = Int(m)
    }

    /// nginx takes error_log in a stream server too, and several in one context (it logs to
    /// each); ferry has one event log for the process, so it says that rather than nginx's
    /// words for other mistakes ("not allowed here", "is duplicate").
    func errorLog(_ d: Directive) throws {
        if context == .server {
            throw ConfigError("ferry keeps one error log for the whole process; a \"server\" block cannot have its own", at: d.location,
                              hint: "move this \"error_log\" to the stream block or the main context")
        }
        if let earlier = errorLogLines[context] {
            throw ConfigError("ferry writes one error log, and \"error_log\" of \(earlier) already names one here", at: d.location,
                              hint: "keep one \"error_log\" line in this context")
        }
        errorLogLines[context] = d.location
        try refuseLogTarget(d, d.arguments[0], refused: ["syslog:", "memory:"])
        var level = LogLevel.error
        if d.arguments.count == 2 {
            guard let l = LogLevel(rawValue: d.arguments[1].text) else {
                throw ConfigError("invalid log level \"\(d.arguments[1].text)\"", at: d.arguments[1].location,
                                  hint: NameSuggestion.nearest(to: d.arguments[1].text, in: LogLevel.allCases.map(\.rawValue))
                                      .map { "did you mean \"\($0)\"?" })
            }
            level = l
        }
        // The stream block's error_log is the more specific one and wins, wherever main's is written.
        let inStream = context == .stream
        if errorLogFromStream && !inStream { return }
        config.errorLog = ErrorLogConfig(path: d.arguments[0].text, level: level)
        errorLogFromStream = inStream
    }

    /// nginx's `syslog:` (and error_log's `memory:`) log targets. Without this check they would
    /// be taken as relative file names and ferry would write to a file called `syslog:server=...`
    /// while the operator waits for lines in syslog.
    private func refuseLogTarget(_ d: Directive, _ target: Argument, refused prefixes: [String]) throws {
        guard let prefix = prefixes.first(where: { target.text.hasPrefix($0) }) else { return }
        let kind = prefix == "syslog:" ? "syslog" : "memory"
        let instead = d.name == "error_log"
            ? "write a file path, or \"stderr\" (the default; under systemd it reaches the journal)"
            : "write a file path; a FIFO works too, so a reader such as \"logger -t ferry < FIFO\" can pass the lines to syslog"
        throw ConfigError("\"\(d.name)\" to \(kind) (\"\(target.text)\") is not supported by ferry", at: target.location,
                          hint: "ferry logs to files only; \(instead)")
    }

    func adminSocket(_ d: Directive) throws {
        if config.adminSocket != nil {
            throw ConfigError("\"admin_socket\" directive is duplicate", at: d.location)
        }
        let path = d.arguments[0]
        guard path.text.utf8.count < AddressSyntax.maximumUnixPath else {
            throw ConfigError("too long path in the unix domain socket in \"admin_socket\" \"\(path.text)\"", at: path.location,
                              hint: "a Unix socket path has at most \(AddressSyntax.maximumUnixPath - 1) bytes; choose a shorter one")
        }
        var socket = AdminSocketConfig(path: path.text)
        for arg in d.arguments.dropFirst() {
            guard let (key, value) = parameter(arg), key == "mode" else { throw invalidParameter(arg, known: ["mode="]) }
            guard let mode = UInt32(value, radix: 8), mode <= 0o777 else { throw invalidParameter(arg, known: []) }
            socket.mode = mode
        }
        config.adminSocket = socket
    }

    /// `metrics_listen ADDRESS;`: one per file, at the top or in `stream`.
    func metricsListen(_ d: Directive) throws {
        if config.metricsListen != nil {
            throw ConfigError("\"metrics_listen\" directive is duplicate", at: d.location)
        }
        let address = d.arguments[0]
        switch parseOneAddress(address) {
        case .success(let a):
            config.metricsListen = MetricsListenConfig(address: a, location: d.location)
        case .failure(let problem):
            throw ConfigError("\(problem.phrase) in \"\(address.text)\" of the \"metrics_listen\" directive", at: address.location,
                              hint: AddressSyntax.bracketHint(address.text))
        }
    }

    func stream(_ d: Directive) throws {
        try walk(d.block!, in: .stream)
    }

    // MARK: stream

    func logFormat(_ d: Directive) throws {
        let name = d.arguments[0].text
        if config.logFormats.contains(where: { $0.name == name }) {
            throw ConfigError("duplicate \"log_format\" name \"\(name)\"", at: d.arguments[0].location)
        }
        var strings = d.arguments.dropFirst()
        var escape = LogFormatConfig.Escape.default
        if let first = strings.first, let (key, value) = parameter(first), key == "escape" {
            guard let e = LogFormatConfig.Escape(rawValue: value) else {
                throw ConfigError("unknown log format escaping \"\(value)\", must be \"default\", \"json\" or \"none\"", at: first.location)
            }
            escape = e
            strings = strings.dropFirst()
        }
        guard !strings.isEmpty else {
            // nginx takes `log_format f escape=json;` and writes empty lines with it.
            throw ConfigError("log_format \"\(name)\" has no format string after \"\(d.arguments.last!.text)\"", at: d.arguments.last!.location,
                              hint: "add the line to write, e.g. '$remote_addr [$time_local] $status'")
        }
        // nginx reads each string on its own (a variable ends with its string: '$status' '_ok'
        // is $status then "_ok"), so each is checked alone, where its errors point, and a
        // variable that ends a string is braced before the next is joined on.
        for string in strings {
            // Checked here, not at start: a typo in a variable name is a config error, as in nginx.
            guard case .failure(let problem) = LogTemplate.compile(string.text, escape: escape) else { continue }
            switch problem {
            case .unknownVariable(let v):
                throw ConfigError("unknown \"\(v)\" variable", at: string.location,
                                  hint: NameSuggestion.nearest(to: v, in: LogVariable.allCases.map(\.rawValue)).map { "did you mean \"$\($0)\"?" })
            case .unsupportedVariable(let v, let why):
                throw ConfigError("variable \"$\(v)\" is not supported by ferry", at: string.location, hint: why)
            case .emptyName:
                throw ConfigError("invalid variable name in \"log_format\" directive", at: string.location)
            case .unclosedBrace:
                throw ConfigError("the closing bracket in \"log_format\" variable is missing", at: string.location)
            }
        }
        let texts = strings.map(\.text)
        var format = LogFormatConfig(name: name, format: texts.dropLast().map(LogTemplate.bracingTrailingVariable).joined() + texts.last!)
        format.escape = escape
        config.logFormats.append(format)
    }

    func limitConnZone(_ d: Directive) throws {
        let key = d.arguments[0]
        guard key.text == "$binary_remote_addr" || key.text == "$remote_addr" else {
            throw ConfigError("invalid key \"\(key.text)\" in \"limit_conn_zone\" directive", at: key.location,
                              hint: "ferry limits by client address only, use \"$binary_remote_addr\"")
        }
        let zone = d.arguments[1]
        guard let (k, value) = parameter(zone), k == "zone" else { throw invalidParameter(zone, known: ["zone="]) }
        // nginx ends the name at the first ":", so "a:b:1m" is a bad size, not a zone "a:b".
        guard let colon = value.firstIndex(of: ":") else {
            throw ConfigError("invalid zone size \"\(zone.text)\"", at: zone.location, hint: "write \"zone=NAME:SIZE\", e.g. \"zone=perip:10m\"")
        }
        guard colon != value.startIndex else { throw invalidParameter(zone, known: []) }
        let name = String(value[..<colon])
        let sizeText = String(value[value.index(after: colon)...])
        guard let size = Units.size(sizeText) else {
            throw ConfigError("invalid zone size \"\(zone.text)\"", at: zone.location,
                              hint: sizeText.contains(":") ? "a zone name ends at the first \":\"; write \"zone=NAME:SIZE\"" : nil)
        }
        // nginx's floor: eight 4k pages.
        guard size >= 8 * 4096 else { throw ConfigError("zone \"\(name)\" is too small", at: zone.location) }
        if config.limitConnZones.contains(where: { $0.name == name }) {
            throw ConfigError("duplicate zone \"\(name)\"", at: zone.location)
        }
        config.limitConnZones.append(LimitConnZoneConfig(name: name, key: key.text, size: size))
    }

    func limitConn(_ d: Directive) throws {
        let zone = d.arguments[0].text
        guard let n = count(d.arguments[1], minimum: 1) else {
            throw ConfigError("invalid number of connections \"\(d.arguments[1].text)\"", at: d.arguments[1].location)
        }
        // nginx keeps the count in 16 bits.
        guard n <= 65535 else { throw ConfigError("connection limit must be less 65536", at: d.arguments[1].location) }
        var limits = (context == .server ? currentListener!.settings.limitConn : stream.limitConn) ?? []
        if limits.contains(where: { $0.zone == zone }) {
            throw ConfigError("\"limit_conn\" directive is duplicate", at: d.location)
        }
        limits.append(LimitConnConfig(zone: zone, count: n))
        zoneReferences.append((zone, d.arguments[0].location))
        withSettings { $0.limitConn = limits }
    }

    func accessLog(_ d: Directive) throws {
        if d.arguments[0].text == "off" {
            if d.arguments.count > 1 { throw invalidParameter(d.arguments[1], known: []) }
            withSettings { $0.accessLogs = [] }
            return
        }
        try refuseLogTarget(d, d.arguments[0], refused: ["syslog:"])
        // nginx makes a file per value of a variable in the path; ferry writes one file per
        // access_log, so a `$` would otherwise name a file literally "per-$remote_addr.log".
        if d.arguments[0].text.contains("$") {
            throw ConfigError("variables in the path of \"access_log\" are not supported by ferry", at: d.arguments[0].location,
                              hint: "ferry writes one file per access_log line; put the variable in the log_format instead, and split the file afterwards if needed")
        }
        var log = AccessLogConfig(path: d.arguments[0].text, format: nil)
        for (i, arg) in d.arguments.enumerated().dropFirst() {
            guard let (key, value) = parameter(arg) else {
                guard i == 1 else { throw invalidParameter(arg, known: ["buffer=", "flush="]) }
                log.format = arg.text
                formatReferences.append((arg.text, arg.location))
                continue
            }
            switch key {
            case "buffer":
                guard let size = Units.size(value), size > 0 else { throw invalidParameter(arg, known: []) }
                guard size <= AccessLogConfig.maximumBufferSize else {
                    throw ConfigError("access_log buffer=\(value) is above ferry's maximum of \(AccessLogConfig.maximumBufferSize / (1024 * 1024))m", at: arg.location,
                                      hint: "the buffer only batches writes (nginx's default is 64k); write at most buffer=64m")
                }
                // Below this a typical line fills the buffer alone, so every session would wake the
                // writer thread and a second line while it writes would be dropped.
                if size < AccessLogConfig.minimumBufferSize {
                    warn("access_log buffer=\(value) is below \(AccessLogConfig.minimumBufferSize) bytes; ferry uses \(AccessLogConfig.minimumBufferSize)", at: arg.location)
                }
                log.buffer = max(size, AccessLogConfig.minimumBufferSize)
            case "flush":
                log.flush = try positiveTime(value, arg)
            default:
                throw invalidParameter(arg, known: ["buffer=", "flush="])
            }
        }
        if log.flush != nil && log.buffer == nil {
            throw ConfigError("no buffer is defined for access_log \"\(log.path)\"", at: d.location)
        }
        let existing = settings().accessLogs ?? []
        withSettings { $0.accessLogs = existing + [log] }
    }

    func proxyConnectTimeout(_ d: Directive) throws {
        let t = try time(d)
        withSettings { $0.connectTimeout = t }
    }

    func proxyTimeout(_ d: Directive) throws {
        let t = try time(d)
        withSettings { $0.idleTimeout = t }
    }

    func proxyNextUpstream(_ d: Directive) throws {
        let on = try flag(d)
        withSettings { $0.nextUpstream = on }
    }

    func proxyHalfClose(_ d: Directive) throws {
        let on = try flag(d)
        withSettings { $0.halfClose = on }
    }

    func proxyNextUpstreamTries(_ d: Directive) throws {
        guard let n = count(d.arguments[0], minimum: 0) else { throw invalidValue(d, d.arguments[0]) }
        withSettings { $0.nextUpstreamTries = n }
    }

    func proxyNextUpstreamTimeout(_ d: Directive) throws {
        let t = try time(d)
        withSettings { $0.nextUpstreamTimeout = t }
    }

    func proxyProtocol(_ d: Directive) throws {
        let on = try flag(d)
        withSettings { $0.sendProxyProtocol = on }
    }

    /// ferry's own: `1` (text, nginx's only form) or `2` (binary, HAProxy's send-proxy-v2).
    func proxyProtocolVersion(_ d: Directive) throws {
        let arg = d.arguments[0]
        guard arg.text == "1" || arg.text == "2" else {
            throw ConfigError("invalid value \"\(arg.text)\" in \"proxy_protocol_version\" directive, it must be \"1\" or \"2\"", at: arg.location)
        }
        withSettings { $0.proxyProtocolVersion = Int(arg.text)! }
    }

    func proxyProtocolTimeout(_ d: Directive) throws {
        let t = try time(d)
        // nginx takes 0 and then times every client out before its header can arrive: say so
        // rather than start a listener no client can use.
        guard t > .zero else {
            throw invalidValue(d, d.arguments[0], hint: "0 would close every client before its PROXY header arrives; use a positive time such as 5s")
        }
        withSettings { $0.proxyProtocolTimeout = t }
    }

    /// nginx's `on`/`off` (system keepalive timings); ferry also takes so_keepalive's
    /// `[idle]:[interval]:[count]`, since the system's two hours do not find a dead server.
    func proxySocketKeepalive(_ d: Directive) throws {
        let arg = d.arguments[0]
        // A flag slot in nginx, so `ON` is on (listen's so_keepalive=, unlike it, takes "on" only).
        let lower = arg.text.lowercased()
        switch ConfigBuilder.keepalive(lower == "on" || lower == "off" ? lower : arg.text) {
        case .success(let keepalive): withSettings { $0.serverKeepalive = keepalive }
        case .failure(.invalid):
            throw ConfigError("invalid value \"\(arg.text)\" in \"proxy_socket_keepalive\" directive, it must be \"on\", \"off\" or \"[idle]:[interval]:[count]\"", at: arg.location)
        case .failure(.outOfRange(let what)):
            throw ConfigError("invalid value \"\(arg.text)\" in \"proxy_socket_keepalive\" directive: \(what)", at: arg.location, hint: ConfigBuilder.keepaliveRangeHint)
        }
    }

    /// TCP_USER_TIMEOUT: unacknowledged data (or unanswered keepalive probes) older than this
    /// end the connection. Whole milliseconds, at most 2^31-1 as the kernel takes them.
    func tcpUserTimeout(_ d: Directive) throws {
        let t = try time(d)
        guard t.milliseconds <= Int64(Int32.max) else { throw invalidValue(d, d.arguments[0]) }
        withSettings { $0.userTimeout = t }
    }

    /// `proxy_bind ADDRESS | off;` as nginx parses it (ngx_parse_addr_port): an IPv4 address or an
    /// IPv6 one (bracketed when it has a port), optionally with a port; no host names. Neither
    /// `transparent` nor variables: both need IP_TRANSPARENT and policy routing ferry does not set up.
    func proxyBind(_ d: Directive) throws {
        let arg = d.arguments[0]
        if d.arguments.count == 2 {
            let p = d.arguments[1]
            guard p.text == "transparent" else { throw invalidParameter(p, known: ["transparent"]) }
            throw ConfigError("\"transparent\" in \"proxy_bind\" is not supported by ferry", at: p.location,
                              hint: "it needs IP_TRANSPARENT (CAP_NET_ADMIN) and routing that brings the servers' replies back to this host; ferry connects from its own addresses only, remove \"transparent\"")
        }
        if arg.text == "off" {
            withSettings { $0.bind = .some(nil) }
            return
        }
        if arg.text.contains("$") {
            throw ConfigError("variables in \"proxy_bind\" are not supported by ferry", at: arg.location,
                              hint: "write one of this host's addresses, e.g. \"proxy_bind 192.0.2.10;\" (binding to the client's $remote_addr would also need \"transparent\")")
        }
        guard let address = AddressSyntax.local(arg.text) else {
            throw ConfigError("invalid address \"\(arg.text)\" in \"proxy_bind\" directive", at: arg.location,
                              hint: "write an IPv4 address or an IPv6 address, optionally with a port (\"192.0.2.10\", \"[2001:db8::10]:0\"), or \"off\"; host names are not resolved here")
        }
        withSettings { $0.bind = .some(LocalBind(address: address, location: d.location)) }
    }

    /// `limit_conn_rate off;` or `limit_conn_rate RATE [burst=N];` with RATE as `10r/s` or `30r/m`.
    func limitConnRate(_ d: Directive) throws {
        let arg = d.arguments[0]
        if arg.text == "off" {
            if d.arguments.count > 1 { throw invalidParameter(d.arguments[1], known: []) }
            withSettings { $0.connectionRate = .some(nil) }
            return
        }
        guard let milli = ConfigBuilder.rate(arg.text) else {
            throw ConfigError("invalid rate \"\(arg.text)\"", at: arg.location, hint: "write it as \"10r/s\" or \"30r/m\"")
        }
        var rate = ConnectionRateConfig(milliPerSecond: milli)
        if d.arguments.count == 2 {
            let b = d.arguments[1]
            guard let (key, value) = parameter(b), key == "burst" else { throw invalidParameter(b, known: ["burst="]) }
            guard let n = Units.number(value), n >= 0 else {
                throw ConfigError("invalid burst value \"\(value)\"", at: b.location)
            }
            rate.burst = n
        }
        withSettings { $0.connectionRate = .some(rate) }
    }

    /// nginx's rate syntax: a positive whole number of requests per second or per minute,
    /// kept in thousandths per second.
    static func rate(_ text: String) -> Int? {
        let perSecond = text.hasSuffix("r/s"), perMinute = text.hasSuffix("r/m")
        guard perSecond || perMinute, let n = Units.number(String(text.dropLast(3))), n >= 1, n <= 1_000_000 else { return nil }
        return perSecond ? n * 1000 : n * 1000 / 60
    }

    /// `proxy_upload_rate RATE;` / `proxy_download_rate RATE;`: bytes per second, nginx's size
    /// syntax (`100k`, `1m`), 0 = unlimited. nginx 1.17 also takes variables; ferry does not.
    func proxyRate(_ d: Directive) throws {
        let arg = d.arguments[0]
        if arg.text.contains("$") {
            throw ConfigError("variables in \"\(d.name)\" are not supported by ferry", at: arg.location,
                              hint: "write a fixed rate in bytes per second, e.g. \"\(d.name) 100k;\"")
        }
        guard let rate = Units.size(arg.text) else {
            throw invalidValue(d, arg, hint: "write a rate in bytes per second, optionally with k or m (\"100k\" is 102400), or 0 for no limit")
        }
        if d.name == "proxy_upload_rate" { withSettings { $0.uploadRate = rate } } else { withSettings { $0.downloadRate = rate } }
    }

    /// ngx_stream_realip_module's `set_real_ip_from ADDRESS | CIDR | unix:`: which senders' PROXY
    /// headers are believed. Several accumulate; a server block's own list replaces the stream's.
    func setRealIPFrom(_ d: Directive) throws {
        let arg = d.arguments[0]
        let match: AccessRule.Match
        if arg.text == "unix:" {
            match = .unixSockets
        } else if let (address, prefix, masked) = AddressSyntax.cidr(arg.text) {
            if masked { warn("low address bits of \(arg.text) are meaningless", at: arg.location) }
            match = .cidr(address: address, prefixLength: prefix)
        } else {
            let hint = arg.text == "all"
                ? "write \"0.0.0.0/0\" and \"::/0\" to trust every sender"
                : "write the address or CIDR range of the balancer that sends the PROXY header (\"192.0.2.10\", \"10.0.0.0/8\", \"2001:db8::/32\") or \"unix:\"; host names are not resolved here"
            throw ConfigError("invalid address \"\(arg.text)\" in \"set_real_ip_from\" directive", at: arg.location, hint: hint)
        }
        let existing = settings().realIPFrom ?? []
        withSettings { $0.realIPFrom = existing + [match] }
    }

    func accessRule(_ d: Directive) throws {
        let arg = d.arguments[0]
        let match: AccessRule.Match
        if arg.text == "all" {
            match = .all
        } else if arg.text == "unix:" {
            match = .unixSockets
        } else if let (address, prefix, masked) = AddressSyntax.cidr(arg.text) {
            if masked { warn("low address bits of \(arg.text) are meaningless", at: arg.location) }
            match = .cidr(address: address, prefixLength: prefix)
        } else {
            throw invalidParameter(arg, known: [])
        }
        let rule = AccessRule(action: d.name == "allow" ? .allow : .deny, match: match)
        let existing = settings().access ?? []
        withSettings { $0.access = existing + [rule] }
    }

    // MARK: upstream

    func upstream(_ d: Directive) throws {
        let name = d.arguments[0]
        if let other = upstreamBlock(named: name.text) {
            throw ConfigError("duplicate upstream \"\(name.text)\"", at: name.location,
                              hint: other.name == name.text ? nil : "\"\(other.name)\" of \(other.location) is the same name: nginx compares upstream names without regard to case")
        }
        if let (host, port) = ConfigBuilder.splitHostPort(name.text) {
            warn("upstream \"\(name.text)\" cannot be used: \"proxy_pass \(name.text);\" means host \"\(host)\" port \(port), as in nginx; rename the upstream without \":\"",
                 at: name.location)
        }
        currentUpstream = UpstreamDraft(upstream: UpstreamConfig(name: name.text, location: d.location))
        try walk(d.block!, in: .upstream)
        let draft = currentUpstream!
        currentUpstream = nil
        if draft.upstream.servers.isEmpty {
            throw ConfigError("no servers are inside upstream", at: d.location)
        }
        if let method = draft.methodName, method != "least_conn", let backup = draft.backupLocations.first {
            throw ConfigError("invalid parameter \"backup\"", at: backup, hint: "\"\(method)\" does not support backup servers")
        }
        // nginx (ngx_stream_upstream_init_round_robin, under every method): backups only stand
        // in for primary servers, so an upstream without one would never choose any.
        if draft.upstream.servers.allSatisfy(\.backup) {
            throw ConfigError("no servers in upstream \"\(name.text)\"", at: d.location,
                              hint: "every server is \"backup\"; remove \"backup\" from at least one")
        }
        config.upstreams.append(draft.upstream)
    }

    private static let serverParameters = ["weight=", "max_fails=", "fail_timeout=", "max_conns=", "backup", "down", "name=", "agent_port="]

    func upstreamServer(_ d: Directive) throws {
        let address = d.arguments[0]
        let resolved: [ServerAddress]
        switch AddressSyntax.parseAll(address.text, isListen: false, environment: environment) {
        case .success(let a): resolved = a
        case .failure(let problem): throw upstreamAddressError(problem, address)
        }
        var server = UpstreamServerConfig(address: resolved[0], name: address.text, location: d.location)
        var nameArgument: Argument? = nil
        for arg in d.arguments.dropFirst() {
            guard let (key, value) = parameter(arg) else {
                switch arg.text {
                case "backup": server.backup = true; currentUpstream!.backupLocations.append(arg.location)
                case "down": server.down = true
                default: throw invalidParameter(arg, known: ConfigBuilder.serverParameters)
                }
                continue
            }
            switch key {
            case "weight":
                guard !value.isEmpty, value.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else {
                    throw invalidParameter(arg, known: [])
                }
                guard let n = Units.number(value), n <= UpstreamServerConfig.maximumWeight else {
                    throw invalidParameter(arg, known: [], hint: "weight must be at most \(UpstreamServerConfig.maximumWeight)")
                }
                guard n >= 1 else {
                    throw invalidParameter(arg, known: [], hint: "weight must be 1 or more; use \"down\" to take a server out")
                }
                server.weight = n
            case "max_fails":
                guard let n = Units.number(value) else { throw invalidParameter(arg, known: []) }
                server.maxFails = n
            case "fail_timeout":
                guard let t = Units.time(value, secondsOnly: true) else {
                    throw invalidParameter(arg, known: [], hint: Units.timeHint(value, secondsOnly: true))
                }
                server.failTimeout = t
            case "max_conns":
                guard let n = Units.number(value) else { throw invalidParameter(arg, known: []) }
                server.maxConns = n
            case "name":
                guard !value.isEmpty else { throw invalidParameter(arg, known: []) }
                server.name = value
                nameArgument = arg
            case "agent_port":
                guard let port = AddressSyntax.port(value) else { throw invalidParameter(arg, known: []) }
                server.agentPort = port
            default:
                throw invalidParameter(arg, known: ConfigBuilder.serverParameters)
            }
        }
        // nginx makes a peer of every address of a name, each with the line's parameters.
        if resolved.count > 1, let arg = nameArgument {
            throw ConfigError("\"\(arg.text)\" names one server, but \"\(address.text)\" has \(resolved.count) addresses (\(resolved.map(\.written).joined(separator: ", ")))",
                              at: arg.location, hint: "write one \"server\" per address, each with its own \"name=\"")
        }
        for a in resolved {
            server.address = a
            if nameArgument == nil { server.name = a.written }
            try checkNameIsUnique(server, d)
            currentUpstream!.upstream.servers.append(server)
        }
    }

    /// The admin socket, reload and the logs tell servers apart by `name=` (else the address as
    /// written): two servers of one upstream answering to the same name would make `set server
    /// u/NAME` and a reload pick one of them silently. Two servers without `name=` on the same
    /// address stay allowed, as in nginx (it is how some configurations double a weight).
    private func checkNameIsUnique(_ server: UpstreamServerConfig, _ d: Directive) throws {
        let explicit = server.name != server.address.written
        // An explicit name clashes with another's name or written address; a server without
        // one answers to its address, which clashes only with another's explicit name.
        // (Read and written through `currentUpstream!` in place: a local copy of the draft
        // would make each insert copy the dictionaries.)
        let byName = currentUpstream!.explicitNames[server.name]
        let byAddress = explicit ? currentUpstream!.writtenAddresses[server.name] : nil
        if let first = [byName, byAddress].compactMap({ $0 }).min() {
            let other = currentUpstream!.upstream.servers[first]
            let at = d.arguments.first { $0.text == "name=" + server.name } ?? d.arguments[0]
            throw ConfigError("duplicate server name \"\(server.name)\"", at: at.location,
                              hint: "\(other.location) already answers to it; give each server of an upstream its own \"name=\"")
        }
        let index = currentUpstream!.upstream.servers.count
        if explicit { currentUpstream!.explicitNames[server.name] = index }
        if currentUpstream!.writtenAddresses[server.address.written] == nil {
            currentUpstream!.writtenAddresses[server.address.written] = index
        }
    }

    /// The one address a directive that takes one (metrics_listen) stands for: a host name
    /// with several gives its first, and a warning naming the rest.
    private func parseOneAddress(_ arg: Argument) -> Result<ServerAddress, AddressSyntax.Problem> {
        AddressSyntax.parseAll(arg.text, isListen: true, environment: environment).map { all in
            guard all.count > 1 else { return all[0] }
            diagnostics.append(Diagnostic(level: .warn,
                message: "\"\(arg.text)\" has \(all.count) addresses (\(all.map(\.written).joined(separator: ", "))); ferry uses only the first, \(all[0].written)",
                location: arg.location, hint: "write the address itself to choose another"))
            return ServerAddress(written: arg.text, endpoint: all[0].endpoint)
        }
    }

    private func upstreamAddressError(_ problem: AddressSyntax.Problem, _ address: Argument) -> ConfigError {
        ConfigError("\(problem.phrase) in upstream \"\(address.text)\"", at: address.location, hint: AddressSyntax.bracketHint(address.text))
    }

    private func setMethod(_ method: BalancingMethodConfig, _ d: Directive) {
        if currentUpstream!.methodName != nil { warn("load balancing method redefined", at: d.location) }
        currentUpstream!.methodName = d.name
        currentUpstream!.upstream.method = method
    }

    func leastConn(_ d: Directive) throws { setMethod(.leastConn, d) }

    func hash(_ d: Directive) throws {
        let key = d.arguments[0]
        guard key.text == "$remote_addr" || key.text == "$binary_remote_addr" else {
            throw ConfigError("invalid hash key \"\(key.text)\"", at: key.location,
                              hint: "ferry hashes the client address only, use \"$remote_addr\"")
        }
        var consistent = false
        if d.arguments.count == 2 {
            guard d.arguments[1].text == "consistent" else { throw invalidParameter(d.arguments[1], known: ["consistent"]) }
            consistent = true
        }
        setMethod(.hash(consistent: consistent), d)
    }

    func ipHash(_ d: Directive) throws {
        diagnostics.append(Diagnostic(level: .notice,
                                      message: "\"ip_hash\" is not an nginx stream directive; ferry takes it as nginx's http one: a source-IP hash on the first three octets of an IPv4 client (the whole address for IPv6)",
                                      location: d.location))
        setMethod(.ipHash, d)
    }

    func random(_ d: Directive) throws {
        let words = d.arguments.map(\.text)
        if words.count >= 1 && words[0] != "two" { throw invalidParameter(d.arguments[0], known: ["two"]) }
        if words.count == 2 && words[1] != "least_conn" { throw invalidParameter(d.arguments[1], known: ["least_conn"]) }
        setMethod(.random(two: words.count >= 1, leastConn: words.count == 2), d)
    }

    func healthCheck(_ d: Directive) throws {
        var check = HealthCheckConfig()
        let known = ["interval=", "fails=", "passes=", "timeout=", "port="]
        for arg in d.arguments {
            guard let (key, value) = parameter(arg) else { throw invalidParameter(arg, known: known) }
            switch key {
            case "interval":
                check.interval = try positiveTime(value, arg)
            case "timeout":
                check.timeout = try positiveTime(value, arg)
            case "fails":
                guard let n = Units.number(value), n >= 1 else { throw invalidParameter(arg, known: []) }
                check.fails = n
            case "passes":
                guard let n = Units.number(value), n >= 1 else { throw invalidParameter(arg, known: []) }
                check.passes = n
            case "port":
                guard let p = AddressSyntax.port(value) else { throw invalidParameter(arg, known: []) }
                check.port = p
            default:
                throw invalidParameter(arg, known: known)
            }
        }
        currentUpstream!.upstream.healthCheck = check
    }

    func agentCheck(_ d: Directive) throws {
        var port: UInt16?
        var interval: Duration?
        var timeout: Duration?
        var send: String?
        let known = ["port=", "interval=", "timeout=", "send="]
        for arg in d.arguments {
            guard let (key, value) = parameter(arg) else { throw invalidParameter(arg, known: known) }
            switch key {
            case "port":
                guard let p = AddressSyntax.port(value) else { throw invalidParameter(arg, known: []) }
                port = p
            case "interval":
                interval = try positiveTime(value, arg)
            case "timeout":
                timeout = try positiveTime(value, arg)
            case "send":
                // `send="x"` is one word to nginx's lexer with the quotes kept; drop them as meant.
                var text = value
                if text.count >= 2 && text.hasPrefix("\"") && text.hasSuffix("\"") { text = String(text.dropFirst().dropLast()) }
                send = text
            default:
                throw invalidParameter(arg, known: known)
            }
        }
        guard let port else {
            throw ConfigError("\"agent_check\" directive requires a \"port=\" parameter", at: d.location)
        }
        var check = AgentCheckConfig(port: port)
        if let interval { check.interval = interval }
        if let timeout { check.timeout = timeout }
        check.send = send
        currentUpstream!.upstream.agentCheck = check
    }

    /// HAProxy's `on-marked-down shutdown-sessions`, per upstream, in nginx's spelling.
    func onMarkedDown(_ d: Directive) throws {
        guard d.arguments[0].text == "shutdown_sessions" else {
            throw invalidParameter(d.arguments[0], known: ["shutdown_sessions"])
        }
        currentUpstream!.upstream.shutdownSessionsOnDown = true
    }

    // MARK: server (listener)

    /// nginx accepts `listen 12000;` beside `listen 127.0.0.1:12000;` because it binds only the
    /// wildcard and picks the server block by the local address of each connection. ferry binds
    /// every listen address itself, and the kernel refuses the second bind unless both sockets
    /// have SO_REUSEPORT (then the specific one takes its own clients, as nginx would route
    /// them): say so here, where `-t` and a reload see it, rather than at start.
    private func checkNoWildcardOverlap(_ listen: ListenConfig, _ address: Argument) throws {
        guard let seen = wildcardOverlap(listen.address.endpoint, reusePort: listen.reusePort, dualStack: !listen.ipv6Only) else { return }
        throw ConfigError("\"\(listen.address.written)\" overlaps \"\(seen.written)\" of \(seen.location)", at: address.location,
                          hint: "ferry binds each listen address itself; keep only the wildcard address or only the specific ones, or add \"reuseport\" to both")
    }

    /// A listen address seen so far that `endpoint` cannot be bound beside: the same port and
    /// family, one of the two the wildcard, not both with SO_REUSEPORT. An IPv6 wildcard with
    /// `ipv6only=off` also holds the port on every IPv4 address.
    private func wildcardOverlap(_ endpoint: ServerAddress.Endpoint, reusePort: Bool, dualStack: Bool = false) -> (written: String, location: SourceLocation)? {
        func split(_ e: ServerAddress.Endpoint) -> (v6: Bool, host: String, port: UInt16)? {
            switch e {
            case .ipv4(let host, let port): return (false, host, port)
            case .ipv6(let host, let port): return (true, host, port)
            case .unix: return nil
            }
        }
        guard let new = split(endpoint) else { return nil }
        func isWildcard(_ host: String) -> Bool { host == "0.0.0.0" || host == "::" }
        for (other, seen) in listenAddresses {
            guard let old = split(other), old.port == new.port, !(seen.reusePort && reusePort) else { continue }
            let sameFamily = old.v6 == new.v6 && isWildcard(old.host) != isWildcard(new.host)
            let acrossFamilies = old.v6 != new.v6
                && ((old.v6 && old.host == "::" && seen.dualStack) || (new.v6 && new.host == "::" && dualStack))
            guard sameFamily || acrossFamilies else { continue }
            return (seen.written, seen.location)
        }
        return nil
    }

    func listener(_ d: Directive) throws {
        currentListener = ListenerDraft(location: d.location)
        try walk(d.block!, in: .server)
        let draft = currentListener!
        currentListener = nil
        if draft.listens.isEmpty { throw ConfigError("no \"listen\" is defined for server", at: d.location) }
        if draft.proxyPass == nil { throw ConfigError("no \"proxy_pass\" is defined for server", at: d.location) }
        listeners.append(draft)
    }

    func listen(_ d: Directive) throws {
        let address = d.arguments[0]
        let resolved: [ServerAddress]
        switch AddressSyntax.parseAll(address.text, isListen: true, environment: environment) {
        case .success(let a): resolved = a
        case .failure(let problem):
            throw ConfigError("\(problem.phrase) in \"\(address.text)\" of the \"listen\" directive", at: address.location,
                              hint: AddressSyntax.bracketHint(address.text))
        }
        var listen = ListenConfig(address: resolved[0], location: d.location)
        var ipv6Only: Bool? = nil
        let known = ["backlog=", "reuseport", "so_keepalive=", "proxy_protocol", "bind", "ipv6only=", "rcvbuf=", "sndbuf=", "fastopen="]
        for arg in d.arguments.dropFirst() {
            if let hint = DirectiveTable.listenHints[arg.text] { throw invalidParameter(arg, known: [], hint: hint) }
            guard let (key, value) = parameter(arg) else {
                switch arg.text {
                case "reuseport": listen.reusePort = true
                case "proxy_protocol": listen.proxyProtocol = true
                // nginx binds a wildcard address once and tells its servers apart by the local
                // address; `bind` asks for a socket of this address's own. ferry gives every
                // listen address its own socket already, so there is nothing to change.
                case "bind": break
                default: throw invalidParameter(arg, known: known)
                }
                continue
            }
            switch key {
            case "ipv6only":
                guard value == "on" || value == "off" else {
                    throw ConfigError("the invalid \"\(arg.text)\" parameter", at: arg.location, hint: "write \"ipv6only=on\" or \"ipv6only=off\"")
                }
                if resolved.contains(where: { if case .ipv6 = $0.endpoint { true } else { false } }) { ipv6Only = value == "on" } else {
                    warn("\"ipv6only\" applies to IPv6 listen addresses only; ignored for \"\(address.text)\"", at: arg.location)
                }
            case "rcvbuf", "sndbuf":
                guard let size = Units.size(value) else {
                    throw ConfigError("invalid \(key) \"\(arg.text)\"", at: arg.location, hint: "write a size in bytes, optionally with k or m, e.g. \"\(key)=256k\"")
                }
                // The socket option is an int: nginx would pass the overflowed value on.
                guard size <= Int(Int32.max) else {
                    throw ConfigError("invalid \(key) \"\(arg.text)\"", at: arg.location, hint: "the kernel takes at most 2147483647 bytes (2047m); the buffers it grants are capped by net.core.rmem_max/wmem_max anyway")
                }
                if key == "rcvbuf" { listen.receiveBuffer = size } else { listen.sendBuffer = size }
            case "fastopen":
                guard let n = Units.number(value), n <= Int(Int32.max) else {
                    throw ConfigError("invalid fastopen \"\(arg.text)\"", at: arg.location, hint: "write the most connections waiting for their handshake with data, e.g. \"fastopen=256\"")
                }
                listen.fastOpen = n
            case "backlog":
                guard let n = Units.number(value), n >= 1 else {
                    throw ConfigError("invalid backlog \"\(value)\"", at: arg.location)
                }
                listen.backlog = n
            case "so_keepalive":
                switch ConfigBuilder.keepalive(value) {
                case .success(let keepalive): listen.keepalive = keepalive
                case .failure(.invalid): throw ConfigError("invalid so_keepalive value: \"\(value)\"", at: arg.location)
                case .failure(.outOfRange(let what)):
                    // nginx logs the failed setsockopt and listens without it; ferry says so here.
                    throw ConfigError("invalid so_keepalive value: \"\(value)\": \(what)", at: arg.location, hint: ConfigBuilder.keepaliveRangeHint)
                }
            default:
                throw invalidParameter(arg, known: known)
            }
        }
        // nginx listens on every address of a name, each with the line's parameters.
        for a in resolved {
            listen.address = a
            if case .ipv6 = a.endpoint, let v = ipv6Only { listen.ipv6Only = v } else { listen.ipv6Only = true }
            guard listenAddresses[a.endpoint] == nil else {
                throw ConfigError("duplicate \"\(a.written)\" address and port pair", at: address.location)
            }
            try checkNoWildcardOverlap(listen, address)
            listenAddresses[a.endpoint] = (a.written, address.location, listen.reusePort, !listen.ipv6Only)
            currentListener!.listens.append(listen)
        }
    }

    /// Linux's bounds for TCP_KEEPIDLE and TCP_KEEPINTVL (MAX_TCP_KEEPIDLE/INTVL, seconds) and
    /// TCP_KEEPCNT (MAX_TCP_KEEPCNT): setsockopt refuses more.
    static let maxKeepaliveSeconds = 32767
    static let maxKeepaliveCount = 127

    static let keepaliveRangeHint = "Linux takes an idle time and an interval of at most \(maxKeepaliveSeconds)s (9h6m7s) and a count of at most \(maxKeepaliveCount)"

    enum KeepaliveProblem: Error, Equatable {
        case invalid
        /// What is out of the kernel's range, in words for the message.
        case outOfRange(String)
    }

    /// `on`, `off`, or nginx's `[idle][:[interval][:[count]]]` with times in whole seconds, as
    /// ngx_stream_core_listen reads it: `30`, `30:10`, `:10:`, `10m::3`; a part that is empty or
    /// 0 keeps the system's value, and at least one part must set one.
    static func keepalive(_ value: String) -> Result<KeepaliveConfig, KeepaliveProblem> {
        if value == "on" { return .success(.on) }
        if value == "off" { return .success(.off) }
        // The count is everything after the second ":", so "1:2:3:4" has the count "3:4".
        let parts = value.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false).map(String.init)
        func seconds(_ part: String, _ what: String) -> Result<Duration?, KeepaliveProblem> {
            if part.isEmpty { return .success(nil) }
            guard let t = Units.time(part, secondsOnly: true) else { return .failure(.invalid) }
            if t == .zero { return .success(nil) }
            guard t <= .seconds(Int64(maxKeepaliveSeconds)) else { return .failure(.outOfRange("\(what) \(part) is above \(maxKeepaliveSeconds)s")) }
            return .success(t)
        }
        let idle: Duration?, interval: Duration?
        var count: Int? = nil
        switch seconds(parts[0], "idle") {
        case .success(let t): idle = t
        case .failure(let p): return .failure(p)
        }
        switch seconds(parts.count > 1 ? parts[1] : "", "interval") {
        case .success(let t): interval = t
        case .failure(let p): return .failure(p)
        }
        if parts.count > 2, !parts[2].isEmpty {
            guard let n = Units.number(parts[2]), n >= 0 else { return .failure(.invalid) }
            guard n <= maxKeepaliveCount else { return .failure(.outOfRange("count \(parts[2]) is above \(maxKeepaliveCount)")) }
            if n > 0 { count = n }
        }
        if idle == nil && interval == nil && count == nil { return .failure(.invalid) }
        return .success(.tuned(idle: idle, interval: interval, count: count))
    }

    func proxyPass(_ d: Directive) throws {
        currentListener!.proxyPass = d.arguments[0]
    }

    // MARK: after the whole file

    private func finish() throws {
        for reference in formatReferences where !config.logFormats.contains(where: { $0.name == reference.name }) {
            throw ConfigError("unknown log format \"\(reference.name)\"", at: reference.location,
                              hint: NameSuggestion.nearest(to: reference.name, in: config.logFormats.map(\.name)).map { "did you mean \"\($0)\"?" })
        }
        for reference in zoneReferences where !config.limitConnZones.contains(where: { $0.name == reference.name }) {
            throw ConfigError("unknown limit_conn_zone \"\(reference.name)\"", at: reference.location,
                              hint: NameSuggestion.nearest(to: reference.name, in: config.limitConnZones.map(\.name)).map { "did you mean \"\($0)\"?" })
        }
        if let metrics = config.metricsListen,
           let clash = listenAddresses[metrics.address.endpoint].map({ ($0.written, $0.location) })
                ?? wildcardOverlap(metrics.address.endpoint, reusePort: false) {
            throw ConfigError("\"metrics_listen\" address \"\(metrics.address.written)\" is also bound by \"listen \(clash.0)\" (\(clash.1))",
                              at: metrics.location, hint: "give metrics_listen a port of its own")
        }
        config.accessLogs = stream.accessLogs ?? []
        config.listeners = try listeners.map(merge)
        if let n = config.workerConnections, let at = workerConnectionsLocation, n < config.listenSocketCount + 2 {
            // nginx's words (it wants one connection beyond the listen sockets); ferry wants
            // room for one session, a client and its server, which nginx does not check.
            throw ConfigError("\(n) worker_connections are not enough for \(config.listenSocketCount) listening sockets", at: at,
                              hint: "each session holds two connections, its client's and its server's, besides the listen sockets: write at least \(config.listenSocketCount + 2)")
        }
        // nginx refuses such a file only for want of "events"; ferry's short form needs none,
        // so an empty or wrong file (an http-only nginx.conf) would start and do nothing.
        if config.listeners.isEmpty {
            diagnostics.append(Diagnostic(level: .warn, message: "no \"listen\" is defined in \(config.file): ferry will accept no connections",
                                          location: nil, hint: "add a \"server { listen PORT; proxy_pass ADDRESS; }\" block (inside \"stream\" when the file has one)"))
        }
    }

    private func merge(_ draft: ListenerDraft) throws -> ListenerConfig {
        let proxyPass = try proxyTarget(draft.proxyPass!)
        let own = draft.settings
        var listener = ListenerConfig(proxyPass: proxyPass, location: draft.location)
        listener.listens = draft.listens
        if let v = own.connectTimeout ?? stream.connectTimeout { listener.connectTimeout = v }
        if let v = own.idleTimeout ?? stream.idleTimeout { listener.idleTimeout = v }
        if let v = own.nextUpstream ?? stream.nextUpstream { listener.nextUpstream = v }
        if let v = own.halfClose ?? stream.halfClose { listener.halfClose = v }
        if let v = own.nextUpstreamTries ?? stream.nextUpstreamTries { listener.nextUpstreamTries = v }
        if let v = own.nextUpstreamTimeout ?? stream.nextUpstreamTimeout { listener.nextUpstreamTimeout = v }
        if let v = own.sendProxyProtocol ?? stream.sendProxyProtocol { listener.sendProxyProtocol = v }
        listener.access = own.access ?? stream.access ?? []
        listener.limitConn = own.limitConn ?? stream.limitConn ?? []
        listener.connectionRate = own.connectionRate ?? stream.connectionRate ?? nil
        if let v = own.proxyProtocolVersion ?? stream.proxyProtocolVersion { listener.proxyProtocolVersion = v }
        if let v = own.proxyProtocolTimeout ?? stream.proxyProtocolTimeout { listener.proxyProtocolTimeout = v }
        if let v = own.serverKeepalive ?? stream.serverKeepalive { listener.serverKeepalive = v }
        if let v = own.userTimeout ?? stream.userTimeout { listener.userTimeout = v }
        listener.accessLogs = own.accessLogs ?? stream.accessLogs ?? []
        listener.realIPFrom = own.realIPFrom ?? stream.realIPFrom ?? []
        if let v = own.uploadRate ?? stream.uploadRate { listener.uploadRate = v }
        if let v = own.downloadRate ?? stream.downloadRate { listener.downloadRate = v }
        if listener.realIPFrom.isEmpty, let pp = listener.listens.first(where: \.proxyProtocol) {
            diagnostics.append(Diagnostic(level: .notice,
                message: "\"listen \(pp.address.written) proxy_protocol\" without \"set_real_ip_from\": ferry takes the PROXY header's address as the client's from every sender (nginx would keep the sender's own address); add \"set_real_ip_from\" with your balancers' addresses to trust only them",
                location: pp.location))
        }
        if let bind = own.bind ?? stream.bind ?? nil {
            try checkBindFamily(bind, proxyPass)
            listener.bind = bind.address
        }
        return listener
    }

    /// What `proxy_pass` names, by nginx's rule (ngx_stream_upstream_add): the argument is read
    /// as an address first, splitting host from port at the first ":", and an upstream block is
    /// found by that host, case-insensitively. A block has no port, so `proxy_pass u;` is the
    /// upstream, `proxy_pass u:80;` is refused when a block is named "u", and an upstream named
    /// "u:80" is never the target of anything. Any other reading would send traffic somewhere
    /// else than nginx sends it from the same file.
    private func proxyTarget(_ target: Argument) throws -> ProxyTarget {
        let text = target.text
        // nginx evaluates such a proxy_pass per session; ferry picks among servers it knows at
        // load time, so say that, rather than misread "$server_addr" as a host name.
        if text.contains("$") {
            throw ConfigError("variables in \"proxy_pass\" are not supported by ferry", at: target.location,
                              hint: "name an upstream block or write \"host:port\"; for a per-client choice, use an upstream with \"hash $remote_addr\"")
        }
        if text.hasPrefix("unix:") {
            // nginx takes the path as the host and port 0, and refuses a block of that name.
            let path = String(text.dropFirst(5))
            if !path.isEmpty, let block = upstreamBlock(named: path) {
                throw ConfigError("upstream \"\(path)\" may not have port 0", at: target.location,
                                  hint: "\"\(text)\" is read as a unix socket whose path is the name of the upstream of \(block.location); rename that upstream")
            }
            switch AddressSyntax.parseAll(text, isListen: false, environment: environment) {
            case .success(let a): return .addresses(text, a)
            case .failure(let problem): throw upstreamAddressError(problem, target)
            }
        }
        if text.contains("/") {
            let hint = text.contains("://")
                ? "a stream proxy_pass takes no scheme: write \"host:port\" or an upstream name, e.g. \"proxy_pass \(ConfigBuilder.withoutScheme(text));\""
                : nil
            throw ConfigError("invalid host in upstream \"\(text)\"", at: target.location, hint: hint)
        }
        guard let (host, portText) = ConfigBuilder.splitHostPort(text) else {
            if let block = upstreamBlock(named: text) { return .upstream(block.name) }
            let hint: String
            if let near = NameSuggestion.nearest(to: text, in: config.upstreams.map(\.name)) {
                hint = "no upstream is named \"\(text)\"; did you mean \"\(near)\"?"
            } else if IPText.parseDecimalIPv4(text) != nil || text.hasPrefix("[") {
                hint = "add the server's port: \"\(text):PORT\""
            } else {
                hint = "no upstream is named \"\(text)\"; write an upstream name or \"host:port\""
            }
            throw ConfigError("no port in upstream \"\(text)\"", at: target.location, hint: hint)
        }
        guard let port = AddressSyntax.port(portText) else {
            throw upstreamAddressError(.invalidPort, target)
        }
        if let block = upstreamBlock(named: host) {
            throw ConfigError("upstream \"\(host)\" may not have port \(port)", at: target.location,
                              hint: "\"\(host)\" is the upstream of \(block.location), whose servers carry their own ports: write \"proxy_pass \(host);\" to use it, or rename it to connect to \(text) directly")
        }
        switch AddressSyntax.parseAll(text, isListen: false, environment: environment) {
        case .success(let a):
            return .addresses(text, a)
        case .failure(.hostNotFound):
            // nginx resolves after parsing and names the host alone.
            let hint = upstreamBlock(named: text).map {
                "the upstream of \($0.location) is not this: \"\(text)\" is read as host \"\(host)\" and port \(port), as nginx does, so no proxy_pass can name an upstream whose name has a \":\""
            }
            throw ConfigError("host not found in upstream \"\(host)\"", at: target.location, hint: hint)
        case .failure(let problem):
            throw upstreamAddressError(problem, target)
        }
    }

    /// The upstream block nginx would match a proxy_pass host against (ngx_strncasecmp).
    private func upstreamBlock(named host: String) -> UpstreamConfig? {
        let key = host.lowercased()
        return config.upstreams.first { $0.name.lowercased() == key }
    }

    /// nginx's split (ngx_parse_inet_url): the port follows the first ":" outside brackets;
    /// nil when there is none.
    static func splitHostPort(_ text: String) -> (host: String, port: String)? {
        var searchFrom = text.startIndex
        if text.hasPrefix("["), let close = text.firstIndex(of: "]") { searchFrom = close }
        guard let colon = text[searchFrom...].firstIndex(of: ":") else { return nil }
        return (String(text[..<colon]), String(text[text.index(after: colon)...]))
    }

    /// `http://127.0.0.1:13000/` as `127.0.0.1:13000`, for the hint.
    static func withoutScheme(_ text: String) -> String {
        let parts = text.split(separator: "/", omittingEmptySubsequences: true)
        return parts.count >= 2 ? String(parts[1]) : text
    }

    /// A socket binds only an address of its own family: nginx accepts the file and then fails
    /// every session that picks a server of another family (`bind() failed`, status 500). Said
    /// here instead, where `-t` and a reload see it.
    private func checkBindFamily(_ bind: LocalBind, _ target: ProxyTarget) throws {
        let servers: [(address: ServerAddress, location: SourceLocation, upstream: String?)]
        switch target {
        case .upstream(let name):
            servers = config.upstream(named: name)!.servers.map { ($0.address, $0.location, name) }
        case .addresses(_, let all):
            servers = all.map { ($0, bind.location, nil) }
        }
        let bindFamily = ServerAddress.familyName(bind.address.endpoint)
        for s in servers where ServerAddress.familyName(s.address.endpoint) != bindFamily {
            let which = s.upstream.map { "server \"\(s.address.written)\" of upstream \"\($0)\" (\(s.location))" }
                ?? "proxy_pass \"\(s.address.written)\""
            throw ConfigError("\"proxy_bind \(bind.address.written)\" is \(bindFamily), but \(which) is \(ServerAddress.familyName(s.address.endpoint))",
                              at: bind.location,
                              hint: "a connection can only come from an address of the server's family; give the server block that proxies there \"proxy_bind off;\" or an address of that family, and keep servers of one family per upstream")
        }
    }
}
