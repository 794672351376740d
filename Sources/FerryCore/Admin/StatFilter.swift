/// Which rows `show stat` prints, from HAProxy's arguments:
/// `show stat [domain proxy] [{<iid>|<proxy>} <type> <sid>] [desc] [up|no-maint]`.
/// Dashboards and exporters written for HAProxy send these (`show stat -1 4 -1` for servers
/// only), so ferry reads them as HAProxy does: `-1` means any; `<type>` adds 1 for frontends,
/// 2 for backends and 4 for servers; `<sid>` picks one server by its id and leaves the
/// frontend and backend rows alone. Where HAProxy ignores a word it does not know, ferry says
/// so, and it refuses the `typed` and `json` formats it does not print.
struct StatFilter: Equatable {
    /// A proxy's id (`iid`), or nil for every proxy.
    var proxyID: Int? = nil
    var frontends = true, backends = true, servers = true
    /// A server's id (`sid`), or nil for every server.
    var serverID: Int? = nil
    /// `up`: leave out servers in maintenance and those down and not on their way back up
    /// (HAProxy shows a down server whose probes have started to pass: "DOWN 1/2").
    var upOnly = false
    /// `no-maint`: leave out servers in maintenance.
    var noMaint = false

    /// Reads the words after `show stat`; `proxyID(name)` gives the id of a frontend or
    /// backend called that, if there is one.
    static func parse(_ words: ArraySlice<String>, proxyID: (String) -> Int?) -> Result<StatFilter, AdminAnswer> {
        var filter = StatFilter()
        var rest = words
        if rest.first == "domain" {
            rest.removeFirst()
            guard rest.first == "proxy" else {
                return .failure(.error(rest.first == "resolvers" ? "ferry has no resolvers: only 'domain proxy' is available." : "Invalid statistics domain."))
            }
            rest.removeFirst()
        }
        if let first = rest.first, !flags.contains(first), rest.count < 3 || flags.contains(rest[rest.startIndex + 1]) || flags.contains(rest[rest.startIndex + 2]),
           proxyID(first) != nil || Int(first) != nil {
            // HAProxy ignores a proxy given without its type and sid and shows everything.
            return .failure(.error("'show stat' takes <iid>|<proxy>, <type> and <sid> together, e.g. 'show stat -1 4 -1'."))
        }
        if rest.count >= 3, !flags.contains(rest[rest.startIndex]) {
            let (name, type, sid) = (rest[rest.startIndex], rest[rest.startIndex + 1], rest[rest.startIndex + 2])
            rest.removeFirst(3)
            guard let id = proxyID(name) ?? Int(name), id != 0 else { return .failure(.error("No such proxy.")) }
            guard let mask = Int(type), mask >= -1 else {
                return .failure(.error("'show stat' expects <type> as -1 (any) or a sum of 1 (frontends), 2 (backends) and 4 (servers)."))
            }
            guard let server = Int(sid), server >= -1 else {
                return .failure(.error("'show stat' expects <sid> as -1 (any) or a server's id."))
            }
            if id != -1 { filter.proxyID = id }
            if mask != -1 { filter.frontends = mask & 1 != 0; filter.backends = mask & 2 != 0; filter.servers = mask & 4 != 0 }
            if server != -1 { filter.serverID = server }
        }
        for word in rest {
            switch word {
            case "up": filter.upOnly = true
            case "no-maint": filter.noMaint = true
            case "desc": break  // descriptions go with the typed and json formats only
            case "typed", "json": return .failure(.error("ferry prints 'show stat' as CSV only; '\(word)' is not supported."))
            default:
                return .failure(.error("Unknown 'show stat' argument '\(word)': expected [domain proxy] [<iid>|<proxy> <type> <sid>] [up|no-maint]."))
            }
        }
        return .success(filter)
    }

    private static let flags: Set<String> = ["up", "no-maint", "desc", "typed", "json"]

    func showsProxy(_ id: Int) -> Bool { proxyID == nil || proxyID == id }

    /// Whether a server row is shown; `status` is the row's status word.
    func showsServer(id: Int, status: String) -> Bool {
        guard servers, serverID == nil || serverID == id else { return false }
        if noMaint && status == "MAINT" { return false }
        if upOnly && ["MAINT", "DOWN", "DOWN (agent)"].contains(status) { return false }
        return true
    }
}
