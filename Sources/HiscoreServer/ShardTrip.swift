import HiscoreStorage
import NIOCore

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
        if let failure { shard.noteLogFailure(failure) }
        if origin.inEventLoop { arrived() } else { origin.execute(arrive) }
    }

    private func arrived() {
        let phase = owner
        owner = nil
        phase?.tripArrived()
    }

    /// Empties the trip for reuse, freeing arrays a large batch grew.
    func clear() {
        operations.removeAll(keepingCapacity: operations.capacity <= ExecutorPool.keptElements)
        results.removeAll(keepingCapacity: results.capacity <= ExecutorPool.keptElements)
        failure = nil
    }
}
