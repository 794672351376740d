import XCTest
@testable import FerryCore

final class ClientLimitsTests: XCTestCase {
    private let a = ClientKey(ipv4: 127, 0, 0, 2)
    private let b = ClientKey(ipv4: 127, 0, 0, 3)
    private let c = ClientKey(ipv4: 127, 0, 0, 4)
    private let ms: UInt64 = 1_000_000

    func testZoneCountsPerAddressAndFrees() {
        let z = ConnectionZone(name: "perip", size: 1 << 20)
        XCTAssertEqual(z.capacity, 16_384, "64 bytes per address, as nginx on 64-bit")
        XCTAssertEqual([z.acquire(a, limit: 2), z.acquire(a, limit: 2), z.acquire(a, limit: 2)], [.admitted, .admitted, .overLimit])
        XCTAssertEqual(z.acquire(b, limit: 2), .admitted, "another address has its own count")
        z.release(a)
        XCTAssertEqual(z.acquire(a, limit: 2), .admitted)
        z.release(a); z.release(a); z.release(b)
        XCTAssertEqual(z.trackedAddresses, 0, "an address with no sessions takes no slot")
    }

    func testFullZoneRefusesNewAddressesOnly() {
        let z = ConnectionZone(name: "tiny", size: 128)
        XCTAssertEqual(z.capacity, 2)
        XCTAssertEqual(z.acquire(a, limit: 5), .admitted)
        XCTAssertEqual(z.acquire(b, limit: 5), .admitted)
        XCTAssertEqual(z.acquire(c, limit: 5), .zoneFull)
        XCTAssertEqual(z.acquire(a, limit: 5), .admitted, "a tracked address keeps its limit")
        XCTAssertEqual(z.fullRefusals, 1)
        z.release(b)
        XCTAssertEqual(z.acquire(c, limit: 5), .admitted, "the freed slot is reused")
    }

    /// nginx's limit_req arithmetic: 10r/s burst=0 admits one connection per 100 ms.
    func testRateWithoutBurst() {
        let r = ConnectionRate(ConnectionRateConfig(milliPerSecond: 10_000, burst: 0))
        var t: UInt64 = 1_000 * ms
        XCTAssertTrue(r.admit(a, now: t))
        XCTAssertFalse(r.admit(a, now: t + 50 * ms))
        XCTAssertTrue(r.admit(b, now: t + 50 * ms), "other addresses are not affected")
        t += 100 * ms
        XCTAssertTrue(r.admit(a, now: t))
        XCTAssertFalse(r.admit(a, now: t + 99 * ms))
    }

    func testRateBurst() {
        let r = ConnectionRate(ConnectionRateConfig(milliPerSecond: 2_000, burst: 3))
        let t: UInt64 = 5_000 * ms
        // The first is free (a new bucket), then three more fit the burst, then refusal.
        let admitted = (0..<10).map { r.admit(a, now: t + UInt64($0) * ms) }
        XCTAssertEqual(admitted, [true, true, true, true, false, false, false, false, false, false])
        // 2 per second drains one slot every 500 ms.
        XCTAssertTrue(r.admit(a, now: t + 520 * ms))
        XCTAssertFalse(r.admit(a, now: t + 530 * ms))
    }

    /// Any burst the file may write, up to Int.max, admits without overflowing (it trapped at
    /// the second connection of a client once burst * 1000 passed Int64.max).
    func testHugeBurstAdmitsWithoutOverflow() {
        for burst in [9_223_372_036_854_776, Int.max] {
            let r = ConnectionRate(ConnectionRateConfig(milliPerSecond: 10_000, burst: burst))
            XCTAssertEqual((0..<1000).filter { r.admit(a, now: UInt64($0) * 1000) }.count, 1000)
        }
    }

    func testRateTableBoundSweepsDrainedBuckets() {
        let r = ConnectionRate(ConnectionRateConfig(milliPerSecond: 1_000, burst: 0), maxAddresses: 2)
        let t: UInt64 = 10_000 * ms
        XCTAssertTrue(r.admit(a, now: t))
        XCTAssertTrue(r.admit(b, now: t))
        XCTAssertFalse(r.admit(c, now: t + 10 * ms), "table full of live buckets: a new address is refused")
        XCTAssertTrue(r.admit(a, now: t + 1_100 * ms), "a's bucket has drained")
        XCTAssertTrue(r.admit(c, now: t + 2_500 * ms), "drained buckets are swept to make room")
        XCTAssertLessThanOrEqual(r.trackedAddresses, 2)
    }

    func testLimitsCheckRateThenEveryZoneAndUndoOnRefusal() {
        let z1 = ConnectionZone(name: "one", size: 1 << 16), z2 = ConnectionZone(name: "two", size: 1 << 16)
        let limits = ClientLimits(zones: [(z1, 3), (z2, 1)], rate: nil)
        XCTAssertNil(limits.admit(a, now: 0))
        XCTAssertEqual(limits.admit(a, now: 0), .overLimit(zone: "two"))
        XCTAssertEqual(z1.sessions(of: a), 1, "the count taken in the first zone is given back")
        limits.release(a)
        XCTAssertEqual(z1.sessions(of: a) + z2.sessions(of: a), 0)
        let rated = ClientLimits(zones: [(z1, 3)], rate: ConnectionRate(ConnectionRateConfig(milliPerSecond: 1000)))
        XCTAssertNil(rated.admit(b, now: 1))
        XCTAssertEqual(rated.admit(b, now: 2), .rate)
        XCTAssertEqual(z1.sessions(of: b), 1, "a rate refusal takes no zone count")
    }
}
