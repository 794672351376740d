import Glibc
import CLinux

/// Seeds for `random`: fresh on every start and every reload, as nginx's workers draw theirs
/// (srandom at worker start). Seeded by the upstream's name alone, every ferry running one
/// file, and every reload of it, would replay the same picks: with a reload every two
/// sessions, weights 3,1,1 gave the weight-3 server none.
enum Entropy {
    /// Eight bytes from getrandom(2); the monotonic clock and the pid if the kernel will not
    /// give them (no kernel this runs on lacks it, but a seed is no reason to stop).
    static func seed() -> UInt64 {
        var value: UInt64 = 0
        let got = try? syscall("getrandom") { withUnsafeMutableBytes(of: &value) { ferry_getrandom($0.baseAddress, 8) } }
        if got == 8 { return value }
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return UInt64(truncatingIfNeeded: now.tv_nsec) ^ UInt64(truncatingIfNeeded: now.tv_sec) << 30
            ^ UInt64(truncatingIfNeeded: getpid()) << 48
    }
}
