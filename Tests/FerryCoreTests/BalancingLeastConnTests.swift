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
}
