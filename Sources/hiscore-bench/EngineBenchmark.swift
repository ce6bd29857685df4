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

private func monotonicNanoseconds() -> UInt64 {
    var spec = timespec()
    clock_gettime(CLOCK_MONOTONIC, &spec)
    return UInt64(spec.tv_sec) &* 1_000_000_000 &+ UInt64(spec.tv_nsec)
}

private func printStandardError(_ text: String) {
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

    func report(_ op: String, nanoseconds: UInt64, count: Int) {
        let perOp = Double(nanoseconds) / Double(max(count, 1))
        let rounded = (perOp * 10).rounded() / 10
        print("{\"bench\":\"engine\",\"op\":\"\(op)\",\"entries\":\(entries),\"ns_per_op\":\(rounded)}")
        printStandardError("  \(op.padding(8)) \(rounded) ns/op over \(count) ops")
    }

    printStandardError("engine benchmark: \(entries) entries, seed \(seed)")
    let before = jemallocAllocatedBytes()
    let partition = BoardPartition(config: BoardConfig.defaultConfig(id: "bench"))

    // insert (the load)
    var start = monotonicNanoseconds()
    for index in 0..<entries {
        sequence += 1
        let outcome = try partition.write(
            playerID: ids[index], score: scores[index], subscore: 0, metadata: nil, sequence: sequence)
        sink &+= outcome.created ? 1 : 0
    }
    let insertNanoseconds = monotonicNanoseconds() - start

    let after = jemallocAllocatedBytes()
    let bytesPerEntry = Double(after - before) / Double(entries)
    print("{\"bench\":\"engine\",\"metric\":\"bytes_per_entry\",\"entries\":\(entries),\"value\":\((bytesPerEntry * 10).rounded() / 10)}")
    printStandardError("  memory   \((bytesPerEntry * 10).rounded() / 10) bytes/entry (jemalloc stats.allocated delta \(after - before); engine's own count \(partition.reservedBytes))")
    report("insert", nanoseconds: insertNanoseconds, count: entries)

    // update: random new scores for random existing players (best: about half improve)
    let players = (0..<operations).map { _ in random.below(entries) }
    let newScores = (0..<operations).map { _ in Int64(random.below(entries)) }
    start = monotonicNanoseconds()
    for index in 0..<operations {
        sequence += 1
        let outcome = try partition.write(
            playerID: ids[players[index]], score: newScores[index], subscore: 0, metadata: nil, sequence: sequence)
        sink &+= outcome.keyChanged ? 1 : 0
    }
    report("update", nanoseconds: monotonicNanoseconds() - start, count: operations)

    // rank: look the player's key up, count entries strictly better
    start = monotonicNanoseconds()
    for index in 0..<operations {
        if let key = partition.key(for: ids[players[index]]) { sink &+= partition.countBetter(than: key) }
    }
    report("rank", nanoseconds: monotonicNanoseconds() - start, count: operations)

    let smallRepeats = min(operations, 200_000)
    start = monotonicNanoseconds()
    for _ in 0..<smallRepeats { sink &+= partition.entries(fromRank: 0, limit: 10).count }
    report("top10", nanoseconds: monotonicNanoseconds() - start, count: smallRepeats)

    let pageOffset = min(5000, max(0, entries - 50))
    start = monotonicNanoseconds()
    for _ in 0..<smallRepeats { sink &+= partition.entries(fromRank: pageOffset, limit: 50).count }
    report("page50", nanoseconds: monotonicNanoseconds() - start, count: smallRepeats)

    start = monotonicNanoseconds()
    for index in 0..<smallRepeats {
        if let key = partition.key(for: ids[players[index]]) {
            sink &+= partition.entries(before: key, limit: 5).count + partition.entries(after: key, limit: 5).count
        }
    }
    report("around5", nanoseconds: monotonicNanoseconds() - start, count: smallRepeats)

    printStandardError("  (checksum \(sink))")
    withExtendedLifetime(partition) {}
}

extension String {
    fileprivate func padding(_ width: Int) -> String {
        count >= width ? self : self + String(repeating: " ", count: width - count)
    }
}
