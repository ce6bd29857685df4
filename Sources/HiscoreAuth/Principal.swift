import HiscoreWire

/// Who is calling: decided once per connection (an `authenticate` call) or per call
/// (`auth_token`), then checked against every method by `AccessPolicy`.
public enum Principal: Sendable, Equatable {
    /// No keys are configured (protected mode: loopback only): everything is allowed.
    case open
    /// An API key with its role and the name it was given in the keys file (never the key).
    case key(role: Role, name: String)
    /// A game client with a player token.
    case player(PlayerClaims)

    public var role: Role {
        switch self {
        case .open: .admin
        case .key(let role, _): role
        case .player: .player
        }
    }
}

/// What a player token grants.
public struct PlayerClaims: Sendable, Equatable {
    public var playerID: String
    /// Boards the token may read; nil = any board ("*").
    public var boards: Set<String>?
    /// Seconds since the Unix epoch.
    public var expiresAt: Int64

    public init(playerID: String, boards: Set<String>?, expiresAt: Int64) {
        self.playerID = playerID
        self.boards = boards
        self.expiresAt = expiresAt
    }

    public func mayRead(_ board: String) -> Bool { boards?.contains(board) ?? true }

    /// Whether the token has expired at `now` (Unix seconds), allowing `leewaySeconds` of clock
    /// skew. An expiry so large that adding the leeway overflows never expires: "exp":
    /// Int64.max is a common way to mint a token that does not expire, and must not trap.
    public func isExpired(at now: Int64, leewaySeconds: Int64) -> Bool {
        lastValidSecond(leewaySeconds: leewaySeconds).map { $0 < now } ?? false
    }

    /// The last second (Unix) the token is valid, leeway included; nil when that overflows
    /// (the token never expires).
    public func lastValidSecond(leewaySeconds: Int64) -> Int64? {
        let (lastValid, overflow) = expiresAt.addingReportingOverflow(leewaySeconds)
        return overflow ? nil : lastValid
    }
}
