import XCTest
@testable import FerryCore

/// `set weight` / `set server ... weight` and `set maxconn server` values and the exact answer for each, as HAProxy 2.6
/// gives them (AdminHAProxyDiffTests runs the ones HAProxy can take against the real thing).
final class AdminWeightTests: XCTestCase {
    enum Expect: Equatable { case weight(Int), error(String) }

    static let cases: [(text: String?, initial: Int, expect: Expect)] = [
        ("5", 5, .weight(5)),
        ("0", 5, .weight(0)),
        ("256", 5, .weight(256)),
        ("+5", 5, .weight(5)),                       // strtol takes a sign
        ("-0", 5, .weight(0)),
        ("0000000005", 5, .weight(5)),               // leading zeros are still five
        ("00000000000000000007", 5, .weight(7)),
        ("50%", 5, .weight(2)),                      // integer arithmetic, as HAProxy
        ("100%", 200, .weight(200)),
        ("0000000000100%", 5, .weight(5)),
        ("6000%", 5, .weight(256)),                  // capped, not refused
        ("99999999999999%", 5, .weight(256)),
        ("100%", 1000, .weight(1000)),               // a configured weight above 256 can be restored
        ("200%", 1000, .weight(1000)),
        ("1000000%", 1_000_000, .weight(1_000_000)),
        (nil, 5, .error("Require <weight> or <weight%>.")),
        ("", 5, .error("Require <weight> or <weight%>.")),
        ("-1", 5, .error("Absolute weight can only be between 0 and 256 inclusive.")),
        ("257", 5, .error("Absolute weight can only be between 0 and 256 inclusive.")),
        ("99999999999999999999", 5, .error("Absolute weight can only be between 0 and 256 inclusive.")),
        ("300x", 5, .error("Absolute weight can only be between 0 and 256 inclusive.")),   // range before garbage
        ("-5%", 5, .error("Relative weight must be positive.")),
        ("1e3", 5, .error("Trailing garbage in weight string")),
        ("50.5%", 5, .error("Trailing garbage in weight string")),
        ("5%%", 5, .error("Trailing garbage in weight string")),
        ("50%x", 5, .error("Trailing garbage in weight string")),
        ("abc", 5, .error("Empty weight string empty or preceded by garbage")),
        ("%", 5, .error("Empty weight string empty or preceded by garbage")),
        ("+", 5, .error("Empty weight string empty or preceded by garbage")),
        ("\u{0665}", 5, .error("Empty weight string empty or preceded by garbage")),   // Arabic-Indic five is not a digit here
    ]

    static let maxConnCases: [(text: String, expect: Expect)] = [
        ("30", .weight(30)), ("0", .weight(0)), ("+7", .weight(7)), ("-0", .weight(0)), ("007", .weight(7)),
        ("99999999999999999999", .weight(Int.max)),
        ("", .error("maxconn string empty or preceded by garbage")),
        ("x", .error("maxconn string empty or preceded by garbage")),
        ("5x", .error("Trailing garbage in maxconn string")),
        ("5%", .error("Trailing garbage in maxconn string")),
        ("-5", .error("maxconn must not be negative; 0 means unlimited.")),
    ]

    func testEveryMaxConnTextGivesItsExactAnswer() {
        for (text, expect) in Self.maxConnCases {
            switch AdminCommands.parseMaxConn(text) {
            case .success(let n): XCTAssertEqual(.weight(n), expect, text)
            case .failure(let answer): XCTAssertEqual(.error(answer.text), expect, text)
            }
        }
    }

    func testEveryWeightTextGivesItsExactAnswer() {
        for (text, initial, expect) in Self.cases {
            let got: Expect
            switch AdminCommands.parseWeight(text, initial: initial) {
            case .success(let w): got = .weight(w)
            case .failure(let answer):
                XCTAssertEqual(answer.kind, .error, "\(text ?? "nil")")
                got = .error(answer.text)
            }
            XCTAssertEqual(got, expect, "\(text ?? "nil") with initial weight \(initial)")
        }
    }
}
