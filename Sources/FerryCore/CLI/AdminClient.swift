import Glibc

/// `ferry ctl`: sends commands to the admin socket and prints the answers, so nobody needs
/// socat. It asks for HAProxy's severity prefixes to tell an error answer from a good one,
/// strips them, and exits 1 on an error.
public struct AdminClient {
    public let path: String

    public init(path: String) { self.path = path }

    /// How long ferry may stay silent before `ctl` gives up: its admin server answers at once
    /// and drops a client after 10 s of silence, so a longer wait means a stuck or foreign server.
    public static let timeoutSeconds = 15

    public enum Failure: Error, CustomStringConvertible {
        case cannotConnect(String, Errno)
        case io(Errno)
        case noAnswer(String)
        /// The connection closed before the empty line that ends every answer: what came is
        /// only part of it (ferry stopped or crashed meanwhile, or this is not ferry's socket).
        case truncated(String, partial: String)
        public var description: String {
            switch self {
            case .cannotConnect(let path, let e): return "cannot connect to the admin socket \(path) (\(e.rawValue): \(e)); is ferry running with admin_socket \(path)?"
            case .io(let e): return "admin socket I/O failed (\(e.rawValue): \(e))"
            case .noAnswer(let path): return "no answer from the admin socket \(path) in \(AdminClient.timeoutSeconds) s"
            case .truncated(let path, let partial): return "the admin socket \(path) closed the connection before the end of the answer (\(partial.utf8.count) bytes received)"
            }
        }
    }

    /// Sends one command line and returns (answer without the trailing empty line, isError).
    public func send(_ command: String) throws(Failure) -> (text: String, isError: Bool) {
        guard let address = SocketAddress(unixPath: path) else { throw .cannotConnect(path, Errno(ENAMETOOLONG)) }
        let socket: Socket
        do {
            socket = try Socket.blockingStream(family: AF_UNIX)
        } catch { throw .io(error) }
        defer { socket.close() }
        do {
            _ = try socket.connect(to: address)
        } catch { throw .cannotConnect(path, error) }
        do { try socket.setBlockingTimeout(seconds: AdminClient.timeoutSeconds) } catch { throw .io(error) }
        let line = "set severity-output number; " + String(command.map { $0 == "\n" ? " " : $0 }) + "\n"
        let bytes = Array(line.utf8)
        var off = 0
        while off < bytes.count {
            let r = bytes.withUnsafeBytes { b in Result { () throws(Errno) in try socket.send(from: b.baseAddress! + off, count: b.count - off) } }
            switch r {
            case .failure(let e): throw .io(e)
            case .success(.done(let n)): off += n
            case .success(.wouldBlock): throw .noAnswer(path)
            }
        }
        // Nothing more is coming: the server answers and closes even if the line turned on
        // `prompt` mode, which would otherwise hold the connection open until its idle timeout.
        socket.shutdown(.write)
        var answer: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        reading: while true {
            let r = chunk.withUnsafeMutableBytes { b in Result { () throws(Errno) in try socket.receive(into: b.baseAddress!, count: b.count) } }
            switch r {
            case .failure(let e): throw .io(e)
            case .success(.done(0)): break reading
            case .success(.done(let n)): answer.append(contentsOf: chunk[0..<n])
            case .success(.wouldBlock): throw .noAnswer(path)
            }
        }
        var text = String(decoding: answer, as: UTF8.self)
        // `quit` closes without an answer and `prompt` ends with "> ": only they end otherwise.
        let words = command.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == ";" || $0 == "\n" })
        if !text.hasSuffix("\n\n") && !words.contains("quit") && !words.contains("prompt") {
            if text.hasPrefix("\n") { text.removeFirst() }
            throw .truncated(path, partial: text)
        }
        // The first answer (to `set severity-output`) is an empty line.
        if text.hasPrefix("\n") { text.removeFirst() }
        if text.hasSuffix("\n\n") || text == "\n" { text.removeLast() }
        // Messages carry a severity prefix at the start of a line: 3 is an error.
        var isError = false
        var lines: [Substring] = []
        for l in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if l.hasPrefix("[3]: ") { isError = true; lines.append(l.dropFirst(5)) }
            else if l.hasPrefix("[5]: ") || l.hasPrefix("[6]: ") { lines.append(l.dropFirst(5)) }
            else { lines.append(l) }
        }
        text = lines.joined(separator: "\n")
        // Refused before it could read our severity request: no prefix, still an error.
        if text == AdminServer.busyAnswer { isError = true }
        return (text, isError)
    }
}
