@testable import FerryCore

// Shared builders for the balancing tests: servers named a, b, c, ... by position.

let second: UInt64 = 1_000_000_000

func server(weight: Int = 1, maxConns: Int = 0, maxFails: Int = 1, failTimeout: UInt64 = 10 * second,
            backup: Bool = false, down: Bool = false) -> PeerState {
    PeerState(weight: weight, maxConns: maxConns, maxFails: maxFails, failTimeoutNanos: failTimeout,
              backup: backup, down: down)
}

func servers(weights: [Int]) -> [PeerState] { weights.map { server(weight: $0) } }

func letter(_ i: Int?) -> String {
    guard let i else { return "-" }
    return String(UnicodeScalar(UInt8(97 + i)))
}

/// `n` selections with no session bookkeeping, as letters ("-" for nil).
func sequence(_ s: inout Scheduler, _ n: Int, client: ClientKey = .none, now: UInt64 = 0,
              tried: TriedSet = TriedSet()) -> String {
    var out = ""
    for _ in 0..<n { out += letter(s.select(client: client, now: now, tried: tried)) }
    return out
}

/// `n` sessions that open and stay open, as letters.
func openSessions(_ s: inout Scheduler, _ n: Int, now: UInt64 = 0) -> String {
    var out = ""
    for _ in 0..<n {
        let i = s.select(client: .none, now: now, tried: TriedSet())
        if let i { s.sessionOpened(i) }
        out += letter(i)
    }
    return out
}

/// Distinct client addresses 127.x.y.z, the i-th one.
func loopbackClient(_ i: Int) -> ClientKey {
    ClientKey(ipv4: 127, UInt8(truncatingIfNeeded: i >> 16), UInt8(truncatingIfNeeded: i >> 8), UInt8(truncatingIfNeeded: i))
}

func counts(_ picks: [Int?], servers n: Int) -> [Int] {
    var c = Array(repeating: 0, count: n)
    for p in picks { if let p { c[p] += 1 } }
    return c
}
