import Atomics
import CJemalloc
import NIOConcurrencyHelpers

/// The hard memory ceiling (`--max-memory`). Above it, writes that would add a player are refused
/// with RESOURCE_EXHAUSTED; updates, reads and removals go on, so the server degrades instead of
/// being killed. The allocated figure comes from jemalloc and is refreshed every
/// `writesPerRefresh` writes on each shard — never by a timer, so an idle server does nothing.
final class MemoryCeiling: Sendable {
    /// 0 = no ceiling.
    let limitBytes: Int
    let writesPerRefresh: Int
    private let exceeded = ManagedAtomic<Bool>(false)
    private let lastAllocated = ManagedAtomic<Int>(0)
    /// Where the allocated figure comes from (jemalloc's `stats.allocated`; tests give their own).
    private let readAllocated: @Sendable () -> Int?
    /// Held from the read to the stores of a refresh, so that the flag always holds the latest
    /// reading. Without it, two shards refreshing at once could store in the other order: a
    /// reading from before a board was deleted, stored after the deletion's own refresh, kept
    /// new players refused until ~1,024 more writes (found by a race hunt). Refreshes are rare
    /// (one per `writesPerRefresh` writes on a shard, and one per board dropped).
    private let refreshing = NIOLock()

    init(limitBytes: Int, writesPerRefresh: Int = 1024, readAllocated: @escaping @Sendable () -> Int? = JemallocStats.allocatedBytes) {
        self.limitBytes = limitBytes
        self.writesPerRefresh = writesPerRefresh
        self.readAllocated = readAllocated
    }

    var isExceeded: Bool { limitBytes > 0 && exceeded.load(ordering: .relaxed) }
    var allocatedBytes: Int { lastAllocated.load(ordering: .relaxed) }

    var refusalMessage: String {
        "server memory ceiling reached (\(allocatedBytes) of \(limitBytes) bytes allocated): "
            + "new players are refused until memory is freed; updates and reads still work"
    }

    /// Reads jemalloc's allocated bytes and updates the flag.
    func refresh() {
        refreshing.withLock {
            let allocated = readAllocated() ?? 0
            lastAllocated.store(allocated, ordering: .relaxed)
            exceeded.store(limitBytes > 0 && allocated >= limitBytes, ordering: .relaxed)
        }
    }
}

/// jemalloc's statistics through `mallctl`. `stats.*` values are snapshots refreshed by writing
/// the `epoch` key first.
public enum JemallocStats {
    public static func allocatedBytes() -> Int? { read("stats.allocated") }
    public static func residentBytes() -> Int? { read("stats.resident") }
    public static func retainedBytes() -> Int? { read("stats.retained") }

    /// Heap allocations made so far (small + large, all arenas).
    public static func allocationCount() -> Int? {
        // nrequests, not nmalloc: nmalloc counts only refills of the thread caches, which serve
        // most allocations without reaching the arena.
        guard let small = read64("stats.arenas.4096.small.nrequests"), let large = read64("stats.arenas.4096.large.nrequests") else {
            return nil
        }
        return Int(truncatingIfNeeded: small &+ large)
    }

    static func read64(_ name: String) -> UInt64? {
        guard refreshEpoch() else { return nil }
        var value: UInt64 = 0
        var size = MemoryLayout<UInt64>.size
        guard mallctl(name, &value, &size, nil, 0) == 0 else { return nil }
        return value
    }

    private static func refreshEpoch() -> Bool {
        var epochIn: UInt64 = 1
        var epochOut: UInt64 = 0
        var epochSize = MemoryLayout<UInt64>.size
        return mallctl("epoch", &epochOut, &epochSize, &epochIn, epochSize) == 0
    }

    /// A size option jemalloc was started with (`opt.*`, a size_t).
    public static func option(_ name: String) -> Int? {
        var value = 0
        var size = MemoryLayout<Int>.size
        guard mallctl(name, &value, &size, nil, 0) == 0 else { return nil }
        return value
    }

    /// A statistic (`stats.*`, a size_t), refreshed first.
    public static func read(_ name: String) -> Int? {
        guard refreshEpoch() else { return nil }
        return option(name)
    }
}

extension MemoryCeiling {
    /// A ceiling was asked for but jemalloc's `stats.allocated` cannot be read: the ceiling
    /// would never trigger, so the server does not start.
    struct StatisticsUnavailable: Error, CustomStringConvertible {
        var description: String {
            "--max-memory needs jemalloc's statistics (stats.allocated), which this process cannot read"
        }
    }
}
