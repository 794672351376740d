// Builds one JSON object as a single line, the shape of every log line ferry writes.
public struct JSONLine {
    private var text = "{"
    private var first = true

    public init() {}

    public mutating func add(_ key: String, _ value: String) {
        field(key)
        text += "\""
        JSONLine.escape(value, into: &text)
        text += "\""
    }

    public mutating func add<I: BinaryInteger>(_ key: String, _ value: I) {
        field(key)
        text += String(value)
    }

    public mutating func add(_ key: String, _ value: Bool) {
        field(key)
        text += value ? "true" : "false"
    }

    /// A value that is already valid JSON (an array or object built elsewhere).
    public mutating func addRaw(_ key: String, _ json: String) {
        field(key)
        text += json
    }

    private mutating func field(_ key: String) {
        if !first { text += "," }
        first = false
        text += "\""
        JSONLine.escape(key, into: &text)
        text += "\":"
    }

    public var string: String { text + "}" }

    /// JSON string escaping (RFC 8259): quotes, backslash and control characters.
    public static func escape(_ s: String, into out: inout String) {
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where u.value < 0x20:
                let h = String(u.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - h.count) + h
            default: out.unicodeScalars.append(u)
            }
        }
    }
}
