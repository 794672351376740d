import XCTest
import Glibc
@testable import FerryCore

/// Dead-peer options on real sockets: what the kernel holds after ferry sets them, and that an
/// accepted socket inherits them from its listener (ferry relies on that to set nothing per accept).
final class SocketTuningTests: XCTestCase {
    func testListenerOptionsAreInheritedByAcceptedSockets() throws {
        let listener = try Socket.stream(family: AF_INET)
        defer { listener.close() }
        try listener.applyDeadPeerDetection(keepalive: .tuned(idle: .seconds(7), interval: .seconds(3), count: 4), userTimeoutMilliseconds: 4500)
        try listener.bind(SocketAddress(ipv4: "127.0.0.1", port: 0)!)
        try listener.listen(backlog: 4)
        let client = try Socket.stream(family: AF_INET)
        defer { client.close() }
        _ = try client.connect(to: listener.localAddress()!)
        var peer = SocketAddress()
        var accepted: Socket? = nil
        for _ in 0..<200 where accepted == nil {
            if case .done(let s) = try listener.accept(peer: &peer) { accepted = s } else { usleep(5000) }
        }
        let s = try XCTUnwrap(accepted, "no connection accepted in 1 s")
        defer { s.close() }
        XCTAssertEqual(s.option(level: SOL_SOCKET, name: SO_KEEPALIVE), 1)
        XCTAssertEqual(s.option(level: Int32(IPPROTO_TCP), name: TCP_KEEPIDLE), 7)
        XCTAssertEqual(s.option(level: Int32(IPPROTO_TCP), name: TCP_KEEPINTVL), 3)
        XCTAssertEqual(s.option(level: Int32(IPPROTO_TCP), name: TCP_KEEPCNT), 4)
        XCTAssertEqual(s.option(level: Int32(IPPROTO_TCP), name: TCP_USER_TIMEOUT), 4500)
        // The connecting side got nothing: server sockets are set one by one.
        XCTAssertEqual(client.option(level: SOL_SOCKET, name: SO_KEEPALIVE), 0)
        XCTAssertEqual(client.option(level: Int32(IPPROTO_TCP), name: TCP_USER_TIMEOUT), 0)
    }

    func testOffSetsNothing() throws {
        let s = try Socket.stream(family: AF_INET)
        defer { s.close() }
        try s.applyDeadPeerDetection(keepalive: .off, userTimeoutMilliseconds: 0)
        XCTAssertEqual(s.option(level: SOL_SOCKET, name: SO_KEEPALIVE), 0)
        XCTAssertEqual(s.option(level: Int32(IPPROTO_TCP), name: TCP_USER_TIMEOUT), 0)
        try s.applyDeadPeerDetection(keepalive: .on, userTimeoutMilliseconds: 0)
        XCTAssertEqual(s.option(level: SOL_SOCKET, name: SO_KEEPALIVE), 1)
    }
}
