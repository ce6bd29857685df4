import HiscoreClient
import HiscoreCore
import HiscoreWire
import Testing

@testable import HiscoreServer
import HiscoreTestSupport

@Suite("Top cache")
struct TopCacheTests {
    private static func key(_ value: UInt64) -> RankKey { RankKey(word0: value, word1: 0, word2: 0) }

    private static func snapshot(_ keys: [UInt64], limit: Int, mode: RankMode = .ordinal) -> TopCache.Snapshot {
        let entries = keys.map {
            LeaderboardEntry(playerID: "p\($0)", score: Int64($0), subscore: 0, metadata: [], sequence: $0, key: key($0))
        }
        return TopCache.Snapshot(
            mode: mode, limit: limit, entries: entries, ranks: entries.indices.map { UInt64($0 + 1) },
            threshold: entries.count == limit ? entries.last?.key : nil)
    }

    @Test("a write at or better than the last cached key drops the top; a write below it does not")
    func threshold() {
        let cache = TopCache(budget: TopCacheBudget(limitBytes: 1 << 20))
        cache.store(Self.snapshot([10, 20, 30], limit: 3), token: cache.fillToken)
        #expect(cache.lookup(mode: .ordinal, limit: 2)?.entries.map(\.playerID) == ["p10", "p20"])
        #expect(cache.lookup(mode: .ordinal, limit: 4) == nil, "a longer top is not held")
        #expect(cache.lookup(mode: .competition, limit: 2) == nil, "ranks of another mode are not held")
        cache.noteWrite(previous: Self.key(40), current: Self.key(50))
        cache.noteWrite(previous: nil, current: Self.key(31))
        #expect(cache.lookup(mode: .ordinal, limit: 3) != nil, "writes below the top keep it")
        cache.noteWrite(previous: nil, current: Self.key(30))
        #expect(cache.lookup(mode: .ordinal, limit: 3) == nil, "a write reaching the last cached key drops it")

        cache.store(Self.snapshot([10, 20, 30], limit: 3), token: cache.fillToken)
        cache.noteWrite(previous: Self.key(20), current: nil)
        #expect(cache.lookup(mode: .ordinal, limit: 3) == nil, "removing a cached player drops it")
        cache.store(Self.snapshot([10, 20, 30], limit: 3), token: cache.fillToken)
        cache.noteWrite(previous: Self.key(20), current: Self.key(20))
        #expect(cache.lookup(mode: .ordinal, limit: 3) == nil, "a metadata change of a cached player drops it")
    }

    @Test("a top of the whole board is dropped by any write; a fill that raced a write is not kept")
    func wholeBoardAndRacingFill() {
        let cache = TopCache(budget: TopCacheBudget(limitBytes: 1 << 20))
        cache.store(Self.snapshot([10, 20], limit: 5), token: cache.fillToken)
        #expect(cache.lookup(mode: .ordinal, limit: 5)?.entries.count == 2)
        cache.noteWrite(previous: nil, current: Self.key(1_000))
        #expect(cache.lookup(mode: .ordinal, limit: 5) == nil)

        let token = cache.fillToken
        cache.noteWrite(previous: nil, current: Self.key(5))
        cache.store(Self.snapshot([10, 20, 30], limit: 3), token: token)
        #expect(cache.lookup(mode: .ordinal, limit: 3) == nil)
    }

    @Test("the packed answer is kept for its limit, mode and board size, and goes with the snapshot")
    func packedAnswer() {
        let cache = TopCache(budget: TopCacheBudget(limitBytes: 1 << 20))
        let answer = PackedResult.top(TopResponse(entries: [], nextCursor: [], boardSize: 7))
        cache.keep(answer, mode: .ordinal, limit: 3, boardSize: 7, token: cache.fillToken)
        #expect(cache.packed(mode: .ordinal, limit: 3, boardSize: 7) == nil, "no snapshot, nothing kept")

        cache.store(Self.snapshot([10, 20, 30], limit: 3), token: cache.fillToken)
        cache.keep(answer, mode: .ordinal, limit: 3, boardSize: 7, token: cache.fillToken)
        #expect(cache.packed(mode: .ordinal, limit: 3, boardSize: 7) == answer)
        #expect(cache.packed(mode: .ordinal, limit: 2, boardSize: 7) == nil, "another limit")
        #expect(cache.packed(mode: .competition, limit: 3, boardSize: 7) == nil, "another mode")
        #expect(cache.packed(mode: .ordinal, limit: 3, boardSize: 8) == nil, "another board size")

        cache.noteWrite(previous: nil, current: Self.key(31))
        #expect(cache.packed(mode: .ordinal, limit: 3, boardSize: 7) == answer, "a write below the top keeps it")
        let token = cache.fillToken
        cache.noteWrite(previous: nil, current: Self.key(40))
        cache.keep(answer, mode: .ordinal, limit: 2, boardSize: 9, token: token)
        #expect(cache.packed(mode: .ordinal, limit: 2, boardSize: 9) == nil, "packed before a write it did not see")
        cache.noteWrite(previous: nil, current: Self.key(5))
        #expect(cache.packed(mode: .ordinal, limit: 3, boardSize: 7) == nil, "dropped with the snapshot")
    }

    @Test("the caches of every board keep at most max_top_cache_bytes together, and give it back when dropped")
    func budget() throws {
        let top = Self.snapshot(Array(1...100), limit: 100)
        let bytes = TopCacheBudget.bytes(of: top.entries)
        let budget = TopCacheBudget(limitBytes: bytes * 2 + bytes / 2)
        var caches = (0..<3).map { _ in TopCache(budget: budget) }
        for cache in caches {
            cache.store(top, token: cache.fillToken)
            #expect(budget.held <= budget.limitBytes)
        }
        #expect(caches.filter { $0.heldBytes > 0 }.count == 2, "room for two: the third took the place of one")
        #expect(budget.held == bytes * 2)

        do {
            let first = try #require(caches.first { $0.heldBytes > 0 })
            let answer = PackedResult.top(TopResponse(entries: [], nextCursor: [], boardSize: 100))
            first.keep(answer, mode: .ordinal, limit: 100, boardSize: 100, token: first.fillToken)
            #expect(first.packed(mode: .ordinal, limit: 100, boardSize: 100) == answer, "room for a small packed answer")
            #expect(budget.held == bytes + first.heldBytes)
            first.noteWrite(previous: nil, current: Self.key(5))
            #expect(budget.held == bytes, "a dropped top gives its bytes back, packed answer included")

            let second = try #require(caches.first { $0.heldBytes > 0 })
            second.clear()
            #expect(budget.held == 0, "a deleted board gives its bytes back")
            second.store(top, token: second.fillToken)
            #expect(budget.held == 0, "nor keeps anything again (a fill still in flight)")
            first.store(top, token: first.fillToken)
            #expect(budget.held == bytes)
        }
        caches.removeAll()
        #expect(budget.held == 0, "a board let go of gives its bytes back")

        let small = Self.snapshot([1, 2, 3], limit: 3)
        let cache = TopCache(budget: budget)
        cache.store(small, token: cache.fillToken)
        cache.store(Self.snapshot(Array(1...400), limit: 400), token: cache.fillToken)
        #expect(cache.lookup(mode: .ordinal, limit: 3) != nil, "a top larger than the whole budget leaves the one kept")
        #expect(cache.lookup(mode: .ordinal, limit: 400) == nil)

        let none = TopCache(budget: TopCacheBudget(limitBytes: 0))
        none.store(small, token: none.fillToken)
        #expect(none.lookup(mode: .ordinal, limit: 3) == nil, "max_top_cache_bytes 0 keeps none")
    }

    /// Without giving way, the first boards to fill the budget kept it for good: a quiet board
    /// or an archived season nobody reads, while a busy board, whose top its writes keep
    /// dropping, found no room each time it filled it again.
    @Test("past the bound, tops not read lately give way to tops being read")
    func leastReadGiveWay() {
        let top = Self.snapshot(Array(1...100), limit: 100)
        let bytes = TopCacheBudget.bytes(of: top.entries)
        let budget = TopCacheBudget(limitBytes: bytes * 2)
        let quiet = TopCache(budget: budget)
        let lobby = TopCache(budget: budget)
        let busy = TopCache(budget: budget)
        quiet.store(top, token: quiet.fillToken)
        lobby.store(top, token: lobby.fillToken)
        for round in 0..<6 {
            // Every round: the lobby's top is read, and a write lands in the busy board's top.
            for cache in [lobby, busy] where cache.lookup(mode: .ordinal, limit: 10) == nil {
                cache.store(top, token: cache.fillToken)
            }
            #expect(budget.held <= budget.limitBytes)
            if round >= 2 {
                #expect(lobby.heldBytes > 0 && busy.heldBytes > 0, "round \(round): the boards being read hold the budget")
            }
            busy.noteWrite(previous: nil, current: Self.key(1))
        }
        #expect(quiet.heldBytes == 0, "the top nobody read gave way")

        // Room is looked for among a bounded number of tops: when all of them are read, a
        // newcomer is refused rather than sweeping the whole ring.
        let crowded = TopCacheBudget(limitBytes: bytes * (TopCacheBudget.maxEvictionSteps + 8))
        let residents = (0..<(TopCacheBudget.maxEvictionSteps + 8)).map { _ in TopCache(budget: crowded) }
        for resident in residents { resident.store(top, token: resident.fillToken) }
        let newcomer = TopCache(budget: crowded)
        newcomer.store(top, token: newcomer.fillToken)
        #expect(newcomer.heldBytes == 0, "every resident was read since the hand last passed")
        newcomer.store(top, token: newcomer.fillToken)
        #expect(newcomer.heldBytes > 0, "the hand went on where it stopped: the next try finds room")
        #expect(crowded.held <= crowded.limitBytes)
    }

    /// Stores, reads, writes and evictions from several threads at once: no deadlock (a cache
    /// never asks the budget while holding its own lock, and the budget may lock another cache
    /// to drop its top), and the budget's count stays the sum of what the caches hold.
    @Test("caches filled, read and dropped from several threads keep the budget's count exact", .timeLimit(.minutes(1)))
    func concurrentAccounting() async {
        let tops = (1...4).map { Self.snapshot(Array(UInt64(1)...UInt64(25 * $0)), limit: 25 * $0) }
        let budget = TopCacheBudget(limitBytes: TopCacheBudget.bytes(of: tops[3].entries) * 3)
        let caches = (0..<8).map { _ in TopCache(budget: budget) }
        await withTaskGroup(of: Void.self) { group in
            for worker in 0..<4 {
                group.addTask {
                    var random = SplitMix64(seed: UInt64(worker + 1))
                    for _ in 0..<20_000 {
                        let cache = caches[Int(random.next(below: UInt64(caches.count)))]
                        switch random.next(below: 4) {
                        case 0: cache.store(tops[Int(random.next(below: 4))], token: cache.fillToken)
                        case 1: _ = cache.lookup(mode: .ordinal, limit: 10)
                        case 2: cache.noteWrite(previous: nil, current: Self.key(random.next(below: 120)))
                        default:
                            let answer = PackedResult.top(TopResponse(entries: [], nextCursor: [], boardSize: 1))
                            cache.keep(answer, mode: .ordinal, limit: 10, boardSize: 1, token: cache.fillToken)
                        }
                        #expect(budget.held <= budget.limitBytes)
                    }
                }
            }
        }
        #expect(budget.held == caches.reduce(0) { $0 + $1.heldBytes })
    }

    @Test("a deleted board keeps nothing a fill still in flight brings")
    func clearedCacheKeepsNothing() {
        let budget = TopCacheBudget(limitBytes: 1 << 20)
        let cache = TopCache(budget: budget)
        let token = cache.fillToken
        cache.clear()
        cache.store(Self.snapshot([1, 2, 3], limit: 3), token: token)
        cache.store(Self.snapshot([1, 2, 3], limit: 3), token: cache.fillToken)
        #expect(cache.lookup(mode: .ordinal, limit: 3) == nil)
        #expect(budget.held == 0, "counted for a board that was deleted")
    }

    @Test("above the memory ceiling a board keeps no new top")
    func aboveTheCeiling() {
        let ceiling = MemoryCeiling(limitBytes: 1)
        ceiling.refresh()
        #expect(ceiling.isExceeded)
        let cache = TopCache(budget: TopCacheBudget(limitBytes: 1 << 20, ceiling: ceiling))
        cache.store(Self.snapshot([1, 2, 3], limit: 3), token: cache.fillToken)
        #expect(cache.lookup(mode: .ordinal, limit: 3) == nil)
    }

    @Test("tops served between writes match the board: entries, moves, removals, metadata, prefixes")
    func endToEnd() async throws {
        try await withClient(shards: 2) { client, _ in
            _ = try await client.createBoard(BoardConfig(id: "lobby", writeOperator: .set))
            var model: [String: (score: Int64, metadata: [UInt8])] = [:]
            for index in 0..<200 {
                _ = try await client.submit(board: "lobby", player: "p\(index)", score: Int64(index))
                model["p\(index)"] = (Int64(index), [])
            }
            func expectTop(_ limit: UInt32, _ note: Comment) async throws {
                let expected = model.sorted { $0.value.score > $1.value.score }.prefix(Int(limit))
                let top = try await client.top(board: "lobby", limit: limit)
                #expect(top.entries.map(\.playerID) == expected.map(\.key), note)
                #expect(top.entries.map(\.metadata) == expected.map(\.value.metadata), note)
                #expect(top.entries.map(\.rank) == (1...UInt64(expected.count)).map { $0 }, note)
                #expect(top.boardSize == UInt64(model.count), note)
            }
            try await expectTop(10, "first top")
            try await expectTop(10, "same top again")
            _ = try await client.submit(board: "lobby", player: "p3", score: 4)
            model["p3"] = (4, [])
            _ = try await client.submit(board: "lobby", player: "newcomer-low", score: -5)
            model["newcomer-low"] = (-5, [])
            try await expectTop(10, "writes far below the top")
            try await expectTop(5, "a shorter top")
            _ = try await client.submit(board: "lobby", player: "p50", score: 1_000)
            model["p50"] = (1_000, [])
            try await expectTop(10, "a player jumps to first")
            _ = try await client.removePlayer(board: "lobby", player: "p199")
            model["p199"] = nil
            try await expectTop(10, "a top player removed")
            _ = try await client.submit(board: "lobby", player: "p198", score: 198, metadata: [7, 7])
            model["p198"] = (198, [7, 7])
            try await expectTop(10, "metadata of a top player changed")
            _ = try await client.submit(board: "lobby", player: "p190", score: 150)
            model["p190"] = (150, [])
            try await expectTop(10, "a top player drops out of the top")
            try await expectTop(20, "a longer top")
        }
    }
}
