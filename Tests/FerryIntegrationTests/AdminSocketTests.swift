import XCTest
import Glibc

/// The admin socket over the real Unix socket: every command, its error answers, HAProxy's
/// framing (empty line after each answer, `;`, prompt mode), ctl, socket ownership and bad input.
final class AdminSocketTests: IntegrationCase {
    let main = "admin_socket @DIR@/admin.sock mode=0640;"

    func threeServers() throws -> (FerryInstance, [TestBackend]) {
        let b = try ["b1", "b2", "b3"].map { try backend($0) }
        let f = try ferry("""
            upstream u {
                server 127.0.0.1:\(b[0].port) name=b1 weight=5 max_conns=30 agent_port=1;
                server 127.0.0.1:\(b[1].port) name=b2;
                server 127.0.0.1:\(b[2].port) backup;
            }
            server { listen LISTEN; proxy_pass u; proxy_connect_timeout 1s; proxy_timeout 30s; }
            """, main: main)
        return (f, b)
    }

    func testCommandsAndErrorAnswersInOrder() throws {
        let (f, b) = try threeServers()
        let spare = try backend("b4")
        let table: [(String, String)] = [
            ("get weight u/b1", "5 (initial 5)\n\n"),
            ("get weight u/#1", "5 (initial 5)\n\n"),
            ("get weight #1/b1", "5 (initial 5)\n\n"),
            ("get weight u/127.0.0.1:\(b[2].port)", "1 (initial 1)\n\n"),
            ("get weight u/zz", "No such server.\n\n"),
            ("get weight zz/b1", "No such backend.\n\n"),
            ("get weight u", "Require 'backend/server'.\n\n"),
            ("set server u/b1 weight 50%", "\n"),
            ("get weight u/b1", "2 (initial 5)\n\n"),
            ("set weight u/b1 4", "\n"),
            ("get weight u/b1", "4 (initial 5)\n\n"),
            ("set weight u/b1 300", "Absolute weight can only be between 0 and 256 inclusive.\n\n"),
            ("set server u/b1 weight -5%", "Relative weight must be positive.\n\n"),
            ("set server u/b1 weight abc", "Empty weight string empty or preceded by garbage\n\n"),
            ("set server u/b1 weight 3x", "Trailing garbage in weight string\n\n"),
            ("set server u/b1 weight", "Require <weight> or <weight%>.\n\n"),
            ("set server u/b1 frob", "usage: set server <backend>/<server> addr | agent | health | state | weight\n\n"),
            ("set server u/b1 state foo", "'set server <srv> state' expects 'ready', 'drain' and 'maint'.\n\n"),
            ("set server u/b1 state drain", "\n"),
            ("set server u/b2 agent up", "agent checks are not enabled on this server.\n\n"),
            ("set server u/b1 agent sideways", "'set server <srv> agent' expects 'up' or 'down'.\n\n"),
            ("set server u/b1 health up", "health checks are not enabled on this server.\n\n"),
            ("set maxconn server u/b1 x", "maxconn string empty or preceded by garbage\n\n"),
            ("set maxconn server u/b1", "Require <maxconn>.\n\n"),
            ("set maxconn server u/b1 7", "\n"),
            ("set maxconn frontend x 7", "No such frontend.\n\n"),
            ("set maxconn backend x 7", "'set maxconn' only supports 'frontend', 'global' and 'server'.\n\n"),
            ("disable server u/b2", "\n"),
            ("enable server u/zz", "No such server.\n\n"),
            ("shutdown sessions server u/zz", "No such server.\n\n"),
            ("shutdown sessions server u/b2 rate x", "Usage: shutdown sessions server <bk>/<srv> [rate <n>/s] (n from 1 to 100000).\n\n"),
            ("shutdown sessions server u/b2", "\n"),
            ("add server u/b4 127.0.0.1:\(spare.port) weight 3", "New server registered.\n\n"),
            ("add server u/b4 127.0.0.1:\(spare.port)", "Already exists a server with the same name in backend.\n\n"),
            ("add server u/b5", "'server' expects <name> and <addr>[:<port>] as arguments.\n\n"),
            ("add server u/b5 127.0.0.1:1 wieght=2", "invalid parameter \"wieght=2\"; did you mean \"weight=2\"?\n\n"),
            ("add server zz/b5 127.0.0.1:1", "No such backend.\n\n"),
            ("add server u/b5 127.0.0.1:1 name=b1", "'name=' is not allowed here: the server's name is the <srv> of <bk>/<srv>.\n\n"),
            ("add server u/b5 127.0.0.1:1 weight=2 name=zz", "'name=' is not allowed here: the server's name is the <srv> of <bk>/<srv>.\n\n"),
            ("add server u/b5 127.0.0.1:1 agent_port=9707",
             "'agent_port=' is not supported by add server: agents start with the configuration; add the server to the file and reload.\n\n"),
            ("get weight u/b5", "No such server.\n\n"),
            ("add server u/b5 127.0.0.1:1\\;include\\ /dev/zero", "Invalid address '127.0.0.1:1;include /dev/zero'.\n\n"),
            ("add server u/b5 127.0.0.1:1 weight 2\\;x", "'weight' expects an integer argument.\n\n"),
            // HAProxy's `weight N` keeps HAProxy's 0-256; 0 takes no new sessions.
            ("add server u/b5 127.0.0.1:1 weight 257",
             "'weight' expects an integer between 0 and 256 (HAProxy's range; nginx's weight=N takes up to 1000000).\n\n"),
            ("add server u/b6 127.0.0.1:1 weight 0", "New server registered.\n\n"),
            ("get weight u/b6", "0 (initial 1)\n\n"),
            ("del server u/b6", "Server deleted.\n\n"),
            ("add server u/b7 127.0.0.1:1 weight 0 weight 5", "New server registered.\n\n"),
            ("get weight u/b7", "5 (initial 5)\n\n"),
            ("del server u/b7", "Server deleted.\n\n"),
            ("get weight u/b4", "3 (initial 3)\n\n"),
            ("del server u/b1", "Only servers in maintenance mode can be deleted.\n\n"),
            ("del server u/b4", "Server deleted.\n\n"),
            ("get weight u/b4", "No such server.\n\n"),
            ("del server u/b4", "No such server.\n\n"),
            ("show backend", "# name\nu\n\n"),
            ("show stat extra", "Unknown 'show stat' argument 'extra': expected [domain proxy] [<iid>|<proxy> <type> <sid>] [up|no-maint].\n\n"),
            ("show servers statez", "Expects 'state'.\n\n"),
            ("show servers state nope", "Can't find backend.\n\n"),
        ]
        for (command, expected) in table {
            XCTAssertEqual(try AdminSocket.command(f.adminPath, command), expected, command)
        }
        // The changes above as the listings show them.
        let state = try AdminSocket.command(f.adminPath, "show servers state u")
        let rows = state.split(separator: "\n").filter { !$0.hasPrefix("#") && $0 != "1" }.map { $0.split(separator: " ") }
        XCTAssertEqual(rows.count, 3, state)            // b4 deleted
        XCTAssertEqual(rows[0][3], "b1")
        XCTAssertEqual(rows[0][6], "8", "b1 drained: SRV_ADMF_FDRAIN")
        XCTAssertEqual(rows[0][7], "4", "b1 runtime weight")
        XCTAssertEqual(rows[0][8], "5", "b1 initial weight")
        XCTAssertEqual(rows[1][5], "0", "b2 in maintenance is stopped")
        XCTAssertEqual(rows[1][6], "1", "b2 in maintenance: SRV_ADMF_FMAINT")
        let stat = try AdminSocket.command(f.adminPath, "show stat")
        let lines = stat.split(separator: "\n").map(String.init)
        let header = lines[0].dropFirst(2).split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        func row(_ sv: String) -> [String: String] {
            let v = lines.first { $0.hasPrefix("u,\(sv),") }!.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            return Dictionary(uniqueKeysWithValues: zip(header, v))
        }
        XCTAssertEqual(row("b1")["status"], "DRAIN")
        XCTAssertEqual(row("b1")["slim"], "7")
        XCTAssertEqual(row("b2")["status"], "MAINT")
        XCTAssertEqual(row("BACKEND")["status"], "UP", "the backup server is still usable")
        XCTAssertEqual(row("BACKEND")["algo"], "roundrobin")
        // Agent state: b1 has an agent port, so the operator may force its verdict.
        XCTAssertEqual(try AdminSocket.command(f.adminPath, "set server u/b1 state ready; set server u/b1 agent down"), "\n\n")
        XCTAssertTrue(try AdminSocket.command(f.adminPath, "show stat").contains("u,b1,0,0,0,0,7,"), "b1 row")
        XCTAssertTrue(try AdminSocket.command(f.adminPath, "show stat").contains(",DOWN (agent),"))
        let info = try AdminSocket.command(f.adminPath, "show info")
        XCTAssertTrue(info.hasPrefix("Name: ferry\n"), info)
        XCTAssertTrue(info.contains("\nCurrConns: 0\n") && info.contains("\nUlimit-n: "), info)
        XCTAssertTrue(info.hasSuffix("\n\n"), "every answer ends with an empty line")
        let unknown = try AdminSocket.command(f.adminPath, "frobnicate now")
        XCTAssertTrue(unknown.hasPrefix("Unknown command: 'frobnicate now'."), unknown)
        XCTAssertTrue(unknown.contains("show stat"), "the help text follows")
        XCTAssertTrue(try AdminSocket.command(f.adminPath, "help").contains("shutdown sessions server"))
        // help <words>: the matching commands and the connection's own, as HAProxy's.
        let some = try AdminSocket.command(f.adminPath, "help set serv").split(separator: "\n").dropFirst().map { $0.split(separator: ":")[0].split(separator: " ").prefix(3).joined(separator: " ") }
        XCTAssertEqual(Set(some), ["set server <bk>/<srv>", "help", "prompt", "quit"], "\(some)")
        XCTAssertEqual(try AdminSocket.command(f.adminPath, "help frob"), try AdminSocket.command(f.adminPath, "help"), "no match: every command")
        XCTAssertTrue(f.isRunning)
    }

    /// `show stat <iid>|<proxy> <type> <sid> [up|no-maint]` picks rows as HAProxy does, so an
    /// exporter's `show stat -1 4 -1` (servers only) reads ferry; bad arguments say what is wanted.
    func testShowStatFiltersRowsAsHAProxyDoes() throws {
        let (f, _) = try threeServers()
        func rows(_ args: String) throws -> [String] {
            let answer = try AdminSocket.command(f.adminPath, "show stat" + args)
            XCTAssertTrue(answer.hasPrefix("# pxname,svname,"), "show stat\(args): \(answer)")
            // pxname,svname of each row after the header.
            return answer.split(separator: "\n").dropFirst().map { $0.split(separator: ",", omittingEmptySubsequences: false).prefix(2).joined(separator: ",") }
        }
        let everything = try rows("")
        XCTAssertEqual(everything.count, 5, "\(everything)")
        guard everything.count == 5 else { return }
        let frontend = everything[0]
        XCTAssertTrue(frontend.hasSuffix(",FRONTEND"), frontend)
        XCTAssertEqual(Array(everything[1...2]), ["u,b1", "u,b2"])
        XCTAssertTrue(everything[3].hasPrefix("u,127.0.0.1:"), "the unnamed backup server: \(everything[3])")
        XCTAssertEqual(everything[4], "u,BACKEND")
        XCTAssertEqual(try rows(" -1 -1 -1"), everything)
        XCTAssertEqual(try rows(" domain proxy -1 -1 -1"), everything)
        XCTAssertEqual(try rows(" -1 4 -1"), Array(everything[1...3]), "servers only")
        XCTAssertEqual(try rows(" -1 3 -1"), [frontend, "u,BACKEND"], "frontends and backends")
        XCTAssertEqual(try rows(" u -1 2"), ["u,b2", "u,BACKEND"], "one server by id; the backend row stays")
        XCTAssertEqual(try rows(" 1 2 -1"), ["u,BACKEND"], "by iid: u is proxy 1")
        XCTAssertEqual(try rows(" #1 2 -1"), ["u,BACKEND"], "by #iid, as in <bk>/<srv>")
        func backendField(_ args: String, _ field: Int) throws -> String {
            let line = try AdminSocket.command(f.adminPath, "show stat" + args).split(separator: "\n").first { $0.hasPrefix("u,BACKEND,") }
            return line.map { String($0.split(separator: ",", omittingEmptySubsequences: false)[field]) } ?? "no BACKEND row"
        }
        XCTAssertEqual(try backendField("", 18), "6", "weight: the active servers' 5 + 1, not the backup's")
        XCTAssertEqual(try backendField("", 17), "UP")
        XCTAssertEqual(try backendField(" up", 17), "UP (3/3)", "HAProxy's (up/total) under up or no-maint")
        XCTAssertEqual(try rows(" \(frontend.split(separator: ",")[0]) -1 -1"), [frontend], "a frontend by its name")
        XCTAssertEqual(try AdminSocket.command(f.adminPath, "disable server u/b2"), "\n")
        XCTAssertEqual(try rows(" -1 4 -1 no-maint"), ["u,b1", everything[3]], "no-maint leaves out b2")
        XCTAssertEqual(try AdminSocket.command(f.adminPath, "set server u/b1 agent down"), "\n")
        XCTAssertEqual(try rows(" -1 4 -1 up"), [everything[3]], "up leaves out b2 (maintenance) and b1 (agent down)")
        XCTAssertEqual(try rows(" up"), [frontend, everything[3], "u,BACKEND"])
        XCTAssertEqual(try backendField(" -1 2 -1 no-maint", 17), "UP (1/3)", "b2 in maintenance, b1 down (agent)")
        XCTAssertEqual(try backendField("", 18), "1", "only the backup serves: its weight")
        let errors: [(String, String)] = [
            ("show stat zz -1 -1", "No such proxy.\n\n"),
            ("show stat u 4", "'show stat' takes <iid>|<proxy>, <type> and <sid> together, e.g. 'show stat -1 4 -1'.\n\n"),
            ("show stat -1 up", "'show stat' takes <iid>|<proxy>, <type> and <sid> together, e.g. 'show stat -1 4 -1'.\n\n"),
            ("show stat -1 4 up", "'show stat' takes <iid>|<proxy>, <type> and <sid> together, e.g. 'show stat -1 4 -1'.\n\n"),
            ("show stat -1 x -1", "'show stat' expects <type> as -1 (any) or a sum of 1 (frontends), 2 (backends) and 4 (servers).\n\n"),
            ("show stat -1 -1 b1", "'show stat' expects <sid> as -1 (any) or a server's id.\n\n"),
            ("show stat domain resolvers", "ferry has no resolvers: only 'domain proxy' is available.\n\n"),
            ("show stat domain", "Invalid statistics domain.\n\n"),
            ("show stat json", "ferry prints 'show stat' as CSV only; 'json' is not supported.\n\n"),
            ("show stat -1 4 -1 typed", "ferry prints 'show stat' as CSV only; 'typed' is not supported.\n\n"),
        ]
        for (command, expected) in errors {
            XCTAssertEqual(try AdminSocket.command(f.adminPath, command), expected, command)
        }
        XCTAssertTrue(f.isRunning)
    }

    /// 16 KiB per line means exactly that, however the line arrives (reads are 4 KiB).
    func testLineLimitIsExact() throws {
        let (f, _) = try threeServers()
        let command = "get weight u/b1"
        let longest = command + String(repeating: " ", count: 16 * 1024 - command.utf8.count)
        XCTAssertEqual(try AdminSocket.exchange(f.adminPath, longest + "\n"), "5 (initial 5)\n\n")
        for extra in [1, 100, 4095, 4096, 5000] {
            XCTAssertEqual(try AdminSocket.exchange(f.adminPath, longest + String(repeating: " ", count: extra) + "\n"),
                           "Line too long (at most 16384 bytes).\n\n", "\(extra) bytes over")
        }
        XCTAssertTrue(f.isRunning)
    }

    /// A server added to an upstream with `health_check` is probed like the servers of the
    /// file (a dead one goes down), and `del server` stops its probe.
    func testAddedServerIsHealthChecked() throws {
        let b1 = try backend("b1")
        let live = try backend("b2")
        let dead = try Net.freePort()
        let f = try ferry("""
            upstream u {
                server 127.0.0.1:\(b1.port) name=b1;
                health_check interval=200ms timeout=1s;
            }
            server { listen LISTEN; proxy_pass u; proxy_connect_timeout 1s; }
            """, main: main)
        XCTAssertEqual(try AdminSocket.command(f.adminPath, "add server u/dead 127.0.0.1:\(dead)"), "New server registered.\n\n")
        XCTAssertEqual(try AdminSocket.command(f.adminPath, "add server u/live 127.0.0.1:\(live.port)"), "New server registered.\n\n")
        guard let down = f.waitForState("dead", field: "health", new: "down", timeout: 5) else { return XCTFail(f.stderr) }
        XCTAssertEqual(down["cause"] as? String, "health_check")
        XCTAssertTrue(waitUntil(timeout: 5) { live.accepted >= 2 }, "no probe reached the added server")
        XCTAssertEqual(try AdminSocket.command(f.adminPath, "del server u/live"), "Server deleted.\n\n")
        // A probe already in flight may still land: wait until none has for over two intervals.
        guard let probesAtDelete = steadyValue({ live.accepted }) else { return XCTFail("the deleted server is still probed every interval") }
        usleep(1_000_000)   // five intervals
        XCTAssertEqual(live.accepted, probesAtDelete, "the deleted server is still probed")
        XCTAssertEqual(f.stateChanges("live").count, 0, f.stderr)
        XCTAssertTrue(f.isRunning)
    }

    /// A server added to an upstream with `agent_check` gets its agent like the servers of
    /// the file, and `del server` stops it (it went on connecting every interval). The added
    /// server is on 127.0.0.2, so only its agent check reaches the agent listening there.
    func testAddedServerGetsItsAgentAndDeleteStopsIt() throws {
        let b1 = try backend("b1")
        let a = try agent("up", host: "127.0.0.2")
        let f = try ferry("""
            upstream u {
                server 127.0.0.1:\(b1.port) name=b1;
                agent_check port=\(a.port) interval=200ms timeout=1s;
            }
            server { listen LISTEN; proxy_pass u; proxy_connect_timeout 1s; }
            """, main: main)
        XCTAssertEqual(try AdminSocket.command(f.adminPath, "add server u/x 127.0.0.2:9"), "New server registered.\n\n")
        XCTAssertTrue(a.waitServed(2, timeout: 5), "the added server's agent was never asked")
        XCTAssertEqual(try AdminSocket.command(f.adminPath, "del server u/x"), "Server deleted.\n\n")
        guard let askedAtDelete = steadyValue({ a.servedTotal }) else { return XCTFail("the deleted server's agent is still asked every interval") }
        usleep(1_000_000)   // five intervals
        XCTAssertEqual(a.servedTotal, askedAtDelete, "the deleted server's agent is still asked")
        XCTAssertTrue(f.isRunning)
    }

    /// accept on the admin socket fails for want of descriptors while a client waits: the
    /// listener stays readable, and accepting again at once spun the loop at full CPU for as
    /// long as the shortage lasted. The client waits and is answered once descriptors free up.
    func testAcceptDuringDescriptorShortageDoesNotSpin() throws {
        let b1 = try backend("b1")
        let f = try ferry("server { listen LISTEN; proxy_pass 127.0.0.1:\(b1.port); }", main: main + " worker_rlimit_nofile 300;")
        let held = try TestClient.connect(f.listenPort)
        defer { held.close() }
        XCTAssertEqual(try held.banner(), "b1")
        setOpenFileLimit(of: f.pid, soft: lowestFreeDescriptor(of: f.pid), hard: 300)
        let waiting = TestClient(fd: try AdminSocket.connect(f.adminPath), timeout: 5)
        defer { waiting.close() }
        try waiting.send("show info\n")
        usleep(200_000)   // let the failed accept happen
        let share = cpuShareOverOneSecond(f.pid)
        XCTAssertLessThan(share, 0.25, "ferry used \(share) of a CPU while an admin client waited")
        try held.send("x")
        XCTAssertEqual(try held.receive(exactly: 1), Array("x".utf8), "an established session was disturbed")
        setOpenFileLimit(of: f.pid, soft: 300, hard: 300)
        let answer = String(decoding: try waiting.receiveToEOF(), as: UTF8.self)
        XCTAssertTrue(answer.contains("Name: ferry") || answer.contains("Pid:"), answer)
        XCTAssertTrue(f.isRunning)
    }

    /// `disable frontend` as HAProxy's pause: new clients are refused at once (not left in a
    /// backlog), sessions go on, the loop does not spin on the stopped socket, a reload keeps
    /// it paused, and `enable frontend` listens again on the same port; HAProxy's answers.
    func testDisableFrontendRefusesNewClientsAndKeepsSessions() throws {
        let b1 = try backend("b1")
        let f = try ferry("server { listen LISTEN; proxy_pass 127.0.0.1:\(b1.port); }", main: main)
        let fe = "127.0.0.1:\(f.listenPort)"
        let held = try TestClient.connect(f.listenPort)
        defer { held.close() }
        XCTAssertEqual(try held.banner(), "b1")
        func status() throws -> String? {
            try AdminSocket.command(f.adminPath, "show stat").split(separator: "\n").first { $0.contains(",FRONTEND,") }
                .map { String($0.split(separator: ",", omittingEmptySubsequences: false)[17]) }
        }
        func refused() -> Bool { (try? TestClient.connect(f.listenPort, timeout: 1)) == nil }
        let iid = try XCTUnwrap(try AdminSocket.command(f.adminPath, "show stat").split(separator: "\n").first { $0.contains(",FRONTEND,") }
            .map { String($0.split(separator: ",", omittingEmptySubsequences: false)[27]) })
        XCTAssertEqual(try AdminSocket.command(f.adminPath, "disable frontend \(fe)"), "\n")
        XCTAssertTrue(refused(), "a new client got in")
        XCTAssertEqual(try status(), "PAUSED")
        try held.send("x")
        XCTAssertEqual(try held.receive(exactly: 1), Array("x".utf8), "the session stopped with its frontend")
        let share = cpuShareOverOneSecond(f.pid)
        XCTAssertLessThan(share, 0.25, "ferry used \(share) of a CPU with a paused frontend")
        for (command, answer) in [("disable frontend #\(iid)", "All sockets are already disabled.\n\n"),
                                  ("set severity-output number; disable frontend \(fe)", "\n[5]: All sockets are already disabled.\n\n"),
                                  ("disable frontend zz", "No such frontend.\n\n"),
                                  ("disable frontend", "A frontend name is expected.\n\n"),
                                  ("disable frontend \(fe) now", "Usage: disable frontend <frontend>\n\n")] {
            XCTAssertEqual(try AdminSocket.command(f.adminPath, command), answer, command)
        }
        XCTAssertTrue(try AdminSocket.command(f.adminPath, "reload").hasPrefix("Configuration reloaded"))
        XCTAssertTrue(refused(), "a reload reopened the paused frontend")
        // Another program may take the port while it is paused (as with HAProxy): enabling
        // then fails with HAProxy's answer, and works once the port is free again.
        let intruder = try Net.tcpSocket()
        var one: Int32 = 1
        setsockopt(intruder, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        try Net.bind(intruder, "127.0.0.1", f.listenPort)
        XCTAssertEqual(listen(intruder, 1), 0)
        XCTAssertEqual(try AdminSocket.command(f.adminPath, "enable frontend \(fe)"),
                       "Failed to resume frontend, check logs for precise cause (port conflict?).\n\n")
        close(intruder)
        XCTAssertTrue(refused(), "the failed enable left the frontend listening")
        XCTAssertEqual(try AdminSocket.command(f.adminPath, "enable frontend \(fe)"), "\n")
        XCTAssertEqual(try status(), "OPEN")
        let c = try TestClient.connect(f.listenPort)
        defer { c.close() }
        XCTAssertEqual(try c.banner(), "b1")
        XCTAssertEqual(try AdminSocket.command(f.adminPath, "enable frontend \(fe)"), "All sockets are already enabled.\n\n")
    }

    /// A unix: frontend cannot listen again once it stopped: refused, and it keeps serving.
    func testDisableFrontendRefusesAUnixSocket() throws {
        let b1 = try backend("b1")
        let f = try ferry("server { listen LISTEN; proxy_pass 127.0.0.1:\(b1.port); } server { listen unix:@DIR@/front.sock; proxy_pass 127.0.0.1:\(b1.port); }", main: main)
        let fe = "unix:" + f.directory.appendingPathComponent("front.sock").path
        XCTAssertEqual(try AdminSocket.command(f.adminPath, "disable frontend \(fe)"),
                       "Frontend \(fe) is a unix socket, which cannot listen again once paused; remove its listen line and reload instead.\n\n")
        let stat = try AdminSocket.command(f.adminPath, "show stat")
        XCTAssertTrue(stat.contains("\(fe),FRONTEND,"), stat)
        XCTAssertFalse(stat.contains("PAUSED"), stat)
    }

    /// A server named by its address as written: a unix: path holds slashes of its own.
    func testServerNamedByAUnixSocketAddress() throws {
        let b = try backend("b1")
        let f = try ferry("""
            upstream u {
                server unix:@DIR@/b.sock;
                server 127.0.0.1:\(b.port);
            }
            server { listen LISTEN; proxy_pass u; }
            """, main: main)
        let path = "unix:" + f.directory.appendingPathComponent("b.sock").path
        let table: [(String, String)] = [
            ("get weight u/\(path)", "1 (initial 1)\n\n"),
            ("set weight u/\(path) 0", "\n"),
            ("get weight u/\(path)", "0 (initial 1)\n\n"),
            ("get weight u/#1", "0 (initial 1)\n\n"),
            ("get weight u/unix:/nonexistent.sock", "No such server.\n\n"),
            ("get weight zz/\(path)", "No such backend.\n\n"),
        ]
        for (command, expected) in table {
            XCTAssertEqual(try AdminSocket.command(f.adminPath, command), expected, command)
        }
    }

    /// HAProxy's framing: several commands on a line, prompt mode, quit.
    func testFramingSemicolonsAndPrompt() throws {
        let (f, _) = try threeServers()
        XCTAssertEqual(try AdminSocket.command(f.adminPath, "get weight u/b1; get weight u/b2;get weight u/zz"),
                       "5 (initial 5)\n\n1 (initial 1)\n\nNo such server.\n\n")
        XCTAssertEqual(try AdminSocket.exchange(f.adminPath, "prompt\nget weight u/b1\nget weight u/b2\nquit\n"),
                       "\n> 5 (initial 5)\n\n> 1 (initial 1)\n\n> ")
        // Without prompt the lines sent together are all served, then the connection closes.
        XCTAssertEqual(try AdminSocket.exchange(f.adminPath, "get weight u/b1\nget weight u/b2\n"), "5 (initial 5)\n\n1 (initial 1)\n\n")
        XCTAssertEqual(try AdminSocket.command(f.adminPath, "set severity-output number; get weight u/zz; set weight u/b1 2"),
                       "\n[3]: No such server.\n\n\n")
        // A NUL byte refuses its whole line; the next line is served.
        XCTAssertEqual(try AdminSocket.exchange(f.adminPath, "set weight u/b1 3\u{0}junk; get weight u/b1\nget weight u/b1\n"),
                       "A command line may not contain NUL bytes.\n\n2 (initial 5)\n\n")
        // The connection's own commands with a missing or an extra word.
        XCTAssertEqual(try AdminSocket.command(f.adminPath, "set severity-output"), "one of 'none', 'number', 'string' is a required argument\n\n")
        XCTAssertEqual(try AdminSocket.command(f.adminPath, "set severity-output number extra; get weight u/zz"),
                       "'set severity-output' takes one argument.\n\nNo such server.\n\n")
        XCTAssertEqual(try AdminSocket.command(f.adminPath, "prompt on; quit now; get weight u/b2"),
                       "'prompt' takes no argument.\n\n'quit' takes no argument.\n\n1 (initial 1)\n\n")
    }

    /// `set server U/S addr IP [port P]` moves a server for new sessions (HAProxy's answers);
    /// sessions already on it stay; a bad word changes nothing; the probe follows the server.
    func testSetServerAddrMovesNewSessionsOnly() throws {
        let a = try backend("a"), b = try backend("b")
        let c = TestBackend(name: "c", listening: try Net.listen(host: "127.0.0.2"))
        addTeardownBlock { c.stop() }
        let dead = try Net.freePort()
        let f = try ferry("""
            upstream u {
                server 127.0.0.1:\(a.port) name=s;
                health_check interval=200ms fails=1 passes=1 timeout=1s;
            }
            server { listen LISTEN; proxy_pass u; proxy_connect_timeout 1s; proxy_timeout 30s; }
            """, main: main)
        let held = try TestClient.connect(f.listenPort)
        defer { held.close() }
        XCTAssertEqual(try held.banner(), "a")
        func command(_ c: String) throws -> String { try AdminSocket.command(f.adminPath, c) }
        XCTAssertEqual(try command("set server u/s addr 127.0.0.1 port \(b.port)"),
                       "no need to change the addr, port changed from '\(a.port)' to '\(b.port)' by 'stats socket command'\n\n")
        XCTAssertEqual(try bannerThrough(f.listenPort), "b")
        XCTAssertNoThrow(try held.send("ping"))
        XCTAssertEqual(try? held.receive(exactly: 4), Array("ping".utf8), "the session on a stays")
        XCTAssertEqual(try command("set server u/s addr 127.0.0.1 port \(b.port)"), "no need to change the addr by 'stats socket command'\n\n")
        XCTAssertEqual(try command("set server u/s addr 127.0.0.2 port \(c.port)"),
                       "IP changed from '127.0.0.1' to '127.0.0.2', port changed from '\(b.port)' to '\(c.port)' by 'stats socket command'\n\n")
        XCTAssertEqual(try bannerThrough(f.listenPort), "c")
        let errors: [(String, String)] = [
            ("set server u/s addr", "set server <b>/<s> addr requires an address and optionally a port.\n\n"),
            ("set server u/s addr 127.0.0.1 prt 5", "set server <b>/<s> addr requires an address and optionally a port.\n\n"),
            ("set server u/s addr 127.0.0.1 port", "set server <b>/<s> addr requires an address and optionally a port.\n\n"),
            ("set server u/s addr nope", "Invalid addr 'nope': expected an IPv4 or IPv6 address (names are not resolved here).\n\n"),
            ("set server u/s addr localhost port 5", "Invalid addr 'localhost': expected an IPv4 or IPv6 address (names are not resolved here).\n\n"),
            ("set server u/s addr 127.0.0.1 port 70000", "Invalid port '70000': expected a number from 1 to 65535.\n\n"),
            ("set server u/s addr 127.0.0.1 port 0", "Invalid port '0': expected a number from 1 to 65535.\n\n"),
            ("set server u/zz addr 127.0.0.1", "No such server.\n\n"),
        ]
        for (command, expected) in errors { XCTAssertEqual(try AdminSocket.command(f.adminPath, command), expected, command) }
        XCTAssertEqual(try bannerThrough(f.listenPort), "c", "the refused commands changed nothing")
        let state = try command("show servers state u").split(separator: "\n").first { $0.hasPrefix("1 u 1 s ") }
        XCTAssertEqual(state?.split(separator: " ")[4], "127.0.0.2")
        XCTAssertEqual(state?.split(separator: " ")[18], Substring("\(c.port)"))
        // The probe follows the server: moved to a dead port, it is taken down.
        XCTAssertEqual(try command("set server u/s addr 127.0.0.1 port \(dead)"),
                       "IP changed from '127.0.0.2' to '127.0.0.1', port changed from '\(c.port)' to '\(dead)' by 'stats socket command'\n\n")
        XCTAssertNotNil(f.waitForState("s", field: "health", new: "down", timeout: 5), f.stderr)
        // A reload goes back to the file's address: a again, up at its first probe; the session
        // held on a since the start is still served.
        XCTAssertTrue(try command("reload").hasPrefix("Configuration reloaded"), f.stderr)
        XCTAssertTrue(waitUntil(timeout: 5) { (try? self.bannerThrough(f.listenPort)) == "a" }, f.stderr)
        XCTAssertTrue(try command("show servers state u").contains(" s 127.0.0.1 "))
        XCTAssertNoThrow(try held.send("pong"))
        XCTAssertEqual(try? held.receive(exactly: 4), Array("pong".utf8))
        XCTAssertTrue(f.isRunning)
    }

    /// `add server` starts in maintenance (HAProxy); `enable server` puts it in rotation.
    func testAddedServerTakesTrafficOnlyOnceEnabled() throws {
        let b1 = try backend("b1")
        let b2 = try backend("b2")
        let f = try ferry("""
            upstream u { server 127.0.0.1:\(b1.port) name=b1; }
            server { listen LISTEN; proxy_pass u; proxy_connect_timeout 1s; }
            """, main: main)
        XCTAssertEqual(try AdminSocket.command(f.adminPath, "add server u/b2 127.0.0.1:\(b2.port)"), "New server registered.\n\n")
        for _ in 0..<6 { XCTAssertEqual(try bannerThrough(f.listenPort), "b1") }
        XCTAssertEqual(b2.accepted, 0)
        XCTAssertEqual(try AdminSocket.command(f.adminPath, "enable server u/b2"), "\n")
        let names = try (0..<10).map { _ in try bannerThrough(f.listenPort) }
        XCTAssertEqual(tally(names), ["b1": 5, "b2": 5])
    }

    /// `show sessions` lists live sessions; `shutdown sessions` closes them, paced when asked.
    func testShowSessionsAndPacedShutdown() throws {
        let b1 = try backend("b1")
        let f = try ferry("""
            upstream u { server 127.0.0.1:\(b1.port) name=b1; }
            server { listen LISTEN; proxy_pass u; proxy_timeout 30s; }
            """, main: main)
        var clients: [TestClient] = []
        for i in 0..<4 {
            let c = try TestClient.connect(f.listenPort, from: "127.0.3.\(i + 1)", timeout: 8)
            XCTAssertEqual(try c.banner(), "b1")
            clients.append(c)
        }
        let listing = try AdminSocket.command(f.adminPath, "show sessions u/b1")
        for i in 0..<4 { XCTAssertTrue(listing.contains("127.0.3.\(i + 1):"), listing) }
        XCTAssertEqual(listing.split(separator: "\n").count, 5, listing)
        XCTAssertTrue(listing.hasPrefix("# id client backend server "), listing)
        // One session closed by its id; the others stay.
        let first = listing.split(separator: "\n")[1].split(separator: " ")
        // The client field is 127.0.3.N:port, the source of clients[N - 1].
        let n = Int(first[1].split(separator: ":")[0].split(separator: ".")[3])!
        let victim = clients[n - 1]
        XCTAssertEqual(try AdminSocket.command(f.adminPath, "shutdown session \(first[0])"), "\n")
        let ending = victim.waitForEnd()
        XCTAssertTrue(ending == .eof || ending == .reset, "the session \(first[0]) should be closed, got \(ending)")
        clients.removeAll { $0 === victim }
        XCTAssertEqual(try AdminSocket.command(f.adminPath, "show sessions u/b1").split(separator: "\n").count, 4)
        XCTAssertEqual(try AdminSocket.command(f.adminPath, "shutdown session \(first[0])"), "No such session (use 'show sessions').\n\n")
        XCTAssertEqual(try AdminSocket.command(f.adminPath, "shutdown session x"), "Session id expected (use 'show sessions').\n\n")
        XCTAssertEqual(try AdminSocket.command(f.adminPath, "shutdown session"), "Session id expected (use 'show sessions').\n\n")
        for c in clients { XCTAssertNoThrow(try c.send("ping")); XCTAssertEqual(try? c.receive(exactly: 4), Array("ping".utf8)) }
        XCTAssertEqual(try AdminSocket.command(f.adminPath, "shutdown sessions server u/b1 rate 2/s"), "\n")
        // Each client waits for its end on its own thread; the ends must be spread over time.
        let ends = Box<[Date]>([])
        let threads = clients.map { c in TestThread { let e = c.waitForEnd(); if e == .eof || e == .reset { ends.update { $0.append(Date()) } } } }
        for t in threads { XCTAssertTrue(t.join(timeout: 10)) }
        let times = ends.value.sorted()
        XCTAssertEqual(times.count, 3, "every session closed")
        if let first = times.first, let last = times.last {
            // 2 per second: three closes take about 1 s from the first to the last.
            XCTAssertGreaterThan(last.timeIntervalSince(first), 0.6, "paced, not all at once")
        }
        XCTAssertTrue(waitUntil(timeout: 5) { f.events("paced_shutdown_done") == 1 }, f.stderr)
        XCTAssertEqual(try AdminSocket.command(f.adminPath, "show sessions").split(separator: "\n").count, 1)
    }

    /// The socket has the configured mode; a second ferry on the same path refuses to start;
    /// a path that is not a socket is refused too; a stale socket is reclaimed.
    func testSocketModeOwnershipAndStalePath() throws {
        let b1 = try backend("b1")
        let f = try ferry("upstream u { server 127.0.0.1:\(b1.port); }\nserver { listen LISTEN; proxy_pass u; }", main: main)
        var st = stat()
        XCTAssertEqual(lstat(f.adminPath, &st), 0)
        XCTAssertEqual(st.st_mode & 0o777, 0o640)
        XCTAssertEqual(st.st_mode & S_IFMT, S_IFSOCK)
        XCTAssertThrowsError(try FerryInstance(stream: "upstream u { server 127.0.0.1:\(b1.port); }\nserver { listen LISTEN; proxy_pass u; }",
                                               main: "admin_socket \(f.adminPath);")) { error in
            XCTAssertTrue("\(error)".contains("admin_socket \(f.adminPath) is in use by another process"), "\(error)")
        }
        XCTAssertEqual(try AdminSocket.command(f.adminPath, "get weight u/#1"), "1 (initial 1)\n\n", "the first ferry keeps its socket")
        let plain = f.directory.appendingPathComponent("plain").path
        try "x".write(toFile: plain, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try FerryInstance(stream: "upstream u { server 127.0.0.1:\(b1.port); }\nserver { listen LISTEN; proxy_pass u; }",
                                               main: "admin_socket \(plain);")) { error in
            XCTAssertTrue("\(error)".contains("exists and is not a socket"), "\(error)")
        }
        // A killed ferry leaves a stale socket; the next one takes it over.
        f.signal(SIGKILL)
        XCTAssertNotNil(f.waitExit(timeout: 5))
        XCTAssertEqual(lstat(f.adminPath, &st), 0, "stale socket left behind")
        let g = try ferry("upstream u { server 127.0.0.1:\(b1.port); }\nserver { listen LISTEN; proxy_pass u; }",
                          main: "admin_socket \(f.adminPath);")
        XCTAssertEqual(try AdminSocket.command(g.adminPathOverride(f.adminPath), "show backend"), "# name\nu\n\n")
    }

    /// `ferry ctl`: one command, exit 1 on an error answer, config lookup, stdin mode, top.
    func testCtl() throws {
        let (f, _) = try threeServers()
        var (status, out, err) = try ctl(["-s", f.adminPath, "get", "weight", "u/b1"])
        XCTAssertEqual(status, 0); XCTAssertEqual(out, "5 (initial 5)\n"); XCTAssertEqual(err, "")
        (status, out, err) = try ctl(["-s", f.adminPath, "get", "weight", "u/nope"])
        XCTAssertEqual(status, 1); XCTAssertEqual(out, ""); XCTAssertEqual(err, "No such server.\n")
        (status, out, err) = try ctl(["-c", f.configPath, "set", "server", "u/b2", "weight", "0"])
        XCTAssertEqual(status, 0, err); XCTAssertEqual(out, "")
        (status, out, err) = try ctl(["-s", f.adminPath], stdin: "get weight u/b2\nget weight u/b1\n")
        XCTAssertEqual(status, 0, err); XCTAssertEqual(out, "0 (initial 1)\n5 (initial 5)\n")
        // `prompt` keeps a connection open for more lines; ctl has no more to send and must
        // not wait for the admin socket's 10 s idle timeout.
        let started = Date()
        (status, out, err) = try ctl(["-s", f.adminPath, "get weight u/b1; prompt; get weight u/b2"], timeout: 5)
        XCTAssertEqual(status, 0, err); XCTAssertTrue(out.hasPrefix("5 (initial 5)\n\n"), out)
        (status, out, err) = try ctl(["-s", f.adminPath], stdin: "prompt\nget weight u/b1\n", timeout: 5)
        XCTAssertEqual(status, 0, err); XCTAssertTrue(out.hasSuffix("5 (initial 5)\n"), out)
        XCTAssertLessThan(Date().timeIntervalSince(started), 5)
        (status, out, err) = try ctl(["-s", f.adminPath + ".missing", "show", "info"])
        XCTAssertEqual(status, 2); XCTAssertTrue(err.contains("cannot connect to the admin socket"), err)
        (status, out, err) = try ctl(["-s", f.adminPath, "top", "-n", "2", "-d", "0.2"])
        XCTAssertEqual(status, 0, err)
        XCTAssertEqual(out.components(separatedBy: "BACKEND/SERVER").count - 1, 2, out)
        XCTAssertTrue(out.contains("  u/b1") && out.contains("u  (all)"), out)
    }

    /// Hostile admin input costs the relay nothing: a live session keeps exchanging while the
    /// socket gets an overlong line, binary garbage and a crowd of silent connections.
    func testBadAdminInputDoesNotHurtTheDataPath() throws {
        let b1 = try backend("b1")
        let f = try ferry("upstream u { server 127.0.0.1:\(b1.port) name=b1; }\nserver { listen LISTEN; proxy_pass u; proxy_timeout 30s; }", main: main)
        let c = try TestClient.connect(f.listenPort, timeout: 5)
        XCTAssertEqual(try c.banner(), "b1")
        func roundTrip(_ i: Int) throws {
            let msg = Array("ping \(i) ".utf8) + [UInt8](repeating: 0x41, count: 100)
            try c.send(msg)
            XCTAssertEqual(try c.receive(exactly: msg.count), msg)
        }
        try roundTrip(0)
        let long = try AdminSocket.exchange(f.adminPath, String(repeating: "x", count: 100_000))
        XCTAssertEqual(long, "Line too long (at most 16384 bytes).\n\n")
        try roundTrip(1)
        let garbage = try AdminSocket.exchange(f.adminPath, String(decoding: (1..<200).map { UInt8($0) } + [10], as: UTF8.self))
        XCTAssertTrue(garbage.hasPrefix("Unknown command"), garbage)
        let withNUL = try AdminSocket.exchange(f.adminPath, String(decoding: (0..<200).map { UInt8($0) } + [10], as: UTF8.self))
        XCTAssertTrue(withNUL.hasPrefix("A command line may not contain NUL bytes.\n\nUnknown command"), "the line with NUL, then the line after byte 10: \(withNUL)")
        try roundTrip(2)
        let many = try AdminSocket.command(f.adminPath, Array(repeating: "help", count: 200).joined(separator: ";"))
        XCTAssertEqual(many, "Too many commands on one line (at most 100).\n\n")
        // An interactive client that asks for a lot and never reads: ferry stops reading it
        // (bounded output) and the relay does not notice.
        let hog = try AdminSocket.connect(f.adminPath)
        do {
            Net.setNonBlocking(hog, true)
            let line = Array(("prompt\n" + String(repeating: Array(repeating: "help", count: 90).joined(separator: ";") + "\n", count: 4000)).utf8)
            var off = 0
            let deadline = Date().addingTimeInterval(3)
            while off < line.count && Date() < deadline {
                let n = line.withUnsafeBytes { Glibc.send(hog, $0.baseAddress! + off, line.count - off, Int32(MSG_NOSIGNAL)) }
                if n > 0 { off += n } else { usleep(10_000) }
            }
            XCTAssertLessThan(off, line.count, "ferry stopped reading a client that does not read its answers")
        }
        for i in 100..<110 { try roundTrip(i) }
        Glibc.close(hog)
        // 200 connections that say nothing: 64 are held (and time out later), the rest turned away.
        var silent: [Int32] = []
        for _ in 0..<200 {
            // Past the 64 held, ferry accepts and closes: connect itself still succeeds.
            silent.append(try AdminSocket.connect(f.adminPath))
        }
        for i in 3..<23 { try roundTrip(i) }
        for fd in silent { Glibc.close(fd) }
        XCTAssertTrue(waitUntil(timeout: 5) { (try? AdminSocket.command(f.adminPath, "get weight u/b1")) == "1 (initial 1)\n\n" })
        try roundTrip(99)
        XCTAssertTrue(f.isRunning)
    }
}

/// show stat's byte counters while sessions are open, and the BACKEND line's after a server
/// leaves: HAProxy's backend counters are the backend's, not the sum of the servers it has now.
final class AdminStatCountersTests: IntegrationCase {
    func testOpenSessionsBytesShowAndDeletedServersStayInTheBackendTotals() throws {
        let b1 = try backend("b1")
        let b2 = try backend("b2")
        let f = try ferry("""
            upstream u { server 127.0.0.1:\(b1.port) name=b1; server 127.0.0.1:\(b2.port) name=b2; }
            server { listen LISTEN; proxy_pass u; proxy_connect_timeout 1s; }
            """, main: "admin_socket @DIR@/admin.sock;")
        func field(_ server: String, _ column: Int) throws -> Int? {
            let rows = try AdminSocket.command(f.adminPath, "show stat").split(separator: "\n")
            return rows.first { $0.hasPrefix("u,\(server),") }.flatMap { Int($0.split(separator: ",", omittingEmptySubsequences: false)[column]) }
        }
        let c1 = try TestClient.connect(f.listenPort)
        defer { c1.close() }
        XCTAssertEqual(try c1.banner(), "b1")
        let c2 = try TestClient.connect(f.listenPort)
        defer { c2.close() }
        XCTAssertEqual(try c2.banner(), "b2")
        try c1.send("0123456")
        XCTAssertEqual(try c1.receive(exactly: 7).count, 7)
        // bin (column 8) and bout (9) count the open session's bytes, as HAProxy's do.
        XCTAssertEqual(try field("b1", 8), 7)
        XCTAssertEqual(try field("b1", 9), TestBackend.bannerSize + 7)
        XCTAssertEqual(try field("BACKEND", 8), 7)

        c1.close()
        XCTAssertEqual(try AdminSocket.command(f.adminPath, "set server u/b1 state maint"), "\n")
        XCTAssertTrue(waitUntil(timeout: 5) { (try? field("b1", 4)) == 0 }, "b1's session did not end")
        XCTAssertEqual(try AdminSocket.command(f.adminPath, "del server u/b1"), "Server deleted.\n\n")
        XCTAssertNil(try field("b1", 7))
        XCTAssertEqual(try field("BACKEND", 7), 2, "stot keeps the deleted server's session")
        XCTAssertEqual(try field("BACKEND", 8), 7, "bin keeps the deleted server's bytes")
        XCTAssertEqual(try field("BACKEND", 4), 1, "scur")
    }

    /// `clear counters all` with a session open: every line's bytes start from 0 and count
    /// only what is relayed after, also once the session ends and its bytes join the totals;
    /// the FRONTEND line counts its sessions and bytes; a misspelt `all` clears nothing.
    func testClearCountersAllCountsOpenSessionsFromZero() throws {
        let b1 = try backend("b1")
        let f = try ferry("""
            upstream u { server 127.0.0.1:\(b1.port) name=b1; }
            server { listen LISTEN; proxy_pass u; proxy_connect_timeout 1s; }
            """, main: "admin_socket @DIR@/admin.sock;")
        func stat() throws -> [String: [String: String]] {
            let lines = try AdminSocket.command(f.adminPath, "show stat").split(separator: "\n")
            let header = lines[0].dropFirst(2).split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            var rows: [String: [String: String]] = [:]
            for l in lines.dropFirst() {
                let v = l.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
                rows[v[1]] = Dictionary(uniqueKeysWithValues: zip(header, v))
            }
            return rows
        }
        func bytes() throws -> [String] {
            let rows = try stat()
            return ["FRONTEND", "b1", "BACKEND"].map { "\($0) \(rows[$0]?["bin"] ?? "?")/\(rows[$0]?["bout"] ?? "?")" }
        }
        func info(_ key: String) throws -> String? {
            try AdminSocket.command(f.adminPath, "show info").split(separator: "\n")
                .first { $0.hasPrefix(key + ": ") }.map { String($0.dropFirst(key.count + 2)) }
        }
        let c = try TestClient.connect(f.listenPort)
        defer { c.close() }
        XCTAssertEqual(try c.banner(), "b1")
        try c.send("0123456")
        XCTAssertEqual(try c.receive(exactly: 7).count, 7)
        let banner = TestBackend.bannerSize
        XCTAssertEqual(try bytes(), ["FRONTEND 7/\(banner + 7)", "b1 7/\(banner + 7)", "BACKEND 7/\(banner + 7)"])
        XCTAssertEqual(try stat()["FRONTEND"]?["scur"], "1")
        XCTAssertEqual(try stat()["FRONTEND"]?["smax"], "1")
        XCTAssertEqual(try info("MaxSessRate"), "1")

        XCTAssertEqual(try AdminSocket.command(f.adminPath, "clear counters al"), "Usage: clear counters [all]\n\n")
        XCTAssertEqual(try stat()["b1"]?["stot"], "1", "a refused clear changed the counters")
        XCTAssertEqual(try AdminSocket.command(f.adminPath, "clear counters"), "\n")
        XCTAssertEqual(try stat()["b1"]?["smax"], "0")
        XCTAssertEqual(try stat()["b1"]?["stot"], "1", "clear counters keeps the totals")
        XCTAssertEqual(try info("MaxSessRate"), "0")

        XCTAssertEqual(try AdminSocket.command(f.adminPath, "clear counters all"), "\n")
        XCTAssertEqual(try bytes(), ["FRONTEND 0/0", "b1 0/0", "BACKEND 0/0"])
        XCTAssertEqual(try stat()["b1"]?["stot"], "0")
        XCTAssertEqual(try stat()["FRONTEND"]?["scur"], "1", "the open session is still open")
        try c.send("abcde")
        XCTAssertEqual(try c.receive(exactly: 5).count, 5)
        XCTAssertEqual(try bytes(), ["FRONTEND 5/5", "b1 5/5", "BACKEND 5/5"])
        c.close()
        XCTAssertTrue(waitUntil(timeout: 5) { (try? stat()["FRONTEND"]?["scur"]) == "0" }, "the session did not end")
        XCTAssertEqual(try bytes(), ["FRONTEND 5/5", "b1 5/5", "BACKEND 5/5"], "the ended session's bytes joined the totals twice")
    }
}

final class AdminSocketReloadTests: IntegrationCase {
    /// A reload that moves the admin socket closes the old socket's clients cleanly (they
    /// must not outlive their server) and opens the new one.
    func testReloadMovesTheAdminSocket() throws {
        let b1 = try backend("b1")
        let stream = "upstream u { server 127.0.0.1:\(b1.port) name=b1; }\nserver { listen LISTEN; proxy_pass u; }"
        let f = try ferry(stream, main: "admin_socket @DIR@/admin.sock;")
        let moved = f.directory.appendingPathComponent("moved.sock").path
        try f.rewriteConfig(stream: stream, main: "admin_socket @DIR@/moved.sock;")
        // The client that asks for the reload is one of the old socket's clients.
        let answer = try AdminSocket.exchange(f.adminPath, "prompt\nreload\nget weight u/b1\n", timeout: 3)
        XCTAssertTrue(answer.hasPrefix("\n> Configuration reloaded"), answer)
        XCTAssertEqual(try AdminSocket.command(moved, "get weight u/b1"), "1 (initial 1)\n\n")
        XCTAssertFalse(FileManager.default.fileExists(atPath: f.adminPath), "the old socket is gone")
        usleep(200_000)
        XCTAssertTrue(f.isRunning)
        XCTAssertEqual(try bannerThrough(f.listenPort), "b1")
    }
}

extension FerryInstance {
    /// For a ferry started with an explicit admin_socket path.
    func adminPathOverride(_ path: String) -> String { path }
}
