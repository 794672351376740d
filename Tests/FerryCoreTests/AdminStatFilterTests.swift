import XCTest
@testable import FerryCore

/// `show stat`'s arguments as StatFilter reads them, without a running ferry.
final class AdminStatFilterTests: XCTestCase {
    private func parse(_ line: String) -> Result<StatFilter, AdminAnswer> {
        let names = ["cccam": 2, "127.0.0.1:12000": 3]
        return StatFilter.parse(ArraySlice(line.split(separator: " ").map(String.init)), proxyID: { names[$0] })
    }

    private func filter(_ line: String, file: StaticString = #filePath, line number: UInt = #line) -> StatFilter? {
        guard case .success(let f) = parse(line) else { XCTFail("\(line) refused", file: file, line: number); return nil }
        return f
    }

    func testFiltersAsHAProxyReadsThem() {
        XCTAssertEqual(filter(""), StatFilter())
        XCTAssertEqual(filter("-1 -1 -1"), StatFilter())
        var servers = StatFilter(); servers.frontends = false; servers.backends = false
        XCTAssertEqual(filter("-1 4 -1"), servers)
        XCTAssertEqual(filter("domain proxy -1 4 -1"), servers)
        var one = StatFilter(); one.proxyID = 2; one.serverID = 3
        XCTAssertEqual(filter("cccam -1 3"), one)
        XCTAssertEqual(filter("2 -1 3"), one)
        var none = StatFilter(); none.frontends = false; none.backends = false; none.servers = false
        XCTAssertEqual(filter("-1 0 -1"), none, "type 0 selects no row, as in HAProxy")
        var flags = StatFilter(); flags.upOnly = true; flags.noMaint = true
        XCTAssertEqual(filter("up no-maint desc"), flags)
        XCTAssertEqual(filter("127.0.0.1:12000 1 -1")?.proxyID, 3, "a frontend by the address it listens on")
    }

    func testRefusals() {
        for line in ["zz -1 -1", "0 -1 -1", "-1 x -1", "-1 -2 -1", "-1 4 y", "-1 4 -2", "cccam 4", "-1 up", "json",
                     "-1 4 -1 typed", "domain", "domain resolvers", "extra"] {
            guard case .failure(let answer) = parse(line) else { XCTFail("\(line) accepted"); continue }
            XCTAssertEqual(answer.kind, .error, line)
            XCTAssertFalse(answer.text.isEmpty, line)
        }
    }

    func testServerRowsUnderUpAndNoMaint() {
        var f = StatFilter(); f.upOnly = true
        XCTAssertTrue(f.showsServer(id: 1, status: "UP 1/3"))
        XCTAssertTrue(f.showsServer(id: 1, status: "DOWN 1/2"), "on its way back up: HAProxy shows it")
        XCTAssertTrue(f.showsServer(id: 1, status: "NOLB"))
        XCTAssertFalse(f.showsServer(id: 1, status: "DOWN"))
        XCTAssertFalse(f.showsServer(id: 1, status: "DOWN (agent)"))
        XCTAssertFalse(f.showsServer(id: 1, status: "MAINT"))
        var m = StatFilter(); m.noMaint = true; m.serverID = 2
        XCTAssertFalse(m.showsServer(id: 1, status: "UP"), "another sid")
        XCTAssertTrue(m.showsServer(id: 2, status: "DOWN"))
        XCTAssertFalse(m.showsServer(id: 2, status: "MAINT"))
    }
}
