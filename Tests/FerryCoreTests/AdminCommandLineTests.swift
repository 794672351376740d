import XCTest
@testable import FerryCore

/// How one admin line splits into commands and words (HAProxy's CLI rules).
final class AdminCommandLineTests: XCTestCase {
    private func split(_ line: String) -> [[String]] { AdminCommandLine.split(line).map(\.words) }

    func testSemicolonsSpacesAndEscapes() {
        XCTAssertEqual(split("show info; show stat"), [["show", "info"], ["show", "stat"]])
        XCTAssertEqual(split("set weight u/b 3\t;;"), [["set", "weight", "u/b", "3"], [], []])
        XCTAssertEqual(split("add server u/b 127.0.0.1:1\\;x"), [["add", "server", "u/b", "127.0.0.1:1;x"]])
        XCTAssertEqual(split("a\\ b c"), [["a b", "c"]])
        XCTAssertEqual(split(""), [[]])
    }

    /// A combining mark after `;` or a space makes one grapheme with it; the separator must
    /// still separate, as it does for HAProxy, which reads bytes.
    func testSeparatorFollowedByACombiningMarkStillSeparates() {
        XCTAssertEqual(split("show info;\u{301}show stat"), [["show", "info"], ["\u{301}show", "stat"]])
        XCTAssertEqual(split("get \u{301}weight"), [["get", "\u{301}weight"]])
        XCTAssertEqual(split("a\\\u{301}b"), [["a\u{301}b"]], "the backslash escapes the mark alone")
    }
}
