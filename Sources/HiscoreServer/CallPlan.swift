import HiscoreWire

/// A call split into phases of shard operations. The executor asks the plan for its operations,
/// runs them (grouped with every other call's operations bound to the same shard), hands back the
/// results in the order asked, and repeats until the plan answers. Reads that span shards need
/// at most two phases: find the player's key on its owner, then count around that key everywhere.
protocol CallPlan: AnyObject {
    /// `results` answers the operations of the previous step (empty on the first call).
    func advance(_ results: [ShardResult]) -> PlanStep
}

enum PlanStep {
    case run([ShardCall])
    case finished(ResponseEnvelope)
}

struct ShardCall: Sendable {
    var shard: Int
    var operation: ShardOperation
}

extension ResponseEnvelope {
    static func ok(_ callID: UInt64, _ result: ResponseResult) -> ResponseEnvelope {
        ResponseEnvelope(callID: callID, status: nil, result: result)
    }
}
