import CProtobufC
import HiscoreCore
import HiscoreProtoC

// `Request` and its method bodies <-> protobuf-c structs.

extension RequestEnvelope {
    init(protoC request: Hiscore__V1__Request, limits: RequestListLimits) throws(WireError) {
        self.init(
            callID: request.call_id,
            deadlineMillis: request.deadline_ms,
            authToken: try ProtoCRead.string(request.auth_token, field: "auth_token"),
            method: try RequestMethod.decode(protoC: request, limits: limits))
    }

    /// Fills a `Request` struct initialized by `hiscore__v1__request__init`.
    func fill(_ request: inout Hiscore__V1__Request, arena: WireArena) {
        request.call_id = callID
        request.deadline_ms = deadlineMillis
        request.auth_token = arena.cString(authToken)
        method?.fill(&request, arena: arena)
    }
}

extension RequestMethod {
    /// nil when no method is set, or one a newer client knows and this version does not (it
    /// then arrives as an unknown field): the server answers UNIMPLEMENTED.
    static func decode(protoC request: Hiscore__V1__Request, limits: RequestListLimits) throws(WireError)
        -> RequestMethod?
    {
        switch request.method_case {
        case HISCORE__V1__REQUEST__METHOD_SUBMIT:
            return .submit(try SubmitRequest(protoC: ProtoCRead.required(request.submit, field: "submit")))
        case HISCORE__V1__REQUEST__METHOD_SUBMIT_BATCH:
            let batch = try ProtoCRead.required(request.submit_batch, field: "submit_batch")
            try limits.check(
                batch.n_submits, limit: limits.maxBatchSubmits, what: "submits in a batch", limitName: "max_batch_submits")
            return .submitBatch(
                try ProtoCRead.repeated(batch.submits, count: batch.n_submits, field: "submits") {
                    (submit) throws(WireError) in try SubmitRequest(protoC: submit)
                })
        case HISCORE__V1__REQUEST__METHOD_GET_RANK:
            let body = try ProtoCRead.required(request.get_rank, field: "get_rank")
            return .getRank(
                GetRankRequest(
                    boardID: try ProtoCRead.string(body.board_id, field: "board_id"),
                    playerID: try ProtoCRead.string(body.player_id, field: "player_id"),
                    rankMode: try RankMode.requested(protoC: body.rank_mode)).withPeriod(body.period_id))
        case HISCORE__V1__REQUEST__METHOD_TOP:
            return .top(try TopRequest(protoC: ProtoCRead.required(request.top, field: "top")))
        case HISCORE__V1__REQUEST__METHOD_AROUND:
            let body = try ProtoCRead.required(request.around, field: "around")
            return .around(
                AroundRequest(
                    boardID: try ProtoCRead.string(body.board_id, field: "board_id"),
                    playerID: try ProtoCRead.string(body.player_id, field: "player_id"),
                    before: body.before,
                    after: body.after,
                    rankMode: try RankMode.requested(protoC: body.rank_mode)).withPeriod(body.period_id))
        case HISCORE__V1__REQUEST__METHOD_ENTRIES:
            let body = try ProtoCRead.required(request.entries, field: "entries")
            try limits.check(
                body.n_player_ids, limit: limits.maxPlayerIDs, what: "player ids", limitName: "max_players_per_query")
            return .entries(
                EntriesRequest(
                    boardID: try ProtoCRead.string(body.board_id, field: "board_id"),
                    playerIDs: try ProtoCRead.strings(body.player_ids, count: body.n_player_ids, field: "player_ids"),
                    rankMode: try RankMode.requested(protoC: body.rank_mode)).withPeriod(body.period_id))
        case HISCORE__V1__REQUEST__METHOD_COUNT:
            let body = try ProtoCRead.required(request.count, field: "count")
            return .count(
                CountRequest(
                    boardID: try ProtoCRead.string(body.board_id, field: "board_id"),
                    minScore: body.min_case == HISCORE__V1__COUNT_REQUEST__MIN_MIN_SCORE ? body.min_score : nil,
                    maxScore: body.max_case == HISCORE__V1__COUNT_REQUEST__MAX_MAX_SCORE ? body.max_score : nil
                ).withPeriod(body.period_id))
        case HISCORE__V1__REQUEST__METHOD_CREATE_BOARD:
            let body = try ProtoCRead.required(request.create_board, field: "create_board")
            return .createBoard(try BoardConfig(protoC: ProtoCRead.required(body.config, field: "config")))
        case HISCORE__V1__REQUEST__METHOD_DESCRIBE_BOARD:
            let body = try ProtoCRead.required(request.describe_board, field: "describe_board")
            return .describeBoard(boardID: try ProtoCRead.string(body.board_id, field: "board_id"))
        case HISCORE__V1__REQUEST__METHOD_LIST_BOARDS:
            let body = try ProtoCRead.required(request.list_boards, field: "list_boards")
            return .listBoards(
                ListBoardsRequest(
                    afterBoardID: try ProtoCRead.string(body.after_board_id, field: "after_board_id"),
                    limit: body.limit))
        case HISCORE__V1__REQUEST__METHOD_DELETE_BOARD:
            let body = try ProtoCRead.required(request.delete_board, field: "delete_board")
            return .deleteBoard(boardID: try ProtoCRead.string(body.board_id, field: "board_id"))
        case HISCORE__V1__REQUEST__METHOD_REMOVE_PLAYER:
            let body = try ProtoCRead.required(request.remove_player, field: "remove_player")
            return .removePlayer(
                RemovePlayerRequest(
                    boardID: try ProtoCRead.string(body.board_id, field: "board_id"),
                    playerID: try ProtoCRead.string(body.player_id, field: "player_id")))
        case HISCORE__V1__REQUEST__METHOD_SUBSCRIBE:
            return .subscribe(
                try SubscribeRequest(protoC: ProtoCRead.required(request.subscribe, field: "subscribe")))
        case HISCORE__V1__REQUEST__METHOD_CANCEL:
            return .cancel(callID: try ProtoCRead.required(request.cancel, field: "cancel").call_id)
        case HISCORE__V1__REQUEST__METHOD_PING:
            return .ping(payload: ProtoCRead.bytes(try ProtoCRead.required(request.ping, field: "ping").payload))
        case HISCORE__V1__REQUEST__METHOD_AUTHENTICATE:
            let body = try ProtoCRead.required(request.authenticate, field: "authenticate")
            return .authenticate(token: try ProtoCRead.string(body.token, field: "token"))
        case HISCORE__V1__REQUEST__METHOD_BACKUP:
            let body = try ProtoCRead.required(request.backup, field: "backup")
            return .backup(destination: try ProtoCRead.string(body.destination, field: "destination"))
        case HISCORE__V1__REQUEST__METHOD_RESET_BOARD:
            let body = try ProtoCRead.required(request.reset_board, field: "reset_board")
            return .resetBoard(boardID: try ProtoCRead.string(body.board_id, field: "board_id"))
        case HISCORE__V1__REQUEST__METHOD_ERASE_PLAYER:
            let body = try ProtoCRead.required(request.erase_player, field: "erase_player")
            return .erasePlayer(playerID: try ProtoCRead.string(body.player_id, field: "player_id"))
        default:
            return nil
        }
    }

    func fill(_ request: inout Hiscore__V1__Request, arena: WireArena) {
        switch self {
        case .submit(let submit):
            request.method_case = HISCORE__V1__REQUEST__METHOD_SUBMIT
            request.submit = submit.protoC(in: arena)
        case .submitBatch(let submits):
            let batch = arena.message(hiscore__v1__submit_batch_request__init)
            batch.pointee.n_submits = submits.count
            batch.pointee.submits = arena.pointerArray(submits) { $0.protoC(in: arena) }
            request.method_case = HISCORE__V1__REQUEST__METHOD_SUBMIT_BATCH
            request.submit_batch = batch
        case .getRank(let getRank):
            let body = arena.message(hiscore__v1__get_rank_request__init)
            body.pointee.board_id = arena.cString(getRank.boardID)
            body.pointee.player_id = arena.cString(getRank.playerID)
            body.pointee.rank_mode = getRank.rankMode.protoC
            body.pointee.period_id = getRank.periodID
            request.method_case = HISCORE__V1__REQUEST__METHOD_GET_RANK
            request.get_rank = body
        case .top(let top):
            request.method_case = HISCORE__V1__REQUEST__METHOD_TOP
            request.top = top.protoC(in: arena)
        case .around(let around):
            let body = arena.message(hiscore__v1__around_request__init)
            body.pointee.board_id = arena.cString(around.boardID)
            body.pointee.player_id = arena.cString(around.playerID)
            body.pointee.before = around.before
            body.pointee.after = around.after
            body.pointee.rank_mode = around.rankMode.protoC
            body.pointee.period_id = around.periodID
            request.method_case = HISCORE__V1__REQUEST__METHOD_AROUND
            request.around = body
        case .entries(let entries):
            let body = arena.message(hiscore__v1__entries_request__init)
            body.pointee.board_id = arena.cString(entries.boardID)
            body.pointee.n_player_ids = entries.playerIDs.count
            body.pointee.player_ids = arena.cStringArray(entries.playerIDs)
            body.pointee.rank_mode = entries.rankMode.protoC
            body.pointee.period_id = entries.periodID
            request.method_case = HISCORE__V1__REQUEST__METHOD_ENTRIES
            request.entries = body
        case .count(let count):
            let body = arena.message(hiscore__v1__count_request__init)
            body.pointee.board_id = arena.cString(count.boardID)
            body.pointee.period_id = count.periodID
            if let minScore = count.minScore {
                body.pointee.min_case = HISCORE__V1__COUNT_REQUEST__MIN_MIN_SCORE
                body.pointee.min_score = minScore
            }
            if let maxScore = count.maxScore {
                body.pointee.max_case = HISCORE__V1__COUNT_REQUEST__MAX_MAX_SCORE
                body.pointee.max_score = maxScore
            }
            request.method_case = HISCORE__V1__REQUEST__METHOD_COUNT
            request.count = body
        case .createBoard(let config):
            let body = arena.message(hiscore__v1__create_board_request__init)
            body.pointee.config = config.protoC(in: arena)
            request.method_case = HISCORE__V1__REQUEST__METHOD_CREATE_BOARD
            request.create_board = body
        case .describeBoard(let boardID):
            let body = arena.message(hiscore__v1__describe_board_request__init)
            body.pointee.board_id = arena.cString(boardID)
            request.method_case = HISCORE__V1__REQUEST__METHOD_DESCRIBE_BOARD
            request.describe_board = body
        case .listBoards(let listBoards):
            let body = arena.message(hiscore__v1__list_boards_request__init)
            body.pointee.after_board_id = arena.cString(listBoards.afterBoardID)
            body.pointee.limit = listBoards.limit
            request.method_case = HISCORE__V1__REQUEST__METHOD_LIST_BOARDS
            request.list_boards = body
        case .deleteBoard(let boardID):
            let body = arena.message(hiscore__v1__delete_board_request__init)
            body.pointee.board_id = arena.cString(boardID)
            request.method_case = HISCORE__V1__REQUEST__METHOD_DELETE_BOARD
            request.delete_board = body
        case .removePlayer(let removePlayer):
            let body = arena.message(hiscore__v1__remove_player_request__init)
            body.pointee.board_id = arena.cString(removePlayer.boardID)
            body.pointee.player_id = arena.cString(removePlayer.playerID)
            request.method_case = HISCORE__V1__REQUEST__METHOD_REMOVE_PLAYER
            request.remove_player = body
        case .subscribe(let subscribe):
            request.method_case = HISCORE__V1__REQUEST__METHOD_SUBSCRIBE
            request.subscribe = subscribe.protoC(in: arena)
        case .cancel(let callID):
            let body = arena.message(hiscore__v1__cancel_request__init)
            body.pointee.call_id = callID
            request.method_case = HISCORE__V1__REQUEST__METHOD_CANCEL
            request.cancel = body
        case .ping(let payload):
            let body = arena.message(hiscore__v1__ping_request__init)
            body.pointee.payload = arena.binaryData(payload)
            request.method_case = HISCORE__V1__REQUEST__METHOD_PING
            request.ping = body
        case .authenticate(let token):
            let body = arena.message(hiscore__v1__authenticate_request__init)
            body.pointee.token = arena.cString(token)
            request.method_case = HISCORE__V1__REQUEST__METHOD_AUTHENTICATE
            request.authenticate = body
        case .backup(let destination):
            let body = arena.message(hiscore__v1__backup_request__init)
            body.pointee.destination = arena.cString(destination)
            request.method_case = HISCORE__V1__REQUEST__METHOD_BACKUP
            request.backup = body
        case .resetBoard(let boardID):
            let body = arena.message(hiscore__v1__reset_board_request__init)
            body.pointee.board_id = arena.cString(boardID)
            request.method_case = HISCORE__V1__REQUEST__METHOD_RESET_BOARD
            request.reset_board = body
        case .erasePlayer(let playerID):
            let body = arena.message(hiscore__v1__erase_player_request__init)
            body.pointee.player_id = arena.cString(playerID)
            request.method_case = HISCORE__V1__REQUEST__METHOD_ERASE_PLAYER
            request.erase_player = body
        }
    }
}

extension SubmitRequest {
    init(protoC submit: Hiscore__V1__SubmitRequest) throws(WireError) {
        self.init(
            boardID: try ProtoCRead.string(submit.board_id, field: "board_id"),
            playerID: try ProtoCRead.string(submit.player_id, field: "player_id"),
            score: submit.score,
            subscore: submit.subscore,
            metadata: submit.metadata_value_case == HISCORE__V1__SUBMIT_REQUEST__METADATA_VALUE_METADATA
                ? ProtoCRead.bytes(submit.metadata) : nil,
            skipRanks: submit.skip_ranks != 0)
    }

    func protoC(in arena: WireArena) -> UnsafeMutablePointer<Hiscore__V1__SubmitRequest> {
        let submit = arena.message(hiscore__v1__submit_request__init)
        submit.pointee.board_id = arena.cString(boardID)
        submit.pointee.player_id = arena.cString(playerID)
        submit.pointee.score = score
        submit.pointee.subscore = subscore
        submit.pointee.skip_ranks = skipRanks ? 1 : 0
        if let metadata {
            // Present-but-empty is meaningful (clear the stored metadata): the oneof carries it.
            submit.pointee.metadata_value_case = HISCORE__V1__SUBMIT_REQUEST__METADATA_VALUE_METADATA
            submit.pointee.metadata = arena.binaryData(metadata)
        }
        return submit
    }
}

extension TopRequest {
    init(protoC top: Hiscore__V1__TopRequest) throws(WireError) {
        let start: PageStart =
            switch top.start_case {
            case HISCORE__V1__TOP_REQUEST__START_CURSOR: .cursor(ProtoCRead.bytes(top.cursor))
            case HISCORE__V1__TOP_REQUEST__START_OFFSET: .offset(top.offset)
            default: .offset(0)  // neither set: from the top
            }
        self.init(
            boardID: try ProtoCRead.string(top.board_id, field: "board_id"),
            limit: top.limit,
            start: start,
            rankMode: try RankMode.requested(protoC: top.rank_mode))
        periodID = top.period_id
    }

    func protoC(in arena: WireArena) -> UnsafeMutablePointer<Hiscore__V1__TopRequest> {
        let top = arena.message(hiscore__v1__top_request__init)
        top.pointee.board_id = arena.cString(boardID)
        top.pointee.limit = limit
        top.pointee.period_id = periodID
        switch start {
        case .offset(let offset):
            // Offset 0 is the default: leaving the oneof unset is the canonical (shortest) form.
            if offset != 0 {
                top.pointee.start_case = HISCORE__V1__TOP_REQUEST__START_OFFSET
                top.pointee.offset = offset
            }
        case .cursor(let cursor):
            top.pointee.start_case = HISCORE__V1__TOP_REQUEST__START_CURSOR
            top.pointee.cursor = arena.binaryData(cursor)
        }
        top.pointee.rank_mode = rankMode.protoC
        return top
    }
}

extension SubscribeRequest {
    init(protoC subscribe: Hiscore__V1__SubscribeRequest) throws(WireError) {
        let target: SubscriptionTarget
        switch subscribe.target_case {
        case HISCORE__V1__SUBSCRIBE_REQUEST__TARGET_PLAYER_ID:
            target = .player(try ProtoCRead.string(subscribe.player_id, field: "player_id"))
        case HISCORE__V1__SUBSCRIBE_REQUEST__TARGET_TOP:
            target = .top(subscribe.top)
        case HISCORE__V1__SUBSCRIBE_REQUEST__TARGET_AROUND:
            let around = try ProtoCRead.required(subscribe.around, field: "around")
            target = .around(
                playerID: try ProtoCRead.string(around.player_id, field: "around.player_id"),
                before: around.before,
                after: around.after)
        case HISCORE__V1__SUBSCRIBE_REQUEST__TARGET_FEED:
            target = .feed
        default:
            throw .invalidField("target: missing (set one of player_id, top, around, feed)")
        }
        self.init(
            boardID: try ProtoCRead.string(subscribe.board_id, field: "board_id"),
            target: target,
            minIntervalMillis: subscribe.min_interval_ms,
            rankMode: try RankMode.requested(protoC: subscribe.rank_mode))
    }

    func protoC(in arena: WireArena) -> UnsafeMutablePointer<Hiscore__V1__SubscribeRequest> {
        let subscribe = arena.message(hiscore__v1__subscribe_request__init)
        subscribe.pointee.board_id = arena.cString(boardID)
        switch target {
        case .player(let playerID):
            subscribe.pointee.target_case = HISCORE__V1__SUBSCRIBE_REQUEST__TARGET_PLAYER_ID
            subscribe.pointee.player_id = arena.cString(playerID)
        case .top(let count):
            subscribe.pointee.target_case = HISCORE__V1__SUBSCRIBE_REQUEST__TARGET_TOP
            subscribe.pointee.top = count
        case .around(let playerID, let before, let after):
            let around = arena.message(hiscore__v1__subscribe_around__init)
            around.pointee.player_id = arena.cString(playerID)
            around.pointee.before = before
            around.pointee.after = after
            subscribe.pointee.target_case = HISCORE__V1__SUBSCRIBE_REQUEST__TARGET_AROUND
            subscribe.pointee.around = around
        case .feed:
            subscribe.pointee.target_case = HISCORE__V1__SUBSCRIBE_REQUEST__TARGET_FEED
            subscribe.pointee.feed = arena.message(hiscore__v1__subscribe_feed__init)
        }
        subscribe.pointee.min_interval_ms = minIntervalMillis
        subscribe.pointee.rank_mode = rankMode.protoC
        return subscribe
    }
}

/// Requests that can name an archived period.
protocol PeriodScoped {
    var periodID: UInt64 { get set }
}

extension PeriodScoped {
    func withPeriod(_ periodID: UInt64) -> Self {
        var copy = self
        copy.periodID = periodID
        return copy
    }
}

extension GetRankRequest: PeriodScoped {}
extension AroundRequest: PeriodScoped {}
extension EntriesRequest: PeriodScoped {}
extension CountRequest: PeriodScoped {}
