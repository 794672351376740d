import XCTest
@testable import FerryCore

/// The files a user meets: the shipped examples, a real nginx stream config, and -t/-T.
final class ConfigFilesTests: XCTestCase {
    static let fixture = repositoryRoot + "/Tests/Fixtures/nginx-stream.conf"

    static func examples() -> [String] {
        let paths = ConfigEnvironment.system.glob(repositoryRoot + "/examples/*.conf")
        return paths
    }

    func testEveryExampleLoads() throws {
        let examples = Self.examples()
        XCTAssertGreaterThanOrEqual(examples.count, 3, "examples/ not found from \(repositoryRoot)")
        for path in examples {
            XCTAssertNoThrow(try ConfigLoader.load(path: path), path)
        }
        let cccam = try ConfigLoader.load(path: repositoryRoot + "/examples/cccam.conf").config
        XCTAssertEqual(cccam.upstreams[0].method, .leastConn)
        XCTAssertEqual(cccam.upstreams[0].agentCheck?.port, 9707)
        XCTAssertEqual(cccam.logFormats[0].escape, .json)
        XCTAssertEqual(cccam.listeners[0].listens[0].address.endpoint, .ipv4(host: "0.0.0.0", port: 12000))
        let quickstart = try ConfigLoader.load(path: repositoryRoot + "/examples/quickstart.conf").config
        XCTAssertEqual(quickstart.upstreams[0].servers.map(\.address.endpoint),
                       (19001...19003).map { .ipv4(host: "127.0.0.1", port: UInt16($0)) })
        XCTAssertEqual(quickstart.listeners[0].listens[0].address.endpoint, .ipv4(host: "127.0.0.1", port: 12000))
    }

    func testNginxStreamFixtureLoadsWithOneWarningPerIgnoredDirective() throws {
        let loaded = try ConfigLoader.load(path: Self.fixture)
        XCTAssertEqual(loaded.diagnostics.map(\.message), [
            #""load_module" directive is ignored by ferry"#,
            #""zone" directive is ignored by ferry"#, #""tcp_nodelay" directive is ignored by ferry"#,
        ])
        let c = loaded.config
        XCTAssertEqual(c.workerProcesses, .auto)
        XCTAssertEqual(c.workerRlimitNofile, 8192)
        XCTAssertEqual(c.workerConnections, 1024)
        XCTAssertEqual(c.upstreams.map(\.name), ["backend", "sticky"])
        XCTAssertEqual(c.upstreams[0].servers.map(\.weight), [5, 1, 1])
        XCTAssertEqual(c.upstreams[0].servers[2].address.endpoint, .ipv6(host: "::1", port: 19003))
        XCTAssertEqual(c.upstreams[1].method, .hash(consistent: true))
        XCTAssertEqual(c.listeners.map(\.idleTimeout), [.seconds(1800), .seconds(3600), .seconds(1800)])
        XCTAssertEqual(c.listeners.map(\.connectTimeout), [.seconds(3), .seconds(3), .seconds(3)])
        XCTAssertEqual(c.listeners[0].access.count, 3)
        XCTAssertEqual(c.listeners[0].listens[0].keepalive, .tuned(idle: .seconds(1800), interval: nil, count: 10))
        XCTAssertEqual(c.listeners[1].accessLogs, [])
        XCTAssertEqual(c.listeners[2].accessLogs.map(\.path), ["fixture-access.log"])
        XCTAssertEqual(c.listeners[2].proxyPass, .address(ServerAddress(written: "127.0.0.1:19006", endpoint: .ipv4(host: "127.0.0.1", port: 19006))))
    }

    /// `nginx -t` in a scratch prefix (removed when this goes), for configs written there.
    final class NginxCheck {
        static let nginx = "/usr/sbin/nginx"
        let prefix: String

        /// Skips the test when nginx is not installed.
        init() throws {
            guard access(NginxCheck.nginx, X_OK) == 0 else { throw XCTSkip("nginx is not installed") }
            var template = Array("/tmp/ferry-nginx-XXXXXX".utf8CString)
            guard let made = mkdtemp(&template) else { throw XCTSkip("mkdtemp failed") }
            prefix = String(cString: made)
        }

        deinit { _ = try? runProgram("/bin/rm", ["-rf", prefix]) }

        /// Writes `text` to `name` in the prefix; returns its path.
        func write(_ name: String, _ text: String) -> String {
            let path = prefix + "/" + name
            let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
            _ = text.withCString { Glibc.write(fd, $0, strlen($0)) }
            close(fd)
            return path
        }

        /// nginx -t's exit status for the file at `path`.
        func test(_ path: String, quiet: Bool = false) throws -> Int32 {
            try runProgram(NginxCheck.nginx, ["-q", "-t", "-c", path, "-p", prefix + "/",
                                              "-g", "pid \(prefix)/nginx.pid; error_log \(prefix)/error.log;"], quiet: quiet)
        }
    }

    func testNginxItselfAcceptsTheFixture() throws {
        let nginx = try NginxCheck()
        XCTAssertEqual(try nginx.test(Self.fixture), 0, "nginx -t rejected \(Self.fixture)")
        // The check can fail: nginx rejects a ferry extension, so a pass above means something.
        let extended = nginx.write("extended.conf", "events {}\nstream { upstream u { server 127.0.0.1:1 agent_port=9707; } }\n")
        XCTAssertEqual(try nginx.test(extended, quiet: true), 1)
    }

    /// Directives ferry ignores still have their values read as nginx reads them: each line
    /// loads in ferry exactly when it loads in nginx (flag, number, size, offset, time, level).
    func testIgnoredDirectivesRefuseWhatNginxRefuses() throws {
        let nginx = try NginxCheck()
        let main = ["daemon maybe;", "daemon OFF;", "master_process 1;", "pcre_jit on;", "worker_priority -5;",
                    "worker_priority x5;", "worker_priority +3;", "timer_resolution 100ms;", "timer_resolution 1x;",
                    "worker_rlimit_core 2g;", "worker_rlimit_core 500m;", "worker_rlimit_core lots;"]
        let stream = ["tcp_nodelay yes;", "tcp_nodelay on;", "proxy_buffer_size 16k;", "proxy_buffer_size 1g;",
                      "proxy_buffer_size big;", "resolver_timeout 30s;", "resolver_timeout soon;", "preread_buffer_size 2x;",
                      "preread_timeout 5;", "limit_conn_log_level warn;", "limit_conn_log_level WARN;", "limit_conn_log_level debug;",
                      "proxy_socket_keepalive ON;", "upstream z { zone z 64k; server 127.0.0.1:1; }", "upstream z { zone z 10g; server 127.0.0.1:1; }",
                      "upstream z { zone z 1k; server 127.0.0.1:1; }", "upstream z { zone z 0; server 127.0.0.1:1; }",
                      "variables_hash_max_size 1024;", "variables_hash_max_size 1k;", "proxy_requests -1;", "proxy_responses 2;"]
        // Inside events { }; worker_connections too, which ferry honours (0 is refused by both
        // for want of room beside the listen socket).
        let events = ["worker_connections 0;", "epoll_events 512;", "epoll_events lots;", "use epoll;", "use poll;", "use kqueue;", "multi_accept on;", "multi_accept maybe;", "accept_mutex off;",
                      "accept_mutex_delay 500ms;", "accept_mutex_delay soon;", "worker_aio_requests 32;", "worker_connections 64;",
                      "worker_connections many;"]
        var refused = 0
        enum Place { case main, events, stream }
        for (line, place) in main.map({ ($0, Place.main) }) + events.map({ ($0, Place.events) }) + stream.map({ ($0, Place.stream) }) {
            let text = "load_module /usr/lib/nginx/modules/ngx_stream_module.so;\n\(place == .main ? line : "")\nevents {\(place == .events ? line : "")}\n"
                + "stream {\n\(place == .stream ? line : "")\nupstream u { server 127.0.0.1:1; }\nserver { listen 127.0.0.1:12999; proxy_pass u; }\n}\n"
            let nginxLoads = try nginx.test(nginx.write("ignored.conf", text), quiet: true) == 0
            let ferryLoads = (try? ConfigLoader.load(text: text, file: "t.conf")) != nil
            XCTAssertEqual(ferryLoads, nginxLoads, "\(line) nginx \(nginxLoads ? "loads" : "refuses") it, ferry \(ferryLoads ? "loads" : "refuses") it")
            if !nginxLoads { refused += 1 }
        }
        XCTAssertEqual(refused, 23, "the table holds values both refuse, not only ones both take")
    }

    /// `-T` of a plain nginx config is itself a config nginx loads: ferry spells out every
    /// effective value, but adds none of its own parameters that the operator did not write.
    func testNginxAcceptsTheDumpOfThePlainNginxFixture() throws {
        let nginx = try NginxCheck()
        let dump = ConfigRenderer.render(try ConfigLoader.load(path: Self.fixture).config)
        // What ferry ignores (and so does not print) nginx needs back.
        XCTAssertTrue(dump.contains("events { worker_connections 1024; }"), dump)
        let text = "load_module /usr/lib/nginx/modules/ngx_stream_module.so;\n" + dump
        XCTAssertEqual(try nginx.test(nginx.write("dump.conf", text)), 0,
                       "nginx -t rejected ferry's dump of \(Self.fixture):\n\(text)")
        XCTAssertTrue(dump.contains("proxy_protocol on;"), "the fixture should exercise proxy_protocol")
    }

    /// `-T` prints what ferry runs; loading that text must give the same Config.
    func testDumpRoundTripsToAnEqualConfig() throws {
        var sources: [(String, Config)] = []
        for path in Self.examples() + [Self.fixture] { sources.append((path, try ConfigLoader.load(path: path).config)) }
        for (name, _, _) in ConfigBuildTests.cases {
            let input = ConfigBuildTests.cases.first { $0.name == name }!.input
            sources.append((name, try load(input).config))
        }
        for (name, original) in sources {
            let text = ConfigRenderer.render(original)
            do {
                let reloaded = try load(text).config
                XCTAssertEqual(reloaded.normalized(), original.normalized(), "\(name):\n\(text)")
                XCTAssertEqual(ConfigRenderer.render(reloaded).split(separator: "\n").dropFirst(),
                               text.split(separator: "\n").dropFirst(), name)
            } catch {
                XCTFail("\(name): dump does not load: \(error)\n\(text)")
            }
        }
    }

    func testRendererQuotesWhatTheLexerWouldSplit() {
        let cases: [(String, String)] = [
            ("plain", "plain"), ("", "\"\""), ("a b", "\"a b\""), ("a;b", "\"a;b\""), ("#x", "\"#x\""),
            ("x#", "x#"), ("q\"\\", "\"q\\\"\\\\\""), ("t\tn\n", "\"t\\tn\\n\""), ("{}", "\"{}\""), ("é", "\"é\""),
        ]
        for (word, quoted) in cases { XCTAssertEqual(ConfigRenderer.quote(word), quoted, word) }
    }

    func testWorkerShutdownTimeoutIsReadAndBounded() throws {
        let loaded = try ConfigLoader.load(text: "worker_shutdown_timeout 1m30s;\nserver { listen 80; proxy_pass 127.0.0.1:1; }",
                                           environment: offlineEnvironment(files: [:]))
        XCTAssertEqual(loaded.config.shutdownTimeout, .seconds(90))
        XCTAssertThrowsError(try ConfigLoader.load(text: "worker_shutdown_timeout soon;", environment: offlineEnvironment(files: [:]))) {
            XCTAssertEqual("\($0)", "\"worker_shutdown_timeout\" directive invalid value \"soon\" in ferry.conf:1:25")
        }
    }

    func testBusyPollingTakesMicrosecondsOrNginxTimesAndRoundTrips() throws {
        func load(_ value: String) throws -> Config {
            try ConfigLoader.load(text: "busy_polling \(value);\nserver { listen 80; proxy_pass 127.0.0.1:1; }",
                                  environment: offlineEnvironment(files: [:])).config
        }
        for (value, micros) in [("50us", 50), ("1ms", 1000), ("10ms", 10_000), ("off", 0)] {
            let config = try load(value)
            XCTAssertEqual(config.busyPollingMicros, micros, value)
            let again = try ConfigLoader.load(text: ConfigRenderer.render(config), environment: offlineEnvironment(files: [:]))
            XCTAssertEqual(again.config.busyPollingMicros, micros, "ferry -T output of \(value)")
        }
        XCTAssertEqual(try ConfigLoader.load(text: "server { listen 80; proxy_pass 127.0.0.1:1; }",
                                             environment: offlineEnvironment(files: [:])).config.busyPollingMicros, 0, "off unless asked for")
        for value in ["fast", "0us", "0", "11ms", "1s", "-5us", "on"] {
            XCTAssertThrowsError(try load(value), value) {
                XCTAssertEqual("\($0)", "\"busy_polling\" directive invalid value \"\(value)\" in ferry.conf:1:14; "
                               + "write \"off\" or a time from 1us to 10ms, such as \"50us\"")
            }
        }
    }

    func testCheckPrintsLikeNginx() throws {
        var out = "", err = ""
        let ok = ConfigCheck.test(path: "t.conf", dump: true, environment: offlineEnvironment(files: [
            "t.conf": "daemon off;\nupstream b { server 127.0.0.1:1; }\nserver { listen 80; proxy_pass b; }",
        ]), stdout: { out += $0 }, stderr: { err += $0 })
        XCTAssertEqual(ok, 0)
        XCTAssertEqual(err, """
            ferry: [warn] "daemon" directive is ignored by ferry in t.conf:1:1
            ferry: the configuration file t.conf syntax is ok
            ferry: configuration file t.conf test is successful

            """)
        XCTAssertEqual(out, """
            # ferry: effective configuration of t.conf
            worker_processes 1;
            worker_shutdown_timeout 30s;

            stream {
                access_log off;

                upstream b {
                    server 127.0.0.1:1 weight=1 max_fails=1 fail_timeout=10s max_conns=0;
                }

                server {
                    listen 80 backlog=511;
                    proxy_pass b;
                    proxy_connect_timeout 1m;
                    proxy_timeout 10m;
                    proxy_half_close on;
                    proxy_next_upstream on;
                    proxy_next_upstream_tries 0;
                    proxy_next_upstream_timeout 0s;
                    proxy_protocol off;
                    access_log off;
                }
            }

            """)
        out = ""; err = ""
        let failed = ConfigCheck.test(path: "bad.conf", dump: true, environment: offlineEnvironment(files: ["bad.conf": "user x;\nlisen 1;"]),
                                      stdout: { out += $0 }, stderr: { err += $0 })
        XCTAssertEqual(failed, 1)
        XCTAssertEqual(out, "")
        XCTAssertEqual(err, """
            ferry: [warn] "user" directive is ignored by ferry in bad.conf:1:1
            ferry: [emerg] unknown directive "lisen" in bad.conf:2:1; did you mean "listen"?
            ferry: configuration file bad.conf test failed

            """)
    }
}
