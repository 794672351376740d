import XCTest
@testable import FerryCore

final class BalancingRandomTests: XCTestCase {
    func testSplitMix64MatchesTheReferenceOutputForSeedZero() {
        // Reference values of Vigna's splitmix64.c with x = 0.
        var g = SplitMix64(seed: 0)
        XCTAssertEqual(g.next(), 0xE220_A839_7B1D_CDAF)
        XCTAssertEqual(g.next(), 0x6E78_9E6A_A1B9_65F4)
        XCTAssertEqual(g.next(), 0x06C4_5D18_8009_454F)
    }

    func testSameSeedSameSequenceDifferentSeedDifferentSequence() {
        for two in [false, true] {
            var a = Scheduler(method: .random(two: two, leastConn: false), peers: servers(weights: [1, 1, 1, 1]), seed: 42)
            var b = Scheduler(method: .random(two: two, leastConn: false), peers: servers(weights: [1, 1, 1, 1]), seed: 42)
            var c = Scheduler(method: .random(two: two, leastConn: false), peers: servers(weights: [1, 1, 1, 1]), seed: 43)
            let sa = sequence(&a, 40), sb = sequence(&b, 40), sc = sequence(&c, 40)
            XCTAssertEqual(sa, sb)
            XCTAssertNotEqual(sa, sc)
            XCTAssertEqual(Set(sa), Set("abcd"), "all four servers drawn in 40 tries")
        }
    }

    func testRandomFollowsWeights() {
        var s = Scheduler(method: .random(two: false, leastConn: false), peers: servers(weights: [3, 1]), seed: 9)
        var picks: [Int?] = []
        for _ in 0..<4000 { picks.append(s.select(client: .none, now: 0, tried: TriedSet())) }
        let c = counts(picks, servers: 2)
        XCTAssertEqual(Double(c[0]), 3000, accuracy: 150)
        XCTAssertEqual(Double(c[1]), 1000, accuracy: 150)
    }

    func testRandomTwoKeepsTheLessLoadedOfTwoRelativeToWeight() {
        // Two servers: both are always drawn, so the less loaded one always wins.
        var s = Scheduler(method: .random(two: true, leastConn: true), peers: servers(weights: [1, 1]), seed: 5)
        for _ in 0..<5 { s.sessionOpened(0) }
        XCTAssertEqual(sequence(&s, 50), String(repeating: "b", count: 50))
        // Relative to weight: a has 5 sessions at weight 10 (0.5), b 1 session at weight 1 (1.0).
        s.setWeight(0, 10)
        s.sessionOpened(1)
        XCTAssertEqual(sequence(&s, 50), String(repeating: "a", count: 50))
    }

    func testRandomTwoSpreadsSessionsEvenly() {
        var s = Scheduler(method: .random(two: true, leastConn: false), peers: servers(weights: [1, 1, 1, 1, 1]), seed: 11)
        _ = openSessions(&s, 500)
        let active = s.peers.map(\.active)
        XCTAssertLessThanOrEqual(active.max()! - active.min()!, 4, "\(active)")
    }

    func testRandomRespectsEligibility() {
        for two in [false, true] {
            var s = Scheduler(method: .random(two: two, leastConn: true), peers: servers(weights: [1, 1, 1]), seed: 1)
            s.update(0) { $0.admin = .drain }
            var tried = TriedSet()
            tried.insert(2)
            XCTAssertEqual(sequence(&s, 100, tried: tried), String(repeating: "b", count: 100))
        }
    }
}
