/// The TCP probe's verdict on one server after rise/fall: `fall` consecutive failed probes
/// take an up server down, `rise` consecutive successes bring a down server back (nginx's
/// `fails`/`passes`, HAProxy's `fall`/`rise`). A result that agrees with the current status
/// resets the count against it.
///
/// Start: up, one failure away from down. With no evidence yet, starting down would refuse
/// every client for `rise` intervals after each restart of ferry; starting fully up would
/// send clients to a dead server for `fall` intervals. HAProxy makes the same choice ("up,
/// but will fall down at first failure"). The first success makes the server fully up, so
/// from then on it takes `fall` failures.
public struct HealthState: Equatable, Sendable {
    public enum Status: String, Equatable, Sendable {
        case up, down
    }

    public let rise: Int
    public let fall: Int
    public private(set) var status: Status = .up
    /// Consecutive results that disagree with `status`.
    public private(set) var against: Int

    public init(rise: Int, fall: Int) {
        precondition(rise >= 1 && fall >= 1, "rise and fall are at least 1")
        self.rise = rise
        self.fall = fall
        against = fall - 1
    }

    /// Starts as down (a verdict carried over a reload): `rise` successes bring it up.
    public mutating func resumeDown() {
        status = .down
        against = 0
    }

    /// Takes a verdict set from outside (`set server ... health up|down`) as HAProxy does: up
    /// means fully up (`fall` failures to go down), down means down with no pass counted yet.
    public mutating func force(up: Bool) {
        status = up ? .up : .down
        against = 0
    }

    /// Records one probe result; returns true when it changed `status`.
    @discardableResult
    public mutating func record(passed: Bool) -> Bool {
        switch (status, passed) {
        case (.up, true), (.down, false):
            against = 0
            return false
        case (.up, false):
            against += 1
            if against >= fall { status = .down; against = 0; return true }
            return false
        case (.down, true):
            against += 1
            if against >= rise { status = .up; against = 0; return true }
            return false
        }
    }

    /// "3/3" style progress toward the next change, for logs.
    public var progress: String {
        switch status {
        case .up: return "\(against)/\(fall) failed"
        case .down: return "\(against)/\(rise) passed"
        }
    }
}
