// Tokens to a Directive tree, with nginx's structural errors (ngx_conf_parse). The nesting
// limit exists because the parser recurses per block and arbitrary input must not exhaust
// the stack; real configurations nest three levels deep.

public struct Parser {
    public static let maxNesting = 64

    private var lexer: Lexer
    private var lookahead: Token?

    public init(lexer: Lexer) { self.lexer = lexer }

    public static func parse(bytes: [UInt8], file: String) throws -> [Directive] {
        var parser = Parser(lexer: Lexer(bytes: bytes, file: file))
        return try parser.parseFile()
    }

    public static func parse(text: String, file: String) throws -> [Directive] {
        try parse(bytes: Array(text.utf8), file: file)
    }

    public mutating func parseFile() throws -> [Directive] {
        try parseList(depth: 0, opening: nil, parent: nil)
    }

    /// Where nginx's grammar has a block directive, one ended by ";" is nginx's `has no
    /// opening "{"`, reported where it stands: left to the builder, the block it failed to open
    /// would first surface as an "unexpected }" at the end of the file. Only where such a
    /// word can only be a block: inside `map`, `geo`, `types` and the like the same words are
    /// table keys (`map $scheme $port { http 80; }`), and a `server` line at the top of a file
    /// may be an upstream's, included into its block.
    private static func mustOpenBlock(_ name: String, parent: String?) -> Bool {
        switch name {
        case "stream", "http", "events", "mail": return parent == nil
        case "upstream": return parent == nil || parent == "stream" || parent == "http"
        case "server": return parent == "stream" || parent == "http" || parent == "mail"
        default: return false
        }
    }

    private mutating func take() throws -> Token {
        if let token = lookahead { lookahead = nil; return token }
        return try lexer.next()
    }

    /// Directives up to `}` (inside a block) or end of file (at the top).
    /// `parent` names the block being read (nil at the top of a file: an included file does
    /// not know where it is included).
    private mutating func parseList(depth: Int, opening: SourceLocation?, parent: String?) throws -> [Directive] {
        var list: [Directive] = []
        while true {
            let token = try take()
            switch token.kind {
            case .endOfFile:
                if let opening {
                    throw ConfigError("unexpected end of file, expecting \"}\"", at: token.location,
                                      hint: "the \"\(parent ?? "")\" block opened at \(opening), or a block inside it, is not closed")
                }
                return list
            case .closeBrace:
                if opening == nil { throw ConfigError("unexpected \"}\"", at: token.location) }
                return list
            case .semicolon:
                throw ConfigError("unexpected \";\"", at: token.location)
            case .openBrace:
                throw ConfigError("unexpected \"{\"", at: token.location)
            case .word, .variable, .quoted:
                list.append(try parseDirective(name: token, depth: depth, parent: parent))
            }
        }
    }

    private mutating func parseDirective(name: Token, depth: Int, parent: String?) throws -> Directive {
        var arguments: [Argument] = []
        while true {
            let token = try take()
            switch token.kind {
            case .word, .variable, .quoted:
                arguments.append(Argument(text: token.text, kind: token.kind, location: token.location))
            case .semicolon:
                if name.kind == .word && Parser.mustOpenBlock(name.text, parent: parent) {
                    throw ConfigError("directive \"\(name.text)\" has no opening \"{\"", at: name.location,
                                      hint: "\"\(name.text)\" takes a block: \"\(name.text) ... { ... }\"")
                }
                return Directive(name: name.text, arguments: arguments, block: nil, location: name.location)
            case .openBrace:
                guard depth < Parser.maxNesting else {
                    throw ConfigError("blocks nested too deeply (more than \(Parser.maxNesting))", at: token.location)
                }
                let block = try parseList(depth: depth + 1, opening: token.location, parent: name.text)
                return Directive(name: name.text, arguments: arguments, block: block, location: name.location)
            case .closeBrace:
                throw ConfigError("unexpected \"}\"", at: token.location)
            case .endOfFile:
                throw ConfigError("unexpected end of file, expecting \";\" or \"}\"", at: token.location)
            }
        }
    }
}
