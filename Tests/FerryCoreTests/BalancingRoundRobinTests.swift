import XCTest
@testable import FerryCore

final class BalancingRoundRobinTests: XCTestCase {
    func testWeights511GiveExactlyAABACAA() {
        var s = Scheduler(method: .roundRobin, peers: servers(weights: [5, 1, 1]), seed: 0)
        XCTAssertEqual(sequence(&s, 14), "aabacaa" + "aabacaa")
    }

    func testTableOfExactCycles() {
        let table: [(weights: [Int], cycle: String)] = [
            ([1, 1, 1], "abc"),
            ([3, 1], "aaba"),
            ([2, 1], "aba"),
            ([5, 1], "aaabaa"),
            ([1, 2, 3], "cbacbc"),
        ]
        for row in table {
            var s = Scheduler(method: .roundRobin, peers: servers(weights: row.weights), seed: 0)
            XCTAssertEqual(sequence(&s, row.cycle.count * 3), row.cycle + row.cycle + row.cycle, "weights \(row.weights)")
        }
    }

    func testWeights3To1Within5PercentOver4000AndExactPerCycle() {
        var s = Scheduler(method: .roundRobin, peers: servers(weights: [3, 1]), seed: 0)
        var picks: [Int?] = []
        for _ in 0..<4000 { picks.append(s.select(client: .none, now: 0, tried: TriedSet())) }
        let c = counts(picks, servers: 2)
        XCTAssertEqual(Double(c[0]), 3000, accuracy: 3000 * 0.05)
        XCTAssertEqual(Double(c[1]), 1000, accuracy: 1000 * 0.05)
        // Every full cycle of 4 holds exactly three a and one b.
        for start in stride(from: 0, to: 4000, by: 4) {
            XCTAssertEqual(counts(Array(picks[start..<start + 4]), servers: 2), [3, 1], "cycle at \(start)")
        }
    }

    func testIneligibleServerIsSkippedWithoutDisturbingTheOthers() {
        let views = [5, 1, 1].map { PeerView(weight: $0, active: 0) }
        var rr = RoundRobin(peers: views, seed: 0)
        var out = ""
        // b out: a and c alone run their own 5:1 cycle and end it back at zero ...
        for _ in 0..<6 { out += letter(rr.select(peers: views, client: .none) { $0 != 1 }) }
        XCTAssertEqual(out, "aaacaa")
        // ... and b, untouched meanwhile, rejoins as if the upstream had just started.
        out = ""
        for _ in 0..<7 { out += letter(rr.select(peers: views, client: .none) { _ in true }) }
        XCTAssertEqual(out, "aabacaa")
    }

    func testRuntimeWeightChangeTakesEffect() {
        var s = Scheduler(method: .roundRobin, peers: servers(weights: [1, 1]), seed: 0)
        XCTAssertEqual(sequence(&s, 4), "abab")
        s.setWeight(1, 3)
        XCTAssertEqual(s.peers[1].weight, 3)
        XCTAssertEqual(sequence(&s, 8), "babb" + "babb")
    }
}
