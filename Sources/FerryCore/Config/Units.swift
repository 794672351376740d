// nginx's value syntax (ngx_parse_time, ngx_parse_size, ngx_atoi), so a value nginx accepts
// means the same here and a value nginx rejects is rejected here.

enum Units {
    /// `1h30m`, `1h 30m`, `500ms`, `10` (seconds), read as ngx_parse_time reads them, which
    /// takes a value either in milliseconds or in whole seconds: `secondsOnly` rejects `ms`
    /// (fail_timeout, so_keepalive), and the default, a millisecond value (every timeout),
    /// rejects `y` and `M`. Units come largest first, each at most once; spaces may follow a
    /// unit, and a number that ends the text or precedes a space counts as seconds (nginx's
    /// own reading makes `1hs` one hour and `1s5` six seconds, so they are that here too).
    /// A value past Int64 in its mode's unit is refused, as nginx refuses it; a seconds value
    /// past Int64 milliseconds, which nginx takes, saturates (Duration.nanoseconds caps it anyway).
    static func time(_ text: String, secondsOnly: Bool = false) -> Duration? {
        // Ranks as nginx's steps: a unit must rank above the one before it.
        enum Step: Int { case start, year, month, week, day, hour, minute, second, millisecond, last }
        let bytes = Array(text.utf8)
        // The total in the mode's own unit (seconds or milliseconds), as nginx keeps it.
        var total: Int64 = 0
        var value: Int64 = 0
        var valid = false
        var step: Step = secondsOnly ? .start : .month
        var i = 0
        func add(_ v: Int64, times scale: Int64) -> Bool {
            let (part, o1) = v.multipliedReportingOverflow(by: scale)
            let (sum, o2) = total.addingReportingOverflow(part)
            if o1 || o2 { return false }
            total = sum
            return true
        }
        while i < bytes.count {
            let c = bytes[i]
            i += 1
            if c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9") {
                let (times, o1) = value.multipliedReportingOverflow(by: 10)
                let (plus, o2) = times.addingReportingOverflow(Int64(c - UInt8(ascii: "0")))
                if o1 || o2 { return nil }
                value = plus
                valid = true
                continue
            }
            let unit: Step
            var seconds: Int64
            switch c {
            case UInt8(ascii: "y"): unit = .year; seconds = 365 * 86400
            case UInt8(ascii: "M"): unit = .month; seconds = 30 * 86400
            case UInt8(ascii: "w"): unit = .week; seconds = 7 * 86400
            case UInt8(ascii: "d"): unit = .day; seconds = 86400
            case UInt8(ascii: "h"): unit = .hour; seconds = 3600
            case UInt8(ascii: "m") where i < bytes.count && bytes[i] == UInt8(ascii: "s"):
                if secondsOnly { return nil }
                i += 1
                unit = .millisecond; seconds = 0
            case UInt8(ascii: "m"): unit = .minute; seconds = 60
            case UInt8(ascii: "s"): unit = .second; seconds = 1
            // A space after a bare number ends it as seconds; nothing may follow but spaces.
            case UInt8(ascii: " "):
                guard step.rawValue < Step.second.rawValue else { return nil }
                step = .last
                guard add(value, times: secondsOnly ? 1 : 1000) else { return nil }
                value = 0
                while i < bytes.count && bytes[i] == UInt8(ascii: " ") { i += 1 }
                continue
            default: return nil
            }
            // y and M may come first (start ranks below them); any other unit must rank above.
            guard unit.rawValue > step.rawValue else { return nil }
            step = unit
            let scale: Int64 = unit == .millisecond ? 1 : (secondsOnly ? seconds : seconds * 1000)
            guard add(value, times: scale) else { return nil }
            value = 0
            while i < bytes.count && bytes[i] == UInt8(ascii: " ") { i += 1 }
        }
        guard valid else { return nil }
        guard add(value, times: secondsOnly ? 1 : 1000) else { return nil }
        if secondsOnly {
            let (ms, overflow) = total.multipliedReportingOverflow(by: 1000)
            return Duration(milliseconds: overflow ? Int64.max : ms)
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

    /// `512`, `32k`, `10M`: bytes. Only k and m, as ngx_parse_size (its offsets take g; no
    /// size ferry reads is one).
    static func size(_ text: String) -> Int? {
        let bytes = Array(text.utf8)
        guard let (number, next) = digits(bytes, from: 0) else { return nil }
        if next == bytes.count { return Int(exactly: number) }
        guard next == bytes.count - 1 else { return nil }
        let scale: Int64
        switch bytes[next] {
        case UInt8(ascii: "k"), UInt8(ascii: "K"): scale = 1 << 10
        case UInt8(ascii: "m"), UInt8(ascii: "M"): scale = 1 << 20
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
}
