import HiscoreWire

/// A call split into phases of shard operations. The executor asks the plan for its operations,
/// runs them (grouped with every other call's operations bound to the same shard), hands back the
/// results in the order asked, and repeats until the plan answers. Reads that span shards need
/// at most two phases: find the player's key on its owner, then count around that key everywhere.
protocol CallPlan: AnyObject {
    /// `results` answers the operations of the previous step, in the order asked (empty on the
    /// first call). It is a slice of the phase's results: index it from `results.startIndex`.
    func advance(_ results: ShardResults) -> PlanStep
    /// Hands the finished plan to `pool` for reuse, if its kind is pooled.
    func recycle(into pool: PlanPool)
    /// Whether the call writes entries (its answer then waits for durability in `fsync` mode).
    var writesEntries: Bool { get }
    /// Whether a write of its that a shard's failed log refused may reach `advance` as that
    /// operation's `.refused(UNAVAILABLE)` result, rather than failing the whole call: a batch
    /// then answers each item, so a client retries only the refused ones (items applied on a
    /// healthy shard must not be retried: an `increment` would count twice).
    var answersRefusedWrites: Bool { get }
}

extension CallPlan {
    func recycle(into pool: PlanPool) {}
    var writesEntries: Bool { false }
    var answersRefusedWrites: Bool { false }
}

/// The results a plan receives: a view into the executor's per-phase array, so handing each call
/// its results allocates nothing.
typealias ShardResults = ArraySlice<ShardResult>

enum PlanStep {
    case run([ShardCall])
    /// One operation on one shard (a player's owner): no array to allocate.
    case runOne(ShardCall)
    /// The same operation on every shard in `shards` except `skipping` (the results come in shard
    /// order): what a count around a key on "every other shard" needs, without an array.
    case runOnEach(ShardOperation, shards: Range<Int>, skipping: Int?)
    case finished(ResponseEnvelope)

    /// Appends the operations to `list` (for callers that collect them: batches of submits) and
    /// returns how many: no array of its own per step (a batch of 1,000 submits made 1,000 of
    /// them per phase, and grew its list through every doubling).
    func appendCalls(to list: inout [ShardCall]) -> Int {
        switch self {
        case .run(let calls):
            list.append(contentsOf: calls)
            return calls.count
        case .runOne(let call):
            list.append(call)
            return 1
        case .runOnEach(let operation, let shards, let skipping):
            var added = 0
            for shard in shards where shard != skipping {
                list.append(ShardCall(shard: shard, operation: operation))
                added += 1
            }
            return added
        case .finished:
            return 0
        }
    }
}

struct ShardCall: Sendable {
    var shard: Int
    var operation: ShardOperation
}

extension ResponseEnvelope {
    static func ok(_ callID: UInt64, _ result: ResponseResult) -> ResponseEnvelope {
        ResponseEnvelope(callID: callID, status: nil, result: result)
    }
}
