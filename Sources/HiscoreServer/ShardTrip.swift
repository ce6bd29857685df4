import HiscoreStorage
import NIOCore

/// When a trip executed by a shard may complete.
enum TripCompletion {
    case now
    /// After the group fsync that makes the trip's log records durable.
    case whenDurable(LogPosition, ShardLog)
}

/// One phase's operations for one shard, carried to the shard and back with their results.
///
/// Sendable by hand-off, not by locking: the origin loop fills `operations`, then either runs
/// them itself under the shard's gate or `execute`s `travel` on the shard's loop; the shard writes
/// `results` and `failure`, and the trip is completed on the origin loop (at once when that is
/// where it ran, else by `execute`-ing `arrive` there). Each side touches the trip only between
/// those hand-offs, which `execute` or the gate orders. The two closures are made once per trip,
/// so a trip allocates nothing.
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
    /// What the shard hands its log to run once the trip's writes are durable (fsync mode).
    lazy var durable: ShardLog.Completion = { [unowned self] outcome in
        switch outcome {
        case .success: self.complete(failure: nil)
        case .failure(let error): self.complete(failure: error)
        }
    }

    init(shard: Shard, origin: any EventLoop) {
        self.shard = shard
        self.origin = origin
    }

    /// Runs the operations on the shard: inline when it lives on the origin loop or its gate is
    /// free, else one hop to its loop.
    func depart() {
        if shard.loop === origin {
            shard.execute(self)
        } else if !shard.executeIfFree(self) {
            shard.loop.execute(travel)
        }
    }

    /// Completes the trip as the shard said, after the shard's gate was left.
    func settle(_ completion: TripCompletion) {
        switch completion {
        case .now: complete(failure: nil)
        case .whenDurable(let position, let log): log.whenDurable(position, durable)
        }
    }

    /// Called once the results are in and as durable as the mode promises.
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
