/// `ferry -t` opens every log file the configuration names, as `nginx -t` does, so a path ferry
/// could not open at start (a missing directory, no permission, a FIFO nobody reads) fails the
/// test rather than the start or the reload that follows it. Files that are missing are created,
/// again as nginx does; nothing is written to them.
enum LogPathCheck {
    /// nginx's wording for the first path that cannot be opened, or nil when all open.
    static func firstFailure(_ config: Config) -> String? {
        var paths: [String] = []
        if let e = config.errorLog, e.path != "stderr" { paths.append(e.path) }
        paths += config.accessLogs.map(\.path)
        for listener in config.listeners { paths += listener.accessLogs.map(\.path) }
        var seen = Set<String>()
        for path in paths where seen.insert(path).inserted {
            do {
                let fd = try FileDescriptor.openForAppend(path)
                fd.close()
            } catch {
                return "open() \"\(path)\" failed (\(error.rawValue): \(error))"
            }
        }
        return nil
    }
}
