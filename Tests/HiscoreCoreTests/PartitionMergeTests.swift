import Testing
@testable import HiscoreCore
import HiscoreTestSupport

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

        /// Which windows proved a page.
        enum Proof: Equatable {
            case tight, wide, fallback
        }

        /// The server's path: tight key windows planned from an even split of the board, then
        /// wide ones from the partitions' sizes, then every key up to the page's end; the proven
        /// ranges, then exactly those entries.
        func page(offset: Int, limit: Int) -> (entries: [LeaderboardEntry], proof: Proof) {
            let even = Array(repeating: sizes.reduce(0, +) / parts.count, count: parts.count)
            let tight = PartitionMerge.planPageWindows(offset: offset, limit: limit, partitionSizes: even, slack: .tight)
            if let page = page(tight, offset: offset, limit: limit) { return (page, .tight) }
            let wide = PartitionMerge.planPageWindows(offset: offset, limit: limit, partitionSizes: sizes, slack: .wide)
            if let page = page(wide, offset: offset, limit: limit) { return (page, .wide) }
            let fallback = PartitionMerge.fallbackWindows(offset: offset, limit: limit, partitionSizes: sizes)
            let page = page(fallback, offset: offset, limit: limit)
            #expect(page != nil, "fallback windows must always prove the page")
            return (page ?? [], .fallback)
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
            var tightHits = 0
            var pages = 0
            for offset in [0, 1, 49, 50, 500, 1234, 2000, all.count - 50, all.count - 1, all.count, all.count + 10]
                + (0..<15).map({ _ in random.below(all.count + 1) })
            {
                for limit in [1, 7, 50] {
                    let (page, proof) = board.page(offset: offset, limit: limit)
                    let expected = offset >= 0 && offset < all.count ? Array(all[offset..<min(all.count, offset + limit)]) : []
                    #expect(page == expected, "seed \(seed) S=\(partitions) page \(offset)+\(limit) proof \(proof)")
                    windowHits += proof == .fallback ? 0 : 1
                    tightHits += proof == .tight ? 1 : 0
                    pages += 1
                }
            }
            #expect(windowHits * 10 >= pages * 9, "seed \(seed) S=\(partitions): window path proved only \(windowHits)/\(pages)")
            // (Small boards over many partitions miss more often; windowProofRates checks the
            // rates on a large board.)
            #expect(tightHits * 10 >= pages * 7, "seed \(seed) S=\(partitions): tight windows proved only \(tightHits)/\(pages)")

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
                // The same in one run with the player between (what an around answer builds).
                let centre = all.first { $0.key == key }
                let (run, betterTaken) = PartitionMerge.neighbourRun(
                    better: combined.map(\.better), centre: centre, worse: combined.map(\.worse), before: before, after: after)
                #expect(run == merged.better + [centre].compactMap { $0 } + merged.worse, "seed \(seed)")
                #expect(betterTaken == merged.better.count, "seed \(seed)")
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

    @Test("tight page windows prove most pages of a large board, wide ones nearly all", arguments: [2, 3, 8])
    func windowProofRates(partitions: Int) {
        let seed = testSeeds([UInt64(500 + partitions)])[0]
        var random = SplitMix64(seed: seed)
        let config = BoardConfig(id: "w")
        let parts = (0..<partitions).map { _ in BoardPartition(config: config) }
        let players = 30_000
        for n in 0..<players {
            let id = "p:\(n)"
            _ = try? parts[Int(Self.hash(id) % UInt64(partitions))].write(
                playerID: id, score: Int64(random.below(1_000_000)), subscore: 0, metadata: nil, sequence: UInt64(n + 1))
        }
        let board = SplitBoard(whole: BoardPartition(config: config), parts: parts)
        var counts: [SplitBoard.Proof: Int] = [:]
        let pages = 400
        for _ in 0..<pages {
            let offset = 1 + random.below(players - 50)
            let (page, proof) = board.page(offset: offset, limit: 50)
            #expect(page.count == 50, "seed \(seed) offset \(offset)")
            counts[proof, default: 0] += 1
        }
        // Tight windows miss a few percent of pages (the interleaving of hashed players is
        // binomial), wide ones about 1 in 15,000 per partition.
        #expect(counts[.tight, default: 0] * 100 >= pages * 90, "seed \(seed) S=\(partitions): \(counts)")
        #expect(counts[.fallback, default: 0] <= 1, "seed \(seed) S=\(partitions): \(counts)")
    }

    @Test("runs around a page's anchor key prove it in one fetch, and are never wrong", arguments: [2, 3, 8])
    func anchoredPages(partitions: Int) {
        let seed = testSeeds([UInt64(700 + partitions)])[0]
        var random = SplitMix64(seed: seed)
        let config = BoardConfig(id: "a")
        let board = SplitBoard(
            whole: BoardPartition(config: config), parts: (0..<partitions).map { _ in BoardPartition(config: config) })
        let players = 20_000
        for n in 0..<players {
            let id = "p:\(n)"
            let score = Int64(random.below(1_000_000))
            _ = try? board.whole.write(playerID: id, score: score, subscore: 0, metadata: nil, sequence: UInt64(n + 1))
            _ = try? board.part(for: id).write(playerID: id, score: score, subscore: 0, metadata: nil, sequence: UInt64(n + 1))
        }
        let all = board.whole.entries(fromRank: 0, limit: board.whole.count)
        func runs(around key: RankKey, limit: Int) -> [EntryRun] {
            let run = PartitionMerge.anchoredRun(limit: limit, partitions: partitions)
            return board.parts.map { $0.entryRun(around: key, before: run.before, count: run.count) }
        }
        func expected(_ offset: Int, _ limit: Int) -> [LeaderboardEntry] {
            offset < all.count ? Array(all[offset..<min(all.count, offset + limit)]) : []
        }
        // The anchor where the page begins (a page asked again with no write between), or a few
        // places off (writes moved the page since its anchor was recorded): proven or refused,
        // never wrong.
        var exactHits = 0
        var nearHits = 0
        let pages = 300
        for _ in 0..<pages {
            let offset = 1 + random.below(players - 1)
            let limit = [1, 10, 50, 100][random.below(4)]
            let exact = PartitionMerge.page(from: runs(around: all[offset].key, limit: limit), offset: offset, limit: limit)
            #expect(exact == nil || exact == expected(offset, limit), "seed \(seed) S=\(partitions) page \(offset)+\(limit)")
            exactHits += exact == nil ? 0 : 1
            let drift = random.below(5) - 2
            let anchor = all[max(0, min(all.count - 1, offset + drift))].key
            let near = PartitionMerge.page(from: runs(around: anchor, limit: limit), offset: offset, limit: limit)
            #expect(near == nil || near == expected(offset, limit), "seed \(seed) S=\(partitions) page \(offset)+\(limit) drift \(drift)")
            nearHits += near == nil ? 0 : 1
        }
        // Misses: a partition's share of the page past 3 deviations plus the margin.
        #expect(exactHits * 100 >= pages * 98, "seed \(seed) S=\(partitions): exact anchors proved \(exactHits)/\(pages)")
        #expect(nearHits * 100 >= pages * 90, "seed \(seed) S=\(partitions): anchors 2 off proved \(nearHits)/\(pages)")

        // Anchors hundreds of places off: the runs miss, and the ranges `rerunRanges` places
        // from them prove the page (or it says the page is too far for runs).
        var reruns = 0
        var rerunHits = 0
        for _ in 0..<200 {
            let offset = 1 + random.below(players - 101)
            let limit = [10, 50, 100][random.below(3)]
            let drift = random.below(1_601) - 800
            let anchor = all[max(0, min(all.count - 1, offset + drift))].key
            let missed = runs(around: anchor, limit: limit)
            if PartitionMerge.page(from: missed, offset: offset, limit: limit) != nil { continue }
            guard let ranges = PartitionMerge.rerunRanges(after: missed, anchor: anchor, offset: offset, limit: limit) else {
                Issue.record("seed \(seed) S=\(partitions): no rerun for a drift of \(drift)")
                continue
            }
            let fetched = zip(board.parts, ranges).map { part, range in
                EntryRun(localStart: range.lowerBound, entries: part.entries(fromRank: range.lowerBound, limit: range.count), partitionSize: part.count)
            }
            let page = PartitionMerge.page(from: fetched, offset: offset, limit: limit)
            #expect(page == nil || page == expected(offset, limit), "seed \(seed) S=\(partitions) rerun \(offset)+\(limit) drift \(drift)")
            reruns += 1
            rerunHits += page == nil ? 0 : 1
        }
        #expect(reruns >= 100 && rerunHits * 100 >= reruns * 97, "seed \(seed) S=\(partitions): reruns proved \(rerunHits)/\(reruns)")
        // The failed runs count exactly what beats the anchor on each partition: with no drift,
        // each range starts `margin` entries before the anchor's place there.
        for _ in 0..<100 {
            let offset = random.below(players)
            let anchor = all[offset].key
            let ranges = PartitionMerge.rerunRanges(after: runs(around: anchor, limit: 50), anchor: anchor, offset: offset, limit: 50)
            #expect(ranges?.count == partitions)
            for (part, range) in zip(board.parts, ranges ?? []) {
                let better = part.countBetter(than: anchor)
                #expect(range.lowerBound == max(0, min(better - 4, part.count - 1)), "seed \(seed) S=\(partitions) anchor at \(offset)")
            }
        }
        // A page thousands of places from its anchor: key windows are cheaper than such runs.
        let distant = runs(around: all[10_000].key, limit: 50)
        #expect(PartitionMerge.rerunRanges(after: distant, anchor: all[10_000].key, offset: 2_000, limit: 50) == nil)

        // Anchors anywhere (far from the page, keys no entry holds) and runs of any size.
        for _ in 0..<300 {
            let offset = random.below(players + 10)
            let limit = 1 + random.below(60)
            let key = random.chance(50)
                ? all[random.below(all.count)].key
                : board.whole.codec.key(score: Int64(random.below(1_000_000)), subscore: 0, sequence: random.next() % 30_000)
            let before = random.below(20)
            let count = random.below(80)
            let page = PartitionMerge.page(
                from: board.parts.map { $0.entryRun(around: key, before: before, count: count) }, offset: offset, limit: limit)
            #expect(page == nil || page == expected(offset, limit), "seed \(seed) S=\(partitions) page \(offset)+\(limit) runs \(before)/\(count)")
        }
        #expect(PartitionMerge.anchoredRun(limit: 50, partitions: 1) == (0, 50))
        // A client's extremes must not trap; offsets outside the board get no rerun.
        _ = PartitionMerge.anchoredRun(limit: .max, partitions: 2)
        _ = PartitionMerge.anchoredRun(limit: .min, partitions: 8)
        let around = runs(around: all[100].key, limit: 50)
        for (offset, limit) in [(Int.max, Int.max), (0, Int.max), (Int.max - 1, 1), (-1, 10), (.min, 10), (5, 0), (5, .min)] {
            let ranges = PartitionMerge.rerunRanges(after: around, anchor: all[100].key, offset: offset, limit: limit)
            if offset < 0 || offset >= players || limit <= 0 { #expect(ranges == nil, "offset \(offset) limit \(limit)") }
            #expect(PartitionMerge.page(from: around, offset: offset, limit: limit).map { $0.isEmpty || offset >= 0 } ?? true)
        }
        #expect(board.parts[0].entryRun(around: all[100].key, before: .max, count: .max).localStart == 0)
    }

    @Test("a page whose shards interleave beyond the tight windows is proven by the wide ones")
    func wideWindowsAfterTightMiss() throws {
        // Global order (descending scores): positions 0..<250 hold 160 of A's players and 90 of
        // B's, the page 250..<300 alternates, then the rest. The tight windows planned for 300 +
        // 300 players ([99, 176) each) miss both shards' parts of the page (A's local ranks
        // 160..<185, B's 90..<115); the wide ones ([82, 193)) hold them.
        var owners = Array(repeating: 0, count: 70)
        for _ in 0..<90 { owners += [0, 1] }
        for _ in 0..<25 { owners += [0, 1] }
        for _ in 0..<115 { owners += [0, 1] }
        owners += Array(repeating: 1, count: 70)
        #expect(owners.count == 600 && owners.filter { $0 == 0 }.count == 300)
        let config = BoardConfig(id: "s")
        let board = SplitBoard(
            whole: BoardPartition(config: config), parts: [BoardPartition(config: config), BoardPartition(config: config)])
        for (position, owner) in owners.enumerated() {
            let id = "\(owner == 0 ? "a" : "b")\(position)"
            let score = Int64(1000 - position)
            _ = try board.whole.write(playerID: id, score: score, subscore: 0, metadata: nil, sequence: UInt64(position + 1))
            _ = try board.parts[owner].write(playerID: id, score: score, subscore: 0, metadata: nil, sequence: UInt64(position + 1))
        }
        let tight = PartitionMerge.planPageWindows(offset: 250, limit: 50, partitionSizes: [300, 300], slack: .tight)
        #expect(tight == [99..<176, 99..<176])
        #expect(board.page(tight, offset: 250, limit: 50) == nil)
        let (page, proof) = board.page(offset: 250, limit: 50)
        #expect(proof == .wide)
        #expect(page == board.whole.entries(fromRank: 250, limit: 50))
        #expect(page.map(\.score) == (250..<300).map { Int64(1000 - $0) })
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
