import HiscoreCore
import HiscoreWire

/// How ranks in the requested mode are computed from per-shard counts.
///
/// - ordinal: 1 + entries with a strictly smaller key, summed over the board's shards.
/// - competition: 1 + entries with a strictly better (score, subscore): the same count taken at
///   the smallest key of that (score, subscore), i.e. sequence 0.
/// - dense: 1 + distinct better (score, subscore) values. Distinct counts do not add up across
///   shards, so dense-ranked boards keep all entries in one partition and ask that one, which
///   keeps a tree of its distinct values for it (`BoardPartition.distinctScoresBetter`).
struct RankResolution {
    let board: BoardHandle
    let mode: RankMode
    let shardCount: Int
    let codec: KeyCodec

    /// Resolves the requested mode against the board, or explains why it cannot be served.
    static func make(board: BoardHandle, requested: RankMode?, shardCount: Int) -> Result<RankResolution, Status> {
        let mode = requested ?? board.config.rankMode
        if mode == .dense && (board.config.rankMode != .dense || board.partitionCount != 1) {
            return .failure(Status(
                .failedPrecondition,
                "dense ranks need a board created with rank_mode RANK_MODE_DENSE; board \(board.config.id) is not"))
        }
        let codec = KeyCodec(scoreOrder: board.config.scoreOrder, subscoreOrder: board.config.subscoreOrder)
        return .success(RankResolution(board: board, mode: mode, shardCount: shardCount, codec: codec))
    }

    /// The key whose better-count gives the rank in this mode.
    func countingKey(of entry: LeaderboardEntry) -> RankKey {
        mode == .ordinal ? entry.key : codec.firstKey(score: entry.score, subscore: entry.subscore)
    }

    /// Operations that count, on every shard of the board, what is better than each key's entry.
    func countOperations<Entries: Collection<LeaderboardEntry>>(for entries: Entries) -> PlanStep {
        var keys = CountKeys()
        for entry in entries { keys.append(countingKey(of: entry)) }
        if mode == .dense {
            return .runOne(ShardCall(shard: board.homeShard, operation: .distinctBetter(BoardRef(board), keys: keys)))
        }
        return .runOnEach(.countBetter(BoardRef(board), keys: keys, orEqual: false), shards: board.shardRange(shardCount: shardCount), skipping: nil)
    }

    /// The rank (1-based) of the first entry asked, from the results of `countOperations`.
    func firstRank(from results: ShardResults) -> UInt64 {
        var rank: UInt64 = 1
        for case .counts(let counts) in results { rank += UInt64(counts.first ?? 0) }
        return rank
    }

    /// Ranks (1-based) from the results of `countOperations`, one per entry.
    func ranks(from results: ShardResults, count: Int) -> [UInt64] {
        var sums = [UInt64](repeating: 1, count: count)
        for result in results {
            guard case .counts(let counts) = result else { continue }
            for (index, value) in counts.enumerated() where index < count { sums[index] += UInt64(value) }
        }
        return sums
    }

    /// Ranks of a run of consecutive board entries, given the ordinal rank of the first and the
    /// rank in this mode of the first: later ranks follow from ties within the run.
    func ranksOfRun(_ entries: [LeaderboardEntry], firstOrdinal: UInt64, firstRank: UInt64) -> [UInt64] {
        var ranks: [UInt64] = []
        ranks.reserveCapacity(entries.count)
        for (index, entry) in entries.enumerated() {
            if index == 0 {
                ranks.append(mode == .ordinal ? firstOrdinal : firstRank)
                continue
            }
            let previous = entries[index - 1]
            let tied = previous.score == entry.score && previous.subscore == entry.subscore
            switch mode {
            case .ordinal: ranks.append(firstOrdinal + UInt64(index))
            case .competition: ranks.append(tied ? ranks[index - 1] : firstOrdinal + UInt64(index))
            case .dense: ranks.append(tied ? ranks[index - 1] : ranks[index - 1] + 1)
            }
        }
        return ranks
    }
}

/// Validation shared by every call, turned into the status the client sees.
enum CallValidation {
    static func identifier(_ value: String, field: String) -> Status? {
        do {
            try Identifier.validate(value, field: field)
            return nil
        } catch {
            return Status(.invalidArgument, "\(error)")
        }
    }

    static func boardNotFound(_ id: String) -> Status { Status(.notFound, "board \(id) not found") }

    static func playerNotFound(_ player: String, board: String) -> Status {
        Status(.notFound, "player \(player) is not on board \(board)")
    }
}
