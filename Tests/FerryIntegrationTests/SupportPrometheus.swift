import XCTest

/// A strict reader of Prometheus's text exposition format (0.0.4), for tests on machines
/// without `promtool`: returns the problems found, empty when the text is valid.
enum ExpositionChecker {
    struct Sample { var name: String; var labels: [String: String]; var value: Double }

    static let metricName = try! NSRegularExpression(pattern: #"^[a-zA-Z_:][a-zA-Z0-9_:]*$"#)
    static let labelName = try! NSRegularExpression(pattern: #"^[a-zA-Z_][a-zA-Z0-9_]*$"#)

    static func matches(_ r: NSRegularExpression, _ s: String) -> Bool {
        r.numberOfMatches(in: s, range: NSRange(s.startIndex..., in: s)) == 1
    }

    /// Parses `name{a="x",b="y"} value`; nil when malformed.
    static func parseSample(_ line: String) -> Sample? {
        var rest = Substring(line)
        let name = rest.prefix { $0 != "{" && $0 != " " }
        rest = rest.dropFirst(name.count)
        var labels: [String: String] = [:]
        if rest.first == "{" {
            rest = rest.dropFirst()
            while rest.first != "}" {
                let key = rest.prefix { $0 != "=" }
                guard matches(labelName, String(key)) else { return nil }
                rest = rest.dropFirst(key.count)
                guard rest.hasPrefix("=\"") else { return nil }
                rest = rest.dropFirst(2)
                var value = ""
                while let c = rest.first, c != "\"" {
                    rest = rest.dropFirst()
                    if c == "\\" {
                        guard let e = rest.first else { return nil }
                        rest = rest.dropFirst()
                        switch e {
                        case "\\": value += "\\"
                        case "\"": value += "\""
                        case "n": value += "\n"
                        default: return nil
                        }
                    } else if c == "\n" {
                        return nil
                    } else {
                        value.append(c)
                    }
                }
                guard rest.first == "\"" else { return nil }
                rest = rest.dropFirst()
                guard labels.updateValue(value, forKey: String(key)) == nil else { return nil }
                if rest.first == "," { rest = rest.dropFirst() } else if rest.first != "}" { return nil }
            }
            rest = rest.dropFirst()
        }
        guard rest.first == " ", let v = Double(rest.dropFirst()) else { return nil }
        return Sample(name: String(name), labels: labels, value: v)
    }

    static func check(_ text: String) -> (problems: [String], samples: [Sample]) {
        var problems: [String] = []
        var samples: [Sample] = []
        var types: [String: String] = [:]
        var helps = Set<String>()
        var finished = Set<String>()
        var current: String? = nil
        var series = Set<String>()
        if !text.hasSuffix("\n") { problems.append("does not end with a newline") }
        for line in text.split(separator: "\n", omittingEmptySubsequences: false).dropLast() {
            let l = String(line)
            if l.hasPrefix("# HELP ") || l.hasPrefix("# TYPE ") {
                let parts = l.split(separator: " ", maxSplits: 3).map(String.init)
                guard parts.count >= 3, matches(metricName, parts[2]) else { problems.append("bad comment: \(l)"); continue }
                let name = parts[2]
                if finished.contains(name) { problems.append("family \(name) is not contiguous") }
                if current != name, let c = current { finished.insert(c) }
                current = name
                if parts[1] == "HELP" {
                    if !helps.insert(name).inserted { problems.append("HELP twice for \(name)") }
                } else {
                    guard parts.count == 4, ["counter", "gauge", "histogram", "summary", "untyped"].contains(parts[3]) else {
                        problems.append("bad TYPE: \(l)"); continue
                    }
                    if types.updateValue(parts[3], forKey: name) != nil { problems.append("TYPE twice for \(name)") }
                    if parts[3] == "counter" && !name.hasSuffix("_total") { problems.append("counter \(name) does not end in _total") }
                }
                continue
            }
            if l.isEmpty || l.hasPrefix("#") { continue }
            guard let s = parseSample(l), matches(metricName, s.name) else { problems.append("bad sample: \(l)"); continue }
            if s.name != current { problems.append("sample \(s.name) outside its family (\(current ?? "none"))") }
            if types[s.name] == nil { problems.append("sample \(s.name) before its TYPE") }
            if types[s.name] == "counter" && s.value < 0 { problems.append("negative counter: \(l)") }
            let key = s.name + s.labels.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
            if !series.insert(key).inserted { problems.append("duplicate series: \(l)") }
            samples.append(s)
        }
        return (problems, samples)
    }
}
