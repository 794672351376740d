// One line from a server's agent, read the way HAProxy's agent-check reads it, so agent
// scripts written for HAProxy work unchanged (HAProxy configuration manual, "agent-check"):
//
//   - the line ends at the first CR or LF; words are separated by spaces, tabs or commas and
//     compared without regard to case;
//   - health: `up`, `down`, `stopped`, `fail`; admin: `ready`, `drain`, `maint`;
//     weight: `N%` (a word that starts with a digit and contains `%`), relative to the
//     configured weight; `maxconn:N`;
//   - ferry also knows `weight:N` (absolute, 0-256) and `weight:N%` (relative), which newer
//     agents send; they belong to the weight category, so the last weight word of either
//     spelling wins;
//   - the last word of each category wins, and only that one is then validated: a bad last
//     weight leaves the weight alone even if an earlier one was good (as HAProxy);
//   - `#` at the start of a word begins a free-text description (the rest of the line);
//     inside a word it is just a character, so `down#x` is an unknown word;
//   - an unknown word is reported and changes nothing.
//
// Parsing is pure; applying a reply to a server's state is `apply(to:)`, in HAProxy's order:
// admin, then weight, then maxconn, then health.

public struct AgentReply: Equatable, Sendable {
    public enum Health: String, Equatable, Sendable {
        case up, down, stopped, fail
    }

    /// The last weight word, validated.
    public enum Weight: Equatable, Sendable {
        /// Percent of the configured weight (`75%`, `weight:75%`).
        case relative(percent: Int)
        /// `weight:N`, 0-256.
        case absolute(Int)
        /// The last weight word could not be used; the weight is left alone.
        case invalid(word: String, reason: String)
    }

    public enum MaxConns: Equatable, Sendable {
        case limit(Int)                     // 0 = unlimited, as in the configuration
        case invalid(word: String, reason: String)
    }

    public var health: Health? = nil
    public var admin: PeerState.Admin? = nil
    public var weight: Weight? = nil
    public var maxConns: MaxConns? = nil
    /// Text after `#`, leading blanks removed; empty when there is none.
    public var description: String = ""
    /// Words that are none of the above, in order.
    public var unknownWords: [String] = []

    public init() {}

    /// Parses one line (without its CR/LF).
    public static func parse(_ line: String) -> AgentReply { parse(bytes: Array(line.utf8)) }

    /// Parses one line given as bytes, as HAProxy does: byte by byte, so a separator is a
    /// separator whatever precedes it.
    public static func parse(bytes line: [UInt8]) -> AgentReply {
        var reply = AgentReply()
        var words: [String] = []
        var i = 0
        while i < line.count {
            let c = line[i]
            if isSeparator(c) { i += 1; continue }
            if c == UInt8(ascii: "#") {
                i += 1
                while i < line.count && (line[i] == UInt8(ascii: " ") || line[i] == UInt8(ascii: "\t")) { i += 1 }
                reply.description = String(decoding: line[i...], as: UTF8.self)
                break
            }
            let start = i
            while i < line.count && !isSeparator(line[i]) { i += 1 }
            words.append(String(decoding: line[start..<i], as: UTF8.self))
        }
        var weightWord: String? = nil
        var maxConnWord: String? = nil
        for word in words {
            let lower = asciiLowercased(word)
            switch lower {
            case "up": reply.health = .up
            case "down": reply.health = .down
            case "stopped": reply.health = .stopped
            case "fail": reply.health = .fail
            case "ready": reply.admin = .ready
            case "drain": reply.admin = .drain
            case "maint": reply.admin = .maint
            default:
                if let c = word.utf8.first, c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9"), word.utf8.contains(UInt8(ascii: "%")) {
                    weightWord = word
                } else if lower.hasPrefix("weight:") {
                    weightWord = word
                } else if lower.hasPrefix("maxconn:") {
                    maxConnWord = word
                } else {
                    reply.unknownWords.append(word)
                }
            }
        }
        if let w = weightWord { reply.weight = parseWeight(w) }
        if let m = maxConnWord { reply.maxConns = parseMaxConns(m) }
        return reply
    }

    /// Whether the reply asks for anything at all (an empty line or only unknown words do not).
    public var isEmpty: Bool { health == nil && admin == nil && weight == nil && maxConns == nil }

    /// Whether any word of the reply is used (unknown words and invalid values are not).
    public var hasUsableWord: Bool {
        if health != nil || admin != nil { return true }
        if let weight, case .invalid = weight {} else if weight != nil { return true }
        if let maxConns, case .invalid = maxConns {} else if maxConns != nil { return true }
        return false
    }

    // MARK: applying

    /// One field of a server's state that a reply changed, for the event log.
    public struct Change: Equatable, Sendable {
        public var field: String        // "admin", "weight", "max_conns", "health"
        public var old: String
        public var new: String
    }

    /// Weights never exceed HAProxy's maximum of 256 unless the configuration itself set more.
    public static let maximumWeight = 256

    /// The weight a valid weight word asks for, given the configured weight. Relative weights
    /// use integer arithmetic like HAProxy (weight 1 at 50% is 0), so operators who drive
    /// weights by percentage configure weights like 100.
    public static func resolve(_ weight: Weight, configWeight: Int) -> Int? {
        switch weight {
        case .relative(let percent):
            // HAProxy caps the percentage at 25600 before multiplying, then the result at 256.
            let p = min(percent, 25_600)
            return min(configWeight * p / 100, max(maximumWeight, configWeight))
        case .absolute(let w):
            return w
        case .invalid:
            return nil
        }
    }

    /// Applies the reply to the agent's fields of `peer` in HAProxy's order (admin, weight,
    /// maxconn, health) and returns what changed. Touches only what the agent owns:
    /// `agentAdmin`, `weight`, `maxConns`, `agentUp`. `up` sets only the agent's half of
    /// health; the TCP probe's verdict (`probeUp`) still has to agree.
    public func apply(to peer: inout PeerState) -> [Change] {
        var changes: [Change] = []
        if let admin, admin != peer.agentAdmin {
            changes.append(Change(field: "admin", old: AgentReply.name(peer.agentAdmin), new: AgentReply.name(admin)))
            peer.agentAdmin = admin
        }
        if let weight, let w = AgentReply.resolve(weight, configWeight: peer.configWeight), w != peer.weight {
            changes.append(Change(field: "weight", old: String(peer.weight), new: String(w)))
            peer.weight = w
        }
        if case .limit(let m)? = maxConns, m != peer.maxConns {
            changes.append(Change(field: "max_conns", old: String(peer.maxConns), new: String(m)))
            peer.maxConns = m
        }
        if let health {
            let up = health == .up
            if up != peer.agentUp {
                changes.append(Change(field: "health", old: peer.agentUp ? "up" : "down", new: up ? "up" : "down"))
                peer.agentUp = up
            }
        }
        return changes
    }

    /// Why parts of the reply were not used, for the event log; empty when all of it was.
    public var problems: [String] {
        var out = unknownWords.map { "unknown word \"\($0)\"" }
        if case .invalid(let word, let reason)? = weight { out.append("\"\(word)\": \(reason)") }
        if case .invalid(let word, let reason)? = maxConns { out.append("\"\(word)\": \(reason)") }
        return out
    }

    public static func name(_ admin: PeerState.Admin) -> String {
        switch admin {
        case .ready: return "ready"
        case .drain: return "drain"
        case .maint: return "maint"
        }
    }

    // MARK: words

    /// strcasecmp's notion of case: ASCII letters only, so no word changes length.
    private static func asciiLowercased(_ s: String) -> String {
        String(decoding: s.utf8.map { $0 >= 65 && $0 <= 90 ? $0 + 32 : $0 }, as: UTF8.self)
    }

    private static func isSeparator(_ c: UInt8) -> Bool {
        c == UInt8(ascii: " ") || c == UInt8(ascii: "\t") || c == UInt8(ascii: ",")
    }

    /// `N%`, `weight:N`, `weight:N%`. A relative weight must not be negative; an absolute one
    /// must be 0-256; anything after the number other than a final `%` is garbage.
    private static func parseWeight(_ word: String) -> Weight {
        let original = word
        var text = Substring(word)
        let prefixed = asciiLowercased(word).hasPrefix("weight:")
        if prefixed { text = text.dropFirst("weight:".count) }
        guard let (value, after) = leadingInteger(text) else {
            return .invalid(word: original, reason: "no number")
        }
        if after == "%" {
            if value < 0 { return .invalid(word: original, reason: "a relative weight must not be negative") }
            return .relative(percent: value)
        }
        if !after.isEmpty { return .invalid(word: original, reason: "garbage after the number") }
        if !prefixed {
            // Unreachable through parse (a bare weight word always contains "%"), kept for safety.
            return .invalid(word: original, reason: "no %")
        }
        if value < 0 || value > maximumWeight {
            return .invalid(word: original, reason: "an absolute weight must be 0-\(maximumWeight)")
        }
        return .absolute(value)
    }

    private static func parseMaxConns(_ word: String) -> MaxConns {
        let original = word
        guard let (value, after) = leadingInteger(Substring(word).dropFirst("maxconn:".count)) else {
            return .invalid(word: original, reason: "no number")
        }
        if !after.isEmpty { return .invalid(word: original, reason: "garbage after the number") }
        if value < 0 { return .invalid(word: original, reason: "maxconn must not be negative") }
        return .limit(value)
    }

    /// strtol-like: an optional sign and decimal digits at the start, saturating instead of
    /// overflowing; nil when there are no digits.
    private static func leadingInteger(_ s: Substring) -> (Int, Substring)? {
        var rest = s
        var negative = false
        if let c = rest.first, c == "+" || c == "-" { negative = c == "-"; rest = rest.dropFirst() }
        let digits = rest.prefix { $0.isASCII && $0.isNumber }
        guard !digits.isEmpty else { return nil }
        var value = 0
        for d in digits.utf8 {
            let (m, o1) = value.multipliedReportingOverflow(by: 10)
            let (a, o2) = m.addingReportingOverflow(Int(d - UInt8(ascii: "0")))
            if o1 || o2 { value = Int.max; break }
            value = a
        }
        return (negative ? -value : value, rest.dropFirst(digits.count))
    }
}
