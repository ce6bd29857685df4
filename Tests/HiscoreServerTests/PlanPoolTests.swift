import HiscoreCore
import HiscoreWire
import Testing

@testable import HiscoreServer

@Suite("Plan pool")
struct PlanPoolTests {
    private static let board = BoardHandle(
        config: BoardConfig.defaultConfig(id: "pool"), incarnation: 1, partitionCount: 2, homeShard: 0,
        topCacheBudget: TopCacheBudget(limitBytes: 1 << 20))

    private static func request(_ player: String) -> SubmitRequest {
        SubmitRequest(boardID: "pool", playerID: player, score: 10)
    }

    /// The player the plan's first step submits for, or nil if the step is not one submit.
    private static func submittedPlayer(_ step: PlanStep) -> String? {
        guard case .runOne(let call) = step, case .submit(_, let request) = call.operation else { return nil }
        return request.playerID
    }

    @Test("a finished submit plan is handed out again, starting afresh")
    func reuseStartsAfresh() {
        let pool = PlanPool(capacity: 4)
        var first: ObjectIdentifier?
        do {
            let plan = pool.submitPlan(callID: 1, board: Self.board, request: Self.request("a"), shardCount: 2)
            first = ObjectIdentifier(plan)
            _ = plan.advance([])
            _ = plan.advance([.refused(Status(.invalidArgument, "refused"))][...])
            #expect(plan.outcome != nil)
            pool.recycle(plan)
        }
        let again = pool.submitPlan(callID: 2, board: Self.board, request: Self.request("b"), shardCount: 2)
        #expect(ObjectIdentifier(again) == first)
        #expect(again.outcome == nil, "a reused plan forgets the last call's outcome")
        let step = again.advance([])
        #expect(Self.submittedPlayer(step) == "b")
        if case .runOne(let call) = step {
            #expect(call.shard == Self.board.shard(for: "b", shardCount: 2), "the owner is the new player's")
        }
        #expect(pool.pooled.submits == 0)
    }

    @Test("an unranked submit on a split board ends with its owner's answer; a ranked one asks the others")
    func unrankedSubmitSkipsTheOtherShards() throws {
        let pool = PlanPool(capacity: 4)
        let entry = LeaderboardEntry(
            playerID: "a", score: 10, subscore: 0, metadata: [], sequence: 7,
            key: Self.board.config.codec.key(score: 10, subscore: 0, sequence: 7))
        let onShard = SubmitOnShard(
            current: entry, previousKey: nil, keyChanged: true, created: true, previousLocalBetter: nil,
            currentLocalBetter: 4, boardVersion: 1)
        var unranked = Self.request("a")
        unranked.skipRanks = true
        let plan = pool.submitPlan(callID: 1, board: Self.board, request: unranked, shardCount: 2)
        #expect(Self.submittedPlayer(plan.advance([])) == "a")
        guard case .finished = plan.advance([.submitted(onShard)][...]) else {
            Issue.record("an unranked submit asked other shards")
            return
        }
        let response = try #require(try plan.outcome?.get())
        #expect(response.entry.rank == 0 && response.previousRank == 0 && response.created)

        let ranked = pool.submitPlan(callID: 2, board: Self.board, request: Self.request("a"), shardCount: 2)
        _ = ranked.advance([])
        guard case .runOnEach(.countBetter, let shards, let skipping) = ranked.advance([.submitted(onShard)][...]) else {
            Issue.record("a ranked submit on a split board did not ask the other shard")
            return
        }
        #expect(shards == 0..<2 && skipping == Self.board.shard(for: "a", shardCount: 2))
    }

    @Test("a plan something still holds is not handed out")
    func heldPlanIsNotReused() {
        let pool = PlanPool(capacity: 4)
        let held = pool.submitPlan(callID: 1, board: Self.board, request: Self.request("a"), shardCount: 2)
        pool.recycle(held)
        let other = pool.submitPlan(callID: 2, board: Self.board, request: Self.request("b"), shardCount: 2)
        #expect(other !== held)
        #expect(Self.submittedPlayer(held.advance([])) == "a", "the held plan is untouched")
        #expect(pool.pooled.submits == 1, "it stays pooled for a later take")
    }

    @Test("rank plans are pooled too, and each kind keeps at most its capacity")
    func rankPlansAndCapacity() throws {
        let pool = PlanPool(capacity: 2)
        let ranking = try RankResolution.make(board: Self.board, requested: nil, shardCount: 2).get()
        var first: ObjectIdentifier?
        do {
            let plan = pool.rankPlan(callID: 1, ranking: ranking, playerID: "a")
            first = ObjectIdentifier(plan)
            pool.recycle(plan)
        }
        let again = pool.rankPlan(callID: 2, ranking: ranking, playerID: "b")
        #expect(ObjectIdentifier(again) == first)
        guard case .runOne(let call) = again.advance([]), case .lookupOne(_, let player, _) = call.operation else {
            Issue.record("a rank plan starts with a lookup on the owner")
            return
        }
        #expect(player == "b")

        for callID in 10..<15 {
            pool.recycle(pool.rankPlan(callID: UInt64(callID), ranking: ranking, playerID: "p\(callID)"))
            pool.recycle(SubmitPlan(callID: UInt64(callID), board: Self.board, request: Self.request("q"), shardCount: 2))
        }
        #expect(pool.pooled.ranks <= 2 && pool.pooled.submits == 2)
    }

    @Test("a finished top plan is handed out again, starting afresh; a stream refresh's is not kept")
    func topPlans() throws {
        let pool = PlanPool(capacity: 4)
        let ranking = try RankResolution.make(board: Self.board, requested: nil, shardCount: 2).get()
        var first: ObjectIdentifier?
        do {
            let plan = pool.topPlan(callID: 1, ranking: ranking, limit: 10, start: .offset(25), maxFallbackKeys: 1_000)
            first = ObjectIdentifier(plan)
            _ = plan.advance([])
            plan.recycle(into: pool)
        }
        #expect(pool.pooled.tops == 1)
        let again = pool.topPlan(callID: 2, ranking: ranking, limit: 5, start: .offset(0), maxFallbackKeys: 1_000)
        #expect(ObjectIdentifier(again) == first)
        // Offset 0 on two shards (nothing cached): each shard's best 5, not the last call's windows.
        guard case .run(let calls) = again.advance([]) else {
            Issue.record("a top of a two-shard board starts with one call per shard")
            return
        }
        #expect(calls.map(\.shard) == [0, 1])
        for call in calls {
            guard case .entriesAtRanks(_, let range) = call.operation else {
                Issue.record("a top asks each shard for its best entries, not \(call.operation)")
                continue
            }
            #expect(range == 0..<5)
        }
        #expect(pool.pooled.tops == 0)

        let refresh = TopPlan(callID: 3, ranking: ranking, limit: 5, start: .offset(0), packsTop: false)
        refresh.recycle(into: pool)
        #expect(pool.pooled.tops == 0, "a stream refresh's plan is its refresher's, not the pool's")
    }
}
