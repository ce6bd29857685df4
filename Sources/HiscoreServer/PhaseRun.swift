import HiscoreWire
import NIOCore

/// A call and the operations its plan asked for in this phase.
struct PendingCall {
    let call: PlannedCall
    /// `.run`, `.runOne` or `.runOnEach`; replaced in place as the call moves to its next phase.
    var step: PlanStep
    /// Where its answer goes: an index into the phase run's receivers.
    let receiver: Int
    /// Sits this phase out: a local-first phase runs without it (`PhaseRun.markLocalFirst`).
    var waits = false

    /// Whether every operation of the step is for `shard` (vacuously, a step without any).
    func runsOnlyOn(_ shard: Int) -> Bool {
        switch step {
        case .run(let calls): calls.allSatisfy { $0.shard == shard }
        case .runOne(let call): call.shard == shard
        case .runOnEach(_, let shards, let skipping): shards.allSatisfy { $0 == shard || $0 == skipping }
        case .finished: true
        }
    }

    /// Whether any operation of the step is for `shard`.
    func touches(_ shard: Int) -> Bool {
        switch step {
        case .run(let calls): calls.contains { $0.shard == shard }
        case .runOne(let call): call.shard == shard
        case .runOnEach(_, let shards, let skipping): shards.contains(shard) && shard != skipping
        case .finished: false
        }
    }

    /// Whether any operation of the step waits, in fsync mode, for the shard's writes to be
    /// durable before it is answered (`ShardOperation.answersAfterEarlierWrites`).
    var waitsForDurableWrites: Bool {
        switch step {
        case .run(let calls): calls.contains { $0.operation.answersAfterEarlierWrites }
        case .runOne(let call): call.operation.answersAfterEarlierWrites
        case .runOnEach(let operation, _, _): operation.answersAfterEarlierWrites
        case .finished: false
        }
    }

    /// Hands the step's operations to `body` and leaves the step empty (`.run([])`): nothing
    /// reads a step once its operations are in the trips (the plan's next step replaces it), so
    /// each operation is moved into its trip rather than copied (a copy retains what it holds,
    /// and the step's destruction then releases it).
    mutating func takeOperations(_ body: (Int, consuming ShardOperation) -> Void) {
        let taken = step
        step = .run([])
        switch consume taken {
        case .run(let calls): for call in calls { body(call.shard, call.operation) }
        case .runOne(let call): body(call.shard, call.operation)
        case .runOnEach(let operation, let shards, let skipping):
            for shard in shards where shard != skipping { body(shard, operation) }
        case .finished: break
        }
    }
}

/// One round's calls (`CallRound`: the read batches of one or more connections), phase by phase,
/// on their loop. Allocations per phase are none once warm: operations are grouped into one trip
/// per shard, where each result goes back is one flat array, and each call gets its results as a
/// slice of one gathered array, all of them kept (emptied) for the next round.
///
/// Each receiver is told its batch is done (`finishedBatch`, which flushes its connection) as
/// soon as its own last call is answered, not when the whole round ends.
///
/// Loop-confined. While a phase is out, its trips keep it alive (`ShardTrip.owner`); when the
/// round ends it goes back to its loop's `ExecutorPool`. A round can end inside the call that
/// started it (every operation on the loop's own shard), so nothing touches the phase run after
/// the call that may finish it.
final class PhaseRun {
    private let shards: [Shard]
    private let loop: any EventLoop
    private weak var pool: ExecutorPool?
    private var round = CallRound()
    /// Per receiver of the round: its calls not yet answered or dropped.
    private var unanswered: [Int] = []
    private var live: [PendingCall] = []
    /// Call i's results are at placement[callStarts[i] ..< callStarts[i + 1]]: a shard and a
    /// position in that shard's trip.
    private var placement: [(shard: Int, position: Int)] = []
    private var callStarts: [Int] = []
    private var gathered: [ShardResult] = []
    /// Operations per shard of one large step (`presizeTrips`).
    private var tripSizes: [Int] = []
    /// Steps with more operations than this size their trips first.
    private static let presizeThreshold = 32
    /// This phase's trip per shard (nil: no operation for that shard).
    private var trips: [ShardTrip?]
    /// This phase's operations per shard, gathered here and handed to each shard's trip once,
    /// as it leaves: a trip goes to another loop and back, and retaining it for every operation
    /// appended wrote to a cache line that loop had just used (~4% of a two-shard rank's server
    /// CPU under perf). Kept, emptied, from phase to phase: each swaps buffers with its trip.
    private var outgoing: [[ShardOperation]]
    /// The same the other way: each trip's results, taken out of it once when the phase ends.
    private var incoming: [[ShardResult]]
    private var outstanding = 0
    private var running = false
    /// The shard on this run's own loop, whose trips run inline (nil: none lives here).
    private let localShard: Int?
    /// fsync mode: a trip with writes reports back after a group fsync, not within `depart`.
    private let writesWaitForDurability: Bool
    /// Whether the pool counts this round among its rounds out (`ExecutorPool.maxRoundsOut`).
    private var counted = false

    init(shards: [Shard], loop: any EventLoop, pool: ExecutorPool?, writesWaitForDurability: Bool) {
        self.shards = shards
        self.writesWaitForDurability = writesWaitForDurability
        self.loop = loop
        self.pool = pool
        localShard = shards.firstIndex { $0.loop === loop }
        trips = Array(repeating: nil, count: shards.count)
        outgoing = Array(repeating: [], count: shards.count)
        incoming = Array(repeating: [], count: shards.count)
    }

    /// Runs `round`'s calls (`take`, then `run`).
    func start(_ round: inout CallRound) {
        take(&round)
        run(counted: false)
    }

    /// Takes `round`'s contents: `round` is left empty, its arrays swapped with this run's
    /// emptied ones, so a warm loop allocates none.
    func take(_ round: inout CallRound) {
        assert(!running, "a phase run runs one round at a time")
        swap(&self.round, &round)
    }

    /// Runs the round taken; `counted`: the pool counts it among its rounds out.
    func run(counted: Bool) {
        assert(!running, "a phase run runs one round at a time")
        running = true
        self.counted = counted
        // One allocation (at most) per array for a round bigger than any this run has held,
        // rather than a doubling per array: a loop's pooled runs see rounds of every size.
        let calls = self.round.calls.count
        live.reserveCapacity(calls)
        callStarts.reserveCapacity(calls + 1)
        placement.reserveCapacity(calls * 2)
        gathered.reserveCapacity(calls * 2)
        unanswered.removeAll(keepingCapacity: true)
        unanswered.reserveCapacity(self.round.receivers.count)
        for _ in self.round.receivers { unanswered.append(0) }
        for receiver in self.round.receiverOfCall { unanswered[receiver] += 1 }
        for (index, call) in self.round.calls.enumerated() {
            let receiver = self.round.receiverOfCall[index]
            switch call.plan.advance([]) {
            case .finished(let response):
                // Answered without a shard (a cached top, an empty id list, a bad cursor): the
                // deadline is still checked before answering, as for every other call.
                if let deadline = call.deadline, deadline < .now() {
                    self.round.receivers[receiver].deliver(
                        .failure(callID: call.callID, Status(.deadlineExceeded, "deadline exceeded")))
                } else {
                    self.round.receivers[receiver].deliver(response)
                }
                self.round.receivers[receiver].finished(call.plan)
                unanswered[receiver] -= 1
            case let step: live.append(PendingCall(call: call, step: step, receiver: receiver))
            }
        }
        // Receivers with nothing left to wait for (every call answered at once, or none).
        for receiver in unanswered.indices where unanswered[receiver] == 0 {
            self.round.receivers[receiver].finishedBatch()
        }
        runPhase()
    }

    /// A call of `receiver` is answered or dropped; the receiver hears once all of its calls are.
    private func settled(receiver: Int) {
        unanswered[receiver] -= 1
        if unanswered[receiver] == 0 { round.receivers[receiver].finishedBatch() }
    }

    /// (Loops below read `live[index]` in place rather than copying each `PendingCall`: a copy
    /// retains and releases every reference its plan step holds.)
    private func runPhase() {
        // Drop cancelled calls and answer expired ones, keeping the rest in order.
        let now = NIODeadline.now()
        var kept = 0
        for index in live.indices {
            let callID = live[index].call.callID
            let receiverIndex = live[index].receiver
            let receiver = round.receivers[receiverIndex]
            guard receiver.isLive(callID) else {
                settled(receiver: receiverIndex)
                continue
            }
            if let deadline = live[index].call.deadline, deadline < now {
                receiver.deliver(.failure(callID: callID, Status(.deadlineExceeded, "deadline exceeded")))
                settled(receiver: receiverIndex)
                continue
            }
            if kept != index { live.swapAt(kept, index) }
            kept += 1
        }
        live.removeLast(live.count - kept)
        guard !live.isEmpty else { return finishRound() }

        markLocalFirst()
        presizeTrips()
        // Walked as a local: an element of a class's array property, with a closure that may
        // touch the class, is copied whole before each call (retaining its plan and step).
        var pending: [PendingCall] = []
        swap(&pending, &live)
        for index in pending.indices {
            callStarts.append(placement.count)
            guard !pending[index].waits else { continue }
            pending[index].takeOperations { shard, operation in
                placement.append((shard, outgoing[shard].count))
                outgoing[shard].append(operation)
            }
        }
        swap(&pending, &live)
        callStarts.append(placement.count)
        for shard in outgoing.indices where !outgoing[shard].isEmpty {
            assert(trips[shard] == nil, "a trip left over from the last phase")
            swap(&takeTrip(toShard: shard).operations, &outgoing[shard])
        }

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

    /// Local first. A phase waits for its slowest trip, and a trip to another loop costs a
    /// wake-up there and one back here (7-40 us on this kind of machine, against well under 1 us
    /// of work per call). In lockstep, a get_rank or a submit on a board over two shards makes
    /// two such round trips per round: phase 1 reaches the owners (the other loop, for half the
    /// calls), phase 2 counts on the non-owners (the other loop, for the other half). So when
    /// some calls need only this loop's shard and others wait for another loop, the first run
    /// alone, inline, first: their next steps (the counts on the other shard) then leave in the
    /// same trip as the other calls' first, one round trip per round instead of two. Measured:
    /// docs/benchmarks.md §2, "Twenty-fourth session".
    ///
    /// Order: a shard runs a round's operations in the order of the round's calls, as before.
    /// A call goes first only if no earlier call that sits the pass out has an operation on this
    /// shard; the calls that go first all precede, in the round, every waiting call with an
    /// operation here. Writes go first only where this shard answers them at once (not behind a
    /// group fsync, which the waiting calls would wait for too).
    ///
    /// Cost: one pass over the live calls' steps per phase.
    private func markLocalFirst() {
        guard let local = localShard else { return }
        Self.markLocalFirst(&live, localShard: local, writesWaitForDurability: writesWaitForDurability)
    }

    /// `markLocalFirst` on `calls`: sets `waits` on every call that sits the local pass out, or
    /// on none when there is no such pass to make.
    static func markLocalFirst(_ calls: inout [PendingCall], localShard local: Int, writesWaitForDurability: Bool) {
        var first = 0
        var waitsForOtherLoop = false
        var blocked = false
        for index in calls.indices {
            let onlyLocal = calls[index].runsOnlyOn(local)
            if !blocked && onlyLocal && !(writesWaitForDurability && calls[index].waitsForDurableWrites) {
                first += 1
                continue
            }
            calls[index].waits = true
            if !onlyLocal { waitsForOtherLoop = true }
            if calls[index].touches(local) { blocked = true }
        }
        // Without calls for both, this phase is the one every call takes part in.
        guard first == 0 || !waitsForOtherLoop else { return }
        for index in calls.indices { calls[index].waits = false }
    }

    /// A batch's step holds up to thousands of operations: sizing the trips for them first spares
    /// their arrays a growth through every doubling (pooled trips keep arrays of up to
    /// `ExecutorPool`'s bound only). A preload of 1M players in batches of 1,000 grew ~2 GB of
    /// arrays of 100 KB and up (uprobe on `malloc`).
    ///
    /// One pass over the phase's steps, counting only the large ones: all of a phase's large
    /// steps are reserved for at once (a reserve per step would copy the trip once per step).
    private func presizeTrips() {
        var large = 0
        for index in live.indices where !live[index].waits {
            guard case .run(let calls) = live[index].step, calls.count > Self.presizeThreshold else { continue }
            if large == 0 {
                tripSizes.removeAll(keepingCapacity: true)
                tripSizes.append(contentsOf: repeatElement(0, count: shards.count))
            }
            for call in calls { tripSizes[call.shard] += 1 }
            large += calls.count
        }
        guard large > 0 else { return }
        for shard in tripSizes.indices where tripSizes[shard] > 0 {
            outgoing[shard].reserveCapacity(tripSizes[shard] + live.count)
        }
        placement.reserveCapacity(large + live.count)
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

    /// A trip that failed (its shard's log could not make its writes durable) fails the calls
    /// that write and had an operation in it, and only those: the round's other calls go on. A
    /// call that only reads keeps its answer, which the shard computed before the log failed
    /// (reads go on while the log refuses writes, as the shard's error line tells operators). A
    /// call that answers refused writes itself (`CallPlan.answersRefusedWrites`: a submit batch)
    /// gets each refused write as its `.refused(UNAVAILABLE)` result and answers item by item.
    private func finishPhase() {
        var anyFailed = false
        for shard in trips.indices {
            guard let trip = trips[shard] else { continue }
            swap(&incoming[shard], &trip.results)
            if trip.failure != nil { anyFailed = true }
        }
        gathered.reserveCapacity(gathered.count + placement.count)
        for place in placement {
            guard place.position < incoming[place.shard].count else {
                gathered.append(.count(0))  // never read: its call fails below
                continue
            }
            if anyFailed, let trip = trips[place.shard], let failure = trip.failure,
                trip.operations[place.position].answersAfterEarlierWrites
            {
                gathered.append(.refused(BatchExecutor.durabilityFailure(failure)))
            } else {
                gathered.append(incoming[place.shard][place.position])
            }
        }
        // Calls that go on keep their place in `live` with their next step (moved down over the
        // answered ones, as `runPhase` does): a copy of a pending call would retain and release
        // everything its plan holds.
        var kept = 0
        for index in live.indices {
            if live[index].waits {
                // Sat out a local-first phase: its step is still to run.
                live[index].waits = false
                if kept != index { live.swapAt(kept, index) }
                kept += 1
                continue
            }
            let receiverIndex = live[index].receiver
            if anyFailed, let failure = failure(ofCallAt: index) {
                BatchExecutor.fail(live[index].call, failure, receiver: round.receivers[receiverIndex])
                settled(receiver: receiverIndex)
                continue
            }
            switch live[index].call.plan.advance(gathered[callStarts[index]..<callStarts[index + 1]]) {
            case .finished(let response):
                BatchExecutor.conclude(live[index].call, response, receiver: round.receivers[receiverIndex])
                settled(receiver: receiverIndex)
            case let step:
                live[index].step = step
                if kept != index { live.swapAt(kept, index) }
                kept += 1
            }
        }
        live.removeLast(live.count - kept)
        returnTrips()
        for shard in incoming.indices where !incoming[shard].isEmpty {
            incoming[shard].removeAll(keepingCapacity: incoming[shard].capacity <= ExecutorPool.keptElements)
        }
        placement.removeAll(keepingCapacity: true)
        callStarts.removeAll(keepingCapacity: true)
        gathered.removeAll(keepingCapacity: true)
        if live.isEmpty { finishRound() } else { runPhase() }
    }

    /// The failure of a trip that carried one of live call `index`'s operations, if that call
    /// writes (and does not answer refused writes itself) or the trip holds no result for its
    /// operation; nil otherwise.
    private func failure(ofCallAt index: Int) -> (any Error)? {
        let plan = live[index].call.plan
        let failsWhole = plan.writesEntries && !plan.answersRefusedWrites
        for place in placement[callStarts[index]..<callStarts[index + 1]] {
            guard let trip = trips[place.shard], let failure = trip.failure else { continue }
            if failsWhole || place.position >= incoming[place.shard].count { return failure }
        }
        return nil
    }

    private func returnTrips() {
        for index in trips.indices {
            guard let trip = trips[index] else { continue }
            trips[index] = nil
            trip.clear()
            pool?.give(trip)
        }
    }

    /// Every receiver has heard (`settled`); the run goes back to the pool emptied.
    private func finishRound() {
        assert(unanswered.allSatisfy { $0 == 0 }, "a receiver was not told its batch ended")
        returnTrips()
        let kept = ExecutorPool.keptElements
        round.removeAll(keptElements: kept)
        live.removeAll(keepingCapacity: live.capacity <= kept)
        placement.removeAll(keepingCapacity: placement.capacity <= 4 * kept)
        callStarts.removeAll(keepingCapacity: callStarts.capacity <= kept)
        gathered.removeAll(keepingCapacity: gathered.capacity <= 4 * kept)
        unanswered.removeAll(keepingCapacity: unanswered.capacity <= kept)
        outstanding = 0
        running = false
        let pool = pool
        pool?.give(self)
        pool?.roundEnded(counted: counted)
    }
}
