// A hand-written lexer with nginx's token rules (ngx_conf_read_token), so any file nginx
// tokenizes one way ferry tokenizes the same way:
// - whitespace, `;` and `{` end a word; `}` does not (nginx reads `a}` as one word);
// - `{` right after `$` stays in the word, for `${name}`;
// - `#` starts a comment only where a token would start (`a#b` is one word);
// - quotes open only at the start of a token, and a closing quote must be followed by
//   whitespace, `;` or `{`;
// - `\"`, `\'`, `\\`, `\t`, `\n`, `\r` are escapes in words and quotes alike; any other
//   backslash is kept as written.
// Columns count bytes from 1, like compilers do for UTF-8 sources.

public struct Lexer {
    private let bytes: [UInt8]
    private let file: String
    private var index = 0
    private var line = 1
    private var column = 1

    public init(bytes: [UInt8], file: String) {
        self.bytes = bytes
        self.file = file
    }

    public init(text: String, file: String) {
        self.init(bytes: Array(text.utf8), file: file)
    }

    /// Every token up to and including `.endOfFile`.
    public mutating func tokenize() throws -> [Token] {
        var tokens: [Token] = []
        while true {
            let token = try next()
            tokens.append(token)
            if token.kind == .endOfFile { return tokens }
        }
    }

    public mutating func next() throws -> Token {
        skipSpaceAndComments()
        let start = here
        guard index < bytes.count else { return Token(kind: .endOfFile, text: "", location: start) }
        switch bytes[index] {
        case UInt8(ascii: ";"): advance(); return Token(kind: .semicolon, text: ";", location: start)
        case UInt8(ascii: "{"): advance(); return Token(kind: .openBrace, text: "{", location: start)
        case UInt8(ascii: "}"): advance(); return Token(kind: .closeBrace, text: "}", location: start)
        case UInt8(ascii: "\""), UInt8(ascii: "'"): return try quoted(start: start)
        default: return try word(start: start)
        }
    }

    private var here: SourceLocation { SourceLocation(file: file, line: line, column: column) }

    private mutating func advance() {
        if bytes[index] == UInt8(ascii: "\n") { line += 1; column = 1 } else { column += 1 }
        index += 1
    }

    private static func isSpace(_ c: UInt8) -> Bool {
        c == UInt8(ascii: " ") || c == UInt8(ascii: "\t") || c == UInt8(ascii: "\n") || c == UInt8(ascii: "\r")
    }

    private mutating func skipSpaceAndComments() {
        while index < bytes.count {
            let c = bytes[index]
            if Lexer.isSpace(c) {
                advance()
            } else if c == UInt8(ascii: "#") {
                while index < bytes.count && bytes[index] != UInt8(ascii: "\n") { advance() }
            } else {
                return
            }
        }
    }

    /// Consumes a backslash and what follows it, appending what nginx would copy.
    private mutating func escape(into out: inout [UInt8]) {
        advance()   // the backslash
        guard index < bytes.count else { out.append(UInt8(ascii: "\\")); return }
        let c = bytes[index]
        switch c {
        case UInt8(ascii: "\""), UInt8(ascii: "'"), UInt8(ascii: "\\"): out.append(c)
        case UInt8(ascii: "t"): out.append(UInt8(ascii: "\t"))
        case UInt8(ascii: "n"): out.append(UInt8(ascii: "\n"))
        case UInt8(ascii: "r"): out.append(UInt8(ascii: "\r"))
        default: out.append(UInt8(ascii: "\\")); out.append(c)
        }
        advance()
    }

    private mutating func word(start: SourceLocation) throws -> Token {
        var out: [UInt8] = []
        var afterDollar = false
        while index < bytes.count {
            let c = bytes[index]
            if c == UInt8(ascii: "{") && afterDollar { out.append(c); advance(); afterDollar = false; continue }
            if Lexer.isSpace(c) || c == UInt8(ascii: ";") || c == UInt8(ascii: "{") { break }
            afterDollar = c == UInt8(ascii: "$")
            if c == UInt8(ascii: "\\") { escape(into: &out); continue }
            out.append(c)
            advance()
        }
        let kind: Token.Kind = out.first == UInt8(ascii: "$") ? .variable : .word
        return Token(kind: kind, text: try Lexer.text(out, at: start), location: start)
    }

    private mutating func quoted(start: SourceLocation) throws -> Token {
        let quote = bytes[index]
        advance()
        var out: [UInt8] = []
        while true {
            guard index < bytes.count else {
                throw ConfigError("unterminated quoted string", at: start)
            }
            let c = bytes[index]
            if c == quote { advance(); break }
            if c == UInt8(ascii: "\\") { escape(into: &out); continue }
            out.append(c)
            advance()
        }
        if index < bytes.count {
            let c = bytes[index]
            if !(Lexer.isSpace(c) || c == UInt8(ascii: ";") || c == UInt8(ascii: "{")) {
                throw ConfigError("unexpected \(Lexer.show(c))", at: here)
            }
        }
        return Token(kind: .quoted, text: try Lexer.text(out, at: start), location: start)
    }

    /// A token's bytes as text. nginx uses a token's bytes as they are; a String cannot hold
    /// bytes that are not UTF-8, and replacing them (U+FFFD) would make `access_log` write
    /// another file than the one named, so such a token is refused.
    static func text(_ bytes: [UInt8], at location: SourceLocation) throws -> String {
        if let s = String(validating: bytes, as: UTF8.self) { return s }
        let shown = String(decoding: bytes, as: UTF8.self)
        throw ConfigError("bytes that are not UTF-8 in \"\(shown)\"", at: location,
                          hint: "ferry reads its configuration as UTF-8; write names and paths in UTF-8")
    }

    /// A byte as nginx shows it in `unexpected "x"`, made safe for terminals.
    static func show(_ c: UInt8) -> String {
        if c >= 0x20 && c < 0x7f { return "\"\(Character(Unicode.Scalar(c)))\"" }
        let hex = String(c, radix: 16)
        return "\"\\x\(hex.count == 1 ? "0" + hex : hex)\""
    }
}
