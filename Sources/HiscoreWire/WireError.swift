/// Why a protobuf payload could not be turned into Swift values.
///
/// The server answers with `status` (INVALID_ARGUMENT, or RESOURCE_EXHAUSTED for a list over its
/// limit); the messages name the offending field the way the .proto does.
public enum WireError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The bytes are not a protobuf message of the expected type (truncated, bad wire types, ...).
    case malformed(String)
    /// The message parsed but a field holds a value this protocol version does not accept
    /// ("score_order: unknown value 7", "player_id: invalid UTF-8").
    case invalidField(String)
    /// A repeated field holds more elements than the receiver accepts (`RequestListLimits`);
    /// found before any element is converted.
    case tooManyElements(String)

    public var message: String {
        switch self {
        case .malformed(let message), .invalidField(let message), .tooManyElements(let message): message
        }
    }

    public var description: String {
        switch self {
        case .malformed(let message): "malformed message: \(message)"
        case .invalidField(let message): "invalid field: \(message)"
        case .tooManyElements(let message): message
        }
    }

    /// The status the server answers with: RESOURCE_EXHAUSTED for a list over its limit (as the
    /// server answers a list it counts after decoding), INVALID_ARGUMENT otherwise.
    public var status: Status {
        switch self {
        case .tooManyElements: Status(.resourceExhausted, description)
        case .malformed, .invalidField: Status(.invalidArgument, description)
        }
    }
}

/// A request frame that could not be decoded, with its call id when that could still be read,
/// so the server can answer on the right call (call id 0 otherwise).
public struct RejectedRequest: Error, Equatable, Sendable {
    /// nil when not even the envelope's `call_id` could be read.
    public var callID: UInt64?
    public var reason: WireError

    public init(callID: UInt64?, reason: WireError) {
        self.callID = callID
        self.reason = reason
    }

    /// The status to answer with on call `callID ?? 0`.
    public var status: Status { reason.status }
}
