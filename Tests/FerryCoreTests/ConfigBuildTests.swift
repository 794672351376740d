import XCTest
@testable import FerryCore

/// Well-formed inputs and the whole typed Config each must produce (locations blanked;
/// ConfigLocationTests checks those).
final class ConfigBuildTests: XCTestCase {
    static let b1 = upstreamServer(v4("127.0.0.1:1", "127.0.0.1", 1))
    static let minimal = config {
        $0.upstreams = [upstream("b", .roundRobin, [b1])]
        $0.listeners = [listener([listen(v4("80", "0.0.0.0", 80))], .upstream("b"))]
    }

    static let cases: [(name: String, input: String, expected: Config)] = [
        ("short form without stream block",
         "upstream b { server 127.0.0.1:1; }\nserver { listen 80; proxy_pass b; }", minimal),
        ("stream wrapper means the same",
         "stream {\n upstream b { server 127.0.0.1:1; }\n server { listen 80; proxy_pass b; }\n}", minimal),
        ("server order before upstream",
         "server { listen 80; proxy_pass b; }\nupstream b { server 127.0.0.1:1; }", minimal),
        ("listen parameters nginx has",
         "server { listen [::]:80 bind ipv6only=off rcvbuf=64k sndbuf=100000 fastopen=16; listen 81 bind; proxy_pass 127.0.0.1:1; }",
         config {
             $0.listeners = [listener([
                 listen(ServerAddress(written: "[::]:80", endpoint: .ipv6(host: "::", port: 80))) {
                     $0.ipv6Only = false; $0.receiveBuffer = 65536; $0.sendBuffer = 100000; $0.fastOpen = 16
                 },
                 listen(v4("81", "0.0.0.0", 81)),
             ], .address(v4("127.0.0.1:1", "127.0.0.1", 1)))]
         }),
        ("every server parameter",
         "upstream b { server 127.0.0.1:1 weight=5 max_fails=0 fail_timeout=1m30s max_conns=100 backup down name=alpha agent_port=9707; server 127.0.0.1:2; least_conn; }\nserver { listen 80; proxy_pass b; }",
         config {
             $0.upstreams = [upstream("b", .leastConn, [upstreamServer(v4("127.0.0.1:1", "127.0.0.1", 1)) {
                 $0.weight = 5; $0.maxFails = 0; $0.failTimeout = .seconds(90); $0.maxConns = 100
                 $0.backup = true; $0.down = true; $0.name = "alpha"; $0.agentPort = 9707
             }, upstreamServer(v4("127.0.0.1:2", "127.0.0.1", 2))])]
             $0.listeners = minimal.listeners
         }),
        ("hash consistent, IPv6 and unix servers, resolved names",
         "upstream b { hash $binary_remote_addr consistent; server [::1]:2; server unix:/tmp/b.sock; server backend.example:7; server v6.example:8; }\nserver { listen 80; proxy_pass b; }",
         config {
             $0.upstreams = [upstream("b", .hash(consistent: true), [
                 upstreamServer(ServerAddress(written: "[::1]:2", endpoint: .ipv6(host: "::1", port: 2))),
                 upstreamServer(ServerAddress(written: "unix:/tmp/b.sock", endpoint: .unix(path: "/tmp/b.sock"))),
                 upstreamServer(v4("backend.example:7", "192.0.2.10", 7)),
                 upstreamServer(ServerAddress(written: "v6.example:8", endpoint: .ipv6(host: "2001:db8::10", port: 8))),
             ])]
             $0.listeners = minimal.listeners
         }),
        ("ip_hash is nginx's ip_hash: source hash on an IPv4 client's first three octets",
         "upstream b { ip_hash; server 127.0.0.1:1; }\nserver { listen 80; proxy_pass b; }",
         config { $0.upstreams = [upstream("b", .ipHash, [b1])]; $0.listeners = minimal.listeners }),
        ("random two least_conn",
         "upstream b { random two least_conn; server 127.0.0.1:1; }\nserver { listen 80; proxy_pass b; }",
         config { $0.upstreams = [upstream("b", .random(two: true, leastConn: true), [b1])]; $0.listeners = minimal.listeners }),
        ("plain random",
         "upstream b { random; server 127.0.0.1:1; }\nserver { listen 80; proxy_pass b; }",
         config { $0.upstreams = [upstream("b", .random(two: false, leastConn: false), [b1])]; $0.listeners = minimal.listeners }),
        ("health and agent checks",
         "upstream b { server 127.0.0.1:1; health_check interval=2s fails=3 passes=2 timeout=500ms port=8080; agent_check port=9707 interval=10s timeout=1s send=\"ping\\n\"; }\nserver { listen 80; proxy_pass b; }",
         config {
             var health = HealthCheckConfig()
             health.interval = .seconds(2); health.fails = 3; health.passes = 2
             health.timeout = Duration(milliseconds: 500); health.port = 8080
             var agent = AgentCheckConfig(port: 9707)
             agent.interval = .seconds(10); agent.timeout = .seconds(1); agent.send = "ping\n"
             $0.upstreams = [upstream("b", .roundRobin, [b1]) { $0.healthCheck = health; $0.agentCheck = agent }]
             $0.listeners = minimal.listeners
         }),
        ("listen forms and parameters",
         "server { listen 12000 backlog=64 reuseport; listen *:12001 so_keepalive=on; listen [::1]:12002 so_keepalive=30m::10 proxy_protocol; listen unix:/tmp/l.sock; listen localhost:12003 so_keepalive=off; proxy_pass 127.0.0.1:9; }",
         config {
             $0.listeners = [listener([
                 listen(v4("12000", "0.0.0.0", 12000)) { $0.backlog = 64; $0.reusePort = true },
                 listen(v4("*:12001", "0.0.0.0", 12001)) { $0.keepalive = .on },
                 listen(ServerAddress(written: "[::1]:12002", endpoint: .ipv6(host: "::1", port: 12002))) {
                     $0.keepalive = .tuned(idle: .seconds(1800), interval: nil, count: 10); $0.proxyProtocol = true
                 },
                 listen(ServerAddress(written: "unix:/tmp/l.sock", endpoint: .unix(path: "/tmp/l.sock"))),
                 listen(v4("localhost:12003", "127.0.0.1", 12003)),
             ], .address(v4("127.0.0.1:9", "127.0.0.1", 9)))]
         }),
        ("stream-level proxy settings are inherited, server settings win; flags take any case, as nginx's",
         "stream { proxy_connect_timeout 5s; proxy_timeout 1h30m; proxy_next_upstream OFF; proxy_next_upstream_tries 3; proxy_next_upstream_timeout 10; proxy_protocol on; proxy_half_close off;\n server { listen 1; proxy_pass 127.0.0.1:9; }\n server { listen 2; proxy_pass 127.0.0.1:9; proxy_timeout 500ms; proxy_protocol Off; proxy_half_close On; } }",
         config {
             let target = ProxyTarget.address(v4("127.0.0.1:9", "127.0.0.1", 9))
             let inherited: (inout ListenerConfig) -> Void = {
                 $0.connectTimeout = .seconds(5); $0.idleTimeout = .seconds(5400); $0.nextUpstream = false
                 $0.nextUpstreamTries = 3; $0.nextUpstreamTimeout = .seconds(10); $0.sendProxyProtocol = true
                 $0.halfClose = false
             }
             $0.listeners = [
                 listener([listen(v4("1", "0.0.0.0", 1))], target, inherited),
                 listener([listen(v4("2", "0.0.0.0", 2))], target) {
                     inherited(&$0); $0.idleTimeout = Duration(milliseconds: 500); $0.sendProxyProtocol = false
                     $0.halfClose = true
                 },
             ]
         }),
        ("access rules: own rules replace the stream level's",
         "allow 192.168.1.0/24;\nallow 2001:db8::/32;\nallow unix:;\ndeny all;\nserver { listen 1; proxy_pass 127.0.0.1:9; }\nserver { listen 2; proxy_pass 127.0.0.1:9; allow 10.1.2.3; deny all; }",
         config {
             let target = ProxyTarget.address(v4("127.0.0.1:9", "127.0.0.1", 9))
             $0.listeners = [
                 listener([listen(v4("1", "0.0.0.0", 1))], target) {
                     $0.access = [
                         AccessRule(action: .allow, match: .cidr(address: [192, 168, 1, 0], prefixLength: 24)),
                         AccessRule(action: .allow, match: .cidr(address: [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 12), prefixLength: 32)),
                         AccessRule(action: .allow, match: .unixSockets),
                         AccessRule(action: .deny, match: .all),
                     ]
                 },
                 listener([listen(v4("2", "0.0.0.0", 2))], target) {
                     $0.access = [AccessRule(action: .allow, match: .cidr(address: [10, 1, 2, 3], prefixLength: 32)),
                                  AccessRule(action: .deny, match: .all)]
                 },
             ]
         }),
        ("limit_conn inherited from the stream level",
         "stream { limit_conn_zone $binary_remote_addr zone=perip:10m; limit_conn_zone $remote_addr zone=other:64k; limit_conn perip 10;\n server { listen 1; proxy_pass 127.0.0.1:9; }\n server { listen 2; proxy_pass 127.0.0.1:9; limit_conn other 2; limit_conn perip 3; } }",
         config {
             let target = ProxyTarget.address(v4("127.0.0.1:9", "127.0.0.1", 9))
             $0.limitConnZones = [LimitConnZoneConfig(name: "perip", key: "$binary_remote_addr", size: 10 << 20),
                                  LimitConnZoneConfig(name: "other", key: "$remote_addr", size: 64 << 10)]
             $0.listeners = [
                 listener([listen(v4("1", "0.0.0.0", 1))], target) { $0.limitConn = [LimitConnConfig(zone: "perip", count: 10)] },
                 listener([listen(v4("2", "0.0.0.0", 2))], target) {
                     $0.limitConn = [LimitConnConfig(zone: "other", count: 2), LimitConnConfig(zone: "perip", count: 3)]
                 },
             ]
         }),
        ("proxy_bind: inherited, overridden, cancelled with off; IPv6 and a fixed port",
         "stream { proxy_bind 127.0.0.2;\n upstream six { server [::1]:9; }\n server { listen 1; proxy_pass 127.0.0.1:9; }\n server { listen 2; proxy_pass 127.0.0.1:9; proxy_bind 127.0.0.3:4000; }\n server { listen 3; proxy_pass unix:/tmp/s; proxy_bind off; }\n server { listen 4; proxy_pass six; proxy_bind [::1]; }\n server { listen 5; proxy_pass six; proxy_bind ::1; } }",
         config {
             let target = ProxyTarget.address(v4("127.0.0.1:9", "127.0.0.1", 9))
             $0.upstreams = [upstream("six", .roundRobin, [upstreamServer(ServerAddress(written: "[::1]:9", endpoint: .ipv6(host: "::1", port: 9)))])]
             $0.listeners = [
                 listener([listen(v4("1", "0.0.0.0", 1))], target) { $0.bind = v4("127.0.0.2", "127.0.0.2", 0) },
                 listener([listen(v4("2", "0.0.0.0", 2))], target) { $0.bind = v4("127.0.0.3:4000", "127.0.0.3", 4000) },
                 listener([listen(v4("3", "0.0.0.0", 3))], .address(ServerAddress(written: "unix:/tmp/s", endpoint: .unix(path: "/tmp/s")))),
                 listener([listen(v4("4", "0.0.0.0", 4))], .upstream("six")) { $0.bind = ServerAddress(written: "[::1]", endpoint: .ipv6(host: "::1", port: 0)) },
                 listener([listen(v4("5", "0.0.0.0", 5))], .upstream("six")) { $0.bind = ServerAddress(written: "::1", endpoint: .ipv6(host: "::1", port: 0)) },
             ]
         }),
        ("set_real_ip_from: several accumulate, a server block's own list replaces the stream's",
         "stream { set_real_ip_from 10.0.0.1; set_real_ip_from 2001:db8::/32;\n server { listen 1 proxy_protocol; proxy_pass 127.0.0.1:9; }\n server { listen 2; proxy_pass 127.0.0.1:9; set_real_ip_from unix:; set_real_ip_from 192.0.2.0/24; } }",
         config {
             let target = ProxyTarget.address(v4("127.0.0.1:9", "127.0.0.1", 9))
             var pp = listen(v4("1", "0.0.0.0", 1))
             pp.proxyProtocol = true
             $0.listeners = [
                 listener([pp], target) {
                     $0.realIPFrom = [.cidr(address: [10, 0, 0, 1], prefixLength: 32),
                                      .cidr(address: [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 12), prefixLength: 32)]
                 },
                 listener([listen(v4("2", "0.0.0.0", 2))], target) {
                     $0.realIPFrom = [.unixSockets, .cidr(address: [192, 0, 2, 0], prefixLength: 24)]
                 },
             ]
         }),
        ("proxy_upload_rate and proxy_download_rate: inherited, overridden, 0 = unlimited",
         "stream { proxy_upload_rate 100k; proxy_download_rate 1m;\n server { listen 1; proxy_pass 127.0.0.1:9; }\n server { listen 2; proxy_pass 127.0.0.1:9; proxy_upload_rate 0; proxy_download_rate 1500; } }",
         config {
             let target = ProxyTarget.address(v4("127.0.0.1:9", "127.0.0.1", 9))
             $0.listeners = [
                 listener([listen(v4("1", "0.0.0.0", 1))], target) { $0.uploadRate = 102_400; $0.downloadRate = 1 << 20 },
                 listener([listen(v4("2", "0.0.0.0", 2))], target) { $0.uploadRate = 0; $0.downloadRate = 1500 },
             ]
         }),
        ("access and identity directives, inherited from the stream level and overridden",
         "stream { limit_conn_rate 30r/m; proxy_protocol_version 2; proxy_protocol_timeout 5s; proxy_socket_keepalive ON; tcp_user_timeout 90s;\n server { listen 1 proxy_protocol; proxy_pass 127.0.0.1:9; proxy_protocol on; }\n server { listen 2; proxy_pass 127.0.0.1:9; limit_conn_rate 10r/s burst=20; proxy_protocol_version 1; proxy_socket_keepalive 60:10s:3; tcp_user_timeout 0; }\n server { listen 3; proxy_pass 127.0.0.1:9; limit_conn_rate off; proxy_socket_keepalive Off; } }",
         config {
             let target = ProxyTarget.address(v4("127.0.0.1:9", "127.0.0.1", 9))
             var pp = listen(v4("1", "0.0.0.0", 1))
             pp.proxyProtocol = true
             $0.listeners = [
                 listener([pp], target) {
                     $0.sendProxyProtocol = true; $0.connectionRate = ConnectionRateConfig(milliPerSecond: 500)
                     $0.proxyProtocolVersion = 2; $0.proxyProtocolTimeout = .seconds(5); $0.serverKeepalive = .on; $0.userTimeout = .seconds(90)
                 },
                 listener([listen(v4("2", "0.0.0.0", 2))], target) {
                     $0.connectionRate = ConnectionRateConfig(milliPerSecond: 10_000, burst: 20)
                     $0.proxyProtocolVersion = 1; $0.proxyProtocolTimeout = .seconds(5)
                     $0.serverKeepalive = .tuned(idle: .seconds(60), interval: .seconds(10), count: 3); $0.userTimeout = .zero
                 },
                 listener([listen(v4("3", "0.0.0.0", 3))], target) {
                     $0.proxyProtocolVersion = 2; $0.proxyProtocolTimeout = .seconds(5); $0.userTimeout = .seconds(90)
                 },
             ]
         }),
        ("log formats and access logs, inherited and off",
         "stream { log_format j escape=json '{\"c\":\"$remote_addr\",' \"\\\"t\\\":$session_time}\"; log_format p $remote_addr;\n access_log /tmp/a.log j buffer=32k flush=5s; access_log /tmp/b.log;\n server { listen 1; proxy_pass 127.0.0.1:9; }\n server { listen 2; proxy_pass 127.0.0.1:9; access_log off; }\n server { listen 3; proxy_pass 127.0.0.1:9; access_log /tmp/c.log p; } }",
         config {
             let target = ProxyTarget.address(v4("127.0.0.1:9", "127.0.0.1", 9))
             var j = LogFormatConfig(name: "j", format: "{\"c\":\"$remote_addr\",\"t\":$session_time}")
             j.escape = .json
             $0.logFormats = [j, LogFormatConfig(name: "p", format: "$remote_addr")]
             var a = AccessLogConfig(path: "/tmp/a.log", format: "j")
             a.buffer = 32 << 10; a.flush = .seconds(5)
             $0.accessLogs = [a, AccessLogConfig(path: "/tmp/b.log", format: nil)]
             $0.listeners = [
                 listener([listen(v4("1", "0.0.0.0", 1))], target) { $0.accessLogs = [a, AccessLogConfig(path: "/tmp/b.log", format: nil)] },
                 listener([listen(v4("2", "0.0.0.0", 2))], target),
                 listener([listen(v4("3", "0.0.0.0", 3))], target) { $0.accessLogs = [AccessLogConfig(path: "/tmp/c.log", format: "p")] },
             ]
         }),
        ("main context operations",
         "worker_processes auto;\nworker_rlimit_nofile 65536;\nerror_log /var/log/ferry.log warn;\nadmin_socket /tmp/f.sock mode=0660;",
         config {
             $0.workerProcesses = .auto; $0.workerRlimitNofile = 65536
             $0.errorLog = ErrorLogConfig(path: "/var/log/ferry.log", level: .warn)
             var admin = AdminSocketConfig(path: "/tmp/f.sock"); admin.mode = 0o660
             $0.adminSocket = admin
         }),
        ("stream error_log wins over main's wherever written; admin_socket in stream",
         "stream { error_log stderr debug; admin_socket /tmp/s.sock; }\nerror_log /var/log/x.log;\nworker_processes 4;",
         config {
             $0.workerProcesses = .count(4)
             $0.errorLog = ErrorLogConfig(path: "stderr", level: .debug)
             $0.adminSocket = AdminSocketConfig(path: "/tmp/s.sock")
         }),
        ("ignored nginx directives leave no trace in the config",
         "load_module modules/ngx_stream_module.so;\nuser nginx;\ndaemon off;\nevents { use epoll; multi_accept on; accept_mutex off; accept_mutex_delay 500ms; worker_aio_requests 32; }\nstream { tcp_nodelay on; }",
         Config(file: "")),
        ("worker_connections, as nginx writes it in events", "events {\n  worker_connections 1024;\n}\nupstream b { server 127.0.0.1:1; }\nserver { listen 80; proxy_pass b; }",
         config {
             $0.workerConnections = 1024
             $0.upstreams = minimal.upstreams
             $0.listeners = minimal.listeners
         }),
        ("pid file, as nginx", "pid /run/ferry.pid;", config { $0.pidFile = "/run/ferry.pid" }),
        ("nginx token rules: quotes, escapes, comments, words with braces",
         "upstream \"b\" { server '127.0.0.1:1' name=a#b; # comment ; { }\n}\nserver { listen 80; proxy_pass b; }\nlog_format x 'it\\'s \\\\ \\t' \"\\x\" ${status};",
         config {
             $0.upstreams = [upstream("b", .roundRobin, [upstreamServer(v4("127.0.0.1:1", "127.0.0.1", 1)) { $0.name = "a#b" }])]
             $0.listeners = minimal.listeners
             $0.logFormats = [LogFormatConfig(name: "x", format: "it's \\ \t\\x${status}")]
         }),
    ]

    func testEveryWellFormedInputBuildsItsConfig() throws {
        XCTAssertGreaterThanOrEqual(Self.cases.count, 15)
        for (name, input, expected) in Self.cases {
            do {
                let loaded = try load(input)
                XCTAssertEqual(loaded.config.normalized(), expected, name)
            } catch {
                XCTFail("\(name): \(error)")
            }
        }
    }

    /// worker_connections in sessions, as nginx's workers would hold them together; values
    /// that multiply past Int.max mean "as many as fit", never a trap.
    func testWorkerConnectionsInSessions() throws {
        let listen = "server { listen 1; proxy_pass 127.0.0.1:2; }"
        func sessions(_ main: String) throws -> Int? { Runtime.sessionsWanted(try load(main + "\n" + listen).config) }
        XCTAssertNil(try sessions("events { }"))
        XCTAssertEqual(try sessions("events { worker_connections 7; }"), 3)
        XCTAssertEqual(try sessions("worker_processes 4;\nevents { worker_connections 1024; }"), 4 * 511)
        XCTAssertEqual(try sessions("worker_processes auto;\nevents { worker_connections 1024; }"), ResourceLimits.onlineCPUs() * 511)
        XCTAssertEqual(try sessions("worker_processes 1000;\nevents { worker_connections 9223372036854775807; }"), Int.max)
        XCTAssertEqual(Runtime.configuredMaxconn(try load("worker_processes 1000;\nevents { worker_connections 9223372036854775807; }\n" + listen).config, capacity: 9000), 9000)
    }

    func testWarningsAndNotesAreValuesWithLocations() throws {
        let loaded = try load("load_module m.so;\nevents {}\nupstream b {\n  ip_hash;\n  least_conn;\n  server 127.0.0.1:1;\n}\nallow 10.0.0.1/8;")
        XCTAssertEqual(loaded.diagnostics, [
            Diagnostic(level: .warn, message: #""load_module" directive is ignored by ferry"#, location: SourceLocation(file: "t.conf", line: 1, column: 1)),
            Diagnostic(level: .notice, message: #""ip_hash" is not an nginx stream directive; ferry takes it as nginx's http one: a source-IP hash on the first three octets of an IPv4 client (the whole address for IPv6)"#,
                       location: SourceLocation(file: "t.conf", line: 4, column: 3)),
            Diagnostic(level: .warn, message: "load balancing method redefined", location: SourceLocation(file: "t.conf", line: 5, column: 3)),
            Diagnostic(level: .warn, message: "low address bits of 10.0.0.1/8 are meaningless", location: SourceLocation(file: "t.conf", line: 8, column: 7)),
            Diagnostic(level: .warn, message: #"no "listen" is defined in t.conf: ferry will accept no connections"#, location: nil,
                       hint: #"add a "server { listen PORT; proxy_pass ADDRESS; }" block (inside "stream" when the file has one)"#),
        ])
        XCTAssertEqual(loaded.config.upstreams[0].method, .leastConn)
    }

    /// An nginx.conf loads: its http and mail blocks are skipped, nginx tuning that means nothing
    /// to ferry is ignored, each with a warning; the stream part runs.
    func testTheNonStreamPartsOfAnNginxConfAreSkippedWithAWarning() throws {
        let loaded = try load("""
            thread_pool default threads=32 max_queue=65536;
            http { map $scheme $p { http 80; https 443; mail 25; stream 1; upstream 2; server 3; events 4; } upstream h { server 127.0.0.1:8080; } server { listen 80; location / { return 200; } } }
            mail { server { listen 25; protocol smtp; } }
            stream {
                variables_hash_max_size 2048;
                server { listen 12000; proxy_requests 1; proxy_responses 1; proxy_pass 127.0.0.1:1; }
            }
            """)
        XCTAssertEqual(loaded.diagnostics.map(\.description), [
            #""thread_pool" directive is ignored by ferry in t.conf:1:1"#,
            #""http" block is skipped: ferry runs only the "stream" part of an nginx configuration, and nothing in this block is served in t.conf:2:1"#,
            #""mail" block is skipped: ferry runs only the "stream" part of an nginx configuration, and nothing in this block is served in t.conf:3:1"#,
            #""variables_hash_max_size" directive is ignored by ferry in t.conf:5:5"#,
            #""proxy_requests" directive is ignored by ferry in t.conf:6:28"#,
            #""proxy_responses" directive is ignored by ferry in t.conf:6:46"#,
        ])
        XCTAssertEqual(loaded.config.listeners.map { $0.listens[0].address.written }, ["12000"])
    }

    /// nginx refuses an empty file only for want of "events"; ferry would start and do nothing.
    func testAFileWithoutListenWarnsThatNothingWillBeAccepted() throws {
        for text in ["", "# only a comment\n", "http { }", "upstream b { server 127.0.0.1:1; }", "stream { }"] {
            XCTAssertEqual(try load(text).diagnostics.filter { $0.location == nil }.map(\.description), [
                #"no "listen" is defined in t.conf: ferry will accept no connections; add a "server { listen PORT; proxy_pass ADDRESS; }" block (inside "stream" when the file has one)"#,
            ], text)
        }
        XCTAssertEqual(try load("server { listen 1; proxy_pass 127.0.0.1:2; }").diagnostics, [])
    }

    /// ferry keeps trusting every PROXY sender without set_real_ip_from, and says so where
    /// nginx would behave differently; with one, or without a proxy_protocol listener, nothing.
    func testAProxyProtocolListenerWithoutSetRealIPFromGetsANotice() throws {
        let loaded = try load("server {\n  listen 1;\n  listen 2 proxy_protocol;\n  proxy_pass 127.0.0.1:9;\n}")
        XCTAssertEqual(loaded.diagnostics, [
            Diagnostic(level: .notice,
                       message: #""listen 2 proxy_protocol" without "set_real_ip_from": ferry takes the PROXY header's address as the client's from every sender (nginx would keep the sender's own address); add "set_real_ip_from" with your balancers' addresses to trust only them"#,
                       location: SourceLocation(file: "t.conf", line: 3, column: 3)),
        ])
        XCTAssertEqual(try load("set_real_ip_from 10.0.0.1;\nserver { listen 2 proxy_protocol; proxy_pass 127.0.0.1:9; }").diagnostics, [])
        XCTAssertEqual(try load("server { listen 2; proxy_pass 127.0.0.1:9; }").diagnostics, [])
    }

    /// nginx's shorter so_keepalive forms: the parts after the first may be left off, and an
    /// empty or 0 part keeps the system's value.
    func testSoKeepaliveTakesNginxsShortForms() throws {
        let loaded = try load("server { listen 1 so_keepalive=30; listen 2 so_keepalive=30:10; listen 3 so_keepalive=0:10:0; listen 4 so_keepalive=9h6m7s:32767:127; proxy_pass 127.0.0.1:9; }")
        XCTAssertEqual(loaded.config.listeners[0].listens.map(\.keepalive), [
            .tuned(idle: .seconds(30), interval: nil, count: nil),
            .tuned(idle: .seconds(30), interval: .seconds(10), count: nil),
            .tuned(idle: nil, interval: .seconds(10), count: nil),
            .tuned(idle: .seconds(32767), interval: .seconds(32767), count: 127),
        ])
    }

    func testAnAccessLogBufferBelowTheMinimumIsRaisedWithAWarning() throws {
        let loaded = try load("access_log /tmp/a.log buffer=100;\nserver { listen 1; proxy_pass 127.0.0.1:9; }")
        XCTAssertEqual(loaded.config.listeners[0].accessLogs.map(\.buffer), [LogFile.minimumBufferSize])
        XCTAssertEqual(loaded.diagnostics, [
            Diagnostic(level: .warn, message: "access_log buffer=100 is below 512 bytes; ferry uses 512",
                       location: SourceLocation(file: "t.conf", line: 1, column: 23)),
        ])
        let fine = try load("access_log /tmp/a.log buffer=512;\nserver { listen 1; proxy_pass 127.0.0.1:9; }")
        XCTAssertEqual(fine.diagnostics, [])
        let largest = try load("access_log /tmp/a.log buffer=64m;\nserver { listen 1; proxy_pass 127.0.0.1:9; }")
        XCTAssertEqual(largest.config.listeners[0].accessLogs.map(\.buffer), [LogFile.maximumBufferSize])
    }

    func testLocationsPointAtTheDirectives() throws {
        let loaded = try load("\n  upstream b {\n\tserver 127.0.0.1:1;\n  }\nserver {\n    listen 80;\n    proxy_pass b;\n}")
        let t = { (line: Int, column: Int) in SourceLocation(file: "t.conf", line: line, column: column) }
        XCTAssertEqual(loaded.config.upstreams[0].location, t(2, 3))
        XCTAssertEqual(loaded.config.upstreams[0].servers[0].location, t(3, 2))
        XCTAssertEqual(loaded.config.listeners[0].location, t(5, 1))
        XCTAssertEqual(loaded.config.listeners[0].listens[0].location, t(6, 5))
    }

    func testLocalhostResolvesThroughTheSystemResolver() throws {
        let loaded = try ConfigLoader.load(text: "upstream b { server localhost:19001; }\nserver { listen 1; proxy_pass b; }", file: "t.conf")
        let endpoint = loaded.config.upstreams[0].servers[0].address.endpoint
        XCTAssertTrue(endpoint == .ipv4(host: "127.0.0.1", port: 19001) || endpoint == .ipv6(host: "::1", port: 19001), "\(endpoint)")
        XCTAssertEqual(loaded.config.upstreams[0].servers[0].name, "localhost:19001")
    }

    func testUnits() {
        let times: [(String, Int64?)] = [
            ("0", 0), ("10", 10_000), ("500ms", 500), ("1h30m", 5_400_000), ("1m30", 90_000), ("2d", 172_800_000),
            ("1w", 604_800_000), ("1w1d1h1m1s1ms", 604_800_000 + 86_400_000 + 3_661_001),
            // ngx_parse_time: "y" and "M" only in whole seconds, "ms" only in milliseconds
            ("1M", nil), ("1y", nil), ("1y1M1w1d1h1m1s1ms", nil),
            ("", nil), ("s", nil), ("1x", nil), ("30m1h", nil), ("1s1s", nil), ("-1", nil), ("1 s", nil),
            ("99999999999999999999", nil), ("9223372036854775807s", nil),
            // nginx's reading: spaces after a unit, a bare number before a space or at the end
            // in seconds, so "1hs" is an hour and "1s5" six seconds.
            ("1h 30m", 5_400_000), ("1h  30m 15", 5_415_000), ("30 ", 30_000), ("1hs", 3_600_000), ("1s5", 6_000),
            ("1ms5", 5_001), ("1 5", 6_000), ("1 s", nil), (" ", nil), ("1s 1m", nil), ("5 ms", nil),
        ]
        for (text, ms) in times { XCTAssertEqual(Units.time(text)?.milliseconds, ms, text) }
        XCTAssertNil(Units.time("5ms", secondsOnly: true))
        let seconds: [(String, Int64?)] = [
            ("10", 10_000), ("1M", 2_592_000_000), ("1y", 31_536_000_000),
            ("1y1M1w1d1h1m1s", 31_536_000_000 + 2_592_000_000 + 604_800_000 + 86_400_000 + 3_661_000),
            ("1y1M1w1d1h1m1s1ms", nil), ("1s500ms", nil), ("1M1y", nil),
            ("1y 1M", 31_536_000_000 + 2_592_000_000),
            // nginx takes seconds up to Int64; past Int64 milliseconds the value saturates.
            ("9999999999999999s", Int64.max), ("9223372036854775807", Int64.max), ("9223372036854775808", nil),
        ]
        for (text, ms) in seconds { XCTAssertEqual(Units.time(text, secondsOnly: true)?.milliseconds, ms, text) }
        let sizes: [(String, Int?)] = [("0", 0), ("512", 512), ("32k", 32768), ("32K", 32768), ("10m", 10 << 20), ("1G", nil), ("1g", nil),
                                       ("1kk", nil), ("k", nil), ("1t", nil), ("99999999999999999g", nil)]
        for (text, bytes) in sizes { XCTAssertEqual(Units.size(text), bytes, text) }
    }

    func testLongDurationsNeverBecomeShortOnes() throws {
        // 18446744074s is 2^64 ns + 0.29 s: a wrapping conversion made it a 0.29 s timeout.
        let loaded = try ConfigLoader.load(text: "upstream b { server 127.0.0.1:1 fail_timeout=18446744074s; health_check interval=18446744074s; }\n"
            + "server { listen 1; proxy_pass b; proxy_timeout 18446744074s; proxy_connect_timeout 18446744073710ms; }", file: "t.conf")
        let listener = loaded.config.listeners[0]
        let upstream = loaded.config.upstreams[0]
        let hundredYears: UInt64 = 100 * 365 * 86_400 * 1_000_000_000
        for (what, nanos) in [("proxy_timeout", listener.idleTimeout.nanoseconds), ("proxy_connect_timeout", listener.connectTimeout.nanoseconds),
                              ("fail_timeout", upstream.servers[0].failTimeout.nanoseconds), ("interval", upstream.healthCheck!.interval.nanoseconds)] {
            XCTAssertGreaterThan(nanos, hundredYears, what)
            // and a deadline that far from a monotonic clock reading does not wrap either
            XCTAssertGreaterThan(UInt64(1) << 62 &+ nanos, nanos, what)
        }
        XCTAssertEqual(Duration(milliseconds: 1500).nanoseconds, 1_500_000_000)
        XCTAssertEqual(Duration(milliseconds: -5).nanoseconds, 0)
    }

    func testListenAddressesThatBindSideBySide() throws {
        // The wildcard of each family on one port, specific addresses on one port, and
        // wildcards on different ports all bind at once; only wildcard + specific clash.
        for text in ["listen 80; listen [::]:80;", "listen 127.0.0.1:80; listen 127.0.0.2:80; listen [::1]:80;",
                     "listen 80; listen 127.0.0.1:81;", "listen [::]:80; listen 127.0.0.1:80;",
                     "listen 80 reuseport; listen 127.0.0.1:80 reuseport;"] {
            XCTAssertNoThrow(try ConfigLoader.load(text: "server { \(text) proxy_pass 127.0.0.1:1; }", file: "t.conf"), text)
        }
    }

    func testNearestNameSuggestion() {
        XCTAssertEqual(NameSuggestion.distance("wieght", "weight"), 1)
        XCTAssertEqual(NameSuggestion.distance("", "abc"), 3)
        XCTAssertEqual(NameSuggestion.nearest(to: "lisen", in: DirectiveTable.names), "listen")
        XCTAssertEqual(NameSuggestion.nearest(to: "proxy_conect_timeout", in: DirectiveTable.names), "proxy_connect_timeout")
        XCTAssertNil(NameSuggestion.nearest(to: "zz", in: ["ab"]))
    }
}
