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

    @Test("an offset page asked again is answered from runs around its last first key in one phase, and exactly")
    func anchoredPage() async throws {
        let fixture = try ExecutorFixture(shardCount: 2)
        let board = fixture.board
        let players = 600
        var submits: [[ShardOperation]] = [[], []]
        for n in 0..<players {
            let id = "p\(n)"
            submits[board.shard(for: id, shardCount: 2)].append(
                .submit(board, SubmitRequest(boardID: "b", playerID: id, score: Int64((n * 7_919) % 100_003))))
        }
        for shard in 0..<2 { try await Self.run(submits[shard], on: fixture.shards[shard]) }
        let ranking = try RankResolution.make(board: board, requested: nil, shardCount: 2).get()

        /// The page and the operations of each phase the plan ran.
        func page(offset: UInt64, limit: Int) async throws -> (entries: [LeaderboardEntry], phases: [[ShardOperation]]) {
            let plan = TopPlan(callID: 1, ranking: ranking, limit: limit, start: .offset(offset))
            var step = plan.advance([])
            var phases: [[ShardOperation]] = []
            while case .run(let calls) = step {
                phases.append(calls.map(\.operation))
                var results: [ShardResult] = []
                for call in calls { results += try await Self.run([call.operation], on: fixture.shards[call.shard]) }
                step = plan.advance(results[...])
            }
            guard case .finished(let response) = step, case .rankedTop(let ranked)? = response.result else {
                Issue.record("expected a page, got \(step)")
                return ([], phases)
            }
            #expect(ranked.ranks == (0..<UInt64(ranked.entries.count)).map { offset + 1 + $0 })
            return (ranked.entries, phases)
        }
        /// The page from every entry of both shards.
        func reference(offset: Int, limit: Int) async throws -> [LeaderboardEntry] {
            var slices: [[LeaderboardEntry]] = []
            for shard in fixture.shards {
                for case .entries(let entries, _) in try await Self.run([.entriesAtRanks(board, range: 0..<players)], on: shard) {
                    slices.append(entries)
                }
            }
            return Array(PartitionMerge.mergeTop(slices, limit: players).dropFirst(offset).prefix(limit))
        }
        func isRun(_ operation: ShardOperation) -> Bool { if case .entryRun = operation { true } else { false } }
        func isWindow(_ operation: ShardOperation) -> Bool { if case .keysAtRanks = operation { true } else { false } }
        /// Moves `count` players from below the page to the top.
        func promote(_ count: Int, from offset: Int) async throws {
            let below = try await reference(offset: offset + 100, limit: count)
            for entry in below {
                let shard = board.shard(for: entry.playerID, shardCount: 2)
                try await Self.run(
                    [.submit(board, SubmitRequest(boardID: "b", playerID: entry.playerID, score: 1_000_000))], on: fixture.shards[shard])
            }
        }

        // First time: key windows, then the proven ranges.
        let first = try await page(offset: 200, limit: 30)
        #expect(first.phases.first?.allSatisfy(isWindow) == true, "\(first.phases)")
        #expect(first.entries == (try await reference(offset: 200, limit: 30)))
        // Asked again: one phase of runs around the page's first key.
        let again = try await page(offset: 200, limit: 30)
        #expect(again.phases.count == 1 && again.phases[0].allSatisfy(isRun), "\(again.phases)")
        #expect(again.entries == first.entries)
        // Two players moved above the page: it begins two places before its anchor, still
        // within the runs.
        try await promote(2, from: 200)
        let moved = try await page(offset: 200, limit: 30)
        #expect(moved.phases.count == 1, "\(moved.phases)")
        #expect(moved.entries == (try await reference(offset: 200, limit: 30)))
        #expect(moved.entries.first?.key != first.entries.first?.key)
        // Forty moved: the runs cannot prove the page, the windowed path answers it.
        try await promote(40, from: 200)
        let far = try await page(offset: 200, limit: 30)
        #expect(far.phases.count == 3 && far.phases[0].allSatisfy(isRun) && far.phases[1].allSatisfy(isWindow), "\(far.phases)")
        #expect(far.entries == (try await reference(offset: 200, limit: 30)))
        // ... and records its first key: the next call is one phase again.
        let after = try await page(offset: 200, limit: 30)
        #expect(after.phases.count == 1 && after.entries == far.entries, "\(after.phases)")
        // Other offsets keep their own anchors; one past the board's end has none.
        let other = try await page(offset: 450, limit: 30)
        #expect(other.phases.first?.allSatisfy(isWindow) == true)
        #expect((try await page(offset: 450, limit: 30)).phases.count == 1)
        #expect((try await page(offset: 200, limit: 30)).phases.count == 1)
        #expect((try await page(offset: 700, limit: 30)).entries.isEmpty)
        try await fixture.shutdown()
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
