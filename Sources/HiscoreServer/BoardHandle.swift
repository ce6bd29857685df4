import Atomics
import HiscoreCore

/// One live board as every shard and connection sees it: its immutable config, where its
/// partitions live, and the few counters that must be shared across event loops (all atomics,
/// so no lock on the write path).
public final class BoardHandle: Sendable {
    public let config: BoardConfig
    /// Distinguishes this incarnation from a board of the same id deleted and created again, so a
    /// write racing a delete can never resurrect the old board's partition on a shard.
    public let incarnation: UInt64
    /// Shards holding a partition of this board: all of them, or one (dense-ranked boards keep
    /// every entry in one partition so that dense ranks stay exact).
    public let partitionCount: Int
    /// The shard of partition 0.
    public let homeShard: Int
    /// The season this incarnation holds: its id (1, 2, …) and when it started (µs since epoch).
    public let periodID: UInt64
    public let periodStartedAt: Int64
    /// When it was archived (µs); 0 = live. Archived boards are read-only.
    private let archivedAtMicros = ManagedAtomic<Int64>(0)

    /// The board's last top N, until a write could change it.
    let topCache: TopCache
    /// Where its recently asked offset pages began (boards over several shards).
    let pageAnchors = PageAnchors()

    private let clock = SequenceClock()
    private let versionCounter = ManagedAtomic<UInt64>(0)
    private let sizeCounter = ManagedAtomic<Int>(0)
    private let deletedFlag = ManagedAtomic<Bool>(false)
    private let subscriberCounter = ManagedAtomic<Int>(0)
    private let feedSubscriberCounter = ManagedAtomic<Int>(0)

    init(
        config: BoardConfig, incarnation: UInt64, partitionCount: Int, homeShard: Int, periodID: UInt64 = 1,
        periodStartedAt: Int64 = 0, topCacheBudget: TopCacheBudget
    ) {
        assert(partitionCount >= 1)
        self.topCache = TopCache(budget: topCacheBudget)
        self.periodID = periodID
        self.periodStartedAt = periodStartedAt
        self.config = config
        self.incarnation = incarnation
        self.partitionCount = partitionCount
        self.homeShard = homeShard
    }

    /// The shard that owns `playerID` on this board.
    public func shard(for playerID: String, shardCount: Int) -> Int {
        if partitionCount == 1 { return homeShard }
        return Int(PlayerHash.hash(playerID) % UInt64(shardCount))
    }

    /// The shards a query must ask: the home shard of a single-partition board, else all of them.
    public func shardRange(shardCount: Int) -> Range<Int> {
        partitionCount == 1 ? homeShard..<(homeShard + 1) : 0..<shardCount
    }

    /// Number of players on the board (sum over partitions, updated as writes land).
    public var size: Int { sizeCounter.load(ordering: .relaxed) }
    /// Accepted writes that changed the board.
    public var version: UInt64 { versionCounter.load(ordering: .relaxed) }
    public var isDeleted: Bool { deletedFlag.load(ordering: .acquiring) }

    /// The next arrival sequence: microseconds since the epoch, strictly increasing per board.
    func nextSequence() -> UInt64 { clock.next() }

    @discardableResult
    func bumpVersion() -> UInt64 { versionCounter.wrappingIncrementThenLoad(ordering: .relaxed) }

    /// Reserves room for one more player; false when the board's `maxEntries` is reached.
    ///
    /// A compare-and-exchange, not an increment taken back past the limit: that one showed a
    /// full board one over its `max_entries` to every reader in between, and could refuse a new
    /// player while a refused one's count was still in (the shards of a board reserve at once).
    func reserveEntry() -> Bool {
        let limit = config.limits.maxEntries
        guard limit > 0 else {
            sizeCounter.wrappingIncrement(ordering: .relaxed)
            return true
        }
        var current = sizeCounter.load(ordering: .relaxed)
        while current < limit {
            let (exchanged, original) = sizeCounter.weakCompareExchange(
                expected: current, desired: current + 1, ordering: .relaxed)
            if exchanged { return true }
            current = original
        }
        return false
    }

    /// After recovery: the entries a shard restored, and the highest sequence it saw.
    func restored(entries: Int, highestSequence: UInt64) {
        sizeCounter.wrappingIncrement(by: entries, ordering: .relaxed)
        clock.advance(past: highestSequence)
    }

    func releaseEntries(_ count: Int) {
        sizeCounter.wrappingDecrement(by: count, ordering: .relaxed)
    }

    /// Subscriptions on this board (all kinds). Shards check it on every write: zero means no
    /// write note is produced at all.
    var subscriberCount: Int { subscriberCounter.load(ordering: .relaxed) }
    /// Feed subscriptions: write notes then carry the whole entry.
    var feedSubscriberCount: Int { feedSubscriberCounter.load(ordering: .relaxed) }

    func addSubscriber(feed: Bool) {
        subscriberCounter.wrappingIncrement(ordering: .relaxed)
        if feed { feedSubscriberCounter.wrappingIncrement(ordering: .relaxed) }
    }

    func removeSubscriber(feed: Bool) {
        subscriberCounter.wrappingDecrement(ordering: .relaxed)
        if feed { feedSubscriberCounter.wrappingDecrement(ordering: .relaxed) }
    }

    public var archivedAt: Int64 { archivedAtMicros.load(ordering: .acquiring) }
    public var isArchived: Bool { archivedAt != 0 }
    func markArchived(at micros: Int64) { archivedAtMicros.store(max(1, micros), ordering: .releasing) }

    func markDeleted() {
        deletedFlag.store(true, ordering: .releasing)
        topCache.clear()
    }

    func info() -> BoardSnapshot {
        BoardSnapshot(config: config, size: UInt64(max(0, size)), version: version)
    }
}

/// What Describe/List report of a board.
public struct BoardSnapshot: Sendable, Equatable {
    public var config: BoardConfig
    public var size: UInt64
    public var version: UInt64
}
