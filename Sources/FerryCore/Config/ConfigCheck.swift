#if canImport(Glibc)
import Glibc
#endif

// `ferry -t` and `ferry -T`, worded as `nginx -t` so operators and scripts that know one
// know the other. Messages go to stderr; only the `-T` dump goes to stdout.

public enum ConfigCheck {
    /// `openFiles` opens what the configuration names (log files) and answers the first
    /// failure; Config/ itself touches no files beyond reading the configuration.
    public static func test(path: String, dump: Bool, openFiles: (Config) -> String? = { _ in nil }) -> Int32 {
        test(path: path, dump: dump, environment: .system, openFiles: openFiles,
             stdout: { ConfigCheck.write(1, $0) }, stderr: { ConfigCheck.write(2, $0) })
    }

    public static func test(path: String, dump: Bool, environment: ConfigEnvironment,
                            openFiles: (Config) -> String? = { _ in nil },
                            stdout: (String) -> Void, stderr: (String) -> Void) -> Int32 {
        do {
            let loaded = try ConfigLoader.load(path: path, environment: environment)
            for diagnostic in loaded.diagnostics { stderr("ferry: [\(diagnostic.level.rawValue)] \(diagnostic)\n") }
            if let failure = openFiles(loaded.config) {
                stderr("ferry: [emerg] \(failure)\n")
                stderr("ferry: configuration file \(path) test failed\n")
                return 1
            }
            stderr("ferry: the configuration file \(path) syntax is ok\n")
            stderr("ferry: configuration file \(path) test is successful\n")
            if dump { stdout(ConfigRenderer.render(loaded.config)) }
            return 0
        } catch let error as ConfigError {
            for diagnostic in error.earlier { stderr("ferry: [\(diagnostic.level.rawValue)] \(diagnostic)\n") }
            stderr("ferry: [emerg] \(error)\n")
            stderr("ferry: configuration file \(path) test failed\n")
            return 1
        } catch {
            stderr("ferry: [emerg] \(error)\n")
            stderr("ferry: configuration file \(path) test failed\n")
            return 1
        }
    }

    /// All of `text` to `fd`; a reader that went away (a closed pipe) ends the output quietly.
    private static func write(_ fd: Int32, _ text: String) {
        var text = text
        text.withUTF8 { buffer in
            var offset = 0
            while offset < buffer.count {
                guard let n = try? syscall("write", { Glibc.write(fd, buffer.baseAddress! + offset, buffer.count - offset) }), n > 0 else { return }
                offset += n
            }
        }
    }
}
