import Testing

@testable import HiscoreCore
import HiscoreTestSupport

/// Keys by slot, for driving a tree without a partition.
private struct SlotKeys: LeafKeySource {
    var keys: [RankKey] = []
    func key(ofSlot slot: UInt32) -> RankKey { keys[Int(slot)] }
}

/// Behaviour the other engine tests did not pin down, found by a mutation-testing pass (each
/// test fails with the mutant named in its comment and passes without): entries at the extremes
/// of the subscore and sequence, node reuse and compaction in the arena, accounting of long ids,
/// restores that change only metadata, pages at a board's end or with a limit of Int.max.
@Suite("Engine edges: extreme keys, node reuse, compaction, accounting, restores, page bounds")
struct EngineEdgeTests {
    static let extremeScores: [Int64] = [.min, -1, 0, 1, .max]
    static let extremeSubscores: [Int64] = [.min, -1, 0, .max]
    /// Sequence 0 is a tie group's first key itself; 1 << 56 and .max differ from it at byte 16,
    /// the first byte below a tie group's 16 shared ones.
    static let extremeSequences: [UInt64] = [0, 1, 1 << 56, .max]

    /// Mutant killed: competition ranks counting the tie group's start key itself
    /// (`countBetterOrEqual(than: key.tieGroupStart)`): only an entry of sequence 0 is that key.
    /// Also fails with score-range bounds short of the extreme subscore or sequence, and with a
    /// tie group starting at sequence 1 (which `KeyEncodingTests` catch at the codec).
    @Test("score ranges, ordinal, competition and dense ranks count entries at the extreme subscores and sequences",
          arguments: [SortOrder.descending, .ascending], [SortOrder.descending, .ascending])
    func extremeKeys(scoreOrder: SortOrder, subscoreOrder: SortOrder) throws {
        struct Entry {
            var id: String
            var score: Int64
            var subscore: Int64
            var sequence: UInt64
        }
        func better(_ a: Int64, _ b: Int64, _ order: SortOrder) -> Bool { order == .descending ? a > b : a < b }
        /// Strictly better (score, subscore), from the plain values.
        func groupBetter(_ a: Entry, _ b: Entry) -> Bool {
            a.score != b.score ? better(a.score, b.score, scoreOrder) : better(a.subscore, b.subscore, subscoreOrder)
        }
        func tied(_ a: Entry, _ b: Entry) -> Bool { a.score == b.score && a.subscore == b.subscore }
        func entryBetter(_ a: Entry, _ b: Entry) -> Bool { groupBetter(a, b) || (tied(a, b) && a.sequence < b.sequence) }

        var entries: [Entry] = []
        for score in Self.extremeScores {
            for subscore in Self.extremeSubscores {
                for sequence in Self.extremeSequences {
                    entries.append(Entry(id: "p\(entries.count)", score: score, subscore: subscore, sequence: sequence))
                }
            }
        }
        // Dense-ranked boards answer dense ranks from their group tree, the others by a walk.
        for rankMode in [RankMode.ordinal, .dense] {
            let config = BoardConfig(
                id: "x", scoreOrder: scoreOrder, subscoreOrder: subscoreOrder, writeOperator: .set, rankMode: rankMode)
            let partition = BoardPartition(config: config)
            let codec = config.codec
            for entry in entries {
                _ = try partition.write(
                    playerID: entry.id, score: entry.score, subscore: entry.subscore, metadata: nil, sequence: entry.sequence)
            }
            partition.checkInvariants()
            let context = "\(scoreOrder)/\(subscoreOrder) \(rankMode)"

            let bounds: [Int64?] = [nil] + Self.extremeScores
            for low in bounds {
                for high in bounds {
                    let expected = entries.count { (low == nil || $0.score >= low!) && (high == nil || $0.score <= high!) }
                    #expect(partition.countScores(min: low, max: high) == expected,
                            "\(context): scores \(String(describing: low))...\(String(describing: high))")
                }
            }
            for entry in entries {
                let key = try #require(partition.key(for: entry.id))
                let groupsBetter = Set(entries.filter { groupBetter($0, entry) }.map { [$0.score, $0.subscore] }).count
                let label = "\(context): \(entry.score)/\(entry.subscore) seq \(entry.sequence)"
                #expect(partition.localRank(of: key, mode: .ordinal) == 1 + entries.count { entryBetter($0, entry) }, "\(label)")
                #expect(partition.localRank(of: key, mode: .competition) == 1 + entries.count { groupBetter($0, entry) }, "\(label)")
                #expect(partition.localRank(of: key, mode: .dense) == 1 + groupsBetter, "\(label)")
                #expect(
                    partition.count(
                        from: codec.firstKey(score: entry.score, subscore: entry.subscore),
                        to: codec.lastKey(score: entry.score, subscore: entry.subscore)) == Self.extremeSequences.count,
                    "\(label): the whole tie group")
                #expect(partition.countBetter(than: key.tieGroupStart) == entries.count { groupBetter($0, entry) }, "\(label)")
            }
        }
    }

    /// Mutant killed: an allocation that never takes a node from its layout's free list.
    @Test("removed nodes are reused: the same keys inserted again take no new arena words")
    func freedNodesReused() {
        let seed = testSeeds([41])[0]
        print("EngineEdgeTests.freedNodesReused seed \(seed) (replay with HISCORE_TEST_SEED=\(seed))")
        var random = SplitMix64(seed: seed)
        var keys = SlotKeys()
        var unique = Set<RankKey>()
        while unique.count < 1_500 {
            // Few scores and sequences: sorted, dense and leaf-only nodes of many classes.
            unique.insert(RankKey(word0: 1 << 63 | random.next() % 400, word1: random.next() % 3, word2: random.next() % 50))
        }
        keys.keys = unique.sorted().shuffled(using: &random)  // sorted first: a set's order is per process
        var tree = RadixTree(compactionFloorWords: .max)  // no compaction: every freed node stays listed
        defer { tree.removeAll() }
        func insertAll() {
            for slot in keys.keys.indices {
                let inserted = tree.insert(slot: UInt32(slot), key: keys.keys[slot], keys: keys)
                #expect(inserted)
            }
        }
        insertAll()
        // Removals hand out words too (a shrinking node moves to a smaller class).
        for slot in keys.keys.indices.shuffled(using: &random) {
            let removed = tree.remove(slot: UInt32(slot), key: keys.keys[slot])
            #expect(removed)
        }
        let handedOut = tree.arena.handedOutWords
        #expect(tree.arena.liveNodes == 0 && tree.arena.freeWords == handedOut, "seed \(seed)")
        insertAll()
        #expect(tree.arena.handedOutWords == handedOut, "seed \(seed): the second insertion took new words")
        #expect(tree.checkInvariants(keys: keys).count == keys.keys.count)
    }

    /// Mutant killed: an arena that never asks for compaction.
    @Test("an arena with over an eighth of its words free (and at least its floor) is compacted")
    func compactionPolicy() {
        let seed = testSeeds([43])[0]
        print("EngineEdgeTests.compactionPolicy seed \(seed) (replay with HISCORE_TEST_SEED=\(seed))")
        var random = SplitMix64(seed: seed)
        let floor = 256
        var keys = SlotKeys()
        var unique = Set<RankKey>()
        while unique.count < 4_000 {
            unique.insert(RankKey(word0: 1 << 63 | random.next() % 100_000, word1: 0, word2: random.next() % 4))
        }
        keys.keys = unique.sorted().shuffled(using: &random)
        var tree = RadixTree(compactionFloorWords: floor)
        defer { tree.removeAll() }
        for slot in keys.keys.indices {
            let inserted = tree.insert(slot: UInt32(slot), key: keys.keys[slot], keys: keys)
            #expect(inserted)
        }
        let peak = tree.reservedBytes
        let removals = Array(keys.keys.indices.shuffled(using: &random).prefix(3_900))
        for (step, slot) in removals.enumerated() {
            let removed = tree.remove(slot: UInt32(slot), key: keys.keys[slot])
            #expect(removed)
            let free = tree.arena.freeWords
            let words = tree.reservedBytes / 4
            #expect(free < floor || free * 8 <= words, "seed \(seed) step \(step): \(free) of \(words) words free")
            if step % 500 == 0 { #expect(tree.checkInvariants(keys: keys).count == keys.keys.count - step - 1) }
        }
        #expect(tree.reservedBytes * 4 < peak, "seed \(seed): \(tree.reservedBytes) bytes kept of a peak of \(peak)")
        let left = Set(keys.keys.indices).subtracting(removals).sorted { keys.keys[$0] < keys.keys[$1] }
        #expect(tree.checkInvariants(keys: keys) == left.map(UInt32.init))
    }

    /// Mutant killed: a removal that frees a long id's blob without taking it off the blob count.
    @Test("long player ids are counted in the blob bytes while stored, and not after their removal")
    func longIDAccounting() throws {
        let partition = BoardPartition(config: BoardConfig(id: "ids", writeOperator: .set))
        var expected = 0
        for index in 0..<300 {
            let id = "p\(index)-" + String(repeating: "z", count: index % 40)
            _ = try partition.write(playerID: id, score: Int64(index), subscore: 0, metadata: nil, sequence: UInt64(index + 1))
            if id.utf8.count > EntryRecord.inlineIDCapacity { expected += id.utf8.count }
        }
        #expect(expected > 0)
        #expect(partition.memoryUsage.blobs == expected, "\(partition.memoryUsage)")
        // Score changes keep the stored id.
        for index in stride(from: 0, to: 300, by: 3) {
            let id = "p\(index)-" + String(repeating: "z", count: index % 40)
            _ = try partition.write(playerID: id, score: -Int64(index), subscore: 0, metadata: nil, sequence: UInt64(1000 + index))
        }
        #expect(partition.memoryUsage.blobs == expected, "\(partition.memoryUsage)")
        for index in 0..<300 {
            let id = "p\(index)-" + String(repeating: "z", count: index % 40)
            #expect(partition.remove(playerID: id) != nil)
        }
        #expect(partition.memoryUsage.blobs == 0, "\(partition.memoryUsage)")
    }

    /// Mutant killed: `pageRanges` adding offset and limit without saturating (a client's limit of
    /// Int.max wrapped the page's end negative: an empty page from any offset but 0).
    @Test("a page asked with a limit of Int.max holds every entry from its offset on")
    func pageWithLargestLimit() throws {
        let parts = (0..<2).map { _ in BoardPartition(config: .defaultConfig(id: "h")) }
        for n in 0..<40 {
            _ = try parts[n % 2].write(playerID: "p\(n)", score: Int64(n), subscore: 0, metadata: nil, sequence: UInt64(n + 1))
        }
        let sizes = parts.map(\.count)
        for offset in [0, 1, 25, 39, 40] {
            let windows = PartitionMerge.fallbackWindows(offset: offset, limit: .max, partitionSizes: sizes)
            let keyWindows = zip(parts, windows).map { part, window in
                KeyWindow(localStart: window.lowerBound, keys: part.keys(fromRank: window.lowerBound, limit: window.count), partitionSize: part.count)
            }
            let ranges = try #require(PartitionMerge.pageRanges(windows: keyWindows, offset: offset, limit: .max), "offset \(offset)")
            let page = PartitionMerge.mergeTop(zip(parts, ranges).map { $0.entries(fromRank: $1.lowerBound, limit: $1.count) }, limit: .max)
            #expect(page.map(\.score) == Array(stride(from: Int64(39 - offset), through: 0, by: -1)), "offset \(offset)")
        }
    }

    /// Mutant killed: `restore` taking a state with the stored (score, subscore, sequence) for the
    /// stored state whatever its metadata (recovery replays a metadata-only write as such a state).
    @Test("restoring the stored key with other metadata replaces the metadata; the same state changes nothing")
    func restoreMetadataOnly() throws {
        let partition = BoardPartition(config: BoardConfig(id: "r", writeOperator: .best))
        try partition.restore(playerID: "alice", score: 5, subscore: 1, metadata: [1], sequence: 10)
        try partition.restore(playerID: "bob", score: 7, subscore: 0, metadata: [], sequence: 11)
        try partition.restore(playerID: "alice", score: 5, subscore: 1, metadata: [2, 3], sequence: 10)
        #expect(partition.entry(for: "alice")?.metadata == [2, 3])
        try partition.restore(playerID: "alice", score: 5, subscore: 1, metadata: [], sequence: 10)
        #expect(partition.entry(for: "alice")?.metadata == [])
        try partition.restore(playerID: "alice", score: 5, subscore: 1, metadata: [], sequence: 10)
        let alice = partition.entry(for: "alice")
        #expect(alice?.score == 5 && alice?.subscore == 1 && alice?.sequence == 10 && alice?.metadata == [])
        let key = try #require(alice?.key)
        #expect(partition.count == 2 && partition.localRank(of: key, mode: .ordinal) == 2)
        partition.checkInvariants()
    }

    /// Mutant killed: planned windows that never reach a partition's last entry (every page at the
    /// end of the board then needed the fallback's full windows).
    @Test("the last pages of a board are proven by the planned windows")
    func lastPagesProven() throws {
        let config = BoardConfig(id: "e")
        let parts = [BoardPartition(config: config), BoardPartition(config: config)]
        for n in 0..<600 {
            _ = try parts[n % 2].write(playerID: "p\(n)", score: Int64(1000 - n), subscore: 0, metadata: nil, sequence: UInt64(n + 1))
        }
        let sizes = parts.map(\.count)
        for (offset, limit) in [(590, 10), (599, 1), (580, 50)] {
            for slack in [PartitionMerge.WindowSlack.tight, .wide] {
                let windows = PartitionMerge.planPageWindows(offset: offset, limit: limit, partitionSizes: sizes, slack: slack)
                let keyWindows = zip(parts, windows).map { part, window in
                    KeyWindow(localStart: window.lowerBound, keys: part.keys(fromRank: window.lowerBound, limit: window.count), partitionSize: part.count)
                }
                let ranges = PartitionMerge.pageRanges(windows: keyWindows, offset: offset, limit: limit)
                #expect(ranges?.map(\.count).reduce(0, +) == min(limit, 600 - offset), "page \(offset)+\(limit) \(slack): windows \(windows)")
            }
        }
    }
}
