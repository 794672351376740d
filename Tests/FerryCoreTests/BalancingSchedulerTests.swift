import XCTest
@testable import FerryCore

final class BalancingTriedSetTests: XCTestCase {
    func testInsertContainsAndCountAcrossTheInlineBoundary() {
        var t = TriedSet()
        XCTAssertTrue(t.isEmpty)
        for i in [0, 5, 63, 64, 127, 128, 9_999] { t.insert(i) }
        for i in [0, 5, 63, 64, 127, 128, 9_999] { XCTAssertTrue(t.contains(i), "\(i)") }
        for i in [1, 62, 65, 126, 129, 9_998, 10_000, 1_000_000] { XCTAssertFalse(t.contains(i), "\(i)") }
        XCTAssertEqual(t.count, 7)
        t.insert(9_999)
        XCTAssertEqual(t.count, 7, "inserting twice counts once")
    }

    func testEqualityIgnoresHowFarTheSpillGrew() {
        var a = TriedSet(), b = TriedSet()
        a.insert(3)
        b.insert(3)
        XCTAssertEqual(a, b)
        b.insert(5_000)
        XCTAssertNotEqual(a, b)
        a.insert(70)
        XCTAssertNotEqual(a, b)
    }

    /// A reload's renumbering: servers kept move to their new index, dropped ones leave.
    func testRemappedFollowsTheReloadMapAndDropsRemovedServers() {
        var t = TriedSet()
        for i in [0, 2, 3, 70] { t.insert(i) }
        var map: [Int?] = Array(repeating: nil, count: 71)
        map[0] = 5; map[1] = 0; map[2] = nil; map[3] = 100; map[70] = 1
        var expected = TriedSet()
        for j in [5, 100, 1] { expected.insert(j) }
        XCTAssertEqual(t.remapped(map), expected)
        XCTAssertEqual(TriedSet().remapped(map), TriedSet())
    }
}

final class BalancingSchedulerTests: XCTestCase {
    func testTenThousandServersBuildAndSelectWithEveryMethod() {
        let methods: [BalancingMethodConfig] = [.roundRobin, .leastConn, .hash(consistent: false), .hash(consistent: true),
                                                .random(two: false, leastConn: false), .random(two: true, leastConn: false)]
        for method in methods {
            var s = Scheduler(method: method, peers: servers(weights: Array(repeating: 1, count: 10_000)), seed: 3)
            let i = s.select(client: ClientKey(ipv4: 10, 0, 0, 1), now: 0, tried: TriedSet())
            XCTAssertNotNil(i, "\(method)")
            // Only one server left that this session has not tried: every method must find it.
            var tried = TriedSet()
            for j in 0..<10_000 where j != 9_876 { tried.insert(j) }
            XCTAssertEqual(s.select(client: ClientKey(ipv4: 10, 0, 0, 1), now: 0, tried: tried), 9_876, "\(method)")
            tried.insert(9_876)
            XCTAssertNil(s.select(client: ClientKey(ipv4: 10, 0, 0, 1), now: 0, tried: tried), "\(method)")
        }
    }

    func testActiveCountsFollowOpenAndClose() {
        var s = Scheduler(method: .leastConn, peers: servers(weights: [1, 1]), seed: 0)
        s.sessionOpened(1)
        s.sessionOpened(1)
        s.sessionClosed(1)
        XCTAssertEqual(s.peers.map(\.active), [0, 1])
        XCTAssertEqual(openSessions(&s, 1), "a", "least_conn sees the counts the scheduler keeps")
    }

    func testBackupFlagChangeMovesServerBetweenGroups() {
        var s = Scheduler(method: .roundRobin, peers: servers(weights: [1, 1]), seed: 0)
        s.update(1) { $0.backup = true }
        XCTAssertEqual(sequence(&s, 3), "aaa")
        s.update(0) { $0.admin = .drain }
        XCTAssertEqual(sequence(&s, 2), "bb")
        s.update(1) { $0.backup = false }
        s.update(0) { $0.admin = .ready }
        XCTAssertEqual(sequence(&s, 4), "abab")
    }

    func testStableIdentityKeepsConsistentHashClientsAcrossWeightChangeOfAnotherServer() {
        var s = Scheduler(method: .hash(consistent: true), peers: servers(weights: [1, 1, 1]), seed: 0)
        let before = (0..<3000).map { s.select(client: loopbackClient($0), now: 0, tried: TriedSet()) }
        s.setWeight(2, 2)
        let after = (0..<3000).map { s.select(client: loopbackClient($0), now: 0, tried: TriedSet()) }
        for (b, a) in zip(before, after) where b != 2 && a != 2 {
            XCTAssertEqual(a, b, "growing c takes arcs only; nobody moves between a and b")
        }
        XCTAssertGreaterThan(counts(after, servers: 3)[2], counts(before, servers: 3)[2])
    }

    /// A reload carries many servers' runtime state at once: one batch must leave every method
    /// choosing exactly as the same changes made one server at a time, including a server
    /// moving to the backups and a consistent-hash ring whose weights pass the configured total.
    func testUpdateAllChoosesAsOneUpdatePerServer() {
        let methods: [BalancingMethodConfig] = [.roundRobin, .leastConn, .hash(consistent: false), .hash(consistent: true),
                                                .random(two: true, leastConn: false)]
        var rng = SplitMix64(seed: 0x5EED)
        for method in methods {
            for round in 0..<6 {
                var peers = servers(weights: (0..<12).map { 1 + $0 % 4 })
                for i in peers.indices { peers[i].identity = HashMix.name("s\(i)") }
                var oneByOne = Scheduler(method: method, peers: peers, seed: 9)
                var batch = oneByOne
                let weights = peers.indices.map { _ in rng.next(below: 3) == 0 ? peers[0].weight : rng.next(below: 9) }
                let toBackup = round == 5 && method == .leastConn ? 4 : -1
                let change = { (i: Int, p: inout PeerState) in
                    p.weight = weights[i]
                    if i == toBackup { p.backup = true }
                    if i == 7 { p.admin = .drain }
                }
                for i in peers.indices { oneByOne.update(i) { change(i, &$0) } }
                batch.updateAll(change)
                XCTAssertEqual(batch.peers.map(\.weight), oneByOne.peers.map(\.weight))
                for c in 0..<300 {
                    let client = loopbackClient(c * 7 + round)
                    let want = oneByOne.select(client: client, now: 0, tried: TriedSet())
                    let got = batch.select(client: client, now: 0, tried: TriedSet())
                    guard got == want else {
                        return XCTFail("\(method), round \(round), client \(c): \(letter(got)) != \(letter(want)), weights \(weights)")
                    }
                }
            }
        }
    }

    /// Weight changes reach the method at the next selection, once for all of them: with
    /// updates and selections interleaved at random, every selection must match a scheduler
    /// built afresh from the same servers.
    func testWeightChangesBetweenSelectionsChooseAsAFreshScheduler() {
        var rng = SplitMix64(seed: 0xD1A7)
        var peers = servers(weights: (0..<6).map { 1 + $0 % 3 })
        for i in peers.indices { peers[i].identity = HashMix.name("s\(i)") }
        var s = Scheduler(method: .hash(consistent: true), peers: peers, seed: 4)
        for step in 0..<60 {
            for _ in 0..<rng.next(below: 4) {
                let i = rng.next(below: peers.count)
                let w = rng.next(below: 5)
                s.setWeight(i, w)
                peers[i].weight = w
            }
            var fresh = Scheduler(method: .hash(consistent: true), peers: peers, seed: 4)
            let client = loopbackClient(step * 31)
            let want = fresh.select(client: client, now: 0, tried: TriedSet())
            XCTAssertEqual(letter(s.select(client: client, now: 0, tried: TriedSet())), letter(want), "step \(step)")
        }
    }

    /// A reload that leaves an upstream's method input as it was goes on from the old state:
    /// round robin continues its cycle (a a b a c a a), where a fresh scheduler starts it over.
    func testAReloadOfAnUnchangedUpstreamContinuesTheRotation() {
        var old = Scheduler(method: .roundRobin, peers: servers(weights: [5, 1, 1]), seed: 1)
        XCTAssertEqual(sequence(&old, 3), "aab")
        var next = Scheduler(method: .roundRobin, peers: servers(weights: [5, 1, 1]), seed: 2, continuing: old)
        XCTAssertEqual(sequence(&next, 4), "acaa", "the cycle goes on where it was")
        var fresh = Scheduler(method: .roundRobin, peers: servers(weights: [5, 1, 1]), seed: 2)
        XCTAssertEqual(sequence(&fresh, 4), "aaba")
    }

    /// What makes a reload start the method afresh: another method, servers added, removed
    /// or reordered, a configured weight or backup flag changed, or `random` (new seed).
    func testAnyChangeToTheMethodInputStartsAfresh() {
        var old = Scheduler(method: .roundRobin, peers: servers(weights: [5, 1, 1]), seed: 1)
        _ = sequence(&old, 3)
        var backupChanged = servers(weights: [5, 1, 1])
        backupChanged[2].backup = true
        var renamed = servers(weights: [5, 1, 1])
        renamed[1].identity = 42
        let cases: [(String, BalancingMethodConfig, [PeerState])] = [
            ("method", .leastConn, servers(weights: [5, 1, 1])),
            ("added", .roundRobin, servers(weights: [5, 1, 1, 1])),
            ("removed", .roundRobin, servers(weights: [5, 1])),
            ("weight", .roundRobin, servers(weights: [5, 2, 1])),
            ("backup", .roundRobin, backupChanged),
            ("identity", .roundRobin, renamed),
        ]
        for (what, method, peers) in cases {
            XCTAssertFalse(Scheduler.sameMethodInput(old, method: method, peers: peers), what)
            var next = Scheduler(method: method, peers: peers, seed: 2, continuing: old)
            var fresh = Scheduler(method: method, peers: peers, seed: 2)
            XCTAssertEqual(sequence(&next, 8), sequence(&fresh, 8), what)
        }
        XCTAssertTrue(Scheduler.sameMethodInput(old, method: .roundRobin, peers: servers(weights: [5, 1, 1])))
        let random = Scheduler(method: .random(two: true, leastConn: true), peers: servers(weights: [1, 1]), seed: 1)
        XCTAssertFalse(Scheduler.sameMethodInput(random, method: .random(two: true, leastConn: true), peers: servers(weights: [1, 1])),
                       "random draws from the reload's new seed")
    }

    /// The lowered share of a server that failed just before the reload is carried with the
    /// rotation, and the new views take the new servers' runtime state (here: no sessions).
    func testAContinuedSchedulerKeepsTheLoweredShareAndTakesTheNewState() {
        var peers = [server(weight: 3, maxFails: 3, failTimeout: 10 * second), server(weight: 1)]
        peers[1].maxFails = 0
        var old = Scheduler(method: .roundRobin, peers: peers, seed: 1)
        XCTAssertEqual(s(old, &old), 0)
        old.sessionOpened(0)
        old.connectFailed(0, now: 1 * second)   // share 3 -> 2
        var next = Scheduler(method: .roundRobin, peers: peers, seed: 2, continuing: old)
        XCTAssertEqual(next.peers.map(\.active), [0, 0])
        var fresh = Scheduler(method: .roundRobin, peers: peers, seed: 2)
        _ = s(fresh, &fresh)
        // From the same scores (a was picked once), the lowered share gives b the second pick.
        XCTAssertEqual(sequence(&next, 4, now: 2 * second), "baaa")
        XCTAssertEqual(sequence(&fresh, 4, now: 2 * second), "abaa")
    }

    private func s(_: Scheduler, _ sched: inout Scheduler) -> Int? {
        sched.select(client: .none, now: 1 * second, tried: TriedSet())
    }
}
