// Runtime state of one server, the input to the single eligibility decision.
// The TCP probe, the agent and the admin socket each own their own fields here, so one
// never undoes what another did (HAProxy: "only the agent undoes what the agent did");
// none of them decides eligibility on its own.

public struct PeerState: Equatable, Sendable {
    /// How the operator or the agent wants the server used.
    public enum Admin: Int, Equatable, Comparable, Sendable {
        case ready = 0  // normal
        case drain = 1  // keeps its sessions, takes no new ones
        case maint = 2  // takes no new ones (sessions are the admin's business)
        public static func < (a: Admin, b: Admin) -> Bool { a.rawValue < b.rawValue }
    }

    public var configWeight: Int
    /// Weight for new sessions; 0 behaves like drain.
    public var weight: Int
    public var maxConns: Int            // 0 = unlimited
    public var maxFails: Int            // 0 = passive failure accounting off
    public var failTimeoutNanos: UInt64
    public var backup: Bool
    public var configDown: Bool         // `down` in the config
    /// Set by the operator (admin socket).
    public var admin: Admin = .ready
    /// Set by the agent's `ready`/`drain`/`maint`.
    public var agentAdmin: Admin = .ready
    /// The TCP probe's verdict after rise/fall; true when no probe is configured.
    public var probeUp: Bool = true
    /// `set server ... health stopping` (HAProxy's NOLB): up, keeps its sessions, takes no new
    /// ones, until the probe's next pass makes it fully up again (or its failures take it down).
    public var probeStopping: Bool = false
    /// False after the agent said `down`/`stopped`/`fail` (or `set server ... agent down`).
    public var agentUp: Bool = true

    /// The stricter of the operator's and the agent's admin state.
    public var effectiveAdmin: Admin { max(admin, agentAdmin) }
    /// Both the probe and the agent allow the server.
    public var healthy: Bool { probeUp && agentUp }

    public var active: Int = 0
    /// Passive failures (connect refused / timed out) counted in the current fail_timeout window.
    public var fails: Int = 0
    /// nginx's `accessed`: monotonic time (ns) of the most recent failure.
    public var lastFailureAt: UInt64 = 0
    /// nginx's `checked`: the most recent failure, or the most recent selection made more than
    /// fail_timeout after it (the trial). A success after a trial clears `fails`; see Eligibility.
    public var checkedAt: UInt64 = 0
    /// Stable identity for consistent hashing (e.g. a hash of the server's name), so that a
    /// reload which removes or reorders servers does not move the clients of the others.
    /// nil = the server's position in the upstream.
    public var identity: UInt64? = nil

    public init(weight: Int, maxConns: Int, maxFails: Int, failTimeoutNanos: UInt64, backup: Bool, down: Bool) {
        self.configWeight = weight; self.weight = weight; self.maxConns = maxConns
        self.maxFails = maxFails; self.failTimeoutNanos = failTimeoutNanos
        self.backup = backup; self.configDown = down
    }

    /// Keeps the fields consistent after any change: `stopping` ends when the server goes into
    /// maintenance or down, as HAProxy's NOLB does, so it cannot come back by itself when the
    /// server does. Called by Scheduler after every update.
    public mutating func settle() {
        if configDown || effectiveAdmin == .maint || !healthy { probeStopping = false }
    }

    public var view: PeerView { PeerView(weight: weight, active: active) }
}
