import Glibc

/// `ferry ctl top [-n COUNT] [-d SECONDS]`: a live per-upstream, per-server view, one screen
/// per interval, from `show stat` over the admin socket (so it needs nothing ferry does not
/// already serve). Rates are the difference of the counters between two screens.
enum TopView {
    struct Row { var state = "", weight = "", sessions = "", total: UInt64 = 0, bytesIn: UInt64 = 0, bytesOut: UInt64 = 0 }

    static func run(client: AdminClient, args: [String]) -> Int32 {
        var count = Int.max
        var delay = 1.0
        var i = 0
        while i + 1 < args.count {
            switch args[i] {
            case "-n": count = Int(args[i + 1]) ?? 0
            case "-d": delay = Double(args[i + 1]) ?? 0
            default: return ControlCommand.fail("usage: ferry ctl top [-n COUNT] [-d SECONDS]")
            }
            i += 2
        }
        guard count > 0, delay >= 0.1, i == args.count else { return ControlCommand.fail("usage: ferry ctl top [-n COUNT] [-d SECONDS] (COUNT >= 1, SECONDS >= 0.1)") }
        let tty = isatty(1) == 1
        var previous: [String: Row] = [:]
        var lastTime = MonotonicClock.now()
        for round in 0..<count {
            let stat: String
            do {
                let (text, isError) = try client.send("show stat")
                guard !isError else { return ControlCommand.fail(text) }
                stat = text
            } catch {
                return ControlCommand.fail(error.description)
            }
            let now = MonotonicClock.now()
            let seconds = max(0.001, Double(now &- lastTime) / 1e9)
            lastTime = now
            let rows = parse(stat)
            var screen = tty ? "\u{1B}[H\u{1B}[2J" : (round > 0 ? "\n" : "")
            screen += render(rows, previous: round == 0 ? [:] : previous, seconds: seconds)
            FileHandleWriter.stdout.write(screen)
            // Server names may repeat (two servers written alike): the last one's counters win.
            previous = Dictionary(rows.map { ($0.0, $0.1) }, uniquingKeysWith: { _, last in last })
            if round + 1 < count {
                var ts = timespec(tv_sec: Int(delay), tv_nsec: Int((delay - Double(Int(delay))) * 1e9))
                _ = nanosleep(&ts, nil)
            }
        }
        return 0
    }

    /// (key "backend/server", row) in `show stat` order, servers and backend totals.
    static func parse(_ csv: String) -> [(String, Row)] {
        var lines = csv.split(separator: "\n")
        guard let header = lines.first, header.hasPrefix("# ") else { return [] }
        let fields = header.dropFirst(2).split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        func column(_ name: String) -> Int { fields.firstIndex(of: name) ?? -1 }
        let (px, sv, status, weight, scur, stot, bin, bout) = (column("pxname"), column("svname"), column("status"), column("weight"),
                                                              column("scur"), column("stot"), column("bin"), column("bout"))
        lines.removeFirst()
        var rows: [(String, Row)] = []
        for line in lines {
            let v = line.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            guard v.count >= fields.count - 1, v[sv] != "FRONTEND" else { continue }
            let row = Row(state: v[status], weight: v[weight], sessions: v[scur], total: UInt64(v[stot]) ?? 0,
                          bytesIn: UInt64(v[bin]) ?? 0, bytesOut: UInt64(v[bout]) ?? 0)
            rows.append(("\(v[px])/\(v[sv])", row))
        }
        return rows
    }

    static func render(_ rows: [(String, Row)], previous: [String: Row], seconds: Double) -> String {
        func col(_ s: String, _ w: Int) -> String { s.count >= w ? s + " " : s + String(repeating: " ", count: w - s.count) }
        func bytes(_ b: UInt64) -> String {
            let units = ["B", "KiB", "MiB", "GiB", "TiB"]
            var v = Double(b), u = 0
            while v >= 1024 && u < units.count - 1 { v /= 1024; u += 1 }
            return u == 0 ? "\(b) B" : String(Int(v * 10) / 10) + "." + String(Int(v * 10) % 10) + " " + units[u]
        }
        var out = col("BACKEND/SERVER", 28) + col("STATE", 14) + col("WEIGHT", 8) + col("SESS", 8) + col("NEW/S", 8)
            + col("TOTAL", 10) + col("IN", 12) + "OUT\n"
        for (key, r) in rows {
            // A counter that went down (server deleted and re-added, ferry restarted) has no rate.
            let rate = previous[key].flatMap { p in r.total >= p.total ? String(Int((Double(r.total - p.total) / seconds).rounded())) : nil } ?? "-"
            let isBackend = key.hasSuffix("/BACKEND")
            out += col(isBackend ? key.replacingSuffix("/BACKEND", "  (all)") : "  " + key, 28) + col(r.state, 14) + col(r.weight, 8)
                + col(r.sessions, 8) + col(rate, 8) + col("\(r.total)", 10) + col(bytes(r.bytesIn), 12) + bytes(r.bytesOut) + "\n"
        }
        return out
    }
}

extension String {
    func replacingSuffix(_ suffix: String, _ with: String) -> String {
        hasSuffix(suffix) ? String(dropLast(suffix.count)) + with : self
    }
}
