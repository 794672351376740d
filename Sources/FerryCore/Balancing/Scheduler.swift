// The per-upstream object the relay asks "which server for this attempt?" and tells what
// happened. It owns the servers' runtime state and the balancing method, and is the only
// caller of Eligibility, so every method gets the same answer to "may this server take a
// new session?".
//
// Backups, as nginx: primaries are asked first, through the method; only when no primary can
// take this attempt (each one unavailable or already tried by this session) are the backups
// asked, through their own instance of the same method. nginx switches a session to the
// backup list for good; ferry asks the primaries again on every attempt, so a primary that
// frees a max_conns slot in the meantime is preferred. The difference is one attempt.
//
// Threading: a Scheduler belongs to one event loop; all calls come from that loop.
// Cost: `select` is O(servers) at worst, reads no clock (`now` is the caller's monotonic
// nanoseconds), and allocates only when it first hands the method a weight change. Membership and backup-flag changes rebuild the method;
// weight and identity changes reach it through peersChanged at the next selection (once for
// all changes since, see PeerGroup.stale).

public struct Scheduler {
    public let method: BalancingMethodConfig
    public private(set) var peers: [PeerState]

    private var primary: PeerGroup
    private var backup: PeerGroup
    /// Tombstones left by `remove`.
    private var removedPeers: Set<Int> = []
    /// peers[i] is member `position[i]` of the group its `backup` flag names.
    private var position: [Int]
    private var seed: UInt64

    public init(method: BalancingMethodConfig, peers: [PeerState], seed: UInt64) {
        self.method = method
        self.peers = peers
        self.seed = seed
        (primary, backup, position) = Scheduler.groups(method: method, peers: peers, seed: seed)
    }

    /// A scheduler for a reloaded upstream. Where the reload left what the method is built
    /// from as it was (the same method, and server by server the same identity, configured
    /// weight and backup flag), the method goes on from `previous`'s state instead of being
    /// built afresh: a consistent-hash ring for 5 servers at weight 100 took 38 ms to build,
    /// 164 ms at the 1.6M-point cap, all of it a stall of the event loop; and round robin
    /// keeps its rotation and lowered shares.
    /// `random` always starts afresh, with the reload's new seed (see Entropy).
    /// With no `previous` (a start, a new upstream) the method is built afresh.
    public init(method: BalancingMethodConfig, peers: [PeerState], seed: UInt64, continuing previous: Scheduler?) {
        guard let previous, Scheduler.sameMethodInput(previous, method: method, peers: peers) else {
            self.init(method: method, peers: peers, seed: seed)
            return
        }
        self = previous
        self.peers = peers
        self.seed = seed
        // The views take the new servers' weights and session counts; the method hears of any
        // weight that differs (one a reload did not carry over) at the next selection.
        for i in peers.indices { refreshView(i, was: previous.peers[i]) }
    }

    /// Whether `previous`'s method state fits `peers` under `method` (see the init above).
    static func sameMethodInput(_ previous: Scheduler, method: BalancingMethodConfig, peers: [PeerState]) -> Bool {
        if case .random = method { return false }
        guard previous.method == method, previous.peers.count == peers.count, previous.removedPeers.isEmpty else { return false }
        return peers.indices.allSatisfy { i in
            let a = previous.peers[i], b = peers[i]
            return Scheduler.view(a, index: i).identity == Scheduler.view(b, index: i).identity
                && a.backup == b.backup && a.configWeight == b.configWeight
        }
    }

    /// The server for one attempt of one session, or nil when no server may take it.
    /// Marks nginx's fail_timeout trial on the chosen server (see Eligibility).
    public mutating func select(client: ClientKey, now: UInt64, tried: TriedSet) -> Int? {
        guard let i = Scheduler.pick(&primary, peers, client, now, tried)
                ?? Scheduler.pick(&backup, peers, client, now, tried) else { return nil }
        Eligibility.recordSelected(&peers[i], now: now)
        return i
    }

    /// Why `peer` may or may not take a new session now (for the admin socket and logs).
    public func verdict(_ peer: Int, now: UInt64) -> Verdict {
        Eligibility.verdict(peers[peer], now: now)
    }

    /// A connect to `peer` has started: it counts against max_conns and least_conn from now.
    public mutating func sessionOpened(_ peer: Int) {
        peers[peer].active += 1
        syncActive(peer)
    }

    /// A session (or a failed attempt) on `peer` is over. Every sessionOpened gets exactly one.
    public mutating func sessionClosed(_ peer: Int) {
        precondition(peers[peer].active > 0, "sessionClosed without sessionOpened")
        peers[peer].active -= 1
        syncActive(peer)
    }

    /// The connect to `peer` failed (refused, reset, timed out): passive failure accounting.
    /// Does not change `active`; the relay still calls sessionClosed for the attempt.
    /// An upstream of one server and no backup counts nothing (nginx's `single` peers): taking
    /// its only server out would turn every client away for fail_timeout after one failed
    /// connect, even once the server is back (a restart, a full backlog).
    /// Servers deleted over the admin socket stay in `peers` as tombstones; they do not count.
    /// The method hears of it too, so round robin can lower the server's share for a while
    /// (nginx's effective weight, see RoundRobin).
    public mutating func connectFailed(_ peer: Int, now: UInt64) {
        guard peers.count - removedCount > 1, peers[peer].maxFails > 0 else { return }
        Eligibility.recordFailure(&peers[peer], now: now)
        let penalty = peers[peer].weight / peers[peer].maxFails
        if peers[peer].backup {
            backup.connectFailed(position[peer], penalty: penalty)
        } else {
            primary.connectFailed(position[peer], penalty: penalty)
        }
    }

    /// The connect to `peer` succeeded; clears the failure count after a trial (nginx).
    public mutating func connectSucceeded(_ peer: Int, now: UInt64) {
        Eligibility.recordSuccess(&peers[peer])
    }

    /// Runtime weight change (admin, agent). Weight 0 takes no new sessions.
    public mutating func setWeight(_ peer: Int, _ weight: Int) {
        precondition(weight >= 0, "weight must be non-negative")
        update(peer) { $0.weight = weight }
    }

    /// Any other change to one server's state (health, admin state, backup flag, identity).
    /// The method is told only when something it sees changed.
    public mutating func update(_ peer: Int, _ change: (inout PeerState) -> Void) {
        let before = peers[peer]
        change(&peers[peer])
        peers[peer].settle()
        if before.backup != peers[peer].backup {
            (primary, backup, position) = Scheduler.groups(method: method, peers: peers, seed: seed)
        } else {
            refreshView(peer, was: before)
        }
    }

    /// Changes to many servers at once (a reload carrying runtime state over): `change` sees
    /// every server; the backup groups are rebuilt at most once.
    public mutating func updateAll(_ change: (Int, inout PeerState) -> Void) {
        let before = peers
        for i in peers.indices { change(i, &peers[i]); peers[i].settle() }
        if peers.indices.contains(where: { before[$0].backup != peers[$0].backup }) {
            (primary, backup, position) = Scheduler.groups(method: method, peers: peers, seed: seed)
        } else {
            for i in peers.indices { refreshView(i, was: before[i]) }
        }
    }

    /// Appends a server (runtime `add server`); returns its index. Rebuilds the method on
    /// this cold path, so a hash ring or rotation position may restart.
    public mutating func add(_ peer: PeerState) -> Int {
        peers.append(peer)
        (primary, backup, position) = Scheduler.groups(method: method, peers: peers, seed: seed)
        return peers.count - 1
    }

    /// Takes a deleted server (admin `del server`) out for good. Its slot stays, so indices
    /// held by sessions and the admin socket's `#ID`s keep their meaning.
    public mutating func remove(_ peer: Int) {
        guard removedPeers.insert(peer).inserted else { return }
        update(peer) { $0.configDown = true }
    }

    private var removedCount: Int { removedPeers.count }

    // MARK: - private

    /// Brings the method's view of `peer` up to date after a change that kept its group; a
    /// weight or identity change marks the group for the method to hear of (PeerGroup.stale).
    private mutating func refreshView(_ peer: Int, was before: PeerState) {
        let after = peers[peer]
        let weightsChanged = before.weight != after.weight || before.identity != after.identity
        guard weightsChanged || before.active != after.active else { return }
        let view = Scheduler.view(after, index: peer)
        if after.backup {
            backup.set(position[peer], view, notify: weightsChanged)
        } else {
            primary.set(position[peer], view, notify: weightsChanged)
        }
    }

    private mutating func syncActive(_ peer: Int) {
        let active = peers[peer].active
        if peers[peer].backup {
            backup.views[position[peer]].active = active
        } else {
            primary.views[position[peer]].active = active
        }
    }

    /// `peers` is passed by value so the closure reads a stable array while the group's
    /// balancer mutates; the copy is a retain, not an allocation.
    private static func pick(_ group: inout PeerGroup, _ peers: [PeerState], _ client: ClientKey,
                             _ now: UInt64, _ tried: TriedSet) -> Int? {
        let members = group.members
        guard !members.isEmpty else { return nil }
        if group.stale { group.notify() }
        let views = group.views
        let local = group.balancer.select(peers: views, client: client) { m in
            let i = members[m]
            return Eligibility.mayTry(peers[i], index: i, now: now, tried: tried)
        }
        return local.map { members[$0] }
    }

    static func view(_ p: PeerState, index: Int) -> PeerView {
        PeerView(weight: p.weight, active: p.active, identity: p.identity ?? UInt64(index), configWeight: p.configWeight)
    }

    private static func groups(method: BalancingMethodConfig, peers: [PeerState], seed: UInt64)
        -> (PeerGroup, PeerGroup, [Int]) {
        var position = Array(repeating: 0, count: peers.count)
        var primaryMembers: [Int] = []
        var backupMembers: [Int] = []
        for (i, p) in peers.enumerated() {
            if p.backup {
                position[i] = backupMembers.count
                backupMembers.append(i)
            } else {
                position[i] = primaryMembers.count
                primaryMembers.append(i)
            }
        }
        // The backup group gets a different seed so `random` does not mirror the primaries.
        return (PeerGroup(method: method, members: primaryMembers, peers: peers, seed: seed),
                PeerGroup(method: method, members: backupMembers, peers: peers, seed: HashMix.fmix(seed ^ 0xBAC0)),
                position)
    }
}

/// One list of servers (the primaries, or the backups) and the method instance that serves it.
struct PeerGroup {
    /// Index into Scheduler.peers of each member, in configuration order.
    let members: [Int]
    var views: [PeerView]
    var balancer: any Balancer

    init(method: BalancingMethodConfig, members: [Int], peers: [PeerState], seed: UInt64) {
        self.members = members
        views = members.map { Scheduler.view(peers[$0], index: $0) }
        balancer = PeerGroup.make(method, views, seed)
    }

    /// The method has not yet heard of a weight or identity change. It hears at the next
    /// selection, once for every change since: agents on hundreds of servers each reporting a
    /// new percentage every few seconds would otherwise re-size a consistent-hash ring once
    /// per reply (milliseconds each), while CCcam clients, which stay for hours, ask for a
    /// server a few times a minute.
    private(set) var stale = false

    mutating func set(_ member: Int, _ view: PeerView, notify: Bool) {
        views[member] = view
        if notify { stale = true }
    }

    /// Passes a failed connect to the method. The views are current even while `stale`; a
    /// pending weight notice can wait for the next selection as usual.
    mutating func connectFailed(_ member: Int, penalty: Int) {
        balancer.connectFailed(member, penalty: penalty, peers: views)
    }

    /// Tells the method the views changed (weights or identities).
    mutating func notify() {
        balancer.peersChanged(views)
        stale = false
    }

    static func make(_ method: BalancingMethodConfig, _ views: [PeerView], _ seed: UInt64) -> any Balancer {
        switch method {
        case .roundRobin: return RoundRobin(peers: views, seed: seed)
        case .leastConn: return LeastConn(peers: views, seed: seed)
        case .hash(consistent: false): return SourceHash(peers: views, seed: seed)
        case .ipHash: return SourceHash(peers: views, seed: seed, key: .ipv4Network24)
        case .hash(consistent: true): return ConsistentHash(peers: views, seed: seed)
        case .random(two: let two, leastConn: _): return RandomTwo(peers: views, seed: seed, two: two)
        }
    }
}
