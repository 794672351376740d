import XCTest
@testable import FerryCore

/// Token sequences as nginx's ngx_conf_read_token would produce them.
final class LexerTests: XCTestCase {
    /// kind shorthand: w word, v variable, q quoted, ; { } and . for end of file.
    static let cases: [(input: String, tokens: [String])] = [
        ("listen 80;", ["w listen 1:1", "w 80 1:8", "; 1:10", ". 1:11"]),
        ("a{b}", ["w a 1:1", "{ 1:2", "w b} 1:3", ". 1:5"]),
        ("a ${x}y $z;", ["w a 1:1", "v ${x}y 1:3", "v $z 1:9", "; 1:11", ". 1:12"]),
        ("a#b # c ; {\nd", ["w a#b 1:1", "w d 2:1", ". 2:2"]),
        ("'x y' \"a\\\"b\" 'c\\'d'", ["q x y 1:1", "q a\"b 1:7", "q c'd 1:14", ". 1:20"]),
        ("\"\\t\\n\\r\\\\\\q\"", ["q \t\n\r\\\\q 1:1", ". 1:13"]),
        // A backslash keeps `;` inside the word but is itself kept: only the six escapes are translated.
        ("w\\;x;", ["w w\\;x 1:1", "; 1:5", ". 1:6"]),
        ("\"a\"{ }", ["q a 1:1", "{ 1:4", "} 1:6", ". 1:7"]),
        ("x\r\n\ty", ["w x 1:1", "w y 2:2", ". 2:3"]),
        ("'' \"\"", ["q  1:1", "q  1:4", ". 1:6"]),
        ("é ok", ["w é 1:1", "w ok 1:4", ". 1:6"]),
        ("\"$v\"", ["q $v 1:1", ". 1:5"]),
    ]

    func testTokenSequences() throws {
        for (input, expected) in Self.cases {
            var lexer = Lexer(text: input, file: "t")
            let tokens = try lexer.tokenize().map { token -> String in
                let kind: String
                switch token.kind {
                case .word: kind = "w"; case .variable: kind = "v"; case .quoted: kind = "q"
                case .semicolon: kind = ";"; case .openBrace: kind = "{"; case .closeBrace: kind = "}"; case .endOfFile: kind = "."
                }
                let text = [.semicolon, .openBrace, .closeBrace, .endOfFile].contains(token.kind) ? "" : " " + token.text
                return "\(kind)\(text) \(token.location.line):\(token.location.column)"
            }
            XCTAssertEqual(tokens, expected, "input: \(input)")
        }
    }

    func testLexerErrors() {
        let cases: [(String, String)] = [
            ("\"abc", #"unterminated quoted string in t:1:1"#),
            ("x\n  'abc\n", #"unterminated quoted string in t:2:3"#),
            ("'a'b", #"unexpected "b" in t:1:4"#),
            ("'a'}", #"unexpected "}" in t:1:4"#),
            ("'a'\u{01}", #"unexpected "\x01" in t:1:4"#),
        ]
        for (input, message) in cases {
            var lexer = Lexer(text: input, file: "t")
            XCTAssertThrowsError(try lexer.tokenize(), input) { XCTAssertEqual(($0 as? ConfigError)?.description, message, input) }
        }
    }

    /// A token that is not UTF-8 is refused where it starts: replaced bytes (U+FFFD) would
    /// make `access_log /var/log/caf\xE9.log` write another file than the one named. In a
    /// comment such bytes are nobody's business.
    func testInvalidUTF8InATokenIsRefusedAndInACommentIgnored() throws {
        for (bytes, column) in [([0x61, 0xff, 0x3b] as [UInt8], 1), (Array("x \"caf".utf8) + [0xe9] + Array("\";".utf8), 3)] {
            var lexer = Lexer(bytes: bytes, file: "t")
            XCTAssertThrowsError(try lexer.tokenize()) { error in
                XCTAssertEqual((error as? ConfigError)?.location, SourceLocation(file: "t", line: 1, column: column))
                XCTAssertTrue("\(error)".contains("not UTF-8"), "\(error)")
            }
        }
        var lexer = Lexer(bytes: Array("# caf".utf8) + [0xe9] + Array("\na;".utf8), file: "t")
        XCTAssertEqual(try lexer.tokenize().map(\.text), ["a", ";", ""])
    }
}
