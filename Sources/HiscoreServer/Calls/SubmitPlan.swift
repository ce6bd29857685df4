import HiscoreCore
import HiscoreWire

/// Submit: phase 1 applies the write on the player's shard (which also counts locally before and
/// after); phase 2 asks the board's other shards how many entries beat the old and new keys.
/// Both ranks in the response are ordinal. A submit with `skipRanks` ends after phase 1, with
/// both ranks 0.
final class SubmitPlan: CallPlan {
    private var callID: UInt64
    private var board: BoardHandle
    private var request: SubmitRequest
    private var shardCount: Int
    private var owner: Int
    private var applied: SubmitOnShard?
    private(set) var outcome: Result<SubmitResponse, Status>?

    init(callID: UInt64, board: BoardHandle, request: SubmitRequest, shardCount: Int) {
        self.callID = callID
        self.board = board
        self.request = request
        self.shardCount = shardCount
        self.owner = board.shard(for: request.playerID, shardCount: shardCount)
    }

    /// Makes a finished plan (see `PlanPool`) a new one.
    func reset(callID: UInt64, board: BoardHandle, request: SubmitRequest, shardCount: Int) {
        self.callID = callID
        self.board = board
        self.request = request
        self.shardCount = shardCount
        self.owner = board.shard(for: request.playerID, shardCount: shardCount)
        applied = nil
        outcome = nil
    }

    func recycle(into pool: PlanPool) { pool.recycle(self) }
    var writesEntries: Bool { true }
    var answersRefusedWrites: Bool { true }

    func advance(_ results: ShardResults) -> PlanStep {
        guard let applied else {
            if results.isEmpty {
                return .runOne(ShardCall(shard: owner, operation: .submit(BoardRef(board), request)))
            }
            switch results.first {
            case .submitted(let onShard):
                self.applied = onShard
                guard board.partitionCount > 1, shardCount > 1, !request.skipRanks else {
                    return finish(onShard, otherCounts: [])
                }
                var keys = CountKeys(onShard.current.key)
                if let previousKey = onShard.previousKey, onShard.keyChanged { keys.append(previousKey) }
                return .runOnEach(.countBetter(BoardRef(board), keys: keys, orEqual: false), shards: 0..<shardCount, skipping: owner)
            case .refused(let status):
                return fail(status)
            default:
                return fail(Status(.internal, "unexpected shard result for submit"))
            }
        }
        return finish(applied, otherCounts: results)
    }

    private func finish(_ applied: SubmitOnShard, otherCounts: ShardResults) -> PlanStep {
        if request.skipRanks {
            let response = SubmitResponse(
                entry: WireEntry(applied.current, rank: 0), previousRank: 0, changed: applied.keyChanged,
                created: applied.created)
            outcome = .success(response)
            return .finished(.ok(callID, .submit(response)))
        }
        var currentBetter = applied.currentLocalBetter
        var previousBetterElsewhere = 0
        for case .counts(let counts) in otherCounts {
            currentBetter += counts.first ?? 0
            if counts.count > 1 { previousBetterElsewhere += counts[1] }
        }
        let rank = UInt64(currentBetter + 1)
        let previousRank: UInt64
        if let local = applied.previousLocalBetter {
            previousRank = applied.keyChanged ? UInt64(local + previousBetterElsewhere + 1) : rank
        } else {
            previousRank = 0
        }
        let response = SubmitResponse(
            entry: WireEntry(applied.current, rank: rank), previousRank: previousRank,
            changed: applied.keyChanged, created: applied.created)
        outcome = .success(response)
        return .finished(.ok(callID, .submit(response)))
    }

    private func fail(_ status: Status) -> PlanStep {
        outcome = .failure(status)
        return .finished(.failure(callID: callID, status))
    }
}

/// A batch of submits: every item advances in the same phases, so a batch of k items costs the
/// same number of hops as one. Items that fail validation are answered without touching a shard.
final class SubmitBatchPlan: CallPlan {
    private let callID: UInt64
    private var items: [Item]

    enum Item {
        case rejected(Status)
        case planned(SubmitPlan, pending: Int)
    }

    init(callID: UInt64, items: [Result<SubmitPlan, Status>]) {
        self.callID = callID
        self.items = items.map {
            switch $0 {
            case .success(let plan): .planned(plan, pending: 0)
            case .failure(let status): .rejected(status)
            }
        }
    }

    private var started = false
    /// The batch's items in its loop's budget (`BatchItemBudget`): given back when the plan is
    /// freed, once nothing of the batch's work is left.
    var budgetTicket: BatchItemTicket?
    var writesEntries: Bool { true }
    var answersRefusedWrites: Bool { true }

    func advance(_ results: ShardResults) -> PlanStep {
        var cursor = 0
        var next: [ShardCall] = []
        for index in items.indices {
            guard case .planned(let plan, let pending) = items[index] else { continue }
            guard plan.outcome == nil else { continue }
            if started && pending == 0 { continue }
            let first = results.startIndex + cursor
            let slice: ShardResults = started ? results[first..<(first + pending)] : []
            cursor += pending
            switch plan.advance(slice) {
            case .finished:
                items[index] = .planned(plan, pending: 0)
            case let step:
                // One operation per item in the first phase, one per other shard in the second
                // (one on two shards; more shards grow it); none once every item is answered.
                if next.capacity == 0 { next.reserveCapacity(items.count) }
                items[index] = .planned(plan, pending: step.appendCalls(to: &next))
            }
        }
        started = true
        if !next.isEmpty { return .run(next) }
        let results = items.map { item -> SubmitResult in
            switch item {
            case .rejected(let status): return SubmitResult(status: status, response: nil)
            case .planned(let plan, _):
                switch plan.outcome {
                case .success(let response): return SubmitResult(status: .ok, response: response)
                case .failure(let status): return SubmitResult(status: status, response: nil)
                case nil: return SubmitResult(status: Status(.internal, "item did not complete"), response: nil)
                }
            }
        }
        return .finished(.ok(callID, .submitBatch(results)))
    }
}
