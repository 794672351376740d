import XCTest
import Glibc

/// One running ferry: its config in a temp dir, stderr captured to a file, a free listen port.
final class FerryInstance {
    let listenPort: UInt16
    let directory: URL
    let configPath: String
    let stderrPath: String
    private let process: Process
    private var stopped = false

    var pid: Int32 { process.processIdentifier }
    var isRunning: Bool { process.isRunning }

    /// Writes `stream` (the inside of `stream { }`; `LISTEN` is replaced by the listen address),
    /// after `main` (main-context directives), and starts ferry on it. Returns once ferry logged
    /// "start" and its port is in LISTEN state.
    /// `environment` adds variables (FERRY_RELAY=copy|splice forces one relay transport).
    /// `hosts`, when given, is the /etc/hosts ferry resolves names with: it runs in a mount
    /// namespace of its own with that file bound over /etc/hosts (see `canBindHosts`).
    init(stream body: String, main: String = "", environment: [String: String] = [:], listenPort: UInt16? = nil,
         hosts: String? = nil) throws {
        self.listenPort = try listenPort ?? Net.freePort()
        directory = URL(fileURLWithPath: try makeTemporaryDirectory("ferry-itest"))
        configPath = directory.appendingPathComponent("ferry.conf").path
        stderrPath = directory.appendingPathComponent("stderr.log").path
        // `@DIR@` names the instance's temp directory (admin socket, pid file, logs).
        let text = (main + "\nstream {\n" + body.replacingOccurrences(of: "LISTEN", with: "127.0.0.1:\(self.listenPort)") + "\n}\n")
            .replacingOccurrences(of: "@DIR@", with: directory.path)
        try text.write(toFile: configPath, atomically: true, encoding: .utf8)
        _ = FileManager.default.createFile(atPath: stderrPath, contents: nil)
        process = Process()
        if let hosts {
            let hostsPath = directory.appendingPathComponent("hosts").path
            try hosts.write(toFile: hostsPath, atomically: true, encoding: .utf8)
            // unshare execs sh, which execs ferry: the process stays ferry's pid.
            process.executableURL = URL(fileURLWithPath: "/usr/bin/unshare")
            process.arguments = ["--mount", "sh", "-c", #"mount --bind "$0" /etc/hosts && exec "$1" -c "$2""#,
                                 hostsPath, FerryProcess.binary, configPath]
        } else {
            process.executableURL = URL(fileURLWithPath: FerryProcess.binary)
            process.arguments = ["-c", configPath]
        }
        if !environment.isEmpty {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        }
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle(forWritingAtPath: stderrPath)!
        try process.run()
        let ready = waitUntil(timeout: 5) {
            !process.isRunning || (events("start") > 0 && FerryInstance.isListening(self.listenPort))
        }
        guard ready, process.isRunning else {
            let log = stderr
            stop()
            throw SocketError("ferry did not start listening on \(self.listenPort) in 5 s; config:\n\(text)\nstderr:\n\(log)", 0)
        }
    }

    deinit { stop() }

    /// Whether this machine lets a test give a child its own /etc/hosts (root, and a kernel
    /// that allows mount namespaces); the tests that need it skip otherwise.
    static let canBindHosts: Bool = {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/unshare")
        p.arguments = ["--mount", "sh", "-c", "mount --bind /etc/hosts /etc/hosts"]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        guard (try? p.run()) != nil else { return false }
        p.waitUntilExit()
        return p.terminationStatus == 0
    }()

    /// Whether a socket on 127.0.0.1:port is in LISTEN state (/proc/net/tcp), without connecting:
    /// a probe connection would become a session and skew the backends' counters.
    static func isListening(_ port: UInt16) -> Bool {
        // Read to EOF: String(contentsOfFile:) stops after the first page of a /proc file
        // (about 27 sockets), so with many sockets on the machine the port was never seen.
        guard let handle = FileHandle(forReadingAtPath: "/proc/net/tcp") else { return false }
        defer { try? handle.close() }
        let table = String(decoding: handle.readDataToEndOfFile(), as: UTF8.self)
        let local = String(format: "0100007F:%04X", port)
        return table.split(separator: "\n").contains { line in
            let f = line.split(separator: " ")
            return f.count > 3 && f[1] == local && f[3] == "0A"
        }
    }

    /// The admin socket path when the config says `admin_socket @DIR@/admin.sock`.
    var adminPath: String { directory.appendingPathComponent("admin.sock").path }

    /// Rewrites the configuration file (same substitutions as at start) for a reload.
    func rewriteConfig(stream body: String, main: String = "") throws {
        let text = (main + "\nstream {\n" + body.replacingOccurrences(of: "LISTEN", with: "127.0.0.1:\(listenPort)") + "\n}\n")
            .replacingOccurrences(of: "@DIR@", with: directory.path)
        try text.write(toFile: configPath, atomically: true, encoding: .utf8)
    }

    /// Rewrites the configuration and reloads it with the admin command `reload` (sent to the
    /// socket at `adminPath`), which must answer that it did.
    func reloadOverAdmin(stream body: String, main: String = "", file: StaticString = #filePath, line: UInt = #line) throws {
        try rewriteConfig(stream: body, main: main)
        XCTAssertTrue(try AdminSocket.command(adminPath, "reload").hasPrefix("Configuration reloaded"), file: file, line: line)
    }

    var stderr: String {
        (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? ""
    }

    /// How many log lines have `"event":"name"`.
    func events(_ name: String) -> Int {
        stderr.components(separatedBy: "\"event\":\"\(name)\"").count - 1
    }

    /// The value of an integer field on the first line of event `name`.
    func field(_ key: String, ofEvent name: String) -> Int? {
        guard let line = stderr.split(separator: "\n").first(where: { $0.contains("\"event\":\"\(name)\"") }),
              let r = line.range(of: "\"\(key)\":") else { return nil }
        return Int(line[r.upperBound...].prefix { $0.isNumber })
    }

    /// Descriptors ferry has open, from /proc/PID/fd.
    func openFDCount() -> Int {
        (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").count) ?? -1
    }

    /// What ferry's descriptors point at (paths, `socket:[...]`, `pipe:[...]`).
    func openFiles() -> [String] {
        let dir = "/proc/\(pid)/fd"
        let fds = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
        return fds.compactMap { try? FileManager.default.destinationOfSymbolicLink(atPath: dir + "/" + $0) }
    }

    func signal(_ sig: Int32) { if process.isRunning { kill(pid, sig) } }

    /// Waits (bounded) for ferry to exit; its status, or nil if still running.
    func waitExit(timeout: Double) -> Int32? {
        guard waitUntil(timeout: timeout, { !process.isRunning }) else { return nil }
        process.waitUntilExit()
        return process.terminationStatus
    }

    /// SIGTERM, a bounded wait, then SIGKILL. Safe to call more than once; cleans the temp dir.
    @discardableResult
    func stop(timeout: Double = 5) -> Int32? {
        guard !stopped else { return process.isRunning ? nil : process.terminationStatus }
        stopped = true
        var status: Int32? = nil
        if process.isRunning {
            kill(pid, SIGTERM)
            status = waitExit(timeout: timeout)
            if status == nil {
                kill(pid, SIGKILL)
                _ = waitExit(timeout: 5)
            }
        } else {
            process.waitUntilExit()
            status = process.terminationStatus
        }
        try? FileManager.default.removeItem(at: directory)
        return status
    }
}

/// Base class: everything started through it is stopped in tearDown, even when a test fails.
class IntegrationCase: XCTestCase {
    override func setUpWithError() throws {
        // A failure, not a skip: `swift build --build-tests` builds the binary, so a missing one
        // (a broken build, a wrong FERRY_BIN) must not pass the whole suite as skipped.
        guard FileManager.default.isExecutableFile(atPath: FerryProcess.binary) else {
            throw SocketError("ferry binary not found at \(FerryProcess.binary); run swift build first, or fix FERRY_BIN", 0)
        }
    }

    func ferry(_ stream: String, main: String = "", environment: [String: String] = [:], listenPort: UInt16? = nil) throws -> FerryInstance {
        let f = try FerryInstance(stream: stream, main: main, environment: environment, listenPort: listenPort)
        addTeardownBlock { f.stop(timeout: 2) }
        return f
    }

    func backend(_ name: String, _ mode: TestBackend.Mode = .banner) throws -> TestBackend {
        let b = try TestBackend(name: name, mode: mode)
        addTeardownBlock { b.stop() }
        return b
    }

    func scripted(_ handler: @escaping (Int32) -> Void) throws -> ScriptedBackend {
        let b = try ScriptedBackend(handler: handler)
        addTeardownBlock { b.stop() }
        return b
    }

    func blackhole() throws -> BlackholeListener {
        let b = try BlackholeListener()
        addTeardownBlock { b.close() }
        return b
    }

    /// Connects through ferry and returns the name in the backend's banner.
    func bannerThrough(_ port: UInt16, from source: String? = nil, timeout: Double = 3) throws -> String {
        let c = try TestClient.connect(port, from: source, timeout: timeout)
        defer { c.close() }
        return try c.banner()
    }

    /// Tallies names.
    func tally(_ names: [String]) -> [String: Int] {
        names.reduce(into: [:]) { $0[$1, default: 0] += 1 }
    }
}

extension IntegrationCase {
    /// A process's CPU time so far (user + system), in clock ticks, from /proc.
    func cpuTicks(_ pid: Int32) -> Int {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return -1 }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        return (Int(fields[11]) ?? 0) + (Int(fields[12]) ?? 0)
    }

    /// Share of one CPU (0...1, by the tick) the process uses over the next second.
    func cpuShareOverOneSecond(_ pid: Int32) -> Double {
        let before = cpuTicks(pid)
        usleep(1_000_000)
        return Double(cpuTicks(pid) - before) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    /// Waits until `count` has stopped moving for over `quiet` seconds (within `timeout`) and
    /// returns its steady value, or nil if it kept moving: for "nothing happens any more"
    /// where an event already under way may still land.
    func steadyValue(timeout: Double = 5, quiet: Double = 0.5, _ count: () -> Int) -> Int? {
        var value = -1
        let steady = waitUntil(timeout: timeout) {
            let before = count()
            usleep(UInt32(quiet * 1_000_000))
            value = count()
            return value == before
        }
        return steady ? value : nil
    }

    /// Sets a running process's open-file limits with prlimit(1) from util-linux (Glibc's
    /// prlimit(2) wrapper is not visible to Swift).
    func setOpenFileLimit(of pid: Int32, soft: Int, hard: Int) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/prlimit")
        p.arguments = ["--pid", "\(pid)", "--nofile=\(soft):\(hard)"]
        XCTAssertNoThrow(try p.run(), "prlimit could not run")
        p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 0, "prlimit failed")
    }

    /// The lowest descriptor number free in a process: as its soft limit, the next one fails.
    func lowestFreeDescriptor(of pid: Int32) -> Int {
        let open = Set(((try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd")) ?? []).compactMap { Int($0) })
        return (0...).first { !open.contains($0) }!
    }
}
