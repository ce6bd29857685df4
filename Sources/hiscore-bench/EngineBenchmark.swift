import CJemalloc
import HiscoreCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// `hiscore-bench engine`: the ranking engine alone (one BoardPartition, no server), so its
// memory and per-operation costs can be compared with Redis's sorted sets.
// JSON lines on stdout (one per figure), human text on stderr.

/// Deterministic PRNG for the benchmark's inputs (SplitMix64).
private struct BenchRandom {
    var state: UInt64

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    mutating func below(_ bound: Int) -> Int { Int(next() % UInt64(bound)) }
}

/// jemalloc's `stats.allocated` (bytes the application holds), refreshed through `epoch`.
private func jemallocAllocatedBytes() -> Int {
    var epoch: UInt64 = 1
    _ = mallctl("epoch", nil, nil, &epoch, MemoryLayout<UInt64>.size)
    var allocated = 0
    var allocatedSize = MemoryLayout<Int>.size
    let status = mallctl("stats.allocated", &allocated, &allocatedSize, nil, 0)
    return status == 0 ? allocated : -1
}

/// (wall, this thread's CPU) nanoseconds. The figures use CPU time: on a small shared VM, wall
/// time also counts whatever else the host schedules; both are printed to stderr.
func clocks() -> (wall: UInt64, cpu: UInt64) {
    var wall = timespec()
    var cpu = timespec()
    clock_gettime(CLOCK_MONOTONIC, &wall)
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu)
    return (
        UInt64(wall.tv_sec) &* 1_000_000_000 &+ UInt64(wall.tv_nsec),
        UInt64(cpu.tv_sec) &* 1_000_000_000 &+ UInt64(cpu.tv_nsec)
    )
}

func printStandardError(_ text: String) {
    var line = text + "\n"
    line.withUTF8 { bytes in _ = write(2, bytes.baseAddress, bytes.count) }
}

/// Zero-padded decimal, as `%012d` would print it.
private func paddedPlayerID(_ index: Int) -> String {
    let digits = String(index)
    return "p:" + String(repeating: "0", count: max(0, 12 - digits.count)) + digits
}

/// Loads `entries` players (ids `p:%012d`, random scores in [0, entries)) into one partition of a
/// descending `best` board, then times updates, ranks, top-10, a 50-entry page at rank 5000 and
/// ±5 neighbours. Prints one JSON object per figure to stdout.
func runEngineBenchmark(entries: Int, seed: UInt64) throws {
    precondition(entries > 0, "entries must be positive")
    var random = BenchRandom(state: seed)
    let ids = (0..<entries).map(paddedPlayerID)  // 14 bytes: Swift small strings, no heap
    let scores = (0..<entries).map { _ in Int64(random.below(entries)) }
    let operations = min(entries, 1_000_000)
    var sequence: UInt64 = 1_700_000_000_000_000
    var sink = 0  // results fed here so the optimizer cannot drop the work

    func report(
        _ op: String, from start: (wall: UInt64, cpu: UInt64), to end: (wall: UInt64, cpu: UInt64) = clocks(),
        count: Int, json: Bool = true
    ) {
        func perOp(_ nanoseconds: UInt64) -> Double { (Double(nanoseconds) / Double(max(count, 1)) * 10).rounded() / 10 }
        let cpu = perOp(end.cpu - start.cpu)
        if json { print("{\"bench\":\"engine\",\"op\":\"\(op)\",\"entries\":\(entries),\"ns_per_op\":\(cpu)}") }
        printStandardError("  \(op.padding(13)) \(cpu) ns/op CPU, \(perOp(end.wall - start.wall)) ns/op wall, \(count) ops")
    }

    printStandardError("engine benchmark: \(entries) entries, seed \(seed)")
    let before = jemallocAllocatedBytes()
    let partition = BoardPartition(config: BoardConfig.defaultConfig(id: "bench"))

    // insert (the load)
    let insertStart = clocks()
    for index in 0..<entries {
        sequence += 1
        let outcome = try partition.write(
            playerID: ids[index], score: scores[index], subscore: 0, metadata: nil, sequence: sequence)
        sink &+= outcome.created ? 1 : 0
    }
    let insertEnd = clocks()

    // Swift may free an array right after its last use: keep the inputs alive across the reading
    // so that only the partition's memory is in the delta.
    let after = withExtendedLifetime((ids, scores)) { jemallocAllocatedBytes() }
    let bytesPerEntry = Double(after - before) / Double(entries)
    print("{\"bench\":\"engine\",\"metric\":\"bytes_per_entry\",\"entries\":\(entries),\"value\":\((bytesPerEntry * 10).rounded() / 10)}")
    printStandardError("  memory   \((bytesPerEntry * 10).rounded() / 10) bytes/entry (jemalloc stats.allocated delta \(after - before); engine: \(partition.memoryUsage))")
    report("insert", from: insertStart, to: insertEnd, count: entries)

    // update: random new scores for random existing players (best: about half improve)
    // The ids are gathered in operation order first: a server holds the id of the request it
    // just decoded in cache, so a miss on a 16 MB array of ids would be the harness's cost.
    let players = (0..<operations).map { _ in random.below(entries) }
    let playerIDs = players.map { ids[$0] }
    let newScores = (0..<operations).map { _ in Int64(random.below(entries)) }
    var start = clocks()
    for index in 0..<operations {
        sequence += 1
        let outcome = try partition.write(
            playerID: playerIDs[index], score: newScores[index], subscore: 0, metadata: nil, sequence: sequence)
        sink &+= outcome.keyChanged ? 1 : 0
    }
    report("update", from: start, count: operations)

    // update_prepared: the same kind of writes, applied in groups the way a shard applies a
    // pipelined batch: `prepareWrites` starts the group's memory reads together, then each runs.
    func writePrepared(_ target: BoardPartition, _ playerIDs: [String], _ newScores: [Int64]) throws {
        var groupStart = 0
        while groupStart < playerIDs.count {
            let size = min(BoardPartition.prefetchGroupSize, playerIDs.count - groupStart)
            let first = sequence + 1
            target.prepareWrites(count: size) { offset in
                BoardPartition.UpcomingWrite(
                    playerID: playerIDs[groupStart + offset], score: newScores[groupStart + offset], subscore: 0,
                    sequence: first + UInt64(offset))
            }
            for index in groupStart..<(groupStart + size) {
                sequence += 1
                let outcome = try target.write(
                    playerID: playerIDs[index], score: newScores[index], subscore: 0, metadata: nil, sequence: sequence)
                sink &+= outcome.keyChanged ? 1 : 0
            }
            groupStart += size
        }
    }
    let morePlayers = (0..<operations).map { _ in ids[random.below(entries)] }
    let moreScores = (0..<operations).map { _ in Int64(random.below(entries)) }
    start = clocks()
    try writePrepared(partition, morePlayers, moreScores)
    report("update_prepared", from: start, count: operations)

    // rank: entries strictly better than a random player's key (keys looked up beforehand)
    let keys = playerIDs.map { partition.key(for: $0)! }
    start = clocks()
    for key in keys { sink &+= partition.countBetter(than: key) }
    report("rank", from: start, count: operations)

    /// Counts of `keys` in groups handed to `prepareCounts` first, the way a shard answers a
    /// pipelined batch's counts.
    func countInPreparedGroups(_ keys: [RankKey], _ count: (RankKey) -> Int) {
        var groupStart = 0
        while groupStart < keys.count {
            let size = min(BoardPartition.prefetchGroupSize, keys.count - groupStart)
            partition.prepareCounts(count: size) { keys[groupStart + $0] }
            for key in keys[groupStart..<(groupStart + size)] { sink &+= count(key) }
            groupStart += size
        }
    }

    // rank_prepared: the same counts in prepared groups
    start = clocks()
    countInPreparedGroups(keys) { partition.countBetter(than: $0) }
    report("rank_prepared", from: start, count: operations)

    // count_absent: entries better than keys the partition does not hold (random scores of the
    // same range, a sequence no entry has): what each of a board's other shards answers for every
    // rank and submit
    let codec = KeyCodec(scoreOrder: .descending)
    let absentKeys = (0..<operations).map { _ in codec.key(score: Int64(random.below(entries)), subscore: 0, sequence: .max) }
    start = clocks()
    for key in absentKeys { sink &+= partition.countBetter(thanAbsent: key) }
    report("count_absent", from: start, count: operations)

    // count_absent_prepared: the same in prepared groups, as a shard answers the counts of a
    // pipelined batch's submits made on other shards
    start = clocks()
    countInPreparedGroups(absentKeys) { partition.countBetter(thanAbsent: $0) }
    report("count_absent_prepared", from: start, count: operations)

    // lookup_rank: the same counts including the id -> key lookup (bucket, record, then the path)
    start = clocks()
    for index in 0..<operations {
        if let key = partition.key(for: playerIDs[index]) { sink &+= partition.countBetter(than: key) }
    }
    report("lookup_rank", from: start, count: operations)

    let smallRepeats = min(operations, 200_000)
    start = clocks()
    for _ in 0..<smallRepeats { sink &+= partition.entries(fromRank: 0, limit: 10).count }
    report("top10", from: start, count: smallRepeats)

    let pageOffset = min(5000, max(0, entries - 50))
    start = clocks()
    for _ in 0..<smallRepeats { sink &+= partition.entries(fromRank: pageOffset, limit: 50).count }
    report("page50", from: start, count: smallRepeats)

    // around5: ±5 neighbours of a random player (key looked up beforehand, as for rank)
    start = clocks()
    for index in 0..<smallRepeats {
        do {
            let key = keys[index]
            let around = partition.neighbours(of: key, before: 5, after: 5)
            sink &+= around.better.count + around.worse.count + around.betterCount
        }
    }
    report("around5", from: start, count: smallRepeats)

    // insert_prepared: the same load into a second partition, in prepared groups (as above).
    let second = BoardPartition(config: BoardConfig.defaultConfig(id: "bench-prepared"))
    start = clocks()
    try writePrepared(second, ids, scores)
    report("insert_prepared", from: start, count: entries)
    withExtendedLifetime(second) {}

    // rank_dense: dense ranks (distinct better values) on a dense-ranked partition of the same
    // players and scores, for random players
    var denseConfig = BoardConfig.defaultConfig(id: "bench-dense")
    denseConfig.rankMode = .dense
    let dense = BoardPartition(config: denseConfig)
    start = clocks()
    for index in 0..<entries {
        sequence += 1
        _ = try dense.write(playerID: ids[index], score: scores[index], subscore: 0, metadata: nil, sequence: sequence)
    }
    report("insert_dense", from: start, count: entries)  // the load, with the distinct-value tree kept up
    let denseKeys = playerIDs.prefix(smallRepeats).map { dense.key(for: $0)! }
    start = clocks()
    for key in denseKeys { sink &+= dense.localRank(of: key, mode: .dense) }
    report("rank_dense", from: start, count: denseKeys.count)
    withExtendedLifetime(dense) {}

    // The machine's floor for all of the above: one dependent load from memory the size of the
    // engine's working set. A lone write or lookup waits for several of these in a row (the id's
    // bucket, then its record, then a tree path), so its time is read against this figure.
    let latency = memoryLatency(bytes: 64 << 20, loads: 2_000_000)
    print("{\"bench\":\"engine\",\"metric\":\"memory_latency_ns\",\"entries\":\(entries),\"value\":\((latency * 10).rounded() / 10)}")
    printStandardError("  memory latency \((latency * 10).rounded() / 10) ns per dependent load (64 MiB, random lines)")

    printStandardError("  (checksum \(sink))")
    withExtendedLifetime(partition) {}
}

/// Nanoseconds (thread CPU) per load of a pointer chase through `bytes` of memory: each load's
/// address comes from the previous one, every cache line visited once per cycle in random order
/// (Sattolo's shuffle makes a single cycle), so neither caches nor prefetchers can help.
func memoryLatency(bytes: Int, loads: Int) -> Double {
    let wordsPerLine = 64 / MemoryLayout<Int>.stride
    let lines = bytes / 64
    var random = BenchRandom(state: 0x5EED)
    var next = [Int](repeating: 0, count: lines * wordsPerLine)
    var order = Array(0..<lines)
    for index in stride(from: lines - 1, to: 0, by: -1) { order.swapAt(index, random.below(index)) }
    for (position, line) in order.enumerated() { next[line * wordsPerLine] = order[(position + 1) % lines] * wordsPerLine }
    return next.withUnsafeBufferPointer { chain in
        var at = 0
        let start = clocks()
        for _ in 0..<loads { at = chain[at] }
        let end = clocks()
        precondition(at >= 0)  // keeps the chase from being optimized away
        return Double(end.cpu - start.cpu) / Double(loads)
    }
}

extension String {
    fileprivate func padding(_ width: Int) -> String {
        count >= width ? self : self + String(repeating: " ", count: width - count)
    }
}
