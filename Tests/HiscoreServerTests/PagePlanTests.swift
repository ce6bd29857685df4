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
                ShardOperation.submit(BoardRef(board), SubmitRequest(boardID: "b", playerID: id, score: Int64((1 - shard) * 1_000 + position)))
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
        let players = 3_000
        var submits: [[ShardOperation]] = [[], []]
        for n in 0..<players {
            let id = "p\(n)"
            submits[board.shard(for: id, shardCount: 2)].append(
                .submit(BoardRef(board), SubmitRequest(boardID: "b", playerID: id, score: Int64((n * 7_919) % 100_003))))
        }
        for shard in 0..<2 { try await Self.run(submits[shard], on: fixture.shards[shard]) }
        let ranking = try RankResolution.make(board: board, requested: nil, shardCount: 2).get()

        /// The page, its cursor, and the operations of each phase the plan ran.
        func page(_ start: PageStart, limit: Int = 30) async throws
            -> (entries: [LeaderboardEntry], cursor: [UInt8], phases: [[ShardOperation]])
        {
            let plan = TopPlan(callID: 1, ranking: ranking, limit: limit, start: start)
            var step = plan.advance([])
            var phases: [[ShardOperation]] = []
            while case .run(let calls) = step {
                phases.append(calls.map(\.operation))
                var results: [ShardResult] = []
                for call in calls { results += try await Self.run([call.operation], on: fixture.shards[call.shard]) }
                step = plan.advance(results[...])
            }
            if case .finished(let response) = step, case .packed? = response.result, start == .offset(0) {
                return ([], [], phases)  // the top, packed once for the calls that follow
            }
            guard case .finished(let response) = step, case .rankedTop(let ranked)? = response.result else {
                Issue.record("expected a page, got \(step)")
                return ([], [], phases)
            }
            if case .offset(let offset) = start {
                #expect(ranked.ranks == (0..<UInt64(ranked.entries.count)).map { offset + 1 + $0 })
            }
            return (ranked.entries, ranked.nextCursor, phases)
        }
        func page(offset: UInt64, limit: Int = 30) async throws -> (entries: [LeaderboardEntry], phases: [[ShardOperation]]) {
            let answer = try await page(.offset(offset), limit: limit)
            return (answer.entries, answer.phases)
        }
        /// The page from every entry of both shards.
        func reference(offset: Int, limit: Int = 30) async throws -> [LeaderboardEntry] {
            var slices: [[LeaderboardEntry]] = []
            for shard in fixture.shards {
                for case .entries(let entries, _) in try await Self.run([.entriesAtRanks(BoardRef(board), range: 0..<players)], on: shard) {
                    slices.append(entries)
                }
            }
            return Array(PartitionMerge.mergeTop(slices, limit: players).dropFirst(offset).prefix(limit))
        }
        func kinds(_ phases: [[ShardOperation]]) -> [String] {
            phases.map { operations in
                let names = Set(operations.map { operation -> String in
                    switch operation {
                    case .entryRun: "runs"
                    case .keysAtRanks: "windows"
                    case .entriesAtRanks: "ranges"
                    default: "other"
                    }
                })
                return names.count == 1 ? names.first ?? "" : "mixed"
            }
        }
        var score: Int64 = 1_000_000
        /// Moves `count` players from below the page to the top.
        func promote(_ count: Int, from offset: Int) async throws {
            for entry in try await reference(offset: offset + 100, limit: count) {
                score += 1
                let shard = board.shard(for: entry.playerID, shardCount: 2)
                try await Self.run(
                    [.submit(BoardRef(board), SubmitRequest(boardID: "b", playerID: entry.playerID, score: score))], on: fixture.shards[shard])
            }
        }

        // First time: key windows, then the proven ranges.
        let first = try await page(offset: 200)
        #expect(kinds(first.phases) == ["windows", "ranges"])
        #expect(first.entries == (try await reference(offset: 200)))
        // Asked again: one phase of runs around the page's first key.
        let again = try await page(offset: 200)
        #expect(kinds(again.phases) == ["runs"])
        #expect(again.entries == first.entries)
        // Two players moved above the page: it begins two places before its anchor, within the runs.
        try await promote(2, from: 200)
        let moved = try await page(offset: 200)
        #expect(kinds(moved.phases) == ["runs"])
        #expect(moved.entries == (try await reference(offset: 200)))
        #expect(moved.entries.first?.key != first.entries.first?.key)
        // Forty moved: past the runs' margins; the runs say where the page stands now, and the
        // second phase fetches it from there.
        try await promote(40, from: 200)
        let rerun = try await page(offset: 200)
        #expect(kinds(rerun.phases) == ["runs", "ranges"])
        #expect(rerun.entries == (try await reference(offset: 200)))
        #expect(kinds((try await page(offset: 200)).phases) == ["runs"])
        // Two thousand moved: too far for runs; the windowed path answers, and the anchor is
        // skipped for the next two calls, then tried again.
        try await promote(2_000, from: 200)
        let far = try await page(offset: 200)
        #expect(kinds(far.phases) == ["runs", "windows", "ranges"])
        #expect(far.entries == (try await reference(offset: 200)))
        for _ in 0..<2 {
            let skipped = try await page(offset: 200)
            #expect(kinds(skipped.phases) == ["windows", "ranges"])
            #expect(skipped.entries == far.entries)
        }
        let tried = try await page(offset: 200)
        #expect(kinds(tried.phases) == ["runs"] && tried.entries == far.entries)
        /// The phases of the next page at 200, checked against the reference.
        func next() async throws -> [String] {
            let answer = try await page(offset: 200)
            #expect(answer.entries == (try await reference(offset: 200)))
            return kinds(answer.phases)
        }
        let farMiss = ["runs", "windows", "ranges"]
        let skipped = ["windows", "ranges"]
        // Far misses in a row skip the anchor for 2, then 4 calls; a call whose runs reach the
        // page ends the run of misses, and so does a page found by a rerun.
        try await promote(2_000, from: 200)
        #expect(try await next() == farMiss)
        for _ in 0..<2 { #expect(try await next() == skipped) }
        try await promote(2_000, from: 200)
        #expect(try await next() == farMiss)
        for _ in 0..<4 { #expect(try await next() == skipped) }
        #expect(try await next() == ["runs"])
        try await promote(2_000, from: 200)
        #expect(try await next() == farMiss)
        for _ in 0..<2 { #expect(try await next() == skipped) }
        try await promote(40, from: 200)
        #expect(try await next() == ["runs", "ranges"])
        try await promote(2_000, from: 200)
        #expect(try await next() == farMiss)
        for _ in 0..<2 { #expect(try await next() == skipped) }
        #expect(try await next() == ["runs"])

        // Twelve other offsets (pages of 40) are remembered side by side with it.
        let offsets = (1...12).map { UInt64($0 * 40) }
        for offset in offsets { _ = try await page(offset: offset, limit: 40) }
        #expect(board.pageAnchors.offsets.isSuperset(of: offsets.map { Int($0) }))
        for offset in offsets {
            let repeated = try await page(offset: offset, limit: 40)
            #expect(kinds(repeated.phases) == ["runs"], "offset \(offset)")
            #expect(repeated.entries == (try await reference(offset: Int(offset), limit: 40)))
        }
        // A client cycling through more offsets than a board remembers still finds some.
        var hits = 0
        for round in 0..<3 {
            for offset in (1...24).map({ UInt64($0 * 20 + 1_000) }) {
                let cycled = try await page(offset: offset, limit: 20)
                if round > 0, kinds(cycled.phases) == ["runs"] { hits += 1 }
            }
        }
        #expect(hits >= 8, "\(hits) of 48 pages found their anchor")
        // Cursor pages and the top record no anchor; a page past the board's end is empty.
        let cursorPage = try await page(.offset(100))
        let recorded = board.pageAnchors.offsets
        #expect(recorded.contains(100) && recorded.count == PageAnchors.slots)
        _ = try await page(.cursor(cursorPage.cursor))
        _ = try await page(.offset(0))
        #expect(board.pageAnchors.offsets == recorded)
        #expect((try await page(offset: 5_000)).entries.isEmpty)
        try await fixture.shutdown()
    }

    @Test("on a board whose shards hold different score ranges, runs that keep missing are skipped")
    func skewedShards() async throws {
        let fixture = try ExecutorFixture(shardCount: 2)
        let board = fixture.board
        // Every player of shard 0 is above every player of shard 1.
        var submits: [[ShardOperation]] = [[], []]
        var ids: [[String]] = [[], []]
        for n in 0..<3_000 {
            let id = "p\(n)"
            let shard = board.shard(for: id, shardCount: 2)
            ids[shard].append(id)
            submits[shard].append(.submit(BoardRef(board), SubmitRequest(boardID: "b", playerID: id, score: Int64(shard == 0 ? 1_000_000 + n : n))))
        }
        for shard in 0..<2 { try await Self.run(submits[shard], on: fixture.shards[shard]) }
        let ranking = try RankResolution.make(board: board, requested: nil, shardCount: 2).get()
        func page() async throws -> (entries: [LeaderboardEntry], runs: Bool) {
            let plan = TopPlan(callID: 1, ranking: ranking, limit: 30, start: .offset(300))
            var step = plan.advance([])
            var first: ShardOperation?
            while case .run(let calls) = step {
                if first == nil { first = calls.first?.operation }
                var results: [ShardResult] = []
                for call in calls { results += try await Self.run([call.operation], on: fixture.shards[call.shard]) }
                step = plan.advance(results[...])
            }
            guard case .finished(let response) = step, case .rankedTop(let ranked)? = response.result else { return ([], false) }
            if case .entryRun? = first { return (ranked.entries, true) }
            return (ranked.entries, false)
        }
        var top: Int64 = 2_000_000
        var usedRuns: [Bool] = []
        _ = try await page()
        for _ in 0..<6 {
            // Sixty of shard 0's players from below the page move to the top.
            var moves: [ShardOperation] = []
            for case .entries(let entries, _) in try await Self.run([.entriesAtRanks(BoardRef(board), range: 400..<460)], on: fixture.shards[0]) {
                for entry in entries {
                    top += 1
                    moves.append(.submit(BoardRef(board), SubmitRequest(boardID: "b", playerID: entry.playerID, score: top)))
                }
            }
            try await Self.run(moves, on: fixture.shards[0])
            let answer = try await page()
            var expected: [LeaderboardEntry] = []
            for case .entries(let entries, _) in try await Self.run([.entriesAtRanks(BoardRef(board), range: 300..<330)], on: fixture.shards[0]) {
                expected = entries  // the page lies in shard 0's range
            }
            #expect(answer.entries == expected)
            usedRuns.append(answer.runs)
        }
        try await fixture.shutdown()
        // A missed rerun skips the anchor for the next two calls, then four.
        #expect(usedRuns == [true, false, false, true, false, false], "\(usedRuns)")
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
