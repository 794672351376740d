/// Bytes of one log line being made. A connection-log line is built once per session, so it is
/// written as bytes into a buffer reused from line to line: no String pieces, no allocation.
public struct LineBuffer {
    public var bytes: [UInt8] = []

    public init(capacity: Int = 512) { bytes.reserveCapacity(capacity) }

    public mutating func reset() { bytes.removeAll(keepingCapacity: true) }

    @inline(__always)
    public mutating func append(_ s: StaticString) {
        bytes.append(contentsOf: UnsafeBufferPointer(start: s.utf8Start, count: s.utf8CodeUnitCount))
    }

    public mutating func append(_ s: String) {
        var s = s
        s.withUTF8 { bytes.append(contentsOf: $0) }
    }

    @inline(__always)
    public mutating func append(byte: UInt8) { bytes.append(byte) }

    /// A decimal integer, without the String round trip.
    public mutating func append(number: UInt64) {
        if number < 10 { bytes.append(UInt8(ascii: "0") &+ UInt8(number)); return }
        var digits: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64,
                     UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var n = number, count = 0
        withUnsafeMutableBytes(of: &digits) { p in
            while n > 0 { p[count] = UInt8(ascii: "0") &+ UInt8(n % 10); n /= 10; count += 1 }
            for i in stride(from: count - 1, through: 0, by: -1) { bytes.append(p[i]) }
        }
    }

    public mutating func append(number: Int) { append(number: UInt64(max(0, number))) }

    /// `value` in units of 10^-places as a decimal: 1234 with 3 places is "1.234".
    public mutating func append(fixed value: UInt64, places: Int) {
        var scale: UInt64 = 1
        for _ in 0..<places { scale &*= 10 }
        append(number: value / scale)
        bytes.append(UInt8(ascii: "."))
        var frac = value % scale
        var s = scale / 10
        while s > 0 { bytes.append(UInt8(ascii: "0") &+ UInt8(frac / s)); frac %= s; s /= 10 }
    }

    /// A JSON string, quotes included; the escaping pass only when a character needs it.
    public mutating func append(jsonQuoted s: String) {
        bytes.append(UInt8(ascii: "\""))
        if s.utf8.allSatisfy({ $0 >= 0x20 && $0 != UInt8(ascii: "\"") && $0 != UInt8(ascii: "\\") }) {
            append(s)
        } else {
            var escaped = ""
            JSONLine.escape(s, into: &escaped)
            append(escaped)
        }
        bytes.append(UInt8(ascii: "\""))
    }

    /// An nginx variable's value with the format's escaping (see LogTemplate.append).
    public mutating func append(_ s: String, escape: LogFormatConfig.Escape) {
        if escape == .none || s.utf8.allSatisfy({ $0 >= 0x20 && $0 <= 0x7E && $0 != UInt8(ascii: "\"") && $0 != UInt8(ascii: "\\") }) {
            append(s)
        } else {
            var escaped = ""
            LogTemplate.append(s, escape: escape, to: &escaped)
            append(escaped)
        }
    }

    /// The client address as $remote_addr prints it, IPv4 written digit by digit.
    public mutating func append(client key: ClientKey) {
        if key.high == 0 && key.low >> 32 == 0xFFFF {
            let a = UInt32(truncatingIfNeeded: key.low)
            append(number: UInt64(a >> 24)); bytes.append(UInt8(ascii: "."))
            append(number: UInt64(a >> 16 & 0xFF)); bytes.append(UInt8(ascii: "."))
            append(number: UInt64(a >> 8 & 0xFF)); bytes.append(UInt8(ascii: "."))
            append(number: UInt64(a & 0xFF))
        } else {
            append(key.hostText)
        }
    }

    public var string: String { String(decoding: bytes, as: UTF8.self) }
}
