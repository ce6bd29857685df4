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

    private let shards: [Shard]
    private let loop: any EventLoop
    private var phases: [PhaseRun] = []
    /// The loop's submit and rank plans (the router takes them, the executor returns them).
    let plans = PlanPool()
    private var trips: [[ShardTrip]]
    /// Batches handed over since the loop last ran its tasks.
    private var gathering = CallRound()
    private var roundScheduled = false
    /// Made once: scheduling a round allocates nothing.
    private lazy var runGathered: () -> Void = { [unowned self] in
        self.roundScheduled = false
        self.startRound()
    }

    init(shards: [Shard], loop: any EventLoop) {
        self.shards = shards
        self.loop = loop
        trips = shards.map { _ in [] }
    }

    /// Adds a connection's read batch to the loop's round. The round runs once the loop has
    /// handled every ready connection (a task queued on the loop runs after its I/O events),
    /// or at once when it is full.
    func gather(_ batch: [PlannedCall], receiver: any BatchReceiver) {
        // A batch that would take the round past its bound starts a round of its own.
        if gathering.calls.count + batch.count > Self.maxRoundCalls { startRound() }
        gathering.add(batch, receiver: receiver)
        if gathering.calls.count >= Self.maxRoundCalls {
            startRound()
        } else if !roundScheduled {
            roundScheduled = true
            loop.execute(runGathered)
        }
    }

    private func startRound() {
        guard !gathering.isEmpty else { return }
        takePhase().start(&gathering)
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
