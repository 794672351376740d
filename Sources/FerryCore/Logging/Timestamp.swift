import Glibc

public enum Timestamp {
    /// The text up to the seconds, for the second seen last: a busy log formats the date once
    /// per second, not once per line. Loop thread only (every log line is made there).
    nonisolated(unsafe) private static var cachedSecond: Int64 = -1
    nonisolated(unsafe) private static var cachedPrefix = ""

    /// `2026-11-22T10:04:05.123+00:00`: ISO 8601 with milliseconds, in UTC.
    public static func iso8601(milliseconds ms: Int64) -> String {
        let second = ms / 1000
        if second != cachedSecond {
            let full = format(milliseconds: second * 1000)
            cachedPrefix = String(full.prefix(20))   // "2026-11-22T10:04:05."
            cachedSecond = second
        }
        let m = Int(ms % 1000)
        let digits: [UInt8] = [UInt8(48 + m / 100), UInt8(48 + m / 10 % 10), UInt8(48 + m % 10)]
        return cachedPrefix + String(decoding: digits, as: UTF8.self) + "+00:00"
    }

    nonisolated(unsafe) private static var cachedPrefixBytes: [UInt8] = []
    nonisolated(unsafe) private static var cachedBytesSecond: Int64 = -1

    /// The same text as `iso8601`, written into a line.
    public static func write(milliseconds ms: Int64, into b: inout LineBuffer) {
        let second = ms / 1000
        if second != cachedBytesSecond {
            cachedPrefixBytes = Array(iso8601(milliseconds: second * 1000).utf8.prefix(20))
            cachedBytesSecond = second
        }
        cachedPrefixBytes.withUnsafeBufferPointer { b.append(bytes: $0) }
        let m = Int(ms % 1000)
        b.append(byte: UInt8(48 + m / 100)); b.append(byte: UInt8(48 + m / 10 % 10)); b.append(byte: UInt8(48 + m % 10))
        b.append("+00:00")
    }

    static func format(milliseconds ms: Int64) -> String {
        var t = time_t(ms / 1000)
        var tmv = tm()
        gmtime_r(&t, &tmv)
        func pad(_ v: Int32, _ w: Int) -> String {
            let s = String(v)
            return String(repeating: "0", count: max(0, w - s.count)) + s
        }
        return "\(pad(tmv.tm_year + 1900, 4))-\(pad(tmv.tm_mon + 1, 2))-\(pad(tmv.tm_mday, 2))T"
            + "\(pad(tmv.tm_hour, 2)):\(pad(tmv.tm_min, 2)):\(pad(tmv.tm_sec, 2)).\(pad(Int32(ms % 1000), 3))+00:00"
    }
}
