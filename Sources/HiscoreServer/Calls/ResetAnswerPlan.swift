import HiscoreWire

/// The answer to a season reset: the archived period's entries, counted on every shard.
///
/// Why count rather than read the board's size when it is archived: a shard checks that a board
/// is live and then applies the write, in one task on its loop. A write it had checked just
/// before the reset archived the board still lands in the archived period, after the reset has
/// read the size. A count that runs on every shard after the archiving runs after any such
/// write (a loop runs its tasks in order), so it is the period's final count, which a query of
/// the period reads too. Resets are rare; this costs one trip per shard.
final class ResetAnswerPlan: CallPlan {
    private let callID: UInt64
    /// Held for the plan's life: its operations name it unretained (`BoardRef`).
    private let archived: BoardHandle
    private let shardCount: Int

    init(callID: UInt64, archived: BoardHandle, shardCount: Int) {
        self.callID = callID
        self.archived = archived
        self.shardCount = shardCount
    }

    func advance(_ results: ShardResults) -> PlanStep {
        if results.isEmpty {
            return .runOnEach(
                .countScores(BoardRef(archived), min: nil, max: nil), shards: archived.shardRange(shardCount: shardCount),
                skipping: nil)
        }
        var entries: UInt64 = 0
        for case .count(let count) in results { entries += UInt64(max(0, count)) }
        return .finished(.ok(callID, .resetBoard(ResetBoardResponse(archivedPeriodID: archived.periodID, archivedEntries: entries))))
    }
}
