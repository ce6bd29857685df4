import HiscoreClient
import HiscoreCore
import HiscoreWire
import Testing

@testable import HiscoreServer

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
        for cache in caches { cache.store(top, token: cache.fillToken) }
        #expect(caches.map { $0.lookup(mode: .ordinal, limit: 100) != nil } == [true, true, false], "the third does not fit")
        #expect(budget.held == bytes * 2)

        let answer = PackedResult.top(TopResponse(entries: [], nextCursor: [], boardSize: 100))
        caches[0].keep(answer, mode: .ordinal, limit: 100, boardSize: 100, token: caches[0].fillToken)
        #expect(caches[0].packed(mode: .ordinal, limit: 100, boardSize: 100) == answer, "room for a small packed answer")
        #expect(budget.held == bytes * 2 + caches[0].heldBytes - bytes)

        caches[1].noteWrite(previous: nil, current: Self.key(5))
        #expect(budget.held == caches[0].heldBytes, "a dropped top gives its bytes back")
        caches[2].store(top, token: caches[2].fillToken)
        #expect(caches[2].lookup(mode: .ordinal, limit: 100) != nil, "and another board keeps its top in their place")

        caches[0].clear()
        #expect(budget.held == bytes, "a deleted board gives its bytes back")
        caches[0].store(top, token: caches[0].fillToken)
        #expect(budget.held == bytes, "nor keeps anything again (a fill still in flight)")
        caches.removeAll()
        #expect(budget.held == 0, "a board let go of gives its bytes back")

        let small = Self.snapshot([1, 2, 3], limit: 3)
        let cache = TopCache(budget: budget)
        cache.store(small, token: cache.fillToken)
        cache.store(Self.snapshot(Array(1...400), limit: 400), token: cache.fillToken)
        #expect(cache.lookup(mode: .ordinal, limit: 3) != nil, "a larger top that does not fit leaves the one kept")
        #expect(cache.lookup(mode: .ordinal, limit: 400) == nil)

        let none = TopCache(budget: TopCacheBudget(limitBytes: 0))
        none.store(small, token: none.fillToken)
        #expect(none.lookup(mode: .ordinal, limit: 3) == nil, "max_top_cache_bytes 0 keeps none")
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
