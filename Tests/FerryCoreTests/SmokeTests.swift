import XCTest
@testable import FerryCore

final class DurationTests: XCTestCase {
    func testCanonicalSpelling() {
        XCTAssertEqual(Duration(milliseconds: 5400_000).description, "90m")
        XCTAssertEqual(Duration(milliseconds: 1500).description, "1500ms")
        XCTAssertEqual(Duration.seconds(3600).description, "1h")
    }
}
