import HiscoreWire
import NIOCore

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

/// One batch's calls, phase by phase, on the connection's loop. Allocations per phase are none
/// once warm: operations are grouped into one trip per shard, where each result goes back is
/// one flat array, and each call gets its results as a slice of one gathered array, all of them
/// kept (emptied) for the next batch.
///
/// Loop-confined. While a phase is out, its trips keep it alive (`ShardTrip.owner`); when the
/// batch ends it tells the receiver and goes back to its loop's `ExecutorPool`. A phase can end
/// inside the call that started it (every operation on the connection's own shard), so nothing
/// touches the phase after the call that may finish it.
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
