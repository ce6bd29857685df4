import NIOCore

/// One event loop's executor state: the round of read batches being gathered (`CallRound`), and
/// the finished phase runs, shard trips and call plans handed out again to its next rounds.
/// Loop-confined. Bounded: at most `capacity` of each, a pooled one keeps arrays of at most
/// `keptElements` (a bigger round's arrays are freed when it ends), and a round starts at once
/// when it reaches `maxRoundCalls`.
final class ExecutorPool {
    /// Phase runs, and trips per shard, a loop keeps: one per round in flight. A round waits for
    /// remote shards while the loop's next passes start theirs: at one call in flight per
    /// connection a loop can have about one small round per connection out.
    static let capacity = 64
    /// Largest array (calls of a round, operations or results of a trip) a pooled object keeps:
    /// a round of `maxRoundCalls`, or one read batch of up to the default in-flight limit
    /// (`ServerLimits.maxInflightCalls`, 256), runs on kept arrays.
    static let keptElements = 2 * maxRoundCalls
    /// A round with this many calls starts without waiting for the rest of the loop's pass: it
    /// bounds the work (and the answers' wait) of one round.
    static let maxRoundCalls = 128
    /// Rounds of `gathering` out at once (waiting for other shards' loops); batches read
    /// meanwhile wait, gathering, until one ends, and then run as one round. This bounds the
    /// phase runs in flight (and so the pool: none is allocated once warm) and makes rounds
    /// bigger, and hops fewer, exactly when the loops are busy. Rounds with writes in `fsync`
    /// mode are not counted: they wait for the disk, and reads must not wait behind them. A
    /// round that fills up (`maxRoundCalls`) starts even past this bound, so the bound on
    /// phase runs out is 16 + (calls in flight on the loop) / 128: the rounds stay bounded,
    /// and past 64 out (8,000 calls waiting on one loop) phase runs are made and dropped.
    static let maxRoundsOut = 16

    private let shards: [Shard]
    private let loop: any EventLoop
    /// Whether answers to writes wait for the group fsync (`fsync` durability): then batches
    /// with writes gather in a round of their own, and a read-only batch never waits for
    /// another connection's fsync (a trip with writes completes only once they are durable).
    private let writesWaitForDurability: Bool
    private var phases: [PhaseRun] = []
    /// The loop's submit and rank plans (the router takes them, the executor returns them).
    let plans = PlanPool()
    /// The loop's share of the submit-batch items in flight over the server.
    let batchItems: BatchItemBudget
    private var trips: [[ShardTrip]]
    /// Batches handed over since the loop last ran its tasks: read-only ones (and every batch
    /// when writes do not wait for durability), and those with writes.
    private(set) var gathering = CallRound()
    private var gatheringWrites = CallRound()
    private var roundScheduled = false
    /// Rounds from `gathering` started and not yet ended (see `maxRoundsOut`).
    private(set) var roundsOut = 0
    /// Made once: scheduling a round allocates nothing.
    /// Weak: a task queued on the loop may outlive the executor (a test's, torn down first).
    /// Sendable only in form (`loop.execute` asks for it): it runs on `loop`, the pool's own.
    private lazy var runGathered: @Sendable () -> Void = { [pool = LoopConfinedPool(self)] in
        guard let self = pool.pool else { return }
        self.roundScheduled = false
        // Writes first: their log append (and so their fsync) starts sooner.
        self.startRound(.writes)
        if self.roundsOut < Self.maxRoundsOut { self.startRound(.reads) }
    }

    /// Which gathering round a batch joins.
    private enum RoundKind {
        case reads, writes
    }

    init(shards: [Shard], loop: any EventLoop, writesWaitForDurability: Bool, batchItemLimit: Int) {
        self.shards = shards
        self.loop = loop
        self.writesWaitForDurability = writesWaitForDurability
        batchItems = BatchItemBudget(limit: batchItemLimit, loop: loop)
        trips = shards.map { _ in [] }
    }

    /// Adds a connection's read batch to the loop's round. The round runs once the loop has
    /// handled every ready connection (a task queued on the loop runs after its I/O events),
    /// or at once when it is full.
    func gather(_ batch: [PlannedCall], receiver: any BatchReceiver) {
        let kind: RoundKind =
            writesWaitForDurability && batch.contains(where: { $0.plan.writesEntries }) ? .writes : .reads
        // A batch that would take the round past its bound starts a round of its own.
        if callCount(kind) + batch.count > Self.maxRoundCalls { startRound(kind) }
        switch kind {
        case .reads: gathering.add(batch, receiver: receiver)
        case .writes: gatheringWrites.add(batch, receiver: receiver)
        }
        if callCount(kind) >= Self.maxRoundCalls {
            startRound(kind)
        } else {
            scheduleRound()
        }
    }

    private func callCount(_ kind: RoundKind) -> Int {
        switch kind {
        case .reads: gathering.calls.count
        case .writes: gatheringWrites.calls.count
        }
    }

    private func scheduleRound() {
        guard !roundScheduled else { return }
        roundScheduled = true
        loop.execute(runGathered)
    }

    /// Hands the gathered round of `kind` to a phase run and runs it. The round is handed over
    /// first and run after, with no access to the pool's rounds open: running it can end it at
    /// once, and an ending round looks at what is gathering.
    private func startRound(_ kind: RoundKind) {
        let phase: PhaseRun
        let counted: Bool
        switch kind {
        case .reads:
            guard !gathering.isEmpty else { return }
            phase = takePhase()
            phase.take(&gathering)
            counted = true
        case .writes:
            guard !gatheringWrites.isEmpty else { return }
            phase = takePhase()
            phase.take(&gatheringWrites)
            counted = false
        }
        if counted { roundsOut += 1 }
        phase.run(counted: counted)
    }

    /// A round started with `counted` ended: batches held back for it may go.
    func roundEnded(counted: Bool) {
        guard counted else { return }
        roundsOut -= 1
        assert(roundsOut >= 0, "more rounds ended than started")
        if !gathering.isEmpty { scheduleRound() }
    }

    func takePhase() -> PhaseRun {
        phases.popLast() ?? PhaseRun(shards: shards, loop: loop, pool: self, writesWaitForDurability: writesWaitForDurability)
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

/// A weak reference to a loop-confined `ExecutorPool`, for the one task it queues on its own loop.
private struct LoopConfinedPool: @unchecked Sendable {
    weak var pool: ExecutorPool?

    init(_ pool: ExecutorPool) { self.pool = pool }
}
