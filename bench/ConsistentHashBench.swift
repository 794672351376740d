#if canImport(Glibc)
import Glibc
#endif

// What a `hash $remote_addr consistent` ring costs the event loop: one full build, and one
// runtime weight change of one server (an agent's `75%`, admin `set server ... weight`),
// which reaches the ring through peersChanged. Built -O with the few Balancing/ files the
// ring needs (see chash-rebuild.sh). Prints the median and the best of the runs per ring:
// the median is the figure to quote, the best shows the noise of this shared machine.

@main
struct ConsistentHashBench {
    static func nanos() -> UInt64 {
        var t = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t)
        return UInt64(t.tv_sec) * 1_000_000_000 + UInt64(t.tv_nsec)
    }

    static func ms(_ ns: UInt64) -> String {
        let tenths = (ns + 5_000) / 10_000      // hundredths of a millisecond
        let frac = tenths % 100
        return "\(tenths / 100).\(frac < 10 ? "0" : "")\(frac) ms"
    }

    /// A fixed xorshift stream, so every run (and the before/after builds) sees the same changes.
    struct Stream {
        var state: UInt64
        mutating func next() -> UInt64 {
            state ^= state << 13; state ^= state >> 7; state ^= state << 17
            return state
        }
    }

    static func main() {
        let args = CommandLine.arguments
        let builds = args.count > 1 ? Int(args[1]) ?? 7 : 7
        let changes = args.count > 2 ? Int(args[2]) ?? 31 : 31
        var sink = 0
        for (servers, weight) in [(5, 100), (20, 256), (10_000, 1)] {
            let config = (0..<servers).map { PeerView(weight: weight, active: 0, identity: UInt64(7000 + $0), configWeight: weight) }
            var buildTimes: [UInt64] = []
            var ring = ConsistentHash(peers: config, seed: 0)
            for _ in 0..<builds {
                let t0 = nanos()
                ring = ConsistentHash(peers: config, seed: 0)
                buildTimes.append(nanos() - t0)
            }
            let points = ring.pointCount
            // Agent-style replies: one server at a time to a percentage of its configured weight
            // (0-100%, so 0 sometimes: weight 1 at 50% is 0, as HAProxy).
            var views = config
            var rng = Stream(state: 0x9E37_79B9_7F4A_7C15)
            var changeTimes: [UInt64] = []
            for _ in 0..<changes {
                let i = Int(rng.next() % UInt64(servers))
                let percent = Int(rng.next() % 101)
                views[i].weight = views[i].configWeight * percent / 100
                let t0 = nanos()
                ring.peersChanged(views)
                changeTimes.append(nanos() - t0)
            }
            sink &+= ring.pointCount
            buildTimes.sort()
            changeTimes.sort()
            print("\(servers) x weight \(weight): \(points) points; full build median \(ms(buildTimes[builds / 2])) (best \(ms(buildTimes[0])), \(builds) runs); "
                  + "one weight change median \(ms(changeTimes[changes / 2])) (best \(ms(changeTimes[0])), \(changes) changes)")
        }
        if sink == 42 { print("") }
    }
}
