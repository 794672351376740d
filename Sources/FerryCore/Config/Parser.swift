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
        try parseList(depth: 0, opening: nil)
    }

    private mutating func take() throws -> Token {
        if let token = lookahead { lookahead = nil; return token }
        return try lexer.next()
    }

    /// Directives up to `}` (inside a block) or end of file (at the top).
    private mutating func parseList(depth: Int, opening: SourceLocation?) throws -> [Directive] {
        var list: [Directive] = []
        while true {
            let token = try take()
            switch token.kind {
            case .endOfFile:
                if opening != nil {
                    throw ConfigError("unexpected end of file, expecting \"}\"", at: token.location)
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
                list.append(try parseDirective(name: token, depth: depth))
            }
        }
    }

    private mutating func parseDirective(name: Token, depth: Int) throws -> Directive {
        var arguments: [Argument] = []
        while true {
            let token = try take()
            switch token.kind {
            case .word, .variable, .quoted:
                arguments.append(Argument(text: token.text, kind: token.kind, location: token.location))
            case .semicolon:
                return Directive(name: name.text, arguments: arguments, block: nil, location: name.location)
            case .openBrace:
                guard depth < Parser.maxNesting else {
                    throw ConfigError("blocks nested too deeply (more than \(Parser.maxNesting))", at: token.location)
                }
                let block = try parseList(depth: depth + 1, opening: token.location)
                return Directive(name: name.text, arguments: arguments, block: block, location: name.location)
            case .closeBrace:
                throw ConfigError("unexpected \"}\"", at: token.location)
            case .endOfFile:
                throw ConfigError("unexpected end of file, expecting \";\" or \"}\"", at: token.location)
            }
        }
    }
}
