import HiscoreCore
import HiscoreWire
import NIOCore
import Testing

@testable import HiscoreServer

/// An offset page over shards is two phases: prove which local ranks of each shard hold the page,
/// then fetch them. Driven here by hand on real shards, so a write can be put between the phases.
@Suite("Offset pages over shards")
struct PagePlanTests {
    @Test("a page cut short by a removal between its phases still carries a cursor when the board goes on")
    func shortSliceKeepsTheCursor() async throws {
        let fixture = try ExecutorFixture(shardCount: 2)
        let board = fixture.board
        // Shard 0's players hold the top scores, shard 1's the rest: a page across the boundary
        // ends shard 0's part at its last entry.
        var ids: [[String]] = [[], []]
        var index = 0
        while ids[0].count < 30 || ids[1].count < 30 {
            let id = "p\(index)"
            index += 1
            let shard = board.shard(for: id, shardCount: 2)
            if ids[shard].count < 30 { ids[shard].append(id) }
        }
        for shard in 0..<2 {
            let operations = ids[shard].enumerated().map { position, id in
                ShardOperation.submit(board, SubmitRequest(boardID: "b", playerID: id, score: Int64((1 - shard) * 1_000 + position)))
            }
            try await Self.run(operations, on: fixture.shards[shard])
        }
        let ranking = try RankResolution.make(board: board, requested: nil, shardCount: 2).get()
        // Global ranks 25..<35: shard 0's last five, shard 1's first five.
        let plan = TopPlan(callID: 1, ranking: ranking, limit: 10, start: .offset(25))
        var step = plan.advance([])
        var removed = false
        while case .run(let calls) = step {
            if !removed, calls.allSatisfy({ if case .entriesAtRanks = $0.operation { true } else { false } }) {
                // The page's own entries are next: two of shard 0's top players leave first.
                try await Self.run(
                    [.remove(board, playerID: ids[0][29]), .remove(board, playerID: ids[0][28])], on: fixture.shards[0])
                removed = true
            }
            var results: [ShardResult] = []
            for call in calls { results += try await Self.run([call.operation], on: fixture.shards[call.shard]) }
            step = plan.advance(results[...])
        }
        try await fixture.shutdown()
        #expect(removed, "the plan never reached its fetch phase")
        guard case .finished(let response) = step, case .rankedTop(let ranked)? = response.result else {
            Issue.record("expected a page, got \(step)")
            return
        }
        let page = ranked.response
        #expect(page.entries.count == 8)
        #expect(!page.nextCursor.isEmpty, "an empty cursor would say the board ended; shard 1 holds 25 more")
    }

    @discardableResult
    static func run(_ operations: [ShardOperation], on shard: Shard) async throws -> [ShardResult] {
        try await shard.loop.submit {
            shard.assumeIsolated { shard in
                var results: [ShardResult] = []
                shard.execute(operations, into: &results)
                return results
            }
        }.get()
    }
}
