import Glibc

/// ferry's command line: run in the foreground, test or dump the configuration, print the version.
public enum FerryCommand {
    public static let version = "0.1.0"

    static let usage = """
        Usage: ferry [-c FILE] [-t | -T] [-s SIGNAL] [-v] [-h]
               ferry ctl [-c FILE | -s SOCKET] [COMMAND...]

          -c FILE   configuration file (default: \(ConfigLoader.defaultPath))
          -t        test the configuration and exit
          -T        test the configuration, print it in canonical form and exit
          -s SIGNAL send a signal to the running ferry (found through the "pid" file):
                    reload (SIGHUP), quit (graceful stop, SIGTERM), stop (at once,
                    SIGQUIT), reopen (log files, SIGUSR1)
          -v        print the version and exit
          -h        print this help and exit

          ctl       send COMMAND to the admin socket and print the answer (exit 1 on an
                    error answer); without COMMAND, read commands from stdin; "ctl top"
                    shows live per-server state. -s names the socket, else the
                    configuration's admin_socket is used.

        Without -t/-T, ferry runs in the foreground and logs JSON lines to stderr.
        SIGTERM/SIGINT stop accepting and let sessions finish (a second one ends them);
        SIGQUIT ends at once; SIGHUP reloads the configuration.

        """

    enum Mode { case run, test, dump, version, help, signal(String) }

    /// Parses `args` (argv, program name first) and runs the chosen mode; returns the exit status.
    public static func run(_ args: [String]) -> Int32 {
        if args.count > 1 && args[1] == "ctl" { return ControlCommand.run(Array(args.dropFirst(2))) }
        var mode = Mode.run
        var path = ConfigLoader.defaultPath
        var i = 1
        while i < args.count {
            switch args[i] {
            case "-c":
                guard i + 1 < args.count else { return fail("option \"-c\" requires file name") }
                path = args[i + 1]
                i += 1
            case "-s":
                guard i + 1 < args.count else { return fail("option \"-s\" requires parameter") }
                mode = .signal(args[i + 1])
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
        case .test: return ConfigCheck.test(path: path, dump: false, openFiles: LogPathCheck.firstFailure)
        case .dump: return ConfigCheck.test(path: path, dump: true, openFiles: LogPathCheck.firstFailure)
        case .run: return runProxy(configPath: path)
        case .signal(let name): return sendSignal(name, configPath: path)
        }
    }

    /// nginx's `-s`: the names mean what they mean to nginx (quit = graceful), mapped to
    /// ferry's signals (SIGTERM is the graceful one here, as in the operating model).
    static func sendSignal(_ name: String, configPath: String) -> Int32 {
        let signals: [String: Int32] = ["reload": SIGHUP, "quit": SIGTERM, "stop": SIGQUIT, "reopen": SIGUSR1]
        guard let sig = signals[name] else { return fail("invalid option: \"-s \(name)\"; use reload, quit, stop or reopen") }
        let config: Config
        do { config = try ConfigLoader.load(path: configPath).config } catch { return fail("\(error)") }
        guard let pidPath = config.pidFile else {
            return fail("no \"pid\" directive in \(configPath); add \"pid /run/ferry.pid;\" so ferry -s can find the running process")
        }
        let fd = open(pidPath, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return fail("open() \"\(pidPath)\" failed; is ferry running?") }
        var buf = [UInt8](repeating: 0, count: 32)
        let n = buf.withUnsafeMutableBytes { b in (try? syscall("read") { read(fd, b.baseAddress!, b.count) }) ?? 0 }
        closeDescriptor(fd)
        let text = String(decoding: buf[0..<max(0, n)], as: UTF8.self).filter { !$0.isWhitespace && $0 != "\0" }
        guard let pid = Int32(text), pid > 0 else { return fail("invalid PID number \"\(text)\" in \"\(pidPath)\"") }
        // A ferry killed without cleaning up leaves its pid file behind, and the number may now
        // belong to another program: `-s stop` (SIGQUIT) would kill it. Signal only a ferry.
        guard let target = ProcessName.of(pid) else {
            return fail("no process \(pid) (from \"\(pidPath)\"); ferry is not running and the pid file is stale")
        }
        if let own = ProcessName.own, target != own {
            return fail("process \(pid) (from \"\(pidPath)\") is \"\(target)\", not \(own); the pid file is stale, nothing was signalled")
        }
        do {
            _ = try syscall("kill") { kill(pid, sig) }
        } catch {
            return fail("kill(\(pid), \(name)) failed (\(error.rawValue): \(error))")
        }
        return 0
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
            let runtime = try Runtime(config: loaded.config, log: log, configPath: configPath, policy: policy)
            return runtime.run()
        } catch {
            log.log(.emerg, "startup_failed") { $0.add("error", error.description) }
            return 1
        }
    }
}
