import XCTest
import Glibc

/// nginx's listen socket options, seen from outside the process: who can connect, and the
/// buffer sizes the kernel reports for the listening socket.
final class ListenOptionsTests: IntegrationCase {
    /// `ipv6only=off` on the IPv6 wildcard makes it take IPv4 clients too (nginx's default, on,
    /// would refuse them).
    func testIPv6OnlyOffTakesIPv4ClientsOnTheIPv6Wildcard() throws {
        let b = try backend("dual")
        let port = try Net.freePort()
        let f = try ferry("server { listen LISTEN; listen [::]:\(port) ipv6only=off; proxy_pass 127.0.0.1:\(b.port); }")
        XCTAssertEqual(try bannerThrough(port), "dual")
        XCTAssertEqual(try bannerThrough(f.listenPort), "dual")
    }

    /// `rcvbuf=`/`sndbuf=` become SO_RCVBUF/SO_SNDBUF, which the kernel doubles for its bookkeeping.
    func testBufferSizesReachTheListenSocket() throws {
        let b = try backend("b")
        let f = try ferry("server { listen LISTEN rcvbuf=96k sndbuf=48k fastopen=8; proxy_pass 127.0.0.1:\(b.port); }")
        let memory = try socketMemory(listeningOn: f.listenPort)
        XCTAssertEqual(memory["rb"], 2 * 96 * 1024, memory.description)
        XCTAssertEqual(memory["tb"], 2 * 48 * 1024, memory.description)
        XCTAssertEqual(try bannerThrough(f.listenPort), "b")
    }

    /// A reload keeps the listen socket, so changed buffer sizes and fastopen wait for a restart,
    /// and the warning says which.
    func testAReloadNamesTheSocketOptionsItCannotChange() throws {
        let b = try backend("b")
        let admin = "admin_socket @DIR@/admin.sock;"
        let f = try ferry("server { listen LISTEN rcvbuf=96k; proxy_pass 127.0.0.1:\(b.port); }", main: admin)
        try f.reloadOverAdmin(stream: "server { listen LISTEN rcvbuf=64k sndbuf=64k fastopen=4; proxy_pass 127.0.0.1:\(b.port); }", main: admin)
        XCTAssertEqual(f.events("reload_needs_restart"), 1, f.stderr)
        XCTAssertTrue(f.stderr.contains("\"options\":\"rcvbuf,sndbuf,fastopen\""), f.stderr)
        XCTAssertEqual(try socketMemory(listeningOn: f.listenPort)["rb"], 2 * 96 * 1024)
    }

    /// `ss -m`'s skmem fields (`rb131072`, `tb16384`, ...) of the socket listening on 127.0.0.1:port.
    private func socketMemory(listeningOn port: UInt16) throws -> [String: Int] {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/ss")
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/ss") else { throw XCTSkip("needs ss (iproute2)") }
        p.arguments = ["-ltnmH", "src", "127.0.0.1:\(port)"]
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        guard let open = text.range(of: "skmem:("), let close = text[open.upperBound...].firstIndex(of: ")") else {
            XCTFail("no skmem in ss output: \(text)"); return [:]
        }
        var fields: [String: Int] = [:]
        for field in text[open.upperBound..<close].split(separator: ",") {
            let name = field.prefix { $0.isLetter }
            if let n = Int(field.dropFirst(name.count)) { fields[String(name)] = n }
        }
        return fields
    }
}
