import HiscoreCore

// Subscription (rank-change stream) messages. See docs/protocol.md, "Streams".

public enum SubscriptionTarget: Sendable, Equatable {
    case player(String)
    case top(UInt32)
    case around(playerID: String, before: UInt32, after: UInt32)
    case feed
}

public struct SubscribeRequest: Sendable, Equatable {
    public var boardID: String
    public var target: SubscriptionTarget
    /// 0 = server default.
    public var minIntervalMillis: UInt32
    public var rankMode: RankMode?

    public init(boardID: String, target: SubscriptionTarget, minIntervalMillis: UInt32 = 0, rankMode: RankMode? = nil) {
        self.boardID = boardID
        self.target = target
        self.minIntervalMillis = minIntervalMillis
        self.rankMode = rankMode
    }
}

public struct PlayerRankChange: Sendable, Equatable {
    public var entry: WireEntry
    public var previousRank: UInt64
    public var present: Bool

    public init(entry: WireEntry, previousRank: UInt64, present: Bool) {
        self.entry = entry
        self.previousRank = previousRank
        self.present = present
    }
}

public enum WindowChangeKind: UInt32, Sendable, Equatable {
    case entered = 1
    case left = 2
    case moved = 3
}

public struct WindowChange: Sendable, Equatable {
    public var kind: WindowChangeKind
    public var entry: WireEntry
    public var position: UInt32
    public var previousPosition: UInt32

    public init(kind: WindowChangeKind, entry: WireEntry, position: UInt32, previousPosition: UInt32) {
        self.kind = kind
        self.entry = entry
        self.position = position
        self.previousPosition = previousPosition
    }
}

public struct WindowUpdate: Sendable, Equatable {
    public var entries: [WireEntry]
    public var changes: [WindowChange]
    public var windowSize: UInt32

    public init(entries: [WireEntry], changes: [WindowChange], windowSize: UInt32) {
        self.entries = entries
        self.changes = changes
        self.windowSize = windowSize
    }
}

public struct FeedItem: Sendable, Equatable {
    public var entry: WireEntry
    public var previousRank: UInt64
    public var created: Bool
    public var removed: Bool
    public var boardVersion: UInt64

    public init(entry: WireEntry, previousRank: UInt64, created: Bool, removed: Bool, boardVersion: UInt64) {
        self.entry = entry
        self.previousRank = previousRank
        self.created = created
        self.removed = removed
        self.boardVersion = boardVersion
    }
}

public enum RankEventChange: Sendable, Equatable {
    case player(PlayerRankChange)
    case window(WindowUpdate)
    case feed([FeedItem])
}

public struct RankEvent: Sendable, Equatable {
    public var boardVersion: UInt64
    public var snapshot: Bool
    public var change: RankEventChange

    public init(boardVersion: UInt64, snapshot: Bool, change: RankEventChange) {
        self.boardVersion = boardVersion
        self.snapshot = snapshot
        self.change = change
    }
}
