/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum a PROXY protocol v2
/// header may carry in its CRC32c TLV. Table-driven, one byte at a time: it runs once per
/// header that carries the TLV, so speed does not matter, and no CPU-specific instruction is
/// needed.
struct CRC32C {
    private static let table: [UInt32] = (0..<256).map { n in
        var c = UInt32(n)
        for _ in 0..<8 { c = c & 1 != 0 ? (c >> 1) ^ 0x82F6_3B78 : c >> 1 }
        return c
    }

    private var state: UInt32 = 0xFFFF_FFFF

    mutating func update(_ bytes: UnsafeRawBufferPointer) {
        let table = CRC32C.table
        for b in bytes { state = table[Int((state ^ UInt32(b)) & 0xFF)] ^ (state >> 8) }
    }

    mutating func update(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { update($0) }
    }

    var value: UInt32 { state ^ 0xFFFF_FFFF }
}
