import XCTest
import FerryCore

/// The CLI's own argument handling, through the real binary.
final class CommandLineTests: XCTestCase {
    func testVersionAndUnknownOption() throws {
        let v = try FerryProcess.runToCompletion(["-v"])
        XCTAssertEqual(v.status, 0)
        XCTAssertEqual(v.stdout, "ferry version \(FerryCommand.version)\n")
        let bad = try FerryProcess.runToCompletion(["--frobnicate"])
        XCTAssertEqual(bad.status, 1)
        XCTAssertTrue(bad.stderr.hasPrefix("ferry: invalid option: \"--frobnicate\""), bad.stderr)
        let missing = try FerryProcess.runToCompletion(["-c"])
        XCTAssertEqual(missing.status, 1)
        XCTAssertEqual(missing.stderr, "ferry: option \"-c\" requires file name\n")
    }
}
