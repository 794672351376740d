import XCTest
import Glibc

/// A raw client of ferry's (or HAProxy's) admin socket: sends `input` as is, reads to EOF.
enum AdminSocket {
    /// A blocking Unix stream socket connected to `path`.
    static func connect(_ path: String) throws -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SocketError("socket(AF_UNIX)") }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else { Glibc.close(fd); throw SocketError("path too long", 0) }
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            for (i, b) in bytes.enumerated() { raw[i] = b }
            raw[bytes.count] = 0
        }
        let ok = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard ok == 0 else { let e = SocketError("connect(\(path))"); Glibc.close(fd); throw e }
        return fd
    }

    static func exchange(_ path: String, _ input: String, timeout: Double = 5) throws -> String {
        // The TestClient owns and closes the descriptor.
        let client = TestClient(fd: try connect(path), timeout: timeout)
        let fd = client.fd
        try client.send(input)
        var out: [UInt8] = []
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            var buf = [UInt8](repeating: 0, count: 65536)
            let n = recv(fd, &buf, buf.count, 0)
            if n <= 0 { break }
            out += buf[0..<n]
        }
        client.close()
        return String(decoding: out, as: UTF8.self)
    }

    /// One command, HAProxy style (one line per connection).
    static func command(_ path: String, _ line: String) throws -> String {
        try exchange(path, line + "\n")
    }
}

extension IntegrationCase {
    /// Runs `ferry ctl ARGS` and returns (status, stdout, stderr).
    func ctl(_ args: [String], stdin: String? = nil, timeout: Double = 10) throws -> (Int32, String, String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: FerryProcess.binary)
        p.arguments = ["ctl"] + args
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        let input = Pipe()
        p.standardInput = input
        try p.run()
        if let stdin { input.fileHandleForWriting.write(Data(stdin.utf8)) }
        try? input.fileHandleForWriting.close()
        guard waitUntil(timeout: timeout, { !p.isRunning }) else {
            p.terminate()
            throw SocketError("ferry ctl \(args) did not finish in \(timeout) s", 0)
        }
        p.waitUntilExit()
        let o = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let e = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        return (p.terminationStatus, o, e)
    }
}
