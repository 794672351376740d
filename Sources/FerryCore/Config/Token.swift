// What the Lexer hands the Parser. Tokens know nothing about directives.

public struct Token: Equatable, Sendable {
    public enum Kind: Equatable, Sendable {
        case word          // unquoted text
        case variable      // unquoted text starting with `$`, e.g. `$remote_addr`
        case quoted        // '...' or "..." with escapes resolved
        case semicolon
        case openBrace
        case closeBrace
        case endOfFile
    }
    public var kind: Kind
    public var text: String
    public var location: SourceLocation
    public init(kind: Kind, text: String, location: SourceLocation) {
        self.kind = kind; self.text = text; self.location = location
    }
}
