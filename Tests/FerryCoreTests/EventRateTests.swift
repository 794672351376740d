import XCTest
@testable import FerryCore

/// EventRate against hand-computed figures: HAProxy's estimate of the last second (this
/// second's count plus the previous one's, weighted by what is left of this second) and the
/// most events one second saw.
final class EventRateTests: XCTestCase {
    let s: UInt64 = 1_000_000_000

    func testCountsWithinASecondAndCarriesThePreviousOneOver() {
        var r = EventRate()
        for k in 0..<4 { r.record(now: 10 * s + UInt64(k) * 1000) }
        XCTAssertEqual(r.perSecond(now: 10 * s + s / 2), 4)
        XCTAssertEqual(r.max, 4)
        // A quarter into the next second: 3/4 of the 4 before, none yet in this one.
        XCTAssertEqual(r.perSecond(now: 11 * s + s / 4), 3)
        r.record(now: 11 * s + s / 4)
        XCTAssertEqual(r.perSecond(now: 11 * s + s / 4), 4, "1 now + 3/4 of 4")
        XCTAssertEqual(r.max, 4, "the maximum is of one second's count")
        // Two seconds on, nothing is left of either.
        XCTAssertEqual(r.perSecond(now: 13 * s), 0)
        r.record(now: 13 * s)
        XCTAssertEqual(r.perSecond(now: 13 * s + s / 2), 1, "a gap of a second drops the old count")
    }

    func testClearMaxKeepsTheCurrentRate() {
        var r = EventRate()
        for _ in 0..<5 { r.record(now: 7 * s) }
        r.clearMax()
        XCTAssertEqual(r.max, 0)
        XCTAssertEqual(r.perSecond(now: 7 * s), 5)
        r.record(now: 7 * s + 1)
        XCTAssertEqual(r.max, 6, "the next event sets the maximum from this second's count")
    }

    func testTheFirstSecondOfTheClock() {
        var r = EventRate()
        XCTAssertEqual(r.perSecond(now: 0), 0)
        r.record(now: 5)
        XCTAssertEqual(r.perSecond(now: 6), 1)
        XCTAssertEqual(r.max, 1)
    }
}
