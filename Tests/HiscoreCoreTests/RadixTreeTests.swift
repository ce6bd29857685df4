import Testing
@testable import HiscoreCore
import HiscoreTestSupport

/// Keys by slot, for driving the tree without a partition.
private struct ArrayKeys: LeafKeySource {
    var keys: [RankKey] = []
    func key(ofSlot slot: UInt32) -> RankKey { keys[Int(slot)] }
}

/// Random keys whose bytes vary only at some positions (and among few values), so trees get
/// shared prefixes, skipped bytes and ties at every depth.
private struct KeyShape {
    var alphabets: [[UInt8]]

    init(random: inout SplitMix64) {
        alphabets = (0..<24).map { _ in
            switch random.below(6) {
            case 0, 1: return [UInt8(truncatingIfNeeded: random.next())]  // constant byte
            case 2: return [0, 0xFF]
            case 3: return [0, 1, 2, 0x7F, 0x80, 0xFE, 0xFF]
            default: return (0..<(1 + random.below(40))).map { _ in UInt8(truncatingIfNeeded: random.next()) }
            }
        }
    }

    /// Mostly constant bytes, one byte taking all 256 values and a few small-alphabet bytes:
    /// grows dense 256-way nodes and shrinks them back.
    init(wide random: inout SplitMix64) {
        self.init(random: &random)
        let wideByte = random.below(22)
        for index in 0..<24 where index != wideByte {
            alphabets[index] = index >= 22 ? [0, 1, 2] : [UInt8(truncatingIfNeeded: random.next())]
        }
        alphabets[wideByte] = (0...255).map { UInt8($0) }
    }

    /// Mostly constant bytes, one byte taking 140 values with one of them drawn half the time,
    /// then a byte of 256 values and one of three: grows a node past the sorted classes (narrow
    /// dense) whose most common child passes 255 entries (the node turns wide), then shrinks it.
    init(skewed random: inout SplitMix64) {
        self.init(random: &random)
        let skewedByte = random.below(20)
        let variedByte = skewedByte + 1 + random.below(22 - skewedByte)
        for index in 0..<24 {
            alphabets[index] = index == 23 ? [0, 1, 2] : [UInt8(truncatingIfNeeded: random.next())]
        }
        alphabets[skewedByte] = Array(repeating: 0, count: 150) + (1..<140).map { UInt8($0) }
        alphabets[variedByte] = (0...255).map { UInt8($0) }
    }

    func make(_ random: inout SplitMix64) -> RankKey {
        RankKey(bytes: alphabets.map { $0[random.below($0.count)] })!
    }
}

/// A tree whose keys vary at byte 7 (`value`: the children of one node at depth 7), byte 15
/// (`middle`) and bytes 22-23 (`sequence`), checked against the keys it holds: for the dense
/// node tests, which grow, widen and shrink that one node.
private final class DenseNodeRig {
    var keys = ArrayKeys()
    var tree = RadixTree()
    var slotOf: [RankKey: UInt32] = [:]

    static func key(_ value: Int, _ middle: Int, _ sequence: Int) -> RankKey {
        RankKey(word0: 0x8000_0000_0000_0000 | UInt64(value), word1: UInt64(middle), word2: UInt64(sequence))
    }

    /// The size class of the node at depth 7, if there is one.
    func classAtDepth7() -> Int? {
        var ref = tree.root
        while !RadixTree.isLeaf(ref) {
            let current = tree.arena.node(ref)
            if current.depth == 7 { return current.sizeClass }
            ref = current.children[current.firstIndex]
        }
        return nil
    }

    func insert(_ value: Int, _ middle: Int, _ sequence: Int) {
        let key = Self.key(value, middle, sequence)
        keys.keys.append(key)
        let slot = UInt32(keys.keys.count - 1)
        let less = slotOf.keys.count { $0 < key }
        let counted = tree.insert(slot: slot, key: key, keys: keys, countingLess: true)
        #expect(counted == less)
        slotOf[key] = slot
    }

    func remove(_ value: Int, _ middle: Int, _ sequence: Int) throws {
        try remove(Self.key(value, middle, sequence))
    }

    private func remove(_ key: RankKey) throws {
        let stored = slotOf.removeValue(forKey: key)
        let slot = try #require(stored)
        let removed = tree.remove(slot: slot, key: key)
        #expect(removed)
    }

    /// Removes every key in random order; the arena must end empty.
    func removeAll(using random: inout SplitMix64) throws {
        for key in Array(slotOf.keys).sorted().shuffled(using: &random) { try remove(key) }
        #expect(tree.count == 0 && tree.arena.liveNodes == 0)
    }

    /// Invariants, and the rank and select of every fifth key, against the keys held.
    func check(_ label: String) {
        let order = slotOf.sorted { $0.key < $1.key }.map(\.value)
        #expect(tree.checkInvariants(keys: keys) == order, "\(label)")
        for (rank, slot) in order.enumerated() where rank % 5 == 0 {
            #expect(tree.select(rank) == slot, "\(label)")
            #expect(tree.countLess(than: keys.keys[Int(slot)], orEqual: false, keys: keys) == rank, "\(label)")
        }
    }
}

@Suite("Radix tree")
struct RadixTreeTests {
    @Test("differential against a sorted array", arguments: testSeeds(Array(1...12)))
    func differential(seed: UInt64) {
        var random = SplitMix64(seed: seed)
        let skewed = seed % 6 == 2
        let wide = seed % 3 == 0 || skewed
        let shape = skewed ? KeyShape(skewed: &random) : wide ? KeyShape(wide: &random) : KeyShape(random: &random)
        var keys = ArrayKeys()
        // Odd seeds compact whenever a few nodes are free, so compaction runs mid-sequence.
        var tree = seed % 2 == 1 ? RadixTree(compactionFloorWords: 16) : RadixTree()
        defer { tree.removeAll() }
        var live: [UInt32] = []  // slots in the tree
        var free: [UInt32] = []
        var present = Set<RankKey>()
        let operations = 1500

        func sortedSlots() -> [UInt32] { live.sorted { keys.keys[Int($0)] < keys.keys[Int($1)] } }

        for step in 0..<operations {
            let roll = random.below(100)
            // Wide shapes alternate growth and shrink phases to cross node class thresholds.
            let insertPercent = wide ? (step / 700 % 2 == 0 ? 95 : 15) : 60
            if roll < insertPercent || live.count < 3 {
                let key = random.chance(90) ? shape.make(&random) : RankKey(word0: random.next(), word1: random.next(), word2: random.next())
                let slot: UInt32
                if let reused = free.popLast() { slot = reused } else { slot = UInt32(keys.keys.count); keys.keys.append(.min) }
                keys.keys[Int(slot)] = key
                let less = present.count(where: { $0 < key })
                let counted = tree.insert(slot: slot, key: key, keys: keys, countingLess: step % 2 == 0)
                #expect((counted != nil) == !present.contains(key), "seed \(seed) step \(step)")
                if let counted {
                    #expect(counted == (step % 2 == 0 ? less : 0), "seed \(seed) step \(step): keys below an inserted key")
                    live.append(slot)
                    present.insert(key)
                } else {
                    free.append(slot)
                }
            } else if roll < 97 || wide {
                let victim = random.below(live.count)
                let slot = live[victim]
                let wrongRemoved = tree.remove(slot: slot &+ 100_000, key: keys.keys[Int(slot)])
                #expect(!wrongRemoved, "seed \(seed): removed a wrong slot")
                let less = present.count(where: { $0 < keys.keys[Int(slot)] })
                let removed = tree.remove(slot: slot, key: keys.keys[Int(slot)], countingLess: true)
                #expect(removed == less, "seed \(seed) step \(step): keys below a removed key")
                // Both states of the root prefix get probed: cut back by a collapse, and refreshed.
                if random.chance(50) { tree.refreshRootPrefix(keys: keys) }
                present.remove(keys.keys[Int(slot)])
                live.swapAt(victim, live.count - 1)
                free.append(live.removeLast())
            } else if roll < 98 && random.chance(50) {
                tree.compact()
            } else if roll < 98 {
                tree.removeAll()
                free += live
                live.removeAll()
                present.removeAll()
            } else {
                // Remove everything one by one, to exercise collapsing down to an empty tree.
                for slot in live.shuffled(using: &random) {
                    let removed = tree.remove(slot: slot, key: keys.keys[Int(slot)])
                    #expect(removed)
                }
                free += live
                live.removeAll()
                present.removeAll()
            }

            let order = sortedSlots()
            #expect(tree.checkInvariants(keys: keys) == order, "seed \(seed) step \(step)")
            #expect(tree.count == order.count)
            let sortedKeys = order.map { keys.keys[Int($0)] }

            // Rank of stored keys, absent keys of the same shape, keys next to stored ones.
            for _ in 0..<6 {
                var probe: RankKey
                switch random.below(4) {
                case 0 where !sortedKeys.isEmpty: probe = sortedKeys[random.below(sortedKeys.count)]
                case 1 where !sortedKeys.isEmpty:
                    probe = sortedKeys[random.below(sortedKeys.count)]
                    probe.word2 = random.chance(50) ? probe.word2 &+ 1 : probe.word2 &- 1
                case 2: probe = RankKey(word0: random.next(), word1: random.next(), word2: random.next())
                default: probe = shape.make(&random)
                }
                let less = sortedKeys.count { $0 < probe }
                #expect(tree.countLess(than: probe, orEqual: false, keys: keys) == less, "seed \(seed) step \(step) \(probe)")
                #expect(tree.countLess(absent: probe, keys: keys) == less, "seed \(seed) step \(step) \(probe), as an absent key")
                #expect(tree.countLess(than: probe, orEqual: true, keys: keys) == less + (present.contains(probe) ? 1 : 0))
            }
            if !order.isEmpty {
                let rank = random.below(order.count)
                #expect(tree.select(rank) == order[rank], "seed \(seed) step \(step)")
                let ascending = random.chance(50)
                var visited: [UInt32] = []
                let want = random.below(12)
                tree.forEachSlot(fromRank: rank, ascending: ascending) { slot in
                    visited.append(slot)
                    return visited.count < want
                }
                let expected = ascending
                    ? Array(order[rank..<min(order.count, rank + max(want, 1))])
                    : Array(order[max(0, rank - max(want, 1) + 1)...rank].reversed())
                #expect(visited == expected, "seed \(seed) step \(step) iterate from \(rank)")
                let prefix = random.below(order.count + 1)
                let groups = Set(sortedKeys[..<prefix].map { [$0.word0, $0.word1] }).count
                #expect(tree.distinctGroups(inFirst: prefix) == groups, "seed \(seed) step \(step)")
            }
        }
    }

    @Test("full iteration both ways and every select, on a larger tree")
    func largeTree() {
        var random = SplitMix64(seed: 99)
        var keys = ArrayKeys()
        var tree = RadixTree()
        defer { tree.removeAll() }
        for slot in 0..<5000 {
            // Few distinct scores: many nodes separate sequences.
            let key = RankKey(word0: 1 << 63 | random.next() % 300, word1: 0, word2: UInt64(slot) * 7919 % 100_003)
            keys.keys.append(key)
            let inserted = tree.insert(slot: UInt32(slot), key: key, keys: keys)
            #expect(inserted)
        }
        let order = tree.checkInvariants(keys: keys)
        #expect(order.count == 5000)
        var forward: [UInt32] = []
        tree.forEachSlot(fromRank: 0, ascending: true) { forward.append($0); return true }
        #expect(forward == order)
        var backward: [UInt32] = []
        tree.forEachSlot(fromRank: 4999, ascending: false) { backward.append($0); return true }
        #expect(backward == order.reversed())
        for rank in stride(from: 0, to: 5000, by: 37) { #expect(tree.select(rank) == order[rank]) }
        #expect(tree.distinctGroups(inFirst: 5000) == Set(keys.keys.map(\.word0)).count)
        // Tear down in random order; the arena must end empty.
        for slot in order.shuffled(using: &random) {
            let removed = tree.remove(slot: slot, key: keys.keys[Int(slot)])
            #expect(removed)
        }
        #expect(tree.count == 0)
        #expect(tree.arena.liveNodes == 0)
    }

    @Test("a key absent from the tree is counted right after the root collapses, before and after the root prefix is refreshed")
    func absentKeyAfterRootCollapse() {
        func key(_ first: UInt8, _ second: UInt8) -> RankKey {
            RankKey(word0: UInt64(first) << 56 | UInt64(second) << 48, word1: 0, word2: 0)
        }
        var keys = ArrayKeys(keys: [key(0x10, 0x20), key(0x20, 0x00), key(0x10, 0x30)])
        var tree = RadixTree()
        defer { tree.removeAll() }
        for slot in 0..<3 {
            let inserted = tree.insert(slot: UInt32(slot), key: keys.keys[slot], keys: keys)
            #expect(inserted)
        }
        // The root branches on byte 0; removing the only 0x20 key leaves its 0x10 child, which
        // branches on byte 1, as the root: the prefix kept from before no longer vouches for it.
        let removed = tree.remove(slot: 1, key: keys.keys[1])
        #expect(removed)
        #expect(tree.rootPrefixBytes < tree.arena.node(tree.root).depth)
        let probes = [key(0x20, 0x25), key(0x10, 0x25), key(0x05, 0x40), key(0x10, 0x40), key(0x30, 0x00)]
        func check(_ state: String) {
            for probe in probes {
                let expected = [0, 2].filter { keys.keys[$0] < probe }.count
                #expect(tree.countLess(absent: probe, keys: keys) == expected, "\(state): \(probe)")
            }
            _ = tree.checkInvariants(keys: keys)
        }
        check("cut back")
        tree.refreshRootPrefix(keys: keys)
        #expect(tree.rootPrefixBytes == RankKey.byteCount)
        check("refreshed")
        keys.keys.append(key(0x40, 0x00))
        let insertedAbove = tree.insert(slot: 3, key: keys.keys[3], keys: keys)
        #expect(insertedAbove)
        #expect(tree.countLess(absent: key(0x30, 0x00), keys: keys) == 2)
    }

    @Test("an insert reads no leaf key where the key's byte is missing below no skipped byte, and reads one otherwise")
    func insertAtMissingByte() {
        final class CountingKeys: LeafKeySource {
            var keys: [RankKey] = []
            var reads = 0
            func key(ofSlot slot: UInt32) -> RankKey {
                reads += 1
                return keys[Int(slot)]
            }
        }
        func key(_ first: UInt8, _ second: UInt8, middle: UInt64 = 0) -> RankKey {
            RankKey(word0: UInt64(first) << 56 | UInt64(second) << 48, word1: middle, word2: 0)
        }
        let keys = CountingKeys()
        var tree = RadixTree()
        defer { tree.removeAll() }
        func insert(_ key: RankKey, expectedReads: Int, _ comment: Comment) {
            keys.keys.append(key)
            keys.reads = 0
            let inserted = tree.insert(slot: UInt32(keys.keys.count - 1), key: key, keys: keys)
            #expect(inserted, comment)
            #expect(keys.reads == expectedReads, comment)
            #expect(tree.checkInvariants(keys: keys).count == keys.keys.count, comment)
            for (slot, probe) in keys.keys.enumerated() {
                #expect(tree.countLess(than: probe, orEqual: false, keys: keys) == keys.keys.filter { $0 < probe }.count,
                        "\(comment): slot \(slot)")
            }
        }
        insert(key(0x10, 0x20), expectedReads: 0, "the first key")
        insert(key(0x20, 0x00), expectedReads: 1, "a root leaf is read")
        insert(key(0x30, 0x00), expectedReads: 0, "byte 0 missing at the root (depth 0)")
        insert(key(0x10, 0x25), expectedReads: 1, "byte 0 held by a leaf: its key says where they differ")
        insert(key(0x10, 0x40), expectedReads: 0, "byte 1 missing at a node of depth 1 under the root")
        insert(key(0x50, 0x00, middle: 1), expectedReads: 0, "byte 0 missing at the root")
        insert(key(0x50, 0x00, middle: 2), expectedReads: 1, "a leaf under 0x50")
        // The 0x50 node branches on byte 15, skipping bytes 2...14: a key differing at byte 10
        // has its byte 15 missing there, yet splits above it; only a leaf's key can say so.
        insert(key(0x50, 0x00, middle: 1 << 40 | 3), expectedReads: 1, "a missing byte below skipped bytes")
        // A removal collapses the root onto the 0x10 node (depth 1) and cuts the root prefix back
        // to depth 0: byte 0 of a new key is no longer vouched for, though the prefix still holds
        // the key that made the old root, (0x20, 0x00).
        for slot in [1, 2, 5, 6, 7] {
            let removed = tree.remove(slot: UInt32(slot), key: keys.keys[slot])
            #expect(removed)
        }
        #expect(tree.rootPrefixBytes < tree.arena.node(tree.root).depth)
        keys.keys.append(key(0x20, 0x30))
        keys.reads = 0
        let inserted = tree.insert(slot: UInt32(keys.keys.count - 1), key: keys.keys[keys.keys.count - 1], keys: keys)
        #expect(inserted)
        #expect(keys.reads == 1, "byte 1 (0x30) is missing at the new root and byte 0 matches the stale prefix, but differs from the tree's keys: a split above it")
        let held = [0, 3, 4, keys.keys.count - 1]
        #expect(tree.checkInvariants(keys: keys) == held.sorted { keys.keys[$0] < keys.keys[$1] }.map(UInt32.init))
        for slot in held {
            #expect(tree.countLess(than: keys.keys[slot], orEqual: false, keys: keys) == held.filter { keys.keys[$0] < keys.keys[slot] }.count)
        }
    }

    /// Written by a review of the insert that splits at a missing byte: key shapes that make
    /// nodes one byte apart, skipped bytes, long shared prefixes and dense nodes, with removals
    /// that lift deeper nodes to the root (its prefix refreshed on some seeds only, so inserts also
    /// run under a cut-back prefix), checked against a sorted array after every step.
    @Test("inserts at a missing byte, under every key shape and root prefix state, against a sorted array",
          arguments: testSeeds(Array(1...30)))
    func insertShortcutDifferential(seed: UInt64) {
        print("RadixTreeTests.insertShortcutDifferential seed \(seed) (replay with HISCORE_TEST_SEED=\(seed))")
        var random = SplitMix64(seed: seed &* 7919)
        let alphabets: [[UInt8]] = (0..<24).map { index in
            switch seed % 5 {
            case 0: return index < 20 ? [0x42] : [0, 1, 2, 3]  // a long shared prefix
            case 1: return random.below(3) == 0 ? [0, 1] : [UInt8(index)]  // skipped bytes
            case 2: return [0, 1]  // every byte binary: nodes one byte apart
            case 3: return random.below(4) == 0 ? (0...255).map { UInt8($0) } : (random.below(2) == 0 ? [7] : [0, 0xFF])
            default: return (0..<(1 + random.below(4))).map { _ in UInt8(truncatingIfNeeded: random.next()) }
            }
        }
        func makeKey() -> RankKey {
            RankKey(word0: word(0, &random), word1: word(8, &random), word2: word(16, &random))
        }
        func word(_ first: Int, _ random: inout SplitMix64) -> UInt64 {
            (first..<(first + 8)).reduce(0) { $0 << 8 | UInt64(alphabets[$1][random.below(alphabets[$1].count)]) }
        }
        var keys = ArrayKeys()
        var tree = seed % 2 == 0 ? RadixTree(compactionFloorWords: 16) : RadixTree()
        defer { tree.removeAll() }
        var live: [UInt32] = []
        var present = Set<RankKey>()
        for step in 0..<1_200 {
            let growing = (step / 150) % 2 == 0
            if live.count < 2 || random.below(100) < (growing ? 80 : 30) {
                let key = makeKey()
                let slot = UInt32(keys.keys.count)
                keys.keys.append(key)
                let less = present.count(where: { $0 < key })
                let inserted = tree.insert(slot: slot, key: key, keys: keys, countingLess: true)
                #expect((inserted != nil) == !present.contains(key), "seed \(seed) step \(step)")
                if let inserted {
                    #expect(inserted == less, "seed \(seed) step \(step): keys smaller")
                    live.append(slot)
                    present.insert(key)
                }
            } else {
                let victim = random.below(live.count)
                let slot = live[victim]
                let removed = tree.remove(slot: slot, key: keys.keys[Int(slot)])
                #expect(removed, "seed \(seed) step \(step): remove")
                present.remove(keys.keys[Int(slot)])
                live.swapAt(victim, live.count - 1)
                live.removeLast()
                if seed % 3 == 0 && random.below(2) == 0 { tree.refreshRootPrefix(keys: keys) }
            }
            let order = live.sorted { keys.keys[Int($0)] < keys.keys[Int($1)] }
            let walked = tree.checkInvariants(keys: keys)
            #expect(walked == order, "seed \(seed) step \(step): order")
            if walked != order { return }
        }
    }

    @Test("a narrow dense node turns wide when a child passes 255 entries, and shrinks back to sorted")
    func narrowDenseNode() throws {
        var random = SplitMix64(seed: 77)
        let rig = DenseNodeRig()
        defer { rig.tree.removeAll() }
        // Byte 7 takes 100 values (one node of 100 children at depth 7); byte 23 separates the
        // entries under each value.
        for value in (0..<100).shuffled(using: &random) { rig.insert(value, 0, 0) }
        #expect(rig.classAtDepth7() == RadixNode.narrowDenseClass)
        // 254 more under value 0: its child holds 255 entries, the node stays narrow.
        for sequence in 1...254 { rig.insert(0, 0, sequence) }
        #expect(rig.classAtDepth7() == RadixNode.narrowDenseClass)
        rig.check("narrow, a child of 255")
        // The 256th turns it wide, counts intact.
        rig.insert(0, 0, 255)
        #expect(rig.classAtDepth7() == RadixNode.denseClass)
        for sequence in 256..<400 { rig.insert(0, 0, sequence) }
        rig.check("wide")
        // Remove 60 of the other values: the node shrinks back through the sorted classes (40
        // children left), then everything.
        for (removed, value) in (1..<100).shuffled(using: &random).prefix(60).enumerated() {
            try rig.remove(value, 0, 0)
            if removed % 9 == 0 { rig.check("shrinking") }
        }
        rig.check("shrunk")
        #expect(rig.classAtDepth7() == RadixNode.sizeClass(holding: 40) + 1)
        try rig.removeAll(using: &random)
    }

    /// Every path that gives a dense node's child more entries (written by a review of the narrow
    /// nodes): a sorted node growing straight to wide because a child already holds 300; a
    /// narrow node widened by a split above a child of 255; one widened under a leaf-only child
    /// that was upgraded to counts by the inserts below it.
    @Test("a node grows wide directly, or narrow then wide through a split or an upgraded child")
    func denseTransitions() throws {
        var random = SplitMix64(seed: 78)
        let rig = DenseNodeRig()
        defer { rig.tree.removeAll() }
        // 96 values, value 0 holding 300 entries: a sorted 96-way node with a child past 255.
        for value in 0..<96 { rig.insert(value, 0, 0) }
        for sequence in 1..<300 { rig.insert(0, 0, sequence) }
        #expect(rig.classAtDepth7() == RadixNode.largestSortedClass)
        rig.check("sorted, a child of 300")
        rig.insert(96, 0, 0)
        #expect(rig.classAtDepth7() == RadixNode.denseClass, "grows wide directly")
        rig.check("wide from sorted")
        // Shrink to sorted, empty value 0 down to one entry, grow back: narrow.
        for value in 40..<97 { try rig.remove(value, 0, 0) }
        #expect(rig.classAtDepth7() == RadixNode.sizeClass(holding: 40) + 1)
        for sequence in 1..<300 { try rig.remove(0, 0, sequence) }
        rig.check("shrunk")
        for value in 40..<110 { rig.insert(value, 0, 0) }
        #expect(rig.classAtDepth7() == RadixNode.narrowDenseClass)
        rig.check("narrow again")
        // Value 1: a leaf-only node (the last byte varies), 255 entries.
        for sequence in 1..<255 { rig.insert(1, 0, sequence) }
        #expect(rig.classAtDepth7() == RadixNode.narrowDenseClass)
        rig.check("narrow with a child of 255")
        // The 256th entry under value 1 differs at byte 15: a split above the leaf-only node.
        rig.insert(1, 7, 0)
        #expect(rig.classAtDepth7() == RadixNode.denseClass)
        rig.check("widened by a split")
        try rig.remove(1, 7, 0)
        rig.check("wide, the child back at 255")

        // Emptied, then value 2: a leaf-only node at byte 22 (90 leaves), then keys differing
        // from its leaves at byte 23: the leaf-only node gains counts, nodes split below it.
        try rig.removeAll(using: &random)
        for value in 0..<100 { rig.insert(value, 0, 0) }
        for high in 1..<90 { rig.insert(2, 0, high << 8) }
        #expect(rig.classAtDepth7() == RadixNode.narrowDenseClass)
        var added = 90
        fill: for low in 1..<256 {
            for high in 0..<90 {
                if added == 255 { break fill }
                rig.insert(2, 0, high << 8 | low)
                added += 1
            }
        }
        #expect(rig.classAtDepth7() == RadixNode.narrowDenseClass)
        rig.check("narrow, a child of 255 after upgrades")
        rig.insert(2, 0, 89 << 8 | 200)
        #expect(rig.classAtDepth7() == RadixNode.denseClass)
        rig.check("widened under an upgraded child")
        try rig.removeAll(using: &random)
    }

    @Test("node capacities")
    func capacities() {
        let expected = [2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 256, 256]
        #expect((0...RadixNode.maxSizeClass).map { RadixNode.capacity(ofClass: $0) } == expected)
        #expect(RadixNode.sizeClass(holding: 5) == 3)
        #expect(RadixNode.sizeClass(holding: 256) == RadixNode.narrowDenseClass)
        #expect(RadixNode.sizeClass(holding: 256, largestChildCount: 256) == RadixNode.denseClass)
        // Past the largest sorted class a node goes dense (narrow while every child holds at
        // most 255 entries), and comes back one class below.
        let largest = RadixNode.largestSortedClass
        #expect(RadixNode.sizeClass(holding: RadixNode.capacity(ofClass: largest)) == largest)
        #expect(RadixNode.sizeClass(holding: RadixNode.capacity(ofClass: largest) + 1) == RadixNode.narrowDenseClass)
        #expect(RadixNode.grownClass(from: largest, largestChildCount: 255) == RadixNode.narrowDenseClass)
        #expect(RadixNode.grownClass(from: largest, largestChildCount: 256) == RadixNode.denseClass)
        #expect(RadixNode.grownClass(from: largest - 1, largestChildCount: 1000) == largest)
        for dense in [RadixNode.narrowDenseClass, RadixNode.denseClass] {
            #expect(RadixNode.shrunkClass(from: dense) == largest)
            #expect(RadixNode.shrinkLimit(of: dense) == RadixNode.capacity(ofClass: largest - 1))
        }
        // Sizes in words: the narrow node's counts are bytes.
        #expect(RadixNode.strideWords(sizeClass: RadixNode.narrowDenseClass, hasCounts: true) == 337)
        #expect(RadixNode.strideWords(sizeClass: RadixNode.denseClass, hasCounts: true) == 529)
    }

    @Test("a sorted node finds every byte's place, in every class and fill", arguments: testSeeds([5, 6]))
    func lowerBound(seed: UInt64) {
        var random = SplitMix64(seed: seed)
        var arena = NodeArena()
        defer { arena.deallocateAll() }
        for sizeClass in 0...RadixNode.largestSortedClass {
            let capacity = RadixNode.capacity(ofClass: sizeClass)
            for fill in Set([2, max(2, capacity / 2), capacity]) {
                // Distinct sorted bytes, including the extremes now and then.
                var bytes = Set<UInt8>()
                if random.chance(30) { bytes.insert(0) }
                if random.chance(30) { bytes.insert(255) }
                while bytes.count < fill { bytes.insert(UInt8(truncatingIfNeeded: random.next())) }
                let sorted = bytes.sorted()
                let ref = arena.allocate(sizeClass: sizeClass, hasCounts: random.chance(50), depth: 3)
                let node = arena.node(ref)
                for (index, byte) in sorted.enumerated() { node.insertChild(at: index, byte: byte, child: RadixTree.leaf(UInt32(index)), count: 1) }
                for probe in 0...255 {
                    let expected = sorted.filter { $0 < UInt8(probe) }.count
                    #expect(node.lowerBound(UInt8(probe)) == expected, "seed \(seed) class \(sizeClass) fill \(fill) byte \(probe)")
                }
            }
        }
    }
}
