import Glibc

/// Bytes of one log line being made. A connection-log line is built once per session, so it is
/// written into storage reused from line to line: no String pieces, no allocation, and each
/// append is a bounds check and a copy (an Array append per piece cost ~100 instructions, and
/// a JSON line has ~40 pieces: 11k instructions per session before this was a raw buffer).
public struct LineBuffer {
    /// Owns the bytes, so they are freed with the last copy. Only constants live here: the
    /// position and size are the struct's own, because a class's `var` is checked for
    /// exclusive access at run time on every touch (that check cost more than the copies).
    private final class Allocation {
        let base: UnsafeMutablePointer<UInt8>
        let capacity: Int
        init(capacity: Int) {
            self.capacity = capacity
            base = .allocate(capacity: capacity)
        }
        deinit { base.deallocate() }
    }

    private var allocation: Allocation
    private var base: UnsafeMutablePointer<UInt8>
    private var capacity: Int
    public private(set) var count = 0

    public init(capacity: Int = 512) {
        allocation = Allocation(capacity: max(capacity, 16))
        base = allocation.base
        self.capacity = allocation.capacity
    }

    public mutating func reset() {
        count = 0
        if !isKnownUniquelyReferenced(&allocation) { replace(capacity: capacity) }
    }

    /// A new allocation of `capacity` bytes holding the bytes so far: to grow, or to stop
    /// sharing with a copy before writing.
    private mutating func replace(capacity c: Int) {
        let new = Allocation(capacity: c)
        new.base.initialize(from: base, count: count)
        allocation = new
        base = new.base
        capacity = c
    }

    /// Room for `n` more bytes: where they go. The caller writes them and calls `commit(n)`.
    @inline(__always)
    private mutating func reserve(_ n: Int) -> UnsafeMutablePointer<UInt8> {
        if count + n > capacity {
            var c = capacity * 2
            while c < count + n { c *= 2 }
            replace(capacity: c)
        } else if !isKnownUniquelyReferenced(&allocation) {
            replace(capacity: capacity)
        }
        return base + count
    }

    @inline(__always)
    private mutating func commit(_ n: Int) { count += n }

    /// The line so far, for the log file to copy.
    public func withBytes<R>(_ body: (UnsafeBufferPointer<UInt8>) throws -> R) rethrows -> R {
        try body(UnsafeBufferPointer(start: base, count: count))
    }

    public var bytes: [UInt8] { withBytes { Array($0) } }

    public var string: String { withBytes { String(decoding: $0, as: UTF8.self) } }

    @inline(__always)
    public mutating func append(bytes p: UnsafeBufferPointer<UInt8>) {
        guard let src = p.baseAddress, p.count > 0 else { return }
        reserve(p.count).update(from: src, count: p.count)
        commit(p.count)
    }

    @inline(__always)
    public mutating func append(_ s: StaticString) {
        append(bytes: UnsafeBufferPointer(start: s.utf8Start, count: s.utf8CodeUnitCount))
    }

    /// Text that is not a literal. Named apart from `append(_: StaticString)` so a literal
    /// never takes this path: String is the literal's default type, and each piece would
    /// cost a String's UTF-8 access (~100 instructions) instead of a copy.
    public mutating func append(text s: String) {
        if s.utf8.withContiguousStorageIfAvailable({ append(bytes: $0) }) == nil {
            var s = s
            s.withUTF8 { append(bytes: $0) }
        }
    }

    @inline(__always)
    public mutating func append(byte: UInt8) {
        reserve(1).pointee = byte
        commit(1)
    }

    /// A decimal integer, without the String round trip.
    public mutating func append(number: UInt64) {
        var digits = 1, n = number
        while n >= 10 { n /= 10; digits += 1 }
        let p = reserve(digits)
        n = number
        for i in stride(from: digits - 1, through: 0, by: -1) {
            p[i] = UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: n % 10)
            n /= 10
        }
        commit(digits)
    }

    public mutating func append(number: Int) { append(number: UInt64(max(0, number))) }

    /// `value` in units of 10^-places as a decimal: 1234 with 3 places is "1.234".
    public mutating func append(fixed value: UInt64, places: Int) {
        var scale: UInt64 = 1
        for _ in 0..<places { scale &*= 10 }
        append(number: value / scale)
        let p = reserve(places + 1)
        p[0] = UInt8(ascii: ".")
        var frac = value % scale
        for i in stride(from: places, through: 1, by: -1) {
            p[i] = UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: frac % 10)
            frac /= 10
        }
        commit(places + 1)
    }

    /// A JSON string, quotes included; the escaping pass only when a character needs it.
    public mutating func append(jsonQuoted s: String) {
        // Non-mutating access to the UTF-8 (a `var` copy and `withUTF8` cost ~250 instructions).
        let clean = s.utf8.withContiguousStorageIfAvailable { u -> Bool in
            for c in u where c < 0x20 || c == UInt8(ascii: "\"") || c == UInt8(ascii: "\\") { return false }
            append(byte: UInt8(ascii: "\""))
            append(bytes: u)
            append(byte: UInt8(ascii: "\""))
            return true
        } ?? false
        if !clean {
            var escaped = ""
            JSONLine.escape(s, into: &escaped)
            append(byte: UInt8(ascii: "\""))
            append(text: escaped)
            append(byte: UInt8(ascii: "\""))
        }
    }

    /// An nginx variable's value with the format's escaping (see LogTemplate.append).
    public mutating func append(_ s: String, escape: LogFormatConfig.Escape) {
        let clean = s.utf8.withContiguousStorageIfAvailable { u -> Bool in
            if escape != .none {
                for c in u where c < 0x20 || c > 0x7E || c == UInt8(ascii: "\"") || c == UInt8(ascii: "\\") { return false }
            }
            append(bytes: u)
            return true
        } ?? false
        if !clean {
            var escaped = ""
            LogTemplate.append(s, escape: escape, to: &escaped)
            append(text: escaped)
        }
    }

    /// The client address as $remote_addr prints it, IPv4 written digit by digit.
    public mutating func append(client key: ClientKey) {
        if key.high == 0 && key.low >> 32 == 0xFFFF {
            let a = UInt32(truncatingIfNeeded: key.low)
            append(number: UInt64(a >> 24)); append(byte: UInt8(ascii: "."))
            append(number: UInt64(a >> 16 & 0xFF)); append(byte: UInt8(ascii: "."))
            append(number: UInt64(a >> 8 & 0xFF)); append(byte: UInt8(ascii: "."))
            append(number: UInt64(a & 0xFF))
        } else {
            append(text: key.hostText)
        }
    }
}
