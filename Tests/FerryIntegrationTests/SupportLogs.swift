import XCTest
import Glibc

/// A temporary directory removed when the test ends.
func temporaryDirectory(_ test: XCTestCase, _ prefix: String = "ferry-log") throws -> String {
    let path = try makeTemporaryDirectory(prefix)
    test.addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
    return path
}

/// `count` loopback ports, all different: each is held bound until all are chosen (two
/// separate `Net.freePort()` calls can return the same port, and one test here needs many).
func distinctFreePorts(_ count: Int) throws -> [UInt16] {
    var fds: [Int32] = []
    defer { for fd in fds { close(fd) } }
    var ports: [UInt16] = []
    for _ in 0..<count {
        let fd = try Net.tcpSocket()
        fds.append(fd)
        try Net.bind(fd, "127.0.0.1", 0)
        ports.append(Net.localPort(fd))
    }
    return ports
}

/// A JSON-lines file (connection log, event log): every line must parse as one JSON object.
struct JSONLinesFile {
    let path: String

    var text: String { (try? String(contentsOfFile: path, encoding: .utf8)) ?? "" }

    /// Every complete line, parsed. A line that is not a JSON object is a test failure.
    func objects(file: StaticString = #filePath, line: UInt = #line) -> [[String: Any]] {
        text.split(separator: "\n").compactMap { l in
            guard let o = try? JSONSerialization.jsonObject(with: Data(l.utf8)) as? [String: Any] else {
                XCTFail("not a JSON object: \(l)", file: file, line: line)
                return nil
            }
            return o
        }
    }

    /// Waits (bounded) until at least `count` lines are there; returns them parsed.
    func waitFor(_ count: Int, timeout: Double = 10, file: StaticString = #filePath, line: UInt = #line) -> [[String: Any]] {
        _ = waitUntil(timeout: timeout) { text.split(separator: "\n").count >= count }
        let o = objects(file: file, line: line)
        XCTAssertGreaterThanOrEqual(o.count, count, "lines in \(path):\n\(text)", file: file, line: line)
        return o
    }
}

/// One HTTP exchange with the metrics responder over a raw socket.
struct HTTPExchange {
    var status: Int
    var head: String
    var body: String

    static func send(_ request: String, port: UInt16, timeout: Double = 5) throws -> HTTPExchange {
        let c = try TestClient.connect(port, timeout: timeout)
        defer { c.close() }
        try c.send(request)
        let raw = String(decoding: try c.receiveToEOF(), as: UTF8.self)
        guard let split = raw.range(of: "\r\n\r\n") else { throw SocketError("no response head in: \(raw)", 0) }
        let head = String(raw[..<split.lowerBound])
        let status = Int(head.split(separator: " ").dropFirst().first ?? "") ?? -1
        return HTTPExchange(status: status, head: head, body: String(raw[split.upperBound...]))
    }
}

/// Real nginx (stream module) on loopback, for comparing log lines with ferry's.
final class NginxInstance {
    static let binary = "/usr/sbin/nginx"
    static let module = "/usr/lib/nginx/modules/ngx_stream_module.so"
    private let process = Process()
    let prefix: String

    static var available: Bool { access(binary, X_OK) == 0 && access(module, R_OK) == 0 }

    /// Starts nginx in the foreground with `stream` as the inside of its stream block and waits
    /// until every port in `ports` listens.
    init(stream: String, prefix: String, ports: [UInt16]) throws {
        self.prefix = prefix
        let conf = """
            load_module \(NginxInstance.module);
            daemon off;
            master_process off;
            worker_processes 1;
            pid \(prefix)/nginx.pid;
            error_log \(prefix)/error.log info;
            events { worker_connections 64; }
            stream {
            \(stream)
            }

            """
        try conf.write(toFile: prefix + "/nginx.conf", atomically: true, encoding: .utf8)
        process.executableURL = URL(fileURLWithPath: NginxInstance.binary)
        process.arguments = ["-c", prefix + "/nginx.conf", "-p", prefix + "/"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        guard waitUntil(timeout: 5, { ports.allSatisfy(FerryInstance.isListening) }) else {
            stop()
            let err = (try? String(contentsOfFile: prefix + "/error.log", encoding: .utf8)) ?? ""
            throw SocketError("nginx did not listen on \(ports): \(err)", 0)
        }
    }

    func stop() {
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGQUIT)
        if !waitUntil(timeout: 5, { !process.isRunning }) { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }

    deinit { stop() }
}
