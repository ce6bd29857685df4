import HiscoreCore
import HiscoreWire

/// Typed calls. Each throws `HiscoreError` with the server's status code on failure.
extension HiscoreClient {
    /// Writes a score with the board's operator. `skipRanks`: the response carries no ranks (both
    /// 0), which spares a board split over shards a round to every other shard.
    public func submit(
        board: String, player: String, score: Int64, subscore: Int64 = 0, metadata: [UInt8]? = nil,
        skipRanks: Bool = false, deadline: Duration? = nil
    ) async throws -> SubmitResponse {
        let request = SubmitRequest(
            boardID: board, playerID: player, score: score, subscore: subscore, metadata: metadata, skipRanks: skipRanks)
        guard case .submit(let response) = try await call(.submit(request), deadline: deadline) else { throw unexpected("submit") }
        return response
    }

    /// Submits many scores in one call; each item has its own status.
    public func submitBatch(_ submits: [SubmitRequest], deadline: Duration? = nil) async throws -> [SubmitResult] {
        guard case .submitBatch(let results) = try await call(.submitBatch(submits), deadline: deadline) else {
            throw unexpected("submit_batch")
        }
        return results
    }

    public func rank(
        board: String, player: String, mode: RankMode? = nil, period: UInt64 = 0, deadline: Duration? = nil
    ) async throws -> GetRankResponse {
        var request = GetRankRequest(boardID: board, playerID: player, rankMode: mode)
        request.periodID = period
        guard case .getRank(let response) = try await call(.getRank(request), deadline: deadline) else { throw unexpected("get_rank") }
        return response
    }

    /// The best entries (of an archived `period`, when not 0).
    public func top(
        board: String, limit: UInt32 = 10, offset: UInt64 = 0, mode: RankMode? = nil, period: UInt64 = 0,
        deadline: Duration? = nil
    ) async throws -> TopResponse {
        var request = TopRequest(boardID: board, limit: limit, start: .offset(offset), rankMode: mode)
        request.periodID = period
        return try await page(request, deadline: deadline)
    }

    /// The page after `cursor` (a previous `TopResponse.nextCursor`, of the same `period`).
    public func top(
        board: String, limit: UInt32 = 10, after cursor: [UInt8], mode: RankMode? = nil, period: UInt64 = 0,
        deadline: Duration? = nil
    ) async throws -> TopResponse {
        var request = TopRequest(boardID: board, limit: limit, start: .cursor(cursor), rankMode: mode)
        request.periodID = period
        return try await page(request, deadline: deadline)
    }

    private func page(_ request: TopRequest, deadline: Duration?) async throws -> TopResponse {
        guard case .top(let response) = try await call(.top(request), deadline: deadline) else { throw unexpected("top") }
        return response
    }

    /// `before` better entries, the player, then `after` worse ones (of an archived `period`, when not 0).
    public func around(
        board: String, player: String, before: UInt32 = 5, after: UInt32 = 5, mode: RankMode? = nil,
        period: UInt64 = 0, deadline: Duration? = nil
    ) async throws -> EntriesResponse {
        var request = AroundRequest(boardID: board, playerID: player, before: before, after: after, rankMode: mode)
        request.periodID = period
        guard case .around(let response) = try await call(.around(request), deadline: deadline) else { throw unexpected("around") }
        return response
    }

    /// The entries of these players (a friends list) with their global ranks, best first (of an
    /// archived `period`, when not 0).
    public func entries(
        board: String, players: [String], mode: RankMode? = nil, period: UInt64 = 0, deadline: Duration? = nil
    ) async throws -> EntriesResponse {
        var request = EntriesRequest(boardID: board, playerIDs: players, rankMode: mode)
        request.periodID = period
        guard case .entries(let response) = try await call(.entries(request), deadline: deadline) else { throw unexpected("entries") }
        return response
    }

    /// Players with a score in `minScore...maxScore` (nil = unbounded), on an archived `period` when not 0.
    public func count(
        board: String, minScore: Int64? = nil, maxScore: Int64? = nil, period: UInt64 = 0, deadline: Duration? = nil
    ) async throws -> CountResponse {
        var request = CountRequest(boardID: board, minScore: minScore, maxScore: maxScore)
        request.periodID = period
        guard case .count(let response) = try await call(.count(request), deadline: deadline) else { throw unexpected("count") }
        return response
    }

    @discardableResult
    public func createBoard(_ config: BoardConfig, deadline: Duration? = nil) async throws -> BoardInfo {
        // The wire form clamps what it cannot carry (max_entries -1 would arrive as 0 = unlimited,
        // keep_periods 0 as 0 = the default 10): refuse it here, as the server would.
        do { try config.validate() } catch { throw HiscoreError(.invalidArgument, "\(error)") }
        // On the wire max_metadata_bytes 0 means the server's default (256), not "no metadata".
        guard config.limits.maxMetadataBytes > 0 else {
            throw HiscoreError(
                .invalidArgument,
                "max_metadata_bytes 0 cannot be sent: the protocol reads 0 as the default (256); the smallest limit is 1")
        }
        guard case .createBoard(let info) = try await call(.createBoard(config), deadline: deadline) else { throw unexpected("create_board") }
        return info
    }

    public func describeBoard(_ board: String, deadline: Duration? = nil) async throws -> BoardInfo {
        guard case .describeBoard(let info) = try await call(.describeBoard(boardID: board), deadline: deadline) else {
            throw unexpected("describe_board")
        }
        return info
    }

    public func listBoards(after: String = "", limit: UInt32 = 0, deadline: Duration? = nil) async throws -> ListBoardsResponse {
        let request = ListBoardsRequest(afterBoardID: after, limit: limit)
        guard case .listBoards(let response) = try await call(.listBoards(request), deadline: deadline) else { throw unexpected("list_boards") }
        return response
    }

    /// Deletes the board; returns how many entries it held.
    @discardableResult
    public func deleteBoard(_ board: String, deadline: Duration? = nil) async throws -> UInt64 {
        guard case .deleteBoard(let removed) = try await call(.deleteBoard(boardID: board), deadline: deadline) else {
            throw unexpected("delete_board")
        }
        return removed
    }

    /// Removes a player; returns the entry with the rank it had.
    @discardableResult
    public func removePlayer(board: String, player: String, deadline: Duration? = nil) async throws -> WireEntry {
        let request = RemovePlayerRequest(boardID: board, playerID: player)
        guard case .removePlayer(let entry) = try await call(.removePlayer(request), deadline: deadline) else {
            throw unexpected("remove_player")
        }
        return entry
    }

    /// Removes a player from every board and every archived period (a player's data erased).
    /// Admin only. Returns the number of entries removed. Idempotent: after a failure (a
    /// deadline), call it again to remove what is left.
    @discardableResult
    public func erasePlayer(_ player: String, deadline: Duration? = nil) async throws -> UInt64 {
        guard case .erasePlayer(let removed) = try await call(.erasePlayer(playerID: player), deadline: deadline) else {
            throw unexpected("erase_player")
        }
        return removed
    }

    public func ping(_ payload: [UInt8] = [], deadline: Duration? = nil) async throws -> [UInt8] {
        guard case .ping(let echoed) = try await call(.ping(payload: payload), deadline: deadline) else { throw unexpected("ping") }
        return echoed
    }

    /// Authenticates the connection with an API key or a player token: later calls on it run with
    /// that identity (UNAUTHENTICATED on a bad token; the server closes the connection after
    /// repeated failures).
    @discardableResult
    public func authenticate(token: String, deadline: Duration? = nil) async throws -> AuthenticateResponse {
        guard case .authenticate(let response) = try await call(.authenticate(token: token), deadline: deadline) else {
            throw unexpected("authenticate")
        }
        return response
    }

    /// Makes an online, consistent backup of the server's data dir into `destination` (a directory
    /// on the server's machine that is new or empty). Admin only. `hiscored --data-dir DESTINATION`
    /// starts from it. The server cannot stop a backup once started: cancelling the task (or its
    /// deadline) throws here, but the backup runs to its end.
    @discardableResult
    public func backup(to destination: String, deadline: Duration? = nil) async throws -> BackupResponse {
        guard case .backup(let response) = try await call(.backup(destination: destination), deadline: deadline) else {
            throw unexpected("backup")
        }
        return response
    }

    /// Ends the board's season now: its standings become a read-only archived period (query it
    /// with `period:`), and the board starts empty. Admin only. The server cannot stop a reset once
    /// started: cancelling the task (or its deadline) throws here, but the board is reset.
    @discardableResult
    public func resetBoard(_ board: String, deadline: Duration? = nil) async throws -> ResetBoardResponse {
        guard case .resetBoard(let response) = try await call(.resetBoard(boardID: board), deadline: deadline) else {
            throw unexpected("reset_board")
        }
        return response
    }

    private func unexpected(_ method: String) -> HiscoreError {
        HiscoreError(.internal, "the server answered \(method) with another result kind")
    }
}
