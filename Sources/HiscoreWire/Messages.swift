import HiscoreCore

// Swift values for every message of proto/hiscore/v1/hiscore.proto. Above HiscoreWire nothing
// sees a protobuf-c struct: these are what the server, the client and the tests handle.
// Field names follow the .proto (camel-cased); absent optional fields are `nil`.

/// `Entry`: one player's standing.
public struct WireEntry: Sendable, Equatable {
    public var playerID: String
    public var score: Int64
    public var subscore: Int64
    /// 1-based; 0 = not ranked.
    public var rank: UInt64
    public var metadata: [UInt8]
    /// When the player reached this (score, subscore), microseconds since the Unix epoch.
    public var reachedAtMicros: Int64

    public init(
        playerID: String, score: Int64, subscore: Int64 = 0, rank: UInt64 = 0, metadata: [UInt8] = [],
        reachedAtMicros: Int64 = 0
    ) {
        self.playerID = playerID
        self.score = score
        self.subscore = subscore
        self.rank = rank
        self.metadata = metadata
        self.reachedAtMicros = reachedAtMicros
    }
}

/// `BoardInfo`.
public struct BoardInfo: Sendable, Equatable {
    public var config: BoardConfig
    public var size: UInt64
    public var version: UInt64
    /// Archived periods, oldest first.
    public var periods: [PeriodInfo] = []
    public var currentPeriodID: UInt64 = 0
    public var currentPeriodStartedAtMicros: Int64 = 0

    public init(config: BoardConfig, size: UInt64, version: UInt64) {
        self.config = config
        self.size = size
        self.version = version
    }
}

public struct SubmitRequest: Sendable, Equatable {
    public var boardID: String
    public var playerID: String
    public var score: Int64
    public var subscore: Int64
    /// nil = keep the stored metadata.
    public var metadata: [UInt8]?
    /// The response carries no ranks (both 0): on a board split over shards only the player's
    /// shard works.
    public var skipRanks: Bool

    public init(
        boardID: String, playerID: String, score: Int64, subscore: Int64 = 0, metadata: [UInt8]? = nil,
        skipRanks: Bool = false
    ) {
        self.boardID = boardID
        self.playerID = playerID
        self.score = score
        self.subscore = subscore
        self.metadata = metadata
        self.skipRanks = skipRanks
    }
}

public struct SubmitResponse: Sendable, Equatable {
    public var entry: WireEntry
    public var previousRank: UInt64
    public var changed: Bool
    public var created: Bool

    public init(entry: WireEntry, previousRank: UInt64, changed: Bool, created: Bool) {
        self.entry = entry
        self.previousRank = previousRank
        self.changed = changed
        self.created = created
    }
}

/// `SubmitResult`: one item of a batch.
public struct SubmitResult: Sendable, Equatable {
    public var status: Status
    /// nil unless `status.code == .ok`.
    public var response: SubmitResponse?

    public init(status: Status, response: SubmitResponse?) {
        self.status = status
        self.response = response
    }
}

public struct GetRankRequest: Sendable, Equatable {
    public var boardID: String
    public var playerID: String
    /// nil = the board's default.
    public var rankMode: RankMode?

    /// An archived period (`BoardInfo.periods`); 0 = the live board.
    public var periodID: UInt64 = 0

    public init(boardID: String, playerID: String, rankMode: RankMode? = nil) {
        self.boardID = boardID
        self.playerID = playerID
        self.rankMode = rankMode
    }
}

public struct GetRankResponse: Sendable, Equatable {
    public var entry: WireEntry
    public var boardSize: UInt64

    public init(entry: WireEntry, boardSize: UInt64) {
        self.entry = entry
        self.boardSize = boardSize
    }
}

/// Where a `Top` page starts.
public enum PageStart: Sendable, Equatable {
    case offset(UInt64)
    case cursor([UInt8])
}

public struct TopRequest: Sendable, Equatable {
    public var boardID: String
    /// 0 = server default (10).
    public var limit: UInt32
    public var start: PageStart
    public var rankMode: RankMode?

    /// An archived period (`BoardInfo.periods`); 0 = the live board.
    public var periodID: UInt64 = 0

    public init(boardID: String, limit: UInt32 = 10, start: PageStart = .offset(0), rankMode: RankMode? = nil) {
        self.boardID = boardID
        self.limit = limit
        self.start = start
        self.rankMode = rankMode
    }
}

public struct TopResponse: Sendable, Equatable {
    public var entries: [WireEntry]
    /// Empty when the board ended.
    public var nextCursor: [UInt8]
    public var boardSize: UInt64

    public init(entries: [WireEntry], nextCursor: [UInt8], boardSize: UInt64) {
        self.entries = entries
        self.nextCursor = nextCursor
        self.boardSize = boardSize
    }
}

public struct AroundRequest: Sendable, Equatable {
    public var boardID: String
    public var playerID: String
    public var before: UInt32
    public var after: UInt32
    public var rankMode: RankMode?

    /// An archived period (`BoardInfo.periods`); 0 = the live board.
    public var periodID: UInt64 = 0

    public init(boardID: String, playerID: String, before: UInt32, after: UInt32, rankMode: RankMode? = nil) {
        self.boardID = boardID
        self.playerID = playerID
        self.before = before
        self.after = after
        self.rankMode = rankMode
    }
}

/// `AroundResponse` and `EntriesResponse` share this shape (missing ids only for entries).
public struct EntriesResponse: Sendable, Equatable {
    public var entries: [WireEntry]
    public var missingPlayerIDs: [String]
    public var boardSize: UInt64

    public init(entries: [WireEntry], missingPlayerIDs: [String] = [], boardSize: UInt64) {
        self.entries = entries
        self.missingPlayerIDs = missingPlayerIDs
        self.boardSize = boardSize
    }
}

public struct EntriesRequest: Sendable, Equatable {
    public var boardID: String
    public var playerIDs: [String]
    public var rankMode: RankMode?

    /// An archived period (`BoardInfo.periods`); 0 = the live board.
    public var periodID: UInt64 = 0

    public init(boardID: String, playerIDs: [String], rankMode: RankMode? = nil) {
        self.boardID = boardID
        self.playerIDs = playerIDs
        self.rankMode = rankMode
    }
}

public struct CountRequest: Sendable, Equatable {
    public var boardID: String
    /// Inclusive bounds; nil = unbounded.
    public var minScore: Int64?
    public var maxScore: Int64?

    /// An archived period (`BoardInfo.periods`); 0 = the live board.
    public var periodID: UInt64 = 0

    public init(boardID: String, minScore: Int64? = nil, maxScore: Int64? = nil) {
        self.boardID = boardID
        self.minScore = minScore
        self.maxScore = maxScore
    }
}

public struct CountResponse: Sendable, Equatable {
    public var count: UInt64
    public var boardSize: UInt64

    public init(count: UInt64, boardSize: UInt64) {
        self.count = count
        self.boardSize = boardSize
    }
}

public struct ListBoardsRequest: Sendable, Equatable {
    public var afterBoardID: String
    /// 0 = server default (100).
    public var limit: UInt32

    public init(afterBoardID: String = "", limit: UInt32 = 0) {
        self.afterBoardID = afterBoardID
        self.limit = limit
    }
}

public struct ListBoardsResponse: Sendable, Equatable {
    public var boards: [BoardInfo]
    public var more: Bool

    public init(boards: [BoardInfo], more: Bool) {
        self.boards = boards
        self.more = more
    }
}

public struct RemovePlayerRequest: Sendable, Equatable {
    public var boardID: String
    public var playerID: String

    public init(boardID: String, playerID: String) {
        self.boardID = boardID
        self.playerID = playerID
    }
}

/// `ServerHello`: the server's half of the connection preface.
public struct ServerHello: Sendable, Equatable {
    public var protocolVersion: UInt32
    public var serverVersion: String
    public var maxFrameBytes: UInt32
    public var maxInflightCalls: UInt32
    public var maxBatchSubmits: UInt32
    public var maxPageEntries: UInt32
    public var maxPlayersPerQuery: UInt32
    public var maxSubscriptions: UInt32
    public var maxMetadataBytes: UInt32

    public init(
        protocolVersion: UInt32, serverVersion: String, maxFrameBytes: UInt32, maxInflightCalls: UInt32,
        maxBatchSubmits: UInt32, maxPageEntries: UInt32, maxPlayersPerQuery: UInt32, maxSubscriptions: UInt32,
        maxMetadataBytes: UInt32
    ) {
        self.protocolVersion = protocolVersion
        self.serverVersion = serverVersion
        self.maxFrameBytes = maxFrameBytes
        self.maxInflightCalls = maxInflightCalls
        self.maxBatchSubmits = maxBatchSubmits
        self.maxPageEntries = maxPageEntries
        self.maxPlayersPerQuery = maxPlayersPerQuery
        self.maxSubscriptions = maxSubscriptions
        self.maxMetadataBytes = maxMetadataBytes
    }
}

/// `Role`: what an authenticated connection or call may do.
public enum Role: UInt32, Sendable, Equatable, CustomStringConvertible {
    case reader = 1
    case writer = 2
    case admin = 3
    case player = 4

    public var description: String {
        switch self {
        case .reader: "reader"
        case .writer: "writer"
        case .admin: "admin"
        case .player: "player"
        }
    }
}

/// `AuthenticateResponse`.
public struct AuthenticateResponse: Sendable, Equatable {
    public var role: Role
    public var playerID: String
    public var boards: [String]
    /// Seconds since the Unix epoch; 0 = none.
    public var expiresAt: Int64

    public init(role: Role, playerID: String = "", boards: [String] = [], expiresAt: Int64 = 0) {
        self.role = role
        self.playerID = playerID
        self.boards = boards
        self.expiresAt = expiresAt
    }
}

/// `BackupResponse`.
public struct BackupResponse: Sendable, Equatable {
    public var destination: String
    public var files: UInt64
    public var linkedFiles: UInt64
    public var copiedBytes: UInt64

    public init(destination: String, files: UInt64, linkedFiles: UInt64, copiedBytes: UInt64) {
        self.destination = destination
        self.files = files
        self.linkedFiles = linkedFiles
        self.copiedBytes = copiedBytes
    }
}

/// `PeriodInfo`: an archived season.
public struct PeriodInfo: Sendable, Equatable {
    public var periodID: UInt64
    public var startedAtMicros: Int64
    public var endedAtMicros: Int64
    public var size: UInt64

    public init(periodID: UInt64, startedAtMicros: Int64, endedAtMicros: Int64, size: UInt64) {
        self.periodID = periodID
        self.startedAtMicros = startedAtMicros
        self.endedAtMicros = endedAtMicros
        self.size = size
    }
}

/// `ResetBoardResponse`.
public struct ResetBoardResponse: Sendable, Equatable {
    public var archivedPeriodID: UInt64
    public var archivedEntries: UInt64

    public init(archivedPeriodID: UInt64, archivedEntries: UInt64) {
        self.archivedPeriodID = archivedPeriodID
        self.archivedEntries = archivedEntries
    }
}
