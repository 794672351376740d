// The hash functions the hashing methods share. They depend on nothing but their input (no
// seed), so every worker process and every restart sends a client to the same server.
// nginx hashes the textual address with CRC32; ferry hashes the 128-bit ClientKey, so the
// mapping differs from nginx's (a migration from nginx moves clients once).

public enum HashMix {
    /// The SplitMix64 / MurmurHash3 64-bit finalizer: every input bit affects every output bit,
    /// so consecutive addresses (127.0.0.1, 127.0.0.2, ...) land far apart.
    @inline(__always)
    public static func fmix(_ x: UInt64) -> UInt64 {
        var z = x
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Two values into one; order matters (a, b) != (b, a).
    @inline(__always)
    public static func combine(_ a: UInt64, _ b: UInt64) -> UInt64 {
        fmix(a &+ 0x9E37_79B9_7F4A_7C15 &* (b | 1) ^ fmix(b))
    }

    public static func client(_ key: ClientKey) -> UInt64 {
        combine(fmix(key.high), key.low)
    }

    /// The n-th rehash of a client, for methods that retry when the first pick is unavailable.
    public static func client(_ key: ClientKey, rehash n: UInt64) -> UInt64 {
        n == 0 ? client(key) : combine(client(key), n)
    }

    /// A server's name as a ring identity (FNV-1a, then mixed), so a server keeps its points
    /// when others are added, removed or reordered.
    public static func name(_ s: String) -> UInt64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for b in s.utf8 { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01B3 }
        return fmix(h)
    }
}
