import Atomics
import HiscoreCore

/// The bytes every board's `TopCache` may keep together (`max_top_cache_bytes`).
///
/// Each board keeps one top snapshot and one packed answer, each at most about a frame; alone
/// that bounds one board, not the server: 10,000 boards whose large-metadata tops are read
/// could keep ~20 GB, and nothing refused it under `--max-memory` (reads go on above the
/// ceiling). So a cache asks here before it keeps anything: past the bound, or above the memory
/// ceiling, it keeps nothing new and the top is computed for each call (correct, only dearer);
/// what boards already keep stays until a write drops it, the board is deleted or the server
/// needs it for a larger answer. Cost: one atomic add per kept or dropped snapshot (never per
/// call served from the cache).
final class TopCacheBudget: Sendable {
    let limitBytes: Int
    private let ceiling: MemoryCeiling?
    private let heldBytes = ManagedAtomic<Int>(0)

    init(limitBytes: Int, ceiling: MemoryCeiling? = nil) {
        self.limitBytes = limitBytes
        self.ceiling = ceiling
    }

    /// Bytes kept over every board.
    var held: Int { heldBytes.load(ordering: .relaxed) }

    /// Takes `bytes` more for a cache, unless that passes the bound or the memory ceiling is
    /// reached. Giving back (a negative `bytes`) always succeeds.
    func take(_ bytes: Int) -> Bool {
        if bytes <= 0 {
            give(-bytes)
            return true
        }
        if ceiling?.isExceeded == true { return false }
        var current = heldBytes.load(ordering: .relaxed)
        while true {
            guard current <= limitBytes - bytes else { return false }
            let (exchanged, original) = heldBytes.weakCompareExchange(
                expected: current, desired: current + bytes, ordering: .relaxed)
            if exchanged { return true }
            current = original
        }
    }

    func give(_ bytes: Int) {
        guard bytes > 0 else { return }
        let after = heldBytes.wrappingDecrementThenLoad(by: bytes, ordering: .relaxed)
        assert(after >= 0, "top cache bytes went negative")
    }

    /// What a snapshot is counted as: each entry's fields, its id beyond Swift's inline 15
    /// bytes, its metadata (with an array's header), and its rank.
    static func bytes(of entries: [LeaderboardEntry]) -> Int {
        var total = 64
        for entry in entries {
            total += MemoryLayout<LeaderboardEntry>.stride + MemoryLayout<UInt64>.stride
            if entry.playerID.utf8.count > 15 { total += entry.playerID.utf8.count + 32 }
            if !entry.metadata.isEmpty { total += entry.metadata.count + 32 }
        }
        return total
    }
}
