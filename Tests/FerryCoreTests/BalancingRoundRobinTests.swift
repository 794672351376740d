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

    /// nginx's effective weight. Sequences worked out from ngx_stream_upstream_get_peer and
    /// _free_round_robin_peer by hand (and cross-checked in a one-off model of that C).
    /// a (weight 3, max_fails=1) refuses once; b (weight 1) counts no failures.
    func testServerBackFromFailTimeoutIsEasedInAsNginxDoes() {
        for method in [BalancingMethodConfig.roundRobin, .leastConn] {
            var peers = [server(weight: 3, maxFails: 1, failTimeout: 10 * second), server(weight: 1)]
            peers[1].maxFails = 0
            var s = Scheduler(method: method, peers: peers, seed: 0)
            var tried = TriedSet()
            XCTAssertEqual(s.select(client: .none, now: 1 * second, tried: tried), 0)
            s.connectFailed(0, now: 1 * second)
            tried.insert(0)
            XCTAssertEqual(s.select(client: .none, now: 1 * second, tried: tried), 1, "the retry")
            XCTAssertEqual(sequence(&s, 3, now: 5 * second), "bbb", "a is out for fail_timeout")
            // Back: a's weight fell to 0 and comes back one unit per selection, so b keeps two
            // more sessions before a takes its trial. Without the ramp a would be picked at once.
            var out = ""
            for _ in 0..<12 {
                let i = s.select(client: .none, now: 12 * second, tried: TriedSet())
                if let i { s.connectSucceeded(i, now: 12 * second) }
                out += letter(i)
            }
            XCTAssertEqual(out, "bb" + "aab" + "aaab" + "aaa", "\(method)")
            XCTAssertEqual(s.peers[0].fails, 0, "the trial succeeded")
        }
    }

    /// max_fails=5 on a (weight 5): each failure takes 1 off for a while, a stays eligible.
    func testEachFailureLowersTheShareByWeightOverMaxFails() {
        var peers = [server(weight: 5, maxFails: 5, failTimeout: 10 * second), server(weight: 1), server(weight: 1)]
        peers[1].maxFails = 0
        peers[2].maxFails = 0
        var s = Scheduler(method: .roundRobin, peers: peers, seed: 0)
        XCTAssertEqual(s.select(client: .none, now: 1 * second, tried: TriedSet()), 0)
        s.connectFailed(0, now: 1 * second)
        var triedA = TriedSet()
        triedA.insert(0)
        XCTAssertEqual(s.select(client: .none, now: 1 * second, tried: triedA), 1)
        XCTAssertEqual(sequence(&s, 14, now: 2 * second), "caabaaa" + "caabaaa")
        XCTAssertEqual(s.verdict(0, now: 2 * second), .eligible, "one failure of five")
    }

    func testFailuresAreNotCountedAgainstTheShareWithMaxFailsZero() {
        var peers = servers(weights: [3, 1])
        peers[0].maxFails = 0
        var s = Scheduler(method: .roundRobin, peers: peers, seed: 0)
        XCTAssertEqual(s.select(client: .none, now: 0, tried: TriedSet()), 0)
        for _ in 0..<5 { s.connectFailed(0, now: 0) }
        // The plain 3:1 cycle a a b a, twice, as if nothing had failed.
        XCTAssertEqual(sequence(&s, 7, now: 0), "aba" + "aaba")
    }
}
