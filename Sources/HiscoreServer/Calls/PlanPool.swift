import HiscoreWire

/// Finished submit, rank and top plans of one event loop, handed out again to the next calls
/// routed on that loop: at steady state a submit, a rank or a top allocates no plan object.
///
/// Loop-confined, like `LoopMetrics`: the router makes a connection's plans on its loop and the
/// executor finishes them there. A plan is reused only when the pool holds its sole reference,
/// so one that something still points at (a batch's item, a phase's leftover array) is dropped,
/// never handed out twice. Each kind keeps at most `capacity`; more finished plans are freed.
final class PlanPool {
    /// Plans of each kind one loop keeps: enough for the calls in flight on a loop under a heavy
    /// pipelined load (50 connections x 16 over 2 loops is 400). A plan is ~450 bytes, so a loop
    /// keeps at most ~1 MB, and only after that many calls were in flight on it at once.
    static let defaultCapacity = 1024

    let capacity: Int
    private var submits: [SubmitPlan] = []
    private var ranks: [GetRankPlan] = []
    private var tops: [TopPlan] = []

    init(capacity: Int = PlanPool.defaultCapacity) {
        self.capacity = capacity
        submits.reserveCapacity(capacity)
        ranks.reserveCapacity(capacity)
        tops.reserveCapacity(capacity)
    }

    func submitPlan(callID: UInt64, board: BoardHandle, request: SubmitRequest, shardCount: Int) -> SubmitPlan {
        if let plan = Self.takeUnique(from: &submits) {
            plan.reset(callID: callID, board: board, request: request, shardCount: shardCount)
            return plan
        }
        return SubmitPlan(callID: callID, board: board, request: request, shardCount: shardCount)
    }

    func rankPlan(callID: UInt64, ranking: RankResolution, playerID: String) -> GetRankPlan {
        if let plan = Self.takeUnique(from: &ranks) {
            plan.reset(callID: callID, ranking: ranking, playerID: playerID)
            return plan
        }
        return GetRankPlan(callID: callID, ranking: ranking, playerID: playerID)
    }

    func topPlan(callID: UInt64, ranking: RankResolution, limit: Int, start: PageStart, maxFallbackKeys: Int) -> TopPlan {
        if let plan = Self.takeUnique(from: &tops) {
            plan.reset(callID: callID, ranking: ranking, limit: limit, start: start, maxFallbackKeys: maxFallbackKeys)
            return plan
        }
        return TopPlan(callID: callID, ranking: ranking, limit: limit, start: start, maxFallbackKeys: maxFallbackKeys)
    }

    /// How many of the most recently finished plans a take looks at for one nothing else holds.
    static let uniqueSearchDepth = 4

    /// Removes and returns one of the last `uniqueSearchDepth` plans that only the pool holds. A
    /// plan still referenced (the phase that finished it has not been released yet) stays for a
    /// later take.
    private static func takeUnique<Plan: AnyObject>(from plans: inout [Plan]) -> Plan? {
        var index = plans.count - 1
        while index >= 0 && index >= plans.count - uniqueSearchDepth {
            if isKnownUniquelyReferenced(&plans[index]) {
                plans.swapAt(index, plans.count - 1)
                return plans.removeLast()
            }
            index -= 1
        }
        return nil
    }

    func recycle(_ plan: SubmitPlan) {
        if submits.count < capacity { submits.append(plan) }
    }

    func recycle(_ plan: GetRankPlan) {
        if ranks.count < capacity { ranks.append(plan) }
    }

    func recycle(_ plan: TopPlan) {
        if tops.count < capacity { tops.append(plan) }
    }

    /// Pooled plans of each kind, for tests.
    var pooled: (submits: Int, ranks: Int, tops: Int) { (submits.count, ranks.count, tops.count) }
}
