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
/// Allocation model: a batch's state (`PhaseRun`: its calls, where each result goes back) and
/// each group's trip to a shard (`ShardTrip`: the operations, the results, the two closures that
/// cross between the loops) come from a pool kept per event loop (`ExecutorPool`) and go back to
/// it, arrays and closures included, when the batch ends. A warm loop runs batches without
/// allocating; a loop that is not a shard's (tests, tools) gets fresh ones each time.
///
/// Reads spanning shards are not a global snapshot: each shard answers at the moment its group
/// runs, so a rank can miss or include a write that landed microseconds earlier on another shard.
final class BatchExecutor: Sendable {
    let shards: [Shard]
    /// One pool per shard loop, made on first use there (connections run on the shard loops).
    private let pools: [NIOLoopBoundBox<ExecutorPool?>]

    init(shards: [Shard]) {
        self.shards = shards
        pools = shards.map { NIOLoopBoundBox.makeEmptyBox(valueType: ExecutorPool.self, eventLoop: $0.loop) }
    }

    /// Runs `calls` on behalf of a connection on `loop`; `receiver` gets each response on `loop`
    /// (in completion order, not request order) and is told when the batch is done, to flush.
    func run(_ calls: [PlannedCall], on loop: any EventLoop, receiver: any BatchReceiver) {
        loop.preconditionInEventLoop()
        let pool = pool(on: loop)
        let phase = pool?.takePhase() ?? PhaseRun(shards: shards, loop: loop, pool: nil)
        phase.start(calls, receiver: receiver)
    }

    private func pool(on loop: any EventLoop) -> ExecutorPool? {
        guard let index = shards.firstIndex(where: { $0.loop === loop }) else { return nil }
        if let pool = pools[index].value { return pool }
        let pool = ExecutorPool(shards: shards, loop: loop)
        pools[index].value = pool
        return pool
    }
}

/// A call and the operations its plan asked for in this phase.
struct PendingCall {
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
}

/// The finished phase runs and shard trips of one event loop, handed out again to its next
/// batches. Loop-confined. Bounded: at most `capacity` of each, and a pooled one keeps arrays of
/// at most `keptElements` (a bigger batch's arrays are freed when it ends).
final class ExecutorPool {
    /// Phase runs, and trips per shard, a loop keeps: about one per connection with a batch in
    /// flight on the loop.
    static let capacity = 64
    /// Largest array (calls of a batch, operations or results of a trip) a pooled object keeps.
    static let keptElements = 64

    private let shards: [Shard]
    private let loop: any EventLoop
    private var phases: [PhaseRun] = []
    private var trips: [[ShardTrip]]

    init(shards: [Shard], loop: any EventLoop) {
        self.shards = shards
        self.loop = loop
        trips = shards.map { _ in [] }
    }

    func takePhase() -> PhaseRun {
        phases.popLast() ?? PhaseRun(shards: shards, loop: loop, pool: self)
    }

    func give(_ phase: PhaseRun) {
        if phases.count < Self.capacity { phases.append(phase) }
    }

    func takeTrip(toShard index: Int) -> ShardTrip {
        trips[index].popLast() ?? ShardTrip(shard: shards[index], origin: loop)
    }

    func give(_ trip: ShardTrip) {
        if trips[trip.shard.index].count < Self.capacity { trips[trip.shard.index].append(trip) }
    }
}

/// One phase's operations for one shard, carried to the shard's loop and back with their results.
///
/// Sendable by hand-off, not by locking: the origin loop fills `operations` and then `execute`s
/// `travel` on the shard's loop; the shard writes `results` and `failure` and then `execute`s
/// `arrive` on the origin loop. Each side touches the trip only between those two hand-offs, and
/// `execute` orders them. The two closures are made once per trip, so a trip allocates nothing.
final class ShardTrip: @unchecked Sendable {
    let shard: Shard
    let origin: any EventLoop
    var operations: [ShardOperation] = []
    var results: [ShardResult] = []
    var failure: (any Error)?
    /// The phase waiting for this trip; set while the trip is out (it keeps the phase alive).
    var owner: PhaseRun?

    private lazy var travel: @Sendable () -> Void = { [unowned self] in self.shard.execute(self) }
    private lazy var arrive: @Sendable () -> Void = { [unowned self] in self.arrived() }

    init(shard: Shard, origin: any EventLoop) {
        self.shard = shard
        self.origin = origin
    }

    /// Runs the operations on the shard: inline when it lives on the origin loop, else one hop.
    func depart() {
        if shard.loop === origin {
            shard.execute(self)
        } else {
            shard.loop.execute(travel)
        }
    }

    /// Called by the shard once the results are in and as durable as the mode promises.
    func complete(failure: (any Error)?) {
        self.failure = failure
        if origin.inEventLoop { arrived() } else { origin.execute(arrive) }
    }

    private func arrived() {
        let phase = owner
        owner = nil
        phase?.tripArrived()
    }

    /// Empties the trip for reuse, freeing arrays a large batch grew.
    func clear() {
        if operations.capacity > ExecutorPool.keptElements { operations = [] } else { operations.removeAll(keepingCapacity: true) }
        if results.capacity > ExecutorPool.keptElements { results = [] } else { results.removeAll(keepingCapacity: true) }
        failure = nil
    }
}

/// One batch's calls, phase by phase, on the connection's loop. Allocations per phase are none
/// once warm: operations are grouped into one trip per shard, where each result goes back is
/// one flat array, and each call gets its results as a slice of one gathered array.
final class PhaseRun {
    private let shards: [Shard]
    private let loop: any EventLoop
    private weak var pool: ExecutorPool?
    private var receiver: (any BatchReceiver)?
    private var live: [PendingCall] = []
    private var next: [PendingCall] = []
    /// Call i's results are at placement[callStarts[i] ..< callStarts[i + 1]]: a shard and a
    /// position in that shard's trip.
    private var placement: [(shard: Int, position: Int)] = []
    private var callStarts: [Int] = []
    private var gathered: [ShardResult] = []
    /// This phase's trip per shard (nil: no operation for that shard).
    private var trips: [ShardTrip?]
    private var outstanding = 0

    init(shards: [Shard], loop: any EventLoop, pool: ExecutorPool?) {
        self.shards = shards
        self.loop = loop
        self.pool = pool
        trips = Array(repeating: nil, count: shards.count)
    }

    func start(_ calls: [PlannedCall], receiver: any BatchReceiver) {
        self.receiver = receiver
        for call in calls {
            switch call.plan.advance([]) {
            case .finished(let response): receiver.deliver(response)
            case let step: live.append(PendingCall(call: call, step: step))
            }
        }
        runPhase(receiver)
    }

    private func runPhase(_ receiver: any BatchReceiver) {
        // Drop cancelled calls and answer expired ones, keeping the rest in order.
        let now = NIODeadline.now()
        var kept = 0
        for index in live.indices {
            let call = live[index].call
            guard receiver.isLive(call.callID) else { continue }
            if let deadline = call.deadline, deadline < now {
                receiver.deliver(.failure(callID: call.callID, Status(.deadlineExceeded, "deadline exceeded")))
                continue
            }
            if kept != index { live[kept] = live[index] }
            kept += 1
        }
        live.removeLast(live.count - kept)
        guard !live.isEmpty else { return finishBatch(receiver) }

        for item in live {
            callStarts.append(placement.count)
            item.forEachOperation { shard, operation in
                let trip = trips[shard] ?? takeTrip(toShard: shard)
                placement.append((shard, trip.operations.count))
                trip.operations.append(operation)
            }
        }
        callStarts.append(placement.count)

        // Every trip reports back: at once, or (fsync mode, writes in the group) after the group
        // fsync that makes its writes durable — answers never precede durability. Remote trips
        // leave first; the inline one (if any) goes last, as it may finish the phase at once.
        outstanding = trips.reduce(0) { $0 + ($1 == nil ? 0 : 1) }
        guard outstanding > 0 else { return finishPhase() }
        var inline: ShardTrip?
        for trip in trips {
            guard let trip else { continue }
            trip.owner = self
            if trip.shard.loop === loop { inline = trip } else { trip.depart() }
        }
        inline?.depart()
    }

    private func takeTrip(toShard shard: Int) -> ShardTrip {
        let trip = pool?.takeTrip(toShard: shard) ?? ShardTrip(shard: shards[shard], origin: loop)
        trips[shard] = trip
        return trip
    }

    func tripArrived() {
        outstanding -= 1
        if outstanding == 0 { finishPhase() }
    }

    private func finishPhase() {
        guard let receiver else { return }
        var failure: (any Error)?
        for trip in trips { if let error = trip?.failure { failure = failure ?? error } }
        if let failure {
            for item in live { BatchExecutor.fail(item.call, failure, receiver: receiver) }
            return finishBatch(receiver)
        }
        for place in placement {
            guard let trip = trips[place.shard] else { continue }
            gathered.append(trip.results[place.position])
        }
        for index in live.indices {
            let call = live[index].call
            switch call.plan.advance(gathered[callStarts[index]..<callStarts[index + 1]]) {
            case .finished(let response):
                BatchExecutor.conclude(call, response, receiver: receiver)
            case let step:
                next.append(PendingCall(call: call, step: step))
            }
        }
        returnTrips()
        placement.removeAll(keepingCapacity: true)
        callStarts.removeAll(keepingCapacity: true)
        gathered.removeAll(keepingCapacity: true)
        swap(&live, &next)
        next.removeAll(keepingCapacity: true)
        if live.isEmpty { finishBatch(receiver) } else { runPhase(receiver) }
    }

    private func returnTrips() {
        for index in trips.indices {
            guard let trip = trips[index] else { continue }
            trips[index] = nil
            trip.clear()
            pool?.give(trip)
        }
    }

    /// Tells the receiver, and goes back to the pool emptied.
    private func finishBatch(_ receiver: any BatchReceiver) {
        returnTrips()
        self.receiver = nil
        live.removeAll(keepingCapacity: live.capacity <= ExecutorPool.keptElements)
        next.removeAll(keepingCapacity: next.capacity <= ExecutorPool.keptElements)
        placement.removeAll(keepingCapacity: placement.capacity <= 4 * ExecutorPool.keptElements)
        callStarts.removeAll(keepingCapacity: callStarts.capacity <= ExecutorPool.keptElements)
        gathered.removeAll(keepingCapacity: gathered.capacity <= 4 * ExecutorPool.keptElements)
        outstanding = 0
        receiver.finishedBatch()
        pool?.give(self)
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
        receiver.deliver(.failure(callID: call.callID, Status(.unavailable, "the write could not be completed durably: \(error)")))
    }
}
