import CProtobufC
import HiscoreCore
import HiscoreProtoC

// `Response` and its results <-> protobuf-c structs.

extension ResponseEnvelope {
    init(protoC response: Hiscore__V1__Response) throws(WireError) {
        self.init(
            callID: response.call_id,
            status: try response.status.map { (status) throws(WireError) in try Status(protoC: status.pointee) },
            result: try ResponseResult.decode(protoC: response))
    }

    /// Fills a `Response` struct initialized by `hiscore__v1__response__init`.
    func fill(_ response: inout Hiscore__V1__Response, arena: WireArena) {
        response.call_id = callID
        response.status = status?.protoC(in: arena)
        result?.fill(&response, arena: arena)
    }
}

extension ResponseResult {
    /// nil when no result is set, or one a newer server knows and this version does not.
    static func decode(protoC response: Hiscore__V1__Response) throws(WireError) -> ResponseResult? {
        switch response.result_case {
        case HISCORE__V1__RESPONSE__RESULT_HELLO:
            return .hello(try ServerHello(protoC: ProtoCRead.required(response.hello, field: "hello")))
        case HISCORE__V1__RESPONSE__RESULT_SUBMIT:
            return .submit(try SubmitResponse(protoC: ProtoCRead.required(response.submit, field: "submit")))
        case HISCORE__V1__RESPONSE__RESULT_SUBMIT_BATCH:
            let batch = try ProtoCRead.required(response.submit_batch, field: "submit_batch")
            return .submitBatch(
                try ProtoCRead.repeated(batch.results, count: batch.n_results, field: "results") {
                    (result) throws(WireError) in try SubmitResult(protoC: result)
                })
        case HISCORE__V1__RESPONSE__RESULT_GET_RANK:
            let body = try ProtoCRead.required(response.get_rank, field: "get_rank")
            return .getRank(
                GetRankResponse(entry: try WireEntry(protoCOrDefault: body.entry), boardSize: body.board_size))
        case HISCORE__V1__RESPONSE__RESULT_TOP:
            let body = try ProtoCRead.required(response.top, field: "top")
            return .top(
                TopResponse(
                    entries: try entries(body.entries, count: body.n_entries),
                    nextCursor: ProtoCRead.bytes(body.next_cursor),
                    boardSize: body.board_size))
        case HISCORE__V1__RESPONSE__RESULT_AROUND:
            let body = try ProtoCRead.required(response.around, field: "around")
            return .around(
                EntriesResponse(entries: try entries(body.entries, count: body.n_entries), boardSize: body.board_size))
        case HISCORE__V1__RESPONSE__RESULT_ENTRIES:
            let body = try ProtoCRead.required(response.entries, field: "entries")
            return .entries(
                EntriesResponse(
                    entries: try entries(body.entries, count: body.n_entries),
                    missingPlayerIDs: try ProtoCRead.strings(
                        body.missing_player_ids, count: body.n_missing_player_ids, field: "missing_player_ids"),
                    boardSize: body.board_size))
        case HISCORE__V1__RESPONSE__RESULT_COUNT:
            let body = try ProtoCRead.required(response.count, field: "count")
            return .count(CountResponse(count: body.count, boardSize: body.board_size))
        case HISCORE__V1__RESPONSE__RESULT_CREATE_BOARD:
            let body = try ProtoCRead.required(response.create_board, field: "create_board")
            return .createBoard(try BoardInfo(protoC: ProtoCRead.required(body.board, field: "board")))
        case HISCORE__V1__RESPONSE__RESULT_DESCRIBE_BOARD:
            let body = try ProtoCRead.required(response.describe_board, field: "describe_board")
            return .describeBoard(try BoardInfo(protoC: ProtoCRead.required(body.board, field: "board")))
        case HISCORE__V1__RESPONSE__RESULT_LIST_BOARDS:
            let body = try ProtoCRead.required(response.list_boards, field: "list_boards")
            return .listBoards(
                ListBoardsResponse(
                    boards: try ProtoCRead.repeated(body.boards, count: body.n_boards, field: "boards") {
                        (board) throws(WireError) in try BoardInfo(protoC: board)
                    },
                    more: body.more != 0))
        case HISCORE__V1__RESPONSE__RESULT_DELETE_BOARD:
            let body = try ProtoCRead.required(response.delete_board, field: "delete_board")
            return .deleteBoard(removedEntries: body.removed_entries)
        case HISCORE__V1__RESPONSE__RESULT_REMOVE_PLAYER:
            let body = try ProtoCRead.required(response.remove_player, field: "remove_player")
            return .removePlayer(try WireEntry(protoCOrDefault: body.entry))
        case HISCORE__V1__RESPONSE__RESULT_EVENT:
            return .event(try RankEvent(protoC: ProtoCRead.required(response.event, field: "event")))
        case HISCORE__V1__RESPONSE__RESULT_CANCEL:
            return .cancel(cancelled: try ProtoCRead.required(response.cancel, field: "cancel").cancelled != 0)
        case HISCORE__V1__RESPONSE__RESULT_PING:
            return .ping(payload: ProtoCRead.bytes(try ProtoCRead.required(response.ping, field: "ping").payload))
        case HISCORE__V1__RESPONSE__RESULT_AUTHENTICATE:
            let body = try ProtoCRead.required(response.authenticate, field: "authenticate")
            guard let role = Role(rawValue: UInt32(bitPattern: ProtoCRead.enumNumber(body.role.rawValue))) else {
                throw ProtoCRead.unknownEnumValue("role", body.role.rawValue)
            }
            return .authenticate(AuthenticateResponse(
                role: role, playerID: try ProtoCRead.string(body.player_id, field: "player_id"),
                boards: try ProtoCRead.strings(body.boards, count: body.n_boards, field: "boards"),
                expiresAt: body.expires_at))
        case HISCORE__V1__RESPONSE__RESULT_BACKUP:
            let body = try ProtoCRead.required(response.backup, field: "backup")
            return .backup(BackupResponse(
                destination: try ProtoCRead.string(body.destination, field: "destination"), files: body.files,
                linkedFiles: body.linked_files, copiedBytes: body.copied_bytes))
        case HISCORE__V1__RESPONSE__RESULT_RESET_BOARD:
            let body = try ProtoCRead.required(response.reset_board, field: "reset_board")
            return .resetBoard(ResetBoardResponse(archivedPeriodID: body.archived_period_id, archivedEntries: body.archived_entries))
        case HISCORE__V1__RESPONSE__RESULT_ERASE_PLAYER:
            let body = try ProtoCRead.required(response.erase_player, field: "erase_player")
            return .erasePlayer(removedEntries: body.removed_entries)
        default:
            return nil
        }
    }

    private static func entries(
        _ elements: UnsafeMutablePointer<UnsafeMutablePointer<Hiscore__V1__Entry>?>?, count: Int
    ) throws(WireError) -> [WireEntry] {
        try ProtoCRead.repeated(elements, count: count, field: "entries") {
            (entry) throws(WireError) in try WireEntry(protoC: entry)
        }
    }

    func fill(_ response: inout Hiscore__V1__Response, arena: WireArena) {
        switch self {
        case .hello(let hello):
            response.result_case = HISCORE__V1__RESPONSE__RESULT_HELLO
            response.hello = hello.protoC(in: arena)
        case .submit(let submit):
            response.result_case = HISCORE__V1__RESPONSE__RESULT_SUBMIT
            response.submit = submit.protoC(in: arena)
        case .submitBatch(let results):
            let batch = arena.message(hiscore__v1__submit_batch_response__init)
            batch.pointee.n_results = results.count
            batch.pointee.results = arena.pointerArray(results) { $0.protoC(in: arena) }
            response.result_case = HISCORE__V1__RESPONSE__RESULT_SUBMIT_BATCH
            response.submit_batch = batch
        case .getRank(let getRank):
            let body = arena.message(hiscore__v1__get_rank_response__init)
            body.pointee.entry = getRank.entry.protoC(in: arena)
            body.pointee.board_size = getRank.boardSize
            response.result_case = HISCORE__V1__RESPONSE__RESULT_GET_RANK
            response.get_rank = body
        case .packed(let packed):
            packed.fill(&response, arena: arena)
        case .rankedTop(let top):
            response.result_case = HISCORE__V1__RESPONSE__RESULT_TOP
            response.top = top.protoC(in: arena)
        case .top(let top):
            let body = arena.message(hiscore__v1__top_response__init)
            body.pointee.n_entries = top.entries.count
            body.pointee.entries = arena.pointerArray(top.entries) { $0.protoC(in: arena) }
            body.pointee.next_cursor = arena.binaryData(top.nextCursor)
            body.pointee.board_size = top.boardSize
            response.result_case = HISCORE__V1__RESPONSE__RESULT_TOP
            response.top = body
        case .around(let around):
            // AroundResponse has no missing ids: `missingPlayerIDs` is not sent.
            let body = arena.message(hiscore__v1__around_response__init)
            body.pointee.n_entries = around.entries.count
            body.pointee.entries = arena.pointerArray(around.entries) { $0.protoC(in: arena) }
            body.pointee.board_size = around.boardSize
            response.result_case = HISCORE__V1__RESPONSE__RESULT_AROUND
            response.around = body
        case .entries(let entries):
            let body = arena.message(hiscore__v1__entries_response__init)
            body.pointee.n_entries = entries.entries.count
            body.pointee.entries = arena.pointerArray(entries.entries) { $0.protoC(in: arena) }
            body.pointee.n_missing_player_ids = entries.missingPlayerIDs.count
            body.pointee.missing_player_ids = arena.cStringArray(entries.missingPlayerIDs)
            body.pointee.board_size = entries.boardSize
            response.result_case = HISCORE__V1__RESPONSE__RESULT_ENTRIES
            response.entries = body
        case .count(let count):
            let body = arena.message(hiscore__v1__count_response__init)
            body.pointee.count = count.count
            body.pointee.board_size = count.boardSize
            response.result_case = HISCORE__V1__RESPONSE__RESULT_COUNT
            response.count = body
        case .createBoard(let board):
            let body = arena.message(hiscore__v1__create_board_response__init)
            body.pointee.board = board.protoC(in: arena)
            response.result_case = HISCORE__V1__RESPONSE__RESULT_CREATE_BOARD
            response.create_board = body
        case .describeBoard(let board):
            let body = arena.message(hiscore__v1__describe_board_response__init)
            body.pointee.board = board.protoC(in: arena)
            response.result_case = HISCORE__V1__RESPONSE__RESULT_DESCRIBE_BOARD
            response.describe_board = body
        case .listBoards(let listBoards):
            let body = arena.message(hiscore__v1__list_boards_response__init)
            body.pointee.n_boards = listBoards.boards.count
            body.pointee.boards = arena.pointerArray(listBoards.boards) { $0.protoC(in: arena) }
            body.pointee.more = listBoards.more ? 1 : 0
            response.result_case = HISCORE__V1__RESPONSE__RESULT_LIST_BOARDS
            response.list_boards = body
        case .deleteBoard(let removedEntries):
            let body = arena.message(hiscore__v1__delete_board_response__init)
            body.pointee.removed_entries = removedEntries
            response.result_case = HISCORE__V1__RESPONSE__RESULT_DELETE_BOARD
            response.delete_board = body
        case .removePlayer(let entry):
            let body = arena.message(hiscore__v1__remove_player_response__init)
            body.pointee.entry = entry.protoC(in: arena)
            response.result_case = HISCORE__V1__RESPONSE__RESULT_REMOVE_PLAYER
            response.remove_player = body
        case .event(let event):
            response.result_case = HISCORE__V1__RESPONSE__RESULT_EVENT
            response.event = event.protoC(in: arena)
        case .cancel(let cancelled):
            let body = arena.message(hiscore__v1__cancel_response__init)
            body.pointee.cancelled = cancelled ? 1 : 0
            response.result_case = HISCORE__V1__RESPONSE__RESULT_CANCEL
            response.cancel = body
        case .ping(let payload):
            let body = arena.message(hiscore__v1__ping_response__init)
            body.pointee.payload = arena.binaryData(payload)
            response.result_case = HISCORE__V1__RESPONSE__RESULT_PING
            response.ping = body
        case .authenticate(let auth):
            let body = arena.message(hiscore__v1__authenticate_response__init)
            body.pointee.role = Hiscore__V1__Role(rawValue: auth.role.rawValue)
            body.pointee.player_id = arena.cString(auth.playerID)
            body.pointee.n_boards = auth.boards.count
            body.pointee.boards = arena.cStringArray(auth.boards)
            body.pointee.expires_at = auth.expiresAt
            response.result_case = HISCORE__V1__RESPONSE__RESULT_AUTHENTICATE
            response.authenticate = body
        case .backup(let backup):
            let body = arena.message(hiscore__v1__backup_response__init)
            body.pointee.destination = arena.cString(backup.destination)
            body.pointee.files = backup.files
            body.pointee.linked_files = backup.linkedFiles
            body.pointee.copied_bytes = backup.copiedBytes
            response.result_case = HISCORE__V1__RESPONSE__RESULT_BACKUP
            response.backup = body
        case .resetBoard(let reset):
            let body = arena.message(hiscore__v1__reset_board_response__init)
            body.pointee.archived_period_id = reset.archivedPeriodID
            body.pointee.archived_entries = reset.archivedEntries
            response.result_case = HISCORE__V1__RESPONSE__RESULT_RESET_BOARD
            response.reset_board = body
        case .erasePlayer(let removedEntries):
            let body = arena.message(hiscore__v1__erase_player_response__init)
            body.pointee.removed_entries = removedEntries
            response.result_case = HISCORE__V1__RESPONSE__RESULT_ERASE_PLAYER
            response.erase_player = body
        }
    }
}

extension ServerHello {
    init(protoC hello: Hiscore__V1__ServerHello) throws(WireError) {
        self.init(
            protocolVersion: hello.protocol_version,
            serverVersion: try ProtoCRead.string(hello.server_version, field: "server_version"),
            maxFrameBytes: hello.max_frame_bytes,
            maxInflightCalls: hello.max_inflight_calls,
            maxBatchSubmits: hello.max_batch_submits,
            maxPageEntries: hello.max_page_entries,
            maxPlayersPerQuery: hello.max_players_per_query,
            maxSubscriptions: hello.max_subscriptions,
            maxMetadataBytes: hello.max_metadata_bytes)
    }

    func protoC(in arena: WireArena) -> UnsafeMutablePointer<Hiscore__V1__ServerHello> {
        let hello = arena.message(hiscore__v1__server_hello__init)
        hello.pointee.protocol_version = protocolVersion
        hello.pointee.server_version = arena.cString(serverVersion)
        hello.pointee.max_frame_bytes = maxFrameBytes
        hello.pointee.max_inflight_calls = maxInflightCalls
        hello.pointee.max_batch_submits = maxBatchSubmits
        hello.pointee.max_page_entries = maxPageEntries
        hello.pointee.max_players_per_query = maxPlayersPerQuery
        hello.pointee.max_subscriptions = maxSubscriptions
        hello.pointee.max_metadata_bytes = maxMetadataBytes
        return hello
    }
}

extension SubmitResponse {
    init(protoC submit: Hiscore__V1__SubmitResponse) throws(WireError) {
        self.init(
            entry: try WireEntry(protoCOrDefault: submit.entry),
            previousRank: submit.previous_rank,
            changed: submit.changed != 0,
            created: submit.created != 0)
    }

    func protoC(in arena: WireArena) -> UnsafeMutablePointer<Hiscore__V1__SubmitResponse> {
        let submit = arena.message(hiscore__v1__submit_response__init)
        submit.pointee.entry = entry.protoC(in: arena)
        submit.pointee.previous_rank = previousRank
        submit.pointee.changed = changed ? 1 : 0
        submit.pointee.created = created ? 1 : 0
        return submit
    }
}

extension SubmitResult {
    /// An absent status means OK.
    init(protoC result: Hiscore__V1__SubmitResult) throws(WireError) {
        self.init(
            status: try result.status.map { (status) throws(WireError) in try Status(protoC: status.pointee) } ?? .ok,
            response: try result.result.map { (response) throws(WireError) in
                try SubmitResponse(protoC: response.pointee)
            })
    }

    func protoC(in arena: WireArena) -> UnsafeMutablePointer<Hiscore__V1__SubmitResult> {
        let result = arena.message(hiscore__v1__submit_result__init)
        // Always present, so every item says what happened (as every client encodes it).
        result.pointee.status = status.protoC(in: arena)
        result.pointee.result = response?.protoC(in: arena)
        return result
    }
}
