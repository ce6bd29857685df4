import CCacheHint

/// Recomputes the id hash of a stored slot, for `PlayerIndex` rehashing.
protocol SlotHashSource {
    func hash(ofSlot slot: UInt32) -> UInt64
    /// Starts loading what `hash(ofSlot:)` will read, without waiting for it.
    func prefetchHash(ofSlot slot: UInt32)
}

/// Player id -> slot, one open-addressing hash table per partition.
///
/// Each bucket is one UInt32: 0 = empty, otherwise a 5-bit fingerprint of the id's hash (bits
/// 27-31) and slot + 1 (bits 0-26). A fingerprint field with slot field 0 is a tombstone. Linear
/// probing over a flat array: a probe sequence stays in one or two cache lines, and the
/// fingerprint rejects 31 of 32 foreign buckets without touching their entry record. The home
/// bucket is `hash * capacity >> 64` (any capacity, not just powers of two), so the table can use
/// its allocation's whole size class and stay near the 85% load ceiling: about 5-6 bytes a player.
struct PlayerIndex {
    static let slotBits: UInt32 = 27
    static let slotMask: UInt32 = (1 << slotBits) - 1
    /// Slots 0...maxSlot fit (slot + 1 <= slotMask).
    static let maxSlot: UInt32 = slotMask - 1
    static let tombstone: UInt32 = 1 << slotBits
    /// Grow or rebuild when (live + tombstones) exceeds 85% of the buckets.
    static let maxLoadNumerator = 17
    static let maxLoadDenominator = 20

    private var buckets: UnsafeMutablePointer<UInt32>?
    private(set) var capacity = 0
    private(set) var live = 0
    private var tombstones = 0

    init() {}

    var reservedBytes: Int { capacity * 4 }

    @inline(__always)
    private func home(_ hash: UInt64) -> Int {
        Int(((hash >> 32) &* UInt64(capacity)) >> 32)
    }

    @inline(__always)
    private static func tag(_ hash: UInt64) -> UInt32 { (UInt32(truncatingIfNeeded: hash) & 31) << slotBits }

    /// The bucket and slot of the entry with this hash for which `matches(slot)` holds.
    @inline(__always)
    func find(hash: UInt64, matches: (UInt32) -> Bool) -> (bucket: Int, slot: UInt32)? {
        guard capacity > 0, let buckets else { return nil }
        let tag = Self.tag(hash)
        var bucket = home(hash)
        while true {
            let value = buckets[bucket]
            if value == 0 { return nil }
            if value & ~Self.slotMask == tag && value & Self.slotMask != 0 {
                let slot = (value & Self.slotMask) - 1
                if matches(slot) { return (bucket, slot) }
            }
            bucket += 1
            if bucket == capacity { bucket = 0 }
        }
    }

    /// Starts loading the home bucket of `hash` without waiting for it.
    @inline(__always)
    func prefetch(hash: UInt64) {
        guard capacity > 0, let buckets else { return }
        hiscore_prefetch(buckets + home(hash))
    }

    /// The slot of the first bucket whose fingerprint matches `hash`, without reading any entry
    /// record: the likely slot of that id (31 in 32 foreign ids are rejected by the fingerprint),
    /// for prefetching.
    @inline(__always)
    func likelySlot(hash: UInt64) -> UInt32? {
        find(hash: hash) { _ in true }?.slot
    }

    /// Adds `slot` under `hash`; the caller has checked that its id is not present.
    /// `ids` recomputes the hash of any stored slot (for rehashing).
    mutating func insert<IDs: SlotHashSource>(hash: UInt64, slot: UInt32, ids: IDs) {
        precondition(slot <= Self.maxSlot, "slot beyond the player index's range")
        if (live + tombstones + 1) * Self.maxLoadDenominator > capacity * Self.maxLoadNumerator {
            rebuild(minimumLive: live + 1, ids: ids)
        }
        place(hash: hash, value: Self.tag(hash) | (slot + 1))
        live += 1
    }

    @inline(__always)
    private mutating func place(hash: UInt64, value: UInt32) {
        let buckets = self.buckets!
        var bucket = home(hash)
        while true {
            let existing = buckets[bucket]
            if existing == 0 { break }
            if existing == Self.tombstone {
                tombstones -= 1
                break
            }
            bucket += 1
            if bucket == capacity { bucket = 0 }
        }
        buckets[bucket] = value
    }

    mutating func remove(bucket: Int) {
        let buckets = self.buckets!
        assert(buckets[bucket] & Self.slotMask != 0)
        let next = bucket + 1 == capacity ? 0 : bucket + 1
        if buckets[next] == 0 {
            buckets[bucket] = 0  // end of a probe run: no tombstone needed
        } else {
            buckets[bucket] = Self.tombstone
            tombstones += 1
        }
        live -= 1
    }

    /// How many buckets ahead a rehash starts loading the entry record it will hash.
    static let rehashPrefetchDistance = 16

    /// Rehashes into a table sized for `minimumLive` entries at <= 2/3 load (x1.5 growth), or the
    /// same size when only tombstones made it full.
    ///
    /// The buckets are read in order but name their slots in hash order, so each hash reads a
    /// record at a random place: one cache miss per entry, about 100 ns at 1M players, and a
    /// load of n players rehashes about 2n entries over its growths. Asking for the record
    /// `rehashPrefetchDistance` buckets ahead lets those misses overlap (measured: see
    /// docs/engine.md); O(capacity) either way.
    private mutating func rebuild<IDs: SlotHashSource>(minimumLive: Int, ids: IDs) {
        var wanted = capacity
        if minimumLive * 10 > capacity * 6 { wanted = max(16, minimumLive * 3 / 2) }
        let newCapacity = engineSizeClass(wanted * 4) / 4
        let memory = engineAllocate(newCapacity * 4)
        let newBuckets = memory.bindMemory(to: UInt32.self, capacity: newCapacity)
        newBuckets.initialize(repeating: 0, count: newCapacity)
        let oldBuckets = buckets
        let oldCapacity = capacity
        buckets = newBuckets
        capacity = newCapacity
        tombstones = 0
        if let oldBuckets {
            for index in 0..<min(Self.rehashPrefetchDistance, oldCapacity) {
                let ahead = oldBuckets[index] & Self.slotMask
                if ahead != 0 { ids.prefetchHash(ofSlot: ahead - 1) }
            }
            for index in 0..<oldCapacity {
                if index + Self.rehashPrefetchDistance < oldCapacity {
                    let ahead = oldBuckets[index + Self.rehashPrefetchDistance] & Self.slotMask
                    if ahead != 0 { ids.prefetchHash(ofSlot: ahead - 1) }
                }
                let value = oldBuckets[index]
                guard value & Self.slotMask != 0 else { continue }
                place(hash: ids.hash(ofSlot: (value & Self.slotMask) - 1), value: value)
            }
            engineFree(oldBuckets, bytes: oldCapacity * 4)
        }
    }

    mutating func deallocateAll() {
        engineFree(buckets, bytes: capacity * 4)
        self = PlayerIndex()
    }

    /// Every live slot, for invariant checks.
    func forEachSlot(_ body: (_ bucket: Int, _ slot: UInt32) -> Void) {
        guard let buckets else { return }
        for index in 0..<capacity where buckets[index] & Self.slotMask != 0 {
            body(index, (buckets[index] & Self.slotMask) - 1)
        }
    }
}
