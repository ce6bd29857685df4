/// The calls of one or more read batches that one `PhaseRun` runs together, each with the
/// receiver its answer goes to.
///
/// Why batches are merged: an event loop reads every ready connection before it runs its tasks,
/// and each connection's read batch used to run on its own — one trip per remote shard per
/// connection per phase, and a shard's group prefetching limited to one connection's calls (at
/// one call in flight per connection: none). A round of every batch read in one pass of the
/// loop reaches each remote shard once per phase and lets the shard overlap the cache misses of
/// every connection's calls. Redis answers its connections the same way: it executes every
/// ready client's commands, then writes the replies before it sleeps.
struct CallRound {
    private(set) var calls: [PlannedCall] = []
    /// `receivers[receiverOfCall[i]]` gets call i's answer.
    private(set) var receiverOfCall: [Int] = []
    private(set) var receivers: [any BatchReceiver] = []

    var isEmpty: Bool { receivers.isEmpty }

    /// Adds a receiver's batch (possibly empty: the receiver is still told when it is done).
    mutating func add(_ batch: [PlannedCall], receiver: any BatchReceiver) {
        let index = receivers.count
        receivers.append(receiver)
        calls.append(contentsOf: batch)
        for _ in batch.indices { receiverOfCall.append(index) }
    }

    /// Empties the round, keeping its arrays unless a large round grew them past `keptElements`.
    mutating func removeAll(keptElements: Int) {
        calls.removeAll(keepingCapacity: calls.capacity <= keptElements)
        receiverOfCall.removeAll(keepingCapacity: receiverOfCall.capacity <= keptElements)
        receivers.removeAll(keepingCapacity: receivers.capacity <= keptElements)
    }
}
