import XCTest
@testable import FerryCore

final class BalancingEligibilityTests: XCTestCase {
    func testVerdictTable() {
        let table: [(name: String, change: (inout PeerState) -> Void, verdict: Verdict)] = [
            ("plain", { _ in }, .eligible),
            ("config down", { $0.configDown = true }, .configDown),
            ("drain", { $0.admin = .drain }, .draining),
            ("maint", { $0.admin = .maint }, .maintenance),
            ("weight 0", { $0.weight = 0 }, .weightZero),
            ("unhealthy", { $0.probeUp = false }, .unhealthy),
            ("at max_conns", { $0.maxConns = 2; $0.active = 2 }, .full),
            ("below max_conns", { $0.maxConns = 2; $0.active = 1 }, .eligible),
            ("max_conns 0 is unlimited", { $0.maxConns = 0; $0.active = 1_000_000 }, .eligible),
            ("max_fails reached", { $0.maxFails = 2; $0.fails = 2; $0.checkedAt = 5 * second }, .failed(until: 15 * second + 1)),
            ("below max_fails", { $0.maxFails = 2; $0.fails = 1; $0.checkedAt = 5 * second }, .eligible),
            ("max_fails 0 never fails", { $0.maxFails = 0; $0.fails = 50; $0.checkedAt = 5 * second }, .eligible),
            ("down wins over drain", { $0.configDown = true; $0.admin = .drain }, .configDown),
            ("agent down", { $0.agentUp = false }, .unhealthy),
            ("agent drain", { $0.agentAdmin = .drain }, .draining),
            ("agent maint", { $0.agentAdmin = .maint }, .maintenance),
            ("operator ready does not undo agent drain", { $0.admin = .ready; $0.agentAdmin = .drain }, .draining),
            ("operator maint beats agent drain", { $0.admin = .maint; $0.agentAdmin = .drain }, .maintenance),
            ("agent up does not undo a failed probe", { $0.agentUp = true; $0.probeUp = false }, .unhealthy),
            ("health stopping", { $0.probeStopping = true }, .stopping),
            ("drain wins over stopping", { $0.probeStopping = true; $0.admin = .drain }, .draining),
        ]
        for row in table {
            var p = server(weight: 1, maxFails: 1, failTimeout: 10 * second)
            row.change(&p)
            XCTAssertEqual(Eligibility.verdict(p, now: 6 * second), row.verdict, row.name)
            XCTAssertEqual(Eligibility.isEligible(p, now: 6 * second), row.verdict == .eligible, row.name)
        }
    }

    /// Stopping ends when the server goes into maintenance or down (HAProxy's NOLB), so it
    /// cannot come back by itself with the server: Scheduler settles every change.
    func testStoppingEndsWithMaintenanceOrDown() {
        let changes: [(String, (inout PeerState) -> Void)] = [
            ("maint", { $0.admin = .maint }), ("agent maint", { $0.agentAdmin = .maint }),
            ("probe down", { $0.probeUp = false }), ("agent down", { $0.agentUp = false }), ("config down", { $0.configDown = true }),
        ]
        for (name, change) in changes {
            var s = Scheduler(method: .roundRobin, peers: [server(weight: 1, maxFails: 1, failTimeout: second)], seed: 1)
            s.update(0) { $0.probeStopping = true }
            XCTAssertTrue(s.peers[0].probeStopping, name)
            s.update(0, change)
            XCTAssertFalse(s.peers[0].probeStopping, name)
        }
        var s = Scheduler(method: .roundRobin, peers: [server(weight: 1, maxFails: 1, failTimeout: second)], seed: 1)
        s.update(0) { $0.probeStopping = true; $0.admin = .drain }
        XCTAssertTrue(s.peers[0].probeStopping, "drain leaves stopping alone")
    }

    func testExcludedStatesAreNeverSelectedByAnyMethod() {
        let methods: [BalancingMethodConfig] = [.roundRobin, .leastConn, .hash(consistent: false), .hash(consistent: true),
                                                .random(two: false, leastConn: false), .random(two: true, leastConn: true)]
        let exclusions: [(String, (inout PeerState) -> Void)] = [
            ("weight 0", { $0.weight = 0 }), ("drain", { $0.admin = .drain }), ("maint", { $0.admin = .maint }),
            ("down", { $0.configDown = true }), ("unhealthy", { $0.probeUp = false }), ("stopping", { $0.probeStopping = true }),
            ("agent down", { $0.agentUp = false }), ("agent drain", { $0.agentAdmin = .drain }),
        ]
        for method in methods {
            for (name, exclude) in exclusions {
                var s = Scheduler(method: method, peers: servers(weights: [1, 1, 1]), seed: 7)
                s.update(1, exclude)
                var picks: [Int?] = []
                for c in 0..<300 { picks.append(s.select(client: loopbackClient(c), now: 0, tried: TriedSet())) }
                let c = counts(picks, servers: 3)
                XCTAssertEqual(c[1], 0, "\(method) \(name)")
                XCTAssertEqual(c[0] + c[2], 300, "\(method) \(name)")
            }
        }
    }

    func testMaxFailsWindowWithExplicitTimes() {
        // a: max_fails=2 fail_timeout=10s; b is the alternative.
        var peers = [server(maxFails: 2, failTimeout: 10 * second), server()]
        peers[1].maxFails = 0
        var s = Scheduler(method: .roundRobin, peers: peers, seed: 0)
        func picks(at now: UInt64, _ n: Int) -> String { sequence(&s, n, now: now) }

        s.connectFailed(0, now: 1 * second)
        XCTAssertEqual(s.verdict(0, now: 1 * second), .eligible, "one failure of two allowed")
        s.connectFailed(0, now: 2 * second)
        XCTAssertEqual(s.peers[0].fails, 2)
        XCTAssertEqual(s.verdict(0, now: 2 * second), .failed(until: 12 * second + 1))
        XCTAssertEqual(picks(at: 3 * second, 4), "bbbb")
        XCTAssertEqual(picks(at: 12 * second, 2), "bb", "fail_timeout is inclusive, as nginx's <=")
        // Past the timeout exactly one selection gets a: the trial. Until it reports, a is out.
        XCTAssertEqual(picks(at: 12 * second + 1, 1), "a")
        XCTAssertEqual(s.peers[0].checkedAt, 12 * second + 1)
        XCTAssertEqual(picks(at: 12 * second + 2, 3), "bbb")
        // The trial succeeds: fails are cleared and a is back in rotation.
        s.connectSucceeded(0, now: 13 * second)
        XCTAssertEqual(s.peers[0].fails, 0)
        XCTAssertEqual(s.verdict(0, now: 13 * second), .eligible)
        XCTAssertTrue(picks(at: 13 * second, 4).contains("a"))
    }

    func testFailedTrialDisablesForAnotherFailTimeout() {
        var s = Scheduler(method: .roundRobin, peers: [server(maxFails: 1, failTimeout: 10 * second), server()], seed: 0)
        s.connectFailed(0, now: 0)
        XCTAssertEqual(sequence(&s, 2, now: 5 * second), "bb")
        // a's share comes back one unit per selection (nginx's effective weight): b first.
        XCTAssertEqual(sequence(&s, 1, now: 11 * second), "b")
        XCTAssertEqual(s.select(client: .none, now: 11 * second, tried: TriedSet()), 0, "the trial")
        s.connectFailed(0, now: 11 * second)
        XCTAssertEqual(s.peers[0].fails, 2)
        XCTAssertEqual(s.verdict(0, now: 21 * second), .failed(until: 21 * second + 1))
        XCTAssertEqual(s.verdict(0, now: 21 * second + 1), .eligible)
    }

    func testSuccessBeforeAnyTrialDoesNotClearFailsAsInNginx() {
        // The backup keeps the upstream from being a single server, which counts no failures.
        var s = Scheduler(method: .roundRobin, peers: [server(maxFails: 2, failTimeout: 10 * second), server(backup: true)], seed: 0)
        s.connectFailed(0, now: 1 * second)
        s.connectSucceeded(0, now: 2 * second)
        XCTAssertEqual(s.peers[0].fails, 1, "no selection after fail_timeout yet, so no reset")
        // A selection more than fail_timeout after the failure is a check; success after it resets.
        XCTAssertEqual(s.select(client: .none, now: 12 * second, tried: TriedSet()), 0)
        s.connectSucceeded(0, now: 12 * second)
        XCTAssertEqual(s.peers[0].fails, 0)
    }

    /// nginx's `single`: one server and no backup is never taken out by failed connects; with a
    /// second server, primary or backup, failures count again.
    func testSingleServerIsNeverMarkedFailed() {
        var single = Scheduler(method: .roundRobin, peers: [server(maxFails: 1, failTimeout: 10 * second)], seed: 0)
        for t in 0..<3 { single.connectFailed(0, now: UInt64(t) * second) }
        XCTAssertEqual(single.peers[0].fails, 0)
        XCTAssertEqual(single.verdict(0, now: 3 * second), .eligible)
        XCTAssertEqual(single.select(client: .none, now: 3 * second, tried: TriedSet()), 0)
        var withBackup = Scheduler(method: .roundRobin, peers: [server(maxFails: 1, failTimeout: 10 * second), server(backup: true)], seed: 0)
        withBackup.connectFailed(0, now: 1 * second)
        XCTAssertEqual(withBackup.verdict(0, now: 2 * second), .failed(until: 11 * second + 1))
        XCTAssertEqual(withBackup.select(client: .none, now: 2 * second, tried: TriedSet()), 1, "the backup takes over")
    }

    /// A server deleted over the admin socket leaves a tombstone that does not count: the one
    /// left is single again. One added (even in maintenance) makes two, as in nginx's count.
    func testSingleAfterAddingAndDeletingServers() {
        var s = Scheduler(method: .roundRobin, peers: [server(maxFails: 1, failTimeout: 10 * second)], seed: 0)
        var added = server(maxFails: 1, failTimeout: 10 * second)
        added.admin = .maint
        let b = s.add(added)
        s.connectFailed(0, now: 1 * second)
        XCTAssertEqual(s.verdict(0, now: 2 * second), .failed(until: 11 * second + 1), "two servers: failures count")
        s.remove(b)
        s.remove(b)
        let fails = s.peers[0].fails
        for t in 13..<16 { s.connectFailed(0, now: UInt64(t) * second) }
        XCTAssertEqual(s.peers[0].fails, fails, "single again once the other is deleted")
        XCTAssertEqual(s.verdict(0, now: 15 * second + 1), .eligible)
        XCTAssertEqual(s.select(client: .none, now: 15 * second + 1, tried: TriedSet()), 0)
        XCTAssertEqual(s.verdict(b, now: 16 * second), .configDown)
    }

    func testMaxFailsZeroCountsNothing() {
        var s = Scheduler(method: .roundRobin, peers: [server(maxFails: 0)], seed: 0)
        for t in 0..<10 { s.connectFailed(0, now: UInt64(t) * second) }
        XCTAssertEqual(s.peers[0].fails, 0)
        XCTAssertEqual(s.select(client: .none, now: 10 * second, tried: TriedSet()), 0)
    }

    func testMaxConnsIsRespectedAndFreedOnClose() {
        var peers = servers(weights: [1, 1])
        peers[0].maxConns = 2
        var s = Scheduler(method: .roundRobin, peers: peers, seed: 0)
        XCTAssertEqual(openSessions(&s, 6), "ababbb")
        XCTAssertEqual(s.verdict(0, now: 0), .full)
        s.sessionClosed(0)
        XCTAssertEqual(s.peers[0].active, 1)
        // a's round-robin score was left where it was while a was full, so b leads once more,
        // then a takes its freed slot and is full again.
        XCTAssertEqual(openSessions(&s, 3), "bab")
        XCTAssertEqual(s.peers[0].active, 2)
    }

    func testBackupIsUsedOnlyWhenNoPrimaryCanTakeTheAttempt() {
        var peers = servers(weights: [1, 1, 1])
        peers[2].backup = true
        var s = Scheduler(method: .roundRobin, peers: peers, seed: 0)
        XCTAssertEqual(sequence(&s, 6), "ababab", "backup idle while primaries are fine")
        s.update(0) { $0.configDown = true }
        XCTAssertEqual(sequence(&s, 3), "bbb", "one primary is enough")
        var tried = TriedSet()
        tried.insert(1)
        XCTAssertEqual(s.select(client: .none, now: 0, tried: tried), 2, "the only primary was tried this session")
        s.update(1) { $0.admin = .maint }
        XCTAssertEqual(sequence(&s, 3), "ccc", "all primaries unavailable")
        s.update(0) { $0.configDown = false }
        XCTAssertEqual(sequence(&s, 2), "aa", "back to primaries as soon as one returns")
    }

    func testTriedServersAreExcludedAndNothingEligibleGivesNil() {
        var s = Scheduler(method: .roundRobin, peers: servers(weights: [1, 1, 1]), seed: 0)
        var tried = TriedSet()
        tried.insert(0)
        tried.insert(2)
        XCTAssertEqual(sequence(&s, 3, tried: tried), "bbb")
        tried.insert(1)
        XCTAssertNil(s.select(client: .none, now: 0, tried: tried))
        var down = Scheduler(method: .leastConn, peers: servers(weights: [1, 1]), seed: 0)
        down.update(0) { $0.probeUp = false }
        down.update(1) { $0.configDown = true }
        XCTAssertNil(down.select(client: .none, now: 0, tried: TriedSet()))
        XCTAssertNil(Scheduler(method: .roundRobin, peers: [], seed: 0).peers.first)
        var empty = Scheduler(method: .hash(consistent: true), peers: [], seed: 0)
        XCTAssertNil(empty.select(client: .none, now: 0, tried: TriedSet()))
    }
}
