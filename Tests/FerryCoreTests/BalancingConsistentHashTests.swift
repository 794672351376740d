import XCTest
import Glibc
@testable import FerryCore

// The measurement behind ConsistentHash's choice of ketama over rendezvous. Prints the table
// (swift test --filter BalancingConsistentHashTests) and asserts the properties that matter:
// about 1/N of clients move when one of N servers leaves, and shares stay even.
final class BalancingConsistentHashTests: XCTestCase {
    static let clients = 50_000

    private func views(_ n: Int, skipping removed: Int? = nil) -> [PeerView] {
        (0..<n).filter { $0 != removed }.map { PeerView(weight: 1, active: 0, identity: UInt64(5000 + $0)) }
    }

    /// Identity of each client's server; nil never occurs with every server eligible.
    private func placement<B: Balancer>(_ type: B.Type, _ peers: [PeerView]) -> [UInt64] {
        var b = B(peers: peers, seed: 0)
        return (0..<Self.clients).map { c in peers[b.select(peers: peers, client: loopbackClient(c)) { _ in true }!].identity }
    }

    private struct Row { var movement: Double; var balance: Double }

    private func measure<B: Balancer>(_ type: B.Type, n: Int) -> Row {
        let before = placement(type, views(n))
        let after = placement(type, views(n, skipping: n / 2))
        let movement = Double(zip(before, after).filter { $0 != $1 }.count) / Double(Self.clients)
        var share: [UInt64: Int] = [:]
        for s in before { share[s, default: 0] += 1 }
        return Row(movement: movement, balance: Double(share.values.max()!) / Double(share.values.min()!))
    }

    private func nanos(_ body: () -> Void) -> UInt64 {
        var a = timespec(), b = timespec()
        clock_gettime(CLOCK_MONOTONIC, &a)
        body()
        clock_gettime(CLOCK_MONOTONIC, &b)
        return UInt64(b.tv_sec - a.tv_sec) * 1_000_000_000 &+ UInt64(b.tv_nsec) &- UInt64(a.tv_nsec)
    }

    func testKetamaAndRendezvousMoveAboutOneNthAndBalance() {
        print("method      N  moved   ideal  max/min")
        for n in [3, 5, 10] {
            let k = measure(ConsistentHash.self, n: n)
            let r = measure(Rendezvous.self, n: n)
            for (name, row) in [("ketama    ", k), ("rendezvous", r)] {
                print("\(name) \(n < 10 ? " " : "")\(n)  \(pct(row.movement))  \(pct(1 / Double(n)))  \(fmt(row.balance))")
                XCTAssertLessThanOrEqual(row.movement, 1 / Double(n) + 0.02, "\(name) N \(n)")
                XCTAssertGreaterThanOrEqual(row.movement, 1 / Double(n) - 0.05, "\(name) N \(n): the departed server's clients must move")
            }
            XCTAssertLessThanOrEqual(k.balance, 1.15, "ketama N \(n)")
            XCTAssertLessThanOrEqual(r.balance, 1.10, "rendezvous N \(n)")
        }
    }

    func testCostAtTenThousandServers() {
        let peers = views(10_000)
        var ketama = ConsistentHash(peers: peers, seed: 0)
        var rendezvous = Rendezvous(peers: peers, seed: 0)
        let build = nanos { ketama = ConsistentHash(peers: peers, seed: 0) }
        var sink = 0
        let ketamaSelect = nanos {
            for c in 0..<1000 { sink &+= ketama.select(peers: peers, client: loopbackClient(c)) { _ in true }! }
        }
        let rendezvousSelect = nanos {
            for c in 0..<1000 { sink &+= rendezvous.select(peers: peers, client: loopbackClient(c)) { _ in true }! }
        }
        print("10,000 servers: ketama build \(build / 1_000_000) ms, \(ketama.pointCount) points; "
              + "per select: ketama \(ketamaSelect / 1000) ns, rendezvous \(rendezvousSelect / 1000) ns (debug build)")
        XCTAssertEqual(ketama.pointCount, 10_000 * 160)   // the cap leaves nginx's 160 each
        XCTAssertGreaterThan(sink, 0)
    }

    func testRingSizeIsCappedForLargeWeights() {
        let peers = (0..<1000).map { PeerView(weight: 100, active: 0, identity: UInt64($0)) }
        let ring = ConsistentHash(peers: peers, seed: 0)
        XCTAssertLessThanOrEqual(ring.pointCount, ConsistentHash.maxPoints)
        XCTAssertEqual(ring.pointCount, 1000 * 100 * 16)   // 1.6M / 100,000 weight units = 16 per unit
    }

    func testRingSizeIsCappedWhenTheTotalWeightExceedsTheCap() {
        // 4 x 1,000,000 weight units is more than maxPoints: each unit cannot have even one
        // point, so each server gets its share of the ring, and a light server keeps one.
        var peers = (0..<4).map { PeerView(weight: 1_000_000, active: 0, identity: UInt64($0)) }
        peers.append(PeerView(weight: 1, active: 0, identity: 99))
        let ring = ConsistentHash.build(peers)
        XCTAssertLessThanOrEqual(ring.count, ConsistentHash.maxPoints + peers.count)
        let perServer = Dictionary(grouping: ring, by: { Int($0 & 0xFFFF_FFFF) }).mapValues(\.count)
        XCTAssertEqual(perServer[0], 1_600_000 * 1_000_000 / 4_000_001)
        XCTAssertEqual(perServer[4], 1)
    }

    // MARK: runtime weight changes (small rings: a fresh build per step must stay cheap in a debug build)

    /// Agent- and admin-style weight changes, one to three servers at a time, each checked
    /// against a ring built afresh from the same views: swapping servers' points must give
    /// exactly the ring (and so the placement) a fresh build gives, whatever came before.
    /// 210 changes; the third upstream has weights raised to 3x the file's, past the configured total.
    func testWeightChangesGiveTheRingAFreshBuildGives() {
        let upstreams: [(servers: Int, weight: Int, maxPercent: Int)] = [(5, 2, 100), (8, 1, 100), (3, 1, 300)]
        var rng = SplitMix64(seed: 0xC4A5_4001)
        for u in upstreams {
            var views = (0..<u.servers).map { PeerView(weight: u.weight, active: 0, identity: HashMix.name("s\($0)")) }
            var ring = ConsistentHash(peers: views, seed: 0)
            for step in 0..<70 {
                for _ in 0...rng.next(below: 3) {
                    let i = rng.next(below: u.servers)
                    views[i].weight = views[i].configWeight * rng.next(below: u.maxPercent + 1) / 100
                    if rng.next(below: 20) == 0 { views[i].identity = rng.next() }   // a reload renamed it
                }
                ring.peersChanged(views)
                let fresh = ConsistentHash.build(views)
                guard ring.entries == fresh else {
                    return XCTFail("\(u.servers) x \(u.weight), change \(step), weights \(views.map(\.weight)): "
                                   + "\(ring.entries.count) entries, a fresh build has \(fresh.count)")
                }
            }
        }
    }

    /// The swap itself, with any point counts (as a capped ring's sizing gives) and identity
    /// changes: 300 random replacements, each compared with a ring made from scratch.
    func testSwappingPointsGivesTheRingAFreshBuildGives() {
        var rng = SplitMix64(seed: 5)
        var identities = (0..<30).map { UInt64(1000 + $0) }
        var counts = (0..<30).map { _ in rng.next(below: 60) }
        var ring = KetamaRing(identities: identities, counts: counts)
        for step in 0..<300 {
            var servers: [Int] = []
            for _ in 0...rng.next(below: 4) {
                let i = rng.next(below: 30)
                if servers.contains(i) { continue }
                servers.append(i)
                counts[i] = rng.next(below: 8) == 0 ? 0 : rng.next(below: 60)
                if rng.next(below: 10) == 0 { identities[i] = rng.next() }
            }
            ring.replace(servers: servers, identities: identities, counts: counts)
            guard ring == KetamaRing(identities: identities, counts: counts) else {
                return XCTFail("step \(step), servers \(servers), counts \(counts)")
            }
        }
    }

    /// The same property seen from clients: after every change, 1,000 clients land where a
    /// freshly built balancer sends them, with one server ineligible so the walk is used too.
    func testWeightChangesPlaceClientsAsAFreshRingDoes() {
        var rng = SplitMix64(seed: 77)
        var views = (0..<6).map { PeerView(weight: $0 + 1, active: 0, identity: UInt64(300 + $0)) }
        var ring = ConsistentHash(peers: views, seed: 0)
        for step in 0..<40 {
            let i = rng.next(below: views.count)
            views[i].weight = rng.next(below: views[i].configWeight + 1)
            ring.peersChanged(views)
            var fresh = ConsistentHash(peers: views, seed: 0)
            let down = rng.next(below: views.count)
            let eligible = { (s: Int) in s != down && views[s].weight > 0 }
            for c in 0..<1000 {
                let got = ring.select(peers: views, client: loopbackClient(c), isEligible: eligible)
                let want = fresh.select(peers: views, client: loopbackClient(c), isEligible: eligible)
                guard got == want else { return XCTFail("change \(step), client \(c): \(String(describing: got)) != \(String(describing: want))") }
            }
        }
    }

    /// Sizing follows the configured total, so while runtime weights stay under it one
    /// server's change leaves every other server's point count alone, even in a capped ring
    /// (20 x 256: 312 points per unit of weight); past it the ring stays under the cap.
    func testAWeightChangeBelowTheConfiguredTotalKeepsTheOtherServersCounts() {
        var views = (0..<20).map { PeerView(weight: 256, active: 0, identity: UInt64($0)) }
        XCTAssertEqual(ConsistentHash.counts(views), Array(repeating: 256 * 312, count: 20))
        views[3].weight = 192   // an agent's 75%
        var expected = Array(repeating: 256 * 312, count: 20)
        expected[3] = 192 * 312
        XCTAssertEqual(ConsistentHash.counts(views), expected)
        views[3].weight = 0
        expected[3] = 0
        XCTAssertEqual(ConsistentHash.counts(views), expected)
        views[3].weight = 100_000
        XCTAssertLessThanOrEqual(ConsistentHash.counts(views).reduce(0, +), ConsistentHash.maxPoints)
        // More weight units than maxPoints: shares of the ring, also sized by the configured total.
        var heavy = (0..<4).map { PeerView(weight: 1_000_000, active: 0, identity: UInt64($0)) }
        heavy[0].weight = 500_000
        XCTAssertEqual(ConsistentHash.counts(heavy), [200_000, 400_000, 400_000, 400_000])
    }

    /// Weights raised past the configured total (admin `weight 7` over the file's 1-5, agents
    /// above 100%): the ring is re-sized only when the total crosses a power of two times the
    /// configured one, so the next raise inside the same basis changes one server's count.
    /// Sized by the runtime total, every raise changed every count and rebuilt the whole ring
    /// (500 servers: 170 ms per agent reply, 96 s for a reload carrying the weights).
    func testRaisesPastTheConfiguredTotalChangeOnlyTheRaisedServerUntilTheTotalDoubles() {
        var views = (0..<20).map { PeerView(weight: 256, active: 0, identity: UInt64($0)) }   // capped: 312 per unit
        views[3].weight = 300                       // total 5,164 > 5,120: basis 10,240, 156 per unit
        var before = ConsistentHash.counts(views)
        XCTAssertEqual(before[0], 256 * 156)
        XCTAssertEqual(before[3], 300 * 156)
        for i in 4..<20 {                           // every raise stays under 10,240 (total 5,868 at the end)
            views[i].weight = 300
            let after = ConsistentHash.counts(views)
            let changed = after.indices.filter { after[$0] != before[$0] }
            XCTAssertEqual(changed, [i], "raising server \(i)")
            before = after
        }
        XCTAssertLessThanOrEqual(before.reduce(0, +), ConsistentHash.maxPoints)
        for i in 0..<20 { views[i].weight = 1_024 }  // 20,480 > 10,240: basis 20,480, 78 per unit
        XCTAssertEqual(ConsistentHash.counts(views), Array(repeating: 1_024 * 78, count: 20))
    }

    /// Opt-in measurement (FERRY_PERF=1, meaningful with -c release; bench/chash-rebuild.sh
    /// is the quicker way): a full build against one server's weight change, 20 x 256.
    func testCostOfOneWeightChange() throws {
        guard getenv("FERRY_PERF") != nil else { throw XCTSkip("set FERRY_PERF=1 to measure") }
        var views = (0..<20).map { PeerView(weight: 256, active: 0, identity: UInt64($0)) }
        var ring = ConsistentHash(peers: views, seed: 0)
        let build = nanos { ring = ConsistentHash(peers: views, seed: 0) }
        let points = ring.pointCount
        var changes: [UInt64] = []
        for k in 0..<21 {
            // Every change is real: a server goes to 75% (an agent's reply) or back to 100%.
            views[k % 20].weight = views[k % 20].weight == 256 ? 192 : 256
            changes.append(nanos { ring.peersChanged(views) })
        }
        changes.sort()
        print("20 x 256, \(points) points: full build \(build / 1000) us, one weight change median \(changes[10] / 1000) us")
    }

    private func pct(_ x: Double) -> String { fmt(x * 100) + "%" }
    private func fmt(_ x: Double) -> String {
        let r = (x * 100).rounded() / 100
        var s = "\(r)"
        while s.split(separator: ".").last!.count < 2 { s += "0" }
        return s
    }
}
