import XCTest
@testable import FerryCore

/// Arbitrary and mutated input must end in a Config or a located ConfigError: no crash, no
/// hang, no blow-up. Fixed seed so a failure reproduces; Fuzz/run.sh explores further.
final class ConfigFuzzTests: XCTestCase {
    struct SplitMix64 {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9e37_79b9_7f4a_7c15
            var z = state
            z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
            z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
            return z ^ (z >> 31)
        }
        mutating func below(_ n: Int) -> Int { Int(next() % UInt64(max(n, 1))) }
    }

    static let fragments = ["{", "}", ";", "\"", "'", "\\", "#", "$", "\n", " ", "=", ":", "0", "99999999999999999999",
                            "include a.conf;", "include inc.conf;", "server {", "upstream u {", "stream {", "listen ",
                            "weight=", "backup", "hash $remote_addr;", "[::1]", "unix:", "1h30m", "${x}", "\u{0}", "é"]

    static func now() -> Double {
        var t = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t)
        return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
    }

    /// What every outcome must satisfy.
    func check(_ bytes: [UInt8], file: String = "f.conf") {
        let environment = offlineEnvironment(files: ["a.conf": "include a.conf;", "inc.conf": "upstream z { server 127.0.0.1:1; }"])
        do {
            let loaded = try ConfigLoader.load(bytes: bytes, file: file, environment: environment)
            // Whatever loads must survive -T: the dump loads again to the same Config.
            let text = ConfigRenderer.render(loaded.config)
            do {
                let again = try ConfigLoader.load(text: text, file: "dump.conf", environment: environment)
                XCTAssertEqual(again.config.normalized(), loaded.config.normalized(), String(decoding: bytes, as: UTF8.self))
            } catch {
                XCTFail("dump of \(String(decoding: bytes, as: UTF8.self).debugDescription) does not load: \(error)\n\(text)")
            }
        } catch let error as ConfigError {
            XCTAssertFalse(error.message.isEmpty)
            if let location = error.location, location.file == file {
                let lines = bytes.filter { $0 == UInt8(ascii: "\n") }.count + 1
                XCTAssertTrue(location.line >= 1 && location.line <= lines && location.column >= 1,
                              "\(error) for \(String(decoding: bytes, as: UTF8.self).debugDescription)")
            }
        } catch {
            XCTFail("non-ConfigError \(error)")
        }
    }

    func testRandomAndMutatedInputs() throws {
        var seeds = ConfigErrorTests.cases.map(\.input) + ConfigBuildTests.cases.map(\.input)
        for path in ConfigFilesTests.examples() + [ConfigFilesTests.fixture] {
            if case .success(let bytes) = ConfigEnvironment.system.readFile(path) { seeds.append(String(decoding: bytes, as: UTF8.self)) }
        }
        var random = SplitMix64(state: 0x5eed_f3_44)
        let start = Self.now()
        for iteration in 0..<2000 {
            var bytes: [UInt8]
            if iteration % 10 == 0 {
                bytes = (0..<random.below(200)).map { _ in UInt8(truncatingIfNeeded: random.next()) }
            } else {
                bytes = Array(seeds[random.below(seeds.count)].utf8)
                for _ in 0...random.below(8) {
                    let at = random.below(bytes.count + 1)
                    switch random.below(5) {
                    case 0: if at < bytes.count { bytes[at] = UInt8(truncatingIfNeeded: random.next()) }
                    case 1: bytes.insert(contentsOf: Array(Self.fragments[random.below(Self.fragments.count)].utf8), at: at)
                    case 2: bytes.removeSubrange(at..<min(bytes.count, at + random.below(16)))
                    case 3: let end = min(bytes.count, at + random.below(64)); bytes.insert(contentsOf: bytes[at..<end], at: at)
                    default: bytes.removeSubrange(at..<bytes.count)
                    }
                }
            }
            check(bytes)
        }
        XCTAssertLessThan(Self.now() - start, 30, "2,000 small inputs should take seconds")
    }

    func testPathologicalInputsStayLinear() {
        let size = 1 << 20
        let inputs: [(String, [UInt8])] = [
            ("deep nesting", Array(String(repeating: "a{", count: size / 2).utf8)),
            ("one long word", [UInt8](repeating: UInt8(ascii: "x"), count: size)),
            ("unterminated quote", [UInt8(ascii: "\"")] + [UInt8](repeating: UInt8(ascii: "\\"), count: size)),
            ("many arguments", Array(("worker_processes" + String(repeating: " 1", count: size / 2)).utf8)),
            ("comments", Array(String(repeating: "# x ; { }\n", count: size / 10).utf8)),
            ("closing braces", [UInt8](repeating: UInt8(ascii: "}"), count: size)),
            ("semicolons after a name", Array(("a" + String(repeating: " ;", count: size / 2)).utf8)),
        ]
        for (name, bytes) in inputs {
            let start = Self.now()
            check(bytes)
            XCTAssertLessThan(Self.now() - start, 5, "\(name): 1 MiB must not take seconds")
        }
    }
}
