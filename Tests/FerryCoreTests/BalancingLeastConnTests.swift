import XCTest
@testable import FerryCore

final class BalancingLeastConnTests: XCTestCase {
    func testEqualWeightsOpeningSessionsExactSequenceAndSpreadWithinOne() {
        var s = Scheduler(method: .leastConn, peers: servers(weights: [1, 1, 1]), seed: 0)
        // Ties go by smooth round robin among the tied servers only (worked by hand).
        XCTAssertEqual(openSessions(&s, 6), "abccba")
        for _ in 0..<30 {
            _ = openSessions(&s, 1)
            let active = s.peers.map(\.active)
            XCTAssertLessThanOrEqual(active.max()! - active.min()!, 1, "active \(active)")
        }
        XCTAssertEqual(s.peers.map(\.active), [12, 12, 12])
    }

    func testClosedSessionsAreRefilledFirst() {
        var s = Scheduler(method: .leastConn, peers: servers(weights: [1, 1, 1]), seed: 0)
        _ = openSessions(&s, 6)
        s.sessionClosed(0)
        s.sessionClosed(0)
        s.sessionClosed(2)
        XCTAssertEqual(s.peers.map(\.active), [0, 2, 1])
        XCTAssertEqual(openSessions(&s, 2), "aa")
        XCTAssertEqual(s.peers.map(\.active), [2, 2, 1])
        XCTAssertEqual(openSessions(&s, 1), "c")
    }

    func testWeightsAreHonouredByCrossMultiplication() {
        let table: [(weights: [Int], opens: Int, active: [Int])] = [
            ([3, 1], 8, [6, 2]),
            ([1, 3], 8, [2, 6]),
            ([2, 1, 1], 12, [6, 3, 3]),
            ([5, 1, 1], 14, [10, 2, 2]),
        ]
        for row in table {
            var s = Scheduler(method: .leastConn, peers: servers(weights: row.weights), seed: 0)
            _ = openSessions(&s, row.opens)
            XCTAssertEqual(s.peers.map(\.active), row.active, "weights \(row.weights)")
        }
    }

    func testWithoutSessionsLeastConnIsSmoothWeightedRoundRobin() {
        // Nothing is ever opened, so every server ties at 0 and the tie-break alone decides.
        var s = Scheduler(method: .leastConn, peers: servers(weights: [5, 1, 1]), seed: 0)
        XCTAssertEqual(sequence(&s, 7), "aabacaa")
    }

    func testFullServerIsSkippedByLeastConn() {
        var peers = servers(weights: [1, 1])
        peers[0].maxConns = 1
        var s = Scheduler(method: .leastConn, peers: peers, seed: 0)
        XCTAssertEqual(openSessions(&s, 4), "abbb")
    }

    /// nginx's effective weight under least_conn: a failure lowers the server's share of the
    /// tie-break only. Back from fail_timeout with no sessions against b's two, a wins on load
    /// by its full weight, with no tie and so no ramp; at 6:2 they tie, and a's share, still
    /// coming back, loses the tie-break to b. (Sequence from a model of nginx's
    /// ngx_stream_upstream_get_least_conn_peer; without the lowered share a takes a seventh.)
    func testAFailureLowersOnlyTheTieBreakShare() {
        var peers = [server(weight: 3, maxFails: 1, failTimeout: 10 * second), server(weight: 1)]
        peers[1].maxFails = 0
        var s = Scheduler(method: .leastConn, peers: peers, seed: 0)
        XCTAssertEqual(s.select(client: .none, now: 1 * second, tried: TriedSet()), 0)
        s.sessionOpened(0)
        s.connectFailed(0, now: 1 * second)
        s.sessionClosed(0)
        var tried = TriedSet()
        tried.insert(0)
        XCTAssertEqual(s.select(client: .none, now: 1 * second, tried: tried), 1, "the retry")
        s.sessionOpened(1)
        XCTAssertEqual(openSessions(&s, 1, now: 5 * second), "b", "a is out for fail_timeout")
        var out = ""
        for _ in 0..<10 {
            let i = s.select(client: .none, now: 12 * second, tried: TriedSet())
            if let i { s.sessionOpened(i); s.connectSucceeded(i, now: 12 * second) }
            out += letter(i)
        }
        XCTAssertEqual(out, "aaaaaa" + "b" + "aaa")
        XCTAssertEqual(s.peers.map(\.active), [9, 3])
    }
}
