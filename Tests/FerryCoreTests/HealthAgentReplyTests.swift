import XCTest
@testable import FerryCore

/// The agent-check reply parser against HAProxy's rules, one row per case.
final class HealthAgentReplyTests: XCTestCase {
    /// A reply as one comparable line: only the categories that are present.
    private func summary(_ r: AgentReply) -> String {
        var parts: [String] = []
        if let h = r.health { parts.append("health=\(h.rawValue)") }
        if let a = r.admin { parts.append("admin=\(AgentReply.name(a))") }
        switch r.weight {
        case nil: break
        case .relative(let p)?: parts.append("weight=\(p)%")
        case .absolute(let w)?: parts.append("weight=\(w)")
        case .invalid(let word, _)?: parts.append("weight=invalid(\(word))")
        }
        switch r.maxConns {
        case nil: break
        case .limit(let m)?: parts.append("maxconn=\(m)")
        case .invalid(let word, _)?: parts.append("maxconn=invalid(\(word))")
        }
        if !r.description.isEmpty { parts.append("desc=\(r.description)") }
        if !r.unknownWords.isEmpty { parts.append("unknown=\(r.unknownWords.joined(separator: "|"))") }
        return parts.joined(separator: " ")
    }

    func testParseTable() {
        let table: [(String, String)] = [
            // every word
            ("up", "health=up"),
            ("down", "health=down"),
            ("stopped", "health=stopped"),
            ("fail", "health=fail"),
            ("ready", "admin=ready"),
            ("drain", "admin=drain"),
            ("maint", "admin=maint"),
            ("75%", "weight=75%"),
            ("0%", "weight=0%"),
            ("100%", "weight=100%"),
            ("weight:42", "weight=42"),
            ("weight:0", "weight=0"),
            ("weight:256", "weight=256"),
            ("weight:50%", "weight=50%"),
            ("maxconn:30", "maxconn=30"),
            ("maxconn:0", "maxconn=0"),
            ("", ""),
            // separators: spaces, tabs, commas, runs of them, leading and trailing
            ("up 50%", "health=up weight=50%"),
            ("up\t50%", "health=up weight=50%"),
            ("up,50%", "health=up weight=50%"),
            (" ,\tup ,, \t50%\t, ", "health=up weight=50%"),
            ("drain,maxconn:10 down", "health=down admin=drain maxconn=10"),
            // case
            ("UP", "health=up"),
            ("Down", "health=down"),
            ("DRAIN", "admin=drain"),
            ("MaInT", "admin=maint"),
            ("MAXCONN:7", "maxconn=7"),
            ("WEIGHT:9", "weight=9"),
            // # text
            ("down # disk full", "health=down desc=disk full"),
            ("down #disk full, really", "health=down desc=disk full, really"),
            ("stopped#", "unknown=stopped#"),
            ("# up", "desc=up"),
            ("fail\t#\t  why", "health=fail desc=why"),
            ("down#x", "unknown=down#x"),
            ("up #", "health=up"),
            // several words of one category: the last one wins
            ("up down", "health=down"),
            ("down up", "health=up"),
            ("fail stopped up down", "health=down"),
            ("drain ready", "admin=ready"),
            ("ready maint drain", "admin=drain"),
            ("10% 20% 30%", "weight=30%"),
            ("weight:5 40%", "weight=40%"),
            ("40% weight:5", "weight=5"),
            ("maxconn:1 maxconn:2", "maxconn=2"),
            // a bad last weight is not rescued by a good earlier one
            ("50% 300x%", "weight=invalid(300x%)"),
            // bad weights
            ("300%", "weight=300%"),            // valid in HAProxy: 3x the configured weight, capped at 256
            ("weight:257", "weight=invalid(weight:257)"),
            ("weight:-1", "weight=invalid(weight:-1)"),
            ("weight:-5%", "weight=invalid(weight:-5%)"),
            ("-5%", "unknown=-5%"),             // does not start with a digit: not a weight word
            ("75", "unknown=75"),               // no %: not a weight word
            ("75%x", "weight=invalid(75%x)"),
            ("7%5", "weight=invalid(7%5)"),
            ("weight:", "weight=invalid(weight:)"),
            ("weight:abc", "weight=invalid(weight:abc)"),
            ("weight:12abc", "weight=invalid(weight:12abc)"),
            ("%50", "unknown=%50"),
            // maxconn
            ("maxconn:", "maxconn=invalid(maxconn:)"),
            ("maxconn:x", "maxconn=invalid(maxconn:x)"),
            ("maxconn:5x", "maxconn=invalid(maxconn:5x)"),
            ("maxconn:-3", "maxconn=invalid(maxconn:-3)"),
            ("maxconn", "unknown=maxconn"),
            // not words
            ("failed", "unknown=failed"),
            ("upp", "unknown=upp"),
            ("readyy drain", "admin=drain unknown=readyy"),
            ("up;", "unknown=up;"),
            ("up\u{00A0}", "unknown=up\u{00A0}"),
            ("hello up world", "health=up unknown=hello|world"),
        ]
        for (input, expected) in table {
            XCTAssertEqual(summary(AgentReply.parse(input)), expected, "reply \"\(input)\"")
        }
    }

    func testProblemsNameEveryIgnoredPart() {
        let r = AgentReply.parse("failed up weight:257 maxconn:x")
        XCTAssertEqual(r.problems, [
            "unknown word \"failed\"",
            "\"weight:257\": an absolute weight must be 0-256",
            "\"maxconn:x\": no number",
        ])
        XCTAssertEqual(AgentReply.parse("up 50%").problems, [])
        XCTAssertEqual(AgentReply.parse("-5%").problems, ["unknown word \"-5%\""])
        XCTAssertEqual(AgentReply.parse("weight:-5%").problems, ["\"weight:-5%\": a relative weight must not be negative"])
    }

    /// What the event log's `effect` rests on: whether anything of a reply with problems is used.
    func testHasUsableWord() {
        let table: [(String, Bool)] = [
            ("50% junk", true), ("junk", false), ("", false), ("weight:257", false), ("maxconn:x", false),
            ("maxconn:x drain", true), ("weight:257 maxconn:3", true), ("down junk", true), ("-5%", false),
        ]
        for (reply, usable) in table {
            XCTAssertEqual(AgentReply.parse(reply).hasUsableWord, usable, "reply \"\(reply)\"")
        }
    }

    func testResolveWeight() {
        let table: [(AgentReply.Weight, Int, Int?)] = [
            (.relative(percent: 50), 100, 50),
            (.relative(percent: 50), 1, 0),          // integer arithmetic, as HAProxy: weight 1 at 50% is 0
            (.relative(percent: 75), 4, 3),
            (.relative(percent: 100), 7, 7),
            (.relative(percent: 0), 100, 0),
            (.relative(percent: 300), 1, 3),
            (.relative(percent: 300), 100, 256),     // capped at HAProxy's maximum weight
            (.relative(percent: 1_000_000), 2, 256), // the percentage is capped first (25600)
            (.relative(percent: 100), 1000, 1000),   // a configured weight above 256 is kept
            (.relative(percent: 200), 1000, 1000),
            (.absolute(0), 5, 0),
            (.absolute(256), 5, 256),
            (.invalid(word: "x", reason: "y"), 5, nil),
        ]
        for (w, cw, expected) in table {
            XCTAssertEqual(AgentReply.resolve(w, configWeight: cw), expected, "\(w) of \(cw)")
        }
    }

    /// Applying a reply touches only the agent's fields, in HAProxy's order, and reports changes.
    func testApplyTable() {
        typealias Row = (name: String, before: (inout PeerState) -> Void, reply: String,
                         changes: [String], after: (PeerState) -> Bool)
        let table: [Row] = [
            ("down", { _ in }, "down", ["health up->down"], { !$0.agentUp && $0.probeUp }),
            ("stopped", { _ in }, "stopped", ["health up->down"], { !$0.agentUp }),
            ("fail", { _ in }, "fail", ["health up->down"], { !$0.agentUp }),
            ("up after down", { $0.agentUp = false }, "up", ["health down->up"], { $0.agentUp }),
            ("up does not override the probe", { $0.probeUp = false }, "up", [], { $0.agentUp && !$0.healthy }),
            ("drain", { _ in }, "drain", ["admin ready->drain"], { $0.agentAdmin == .drain && $0.admin == .ready }),
            ("maint", { _ in }, "maint", ["admin ready->maint"], { $0.agentAdmin == .maint }),
            ("ready undoes the agent's drain", { $0.agentAdmin = .drain }, "ready", ["admin drain->ready"], { $0.agentAdmin == .ready }),
            ("ready leaves the operator's maint", { $0.admin = .maint }, "ready", [], { $0.admin == .maint && $0.effectiveAdmin == .maint }),
            ("50% of 100", { _ in }, "50%", ["weight 100->50"], { $0.weight == 50 && $0.configWeight == 100 }),
            ("100% restores", { $0.weight = 50 }, "100%", ["weight 50->100"], { $0.weight == 100 }),
            ("weight:7", { _ in }, "weight:7", ["weight 100->7"], { $0.weight == 7 }),
            ("0% is weight 0", { _ in }, "0%", ["weight 100->0"], { $0.weight == 0 }),
            ("bad weight changes nothing", { _ in }, "weight:257", [], { $0.weight == 100 }),
            ("maxconn", { _ in }, "maxconn:30", ["max_conns 0->30"], { $0.maxConns == 30 }),
            ("unknown word changes nothing", { _ in }, "failed", [], { $0 == PeerState.base }),
            ("empty line changes nothing", { _ in }, "", [], { $0 == PeerState.base }),
            ("same state, no change", { _ in }, "up ready 100%", [], { $0 == PeerState.base }),
            ("order: admin, weight, maxconn, health", { _ in }, "down maxconn:5 drain 25%",
             ["admin ready->drain", "weight 100->25", "max_conns 0->5", "health up->down"],
             { $0.agentAdmin == .drain && $0.weight == 25 && $0.maxConns == 5 && !$0.agentUp }),
        ]
        for row in table {
            var p = PeerState.base
            row.before(&p)
            let changes = AgentReply.parse(row.reply).apply(to: &p).map { "\($0.field) \($0.old)->\($0.new)" }
            XCTAssertEqual(changes, row.changes, row.name)
            XCTAssertTrue(row.after(p), "\(row.name): \(p)")
        }
    }

    // MARK: line assembly

    func testLineEndsAtFirstCROrLF() {
        let table: [([UInt8], AgentLineBuffer.State)] = [
            (Array("up 50%\n".utf8), .line(Array("up 50%".utf8))),
            (Array("up 50%\r\n".utf8), .line(Array("up 50%".utf8))),
            (Array("down\rup\n".utf8), .line(Array("down".utf8))),
            (Array("\nup\n".utf8), .line([])),
            (Array("up 50%".utf8), .incomplete),
            // HAProxy reads the reply as a C string: a NUL hides the line end, the reply is ignored.
            (Array("down\0 maint\n".utf8), .nulByte),
            (Array("\0\n".utf8), .nulByte),
            (Array("up\n\0".utf8), .line(Array("up".utf8))),
        ]
        for (bytes, expected) in table {
            var b = AgentLineBuffer()
            XCTAssertEqual(b.append(bytes), expected, String(decoding: bytes, as: UTF8.self))
        }
    }

    func testReplySplitAcrossReads() {
        var b = AgentLineBuffer()
        XCTAssertEqual(b.append(Array("dra".utf8)), .incomplete)
        XCTAssertEqual(b.pending, 3)
        XCTAssertEqual(b.append(Array("in 5".utf8)), .incomplete)
        XCTAssertEqual(b.append(Array("0%\nignored".utf8)), .line(Array("drain 50%".utf8)))
        // Anything after the line changes nothing.
        XCTAssertEqual(b.append(Array("more\n".utf8)), .line(Array("drain 50%".utf8)))
        if case .line(let l) = b.state {
            XCTAssertEqual(AgentReply.parse(bytes: l), AgentReply.parse("drain 50%"))
        } else {
            XCTFail("no line")
        }
        // Byte by byte.
        var c = AgentLineBuffer()
        var last = AgentLineBuffer.State.incomplete
        for byte in Array("maint\r".utf8) { last = c.append([byte]) }
        XCTAssertEqual(last, .line(Array("maint".utf8)))
    }

    func testLineWithoutEndIsTooLongAtTheLimit() {
        var b = AgentLineBuffer(limit: 8)
        XCTAssertEqual(b.append(Array("12345678".utf8)), .incomplete)
        XCTAssertEqual(b.append(Array("9".utf8)), .tooLong)
        XCTAssertEqual(b.append(Array("\n".utf8)), .tooLong)
    }

    func testSendEscapes() {
        XCTAssertEqual(AgentProbe.unescape("be/srv\\n"), Array("be/srv\n".utf8))
        XCTAssertEqual(AgentProbe.unescape("a\\r\\n\\tb\\\\"), Array("a\r\n\tb\\".utf8))
        XCTAssertEqual(AgentProbe.unescape("plain"), Array("plain".utf8))
        XCTAssertEqual(AgentProbe.unescape("end\\"), Array("end\\".utf8))
    }
}

/// The TCP probe's rise/fall, as exact sequences.
final class HealthStateTests: XCTestCase {
    /// Feeds results ("+" pass, "-" fail) and returns the status after each ("U"/"D").
    private func run(_ s: inout HealthState, _ results: String) -> String {
        results.map { r -> String in
            s.record(passed: r == "+")
            return s.status == .up ? "U" : "D"
        }.joined()
    }

    func testSequences() {
        let table: [(rise: Int, fall: Int, results: String, statuses: String)] = [
            // At start one failure is enough (no evidence yet); after a success it takes `fall`.
            (2, 3, "-", "D"),
            (2, 3, "+---", "UUUD"),
            (2, 3, "+--+--", "UUUUUU"),
            (2, 3, "+---+", "UUUDD"),
            (2, 3, "+---++", "UUUDDU"),
            (2, 3, "+---+-++", "UUUDDDDU"),
            (1, 1, "+-+-", "UDUD"),
            (3, 2, "-++-+++", "DDDDDDU"),
        ]
        for row in table {
            var s = HealthState(rise: row.rise, fall: row.fall)
            XCTAssertEqual(s.status, .up, "starts up")
            XCTAssertEqual(run(&s, row.results), row.statuses, "rise \(row.rise) fall \(row.fall) \(row.results)")
        }
    }

    func testRecordSaysWhenStatusChanged() {
        var s = HealthState(rise: 2, fall: 2)
        XCTAssertFalse(s.record(passed: true))
        XCTAssertFalse(s.record(passed: false))
        XCTAssertTrue(s.record(passed: false))
        XCTAssertEqual(s.status, .down)
        XCTAssertFalse(s.record(passed: true))
        XCTAssertTrue(s.record(passed: true))
        XCTAssertEqual(s.status, .up)
    }

    /// A forced verdict (admin `health up|down`) is counted from, as HAProxy sets its counter:
    /// forced up takes `fall` failures, forced down takes `rise` passes.
    func testForcedVerdictCountsFromScratch() {
        var s = HealthState(rise: 2, fall: 3)
        s.force(up: false)
        XCTAssertEqual(run(&s, "+-++"), "DDDU")
        s.force(up: true)
        XCTAssertEqual(run(&s, "--+---"), "UUUUUD")
    }
}

private extension PeerState {
    static var base: PeerState { PeerState(weight: 100, maxConns: 0, maxFails: 1, failTimeoutNanos: 0, backup: false, down: false) }
}
