import HiscoreAuth
import HiscoreCore
import HiscoreWire
import NIOCore

/// Turns a decoded request into work: either an answer right away (validation errors, admin calls
/// that need no shard, ping) or a plan for the batch executor. It owns the call-level rules of
/// docs/protocol.md: id validation, limits, board lookup and auto-creation.
struct CallRouter: Sendable {
    enum Routed {
        case answer(ResponseEnvelope)
        case plan(any CallPlan)
        case subscribe(SubscriptionSpec)
        /// Work off the shards (backup): answered when the future completes.
        case deferred((any EventLoop) -> EventLoopFuture<ResponseEnvelope>)
    }

    /// A validated subscription, ready to register with the board's hub.
    struct SubscriptionSpec {
        let board: BoardHandle
        let target: SubscriptionTarget
        let ranking: RankResolution
        let interval: TimeAmount
    }

    /// A top call's page when its `limit` is 0 (fewer when max_page_entries is smaller).
    static let defaultTopLimit = 10
    /// A list_boards page when its `limit` is 0 (fewer when max_page_entries is smaller).
    static let defaultListLimit = 100
    /// The largest `offset` a top call takes (OUT_OF_RANGE past it): deeper pages use a cursor.
    static let maxTopOffset = UInt64(Int32.max)
    /// `min_interval_ms` 0 means this; shorter requests are raised to the floor.
    static let defaultStreamInterval = TimeAmount.milliseconds(100)
    static let streamIntervalFloor = TimeAmount.milliseconds(20)
    static let streamIntervalCeiling = TimeAmount.seconds(3600)
    /// Bytes a submit's answer in a batch response takes besides its ids and metadata (status,
    /// scores, ranks, flags and protobuf framing), rounded up.
    static let submitAnswerOverhead = 96
    /// Bytes a refused item's answer takes besides the ids its status message may quote (the
    /// item's board and player, a player token's own id): the longest message (the memory
    /// ceiling's, ~170 bytes with its numbers) and the status framing, rounded up.
    static let submitRefusalOverhead = 256

    let directory: BoardDirectory
    let shardCount: Int
    let limits: ServerLimits
    let autoCreateBoards: Bool
    let streams: StreamCoordinator?
    let access: AccessControl
    let backups: BackupService?
    let seasons: SeasonKeeper?

    /// Routes a call made by `principal` (nil = no credentials presented). Submit and rank plans
    /// come from `plans` (the caller's loop's pool) when given.
    func route(callID: UInt64, method: RequestMethod, principal: Principal?, now: Int64, plans: PlanPool? = nil) -> Routed {
        if let denied = access.authorize(principal, method, now: now, board: { directory.board($0)?.config }) {
            return .answer(.failure(callID: callID, denied))
        }
        switch method {
        case .submit(let request):
            switch submitPlan(callID: callID, request, plans: plans) {
            case .success(let plan): return .plan(plan)
            case .failure(let status): return .answer(.failure(callID: callID, status))
            }
        case .submitBatch(let requests):
            guard requests.count <= limits.maxBatchSubmits else {
                return fail(callID, .resourceExhausted, "batch of \(requests.count) submits; at most \(limits.maxBatchSubmits) allowed (max_batch_submits)")
            }
            // Each item's answer carries the entry with its metadata, so a batch to boards that
            // allow large metadata could be applied and then not fit in one response frame.
            // Refuse it before anything is written.
            // A refused item answers a status instead, whose message may be longer than a small
            // board's entry (it may quote a player token's own id, which the item does not carry).
            var worstAnswerBytes = 0
            var largestItem = 0
            var tokenPlayerBytes = 0
            if case .player(let claims) = principal { tokenPlayerBytes = claims.playerID.utf8.count }
            for request in requests {
                let metadata = directory.board(request.boardID)?.config.limits.maxMetadataBytes ?? BoardLimits().maxMetadataBytes
                let ids = request.boardID.utf8.count + request.playerID.utf8.count
                let item = max(Self.submitAnswerOverhead + ids + metadata, Self.submitRefusalOverhead + ids + tokenPlayerBytes)
                worstAnswerBytes += item
                largestItem = max(largestItem, item)
            }
            guard worstAnswerBytes <= limits.maxFrameBytes else {
                let fits = limits.maxFrameBytes / largestItem
                return fail(
                    callID, .resourceExhausted,
                    "a batch of \(requests.count) submits to boards allowing up to \(largestItem - Self.submitAnswerOverhead) bytes of ids and metadata per entry could answer more than max_frame_bytes (\(limits.maxFrameBytes)); "
                        + (fits > 0 ? "send at most \(fits) per batch" : "not even one item's answer fits: submit those one by one (submit), or raise --max-frame-bytes"))
            }
            return .plan(SubmitBatchPlan(callID: callID, items: requests.map { request in
                if let denied = access.authorizeSubmit(principal, request, now: now, board: { directory.board($0)?.config }) {
                    return .failure(denied)
                }
                return submitPlan(callID: callID, request)
            }))
        case .getRank(let request):
            if let status = CallValidation.identifier(request.playerID, field: "player_id") { return .answer(.failure(callID: callID, status)) }
            return withRanking(callID, request.boardID, request.rankMode, period: request.periodID) { ranking in
                plans?.rankPlan(callID: callID, ranking: ranking, playerID: request.playerID)
                    ?? GetRankPlan(callID: callID, ranking: ranking, playerID: request.playerID)
            }
        case .top(let request):
            var limit = request.limit == 0 ? min(Self.defaultTopLimit, limits.maxPageEntries) : Int(request.limit)
            guard limit <= limits.maxPageEntries else {
                return fail(callID, .outOfRange, "limit \(limit) exceeds max_page_entries \(limits.maxPageEntries)")
            }
            if case .offset(let offset) = request.start, offset > Self.maxTopOffset {
                return fail(callID, .outOfRange, "offset \(offset) is too large; page with a cursor instead")
            }
            let bound = AnswerBound(maxFrameBytes: limits.maxFrameBytes)
            return withRanking(callID, request.boardID, request.rankMode, period: request.periodID, check: { board in
                // The default page is made to fit; a limit asked for is refused when it may not.
                if request.limit == 0 { limit = min(limit, bound.entriesPerAnswer(board.limits)) }
                return bound.refusal(count: limit, board: board, asking: "a page of \(limit)")
            }) {
                plans?.topPlan(callID: callID, ranking: $0, limit: limit, start: request.start, maxFallbackKeys: limits.maxPageFallbackKeys)
                    ?? TopPlan(callID: callID, ranking: $0, limit: limit, start: request.start, maxFallbackKeys: limits.maxPageFallbackKeys)
            }
        case .around(let request):
            if let status = CallValidation.identifier(request.playerID, field: "player_id") { return .answer(.failure(callID: callID, status)) }
            guard Int(request.before) <= limits.maxPageEntries, Int(request.after) <= limits.maxPageEntries else {
                return fail(callID, .outOfRange, "before and after must each be at most max_page_entries \(limits.maxPageEntries)")
            }
            let bound = AnswerBound(maxFrameBytes: limits.maxFrameBytes)
            let count = Int(request.before) + Int(request.after) + 1
            return withRanking(callID, request.boardID, request.rankMode, period: request.periodID, check: {
                bound.refusal(count: count, board: $0, asking: "\(request.before) before and \(request.after) after a player")
            }) {
                AroundPlan(callID: callID, ranking: $0, request: request)
            }
        case .entries(let request):
            guard request.playerIDs.count <= limits.maxPlayersPerQuery else {
                return fail(callID, .resourceExhausted, "\(request.playerIDs.count) player ids; at most \(limits.maxPlayersPerQuery) allowed (max_players_per_query)")
            }
            for id in request.playerIDs {
                if let status = CallValidation.identifier(id, field: "player_ids") { return .answer(.failure(callID: callID, status)) }
            }
            let bound = AnswerBound(maxFrameBytes: limits.maxFrameBytes)
            return withRanking(callID, request.boardID, request.rankMode, period: request.periodID, check: {
                bound.refusal(playerIDs: request.playerIDs, board: $0)
            }) {
                EntriesPlan(callID: callID, ranking: $0, playerIDs: request.playerIDs)
            }
        case .count(let request):
            if let min = request.minScore, let max = request.maxScore, min > max {
                return fail(callID, .invalidArgument, "min_score \(min) is greater than max_score \(max)")
            }
            return withBoard(callID, request.boardID, period: request.periodID) {
                CountPlan(callID: callID, board: $0, request: request, shardCount: shardCount)
            }
        case .createBoard(let config):
            do {
                try config.validate()
            } catch {
                return fail(callID, .invalidArgument, "\(error)")
            }
            // An answer must be able to carry one entry of a new board, metadata and all (one
            // made under larger frames before a restart stays: creating it again is idempotent).
            let bound = AnswerBound(maxFrameBytes: limits.maxFrameBytes)
            let oneEntry = AnswerBound.answerOverhead + bound.entryBytes(config.limits)
            guard oneEntry <= limits.maxFrameBytes || directory.board(config.id) != nil else {
                return fail(
                    callID, .invalidArgument,
                    "board \(config.id) allows \(config.limits.maxMetadataBytes) bytes of metadata per entry: an answer carrying one entry may need \(oneEntry) bytes, more than this server's max_frame_bytes (\(limits.maxFrameBytes)); lower max_metadata_bytes to at most \(limits.maxFrameBytes - AnswerBound.answerOverhead - AnswerBound.entryOverhead - Identifier.maxBytes)")
            }
            do {
                switch try directory.create(config) {
                case .created(let board):
                    // The season timer is armed for the earliest boundary of the boards it knew.
                    if board.config.resetSchedule != nil { seasons?.armTimer() }
                    return .answer(.ok(callID, .createBoard(BoardInfo(board.info()))))
                case .existing(let board):
                    return .answer(.ok(callID, .createBoard(BoardInfo(board.info()))))
                }
            } catch {
                switch error {
                case .alreadyExistsWithOtherConfig:
                    return fail(callID, .alreadyExists, "board \(config.id) already exists with a different config; delete it first")
                case .tooManyBoards(let limit):
                    return fail(callID, .resourceExhausted, "the server holds its maximum of \(limit) boards (max_boards)")
                case .storage(let error):
                    return fail(callID, .unavailable, "cannot record the board durably: \(error)")
                }
            }
        case .describeBoard(let boardID):
            if let status = CallValidation.identifier(boardID, field: "board_id") { return .answer(.failure(callID: callID, status)) }
            guard let board = directory.board(boardID) else { return .answer(.failure(callID: callID, CallValidation.boardNotFound(boardID))) }
            var info = BoardInfo(board.info())
            info.currentPeriodID = board.periodID
            info.currentPeriodStartedAtMicros = board.periodStartedAt
            info.periods = directory.periods(boardID).map {
                PeriodInfo(periodID: $0.periodID, startedAtMicros: $0.periodStartedAt, endedAtMicros: $0.archivedAt, size: UInt64(max(0, $0.size)))
            }
            return .answer(.ok(callID, .describeBoard(info)))
        case .listBoards(let request):
            let limit = request.limit == 0 ? min(Self.defaultListLimit, limits.maxPageEntries) : Int(request.limit)
            guard limit <= limits.maxPageEntries else {
                return fail(callID, .outOfRange, "limit \(limit) exceeds max_page_entries \(limits.maxPageEntries)")
            }
            let page = directory.list(after: request.afterBoardID, limit: limit)
            return .answer(.ok(callID, .listBoards(ListBoardsResponse(
                boards: page.boards.map { BoardInfo($0.info()) }, more: page.more))))
        case .deleteBoard(let boardID):
            if let status = CallValidation.identifier(boardID, field: "board_id") { return .answer(.failure(callID: callID, status)) }
            let removed: [BoardHandle]
            do {
                removed = try directory.remove(boardID)
            } catch {
                return fail(callID, .unavailable, "cannot record the deletion durably: \(error)")
            }
            guard !removed.isEmpty else { return .answer(.failure(callID: callID, CallValidation.boardNotFound(boardID))) }
            for board in removed { streams?.boardDeleted(board) }
            return .plan(DeleteBoardPlan(callID: callID, boards: removed, shardCount: shardCount))
        case .removePlayer(let request):
            if let status = CallValidation.identifier(request.playerID, field: "player_id") { return .answer(.failure(callID: callID, status)) }
            return withBoard(callID, request.boardID) {
                RemovePlayerPlan(callID: callID, board: $0, playerID: request.playerID, shardCount: shardCount)
            }
        case .ping(let payload):
            guard payload.count <= limits.maxPingPayloadBytes else {
                return fail(callID, .invalidArgument, "ping payload of \(payload.count) bytes; at most \(limits.maxPingPayloadBytes)")
            }
            return .answer(.ok(callID, .ping(payload: payload)))
        case .subscribe(let request):
            return subscription(callID, request)
        case .resetBoard(let boardID):
            if let status = CallValidation.identifier(boardID, field: "board_id") { return .answer(.failure(callID: callID, status)) }
            guard let seasons else { return fail(callID, .unimplemented, "resets are not available on this server") }
            return .deferred { _ in seasons.reset(callID: callID, boardID: boardID, at: seasons.clock()) }
        case .erasePlayer(let playerID):
            if let status = CallValidation.identifier(playerID, field: "player_id") { return .answer(.failure(callID: callID, status)) }
            return .plan(ErasePlayerPlan(callID: callID, playerID: playerID, directory: directory, shardCount: shardCount))
        case .backup(let destination):
            guard let backups else { return fail(callID, .unimplemented, "backups are not available on this server") }
            return .deferred { loop in backups.run(callID: callID, destination: destination, on: loop) }
        case .cancel, .authenticate:
            // The connection handles these itself: it owns the in-flight table and its principal.
            return fail(callID, .internal, "connection-level call reached the router")
        }
    }

    private func subscription(_ callID: UInt64, _ request: SubscribeRequest) -> Routed {
        switch request.target {
        case .player(let player):
            if let status = CallValidation.identifier(player, field: "player_id") { return .answer(.failure(callID: callID, status)) }
        case .top(let limit):
            guard limit >= 1 && Int(limit) <= limits.maxPageEntries else {
                return fail(callID, .outOfRange, "top must be 1...\(limits.maxPageEntries) (max_page_entries), got \(limit)")
            }
        case .around(let player, let before, let after):
            if let status = CallValidation.identifier(player, field: "player_id") { return .answer(.failure(callID: callID, status)) }
            guard Int(before) <= limits.maxPageEntries, Int(after) <= limits.maxPageEntries else {
                return fail(callID, .outOfRange, "before and after must each be at most max_page_entries \(limits.maxPageEntries)")
            }
        case .feed:
            break
        }
        if let status = CallValidation.identifier(request.boardID, field: "board_id") { return .answer(.failure(callID: callID, status)) }
        guard let board = directory.board(request.boardID) else {
            return .answer(.failure(callID: callID, CallValidation.boardNotFound(request.boardID)))
        }
        let ranking: RankResolution
        switch RankResolution.make(board: board, requested: request.rankMode, shardCount: shardCount) {
        case .success(let resolved): ranking = resolved
        case .failure(let status): return .answer(.failure(callID: callID, status))
        }
        // A top or around stream's events carry its entries: the same bound as the calls'.
        let bound = AnswerBound(maxFrameBytes: limits.maxFrameBytes)
        let windowEntries = request.target.windowEntries
        if let refusal = bound.refusal(count: windowEntries, board: board.config, asking: "a stream window of \(windowEntries) entries") {
            return .answer(.failure(callID: callID, refusal))
        }
        var interval = request.minIntervalMillis == 0
            ? Self.defaultStreamInterval : TimeAmount.milliseconds(Int64(request.minIntervalMillis))
        interval = min(max(interval, Self.streamIntervalFloor), Self.streamIntervalCeiling)
        return .subscribe(SubscriptionSpec(board: board, target: request.target, ranking: ranking, interval: interval))
    }

    private func submitPlan(callID: UInt64, _ request: SubmitRequest, plans: PlanPool? = nil) -> Result<SubmitPlan, Status> {
        if let status = CallValidation.identifier(request.boardID, field: "board_id") { return .failure(status) }
        if let status = CallValidation.identifier(request.playerID, field: "player_id") { return .failure(status) }
        let board: BoardHandle
        if autoCreateBoards {
            do {
                board = try directory.boardCreatingDefault(request.boardID)
            } catch {
                switch error {
                case .storage(let storage):
                    return .failure(Status(.unavailable, "cannot record board \(request.boardID) durably: \(storage)"))
                default:
                    return .failure(Status(.resourceExhausted, "cannot auto-create board \(request.boardID): the server holds its maximum of boards (max_boards)"))
                }
            }
        } else {
            guard let existing = directory.board(request.boardID) else {
                return .failure(Status(.notFound, "board \(request.boardID) not found (auto-create is off: create it first)"))
            }
            board = existing
        }
        if let metadata = request.metadata, metadata.count > board.config.limits.maxMetadataBytes {
            return .failure(Status(
                .invalidArgument,
                "metadata: \(metadata.count) bytes, board \(request.boardID) allows at most \(board.config.limits.maxMetadataBytes)"))
        }
        return .success(
            plans?.submitPlan(callID: callID, board: board, request: request, shardCount: shardCount)
                ?? SubmitPlan(callID: callID, board: board, request: request, shardCount: shardCount))
    }

    /// The live board, or one of its archived periods.
    private func lookUp(_ boardID: String, period: UInt64) -> Result<BoardHandle, Status> {
        if let status = CallValidation.identifier(boardID, field: "board_id") { return .failure(status) }
        if period == 0 {
            guard let board = directory.board(boardID) else { return .failure(CallValidation.boardNotFound(boardID)) }
            return .success(board)
        }
        if let archived = directory.period(boardID, period) { return .success(archived) }
        if let live = directory.board(boardID), live.periodID == period { return .success(live) }
        return .failure(Status(.notFound, "board \(boardID) has no period \(period) (archived periods are listed by describe_board)"))
    }

    private func withBoard(_ callID: UInt64, _ boardID: String, period: UInt64 = 0, _ make: (BoardHandle) -> any CallPlan) -> Routed {
        switch lookUp(boardID, period: period) {
        case .success(let board): return .plan(make(board))
        case .failure(let status): return .answer(.failure(callID: callID, status))
        }
    }

    /// `check` sees the board's config once it is found and may refuse the call (a status).
    private func withRanking(
        _ callID: UInt64, _ boardID: String, _ mode: RankMode?, period: UInt64 = 0,
        check: (BoardConfig) -> Status? = { _ in nil }, _ make: (RankResolution) -> any CallPlan
    ) -> Routed {
        let board: BoardHandle
        switch lookUp(boardID, period: period) {
        case .success(let found): board = found
        case .failure(let status): return .answer(.failure(callID: callID, status))
        }
        if let refusal = check(board.config) { return .answer(.failure(callID: callID, refusal)) }
        switch RankResolution.make(board: board, requested: mode, shardCount: shardCount) {
        case .success(let ranking): return .plan(make(ranking))
        case .failure(let status): return .answer(.failure(callID: callID, status))
        }
    }

    private func fail(_ callID: UInt64, _ code: StatusCode, _ message: String) -> Routed {
        .answer(.failure(callID: callID, Status(code, message)))
    }
}

extension BoardInfo {
    init(_ snapshot: BoardSnapshot) {
        self.init(config: snapshot.config, size: snapshot.size, version: snapshot.version)
    }
}
