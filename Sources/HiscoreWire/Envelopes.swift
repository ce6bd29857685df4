import HiscoreCore

/// The method body of a `Request` (its `oneof method`).
public enum RequestMethod: Sendable, Equatable {
    case submit(SubmitRequest)
    case submitBatch([SubmitRequest])
    case getRank(GetRankRequest)
    case top(TopRequest)
    case around(AroundRequest)
    case entries(EntriesRequest)
    case count(CountRequest)
    case createBoard(BoardConfig)
    case describeBoard(boardID: String)
    case listBoards(ListBoardsRequest)
    case deleteBoard(boardID: String)
    case removePlayer(RemovePlayerRequest)
    case subscribe(SubscribeRequest)
    case cancel(callID: UInt64)
    case ping(payload: [UInt8])
    case authenticate(token: String)
    case backup(destination: String)
    case resetBoard(boardID: String)
    case erasePlayer(playerID: String)
}

extension RequestMethod {
    /// The method's name as in the .proto's `oneof method` ("get_rank"), for messages and metrics.
    public var name: String {
        switch self {
        case .submit: "submit"
        case .submitBatch: "submit_batch"
        case .getRank: "get_rank"
        case .top: "top"
        case .around: "around"
        case .entries: "entries"
        case .count: "count"
        case .createBoard: "create_board"
        case .describeBoard: "describe_board"
        case .listBoards: "list_boards"
        case .deleteBoard: "delete_board"
        case .removePlayer: "remove_player"
        case .subscribe: "subscribe"
        case .cancel: "cancel"
        case .ping: "ping"
        case .authenticate: "authenticate"
        case .backup: "backup"
        case .resetBoard: "reset_board"
        case .erasePlayer: "erase_player"
        }
    }
}

/// A `Request` frame.
public struct RequestEnvelope: Sendable, Equatable {
    public var callID: UInt64
    /// Milliseconds from receipt; 0 = no deadline.
    public var deadlineMillis: UInt64
    public var authToken: String
    /// nil when the frame named no method this protocol version knows (UNIMPLEMENTED).
    public var method: RequestMethod?

    public init(callID: UInt64, deadlineMillis: UInt64 = 0, authToken: String = "", method: RequestMethod?) {
        self.callID = callID
        self.deadlineMillis = deadlineMillis
        self.authToken = authToken
        self.method = method
    }
}

/// The result of a `Response` (its `oneof result`).
public enum ResponseResult: Sendable, Equatable {
    case hello(ServerHello)
    case submit(SubmitResponse)
    case submitBatch([SubmitResult])
    case getRank(GetRankResponse)
    case top(TopResponse)
    case around(EntriesResponse)
    case entries(EntriesResponse)
    case count(CountResponse)
    /// Board descriptions are rare and large (a `BoardConfig`): boxed, so that every other
    /// response, copied through the executor's phases, stays small.
    indirect case createBoard(BoardInfo)
    indirect case describeBoard(BoardInfo)
    case listBoards(ListBoardsResponse)
    case deleteBoard(removedEntries: UInt64)
    case removePlayer(WireEntry)
    case event(RankEvent)
    case cancel(cancelled: Bool)
    case ping(payload: [UInt8])
    case authenticate(AuthenticateResponse)
    case backup(BackupResponse)
    case resetBoard(ResetBoardResponse)
    case erasePlayer(removedEntries: UInt64)
    /// One of the results above, packed already (servers only; see `PackedResult`).
    case packed(PackedResult)
    /// A top still in the engine's form (servers only; see `RankedTop`); decodes as `.top`.
    case rankedTop(RankedTop)
}

/// A `Response` frame.
public struct ResponseEnvelope: Sendable, Equatable {
    public var callID: UInt64
    /// nil = OK (no status field on the wire); stream event frames carry none.
    public var status: Status?
    public var result: ResponseResult?

    public init(callID: UInt64, status: Status? = nil, result: ResponseResult?) {
        self.callID = callID
        self.status = status
        self.result = result
    }

    /// A final frame carrying only a status.
    public static func failure(callID: UInt64, _ status: Status) -> ResponseEnvelope {
        ResponseEnvelope(callID: callID, status: status, result: nil)
    }
}
