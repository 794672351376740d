// nginx's `log_format` for stream sessions: literal text with `$name` / `${name}` variables,
// each value escaped as `escape=` says. Compiled once at start; rendered per session.

/// The stream variables ferry can fill, named as nginx names them.
public enum LogVariable: String, CaseIterable, Sendable {
    case remoteAddr = "remote_addr"
    case remotePort = "remote_port"
    case serverAddr = "server_addr"
    case serverPort = "server_port"
    case upstreamAddr = "upstream_addr"
    case bytesSent = "bytes_sent"
    case bytesReceived = "bytes_received"
    case sessionTime = "session_time"
    case status = "status"
    case timeISO8601 = "time_iso8601"
    case timeLocal = "time_local"
    case msec = "msec"
    case connection = "connection"
    case upstreamConnectTime = "upstream_connect_time"
    case upstreamBytesSent = "upstream_bytes_sent"
    case upstreamBytesReceived = "upstream_bytes_received"
    case upstreamSessionTime = "upstream_session_time"
    case `protocol` = "protocol"
    case pid = "pid"
    case hostname = "hostname"
    case binaryRemoteAddr = "binary_remote_addr"
    case proxyProtocolAddr = "proxy_protocol_addr"
    case proxyProtocolPort = "proxy_protocol_port"
    case proxyProtocolServerAddr = "proxy_protocol_server_addr"
    case proxyProtocolServerPort = "proxy_protocol_server_port"
    case realipRemoteAddr = "realip_remote_addr"
    case realipRemotePort = "realip_remote_port"
    case upstreamFirstByteTime = "upstream_first_byte_time"

    /// Filled from a client's PROXY header, which a session otherwise keeps only when it
    /// replaced the client's address.
    public var isFromProxyHeader: Bool {
        switch self {
        case .proxyProtocolAddr, .proxyProtocolPort, .proxyProtocolServerAddr, .proxyProtocolServerPort: return true
        default: return false
        }
    }

    /// nginx variables ferry knows and will not fill, with why: refused by name at `-t`
    /// rather than as an unknown variable, so the reader learns it is a choice, not a typo.
    public static let unsupported: [String: String] = [
        "nginx_version": "ferry is not nginx and will not print a version that is not nginx's; "
            + "\"ferry -v\" prints ferry's, which a format can carry as text",
        "ssl_preread_server_name": "ferry relays TLS without reading it (it has no ssl_preread), "
            + "so it never sees the server name",
    ]
}

public struct LogTemplate: Equatable, Sendable {
    public enum Segment: Equatable, Sendable {
        case literal(String)
        case variable(LogVariable)
    }

    public enum Problem: Error, Equatable {
        case unknownVariable(String)
        /// A variable nginx has and ferry does not fill; the String says why.
        case unsupportedVariable(String, why: String)
        case emptyName
        case unclosedBrace
    }

    public let segments: [Segment]
    public let escape: LogFormatConfig.Escape

    public init(segments: [Segment], escape: LogFormatConfig.Escape) {
        self.segments = segments
        self.escape = escape
    }

    /// `$name` at the very end of `text` written `${name}`, so that text joined on after it
    /// cannot lengthen the name: how log_format's strings, each read alone by nginx, become one.
    public static func bracingTrailingVariable(_ text: String) -> String {
        let scalars = Array(text.unicodeScalars)
        var start = scalars.count
        while start > 0, isNameScalar(scalars[start - 1]) { start -= 1 }
        guard start < scalars.count, start > 0, scalars[start - 1] == "$" else { return text }
        var out = String(String.UnicodeScalarView(scalars[..<start]))
        out += "{" + String(String.UnicodeScalarView(scalars[start...])) + "}"
        return out
    }

    private static func isNameScalar(_ c: Unicode.Scalar) -> Bool {
        (c >= "a" && c <= "z") || (c >= "A" && c <= "Z") || (c >= "0" && c <= "9") || c == "_"
    }

    /// Splits `format` the way nginx's script compiler does: `$` followed by letters, digits
    /// and `_`, or a name in braces; anything else is literal.
    public static func compile(_ format: String, escape: LogFormatConfig.Escape) -> Result<LogTemplate, Problem> {
        var segments: [Segment] = []
        var literal = ""
        let chars = Array(format.unicodeScalars)
        var i = 0
        func isNameChar(_ c: Unicode.Scalar) -> Bool {
            (c >= "a" && c <= "z") || (c >= "A" && c <= "Z") || (c >= "0" && c <= "9") || c == "_"
        }
        while i < chars.count {
            let c = chars[i]
            guard c == "$" else { literal.unicodeScalars.append(c); i += 1; continue }
            i += 1
            var name = ""
            if i < chars.count && chars[i] == "{" {
                i += 1
                while i < chars.count && chars[i] != "}" { name.unicodeScalars.append(chars[i]); i += 1 }
                guard i < chars.count else { return .failure(.unclosedBrace) }
                i += 1
            } else {
                while i < chars.count && isNameChar(chars[i]) { name.unicodeScalars.append(chars[i]); i += 1 }
            }
            guard !name.isEmpty else { return .failure(.emptyName) }
            guard let v = LogVariable(rawValue: name) else {
                if let why = LogVariable.unsupported[name] { return .failure(.unsupportedVariable(name, why: why)) }
                return .failure(.unknownVariable(name))
            }
            if !literal.isEmpty { segments.append(.literal(literal)); literal = "" }
            segments.append(.variable(v))
        }
        if !literal.isEmpty { segments.append(.literal(literal)) }
        return .success(LogTemplate(segments: segments, escape: escape))
    }

    public var variables: [LogVariable] {
        segments.compactMap { if case .variable(let v) = $0 { return v } else { return nil } }
    }

    /// One line for `record`, without the newline.
    public func render(_ record: ConnectionRecord) -> String {
        var b = LineBuffer()
        render(record, into: &b)
        return b.string
    }

    public func render(_ record: ConnectionRecord, into b: inout LineBuffer) {
        for s in segments {
            switch s {
            case .literal(let text):
                b.append(text: text)
            case .variable(let v):
                // nginx writes "-" for a value that does not exist, nothing inside JSON.
                if !record.write(v, escape: escape, into: &b) && escape != .json { b.append("-") }
            }
        }
    }

    /// Raw bytes (`$binary_remote_addr`) with nginx's escaping: `default` writes them as a
    /// string's bytes (\xHH outside printable ASCII); `json` escapes control characters, `"`
    /// and `\` and writes the rest, bytes above 0x7F included, as they are, as nginx does;
    /// `none` writes them as they are.
    public static func append(rawBytes bytes: UnsafeRawBufferPointer, escape: LogFormatConfig.Escape, to b: inout LineBuffer) {
        for byte in bytes {
            switch escape {
            case .none:
                b.append(byte: byte)
            case .default:
                if byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") || byte < 0x20 || byte > 0x7E {
                    b.append("\\x")
                    b.append(byte: hex[Int(byte >> 4)].asciiValue!)
                    b.append(byte: hex[Int(byte & 0xF)].asciiValue!)
                } else {
                    b.append(byte: byte)
                }
            case .json:
                if byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") {
                    var escaped = ""
                    append(String(Unicode.Scalar(byte)), escape: .json, to: &escaped)
                    b.append(text: escaped)
                } else {
                    b.append(byte: byte)
                }
            }
        }
    }

    static let hex: [Character] = Array("0123456789ABCDEF")
    static let lowerHex: [Character] = Array("0123456789abcdef")

    /// nginx's escaping of a variable's value: `default` writes `"`, `\` and bytes outside
    /// printable ASCII as `\xHH`; `json` escapes as a JSON string body; `none` writes it as is.
    public static func append(_ value: String, escape: LogFormatConfig.Escape, to out: inout String) {
        switch escape {
        case .none:
            out += value
        case .default:
            for b in value.utf8 {
                if b == UInt8(ascii: "\"") || b == UInt8(ascii: "\\") || b < 0x20 || b > 0x7E {
                    out += "\\x"
                    out.append(hex[Int(b >> 4)])
                    out.append(hex[Int(b & 0xF)])
                } else {
                    out.unicodeScalars.append(Unicode.Scalar(b))
                }
            }
        case .json:
            for u in value.unicodeScalars {
                switch u {
                case "\"": out += "\\\""
                case "\\": out += "\\\\"
                case "\n": out += "\\n"
                case "\r": out += "\\r"
                case "\t": out += "\\t"
                case "\u{08}": out += "\\b"
                case "\u{0C}": out += "\\f"
                case _ where u.value < 0x20:
                    out += "\\u00"
                    out.append(lowerHex[Int(u.value >> 4)])
                    out.append(lowerHex[Int(u.value & 0xF)])
                default: out.unicodeScalars.append(u)
                }
            }
        }
    }
}
