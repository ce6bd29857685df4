import HiscoreWire
import NIOCore

/// A call handed to the executor, with what the connection decided about it.
struct PlannedCall {
    let callID: UInt64
    let plan: any CallPlan
    /// nil = no deadline.
    let deadline: NIODeadline?
}

/// Runs the calls of read batches across the shards, phase by phase.
///
/// Cost model (why it is shaped like this): on this kind of machine an actor hop to another event
/// loop costs 7-40 us, while a call's work on a shard costs well under 1 us. So the batches a
/// loop reads in one pass over its ready connections are gathered into one round (`CallRound`),
/// the operations of every call in the round are grouped by shard, and each remote shard is
/// reached with one `execute` per phase, carrying all of them; the shard on the loop itself runs
/// its group inline. A round of k calls over S shards costs at most 2 x (S - 1) hops, not
/// 2 x k x S, and a shard prefetches for all of a round's calls at once.
///
/// Allocation model: a round's state (`PhaseRun`: its calls, where each result goes back) and
/// each group's trip to a shard (`ShardTrip`: the operations, the results, the two closures that
/// cross between the loops) come from a pool kept per event loop (`ExecutorPool`) and go back to
/// it, arrays and closures included, when the round ends. A warm loop runs rounds without
/// allocating; a loop that is not a shard's (tests, tools) runs each batch at once, with fresh
/// state.
///
/// Reads spanning shards are not a global snapshot: each shard answers at the moment its group
/// runs, so a rank can miss or include a write that landed microseconds earlier on another shard.
final class BatchExecutor: Sendable {
    let shards: [Shard]
    /// One pool per shard loop, made on first use there (connections run on the shard loops).
    private let pools: [NIOLoopBoundBox<ExecutorPool?>]

    /// Whether answers to writes wait for the group fsync (`fsync` durability; see
    /// `ExecutorPool`): then rounds keep read-only batches apart from batches with writes.
    private let writesWaitForDurability: Bool

    /// Each shard loop's share of `ServerLimits.maxServerInflightBatchItems` (`BatchItemBudget`).
    private let batchItemLimitPerLoop: Int

    /// `maxInflightBatchItems`: submit-batch items in flight over the server, split evenly among
    /// the shard loops (a connection is served by one).
    init(shards: [Shard], writesWaitForDurability: Bool = false, maxInflightBatchItems: Int = .max) {
        self.shards = shards
        self.writesWaitForDurability = writesWaitForDurability
        let loops = max(1, shards.count)
        let total = max(1, maxInflightBatchItems)
        batchItemLimitPerLoop = total / loops + (total % loops == 0 ? 0 : 1)
        pools = shards.map { NIOLoopBoundBox.makeEmptyBox(valueType: ExecutorPool.self, eventLoop: $0.loop) }
    }

    /// Runs `calls` on behalf of a connection on `loop`; `receiver` gets each response on `loop`
    /// (in completion order, not request order) and is told when the batch is done, to flush.
    /// On a shard's loop the batch joins the loop's round and runs once the loop has read its
    /// other ready connections — or at once, inside `run`, when it fills the round
    /// (`ExecutorPool.maxRoundCalls`), answering the round's other receivers' calls too.
    func run(_ calls: [PlannedCall], on loop: any EventLoop, receiver: any BatchReceiver) {
        loop.preconditionInEventLoop()
        if let pool = pool(on: loop) {
            pool.gather(calls, receiver: receiver)
        } else {
            var round = CallRound()
            round.add(calls, receiver: receiver)
            PhaseRun(shards: shards, loop: loop, pool: nil, writesWaitForDurability: writesWaitForDurability).start(&round)
        }
    }

    /// The plan pool of `loop` (a shard's loop; nil for any other), for the router.
    func planPool(on loop: any EventLoop) -> PlanPool? {
        loop.preconditionInEventLoop()
        return pool(on: loop)?.plans
    }

    /// The batch-item budget of `loop` (a shard's loop; nil for any other), for connections.
    func batchItemBudget(on loop: any EventLoop) -> BatchItemBudget? {
        loop.preconditionInEventLoop()
        return pool(on: loop)?.batchItems
    }

    /// Submit-batch items in flight on `loop` (0 off the shard loops), for `/metrics`.
    func batchItemsInFlight(on loop: any EventLoop) -> Int {
        batchItemBudget(on: loop)?.inFlight ?? 0
    }

    /// The executor state of `loop` (a shard's loop; nil for any other), for tests.
    func poolState(on loop: any EventLoop) -> (roundsOut: Int, gatheredCalls: Int)? {
        loop.preconditionInEventLoop()
        return pool(on: loop).map { ($0.roundsOut, $0.gathering.calls.count) }
    }

    private func pool(on loop: any EventLoop) -> ExecutorPool? {
        guard let index = shards.firstIndex(where: { $0.loop === loop }) else { return nil }
        if let pool = pools[index].value { return pool }
        let pool = ExecutorPool(
            shards: shards, loop: loop, writesWaitForDurability: writesWaitForDurability, batchItemLimit: batchItemLimitPerLoop)
        pools[index].value = pool
        return pool
    }
}

extension BatchExecutor {
    /// Delivers a finished call's response, unless it was cancelled or its deadline passed.
    static func conclude(_ call: PlannedCall, _ response: ResponseEnvelope, receiver: any BatchReceiver) {
        guard receiver.isLive(call.callID) else { return }
        if let deadline = call.deadline, deadline < .now() {
            receiver.deliver(.failure(callID: call.callID, Status(.deadlineExceeded, "deadline exceeded")))
        } else {
            receiver.deliver(response)
        }
        receiver.finished(call.plan)
    }

    /// A shut-down event loop, or a log that could not make the writes durable: the call cannot
    /// be answered with a result.
    static func fail(_ call: PlannedCall, _ error: any Error, receiver: any BatchReceiver) {
        guard receiver.isLive(call.callID) else { return }
        receiver.deliver(.failure(callID: call.callID, durabilityFailure(error)))
    }

    /// What a write the shard's log could not make durable is answered.
    static func durabilityFailure(_ error: any Error) -> Status {
        Status(.unavailable, "the write could not be completed durably: \(error)")
    }
}
