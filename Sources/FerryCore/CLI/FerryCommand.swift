import Glibc

/// ferry's command line: run in the foreground, test or dump the configuration, print the version.
public enum FerryCommand {
    public static let version = "0.1.0"

    static let usage = """
        Usage: ferry [-c FILE] [-t | -T] [-v] [-h]

          -c FILE   configuration file (default: \(ConfigLoader.defaultPath))
          -t        test the configuration and exit
          -T        test the configuration, print it in canonical form and exit
          -v        print the version and exit
          -h        print this help and exit

        Without -t/-T, ferry runs in the foreground and logs JSON lines to stderr.
        SIGTERM/SIGINT stop accepting and let sessions finish (a second one ends them);
        SIGQUIT ends at once.

        """

    enum Mode { case run, test, dump, version, help }

    /// Parses `args` (argv, program name first) and runs the chosen mode; returns the exit status.
    public static func run(_ args: [String]) -> Int32 {
        var mode = Mode.run
        var path = ConfigLoader.defaultPath
        var i = 1
        while i < args.count {
            switch args[i] {
            case "-c":
                guard i + 1 < args.count else { return fail("option \"-c\" requires file name") }
                path = args[i + 1]
                i += 1
            case "-t": mode = .test
            case "-T", "--dump": mode = .dump
            case "-v", "-V", "--version": mode = .version
            case "-h", "-?", "--help": mode = .help
            default:
                return fail("invalid option: \"\(args[i])\"\n\n" + usage)
            }
            i += 1
        }
        switch mode {
        case .help: FileHandleWriter.stdout.write(usage); return 0
        case .version: FileHandleWriter.stdout.write("ferry version \(version)\n"); return 0
        case .test: return ConfigCheck.test(path: path, dump: false)
        case .dump: return ConfigCheck.test(path: path, dump: true)
        case .run: return runProxy(configPath: path)
        }
    }

    private static func fail(_ message: String) -> Int32 {
        FileHandleWriter.stderr.write("ferry: \(message)\n")
        return 1
    }

    static func runProxy(configPath: String) -> Int32 {
        let log = EventLog()
        let loaded: LoadedConfig
        do {
            loaded = try ConfigLoader.load(path: configPath)
        } catch {
            log.log(.emerg, "config_invalid") { $0.add("file", configPath); $0.add("error", "\(error)") }
            return 1
        }
        // nginx's default level is "error"; ferry runs in the foreground, so it defaults to
        // "notice" and shows its start and stop lines unless error_log asks otherwise.
        log.minimumLevel = loaded.config.errorLog?.level ?? .notice
        if let e = loaded.config.errorLog {
            do {
                try log.open(path: e.path)
            } catch {
                log.log(.emerg, "startup_failed") { $0.add("error", "open() \"\(e.path)\" failed (\(error.rawValue): \(error))") }
                return 1
            }
        }
        for d in loaded.diagnostics {
            log.log(d.level == .notice ? .notice : .warn, "config_note") { $0.add("message", "\(d)") }
        }
        // For benchmarks that compare copy and splice relaying on the same workload.
        var policy = RelayPolicy()
        if let m = getenv("FERRY_RELAY") {
            guard let mode = RelayPolicy.Mode(rawValue: String(cString: m)) else {
                return fail("FERRY_RELAY must be auto, copy or splice")
            }
            policy.mode = mode
        }
        do {
            let runtime = try Runtime(config: loaded.config, log: log, policy: policy)
            return runtime.run()
        } catch {
            log.log(.emerg, "startup_failed") { $0.add("error", error.description) }
            return 1
        }
    }
}
