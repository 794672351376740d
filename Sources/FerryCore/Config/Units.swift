// nginx's value syntax (ngx_parse_time, ngx_parse_size, ngx_atoi), so a value nginx accepts
// means the same here and a value nginx rejects is rejected here.

enum Units {
    /// `1h30m`, `500ms`, `10` (seconds). Units must appear largest first and at most once,
    /// as in nginx. As ngx_parse_time, which reads a value either in milliseconds or in whole
    /// seconds: `secondsOnly` rejects `ms` (fail_timeout, so_keepalive), and the default, a
    /// millisecond value (every timeout), rejects `y` and `M`.
    static func time(_ text: String, secondsOnly: Bool = false) -> Duration? {
        let second: Int64 = 1000
        // (unit, milliseconds, rank): a later part must have a higher rank.
        let units: [(String, Int64, Int)] = [
            ("y", 365 * 86400 * second, 0), ("M", 30 * 86400 * second, 1), ("w", 7 * 86400 * second, 2),
            ("d", 86400 * second, 3), ("h", 3600 * second, 4), ("ms", 1, 7), ("m", 60 * second, 5),
            ("s", second, 6),
        ]
        let bytes = Array(text.utf8)
        guard !bytes.isEmpty else { return nil }
        var i = 0
        var total: Int64 = 0
        var lastRank = -1
        while i < bytes.count {
            guard let (number, next) = digits(bytes, from: i) else { return nil }
            i = next
            var scale = second
            var rank = 6
            if i < bytes.count {
                guard let unit = units.first(where: { matches(bytes, at: i, $0.0) }) else { return nil }
                if unit.0 == "ms" && secondsOnly { return nil }
                if (unit.0 == "y" || unit.0 == "M") && !secondsOnly { return nil }
                scale = unit.1; rank = unit.2
                i += unit.0.utf8.count
            }
            guard rank > lastRank else { return nil }
            lastRank = rank
            let (part, overflow1) = number.multipliedReportingOverflow(by: scale)
            let (sum, overflow2) = total.addingReportingOverflow(part)
            if overflow1 || overflow2 { return nil }
            total = sum
        }
        return Duration(milliseconds: total)
    }

    /// What to write instead when `text` is not a time in this mode but is one in the other,
    /// for the error (nil when the value is wrong for another reason, like `0` where 0 is not allowed).
    static func timeHint(_ text: String, secondsOnly: Bool = false) -> String? {
        guard time(text, secondsOnly: secondsOnly) == nil, time(text, secondsOnly: !secondsOnly) != nil else { return nil }
        return secondsOnly ? "this value is in whole seconds, \"ms\" is not allowed"
                           : "\"y\" and \"M\" are only for values in whole seconds; write days, as \"365d\" or \"30d\""
    }

    /// `512`, `32k`, `10M`, `1g`: bytes.
    static func size(_ text: String) -> Int? {
        let bytes = Array(text.utf8)
        guard let (number, next) = digits(bytes, from: 0) else { return nil }
        if next == bytes.count { return Int(exactly: number) }
        guard next == bytes.count - 1 else { return nil }
        let scale: Int64
        switch bytes[next] {
        case UInt8(ascii: "k"), UInt8(ascii: "K"): scale = 1 << 10
        case UInt8(ascii: "m"), UInt8(ascii: "M"): scale = 1 << 20
        case UInt8(ascii: "g"), UInt8(ascii: "G"): scale = 1 << 30
        default: return nil
        }
        let (value, overflow) = number.multipliedReportingOverflow(by: scale)
        return overflow ? nil : Int(exactly: value)
    }

    /// A plain non-negative decimal, nginx's ngx_atoi.
    static func number(_ text: String) -> Int? {
        let bytes = Array(text.utf8)
        guard let (value, next) = digits(bytes, from: 0), next == bytes.count else { return nil }
        return Int(exactly: value)
    }

    /// The canonical spelling of a size: the largest unit that divides it.
    static func sizeText(_ size: Int) -> String {
        if size != 0 && size % (1 << 30) == 0 { return "\(size >> 30)g" }
        if size != 0 && size % (1 << 20) == 0 { return "\(size >> 20)m" }
        if size != 0 && size % (1 << 10) == 0 { return "\(size >> 10)k" }
        return "\(size)"
    }

    private static func digits(_ bytes: [UInt8], from start: Int) -> (Int64, Int)? {
        var i = start
        var value: Int64 = 0
        while i < bytes.count, bytes[i] >= UInt8(ascii: "0"), bytes[i] <= UInt8(ascii: "9") {
            let (times, o1) = value.multipliedReportingOverflow(by: 10)
            let (plus, o2) = times.addingReportingOverflow(Int64(bytes[i] - UInt8(ascii: "0")))
            if o1 || o2 { return nil }
            value = plus
            i += 1
        }
        return i == start ? nil : (value, i)
    }

    private static func matches(_ bytes: [UInt8], at i: Int, _ unit: String) -> Bool {
        let u = Array(unit.utf8)
        guard i + u.count <= bytes.count else { return false }
        return Array(bytes[i..<(i + u.count)]) == u
    }
}
