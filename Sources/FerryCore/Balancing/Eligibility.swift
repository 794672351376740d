// The one place that decides whether a server may take a new session. Every balancing
// method sees only the answer (`isEligible`), so "down", "draining", "full" and "failed"
// cannot drift apart between methods (the nginx counter-example: the same checks copied
// into four modules).
//
// Passive failures follow nginx's ngx_stream_upstream_round_robin.c exactly, with
// nanoseconds instead of seconds:
//   - a failed connect: fails += 1, lastFailureAt = checkedAt = now
//   - the peer is unavailable while fails >= maxFails and now - checkedAt <= failTimeout
//   - when a peer is selected more than failTimeout after checkedAt, checkedAt = now: this
//     is the single trial. If fails >= maxFails it makes the peer unavailable again for
//     another failTimeout, so only one session probes a recovering server at a time.
//   - a successful connect clears fails only if a trial happened after the last failure
//     (lastFailureAt < checkedAt). So failures do not "expire" by time alone: a server
//     that failed once and then serves successfully within failTimeout keeps fails = 1
//     until a selection more than failTimeout later; this is nginx's behaviour, kept so
//     configurations tuned on nginx mean the same here.
// maxFails = 0 turns passive accounting off: failures are not counted at all.

/// Why a server may or may not take a new session. Also what the admin socket shows.
public enum Verdict: Equatable, Sendable {
    case eligible
    case configDown                 // `down` in the configuration
    case draining                   // admin drain: keeps its sessions, takes no new ones
    case maintenance                // admin maint
    case weightZero                 // runtime weight 0 behaves like drain
    case unhealthy                  // the TCP probe or the agent says so
    case stopping                   // `health stopping`: up, keeps its sessions, takes no new ones
    case full                       // active >= max_conns
    case failed(until: UInt64)      // max_fails reached; available again after `until` (ns)
}

public enum Eligibility {
    /// The verdict for a new session at monotonic time `now` (ns). Ignores the per-session
    /// tried set and the backup rule: those are about the session, not the server.
    public static func verdict(_ peer: PeerState, now: UInt64) -> Verdict {
        if peer.configDown { return .configDown }
        switch peer.effectiveAdmin {
        case .ready: break
        case .drain: return .draining
        case .maint: return .maintenance
        }
        if peer.weight <= 0 { return .weightZero }
        if !peer.healthy { return .unhealthy }
        if peer.probeStopping { return .stopping }
        if peer.maxConns > 0 && peer.active >= peer.maxConns { return .full }
        if peer.maxFails > 0 && peer.fails >= peer.maxFails {
            // `now < checkedAt` only if the caller's clock went backwards; treat the
            // window as still open rather than letting the subtraction wrap to "expired".
            if now < peer.checkedAt || now - peer.checkedAt <= peer.failTimeoutNanos {
                return .failed(until: peer.checkedAt &+ peer.failTimeoutNanos &+ 1)
            }
        }
        return .eligible
    }

    public static func isEligible(_ peer: PeerState, now: UInt64) -> Bool {
        verdict(peer, now: now) == .eligible
    }

    /// Eligibility for one attempt of one session: the server's verdict plus the session's
    /// "never the same server twice" rule.
    public static func mayTry(_ peer: PeerState, index: Int, now: UInt64, tried: TriedSet) -> Bool {
        !tried.contains(index) && isEligible(peer, now: now)
    }

    /// Call when `peer` has been chosen for an attempt. This is nginx's trial: the first
    /// selection more than failTimeout after the last failure or trial marks a new check.
    public static func recordSelected(_ peer: inout PeerState, now: UInt64) {
        if now > peer.checkedAt && now - peer.checkedAt > peer.failTimeoutNanos {
            peer.checkedAt = now
        }
    }

    /// A connect to `peer` failed (refused, reset, timed out).
    public static func recordFailure(_ peer: inout PeerState, now: UInt64) {
        guard peer.maxFails > 0 else { return }
        peer.fails += 1
        peer.lastFailureAt = now
        peer.checkedAt = now
    }

    /// A connect to `peer` succeeded.
    public static func recordSuccess(_ peer: inout PeerState) {
        if peer.lastFailureAt < peer.checkedAt {
            peer.fails = 0
        }
    }
}
