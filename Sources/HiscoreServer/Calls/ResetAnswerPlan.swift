import HiscoreWire

/// The answer to a season reset, given once every shard has passed the archiving.
///
/// Why wait for the shards: a shard checks that a board is live and then applies the write, in
/// one task on its loop. A write it had checked just before the reset archived the board still
/// lands in the archived period, after the reset archived it. A trip to every shard queued after
/// the archiving runs after any such write (a loop runs its tasks in order), so the period's
/// size read then is final: what a query of the period finds. The size, not a count of the
/// shards' partitions: another reset may prune this period (or a deletion drop it) before
/// these trips run, and dropping a partition leaves the board's size as it was. In fsync mode
/// each trip also waits until the shard's writes are durable (`writesDurable`): the size then
/// counts no write a crash could still take back. Resets are rare; this costs one trip per
/// shard.
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

    /// In fsync mode its round is one of writes (`ExecutorPool`): the shards' group fsyncs it
    /// waits for are no read-only round's to wait for.
    var writesEntries: Bool { true }
    /// A shard whose log failed answers its `writesDurable` with `.refused`: the plan says so
    /// itself (the archiving took effect; only the count cannot be vouched for).
    var answersRefusedWrites: Bool { true }

    func advance(_ results: ShardResults) -> PlanStep {
        if results.isEmpty {
            return .runOnEach(.writesDurable, shards: archived.shardRange(shardCount: shardCount), skipping: nil)
        }
        for case .refused(let status) in results {
            // The count would include writes the failed log refused, which the restart it
            // calls for takes back. A retry would archive another period: say not to.
            return .finished(.failure(callID: callID, Status(
                .unavailable,
                "board \(archived.config.id): period \(archived.periodID) was archived, but its count cannot be given: \(status.message); do not repeat the reset (it took effect); restart hiscored once the disk is fixed")))
        }
        let entries = UInt64(max(0, archived.size))
        return .finished(.ok(callID, .resetBoard(ResetBoardResponse(archivedPeriodID: archived.periodID, archivedEntries: entries))))
    }
}
