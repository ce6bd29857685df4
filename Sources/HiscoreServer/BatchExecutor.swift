import HiscoreWire
import NIOCore

/// A call handed to the executor, with what the connection decided about it.
struct PlannedCall {
    let callID: UInt64
    let plan: any CallPlan
    /// nil = no deadline.
    let deadline: NIODeadline?
}

/// Runs the calls of one read batch across the shards, phase by phase.
///
/// Cost model (why it is shaped like this): on this kind of machine an actor hop to another event
/// loop costs 7-40 us, while a call's work on a shard costs well under 1 us. So the operations of
/// every call in the batch are grouped by shard and each remote shard is reached with one
/// `execute` per phase, carrying all of them; the shard on the connection's own loop runs its
/// group inline. A batch of k calls over S shards costs at most 2 x (S - 1) hops, not 2 x k x S.
///
/// Reads spanning shards are not a global snapshot: each shard answers at the moment its group
/// runs, so a rank can miss or include a write that landed microseconds earlier on another shard.
final class BatchExecutor: Sendable {
    let shards: [Shard]

    init(shards: [Shard]) {
        self.shards = shards
    }

    /// Runs `calls` on behalf of a connection on `loop`; `receiver` gets each response on `loop`
    /// (in completion order, not request order) and is told when the batch is done, to flush.
    func run(_ calls: [PlannedCall], on loop: any EventLoop, receiver: any BatchReceiver) {
        loop.preconditionInEventLoop()
        var pending: [PendingCall] = []
        pending.reserveCapacity(calls.count)
        for call in calls {
            switch call.plan.advance([]) {
            case .finished(let response): receiver.deliver(response)
            case let step: pending.append(PendingCall(call: call, step: step))
            }
        }
        runPhase(pending, on: loop, receiver: receiver)
    }

    /// A call and the operations its plan asked for in this phase.
    private struct PendingCall {
        let call: PlannedCall
        /// `.run`, `.runOne` or `.runOnEach`.
        let step: PlanStep

        func forEachOperation(_ body: (Int, ShardOperation) -> Void) {
            switch step {
            case .run(let calls): for call in calls { body(call.shard, call.operation) }
            case .runOne(let call): body(call.shard, call.operation)
            case .runOnEach(let operation, let shards, let skipping):
                for shard in shards where shard != skipping { body(shard, operation) }
            case .finished: break
            }
        }

        /// The step's only operation, when it has exactly one.
        var soleOperation: ShardCall? {
            switch step {
            case .runOne(let call): return call
            case .run(let calls): return calls.count == 1 ? calls[0] : nil
            case .runOnEach(let operation, let shards, let skipping):
                let count = shards.count - (skipping.map { shards.contains($0) ? 1 : 0 } ?? 0)
                guard count == 1, let shard = shards.first(where: { $0 != skipping }) else { return nil }
                return ShardCall(shard: shard, operation: operation)
            case .finished: return nil
            }
        }
    }

    /// Allocations per phase are per batch, not per call: operations are grouped into one array
    /// per shard, where each result goes back is one flat array, and each call gets its results
    /// as a slice of one gathered array. A phase of one call with one operation (what a client
    /// sending one call at a time produces) skips the grouping altogether.
    private func runPhase(_ pending: [PendingCall], on loop: any EventLoop, receiver: any BatchReceiver) {
        let now = NIODeadline.now()
        func wanted(_ item: PendingCall) -> Bool {
            receiver.isLive(item.call.callID) && !(item.call.deadline.map { $0 < now } ?? false)
        }
        var live = pending  // shares pending's storage unless a call dropped out
        if !pending.allSatisfy(wanted) {
            live = []
            for item in pending where receiver.isLive(item.call.callID) {
                if wanted(item) {
                    live.append(item)
                } else {
                    receiver.deliver(.failure(callID: item.call.callID, Status(.deadlineExceeded, "deadline exceeded")))
                }
            }
        }
        guard !live.isEmpty else {
            receiver.finishedBatch()
            return
        }
        if live.count == 1, let sole = live[0].soleOperation {
            runAlone(live[0].call, sole, on: loop, receiver: receiver)
            return
        }

        // Group every operation by shard; remember where each result goes back: call i's results
        // are placement[callStarts[i] ..< callStarts[i + 1]].
        var operationsByShard = [[ShardOperation]](repeating: [], count: shards.count)
        for index in operationsByShard.indices { operationsByShard[index].reserveCapacity(live.count) }
        var placement: [(shard: Int, position: Int)] = []
        placement.reserveCapacity(live.count * min(shards.count, 4))
        var callStarts: [Int] = []
        callStarts.reserveCapacity(live.count + 1)
        for item in live {
            callStarts.append(placement.count)
            item.forEachOperation { shard, operation in
                placement.append((shard, operationsByShard[shard].count))
                operationsByShard[shard].append(operation)
            }
        }
        callStarts.append(placement.count)

        // Every group reports back: at once, or (fsync mode, writes in the group) after the group
        // fsync that makes its writes durable — answers never precede durability. No futures: a
        // phase allocates one collector and a few closures per remote shard, whatever the calls.
        let groups = operationsByShard.reduce(0) { $0 + ($1.isEmpty ? 0 : 1) }
        let collector = PhaseCollector(shardCount: shards.count, groups: groups) { collector in
            if let error = collector.failure {
                for item in live { Self.fail(item.call, error, receiver: receiver) }
                receiver.finishedBatch()
                return
            }
            let resultsByShard = collector.resultsByShard
            var gathered: [ShardResult] = []
            gathered.reserveCapacity(placement.count)
            for place in placement { gathered.append(resultsByShard[place.shard][place.position]) }
            var next: [PendingCall] = []
            for (callIndex, item) in live.enumerated() {
                let call = item.call
                switch call.plan.advance(gathered[callStarts[callIndex]..<callStarts[callIndex + 1]]) {
                case .finished(let response):
                    Self.conclude(call, response, receiver: receiver)
                case let step:
                    if next.isEmpty { next.reserveCapacity(live.count - callIndex) }
                    next.append(PendingCall(call: call, step: step))
                }
            }
            if next.isEmpty {
                receiver.finishedBatch()
            } else {
                self.runPhase(next, on: loop, receiver: receiver)
            }
        }
        let bound = NIOLoopBound(collector, eventLoop: loop)
        for (index, operations) in operationsByShard.enumerated() where !operations.isEmpty {
            dispatch(operations, toShard: index, from: loop) { bound.value.receive(shard: index, $0) }
        }
        if groups == 0 { collector.finishIfComplete() }
    }

    /// One call's one operation: straight to its shard and back, no grouping, no collector.
    private func runAlone(_ call: PlannedCall, _ sole: ShardCall, on loop: any EventLoop, receiver: any BatchReceiver) {
        let continuation = NIOLoopBound({ (result: Result<[ShardResult], any Error>) in
            switch result {
            case .failure(let error):
                Self.fail(call, error, receiver: receiver)
                receiver.finishedBatch()
            case .success(let results):
                switch call.plan.advance(results[...]) {
                case .finished(let response):
                    Self.conclude(call, response, receiver: receiver)
                    receiver.finishedBatch()
                case let step:
                    self.runPhase([PendingCall(call: call, step: step)], on: loop, receiver: receiver)
                }
            }
        }, eventLoop: loop)
        dispatch([sole.operation], toShard: sole.shard, from: loop) { continuation.value($0) }
    }

    /// Runs `operations` on shard `index` — inline when it lives on `loop`, else with one hop —
    /// and calls `completion` back on `loop` once they are as durable as the mode promises.
    private func dispatch(
        _ operations: [ShardOperation], toShard index: Int, from loop: any EventLoop,
        completion: @escaping @Sendable (Result<[ShardResult], any Error>) -> Void
    ) {
        let shard = shards[index]
        if shard.loop === loop {
            shard.assumeIsolated {
                $0.executeDurably(operations) { result in
                    if loop.inEventLoop { completion(result) } else { loop.execute { completion(result) } }
                }
            }
        } else {
            shard.loop.execute {
                shard.assumeIsolated { $0.executeDurably(operations) { result in loop.execute { completion(result) } } }
            }
        }
    }

    /// Delivers a finished call's response, unless it was cancelled or its deadline passed.
    private static func conclude(_ call: PlannedCall, _ response: ResponseEnvelope, receiver: any BatchReceiver) {
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
    private static func fail(_ call: PlannedCall, _ error: any Error, receiver: any BatchReceiver) {
        guard receiver.isLive(call.callID) else { return }
        receiver.deliver(.failure(callID: call.callID, Status(.unavailable, "the write could not be completed durably: \(error)")))
    }
}

/// One phase's results, collected on the connection's loop as each shard group reports back;
/// runs `finish` once, when the last group arrived (or at once for a phase with no operations).
/// Touched only on that loop (reached from other loops through `NIOLoopBound`).
private final class PhaseCollector {
    private(set) var resultsByShard: [[ShardResult]]
    private(set) var failure: (any Error)?
    private var remaining: Int
    private var finish: ((PhaseCollector) -> Void)?

    init(shardCount: Int, groups: Int, finish: @escaping (PhaseCollector) -> Void) {
        resultsByShard = [[ShardResult]](repeating: [], count: shardCount)
        remaining = groups
        self.finish = finish
    }

    func receive(shard: Int, _ result: Result<[ShardResult], any Error>) {
        switch result {
        case .success(let results): resultsByShard[shard] = results
        case .failure(let error): failure = failure ?? error
        }
        remaining -= 1
        finishIfComplete()
    }

    func finishIfComplete() {
        guard remaining <= 0, let finish else { return }
        self.finish = nil  // also breaks the cycle through the closure's captures
        finish(self)
    }
}
