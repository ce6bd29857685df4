import Testing
@testable import HiscoreCore

/// A board split over S partitions by a hash of the player id must answer exactly like the same
/// board in one partition (ordinal and competition ranks, top N, pages, neighbours, counts).
@Suite("Partition merge")
struct PartitionMergeTests {
    /// FNV-1a 64 with a final avalanche, like the server's shard hash.
    static func hash(_ id: String) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in id.utf8 {
            hash ^= UInt64(byte)
            hash &*= 0x0000_0100_0000_01b3
        }
        hash ^= hash >> 33
        hash &*= 0xff51_afd7_ed55_8ccd
        return hash ^ (hash >> 33)
    }

    struct SplitBoard {
        let whole: BoardPartition
        let parts: [BoardPartition]

        func part(for id: String) -> BoardPartition { parts[Int(PartitionMergeTests.hash(id) % UInt64(parts.count))] }
        var sizes: [Int] { parts.map(\.count) }

        /// The server's path: key windows, the proven ranges, then exactly those entries.
        func page(offset: Int, limit: Int) -> (entries: [LeaderboardEntry], usedWindows: Bool) {
            let windows = PartitionMerge.planPageWindows(offset: offset, limit: limit, partitionSizes: sizes)
            if let page = page(windows, offset: offset, limit: limit) { return (page, true) }
            let fallback = PartitionMerge.fallbackWindows(offset: offset, limit: limit, partitionSizes: sizes)
            let page = page(fallback, offset: offset, limit: limit)
            #expect(page != nil, "fallback windows must always prove the page")
            return (page ?? [], false)
        }

        /// The page proven from these windows' keys, or nil.
        func page(_ windows: [Range<Int>], offset: Int, limit: Int) -> [LeaderboardEntry]? {
            let keyWindows = zip(parts, windows).map { part, window in
                KeyWindow(
                    localStart: window.lowerBound, keys: part.keys(fromRank: window.lowerBound, limit: window.count),
                    partitionSize: part.count)
            }
            guard let ranges = PartitionMerge.pageRanges(windows: keyWindows, offset: offset, limit: limit) else { return nil }
            let fetched = zip(parts, ranges).map { $0.entries(fromRank: $1.lowerBound, limit: $1.count) }
            #expect(fetched.map(\.count) == ranges.map(\.count), "every proven range exists")
            return PartitionMerge.mergeTop(fetched, limit: limit)
        }
    }

    static func makeBoard(partitions: Int, seed: UInt64, players: Int, scoreRange: Int) -> SplitBoard {
        var random = SplitMix64(seed: seed)
        let config = BoardConfig(id: "m", scoreOrder: seed % 2 == 0 ? .descending : .ascending)
        let board = SplitBoard(
            whole: BoardPartition(config: config), parts: (0..<partitions).map { _ in BoardPartition(config: config) })
        var sequence: UInt64 = 1
        for _ in 0..<(players * 3 / 2) {
            let id = "player-\(random.below(players))"
            let score = Int64(random.below(scoreRange))
            let subscore = Int64(random.below(2))
            sequence += 1
            let whole = try? board.whole.write(playerID: id, score: score, subscore: subscore, metadata: nil, sequence: sequence)
            let part = try? board.part(for: id).write(playerID: id, score: score, subscore: subscore, metadata: nil, sequence: sequence)
            #expect(whole != nil && whole == part)
            if random.chance(5) {
                let victim = "player-\(random.below(players))"
                #expect(board.whole.remove(playerID: victim) == board.part(for: victim).remove(playerID: victim))
            }
        }
        return board
    }

    @Test("S partitions answer like one", arguments: Array(1...8))
    func splitEqualsWhole(partitions: Int) {
        for seed in testSeeds([UInt64(partitions), UInt64(partitions + 100)]) {
            var random = SplitMix64(seed: seed &* 31)
            let board = Self.makeBoard(partitions: partitions, seed: seed, players: 2500, scoreRange: seed > 100 ? 40 : 100_000)
            board.whole.checkInvariants()
            board.parts.forEach { $0.checkInvariants() }
            let codec = board.whole.codec
            let all = board.whole.entries(fromRank: 0, limit: board.whole.count)
            #expect(board.sizes.reduce(0, +) == all.count, "seed \(seed)")

            // Ranks: ordinal and competition, for stored keys and arbitrary ones.
            for _ in 0..<60 {
                let key = random.chance(80) && !all.isEmpty
                    ? all[random.below(all.count)].key
                    : codec.key(score: Int64(random.below(100_000)), subscore: 0, sequence: random.next() % 5000)
                for mode in [RankMode.ordinal, .competition] {
                    let probe = codec.rankProbe(for: key, mode: mode)
                    let global = PartitionMerge.globalRank(localBetterCounts: board.parts.map { $0.countBetter(than: probe) })
                    #expect(global == board.whole.localRank(of: key, mode: mode), "seed \(seed) S=\(partitions) \(mode)")
                }
            }

            // Top N.
            for limit in [0, 1, 10, 100] {
                let merged = PartitionMerge.mergeTop(board.parts.map { $0.entries(fromRank: 0, limit: limit) }, limit: limit)
                #expect(merged == Array(all.prefix(limit)), "seed \(seed) top \(limit)")
            }

            // Pages at offsets: the window path where it can prove the page, the fallback otherwise.
            var windowHits = 0
            var pages = 0
            for offset in [0, 1, 49, 50, 500, 1234, 2000, all.count - 50, all.count - 1, all.count, all.count + 10]
                + (0..<15).map({ _ in random.below(all.count + 1) })
            {
                for limit in [1, 7, 50] {
                    let (page, usedWindows) = board.page(offset: offset, limit: limit)
                    let expected = offset >= 0 && offset < all.count ? Array(all[offset..<min(all.count, offset + limit)]) : []
                    #expect(page == expected, "seed \(seed) S=\(partitions) page \(offset)+\(limit) windows \(usedWindows)")
                    windowHits += usedWindows ? 1 : 0
                    pages += 1
                }
            }
            #expect(windowHits * 10 >= pages * 9, "seed \(seed) S=\(partitions): window path proved only \(windowHits)/\(pages)")

            // Adversarial windows: pageRanges may refuse, but must never be wrong.
            for _ in 0..<40 {
                let offset = random.below(all.count + 5)
                let limit = 1 + random.below(30)
                let windows = board.sizes.map { size -> Range<Int> in
                    let start = random.below(size + 1)
                    return start..<(start + random.below(size - start + 1))
                }
                if let page = board.page(windows, offset: offset, limit: limit) {
                    let expected = offset < all.count ? Array(all[offset..<min(all.count, offset + limit)]) : []
                    #expect(page == expected, "seed \(seed) adversarial windows \(windows) page \(offset)+\(limit)")
                }
            }

            // Neighbours of stored players.
            for _ in 0..<30 where !all.isEmpty {
                let key = all[random.below(all.count)].key
                let before = random.below(7)
                let after = random.below(7)
                let merged = PartitionMerge.mergeNeighbours(
                    better: board.parts.map { $0.entries(before: key, limit: before) },
                    worse: board.parts.map { $0.entries(after: key, limit: after) }, before: before, after: after)
                #expect(merged.better == board.whole.entries(before: key, limit: before), "seed \(seed)")
                let combined = board.parts.map { $0.neighbours(of: key, before: before, after: after) }
                let mergedCombined = PartitionMerge.mergeNeighbours(
                    better: combined.map(\.better), worse: combined.map(\.worse), before: before, after: after)
                #expect(mergedCombined.better == merged.better && mergedCombined.worse == merged.worse)
                #expect(merged.worse == board.whole.entries(after: key, limit: after), "seed \(seed)")
            }

            // Counts.
            for _ in 0..<30 {
                let low: Int64? = random.chance(20) ? nil : Int64(random.below(100_000))
                let high: Int64? = random.chance(20) ? nil : Int64(random.below(100_000))
                #expect(
                    board.parts.map { $0.countScores(min: low, max: high) }.reduce(0, +)
                        == board.whole.countScores(min: low, max: high), "seed \(seed)")
                let a = all.isEmpty ? RankKey.min : all[random.below(all.count)].key
                let b = all.isEmpty ? RankKey.max : all[random.below(all.count)].key
                #expect(board.parts.map { $0.count(from: a, to: b) }.reduce(0, +) == board.whole.count(from: a, to: b))
            }
        }
    }

    @Test("global rank and small merges")
    func helpers() {
        #expect(PartitionMerge.globalRank(localBetterCounts: []) == 1)
        #expect(PartitionMerge.globalRank(localBetterCounts: [3, 0, 4]) == 8)
        #expect(PartitionMerge.mergeTop([[], []], limit: 5).isEmpty)
        #expect(PartitionMerge.pageRanges(windows: [], offset: 0, limit: 10) == [])
        #expect(PartitionMerge.planPageWindows(offset: 0, limit: 10, partitionSizes: [0, 0]) == [0..<0, 0..<0])
        // Client-supplied extremes must not trap.
        _ = PartitionMerge.planPageWindows(offset: .max, limit: .max, partitionSizes: [3, 4])
        _ = PartitionMerge.planPageWindows(offset: .max - 1, limit: 1, partitionSizes: [7])
        _ = PartitionMerge.planPageWindows(offset: 6, limit: .max, partitionSizes: [7])
        #expect(PartitionMerge.fallbackWindows(offset: .max, limit: .max, partitionSizes: [3, 4]) == [0..<3, 0..<4])
        #expect(PartitionMerge.pageRanges(windows: [KeyWindow(localStart: 0, keys: [], partitionSize: 0)], offset: .max, limit: .max) == [0..<0])
        let partition = BoardPartition(config: .defaultConfig(id: "x"))
        _ = try? partition.write(playerID: "a", score: 1, subscore: 0, metadata: nil, sequence: 1)
        #expect(partition.neighbours(of: .min, before: .max, after: .max).worse.count == 1)
        #expect(partition.entries(fromRank: .max, limit: .max).isEmpty)
        #expect(partition.entries(fromRank: 0, limit: .max).count == 1)
    }
}
