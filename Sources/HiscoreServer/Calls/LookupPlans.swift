import HiscoreCore
import HiscoreWire

/// GetRank: phase 1 finds the player's entry on its shard, which also counts its own entries
/// that beat it; phase 2 counts what beats it on the other shards. Ordinal ranks take that
/// owner's count as is (a single-partition board answers after phase 1); competition and dense
/// ranks count at the tie group's first key, so phase 2 asks every shard.
final class GetRankPlan: CallPlan {
    private var callID: UInt64
    private var ranking: RankResolution
    private var playerID: String
    private var found: LeaderboardEntry?
    /// Entries beating the player on its own shard, when phase 2 skips that shard.
    private var ownerBetter: Int?

    init(callID: UInt64, ranking: RankResolution, playerID: String) {
        self.callID = callID
        self.ranking = ranking
        self.playerID = playerID
    }

    /// Makes a finished plan (see `PlanPool`) a new one.
    func reset(callID: UInt64, ranking: RankResolution, playerID: String) {
        self.callID = callID
        self.ranking = ranking
        self.playerID = playerID
        found = nil
        ownerBetter = nil
    }

    func recycle(into pool: PlanPool) { pool.recycle(self) }

    /// The board is read unretained: this plan holds it (`ranking`) for longer than the call, and
    /// a retain of a board every loop shares is a write to one cache line from both CPUs.
    func advance(_ results: ShardResults) -> PlanStep {
        BoardRef(ranking.board).with { advance(results, board: $0) }
    }

    private func advance(_ results: ShardResults, board: BoardHandle) -> PlanStep {
        let owner = board.shard(for: playerID, shardCount: ranking.shardCount)
        guard let found else {
            if results.isEmpty {
                // Competition and dense ranks count in a phase of their own: no ordinal count here.
                return .runOne(ShardCall(
                    shard: owner, operation: .lookupOne(BoardRef(board), playerID: playerID, counting: ranking.mode == .ordinal)))
            }
            guard case .foundOne(let located?) = results.first else {
                return .finished(.failure(callID: callID, CallValidation.playerNotFound(playerID, board: board.config.id)))
            }
            self.found = located.entry
            guard ranking.mode == .ordinal else { return ranking.countOperations(for: CollectionOfOne(located.entry)) }
            if board.partitionCount == 1 || ranking.shardCount == 1 {
                return finish(located.entry, rank: UInt64(located.localBetter) + 1, board: board)
            }
            ownerBetter = located.localBetter
            return .runOnEach(
                .countBetter(BoardRef(board), keys: CountKeys(located.entry.key), orEqual: false),
                shards: 0..<ranking.shardCount, skipping: owner)
        }
        return finish(found, rank: ranking.firstRank(from: results) + UInt64(ownerBetter ?? 0), board: board)
    }

    private func finish(_ entry: LeaderboardEntry, rank: UInt64, board: BoardHandle) -> PlanStep {
        .finished(.ok(callID, .getRank(GetRankResponse(
            entry: WireEntry(entry, rank: rank), boardSize: UInt64(max(0, board.size))))))
    }
}

/// Entries (a friends list): phase 1 looks every player up on its owning shard (one operation per
/// shard, whatever the list length); phase 2 counts, on every shard, what beats each found entry.
final class EntriesPlan: CallPlan {
    private let callID: UInt64
    private let ranking: RankResolution
    private let playerIDs: [String]
    private var found: [LeaderboardEntry] = []
    private var missing: [String] = []
    private var looked = false

    init(callID: UInt64, ranking: RankResolution, playerIDs: [String]) {
        self.callID = callID
        self.ranking = ranking
        var seen = Set<String>()
        self.playerIDs = playerIDs.filter { seen.insert($0).inserted }
    }

    func advance(_ results: ShardResults) -> PlanStep {
        let board = ranking.board
        if results.isEmpty && !looked {
            looked = true
            var byShard: [Int: [String]] = [:]
            for id in playerIDs { byShard[board.shard(for: id, shardCount: ranking.shardCount), default: []].append(id) }
            let calls = byShard.sorted { $0.key < $1.key }.map {
                ShardCall(shard: $0.key, operation: .lookup(BoardRef(board), playerIDs: $0.value, denseRanks: false))
            }
            if calls.isEmpty { return finish(ranks: []) }
            return .run(calls)
        }
        if found.isEmpty && missing.isEmpty {
            var byShard: [Int: [String]] = [:]
            for id in playerIDs { byShard[board.shard(for: id, shardCount: ranking.shardCount), default: []].append(id) }
            let order = byShard.sorted { $0.key < $1.key }
            for ((_, ids), result) in zip(order, results) {
                guard case .found(let entries) = result else { continue }
                for (id, entry) in zip(ids, entries) {
                    if let entry { found.append(entry.entry) } else { missing.append(id) }
                }
            }
            found.sort { $0.key < $1.key }
            missing.sort()
            if found.isEmpty { return finish(ranks: []) }
            return ranking.countOperations(for: found)
        }
        return finish(ranks: ranking.ranks(from: results, count: found.count))
    }

    private func finish(ranks: [UInt64]) -> PlanStep {
        let entries = zip(found, ranks).map { WireEntry($0.0, rank: $0.1) }
        return .finished(.ok(callID, .entries(EntriesResponse(
            entries: entries, missingPlayerIDs: missing, boardSize: UInt64(max(0, ranking.board.size))))))
    }
}

/// Count: every shard counts its entries in the score range; the sum is the answer.
final class CountPlan: CallPlan {
    private let callID: UInt64
    private let board: BoardHandle
    private let request: CountRequest
    private let shardCount: Int

    init(callID: UInt64, board: BoardHandle, request: CountRequest, shardCount: Int) {
        self.callID = callID
        self.board = board
        self.request = request
        self.shardCount = shardCount
    }

    func advance(_ results: ShardResults) -> PlanStep {
        if results.isEmpty {
            return .run(board.shardRange(shardCount: shardCount).map {
                ShardCall(shard: $0, operation: .countScores(BoardRef(board), min: request.minScore, max: request.maxScore))
            })
        }
        var total: UInt64 = 0
        for case .count(let count) in results { total += UInt64(count) }
        return .finished(.ok(callID, .count(CountResponse(count: total, boardSize: UInt64(max(0, board.size))))))
    }
}

/// RemovePlayer: phase 1 removes on the owning shard (reporting the entry and its local better
/// count); phase 2 counts on the other shards to report the rank the player had.
final class RemovePlayerPlan: CallPlan {
    var writesEntries: Bool { true }
    private let callID: UInt64
    private let board: BoardHandle
    private let playerID: String
    private let shardCount: Int
    private var removed: LocatedEntry?

    init(callID: UInt64, board: BoardHandle, playerID: String, shardCount: Int) {
        self.callID = callID
        self.board = board
        self.playerID = playerID
        self.shardCount = shardCount
    }

    func advance(_ results: ShardResults) -> PlanStep {
        let owner = board.shard(for: playerID, shardCount: shardCount)
        guard let removed else {
            if results.isEmpty { return .run([ShardCall(shard: owner, operation: .remove(board, playerID: playerID))]) }
            if case .refused(let status) = results.first { return .finished(.failure(callID: callID, status)) }
            guard case .removed(let located) = results.first, let located else {
                return .finished(.failure(callID: callID, CallValidation.playerNotFound(playerID, board: board.config.id)))
            }
            self.removed = located
            let others = board.shardRange(shardCount: shardCount).filter { $0 != owner }
            if others.isEmpty { return finish(located, elsewhere: []) }
            return .run(others.map {
                ShardCall(shard: $0, operation: .countBetter(BoardRef(board), keys: CountKeys(located.entry.key), orEqual: false))
            })
        }
        return finish(removed, elsewhere: results)
    }

    private func finish(_ located: LocatedEntry, elsewhere: ShardResults) -> PlanStep {
        var better = located.localBetter
        for case .counts(let counts) in elsewhere { better += counts.first ?? 0 }
        return .finished(.ok(callID, .removePlayer(WireEntry(located.entry, rank: UInt64(better + 1)))))
    }
}

/// DeleteBoard: the board (with its archived periods) is already out of the directory, so no new
/// call can reach it; every shard drops its partitions and reports how many entries they held.
final class DeleteBoardPlan: CallPlan {
    private let callID: UInt64
    private let boards: [BoardHandle]
    private let shardCount: Int

    init(callID: UInt64, boards: [BoardHandle], shardCount: Int) {
        self.callID = callID
        self.boards = boards
        self.shardCount = shardCount
    }

    func advance(_ results: ShardResults) -> PlanStep {
        if results.isEmpty {
            return .run(boards.flatMap { board in (0..<shardCount).map { ShardCall(shard: $0, operation: .dropBoard(board)) } })
        }
        var removed: UInt64 = 0
        for case .dropped(let count) in results { removed += UInt64(count) }
        return .finished(.ok(callID, .deleteBoard(removedEntries: removed)))
    }
}
