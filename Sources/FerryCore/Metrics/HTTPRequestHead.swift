// The request line of an HTTP/1.x request, which is all the metrics responder looks at.
// Headers are read (to find their end) and ignored: a scrape needs none of them.

public struct HTTPRequestHead: Equatable, Sendable {
    public var method: String
    public var target: String
    public var version: String

    public enum Parse: Equatable, Sendable {
        case incomplete
        case bad
        case request(HTTPRequestHead)
    }

    /// Parses `bytes` received so far. `.incomplete` until the blank line that ends the head.
    public static func parse(_ received: [UInt8]) -> Parse {
        // Empty lines before the request line are skipped, as RFC 9112 2.2 asks of a server
        // (a client may send a stray CRLF after a previous request's body).
        guard let start = received.firstIndex(where: { $0 != UInt8(ascii: "\r") && $0 != UInt8(ascii: "\n") }) else { return .incomplete }
        let bytes = Array(received[start...])
        guard let end = headEnd(bytes) else { return .incomplete }
        guard let lineEnd = bytes[..<end].firstIndex(of: UInt8(ascii: "\n")) ?? Optional(end) else { return .bad }
        var line = bytes[..<lineEnd]
        if line.last == UInt8(ascii: "\r") { line = line.dropLast() }
        // Request line: METHOD SP TARGET SP HTTP/1.x, printable ASCII only.
        guard line.allSatisfy({ $0 >= 0x20 && $0 < 0x7F }) else { return .bad }
        let parts = line.split(separator: UInt8(ascii: " "), omittingEmptySubsequences: false)
        guard parts.count == 3, !parts[0].isEmpty, !parts[1].isEmpty else { return .bad }
        let method = String(decoding: parts[0], as: UTF8.self)
        let target = String(decoding: parts[1], as: UTF8.self)
        let version = String(decoding: parts[2], as: UTF8.self)
        guard method.utf8.allSatisfy({ $0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z") }) else { return .bad }
        guard version == "HTTP/1.1" || version == "HTTP/1.0" else { return .bad }
        guard target.hasPrefix("/") else { return .bad }
        return .request(HTTPRequestHead(method: method, target: target, version: version))
    }

    /// Index just past the blank line (CRLF CRLF or LF LF), or nil.
    static func headEnd(_ b: [UInt8]) -> Int? {
        var i = 0
        while i < b.count {
            if b[i] == UInt8(ascii: "\n") {
                if i + 1 < b.count && b[i + 1] == UInt8(ascii: "\n") { return i + 2 }
                if i + 2 < b.count && b[i + 1] == UInt8(ascii: "\r") && b[i + 2] == UInt8(ascii: "\n") { return i + 3 }
            }
            i += 1
        }
        return nil
    }

    /// The path without a query string.
    public var path: Substring { target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)[0] }
}

/// The status line and headers of a response the responder sends, then the body; always
/// `Connection: close`, so each scrape is one connection and nothing is kept between them.
public enum HTTPResponse {
    public static func make(status: Int, reason: String, contentType: String = "text/plain; charset=utf-8",
                            body: String, headOnly: Bool = false, extraHeaders: String = "") -> [UInt8] {
        let bodyBytes = Array(body.utf8)
        var head = "HTTP/1.1 \(status) \(reason)\r\nContent-Type: \(contentType)\r\n"
        head += "Content-Length: \(bodyBytes.count)\r\n\(extraHeaders)Connection: close\r\n\r\n"
        return Array(head.utf8) + (headOnly ? [] : bodyBytes)
    }
}
