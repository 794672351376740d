// `include PATH;` is resolved between parsing and building, so the Builder sees one tree
// whose directives still carry the file they came from. A relative path is relative to
// the main file's directory, also in an included file, as nginx resolves it (against its
// conf prefix, the directory of `-c`), so one tree loads the same files in both. Depth and file-count limits bound the work any input can
// cause, loops or not.

struct IncludeExpander {
    static let maxDepth = 16
    static let maxFiles = 1024

    let environment: ConfigEnvironment
    private var filesRead = 0
    /// The file `expand` was first called for: relative includes resolve against its directory.
    private var mainFile = ""

    init(environment: ConfigEnvironment) { self.environment = environment }

    /// Expands includes in `list`, which was read from `file` (its canonical path is `identity`).
    mutating func expand(_ list: [Directive], file: String, identity: String) throws -> [Directive] {
        mainFile = file
        return try expand(list, file: file, stack: [identity])
    }

    private mutating func expand(_ list: [Directive], file: String, stack: [String]) throws -> [Directive] {
        var out: [Directive] = []
        out.reserveCapacity(list.count)
        for var directive in list {
            guard directive.name == "include" else {
                if let block = directive.block {
                    directive.block = try expand(block, file: file, stack: stack)
                }
                out.append(directive)
                continue
            }
            if directive.block != nil {
                throw ConfigError("directive \"include\" is not terminated by \";\"", at: directive.location)
            }
            guard directive.arguments.count == 1 else {
                throw ConfigError("invalid number of arguments in \"include\" directive", at: directive.location)
            }
            let written = directive.arguments[0].text
            let path = IncludeExpander.resolve(written, relativeTo: mainFile)
            let isPattern = path.contains(where: { $0 == "*" || $0 == "?" || $0 == "[" })
            for included in isPattern ? environment.glob(path) : [path] {
                let identity = environment.canonicalPath(included)
                if stack.contains(identity) {
                    throw ConfigError("include loop: \"\(included)\" is already being included", at: directive.location)
                }
                if stack.count > IncludeExpander.maxDepth {
                    throw ConfigError("includes nested too deeply (more than \(IncludeExpander.maxDepth))", at: directive.location)
                }
                filesRead += 1
                if filesRead > IncludeExpander.maxFiles {
                    throw ConfigError("too many included files (more than \(IncludeExpander.maxFiles))", at: directive.location)
                }
                let bytes: [UInt8]
                switch environment.readFile(included) {
                case .success(let b): bytes = b
                case .failure(let problem): throw ConfigError(problem.message, at: directive.location)
                }
                let tree = try Parser.parse(bytes: bytes, file: included)
                out.append(contentsOf: try expand(tree, file: included, stack: stack + [identity]))
            }
        }
        return out
    }

    /// `conf.d/*.conf` written in `/etc/ferry/ferry.conf` means `/etc/ferry/conf.d/*.conf`.
    static func resolve(_ path: String, relativeTo file: String) -> String {
        if path.hasPrefix("/") { return path }
        guard let slash = file.lastIndex(of: "/") else { return path }
        return String(file[...slash]) + path
    }
}
