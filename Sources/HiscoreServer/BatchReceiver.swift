import HiscoreWire

/// Where `BatchExecutor` sends a batch's answers. Called on the batch's event loop only.
/// A connection's handler is its own receiver, so running a batch allocates no closures for it.
protocol BatchReceiver: AnyObject {
    /// Whether the call is still wanted (asked before each phase and before delivering); a
    /// cancelled call is dropped silently, its canceller already answered.
    func isLive(_ callID: UInt64) -> Bool
    /// A call's response, in completion order.
    func deliver(_ response: ResponseEnvelope)
    /// Every call of the batch was delivered or dropped.
    func finishedBatch()
    /// A call's plan answered and was delivered: the executor holds it no longer.
    func finished(_ plan: any CallPlan)
}

extension BatchReceiver {
    func finished(_ plan: any CallPlan) {}
}

/// A receiver made of closures, for the server's own occasional batches (stream refreshes,
/// season pruning).
final class ClosureBatchReceiver: BatchReceiver {
    private let live: (UInt64) -> Bool
    private let deliverResponse: (ResponseEnvelope) -> Void
    private let finish: () -> Void

    init(
        isLive: @escaping (UInt64) -> Bool = { _ in true }, deliver: @escaping (ResponseEnvelope) -> Void = { _ in },
        finished: @escaping () -> Void
    ) {
        self.live = isLive
        self.deliverResponse = deliver
        self.finish = finished
    }

    func isLive(_ callID: UInt64) -> Bool { live(callID) }
    func deliver(_ response: ResponseEnvelope) { deliverResponse(response) }
    func finishedBatch() { finish() }
}
