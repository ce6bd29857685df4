import HiscoreWire

/// A failed call: the server's status (code and message), or a client-side condition mapped onto
/// the same codes (UNAVAILABLE when the connection is gone, DEADLINE_EXCEEDED when the deadline
/// passed, CANCELLED when the calling task was cancelled).
public struct HiscoreError: Error, Sendable, Equatable, CustomStringConvertible {
    public var status: Status
    /// The server's own error when it ended the connection (a connection-level frame, `call_id`
    /// 0): the call itself fails UNAVAILABLE, as for any lost connection.
    public var cause: Status?

    public init(_ status: Status) {
        self.status = status
    }

    public init(_ code: StatusCode, _ message: String, cause: Status? = nil) {
        self.status = Status(code, message)
        self.cause = cause
    }

    public var code: StatusCode { status.code }
    public var message: String { status.message }
    public var description: String { "\(status)" }
}
