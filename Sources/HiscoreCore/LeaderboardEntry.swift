/// One player's standing on a board, as returned by queries (a value copy of the stored entry).
public struct LeaderboardEntry: Sendable, Equatable, CustomStringConvertible {
    public var playerID: String
    public var score: Int64
    public var subscore: Int64
    public var metadata: [UInt8]
    /// Arrival sequence of the current (score, subscore); doubles as the time it was reached
    /// (microseconds since the Unix epoch, as the server's clock assigns it).
    public var sequence: UInt64
    /// The ranking key; also an opaque paging cursor (`key.bytes`).
    public var key: RankKey

    public init(playerID: String, score: Int64, subscore: Int64, metadata: [UInt8], sequence: UInt64, key: RankKey) {
        self.playerID = playerID
        self.score = score
        self.subscore = subscore
        self.metadata = metadata
        self.sequence = sequence
        self.key = key
    }

    public var description: String {
        "\(playerID) score=\(score) subscore=\(subscore) seq=\(sequence) meta=\(metadata.count)B"
    }
}

/// What a write did.
public struct WriteOutcome: Sendable, Equatable {
    /// The entry before the write; nil when the player was created.
    public var previous: LeaderboardEntry?
    /// The entry after the write (equal to `previous` when a `best` write was rejected).
    public var current: LeaderboardEntry
    /// The ranking key changed (the player moved, or was created).
    public var keyChanged: Bool
    /// The player was new to this partition.
    public var created: Bool
    /// The write was applied (false only for a `best` write that did not improve the entry).
    public var accepted: Bool

    public init(previous: LeaderboardEntry?, current: LeaderboardEntry, keyChanged: Bool, created: Bool, accepted: Bool) {
        self.previous = previous
        self.current = current
        self.keyChanged = keyChanged
        self.created = created
        self.accepted = accepted
    }
}

/// How many entries of a partition beat a write's entries (strictly better keys, ordinal),
/// counted by the write's own tree descents (`BoardPartition.write(...countingBetter:)`).
/// A count is nil when the write did not walk that key's path: `previous` when the write created
/// the entry, both when the key did not change (a `best` that did not improve, an unchanged
/// score); ask `countBetter(than:)` then.
public struct BetterCounts: Sendable, Equatable {
    /// Entries better than the previous entry, in the partition before the write.
    public var previous: Int?
    /// Entries better than the current entry, in the partition after the write.
    public var current: Int?

    public init(previous: Int? = nil, current: Int? = nil) {
        self.previous = previous
        self.current = current
    }
}

/// Why a partition refused a write. A refused write changes nothing.
public enum WriteError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The metadata exceeds the board's `maxMetadataBytes`.
    case metadataTooLarge(bytes: Int, limit: Int)
    /// The partition holds `BoardPartition.maxEntries` players (a structural limit of the
    /// engine; the board's `maxEntries` is enforced by the server).
    case partitionFull(limit: Int)
    /// The player id exceeds `BoardPartition.maxPlayerIDBytes` (validated ids never do).
    case playerIDTooLong(bytes: Int, limit: Int)
    /// Another entry already has this (score, subscore, sequence): sequences must be unique per board.
    case duplicateKey(sequence: UInt64)
    /// The write would have added a player and the caller's admission check said no (the
    /// server's memory ceiling or a board's max_entries; see `write(...admittingNew:)`).
    case notAdmitted

    public var description: String {
        switch self {
        case .metadataTooLarge(let bytes, let limit): "metadata: \(bytes) bytes, at most \(limit) allowed"
        case .partitionFull(let limit): "partition full: at most \(limit) entries per partition"
        case .playerIDTooLong(let bytes, let limit): "player_id: \(bytes) bytes, at most \(limit) allowed"
        case .duplicateKey(let sequence): "duplicate ranking key (sequence \(sequence) already used)"
        case .notAdmitted: "new player not admitted"
        }
    }
}
