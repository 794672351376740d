#if canImport(Glibc)
import Glibc
#endif

// Times ConfigLoader.load(path:) on one file, built -O with Config/ alone (see config-load.sh).
// Prints the best and the median of the runs: the best is the cost, the median the noise.

@main
struct ConfigLoadBench {
    static func now() -> Double {
        var t = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t)
        return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
    }

    static func main() throws {
        let args = CommandLine.arguments
        guard args.count >= 2 else { print("usage: config-load-bench FILE [RUNS]"); exit(2) }
        let runs = args.count > 2 ? Int(args[2]) ?? 10 : 10
        var times: [Double] = []
        var servers = 0
        for _ in 0..<runs {
            let start = now()
            let loaded = try ConfigLoader.load(path: args[1])
            times.append(now() - start)
            servers = loaded.config.upstreams.reduce(0) { $0 + $1.servers.count } + loaded.config.listeners.count
        }
        times.sort()
        let ms = { (s: Double) in String(Int((s * 1e4).rounded()) / 10) + "." + String(Int((s * 1e4).rounded()) % 10) }
        print("loaded \(servers) servers from \(args[1]): best \(ms(times[0])) ms, median \(ms(times[times.count / 2])) ms over \(runs) runs")
    }
}
