// The generic tree the Parser builds: names, arguments and blocks, with locations.
// Meaning is given only later, by the Builder and its DirectiveTable.

public struct Argument: Equatable, Sendable {
    public var text: String
    public var kind: Token.Kind        // .word, .variable or .quoted
    public var location: SourceLocation
    public init(text: String, kind: Token.Kind, location: SourceLocation) {
        self.text = text; self.kind = kind; self.location = location
    }
}

public struct Directive: Equatable, Sendable {
    public var name: String
    public var arguments: [Argument]
    /// nil for `name args;`, the children for `name args { ... }` (possibly empty).
    public var block: [Directive]?
    public var location: SourceLocation
    public init(name: String, arguments: [Argument], block: [Directive]?, location: SourceLocation) {
        self.name = name; self.arguments = arguments; self.block = block; self.location = location
    }
}
