// The public entry point: path or text in, typed Config and its warnings out, or one
// ConfigError. Lexer -> Parser -> IncludeExpander -> ConfigBuilder.

public struct LoadedConfig: Equatable, Sendable {
    public var config: Config
    /// Warnings and notes, in file order; a successful load may still have some.
    public var diagnostics: [Diagnostic]
    public init(config: Config, diagnostics: [Diagnostic]) { self.config = config; self.diagnostics = diagnostics }
}

public enum ConfigLoader {
    /// Where ferry looks when no `-c` is given.
    public static let defaultPath = "/etc/ferry/ferry.conf"

    public static func load(path: String) throws -> LoadedConfig {
        try load(path: path, environment: .system)
    }

    public static func load(path: String, environment: ConfigEnvironment) throws -> LoadedConfig {
        switch environment.readFile(path) {
        case .success(let bytes): return try load(bytes: bytes, file: path, environment: environment)
        case .failure(let problem): throw ConfigError(problem.message, at: nil)
        }
    }

    /// For tests and tools: `file` names the text in messages, and relative includes start from its directory.
    public static func load(text: String, file: String = "ferry.conf", environment: ConfigEnvironment = .system) throws -> LoadedConfig {
        try load(bytes: Array(text.utf8), file: file, environment: environment)
    }

    public static func load(bytes: [UInt8], file: String, environment: ConfigEnvironment) throws -> LoadedConfig {
        let tree = try Parser.parse(bytes: bytes, file: file)
        var expander = IncludeExpander(environment: environment)
        let expanded = try expander.expand(tree, file: file, identity: environment.canonicalPath(file))
        let builder = ConfigBuilder(file: file, environment: environment)
        do {
            let config = try builder.build(expanded)
            return LoadedConfig(config: config, diagnostics: builder.diagnostics)
        } catch var error as ConfigError {
            error.earlier = builder.diagnostics
            throw error
        }
    }
}
