// Diagnostics are values: the loader returns warnings and notes alongside the Config and
// throws the one fatal error, so the CLI, the tests and the fuzz target all see the same text.

/// One message about the configuration, shaped like nginx's: `MESSAGE in FILE:LINE:COL; HINT`.
public struct Diagnostic: Equatable, Sendable, CustomStringConvertible {
    /// nginx's names for the three levels a configuration load can produce.
    public enum Level: String, Equatable, Sendable { case emerg, warn, notice }

    public var level: Level
    public var message: String
    public var location: SourceLocation?
    /// Said after the location, as nginx does not but an operator needs: `did you mean "listen"?`.
    public var hint: String?

    public init(level: Level, message: String, location: SourceLocation?, hint: String? = nil) {
        self.level = level; self.message = message; self.location = location; self.hint = hint
    }

    public var description: String {
        var text = message
        if let location { text += " in \(location)" }
        if let hint { text += "; \(hint)" }
        return text
    }
}

/// The error that stops a load. Its description is the full message with its location.
public struct ConfigError: Error, Equatable, CustomStringConvertible {
    public var diagnostic: Diagnostic
    /// Warnings and notes produced before the failure, so `ferry -t` prints them first as nginx does.
    public var earlier: [Diagnostic] = []

    public init(_ message: String, at location: SourceLocation?, hint: String? = nil) {
        diagnostic = Diagnostic(level: .emerg, message: message, location: location, hint: hint)
    }

    public var message: String { diagnostic.message }
    public var location: SourceLocation? { diagnostic.location }
    public var description: String { diagnostic.description }
}
