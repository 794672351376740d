import XCTest
import Glibc

/// `ferry ctl` against admin sockets that misbehave: one that hangs up in the middle of an
/// answer, one that never answers. A stand-in server plays each part.
final class ControlClientTests: IntegrationCase {
    /// A Unix socket at `path` that accepts one client, reads its line, then does `serve`.
    func fakeAdmin(_ path: String, serve: @escaping (Int32) -> Void) throws -> TestThread {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var a = sockaddr_un()
        a.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &a.sun_path) { p in _ = path.utf8CString.withUnsafeBytes { memcpy(p.baseAddress!, $0.baseAddress!, $0.count) } }
        let bound = withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }
        guard bound == 0, listen(fd, 4) == 0 else { close(fd); throw SocketError("bind \(path)") }
        return TestThread {
            defer { close(fd) }
            let c = accept(fd, nil, nil)
            guard c >= 0 else { return }
            defer { close(c) }
            var buf = [UInt8](repeating: 0, count: 4096)
            _ = recv(c, &buf, buf.count, 0)
            serve(c)
        }
    }

    /// ferry stopped (or crashed) while answering: what came is shown, and the exit status says
    /// the answer is incomplete instead of 0 for a CSV that lost its tail.
    func testAnswerCutShortIsAnError() throws {
        let dir = try temporaryDirectory(self, "ferry-ctl")
        let path = dir + "/admin.sock"
        let server = try fakeAdmin(path) { c in
            let partial = "\n# pxname,svname,qcur\nu,b1,0\nu,b2"
            _ = partial.withCString { send(c, $0, strlen($0), 0) }
        }
        let (status, out, err) = try ctl(["-s", path, "show", "stat"])
        XCTAssertTrue(server.join(timeout: 5))
        XCTAssertEqual(status, 2, "out: \(out) err: \(err)")
        XCTAssertEqual(out, "# pxname,svname,qcur\nu,b1,0\nu,b2\n")
        XCTAssertTrue(err.contains("closed the connection before the end of the answer"), err)
    }

    /// A socket whose server accepts and never answers (a stuck process, not ferry's socket)
    /// must not leave `ferry ctl` waiting for ever.
    func testSilentServerTimesOut() throws {
        let dir = try temporaryDirectory(self, "ferry-ctl")
        let path = dir + "/admin.sock"
        let release = DispatchSemaphoreLike()
        let server = try fakeAdmin(path) { _ in _ = release.wait(timeout: 30) }
        defer { release.signal(); _ = server.join(timeout: 5) }
        let started = Date()
        let (status, _, err) = try ctl(["-s", path, "show", "info"], timeout: 25)
        XCTAssertEqual(status, 2)
        XCTAssertTrue(err.contains("no answer from the admin socket"), err)
        XCTAssertLessThan(Date().timeIntervalSince(started), 20)
    }
}
