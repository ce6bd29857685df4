import NIOCore

/// The finished phase runs, shard trips and call plans of one event loop, handed out again to
/// its next batches. Loop-confined. Bounded: at most `capacity` of each, and a pooled one keeps arrays of
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
    /// The loop's submit and rank plans (the router takes them, the executor returns them).
    let plans = PlanPool()
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
