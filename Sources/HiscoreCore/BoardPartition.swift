/// What one shard holds of one board: its players, ranked.
///
/// Structure (per partition): an `EntryStore` (entries by slot: a 32-byte hot record column
/// plus lazily allocated subscore and metadata columns, in 4096-slot pages), a `PlayerIndex`
/// (id -> slot, open addressing) and a `RadixTree` (order statistics over the ranking keys,
/// leaves = slots). About 52 bytes per player at 1M players; see docs/engine.md.
///
/// Not thread-safe and not `Sendable`: use it from one thread (one actor) at a time. Nothing an
/// input can do traps: bad writes throw `WriteError`, out-of-range queries return empty results.
public final class BoardPartition {
    /// Most players one partition can hold (bounded by the player index's 27-bit slot field).
    public static let maxEntries = Int(PlayerIndex.maxSlot) + 1
    /// Longest player id a partition stores (the server validates ids to `Identifier.maxBytes`).
    public static let maxPlayerIDBytes = 1024

    public let config: BoardConfig
    public let codec: KeyCodec

    // The three structures live in memory this object allocates, and are reached through
    // addressors: a stored `var` of a class would be copied or guarded by a dynamic exclusivity
    // check on every access, which costs more than a rank query's arithmetic. The partition is
    // single-threaded by contract, so nothing can overlap.
    private let storePointer: UnsafeMutablePointer<EntryStore>
    private let indexPointer: UnsafeMutablePointer<PlayerIndex>
    private let treePointer: UnsafeMutablePointer<RadixTree>
    /// Dense-ranked boards only (`rankMode == .dense`): a second tree with one leaf per distinct
    /// (score, subscore), see `distinctScoresBetter`.
    private let groupsPointer: UnsafeMutablePointer<RadixTree>?

    var store: EntryStore {
        unsafeAddress { UnsafePointer(storePointer) }
        unsafeMutableAddress { storePointer }
    }
    var index: PlayerIndex {
        unsafeAddress { UnsafePointer(indexPointer) }
        unsafeMutableAddress { indexPointer }
    }
    var tree: RadixTree {
        unsafeAddress { UnsafePointer(treePointer) }
        unsafeMutableAddress { treePointer }
    }
    /// Only when `groupsPointer` is set.
    var groups: RadixTree {
        unsafeAddress { UnsafePointer(groupsPointer.unsafelyUnwrapped) }
        unsafeMutableAddress { groupsPointer.unsafelyUnwrapped }
    }

    public init(config: BoardConfig) {
        self.config = config
        self.codec = config.codec
        storePointer = .allocate(capacity: 1)
        storePointer.initialize(to: EntryStore(codec: config.codec))
        indexPointer = .allocate(capacity: 1)
        indexPointer.initialize(to: PlayerIndex())
        treePointer = .allocate(capacity: 1)
        treePointer.initialize(to: RadixTree())
        if config.rankMode == .dense {
            let groups = UnsafeMutablePointer<RadixTree>.allocate(capacity: 1)
            groups.initialize(to: RadixTree())
            groupsPointer = groups
        } else {
            groupsPointer = nil
        }
    }

    deinit {
        tree.removeAll()
        index.deallocateAll()
        store.deallocateAll()
        storePointer.deinitialize(count: 1)
        storePointer.deallocate()
        indexPointer.deinitialize(count: 1)
        indexPointer.deallocate()
        treePointer.deinitialize(count: 1)
        treePointer.deallocate()
        if let groupsPointer {
            groupsPointer.pointee.removeAll()
            groupsPointer.deinitialize(count: 1)
            groupsPointer.deallocate()
        }
    }

    /// Players in this partition.
    public var count: Int { tree.count }

    /// Bytes this partition holds from the allocator (tree, index, columns, long ids, metadata).
    public var reservedBytes: Int { memoryUsage.total }

    /// Where this partition's memory goes, in bytes requested from the allocator.
    public struct MemoryUsage: Sendable, Equatable, CustomStringConvertible {
        /// Radix tree node chunks.
        public var tree: Int
        /// Player id hash table.
        public var index: Int
        /// Entry records, subscore and metadata columns.
        public var columns: Int
        /// Long ids (over 15 bytes) and metadata blobs.
        public var blobs: Int

        public var total: Int { tree + index + columns + blobs }
        public var description: String { "tree \(tree) index \(index) columns \(columns) blobs \(blobs)" }
    }

    public var memoryUsage: MemoryUsage {
        MemoryUsage(
            tree: tree.reservedBytes + (groupsPointer == nil ? 0 : groups.reservedBytes), index: index.reservedBytes,
            columns: store.reservedBytes - store.blobBytes, blobs: store.blobBytes)
    }

    // MARK: - Lookup helpers

    /// Writes whose cache lines `prepareWrites` has already started loading: they skip their own
    /// warming walk. Only a hint; a stale value costs a few cache misses, never a wrong answer.
    var preparedWrites = 0

    @inline(__always)
    func withPackedID<R>(_ playerID: String, _ body: (PackedID) -> R) -> R {
        var id = playerID
        return id.withUTF8 { utf8 in body(PackedID(UnsafeRawBufferPointer(utf8))) }
    }

    @inline(__always)
    private func find(_ id: PackedID) -> (bucket: Int, slot: UInt32)? {
        index.find(hash: id.hash) { store.idMatches($0, id) }
    }

    /// The entry of `slot`.
    private func makeEntry(_ slot: UInt32) -> LeaderboardEntry {
        let record = store.record(slot).pointee
        let subscore = store.subscore(slot)
        return LeaderboardEntry(
            playerID: store.playerID(slot), score: record.score, subscore: subscore,
            metadata: store.metadataBytes(slot), sequence: record.sequence,
            key: codec.key(score: record.score, subscore: subscore, sequence: record.sequence))
    }

    // MARK: - Writes

    /// Applies a write with the board's operator (see `WriteOperator`).
    ///
    /// - `metadata`: nil keeps the stored metadata; non-nil replaces it when the write is applied
    ///   (for `best`: only when it improves the entry).
    /// - `sequence`: the arrival sequence to record if the (score, subscore) changes; unique per
    ///   board. An unchanged (score, subscore) keeps its old sequence (and so its place).
    /// - Increment/decrement saturate at Int64.min/max; a new player starts from 0.
    public func write(
        playerID: String, score: Int64, subscore: Int64, metadata: [UInt8]?, sequence: UInt64
    ) throws(WriteError) -> WriteOutcome {
        var unused = BetterCounts()
        return try write(
            playerID: playerID, score: score, subscore: subscore, metadata: metadata, sequence: sequence,
            counting: false, into: &unused, admit: { true })
    }

    /// `write`, also counting the entries that beat the moved entry (`BetterCounts`) on the
    /// write's own descents: a server answering a submit with the player's rank then needs no
    /// further descent (and no read of a leaf's record) unless the entry did not move.
    ///
    /// `admittingNew` is asked, once, only when the write would add a player, before anything
    /// changes; false refuses the write with `WriteError.notAdmitted`. A server's limits on new
    /// players (memory ceiling, board size) are checked there, inside the write's own lookup,
    /// rather than by a lookup of their own before it: that one would wait for the id's bucket
    /// and record before the write could start overlapping them with its tree walk.
    public func write(
        playerID: String, score: Int64, subscore: Int64, metadata: [UInt8]?, sequence: UInt64,
        countingBetter counts: inout BetterCounts, admittingNew admit: () -> Bool = { true }
    ) throws(WriteError) -> WriteOutcome {
        try write(
            playerID: playerID, score: score, subscore: subscore, metadata: metadata, sequence: sequence,
            counting: true, into: &counts, admit: admit)
    }

    private func write(
        playerID: String, score: Int64, subscore: Int64, metadata: [UInt8]?, sequence: UInt64,
        counting: Bool, into counts: inout BetterCounts, admit: () -> Bool
    ) throws(WriteError) -> WriteOutcome {
        if let metadata, metadata.count > config.limits.maxMetadataBytes {
            throw .metadataTooLarge(bytes: metadata.count, limit: config.limits.maxMetadataBytes)
        }
        // The ranking work runs in the id's scope and returns plain values; the entries, which
        // hold the id string and metadata arrays, are built once, out here.
        var applied = AppliedWrite.unset
        let failure = withPackedID(playerID) { id in
            applyWrite(id: id, score: score, subscore: subscore, sequence: sequence, counting: counting, admit: admit, into: &applied)
        }
        if let failure { throw failure }
        counts = BetterCounts(previous: applied.previousBetter, current: applied.currentBetter)
        let oldMetadata = applied.previous == nil ? [] : store.metadataBytes(applied.slot)
        var newMetadata = oldMetadata
        if applied.accepted, let metadata {
            store.setMetadata(applied.slot, metadata)
            newMetadata = metadata
        }
        let current = applied.current.entry(playerID: playerID, metadata: newMetadata)
        let outcome = WriteOutcome(
            previous: applied.previous.map { $0.entry(playerID: playerID, metadata: oldMetadata) }, current: current,
            keyChanged: applied.keyChanged, created: applied.previous == nil, accepted: applied.accepted)
        assert(current == makeEntry(applied.slot), "the written entry differs from the stored one")
        return outcome
    }

    /// Sets a player's entry to exactly this state (score, subscore, sequence and metadata),
    /// whatever the board's operator: recovery replays resulting states, not operations. A
    /// refused restore (a key another entry holds) leaves the player's entry as it was.
    public func restore(
        playerID: String, score: Int64, subscore: Int64, metadata: [UInt8], sequence: UInt64
    ) throws(WriteError) {
        let existing = entry(for: playerID)
        if let existing {
            if existing.score == score && existing.subscore == subscore && existing.sequence == sequence
                && existing.metadata == metadata
            {
                return
            }
            _ = remove(playerID: playerID)
        }
        do throws(WriteError) {
            try place(playerID, score: score, subscore: subscore, metadata: metadata, sequence: sequence)
        } catch {
            // Its own key was freed by the removal: putting the old state back cannot collide.
            if let existing {
                try? place(playerID, score: existing.score, subscore: existing.subscore, metadata: existing.metadata, sequence: existing.sequence)
            }
            throw error
        }
    }

    /// Adds `playerID` (not on the board) with exactly this state.
    private func place(
        _ playerID: String, score: Int64, subscore: Int64, metadata: [UInt8], sequence: UInt64
    ) throws(WriteError) {
        var created = AppliedWrite.unset
        let failure = withPackedID(playerID) { id in
            create(id: id, score: score, subscore: subscore, sequence: sequence, counting: false, admit: { true }, into: &created)
        }
        if let failure { throw failure }
        if !metadata.isEmpty { store.setMetadata(created.slot, metadata) }
    }

    /// An entry's ranking state, without its id and metadata.
    struct EntryState {
        var score: Int64
        var subscore: Int64
        var sequence: UInt64
        var key: RankKey

        func entry(playerID: String, metadata: [UInt8]) -> LeaderboardEntry {
            LeaderboardEntry(
                playerID: playerID, score: score, subscore: subscore, metadata: metadata, sequence: sequence, key: key)
        }
    }

    /// What a write did to the ranking, in plain values (copied without reference counting).
    struct AppliedWrite {
        var slot: UInt32
        /// Nil when the write created the entry.
        var previous: EntryState?
        var current: EntryState
        var keyChanged: Bool
        var accepted: Bool
        /// Counted by the write's descents when asked (see `BetterCounts`).
        var previousBetter: Int? = nil
        var currentBetter: Int? = nil

        /// A placeholder for a write to fill in.
        static var unset: AppliedWrite {
            AppliedWrite(
                slot: 0, previous: nil, current: EntryState(score: 0, subscore: 0, sequence: 0, key: .min), keyChanged: false,
                accepted: false)
        }
    }

    /// One write's ranking part, built around the cache misses it cannot avoid: the id's
    /// bucket, its record, the tree paths of the old and new keys. Each key is encoded once.
    private func applyWrite(
        id: PackedID, score: Int64, subscore: Int64, sequence: UInt64, counting: Bool, admit: () -> Bool,
        into applied: inout AppliedWrite
    ) -> WriteError? {
        if id.bytes.count > Self.maxPlayerIDBytes {
            return .playerIDTooLong(bytes: id.bytes.count, limit: Self.maxPlayerIDBytes)
        }
        // The id's bucket and the new key's place in the tree are two independent chains of
        // cache misses: start the first, walk the second meanwhile (see `RadixTree.warmPaths`).
        // An increment's new score depends on the stored one, so only its bucket is prefetched.
        let replacesScore = config.writeOperator == .best || config.writeOperator == .set
        let requestedKey = codec.key(score: score, subscore: subscore, sequence: sequence)
        let prepared = preparedWrites > 0
        if prepared {
            preparedWrites -= 1
        } else {
            index.prefetch(hash: id.hash)
            if replacesScore { tree.warmPath(inserting: requestedKey, keys: store.keys) }
        }
        guard let (_, slot) = find(id) else {
            // A new player starts from 0: a decrement's first score is its negation.
            let initialScore = config.writeOperator == .decrement ? Self.saturatingSubtract(0, score) : score
            return create(id: id, score: initialScore, subscore: subscore, sequence: sequence, counting: counting, admit: admit, into: &applied)
        }
        let record = store.record(slot)
        let oldSubscore = store.subscore(slot)
        let old = EntryState(
            score: record.pointee.score, subscore: oldSubscore, sequence: record.pointee.sequence,
            key: codec.key(score: record.pointee.score, subscore: oldSubscore, sequence: record.pointee.sequence))
        let newScore: Int64
        switch config.writeOperator {
        case .best:
            guard codec.isBetter(score: score, subscore: subscore, than: old.score, old.subscore) else {
                applied = AppliedWrite(slot: slot, previous: old, current: old, keyChanged: false, accepted: false)
                return nil
            }
            newScore = score
        case .set:
            newScore = score
        case .increment:
            newScore = Self.saturatingAdd(old.score, score)
        case .decrement:
            newScore = Self.saturatingSubtract(old.score, score)
        }
        guard newScore != old.score || subscore != old.subscore else {
            applied = AppliedWrite(slot: slot, previous: old, current: old, keyChanged: false, accepted: true)
            return nil
        }
        let new = EntryState(
            score: newScore, subscore: subscore, sequence: sequence,
            key: replacesScore ? requestedKey : codec.key(score: newScore, subscore: subscore, sequence: sequence))
        if !prepared && !replacesScore {
            tree.warmPaths(removing: old.key, inserting: new.key, keys: store.keys)
        }
        let previousBetter = tree.remove(slot: slot, key: old.key, countingLess: counting)
        assert(previousBetter != nil, "stored entry missing from the tree")
        tree.refreshRootPrefix(keys: store.keys)
        leftGroup(slot: slot, key: old.key)
        setScore(slot, new.score, new.subscore, new.sequence)
        guard let currentBetter = tree.insert(slot: slot, key: new.key, keys: store.keys, countingLess: counting) else {
            setScore(slot, old.score, old.subscore, old.sequence)
            let restored = tree.insert(slot: slot, key: old.key, keys: store.keys)
            assert(restored)
            joinedGroup(slot: slot, key: old.key)
            return .duplicateKey(sequence: sequence)
        }
        joinedGroup(slot: slot, key: new.key)
        applied = AppliedWrite(
            slot: slot, previous: old, current: new, keyChanged: true, accepted: true,
            previousBetter: counting ? previousBetter : nil, currentBetter: counting ? currentBetter : nil)
        return nil
    }

    /// Adds a new player with exactly this score (the operator is the caller's to have applied:
    /// a write's, not a restore's); its metadata is the caller's to set.
    private func create(
        id: PackedID, score newScore: Int64, subscore: Int64, sequence: UInt64, counting: Bool, admit: () -> Bool,
        into applied: inout AppliedWrite
    ) -> WriteError? {
        if store.liveCount >= Self.maxEntries { return .partitionFull(limit: Self.maxEntries) }
        guard admit() else { return .notAdmitted }
        let slot = store.allocateSlot()
        store.setID(slot, id)
        setScore(slot, newScore, subscore, sequence)
        let key = codec.key(score: newScore, subscore: subscore, sequence: sequence)
        guard let better = tree.insert(slot: slot, key: key, keys: store.keys, countingLess: counting) else {
            store.freeSlot(slot)
            return .duplicateKey(sequence: sequence)
        }
        joinedGroup(slot: slot, key: key)
        index.insert(hash: id.hash, slot: slot, ids: store)
        let current = EntryState(score: newScore, subscore: subscore, sequence: sequence, key: key)
        applied = AppliedWrite(
            slot: slot, previous: nil, current: current, keyChanged: true, accepted: true,
            currentBetter: counting ? better : nil)
        return nil
    }

    @inline(__always)
    private func setScore(_ slot: UInt32, _ score: Int64, _ subscore: Int64, _ sequence: UInt64) {
        let record = store.record(slot)
        record.pointee.score = score
        record.pointee.sequence = sequence
        store.setSubscore(slot, subscore)
    }

    static func saturatingAdd(_ a: Int64, _ b: Int64) -> Int64 {
        let (sum, overflow) = a.addingReportingOverflow(b)
        return overflow ? (b > 0 ? .max : .min) : sum
    }

    static func saturatingSubtract(_ a: Int64, _ b: Int64) -> Int64 {
        let (difference, overflow) = a.subtractingReportingOverflow(b)
        return overflow ? (b > 0 ? .min : .max) : difference
    }

    /// Removes a player; returns its entry, or nil when absent.
    @discardableResult
    public func remove(playerID: String) -> LeaderboardEntry? {
        withPackedID(playerID) { id -> LeaderboardEntry? in
            guard let (bucket, slot) = find(id) else { return nil }
            let entry = makeEntry(slot)
            let removed = tree.remove(slot: slot, key: entry.key)
            assert(removed, "stored entry missing from the tree")
            tree.refreshRootPrefix(keys: store.keys)
            leftGroup(slot: slot, key: entry.key)
            index.remove(bucket: bucket)
            store.freeSlot(slot)
            return entry
        }
    }

    /// Removes every player and returns all memory but the partition object itself.
    public func removeAll() {
        tree.removeAll()
        if groupsPointer != nil { groups.removeAll() }
        index.deallocateAll()
        store.deallocateAll()
    }

    // MARK: - Point queries

    public func entry(for playerID: String) -> LeaderboardEntry? {
        withPackedID(playerID) { id in find(id).map { makeEntry($0.slot) } }
    }

    /// The length of the player's stored metadata, without copying it, when a write of this
    /// (score, subscore) would replace it; nil when the player has no entry here, or when the
    /// board keeps the best score and this one is not better (the write changes nothing).
    public func replacedMetadataCount(for playerID: String, score: Int64, subscore: Int64) -> Int? {
        withPackedID(playerID) { id in
            guard let (_, slot) = find(id) else { return nil }
            if config.writeOperator == .best {
                let record = store.record(slot)
                guard codec.isBetter(score: score, subscore: subscore, than: record.pointee.score, store.subscore(slot)) else {
                    return nil
                }
            }
            return store.metadataCount(slot)
        }
    }

    /// The player's ranking key, without building the entry.
    public func key(for playerID: String) -> RankKey? {
        withPackedID(playerID) { id in find(id).map { store.key(ofSlot: $0.slot) } }
    }

    /// Entries with a key strictly smaller (better) than `key`. `key` need not be stored.
    public func countBetter(than key: RankKey) -> Int {
        tree.countLess(than: key, orEqual: false, keys: store.keys)
    }

    /// `countBetter(than:)` for a key this partition most likely does not hold (another shard's
    /// entry, a tie group's first key): usually settled without reading any entry record (see
    /// `RadixTree.countLess(absent:keys:)`); a key it does hold costs a second walk.
    public func countBetter(thanAbsent key: RankKey) -> Int {
        tree.countLess(absent: key, keys: store.keys)
    }

    /// Entries with a key smaller than or equal to `key`.
    public func countBetterOrEqual(than key: RankKey) -> Int {
        tree.countLess(than: key, orEqual: true, keys: store.keys)
    }

    /// Entries with `lower <= key <= upper` (both bounds inclusive); 0 when lower > upper.
    public func count(from lower: RankKey, to upper: RankKey) -> Int {
        guard lower <= upper else { return 0 }
        return countBetterOrEqual(than: upper) - countBetter(than: lower)
    }

    /// Entries whose score lies in `min...max` (inclusive; nil = unbounded), any subscore.
    public func countScores(min: Int64?, max: Int64?) -> Int {
        guard let range = codec.keyRange(scoreMin: min, scoreMax: max) else { return 0 }
        return count(from: range.lowerBound, to: range.upperBound)
    }

    // MARK: - Dense ranks

    /// Distinct (score, subscore) values strictly better than `key`'s, for dense ranks
    /// (1 + this) on a single-partition board.
    ///
    /// A dense-ranked board keeps a second radix tree, `groups`, with one leaf per distinct
    /// (score, subscore): its key is the group's first possible key (sequence 0) and its slot
    /// that of one member, the *representative*, whose record gives the key back. The answer is
    /// then a count in that tree, O(h log c) like an ordinal rank. Upkeep: an entry entering the
    /// main tree inserts its group (a no-op when the group exists); an entry leaving it removes
    /// the group only if it was the representative, and then puts the group back under the next
    /// member if one is left (a count and a select in the main tree). Cost: ~14 bytes per
    /// distinct value, on dense boards only.
    ///
    /// Other boards are not asked for dense ranks by the server (FAILED_PRECONDITION); for them
    /// this walks the main tree's nodes above the subscore/sequence bytes: O(distinct values
    /// better).
    public func distinctScoresBetter(than key: RankKey) -> Int {
        if groupsPointer != nil {
            return groups.countLess(than: key.tieGroupStart, orEqual: false, keys: GroupKeys(entries: store.keys))
        }
        return tree.distinctGroups(inFirst: countBetter(than: key.tieGroupStart))
    }

    /// `slot` entered the main tree under `key`.
    @inline(__always)
    private func joinedGroup(slot: UInt32, key: RankKey) {
        guard groupsPointer != nil else { return }
        _ = groups.insert(slot: slot, key: key.tieGroupStart, keys: GroupKeys(entries: store.keys))
    }

    /// `slot`, whose record still holds `key`'s score, left the main tree.
    private func leftGroup(slot: UInt32, key: RankKey) {
        guard groupsPointer != nil else { return }
        let groupKey = key.tieGroupStart
        let groupKeys = GroupKeys(entries: store.keys)
        let position = groups.countLess(than: groupKey, orEqual: false, keys: groupKeys)
        guard position < groups.count, groups.select(position) == slot else { return }  // another member represents it
        let removed = groups.remove(slot: slot, key: groupKey)
        assert(removed, "a group missing from the group tree")
        let next = tree.countLess(than: groupKey, orEqual: false, keys: store.keys)
        if next < tree.count {
            let member = tree.select(next)
            if store.key(ofSlot: member).isTied(with: key) {
                let inserted = groups.insert(slot: member, key: groupKey, keys: groupKeys)
                assert(inserted)
            }
        }
    }

    /// 1-based rank of `key` within this partition alone, in `mode`.
    public func localRank(of key: RankKey, mode: RankMode) -> Int {
        switch mode {
        case .ordinal: 1 + countBetter(than: key)
        case .competition: 1 + countBetter(than: key.tieGroupStart)
        case .dense: 1 + distinctScoresBetter(than: key)
        }
    }

    // MARK: - Iteration

    /// Direction of iteration: toward worse entries (ascending keys, rank 1 first) or better ones.
    public enum Direction: Sendable {
        case towardWorse
        case towardBetter
    }

    /// Calls `body` with entries from 0-based local rank `rank` on, in `direction`, until it
    /// returns false or the entries run out. Do not modify the partition from `body`.
    public func forEach(fromRank rank: Int, direction: Direction = .towardWorse, _ body: (LeaderboardEntry) -> Bool) {
        tree.forEachSlot(fromRank: rank, ascending: direction == .towardWorse) { body(makeEntry($0)) }
    }

    /// Calls `body` with entries from `key` on (including an entry equal to `key` when `inclusive`),
    /// in `direction`, until it returns false or the entries run out.
    public func forEach(
        from key: RankKey, inclusive: Bool, direction: Direction = .towardWorse, _ body: (LeaderboardEntry) -> Bool
    ) {
        switch direction {
        case .towardWorse:
            forEach(fromRank: inclusive ? countBetter(than: key) : countBetterOrEqual(than: key), direction: direction, body)
        case .towardBetter:
            let start = (inclusive ? countBetterOrEqual(than: key) : countBetter(than: key)) - 1
            forEach(fromRank: start, direction: direction, body)
        }
    }

    /// Up to `limit` entries from 0-based local rank `localOffset`, best first.
    public func entries(fromRank localOffset: Int, limit: Int) -> [LeaderboardEntry] {
        guard localOffset >= 0, limit > 0, localOffset < count else { return [] }
        return collectEntries(fromRank: localOffset, count: Swift.min(limit, count - localOffset), skipping: nil)
    }

    /// Up to `limit` keys from 0-based local rank `localOffset`, best first: a page window for
    /// `PartitionMerge.pageRanges`, without building entries (no player id or metadata copies).
    ///
    /// Collects the slots first (the tree walk touches only nodes), then starts loading every
    /// slot's record before reading any key, so the records' cache misses overlap.
    public func keys(fromRank localOffset: Int, limit: Int) -> [RankKey] {
        guard localOffset >= 0, limit > 0, localOffset < count else { return [] }
        let wanted = Swift.min(limit, count - localOffset)
        return withUnsafeTemporaryAllocation(of: UInt32.self, capacity: wanted) { slots in
            var collected = 0
            tree.forEachSlot(fromRank: localOffset, ascending: true) { slot in
                slots[collected] = slot
                collected += 1
                return collected < wanted
            }
            let source = store.keys
            for index in 0..<collected { source.prefetchKey(ofSlot: slots[index]) }
            return [RankKey](unsafeUninitializedCapacity: collected) { keys, initialized in
                for index in 0..<collected { (keys.baseAddress.unsafelyUnwrapped + index).initialize(to: source.key(ofSlot: slots[index])) }
                initialized = collected
            }
        }
    }

    /// `wanted` entries from `start` on (all must exist), leaving out the slot `skipped`.
    ///
    /// Walks the tree first, collecting slots, then asks for every entry record before building
    /// any result: the records are scattered, and prefetching them all lets their cache misses
    /// overlap instead of paying them one after the other. (A loop summing the records' scores
    /// did this before, until a profile showed the optimizer had dropped it as unused: neighbour
    /// queries spent half their time in `makeEntry`, waiting on one record after another.)
    private func collectEntries(fromRank start: Int, count wanted: Int, skipping skipped: UInt32?) -> [LeaderboardEntry] {
        withUnsafeTemporaryAllocation(of: UInt32.self, capacity: wanted) { slots in
            var collected = 0
            tree.forEachSlot(fromRank: start, ascending: true) { slot in
                if slot != skipped {
                    slots[collected] = slot
                    collected += 1
                }
                return collected < wanted
            }
            let source = store.keys
            for index in 0..<collected { source.prefetchKey(ofSlot: slots[index]) }
            var result: [LeaderboardEntry] = []
            result.reserveCapacity(collected)
            for index in 0..<collected { result.append(makeEntry(slots[index])) }
            return result
        }
    }

    /// Up to `limit` entries strictly worse than `key`, nearest first (ascending key order).
    public func entries(after key: RankKey, limit: Int) -> [LeaderboardEntry] {
        entries(fromRank: countBetterOrEqual(than: key), limit: limit)
    }

    /// A run of `count` entries beginning `before` places ahead of where `key` stands (clamped at
    /// the best entry), with its first local rank: one count descent and one walk. What a page
    /// over partitions fetches around its anchor key (`PartitionMerge.anchoredRun`).
    public func entryRun(around key: RankKey, before: Int, count: Int) -> EntryRun {
        let start = Swift.max(0, countBetter(than: key) - Swift.max(0, before))
        return EntryRun(localStart: start, entries: entries(fromRank: start, limit: count), partitionSize: self.count)
    }

    /// The `limit` nearest entries strictly better than `key`, in ranking order (best first).
    public func entries(before key: RankKey, limit: Int) -> [LeaderboardEntry] {
        guard limit > 0 else { return [] }
        let end = countBetter(than: key)
        let start = Swift.max(0, end - limit)
        return entries(fromRank: start, limit: end - start)
    }

    /// `entries(before: key, limit: before)`, `entries(after: key, limit: after)` and
    /// `countBetter(than: key)` in one descent and one walk (what an around-me query needs).
    public func neighbours(of key: RankKey, before: Int, after: Int)
        -> (better: [LeaderboardEntry], worse: [LeaderboardEntry], betterCount: Int)
    {
        let betterCount = countBetter(than: key)
        let slotAtKey = betterCount < count ? tree.select(betterCount) : nil
        let present = slotAtKey.map { store.keys.key(ofSlot: $0) == key } ?? false
        let start = Swift.max(0, betterCount - Swift.max(0, before))
        let worseStart = betterCount + (present ? 1 : 0)
        let end = Swift.min(count, PartitionMerge.saturatingSum(worseStart, Swift.max(0, after)))
        let betterWanted = betterCount - start
        guard end - start - (present ? 1 : 0) > 0 else { return ([], [], betterCount) }
        var entries = collectEntries(
            fromRank: start, count: end - start - (present ? 1 : 0), skipping: present ? slotAtKey : nil)
        // The better part stays in the collected array (cut in place): two arrays, not three.
        let worse = Array(entries[betterWanted...])
        entries.removeSubrange(betterWanted...)
        return (entries, worse, betterCount)
    }

    // MARK: - Invariants

    /// Checks every structural invariant: tree shape and counts, key order, and that the hash
    /// table, the live slots and the tree's leaves are the same set. O(n); for tests and debug.
    public func checkInvariants() {
        let slotsInOrder = tree.checkInvariants(keys: store.keys)
        precondition(slotsInOrder.count == store.liveCount, "tree has \(slotsInOrder.count) leaves, store \(store.liveCount)")
        precondition(index.live == store.liveCount, "index has \(index.live) players, store \(store.liveCount)")
        var inTree = [Bool](repeating: false, count: store.highWater)
        for slot in slotsInOrder {
            precondition(!store.record(slot).pointee.isFree, "tree references free slot \(slot)")
            precondition(!inTree[Int(slot)], "slot \(slot) twice in the tree")
            inTree[Int(slot)] = true
        }
        var indexed = 0
        index.forEachSlot { bucket, slot in
            precondition(inTree[Int(slot)], "index references slot \(slot) missing from the tree")
            let id = store.playerID(slot)
            let found = withPackedID(id) { find($0) }
            precondition(found?.slot == slot && found?.bucket == bucket, "id \(id) does not find its own slot")
            indexed += 1
        }
        precondition(indexed == store.liveCount, "index lists \(indexed) slots")
        if groupsPointer != nil {
            let groupKeys = GroupKeys(entries: store.keys)
            let representatives = groups.checkInvariants(keys: groupKeys)
            var expected: [RankKey] = []
            for slot in slotsInOrder {
                let groupKey = store.key(ofSlot: slot).tieGroupStart
                if expected.last != groupKey { expected.append(groupKey) }
            }
            precondition(representatives.map { groupKeys.key(ofSlot: $0) } == expected, "the group tree lists other groups")
            for slot in representatives { precondition(inTree[Int(slot)], "group represented by a slot not in the tree") }
        }
    }
}

/// The group tree's keys (`BoardPartition.distinctScoresBetter`): a representative's key with
/// the sequence cleared.
struct GroupKeys: LeafKeySource {
    let entries: EntryKeys

    @inline(__always)
    func key(ofSlot slot: UInt32) -> RankKey { entries.key(ofSlot: slot).tieGroupStart }

    @inline(__always)
    func prefetchKey(ofSlot slot: UInt32) { entries.prefetchKey(ofSlot: slot) }
}
