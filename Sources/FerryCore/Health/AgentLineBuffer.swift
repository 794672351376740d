/// Collects an agent's answer across reads until the first CR or LF. A reply may arrive in
/// any number of pieces; only a complete line counts, so an agent that closes or times out
/// before its newline changes nothing (HAProxy: "Ignoring incomplete line from agent").
public struct AgentLineBuffer: Equatable, Sendable {
    public enum State: Equatable, Sendable {
        case incomplete
        /// The bytes before the first CR or LF.
        case line([UInt8])
        /// No line end within `limit` bytes: not an agent worth believing.
        case tooLong
        /// A NUL byte before the line end. HAProxy scans the reply as a C string, so a NUL
        /// hides the line end and the reply is ignored as incomplete; so is it here.
        case nulByte
    }

    /// HAProxy reads agents into one buffer; a real reply is a few dozen bytes.
    public static let defaultLimit = 1024

    public let limit: Int
    public private(set) var state: State = .incomplete
    private var bytes: [UInt8] = []

    public init(limit: Int = AgentLineBuffer.defaultLimit) { self.limit = limit }

    /// Adds one read's bytes. Bytes after the line's end are ignored, as is anything appended
    /// once the state is final.
    public mutating func append<C: Collection>(_ chunk: C) -> State where C.Element == UInt8 {
        guard state == .incomplete else { return state }
        for b in chunk {
            if b == UInt8(ascii: "\r") || b == UInt8(ascii: "\n") {
                state = .line(bytes)
                bytes = []
                return state
            }
            if b == 0 {
                state = .nulByte
                bytes = []
                return state
            }
            if bytes.count == limit {
                state = .tooLong
                bytes = []
                return state
            }
            bytes.append(b)
        }
        return state
    }

    /// How many bytes are waiting for their line end.
    public var pending: Int { bytes.count }
}
