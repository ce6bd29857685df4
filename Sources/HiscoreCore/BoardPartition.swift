/// What one shard holds of one board: its players, ranked.
///
/// Structure (per partition): an `EntryStore` (entry records by slot, struct-of-arrays pages),
/// a `PlayerIndex` (id -> slot hash table) and a `RadixTree` (order statistics over the ranking
/// keys, leaves = slots). About 45-55 bytes per player in total; see docs/engine.md.
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
    private var store: EntryStore
    private var index = PlayerIndex()
    private var tree = RadixTree()

    public init(config: BoardConfig) {
        self.config = config
        self.codec = config.codec
        self.store = EntryStore(codec: config.codec)
    }

    deinit {
        tree.removeAll()
        index.deallocateAll()
        store.deallocateAll()
    }

    /// Players in this partition.
    public var count: Int { tree.count }

    /// Bytes this partition holds from the allocator (tree, index, columns, long ids, metadata).
    public var reservedBytes: Int { tree.reservedBytes + index.reservedBytes + store.reservedBytes }

    // MARK: - Lookup helpers

    @inline(__always)
    private func withPackedID<R>(_ playerID: String, _ body: (PackedID) -> R) -> R {
        var id = playerID
        return id.withUTF8 { utf8 in body(PackedID(UnsafeRawBufferPointer(utf8))) }
    }

    @inline(__always)
    private func find(_ id: PackedID) -> (bucket: Int, slot: UInt32)? {
        index.find(hash: id.hash) { store.idMatches($0, id) }
    }

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
        if let metadata, metadata.count > config.limits.maxMetadataBytes {
            throw .metadataTooLarge(bytes: metadata.count, limit: config.limits.maxMetadataBytes)
        }
        let result = withPackedID(playerID) { id in
            applyWrite(id: id, score: score, subscore: subscore, metadata: metadata, sequence: sequence)
        }
        return try result.get()
    }

    private func applyWrite(
        id: PackedID, score: Int64, subscore: Int64, metadata: [UInt8]?, sequence: UInt64
    ) -> Result<WriteOutcome, WriteError> {
        if id.bytes.count > Self.maxPlayerIDBytes {
            return .failure(.playerIDTooLong(bytes: id.bytes.count, limit: Self.maxPlayerIDBytes))
        }
        guard let (_, slot) = find(id) else {
            return create(id: id, score: score, subscore: subscore, metadata: metadata, sequence: sequence)
        }
        let previous = makeEntry(slot)
        let newScore: Int64
        switch config.writeOperator {
        case .best:
            guard codec.isBetter(score: score, subscore: subscore, than: previous.score, previous.subscore) else {
                return .success(WriteOutcome(
                    previous: previous, current: previous, keyChanged: false, created: false, accepted: false))
            }
            newScore = score
        case .set:
            newScore = score
        case .increment:
            newScore = Self.saturatingAdd(previous.score, score)
        case .decrement:
            newScore = Self.saturatingSubtract(previous.score, score)
        }
        let keyChanged = newScore != previous.score || subscore != previous.subscore
        if keyChanged {
            let removed = tree.remove(slot: slot, key: previous.key)
            assert(removed, "stored entry missing from the tree")
            setScore(slot, newScore, subscore, sequence)
            let newKey = codec.key(score: newScore, subscore: subscore, sequence: sequence)
            if !tree.insert(slot: slot, key: newKey, keys: store) {
                setScore(slot, previous.score, previous.subscore, previous.sequence)
                let restored = tree.insert(slot: slot, key: previous.key, keys: store)
                assert(restored)
                return .failure(.duplicateKey(sequence: sequence))
            }
        }
        if let metadata { store.setMetadata(slot, metadata) }
        return .success(WriteOutcome(
            previous: previous, current: makeEntry(slot), keyChanged: keyChanged, created: false, accepted: true))
    }

    private func create(
        id: PackedID, score: Int64, subscore: Int64, metadata: [UInt8]?, sequence: UInt64
    ) -> Result<WriteOutcome, WriteError> {
        if store.liveCount >= Self.maxEntries { return .failure(.partitionFull(limit: Self.maxEntries)) }
        let newScore: Int64 =
            switch config.writeOperator {
            case .best, .set, .increment: score
            case .decrement: Self.saturatingSubtract(0, score)
            }
        let slot = store.allocateSlot()
        store.setID(slot, id)
        setScore(slot, newScore, subscore, sequence)
        let key = codec.key(score: newScore, subscore: subscore, sequence: sequence)
        if !tree.insert(slot: slot, key: key, keys: store) {
            store.freeSlot(slot)
            return .failure(.duplicateKey(sequence: sequence))
        }
        index.insert(hash: id.hash, slot: slot) { store.idHash($0) }
        if let metadata { store.setMetadata(slot, metadata) }
        return .success(WriteOutcome(
            previous: nil, current: makeEntry(slot), keyChanged: true, created: true, accepted: true))
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
            index.remove(bucket: bucket)
            store.freeSlot(slot)
            return entry
        }
    }

    /// Removes every player and returns all memory but the partition object itself.
    public func removeAll() {
        tree.removeAll()
        index.deallocateAll()
        store.deallocateAll()
    }

    // MARK: - Point queries

    public func entry(for playerID: String) -> LeaderboardEntry? {
        withPackedID(playerID) { id in find(id).map { makeEntry($0.slot) } }
    }

    /// The player's ranking key, without building the entry.
    public func key(for playerID: String) -> RankKey? {
        withPackedID(playerID) { id in find(id).map { store.key(ofSlot: $0.slot) } }
    }

    /// Entries with a key strictly smaller (better) than `key`. `key` need not be stored.
    public func countBetter(than key: RankKey) -> Int {
        tree.countLess(than: key, orEqual: false, keys: store)
    }

    /// Entries with a key smaller than or equal to `key`.
    public func countBetterOrEqual(than key: RankKey) -> Int {
        tree.countLess(than: key, orEqual: true, keys: store)
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

    /// Distinct (score, subscore) values strictly better than `key`'s, for dense ranks
    /// (1 + this) on a single-partition board. Cost: O(distinct values better), not O(log n):
    /// it visits the tree nodes above the subscore/sequence bytes.
    public func distinctScoresBetter(than key: RankKey) -> Int {
        tree.distinctGroups(inFirst: countBetter(than: key.tieGroupStart))
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
        var result: [LeaderboardEntry] = []
        result.reserveCapacity(Swift.min(limit, count - localOffset))
        tree.forEachSlot(fromRank: localOffset, ascending: true) { slot in
            result.append(makeEntry(slot))
            return result.count < limit
        }
        return result
    }

    /// Up to `limit` entries strictly worse than `key`, nearest first (ascending key order).
    public func entries(after key: RankKey, limit: Int) -> [LeaderboardEntry] {
        entries(fromRank: countBetterOrEqual(than: key), limit: limit)
    }

    /// The `limit` nearest entries strictly better than `key`, in ranking order (best first).
    public func entries(before key: RankKey, limit: Int) -> [LeaderboardEntry] {
        guard limit > 0 else { return [] }
        let end = countBetter(than: key)
        let start = Swift.max(0, end - limit)
        return entries(fromRank: start, limit: end - start)
    }

    // MARK: - Invariants

    /// Checks every structural invariant: tree shape and counts, key order, and that the hash
    /// table, the live slots and the tree's leaves are the same set. O(n); for tests and debug.
    public func checkInvariants() {
        let slotsInOrder = tree.checkInvariants(keys: store)
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
    }
}
