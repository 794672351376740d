import XCTest
@testable import FerryCore

/// The HTTP request-line parser of the metrics responder and the exposition text builder.
final class MetricsFormatTests: XCTestCase {
    func parse(_ s: String) -> HTTPRequestHead.Parse { HTTPRequestHead.parse(Array(s.utf8)) }

    func testRequestHeads() {
        XCTAssertEqual(parse("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"), .request(HTTPRequestHead(method: "GET", target: "/metrics", version: "HTTP/1.1")))
        XCTAssertEqual(parse("GET /metrics?x=1 HTTP/1.0\n\n"), .request(HTTPRequestHead(method: "GET", target: "/metrics?x=1", version: "HTTP/1.0")))
        XCTAssertEqual(parse("GET /metrics HTTP/1.1\r\nHost: x\r\n"), .incomplete)
        XCTAssertEqual(parse("GET /metrics HTTP/1.1"), .incomplete)
        for bad in ["GET /metrics\r\n\r\n", "GET  /metrics HTTP/1.1\r\n\r\n", "get /metrics HTTP/1.1\r\n\r\n",
                    "GET metrics HTTP/1.1\r\n\r\n", "GET /metrics HTTP/2.0\r\n\r\n", "GET /m\u{01} HTTP/1.1\r\n\r\n", "\r\n \r\n\r\n"] {
            XCTAssertEqual(parse(bad), .bad, bad)
        }
        // Empty lines before the request line are skipped (RFC 9112 2.2); only empty lines so
        // far is a request still to come (the size limit and timeout bound the wait).
        XCTAssertEqual(parse("\r\n\r\nGET /metrics HTTP/1.1\r\n\r\n"), .request(HTTPRequestHead(method: "GET", target: "/metrics", version: "HTTP/1.1")))
        XCTAssertEqual(parse("\nGET /metrics HTTP/1.0\n\n"), .request(HTTPRequestHead(method: "GET", target: "/metrics", version: "HTTP/1.0")))
        XCTAssertEqual(parse("\r\n\r\n"), .incomplete)
        if case .request(let h) = parse("HEAD /metrics?a HTTP/1.1\r\n\r\n") { XCTAssertEqual(h.path, "/metrics") } else { XCTFail() }
    }

    func testExpositionText() {
        var m = PrometheusText()
        m.family("ferry_x_total", .counter, "Help with \\ and\nnewline.")
        m.sample("ferry_x_total", [("a", "q\"uo\\te\nd")], 3)
        m.sample("ferry_x_total", [], UInt64(4))
        XCTAssertEqual(m.text, """
            # HELP ferry_x_total Help with \\\\ and\\nnewline.
            # TYPE ferry_x_total counter
            ferry_x_total{a="q\\"uo\\\\te\\nd"} 3
            ferry_x_total 4

            """)
    }

    func testResponseFraming() {
        let r = String(decoding: HTTPResponse.make(status: 404, reason: "Not Found", body: "no\n"), as: UTF8.self)
        XCTAssertEqual(r, "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 3\r\nConnection: close\r\n\r\nno\n")
        let head = String(decoding: HTTPResponse.make(status: 200, reason: "OK", body: "abc", headOnly: true), as: UTF8.self)
        XCTAssertTrue(head.hasSuffix("Content-Length: 3\r\nConnection: close\r\n\r\n"), head)
    }
}
