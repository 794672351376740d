// "did you mean" for directive and parameter names. Optimal string alignment distance, so a
// swapped pair of letters (`wieght`) counts as one typo, not two.

enum NameSuggestion {
    /// The nearest candidate close enough to be a plausible typo; ties go to the earlier one.
    static func nearest(to name: String, in candidates: [String]) -> String? {
        let allowed = name.count >= 7 ? 3 : name.count >= 4 ? 2 : 1
        var best: (String, Int)?
        for candidate in candidates where candidate != name {
            let d = distance(name, candidate)
            if d <= allowed && d < name.count && (best == nil || d < best!.1) { best = (candidate, d) }
        }
        return best?.0
    }

    static func distance(_ a: String, _ b: String) -> Int {
        let s = Array(a.utf8), t = Array(b.utf8)
        if s.isEmpty { return t.count }
        if t.isEmpty { return s.count }
        // Three rows suffice for the transposition lookback.
        var previous2 = [Int](repeating: 0, count: t.count + 1)
        var previous = Array(0...t.count)
        var current = [Int](repeating: 0, count: t.count + 1)
        for i in 1...s.count {
            current[0] = i
            for j in 1...t.count {
                let cost = s[i - 1] == t[j - 1] ? 0 : 1
                var d = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
                if i > 1 && j > 1 && s[i - 1] == t[j - 2] && s[i - 2] == t[j - 1] {
                    d = min(d, previous2[j - 2] + 1)
                }
                current[j] = d
            }
            (previous2, previous, current) = (previous, current, previous2)
        }
        return previous[t.count]
    }
}
