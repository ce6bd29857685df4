import Testing
@testable import HiscoreCore
import HiscoreTestSupport

/// Long random operation sequences applied to a `BoardPartition` and to `ReferenceBoard`; every
/// write outcome and a random sample of every query must agree, and the partition's invariants
/// must hold after every operation.
@Suite("Board partition vs reference model")
struct PartitionDifferentialTests {
    /// Player ids around the inline/heap boundary (15/16 bytes) and long ones.
    static func playerPool(_ random: inout SplitMix64) -> [String] {
        var pool: [String] = ["a", "p:000000000001", "exactly15bytes_", "exactly16bytes__", "x"]
        for index in 0..<40 { pool.append("p\(index)") }
        for index in 0..<10 {
            pool.append("long-player-id-\(index)-" + String(repeating: "z", count: 10 + random.below(90)))
        }
        return pool
    }

    enum ScoreStyle: CaseIterable { case ties, extremes, wide }

    static func score(_ style: ScoreStyle, _ random: inout SplitMix64) -> Int64 {
        switch style {
        case .ties: return Int64(random.below(7)) - 3
        case .extremes:
            let values: [Int64] = [.min, .min + 1, .min + 2, -1, 0, 1, .max - 2, .max - 1, .max]
            return values[random.below(values.count)]
        case .wide: return Int64(bitPattern: random.next())
        }
    }

    @Test("random operations agree with the reference", arguments: testSeeds(Array(1...24)))
    func differential(seed: UInt64) {
        var random = SplitMix64(seed: seed)
        let operators: [WriteOperator] = [.best, .set, .increment, .decrement]
        let orders: [SortOrder] = [.descending, .ascending]
        var config = BoardConfig.defaultConfig(id: "b")
        config.writeOperator = operators[Int(seed % 4)]
        config.scoreOrder = orders[Int(seed / 4 % 2)]
        config.subscoreOrder = orders[Int(seed / 8 % 2)]
        config.limits.maxMetadataBytes = 16
        // Dense boards keep a tree of distinct values; the others answer dense ranks by a walk.
        if seed % 2 == 0 { config.rankMode = .dense }
        let style = ScoreStyle.allCases[Int(seed % 3)]
        let partition = BoardPartition(config: config)
        var reference = ReferenceBoard(config: config)
        let pool = Self.playerPool(&random)
        let codec = config.codec
        var sequence: UInt64 = 1000
        let context = "seed \(seed) \(config.writeOperator) \(config.scoreOrder)/\(config.subscoreOrder) \(style)"

        for step in 0..<700 {
            let roll = random.below(100)
            if roll < 80 {
                var player = pool[random.below(pool.count)]
                var score = Self.score(style, &random)
                var subscore: Int64 = random.chance(70) ? 0 : Int64(random.below(3)) - 1
                sequence += 1
                var writeSequence = sequence
                if random.chance(3), let victim = reference.entries.values.randomElement(using: &random) {
                    // Same (score, subscore, sequence) as a stored entry: must be refused.
                    player = pool[random.below(pool.count)]
                    score = victim.score
                    subscore = victim.subscore
                    writeSequence = victim.sequence
                }
                let metadata: [UInt8]? =
                    switch random.below(5) {
                    case 0: [UInt8](repeating: UInt8(step & 0xFF), count: random.below(17))
                    case 1: random.chance(20) ? [UInt8](repeating: 1, count: 17) : []
                    default: nil
                    }
                let got: Result<WriteOutcome, WriteError>
                // Half the writes count the entries beating the moved entry on their descents.
                let counting = random.chance(50)
                // Counted writes may refuse a new player (as a server's limits do): the write
                // must then fail with notAdmitted, having asked once and changed nothing.
                let admits = random.chance(80)
                var asked = 0
                var better = BetterCounts()
                let before = reference
                do throws(WriteError) {
                    got = .success(
                        counting
                            ? try partition.write(
                                playerID: player, score: score, subscore: subscore, metadata: metadata,
                                sequence: writeSequence, countingBetter: &better,
                                admittingNew: {
                                    asked += 1
                                    return admits
                                })
                            : try partition.write(
                                playerID: player, score: score, subscore: subscore, metadata: metadata,
                                sequence: writeSequence))
                } catch {
                    got = .failure(error)
                }
                let isNew = reference.entries[player] == nil
                let refused = counting && !admits && isNew && (metadata?.count ?? 0) <= config.limits.maxMetadataBytes
                if counting {
                    #expect(asked == (isNew && (metadata?.count ?? 0) <= config.limits.maxMetadataBytes ? 1 : 0),
                            "\(context) step \(step): admission asked once, for a new player only")
                }
                // A refused write leaves the reference as it is; the queries below then check
                // that the partition did not change either.
                let want: Result<WriteOutcome, WriteError> =
                    refused
                    ? .failure(.notAdmitted)
                    : reference.write(playerID: player, score: score, subscore: subscore, metadata: metadata, sequence: writeSequence)
                #expect(got == want, "\(context) step \(step): write \(player) \(score)/\(subscore) seq \(writeSequence)")
                if counting, case .success(let outcome) = want, outcome.keyChanged {
                    #expect(better.current == reference.countBetter(outcome.current.key), "\(context) step \(step): counted current")
                    #expect(better.previous == outcome.previous.map { before.countBetter($0.key) }, "\(context) step \(step): counted previous")
                } else {
                    #expect(better == BetterCounts(), "\(context) step \(step): nothing counted for an unmoved entry")
                }
            } else if roll < 96 {
                let player = pool[random.below(pool.count)]
                #expect(partition.remove(playerID: player) == reference.entries.removeValue(forKey: player), "\(context) step \(step)")
            } else if roll < 97 {
                partition.removeAll()
                reference.entries.removeAll()
            } else {
                // Re-insert after removals exercises slot reuse.
                for player in pool.prefix(5) {
                    _ = partition.remove(playerID: player)
                    reference.entries[player] = nil
                }
            }
            partition.checkInvariants()
            Self.compareQueries(partition, reference, codec: codec, pool: pool, random: &random, context: "\(context) step \(step)")
        }
    }

    /// `prepareWrites` only prefetches: groups of writes prepared first (longer than a prefetch
    /// group, with repeated players, long ids, new players, rejected `best` writes, wrong sequence
    /// guesses) must come out exactly as the reference applies them one by one.
    @Test("writes, counts and lookups prepared in groups agree with the reference", arguments: testSeeds(Array(1...8)))
    func preparedGroups(seed: UInt64) {
        var random = SplitMix64(seed: seed)
        let operators: [WriteOperator] = [.best, .set, .increment, .decrement]
        var config = BoardConfig.defaultConfig(id: "b")
        config.writeOperator = operators[Int(seed % 4)]
        config.scoreOrder = seed % 3 == 0 ? .ascending : .descending
        let style = ScoreStyle.allCases[Int(seed % 3)]
        let partition = BoardPartition(config: config)
        var reference = ReferenceBoard(config: config)
        let pool = Self.playerPool(&random)
        var sequence: UInt64 = 1000
        let context = "seed \(seed) \(config.writeOperator) \(config.scoreOrder) \(style)"

        for round in 0..<60 {
            let size = 1 + random.below(2 * BoardPartition.prefetchGroupSize + 8)
            let group = (0..<size).map { _ in
                (player: pool[random.below(pool.count)], score: Self.score(style, &random),
                 subscore: random.chance(80) ? Int64(0) : Int64(random.below(3)) - 1)
            }
            let guessOffset: UInt64 = random.chance(50) ? 0 : UInt64(random.below(1000))
            partition.prepareWrites(count: size, countingBetter: random.chance(50)) { position in
                BoardPartition.UpcomingWrite(
                    playerID: group[position].player, score: group[position].score, subscore: group[position].subscore,
                    sequence: sequence + 1 + UInt64(position) + guessOffset)
            }
            for write in group {
                sequence += 1
                let got: Result<WriteOutcome, WriteError>
                do throws(WriteError) {
                    got = .success(try partition.write(
                        playerID: write.player, score: write.score, subscore: write.subscore, metadata: nil, sequence: sequence))
                } catch {
                    got = .failure(error)
                }
                let want = reference.write(
                    playerID: write.player, score: write.score, subscore: write.subscore, metadata: nil, sequence: sequence)
                #expect(got == want, "\(context) round \(round): write \(write.player) \(write.score)/\(write.subscore)")
            }
            // Counts prepared as a shard prepares another shard's counts: stored keys, keys
            // between entries, the extremes. Preparing must change nothing they answer.
            let stored = reference.sorted.map(\.key)
            let countKeys: [RankKey] = (0..<(1 + random.below(40))).map { _ in
                switch random.below(4) {
                case 0: stored.randomElement(using: &random) ?? .min
                case 1: RankKey(word0: random.next(), word1: random.next(), word2: random.next())
                case 2: .min
                default: .max
                }
            }
            partition.prepareCounts(count: countKeys.count) { countKeys[$0] }
            partition.checkInvariants()
            for key in countKeys {
                #expect(partition.countBetter(than: key) == stored.filter { $0 < key }.count, "\(context) round \(round): count")
            }
            // Lookups prepared as a shard prepares a run of get_rank calls: present, absent and
            // long ids, repeats. Preparing must change nothing either.
            let lookupIDs = (0..<(1 + random.below(40))).map { _ in
                random.chance(80) ? pool[random.below(pool.count)] : "absent-\(random.below(1000))"
            }
            var asked: [Int] = []
            partition.prepareLookups(count: lookupIDs.count) { position in
                asked.append(position)
                return lookupIDs[position]
            }
            // A lone lookup warms itself, and an empty partition has nothing to prefetch.
            let prefetches = lookupIDs.count > 1 && !reference.entries.isEmpty
            #expect(asked == (prefetches ? Array(0..<lookupIDs.count) : []), "\(context): ids asked in order, once")
            partition.checkInvariants()
            for id in lookupIDs {
                let entry = partition.entry(for: id)
                #expect(entry == reference.entries[id], "\(context) round \(round): lookup \(id)")
                if let entry {
                    #expect(partition.countBetter(than: entry.key) == stored.filter { $0 < entry.key }.count, "\(context): rank")
                }
            }
            Self.compareQueries(
                partition, reference, codec: config.codec, pool: pool, random: &random, context: "\(context) round \(round)")
            if random.chance(10) {
                let player = pool[random.below(pool.count)]
                #expect(partition.remove(playerID: player) == reference.entries.removeValue(forKey: player), "\(context)")
            }
        }
    }

    static func compareQueries(
        _ partition: BoardPartition, _ reference: ReferenceBoard, codec: KeyCodec, pool: [String],
        random: inout SplitMix64, context: String
    ) {
        let sorted = reference.sorted
        #expect(partition.count == sorted.count, "\(context)")
        let player = pool[random.below(pool.count)]
        #expect(partition.entry(for: player) == reference.entries[player], "\(context) entry \(player)")
        #expect(partition.key(for: player) == reference.entries[player]?.key, "\(context)")
        // The metadata a write would replace: none for an absent player, nor for a `best` write
        // that does not improve the entry.
        if let stored = reference.entries[player] {
            let score = stored.score &+ Int64(random.below(3) - 1)
            let subscore = Int64(random.below(3) - 1)
            let candidate = codec.key(score: score, subscore: subscore, sequence: 0)
            let improves = (candidate.word0, candidate.word1) < (stored.key.word0, stored.key.word1)
            let replaced = reference.config.writeOperator != .best || improves ? stored.metadata.count : nil
            #expect(partition.replacedMetadataCount(for: player, score: score, subscore: subscore) == replaced,
                    "\(context) replaced metadata of \(player) by \(score)/\(subscore)")
        } else {
            #expect(partition.replacedMetadataCount(for: player, score: 0, subscore: 0) == nil, "\(context)")
        }

        var probes: [RankKey] = [.min, .max, RankKey(word0: random.next(), word1: random.next(), word2: random.next())]
        if let some = sorted.randomElement(using: &random) {
            probes += [some.key, some.key.tieGroupStart, codec.lastKey(score: some.score, subscore: some.subscore)]
            var next = some.key
            next.word2 &+= 1
            probes.append(next)
        }
        probes.append(codec.key(score: Self.score(.ties, &random), subscore: 0, sequence: random.next() % 2000))
        for probe in probes {
            #expect(partition.countBetter(than: probe) == reference.countBetter(probe), "\(context) probe \(probe)")
            #expect(partition.countBetter(thanAbsent: probe) == reference.countBetter(probe), "\(context) probe \(probe)")
            #expect(partition.countBetterOrEqual(than: probe) == reference.countBetterOrEqual(probe), "\(context)")
            #expect(partition.distinctScoresBetter(than: probe) == reference.distinctBetter(probe), "\(context)")
            #expect(partition.localRank(of: probe, mode: .ordinal) == 1 + reference.countBetter(probe))
            #expect(partition.localRank(of: probe, mode: .competition) == 1 + reference.countBetter(probe.tieGroupStart))
            #expect(partition.localRank(of: probe, mode: .dense) == 1 + reference.distinctBetter(probe))
        }
        let (a, b) = (probes[random.below(probes.count)], probes[random.below(probes.count)])
        #expect(partition.count(from: a, to: b) == sorted.count { a <= $0.key && $0.key <= b }, "\(context)")

        let bounds: [Int64?] = [nil, Self.score(.ties, &random), Self.score(.extremes, &random)]
        let low = bounds[random.below(3)]
        let high = bounds[random.below(3)]
        #expect(
            partition.countScores(min: low, max: high)
                == sorted.count { (low == nil || $0.score >= low!) && (high == nil || $0.score <= high!) },
            "\(context) scores \(String(describing: low))...\(String(describing: high))")

        let offset = random.below(sorted.count + 3) - 1
        let limit = random.below(8) - 1
        let expectedPage = offset >= 0 && limit > 0 && offset < sorted.count ? Array(sorted[offset..<min(sorted.count, offset + limit)]) : []
        #expect(partition.entries(fromRank: offset, limit: limit) == expectedPage, "\(context) page \(offset)+\(limit)")

        let probe = probes[random.below(probes.count)]
        let count = random.below(6)
        #expect(partition.entries(after: probe, limit: count) == Array(sorted.filter { $0.key > probe }.prefix(count)), "\(context)")
        #expect(partition.entries(before: probe, limit: count) == Array(sorted.filter { $0.key < probe }.suffix(count)), "\(context)")

        let before = random.below(6)
        let after = random.below(6)
        let around = partition.neighbours(of: probe, before: before, after: after)
        #expect(around.better == Array(sorted.filter { $0.key < probe }.suffix(before)), "\(context) neighbours")
        #expect(around.worse == Array(sorted.filter { $0.key > probe }.prefix(after)), "\(context) neighbours")
        #expect(around.betterCount == reference.countBetter(probe))

        let inclusive = random.chance(50)
        let towardWorse = random.chance(50)
        var visited: [LeaderboardEntry] = []
        partition.forEach(from: probe, inclusive: inclusive, direction: towardWorse ? .towardWorse : .towardBetter) {
            visited.append($0)
            return visited.count < 4
        }
        let expectedVisit = towardWorse
            ? Array(sorted.filter { inclusive ? $0.key >= probe : $0.key > probe }.prefix(4))
            : Array(sorted.filter { inclusive ? $0.key <= probe : $0.key < probe }.suffix(4).reversed())
        #expect(visited == expectedVisit, "\(context) visit")
    }

    @Test("saturation and empty boards")
    func saturation() throws {
        var config = BoardConfig.defaultConfig(id: "s")
        config.writeOperator = .increment
        let partition = BoardPartition(config: config)
        #expect(partition.count == 0)
        #expect(partition.countBetter(than: .max) == 0)
        #expect(partition.entries(fromRank: 0, limit: 10).isEmpty)
        #expect(partition.entries(before: .max, limit: 3).isEmpty)
        #expect(partition.distinctScoresBetter(than: .max) == 0)
        #expect(partition.remove(playerID: "nobody") == nil)
        partition.removeAll()
        _ = try partition.write(playerID: "a", score: .max - 1, subscore: 0, metadata: nil, sequence: 1)
        let saturated = try partition.write(playerID: "a", score: 10, subscore: 0, metadata: nil, sequence: 2)
        #expect(saturated.current.score == .max)
        let decrement = BoardPartition(config: BoardConfig(id: "d", writeOperator: .decrement))
        let fromZero = try decrement.write(playerID: "a", score: .min, subscore: 0, metadata: nil, sequence: 1)
        #expect(fromZero.current.score == .max)  // 0 - Int64.min saturates
        let down = try decrement.write(playerID: "b", score: .max, subscore: 0, metadata: nil, sequence: 2)
        #expect(down.current.score == -Int64.max)
        let floor = try decrement.write(playerID: "b", score: 5, subscore: 0, metadata: nil, sequence: 3)
        #expect(floor.current.score == .min)
        partition.checkInvariants()
        decrement.checkInvariants()
    }

    @Test("refused writes change nothing")
    func refusals() throws {
        let partition = BoardPartition(config: BoardConfig(id: "r", writeOperator: .set, limits: BoardLimits(maxMetadataBytes: 4)))
        _ = try partition.write(playerID: "a", score: 5, subscore: 0, metadata: [1], sequence: 10)
        #expect(throws: WriteError.metadataTooLarge(bytes: 5, limit: 4)) {
            try partition.write(playerID: "a", score: 6, subscore: 0, metadata: [1, 2, 3, 4, 5], sequence: 11)
        }
        #expect(throws: WriteError.duplicateKey(sequence: 10)) {
            try partition.write(playerID: "b", score: 5, subscore: 0, metadata: nil, sequence: 10)
        }
        #expect(throws: WriteError.playerIDTooLong(bytes: 2000, limit: BoardPartition.maxPlayerIDBytes)) {
            try partition.write(playerID: String(repeating: "q", count: 2000), score: 1, subscore: 0, metadata: nil, sequence: 12)
        }
        #expect(partition.count == 1)
        #expect(partition.entry(for: "a")?.metadata == [1])
        #expect(partition.entry(for: "a")?.sequence == 10)
        partition.checkInvariants()
    }

    @Test("unchanged score keeps its sequence; metadata nil keeps, [] clears")
    func sequenceAndMetadata() throws {
        let partition = BoardPartition(config: BoardConfig(id: "m", writeOperator: .set))
        _ = try partition.write(playerID: "a", score: 5, subscore: 1, metadata: [9, 9], sequence: 10)
        let same = try partition.write(playerID: "a", score: 5, subscore: 1, metadata: nil, sequence: 11)
        #expect(!same.keyChanged && same.accepted && same.current.sequence == 10 && same.current.metadata == [9, 9])
        let cleared = try partition.write(playerID: "a", score: 5, subscore: 1, metadata: [], sequence: 12)
        #expect(cleared.current.metadata == [] && cleared.previous?.metadata == [9, 9])
        let moved = try partition.write(playerID: "a", score: 6, subscore: 1, metadata: nil, sequence: 13)
        #expect(moved.keyChanged && moved.current.sequence == 13)
    }
}
