import XCTest
@testable import FerryCore

/// `metrics_listen` and the variable check of `log_format`: accepted forms and exact messages.
final class ObservabilityConfigTests: XCTestCase {
    static let errors: [(input: String, message: String)] = [
        ("metrics_listen;", #"invalid number of arguments in "metrics_listen" directive in t.conf:1:1"#),
        ("metrics_listen 127.0.0.1:9100 x;", #"invalid number of arguments in "metrics_listen" directive in t.conf:1:1"#),
        ("metrics_listen 127.0.0.1;", #"no port in "127.0.0.1" of the "metrics_listen" directive in t.conf:1:16"#),
        ("metrics_listen 127.0.0.1:99999;", #"invalid port in "127.0.0.1:99999" of the "metrics_listen" directive in t.conf:1:16"#),
        ("metrics_listen nowhere.invalid:9100;", #"host not found in "nowhere.invalid:9100" of the "metrics_listen" directive in t.conf:1:16"#),
        ("metrics_listen 9100;\nmetrics_listen 9101;", #""metrics_listen" directive is duplicate in t.conf:2:1"#),
        ("metrics_listen 9100;\nstream { metrics_listen 9101; }", #""metrics_listen" directive is duplicate in t.conf:2:10"#),
        ("server { listen 1; proxy_pass 127.0.0.1:2; metrics_listen 9100; }", #""metrics_listen" directive is not allowed here in t.conf:1:44"#),
        ("log_format j '$remote_adr';", #"unknown "remote_adr" variable in t.conf:1:14; did you mean "$remote_addr"?"#),
        ("log_format j escape=json '{\"a\":\"$status\",' '\"b\":\"$request\"}';", #"unknown "request" variable in t.conf:1:44"#),
        ("server { listen 1; proxy_pass 127.0.0.1:2; access_log /var/log/per-$remote_addr.log; }",
         #"variables in the path of "access_log" are not supported by ferry in t.conf:1:55; ferry writes one file per access_log line; put the variable in the log_format instead, and split the file afterwards if needed"#),
        ("log_format j '${upstream_adr}';", #"unknown "upstream_adr" variable in t.conf:1:14; did you mean "$upstream_addr"?"#),
        ("log_format j 'a $ b';", #"invalid variable name in "log_format" directive in t.conf:1:14"#),
        ("log_format j '${status';", #"the closing bracket in "log_format" variable is missing in t.conf:1:14"#),
        // Each string is read alone, as nginx reads it: a name or a bracket does not run on into the next.
        ("log_format j '${sta' 'tus}';", #"the closing bracket in "log_format" variable is missing in t.conf:1:14"#),
        ("log_format j 'a $' 'status';", #"invalid variable name in "log_format" directive in t.conf:1:14"#),
        ("log_format j '$remote_addr $nginx_version';",
         #"variable "$nginx_version" is not supported by ferry in t.conf:1:14; ferry is not nginx and will not print a version that is not nginx's; "ferry -v" prints ferry's, which a format can carry as text"#),
        ("log_format j escape=json '{\"sni\":\"${ssl_preread_server_name}\"}';",
         #"variable "$ssl_preread_server_name" is not supported by ferry in t.conf:1:26; ferry relays TLS without reading it (it has no ssl_preread), so it never sees the server name"#),
    ]

    func testEachMalformedInputGivesItsExactMessage() {
        for (input, message) in Self.errors {
            do {
                let loaded = try load(input)
                XCTFail("accepted: \(input)\n→ \(loaded.config)")
            } catch let error as ConfigError {
                XCTAssertEqual(error.description, message, "input: \(input)")
            } catch {
                XCTFail("unexpected error type \(error) for \(input)")
            }
        }
    }

    func testMetricsListenForms() throws {
        XCTAssertEqual(try load("metrics_listen 127.0.0.1:9100;").config.metricsListen?.address, v4("127.0.0.1:9100", "127.0.0.1", 9100))
        XCTAssertEqual(try load("stream { metrics_listen 9100; }").config.metricsListen?.address, v4("9100", "0.0.0.0", 9100))
        XCTAssertEqual(try load("metrics_listen unix:/run/ferry-metrics.sock;").config.metricsListen?.address.endpoint, .unix(path: "/run/ferry-metrics.sock"))
        XCTAssertNil(try load("worker_processes 1;").config.metricsListen)
        // -T prints it, and the printed file loads back to the same value.
        let text = ConfigRenderer.render(try load("metrics_listen 127.0.0.1:9100;").config)
        XCTAssertTrue(text.contains("metrics_listen 127.0.0.1:9100;\n"), text)
        XCTAssertEqual(try load(text).config.metricsListen?.address, v4("127.0.0.1:9100", "127.0.0.1", 9100))
    }

    func testEveryStreamVariableNginxDocumentsForTheIssueIsKnown() throws {
        let names = ["remote_addr", "remote_port", "server_addr", "server_port", "upstream_addr", "bytes_sent", "bytes_received",
                     "session_time", "status", "time_iso8601", "time_local", "msec", "connection", "upstream_connect_time",
                     "upstream_bytes_sent", "upstream_bytes_received", "upstream_session_time"]
        let format = names.map { "$" + $0 }.joined(separator: " ")
        let loaded = try load("log_format all '\(format)';")
        XCTAssertEqual(loaded.config.logFormats.first?.format, format)
    }

    func testPROXYHeaderRealIPFirstByteAndBinaryAddressVariablesLoad() throws {
        let names = ["proxy_protocol_addr", "proxy_protocol_port", "proxy_protocol_server_addr", "proxy_protocol_server_port",
                     "realip_remote_addr", "realip_remote_port", "binary_remote_addr", "upstream_first_byte_time"]
        let format = names.map { "$" + $0 }.joined(separator: " ")
        XCTAssertEqual(try load("log_format pp '\(format)';").config.logFormats.first?.format, format)
    }

    /// nginx ends a variable with its string: '$status' '_ok' is $status then "_ok", and a
    /// later `escape=json` is text. Before, the strings were joined first and `$status_ok` was
    /// an unknown variable.
    func testAVariableEndsWithItsString() throws {
        let loaded = try load("log_format j '$remote_addr:$remote_port $status' '_ok ' '$bytes_sent' 'escape=json';")
        let format = try XCTUnwrap(loaded.config.logFormats.first)
        XCTAssertEqual(format.format, "$remote_addr:$remote_port ${status}_ok ${bytes_sent}escape=json")
        XCTAssertEqual(format.escape, .default)
        guard case .success = LogTemplate.compile(format.format, escape: format.escape) else { return XCTFail("the joined format does not compile") }
        XCTAssertEqual(LogTemplate.bracingTrailingVariable("a ${b}"), "a ${b}")
        XCTAssertEqual(LogTemplate.bracingTrailingVariable("cost $"), "cost $")
        XCTAssertEqual(LogTemplate.bracingTrailingVariable("é$status"), "é${status}")
    }
}
