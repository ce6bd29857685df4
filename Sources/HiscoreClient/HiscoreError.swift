import HiscoreWire

/// A failed call: the server's status (code and message), or a client-side condition mapped onto
/// the same codes (UNAVAILABLE when the connection is gone, DEADLINE_EXCEEDED when the deadline
/// passed, CANCELLED when the calling task was cancelled).
public struct HiscoreError: Error, Sendable, Equatable, CustomStringConvertible {
    public var status: Status

    public init(_ status: Status) {
        self.status = status
    }

    public init(_ code: StatusCode, _ message: String) {
        self.status = Status(code, message)
    }

    public var code: StatusCode { status.code }
    public var message: String { status.message }
    public var description: String { "\(status)" }
}
