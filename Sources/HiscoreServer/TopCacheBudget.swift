import Atomics
import HiscoreCore
import NIOConcurrencyHelpers

/// The bytes every board's `TopCache` may keep together (`max_top_cache_bytes`), and which tops
/// give way when a board needs room.
///
/// Each board keeps one top snapshot and one packed answer, each at most about a frame; alone
/// that bounds one board, not the server: 10,000 boards whose large-metadata tops are read
/// could keep ~20 GB, and nothing refused it under `--max-memory` (reads go on above the
/// ceiling). So a cache asks here before it keeps anything.
///
/// Past the bound, the tops least recently read give way, by the CLOCK (second chance)
/// algorithm: the caches that hold bytes form a ring; a cache that answered a call since the
/// hand last passed it has its mark cleared and is passed over, one that did not is dropped,
/// until there is room. Without it, tops kept by boards nobody reads any more (a quiet board, an
/// archived season) would hold the budget for good while a busy board, whose top every write
/// near the top drops, found no room each time it filled it again. Cost: one atomic add per top
/// kept or dropped, never per call answered from a cache; past the bound, at most
/// `maxEvictionSteps` caches looked at per top that needs room, and none kept if that finds
/// none (the top is computed for each call then: correct, only dearer). Above the memory
/// ceiling nothing new is kept at all.
///
/// Locks: a cache never holds its own lock while it asks here (asking may lock another cache
/// to drop its top), and the ring's lock is never held while a cache's is taken.
final class TopCacheBudget: Sendable {
    let limitBytes: Int
    private let ceiling: MemoryCeiling?
    private let heldBytes = ManagedAtomic<Int>(0)
    private let ring = NIOLockedValueBox(Ring())

    /// Caches looked at, at most, for one top that needs room.
    static let maxEvictionSteps = 32

    private struct Member {
        weak var cache: TopCache?
    }

    private struct Ring {
        var members: [Member] = []
        var hand = 0
    }

    init(limitBytes: Int, ceiling: MemoryCeiling? = nil) {
        self.limitBytes = limitBytes
        self.ceiling = ceiling
    }

    /// Bytes kept over every board.
    var held: Int { heldBytes.load(ordering: .relaxed) }

    /// Takes `bytes` (> 0) more for `requester`, dropping the tops of other caches not read
    /// lately if that makes room; false if it does not (or the memory ceiling is reached).
    func take(_ bytes: Int, for requester: TopCache) -> Bool {
        assert(bytes > 0)
        if ceiling?.isExceeded == true || bytes > limitBytes { return false }
        if takeWithinLimit(bytes) { return true }
        for _ in 0..<Self.maxEvictionSteps {
            guard let candidate = nextMember(skipping: requester) else { return false }
            candidate.giveWayUnlessRead()
            if takeWithinLimit(bytes) { return true }
        }
        return false
    }

    func give(_ bytes: Int) {
        guard bytes > 0 else { return }
        let after = heldBytes.wrappingDecrementThenLoad(by: bytes, ordering: .relaxed)
        assert(after >= 0, "top cache bytes went negative")
    }

    /// Puts `cache` in the ring (once: it stays until it is freed).
    func enlist(_ cache: TopCache) {
        ring.withLockedValue { $0.members.append(Member(cache: cache)) }
    }

    private func takeWithinLimit(_ bytes: Int) -> Bool {
        var current = heldBytes.load(ordering: .relaxed)
        while true {
            guard current <= limitBytes - bytes else { return false }
            let (exchanged, original) = heldBytes.weakCompareExchange(
                expected: current, desired: current + bytes, ordering: .relaxed)
            if exchanged { return true }
            current = original
        }
    }

    /// The cache under the hand (not `requester`), the hand moved past it; freed caches are
    /// taken out of the ring on the way.
    private func nextMember(skipping requester: TopCache) -> TopCache? {
        ring.withLockedValue { ring in
            var looked = 0
            while !ring.members.isEmpty && looked <= ring.members.count {
                if ring.hand >= ring.members.count { ring.hand = 0 }
                guard let cache = ring.members[ring.hand].cache else {
                    ring.members.swapAt(ring.hand, ring.members.count - 1)
                    ring.members.removeLast()
                    continue
                }
                ring.hand += 1
                looked += 1
                if cache !== requester { return cache }
            }
            return nil
        }
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
