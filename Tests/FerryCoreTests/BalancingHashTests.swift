import XCTest
@testable import FerryCore

final class BalancingHashTests: XCTestCase {
    static let clients = 10_000

    private func assignments(_ s: inout Scheduler, clients: Int = BalancingHashTests.clients) -> [Int?] {
        (0..<clients).map { s.select(client: loopbackClient($0), now: 0, tried: TriedSet()) }
    }

    func testAClientStaysOnOneServerForBothVariants() {
        for consistent in [false, true] {
            var s = Scheduler(method: .hash(consistent: consistent), peers: servers(weights: [1, 1, 1, 1]), seed: 0)
            for c in [ClientKey(ipv4: 10, 0, 0, 1), ClientKey(ipv4: 192, 168, 1, 77), ClientKey(high: 0x2001_0db8_0000_0000, low: 42)] {
                let first = s.select(client: c, now: 0, tried: TriedSet())
                XCTAssertNotNil(first)
                for _ in 0..<50 { XCTAssertEqual(s.select(client: c, now: 0, tried: TriedSet()), first, "consistent \(consistent)") }
            }
        }
    }

    func testManyClientsSpreadEvenlyAndByWeight() {
        let table: [(consistent: Bool, weights: [Int], tolerance: Double)] = [
            (false, [1, 1, 1, 1], 0.05),
            (false, [3, 1], 0.05),
            (true, [1, 1, 1, 1], 0.08),   // ketama's 1,000 points per server: a few percent of arc noise
            (true, [3, 1], 0.08),
        ]
        for row in table {
            var s = Scheduler(method: .hash(consistent: row.consistent), peers: servers(weights: row.weights), seed: 0)
            let c = counts(assignments(&s), servers: row.weights.count)
            let total = row.weights.reduce(0, +)
            for (i, w) in row.weights.enumerated() {
                let expected = Double(BalancingHashTests.clients * w) / Double(total)
                XCTAssertEqual(Double(c[i]), expected, accuracy: expected * row.tolerance,
                               "consistent \(row.consistent) weights \(row.weights) counts \(c)")
            }
        }
    }

    func testIneligibleServerMovesOnlyItsOwnClientsInBothVariants() {
        for consistent in [false, true] {
            for n in [3, 5, 10] {
                var s = Scheduler(method: .hash(consistent: consistent), peers: servers(weights: Array(repeating: 1, count: n)), seed: 0)
                let before = assignments(&s)
                s.update(n - 1) { $0.admin = .maint }
                let after = assignments(&s)
                var moved = 0
                for (b, a) in zip(before, after) {
                    XCTAssertNotEqual(a, n - 1)
                    if b != n - 1 { XCTAssertEqual(a, b, "a client of a surviving server moved (consistent \(consistent), N \(n))") }
                    if a != b { moved += 1 }
                }
                let fraction = Double(moved) / Double(BalancingHashTests.clients)
                XCTAssertLessThanOrEqual(fraction, 1 / Double(n) + 0.03, "consistent \(consistent) N \(n)")
                // The departed server's clients are spread over the survivors, not dumped on one.
                let survivors = counts(after, servers: n)
                XCTAssertLessThan(Double(survivors.max()!), Double(BalancingHashTests.clients) / Double(n - 1) * 1.35, "\(survivors)")
            }
        }
    }

    func testConsistentHashRemovingOneOfNServersOnReloadMovesAboutOneNth() {
        for n in [3, 5, 10] {
            var all = servers(weights: Array(repeating: 1, count: n))
            for i in all.indices { all[i].identity = UInt64(1000 + i) }
            var before = Scheduler(method: .hash(consistent: true), peers: all, seed: 0)
            let removed = n / 2
            var rest = all
            rest.remove(at: removed)
            var after = Scheduler(method: .hash(consistent: true), peers: rest, seed: 0)
            var moved = 0
            for c in 0..<BalancingHashTests.clients {
                let b = before.select(client: loopbackClient(c), now: 0, tried: TriedSet()).map { all[$0].identity! }
                let a = after.select(client: loopbackClient(c), now: 0, tried: TriedSet()).map { rest[$0].identity! }
                if b != all[removed].identity { XCTAssertEqual(a, b, "N \(n): a surviving server's client moved") }
                if a != b { moved += 1 }
            }
            XCTAssertLessThanOrEqual(Double(moved) / Double(BalancingHashTests.clients), 1 / Double(n) + 0.05, "N \(n)")
        }
    }

    func testNonConsistentHashRemapsMostClientsWhenTheListChanges() {
        // The reason `consistent` exists: without it, removing a server reshuffles everyone.
        var before = Scheduler(method: .hash(consistent: false), peers: servers(weights: [1, 1, 1, 1, 1]), seed: 0)
        var after = Scheduler(method: .hash(consistent: false), peers: servers(weights: [1, 1, 1, 1]), seed: 0)
        var moved = 0
        for c in 0..<BalancingHashTests.clients {
            let b = before.select(client: loopbackClient(c), now: 0, tried: TriedSet())
            let a = after.select(client: loopbackClient(c), now: 0, tried: TriedSet())
            if a != b { moved += 1 }
        }
        XCTAssertGreaterThan(Double(moved) / Double(BalancingHashTests.clients), 0.5)
    }

    func testSourceHashFallsBackToRoundRobinWhenRehashesMiss() {
        // One eligible server out of 200: 21 hashes almost surely miss it, round robin finds it.
        var peers = servers(weights: Array(repeating: 1, count: 200))
        for i in peers.indices where i != 137 { peers[i].configDown = true }
        for consistent in [false, true] {
            var s = Scheduler(method: .hash(consistent: consistent), peers: peers, seed: 0)
            for c in 0..<100 { XCTAssertEqual(s.select(client: loopbackClient(c), now: 0, tried: TriedSet()), 137) }
        }
    }

    func testHashTriedServerIsNotReturnedAndTheRetryIsStable() {
        for consistent in [false, true] {
            var s = Scheduler(method: .hash(consistent: consistent), peers: servers(weights: [1, 1, 1, 1, 1]), seed: 0)
            let c = ClientKey(ipv4: 10, 1, 2, 3)
            let first = s.select(client: c, now: 0, tried: TriedSet())!
            var tried = TriedSet()
            tried.insert(first)
            let retry = s.select(client: c, now: 0, tried: tried)
            XCTAssertNotNil(retry)
            XCTAssertNotEqual(retry, first)
            XCTAssertEqual(s.select(client: c, now: 0, tried: tried), retry, "consistent \(consistent)")
        }
    }

    func testClientKeyHashIsIndependentOfSeed() {
        var a = Scheduler(method: .hash(consistent: false), peers: servers(weights: [1, 1, 1]), seed: 1)
        var b = Scheduler(method: .hash(consistent: false), peers: servers(weights: [1, 1, 1]), seed: 99)
        XCTAssertEqual(assignments(&a, clients: 500), assignments(&b, clients: 500))
    }

    /// nginx's ip_hash keys an IPv4 client by its first three octets, so every client of one
    /// /24 (a NAT pool, a carrier rotating the last octet) lands on one server; IPv6 clients
    /// are keyed by the whole address.
    func testIPHashKeysIPv4ByTheFirstThreeOctets() {
        var s = Scheduler(method: .ipHash, peers: servers(weights: [1, 1, 1, 1, 1]), seed: 0)
        var seen = Set<Int>()
        for net in 0..<40 {
            let picks = Set((1...254).map { s.select(client: ClientKey(ipv4: 10, 7, UInt8(net), UInt8($0)), now: 0, tried: TriedSet())! })
            XCTAssertEqual(picks.count, 1, "10.7.\(net).0/24 went to \(picks.sorted())")
            seen.formUnion(picks)
        }
        XCTAssertEqual(seen.count, 5, "40 networks should reach every server")
        let v6 = Set((0..<200).map { s.select(client: ClientKey(high: 0x2001_0db8_0000_0000, low: UInt64($0)), now: 0, tried: TriedSet())! })
        XCTAssertEqual(v6.count, 5, "IPv6 clients are keyed by the whole address")
        // Beyond the key it is the source hash: an unavailable server moves only its own networks.
        let before = (0..<200).map { s.select(client: ClientKey(ipv4: 10, 8, UInt8($0), 1), now: 0, tried: TriedSet())! }
        s.update(2) { $0.admin = .maint }
        let after = (0..<200).map { s.select(client: ClientKey(ipv4: 10, 8, UInt8($0), 1), now: 0, tried: TriedSet())! }
        for (b, a) in zip(before, after) where b != 2 { XCTAssertEqual(a, b) }
    }

    /// `hash $remote_addr` keys by the whole address: clients of one /24 spread.
    func testHashRemoteAddrKeysByTheWholeAddress() {
        var s = Scheduler(method: .hash(consistent: false), peers: servers(weights: [1, 1, 1, 1, 1]), seed: 0)
        let picks = Set((1...254).map { s.select(client: ClientKey(ipv4: 10, 7, 0, UInt8($0)), now: 0, tried: TriedSet())! })
        XCTAssertEqual(picks.count, 5)
    }

    /// Weight 0 is the admin socket's drain and agents move weights every few seconds; on the
    /// non-consistent hash that must not reshuffle the clients of every other server. The map
    /// keeps the configured weights (nginx has no runtime weights; HAProxy's map-based hash
    /// takes only 0% and 100% at runtime), so weight 0 moves only the drained server's
    /// clients, like `state drain`, and another weight moves nobody.
    func testRuntimeWeightChangesMoveOnlyTheDrainedServersClients() {
        for method in [BalancingMethodConfig.hash(consistent: false), .ipHash] {
            var s = Scheduler(method: method, peers: servers(weights: [1, 1, 1, 1, 1]), seed: 0)
            let before = assignments(&s)
            s.setWeight(2, 0)
            let drained = assignments(&s)
            for (b, a) in zip(before, drained) {
                XCTAssertNotEqual(a, 2)
                if b != 2 { XCTAssertEqual(a, b, "\(method): weight 0 on server 2 moved a client of server \(b!)") }
            }
            s.setWeight(2, 1)
            XCTAssertEqual(assignments(&s), before, "\(method): weight restored, clients back")
            s.setWeight(1, 3)
            XCTAssertEqual(assignments(&s), before, "\(method): another weight moves nobody")
        }
    }
}
