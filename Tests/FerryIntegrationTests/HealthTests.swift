import XCTest
import Glibc

/// Agent checks and TCP probes as clients see them: real banner backends, fake agents, the
/// real ferry binary, state changes read from its event log.
final class HealthTests: IntegrationCase {
    /// Agent checks run every `agentInterval`; generous bounds below allow for a loaded machine.
    let agentInterval = 0.3

    /// Two servers a and b (weight 100 each, so percentages are exact), each with its own agent.
    private func twoServers(_ a: TestBackend, _ b: TestBackend, _ agentA: FakeAgent, _ agentB: FakeAgent,
                            extra: String = "") throws -> FerryInstance {
        try ferry("""
            upstream u {
                server 127.0.0.1:\(a.port) name=a weight=100 agent_port=\(agentA.port);
                server 127.0.0.1:\(b.port) name=b weight=100 agent_port=\(agentB.port);
                agent_check port=\(agentA.port) interval=\(Int(agentInterval * 1000))ms timeout=1s;
                \(extra)
            }
            server { listen LISTEN; proxy_pass u; proxy_connect_timeout 1s; proxy_timeout 30s; }
            """)
    }

    /// `n` short sessions through ferry, tallied by the backend that answered.
    private func spread(_ f: FerryInstance, _ n: Int) throws -> [String: Int] {
        var names: [String] = []
        for _ in 0..<n { names.append(try bannerThrough(f.listenPort)) }
        return tally(names)
    }

    /// Opens sessions until one lands on `server`; keeps the others open too (returned).
    private func holdSession(on server: String, _ f: FerryInstance) throws -> (TestClient, [TestClient]) {
        var others: [TestClient] = []
        for _ in 0..<6 {
            let c = try TestClient.connect(f.listenPort)
            if try c.banner() == server { return (c, others) }
            others.append(c)
        }
        throw SocketError("no session reached \(server)", 0)
    }

    private func echoes(_ c: TestClient) -> Bool {
        guard (try? c.send("ping")) != nil, let back = try? c.receive(exactly: 4) else { return false }
        return back == Array("ping".utf8)
    }

    /// `down` from the agent stops new sessions within one agent interval; sessions already
    /// there stay (no on_marked_down); `up` brings the server back.
    func testAgentDownStopsNewSessionsAndUpRestores() throws {
        let a = try backend("a"), b = try backend("b")
        let agentA = try agent("up"), agentB = try agent("up")
        let f = try twoServers(a, b, agentA, agentB)
        XCTAssertTrue(agentA.waitServed(1), "ferry never asked the agent")
        XCTAssertEqual(try spread(f, 10), ["a": 5, "b": 5])
        let (held, others) = try holdSession(on: "a", f)
        defer { held.close(); others.forEach { $0.close() } }

        let said = Date()
        agentA.say("down # maintenance window")
        guard let line = f.waitForState("a", field: "health", new: "down") else {
            return XCTFail("no health down line for a:\n\(f.stderr)")
        }
        let took = logTime(line)!.timeIntervalSince(said)
        XCTAssertLessThan(took, agentInterval + 1.5, "down took \(took) s with a \(agentInterval) s interval")
        XCTAssertEqual(line["cause"] as? String, "agent")
        XCTAssertEqual(line["old"] as? String, "up")
        XCTAssertEqual(line["reply"] as? String, "down # maintenance window")
        XCTAssertEqual(line["status"] as? String, "down")
        XCTAssertEqual(line["upstream"] as? String, "u")

        XCTAssertEqual(try spread(f, 20), ["b": 20])
        XCTAssertTrue(echoes(held), "the session already on a must stay")

        agentA.say("UP")
        XCTAssertNotNil(f.waitForState("a", field: "health", new: "up"), f.stderr)
        XCTAssertGreaterThanOrEqual(try spread(f, 10)["a", default: 0], 4)
        XCTAssertEqual(f.stateChanges("b").count, 0, "b's agent said nothing new")
    }

    /// `50%` halves a server's weight: over 2,000 sessions it gets half as many as its peer.
    func testAgentPercentHalvesShare() throws {
        let a = try backend("a"), b = try backend("b")
        let agentA = try agent("up"), agentB = try agent("up 100%")
        let f = try twoServers(a, b, agentA, agentB)
        agentA.say("50%")
        guard let line = f.waitForState("a", field: "weight", new: "50") else { return XCTFail(f.stderr) }
        XCTAssertEqual(line["old"] as? String, "100")
        XCTAssertEqual(line["weight"] as? Int, 50)
        let n = 2000
        let t = try spread(f, n)
        let ratio = Double(t["a", default: 0]) / Double(t["b", default: 1])
        XCTAssertEqual(t["a", default: 0] + t["b", default: 0], n)
        XCTAssertEqual(ratio, 0.5, accuracy: 0.05, "a/b over \(n) sessions: \(t)")
        // Back to the configured weight.
        agentA.say("100%")
        XCTAssertNotNil(f.waitForState("a", field: "weight", new: "100"), f.stderr)
        let back = try spread(f, 20)
        XCTAssertEqual(Double(back["a", default: 0]), 10, accuracy: 2, "\(back)")
    }

    /// `drain` keeps the sessions on the server and gives it no new ones; `ready` undoes it.
    func testAgentDrainKeepsSessionsTakesNoNewOnes() throws {
        let a = try backend("a"), b = try backend("b")
        let agentA = try agent("ready"), agentB = try agent("ready")
        let f = try twoServers(a, b, agentA, agentB)
        let (held, others) = try holdSession(on: "a", f)
        defer { held.close(); others.forEach { $0.close() } }
        let openOnA = a.open

        agentA.say("drain")
        guard let line = f.waitForState("a", field: "admin", new: "drain") else { return XCTFail(f.stderr) }
        XCTAssertEqual(line["status"] as? String, "drain")
        XCTAssertEqual(try spread(f, 20), ["b": 20])
        XCTAssertTrue(echoes(held), "a drained server keeps its sessions")
        XCTAssertGreaterThanOrEqual(a.open, openOnA)

        agentA.say("ready")
        XCTAssertNotNil(f.waitForState("a", field: "admin", new: "ready"), f.stderr)
        XCTAssertGreaterThanOrEqual(try spread(f, 10)["a", default: 0], 4)
    }

    /// `maint` takes the server out, `ready` puts it back.
    func testAgentMaintThenReady() throws {
        let a = try backend("a"), b = try backend("b")
        let agentA = try agent("up"), agentB = try agent("up")
        let f = try twoServers(a, b, agentA, agentB)
        agentA.say("maint")
        guard let line = f.waitForState("a", field: "admin", new: "maint") else { return XCTFail(f.stderr) }
        XCTAssertEqual(line["status"] as? String, "maint")
        XCTAssertEqual(try spread(f, 20), ["b": 20])
        agentA.say("ready")
        guard let back = f.waitForState("a", field: "admin", new: "ready") else { return XCTFail(f.stderr) }
        XCTAssertEqual(back["status"] as? String, "up")
        XCTAssertGreaterThanOrEqual(try spread(f, 10)["a", default: 0], 4)
    }

    /// A reply with a word ferry does not know still applies the rest, as in HAProxy, and the
    /// warning says so; a reply of nothing usable says it changed nothing.
    func testAgentReplyWithUnknownWordAppliesTheRestAndSaysSo() throws {
        let a = try backend("a"), b = try backend("b")
        let agentA = try agent("up"), agentB = try agent("up")
        let f = try twoServers(a, b, agentA, agentB)
        agentA.say("50% junk")
        guard f.waitForState("a", field: "weight", new: "50") != nil else { return XCTFail(f.stderr) }
        XCTAssertTrue(waitUntil(timeout: 5) { !f.eventLines("agent_reply_ignored").isEmpty }, f.stderr)
        let partly = f.eventLines("agent_reply_ignored")[0]
        XCTAssertEqual(partly["problems"] as? String, "unknown word \"junk\"")
        XCTAssertEqual(partly["effect"] as? String, "the rest of the reply applies")
        agentA.say("junk")
        XCTAssertTrue(waitUntil(timeout: 5) { f.eventLines("agent_reply_ignored").count >= 2 }, f.stderr)
        XCTAssertEqual(f.eventLines("agent_reply_ignored")[1]["effect"] as? String, "none; the server keeps its state")
        XCTAssertEqual(f.stateChanges("a").filter { $0["field"] as? String == "weight" }.count, 1, "\"junk\" changed the weight")
    }

    /// An agent that stops answering properly changes nothing: an incomplete line, then a
    /// refused connection, leave the server where the agent last put it.
    func testAgentGoingAwayChangesNothing() throws {
        let a = try backend("a"), b = try backend("b")
        let agentA = try agent("up"), agentB = try agent("up")
        let f = try twoServers(a, b, agentA, agentB)
        agentA.say("down")
        XCTAssertNotNil(f.waitForState("a", field: "health", new: "down"), f.stderr)
        agentB.say("drain 50%")
        // One reply, two lines written one after the other (admin, then weight): wait for both,
        // or the count below can be taken between them.
        XCTAssertNotNil(f.waitForState("b", field: "admin", new: "drain"), f.stderr)
        XCTAssertNotNil(f.waitForState("b", field: "weight", new: "50"), f.stderr)
        let changesBefore = f.eventLines("server_state").count

        // "up" without its newline: ignored.
        agentA.say("up", newline: false)
        XCTAssertTrue(agentA.waitServed(3))
        XCTAssertTrue(waitUntil(timeout: 5) { f.stderr.contains("closed before a line end") }, f.stderr)
        // Both agents gone: connections refused.
        agentA.stop()
        agentB.stop()
        XCTAssertTrue(waitUntil(timeout: 5) { f.eventLines("agent_no_reply").count >= 3 }, f.stderr)
        usleep(UInt32(3 * agentInterval * 1_000_000))
        XCTAssertEqual(f.eventLines("server_state").count, changesBefore, f.stderr)
        // a is still down and b still drained: nobody takes sessions.
        let c = try TestClient.connect(f.listenPort)
        defer { c.close() }
        XCTAssertNotEqual(c.waitForEnd(), .data, "no server may take a session")
        // One line per episode, not one per check.
        let noReply = f.eventLines("agent_no_reply")
        XCTAssertLessThanOrEqual(noReply.count, 4, "\(noReply)")
        XCTAssertEqual(noReply.filter { ($0["error"] as? String ?? "").contains("refused") }.count, 2, "\(noReply)")
    }

    /// Opt-in: with `on_marked_down shutdown_sessions;` a server that goes down loses its sessions.
    func testShutdownSessionsOnDown() throws {
        let a = try backend("a"), b = try backend("b")
        let agentA = try agent("up"), agentB = try agent("up")
        let f = try twoServers(a, b, agentA, agentB, extra: "on_marked_down shutdown_sessions;")
        let (held, others) = try holdSession(on: "a", f)
        defer { held.close(); others.forEach { $0.close() } }
        agentA.say("fail")
        XCTAssertNotNil(f.waitForState("a", field: "health", new: "down"), f.stderr)
        let ending = held.waitForEnd()
        XCTAssertTrue(ending == .eof || ending == .reset, "the session on a should be closed, got \(ending)")
        XCTAssertTrue(waitUntil(timeout: 3) { f.eventLines("sessions_shut_down").first?["sessions"] as? Int == 1 }, f.stderr)
        for c in others { XCTAssertTrue(echoes(c), "sessions on b stay") }
    }

    /// The TCP probe: `fails` consecutive failures take the server down, `passes` successes
    /// bring it back; the agent saying `up` all along does not override the probe.
    func testProbeFailsAndPasses() throws {
        var a = try TestBackend(name: "a")
        let aPort = a.port
        let b = try backend("b")
        let agentA = try agent("up")
        let f = try ferry("""
            upstream u {
                server 127.0.0.1:\(aPort) name=a agent_port=\(agentA.port);
                server 127.0.0.1:\(b.port) name=b;
                health_check interval=300ms fails=3 passes=3 timeout=1s;
            }
            server { listen LISTEN; proxy_pass u; proxy_connect_timeout 1s; proxy_timeout 30s; }
            """)
        defer { a.stop() }
        // Probes reach a (each probe is an accepted connection), and nothing changes while it answers.
        XCTAssertTrue(waitUntil(timeout: 5) { a.accepted >= 2 }, "no probe reached a")
        XCTAssertEqual(f.stateChanges("a").count, 0, f.stderr)

        let stopped = Date()
        a.stop()
        guard let down = f.waitForState("a", field: "health", new: "down") else { return XCTFail(f.stderr) }
        let tookDown = logTime(down)!.timeIntervalSince(stopped)
        // Three failures need at least two intervals after the first one.
        XCTAssertGreaterThanOrEqual(tookDown, 0.5, "down after \(tookDown) s: fewer than 3 failures?")
        XCTAssertEqual(down["cause"] as? String, "health_check")
        XCTAssertEqual(down["checks"] as? Int, 3)
        XCTAssertTrue((down["error"] as? String ?? "").lowercased().contains("refused"), "\(down)")
        XCTAssertEqual(try spread(f, 10), ["b": 10])

        a = try TestBackend(name: "a", port: aPort)
        let restarted = Date()
        guard let up = f.waitForState("a", field: "health", new: "up") else { return XCTFail(f.stderr) }
        let tookUp = logTime(up)!.timeIntervalSince(restarted)
        XCTAssertGreaterThanOrEqual(tookUp, 0.5, "up after \(tookUp) s: fewer than 3 passes?")
        XCTAssertEqual(up["checks"] as? Int, 3)
        XCTAssertGreaterThanOrEqual(try spread(f, 10)["a", default: 0], 4)
        XCTAssertEqual(f.stateChanges("a").count, 2, f.stderr)
    }

    /// Probes of many servers are spread over the interval, not fired together.
    func testProbesAreSpreadOverTheInterval() throws {
        let times = Box<[Date]>([])
        let target = try scripted { _ in times.update { $0.append(Date()) } }
        let servers = (1...10).map { "server 127.0.0.1:\(target.port) name=s\($0);" }.joined(separator: " ")
        _ = try ferry("""
            upstream u { \(servers) health_check interval=1s timeout=500ms; }
            server { listen LISTEN; proxy_pass u; }
            """)
        XCTAssertTrue(waitUntil(timeout: 6) { times.value.count >= 10 })
        let first = times.value.prefix(10).sorted()
        let span = first.last!.timeIntervalSince(first.first!)
        // Ten servers, one second: about 0.9 s between the first and the tenth probe.
        XCTAssertGreaterThan(span, 0.5, "first round of probes took \(span) s: not spread")
    }
}
