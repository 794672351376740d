// Prometheus's text exposition format (version 0.0.4): `# HELP` and `# TYPE` once per metric
// family, then one sample per line with escaped label values.

public struct PrometheusText {
    public enum Kind: String { case counter, gauge }

    public private(set) var text = ""
    private var families = Set<String>()

    public init() {}

    /// Starts a family. Precondition: each name once (the format forbids a family twice).
    public mutating func family(_ name: String, _ kind: Kind, _ help: String) {
        precondition(families.insert(name).inserted, "metric family \(name) twice")
        text += "# HELP \(name) \(PrometheusText.escapeHelp(help))\n# TYPE \(name) \(kind.rawValue)\n"
    }

    public mutating func sample<N: BinaryInteger>(_ name: String, _ labels: [(String, String)] = [], _ value: N) {
        text += name
        if !labels.isEmpty {
            text += "{"
            for (i, (k, v)) in labels.enumerated() {
                if i > 0 { text += "," }
                text += k + "=\"" + PrometheusText.escapeLabel(v) + "\""
            }
            text += "}"
        }
        text += " " + String(value) + "\n"
    }

    /// Label values escape backslash, double quote and newline.
    public static func escapeLabel(_ s: String) -> String { escape(s, quote: true) }

    /// HELP text escapes backslash and newline.
    public static func escapeHelp(_ s: String) -> String { escape(s, quote: false) }

    private static func escape(_ s: String, quote: Bool) -> String {
        var out = ""
        for c in s.unicodeScalars {
            switch c {
            case "\\": out += "\\\\"
            case "\"" where quote: out += "\\\""
            case "\n": out += "\\n"
            default: out.unicodeScalars.append(c)
            }
        }
        return out
    }
}
