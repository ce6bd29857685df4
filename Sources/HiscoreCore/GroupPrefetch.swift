import CCacheHint

/*-----------------------------------------------------------------------------
 * Group prefetching of writes and rank counts
 *
 * At 1M players an update is a chain of about ten dependent cache (and TLB) misses:
 * the id's bucket, then its entry record (for the id and the old key), then the nodes
 * on the old key's path (the removal) and those on the new key's path plus one
 * neighbouring record (the insertion). Alone, a write waits for each in turn; that
 * wait, not the arithmetic, is most of its cost.
 *
 * A caller holding several writes for one partition (a shard executing a batch read
 * from a pipelined connection) can hand them to `prepareWrites` first. It advances the
 * searches of a group of up to `prefetchGroupSize` writes stage by stage — every
 * bucket, then every tree level of every new key, then every record, then every level
 * of every old key — issuing each stage's loads for the whole group before using any,
 * so the group's misses at one stage overlap and it waits about as long as one write.
 * The writes then run as usual, on warm lines.
 *
 * Rank counts get the same treatment (`prepareCounts`): a submit on a board split over
 * shards asks every other shard how many of its entries beat the new (and the old) key,
 * and a pipelined batch brings a run of such counts for one partition, each a cold
 * descent. Their walks advance level by level together, and the counts that follow
 * find their child and count lines in cache.
 *
 * Lookups too (`prepareLookups`): a `get_rank` reads the id's bucket, then its record,
 * then walks the stored key's path to count what beats it, three dependent misses or
 * more; a pipelined batch of them for one partition advances bucket, record and path
 * stage by stage for the whole group.
 *
 * All three read and prefetch and change nothing: a guess gone stale (two writes of one
 * player in a group, a node split by an earlier write) costs a miss, never a wrong
 * answer. Cost: one extra descent per key in cache, O(h log c), and a few words of
 * stack per write.
 *---------------------------------------------------------------------------*/

extension BoardPartition {
    /// Writes whose searches `prepareWrites` walks together.
    public static let prefetchGroupSize = 16

    /// What `prepareWrites` needs to know of a write about to be applied.
    public struct UpcomingWrite {
        public var playerID: String
        public var score: Int64
        public var subscore: Int64
        /// The sequence the write will probably get (a guess is fine: it only picks the tie
        /// group's end the search warms).
        public var sequence: UInt64

        public init(playerID: String, score: Int64, subscore: Int64, sequence: UInt64) {
            self.playerID = playerID
            self.score = score
            self.subscore = subscore
            self.sequence = sequence
        }
    }

    /// Starts the memory reads of the `count` writes `upcoming(0) ..< upcoming(count)`, which
    /// the caller is about to apply with `write`, in that order and with nothing in between
    /// (see the comment at the top of this file). A hint: it changes no state anyone can observe.
    ///
    /// `countingBetter`: the caller will also count the entries beating each written entry
    /// (`write(...countingBetter:)`, then `countBetter` for an entry the write did not move):
    /// the stored key's path is then walked for every write, not only for those that move it.
    public func prepareWrites(count: Int, countingBetter: Bool = false, _ upcoming: (Int) -> UpcomingWrite) {
        guard count > 1 else { return }  // a lone write warms its own paths
        var start = 0
        while start < count {
            let size = min(Self.prefetchGroupSize, count - start)
            prepareGroup(size, countingBetter: countingBetter) { upcoming(start + $0) }
            start += size
        }
        preparedWrites = count
    }

    /// Starts the memory reads of the counts (`countBetter`, `countBetterOrEqual`) about to be
    /// made for `keys(0) ..< keys(count)`, walking them in groups of `prefetchGroupSize`.
    /// A hint: it changes nothing.
    public func prepareCounts(count: Int, _ key: (Int) -> RankKey) {
        guard count > 1, tree.root != RadixTree.empty else { return }
        let keys = store.keys
        withUnsafeTemporaryAllocation(of: TreeWalk.self, capacity: Self.prefetchGroupSize) { walks in
            var start = 0
            while start < count {
                let size = min(Self.prefetchGroupSize, count - start)
                for position in 0..<size { walks[position] = TreeWalk(key: key(start + position), ref: tree.root) }
                let group = UnsafeMutableBufferPointer(rebasing: walks[0..<size])
                while tree.advanceWalks(group, keys: keys) {}
                start += size
            }
        }
    }

    /// Starts the memory reads of looking up `playerID(0) ..< playerID(count)` (`entry(for:)`)
    /// and of counting the entries better than each one found (`countBetter` of its key), in
    /// groups of `prefetchGroupSize`: every bucket, then every record, then every stored key's
    /// path. A hint: it changes nothing.
    public func prepareLookups(count: Int, _ playerID: (Int) -> String) {
        guard count > 1, tree.root != RadixTree.empty else { return }
        let keys = store.keys
        withUnsafeTemporaryAllocation(of: TreeWalk.self, capacity: Self.prefetchGroupSize) { walks in
            withUnsafeTemporaryAllocation(
                of: (hash: UInt64, word0: UInt64, word1: UInt64).self, capacity: Self.prefetchGroupSize
            ) { ids in
                var start = 0
                while start < count {
                    let size = min(Self.prefetchGroupSize, count - start)
                    for position in 0..<size {
                        let id = withPackedID(playerID(start + position)) { (hash: $0.hash, word0: $0.word0, word1: $0.word1) }
                        ids[position] = id
                        index.prefetch(hash: id.hash)
                    }
                    for position in 0..<size {
                        if let slot = index.likelySlot(hash: ids[position].hash) { keys.prefetchKey(ofSlot: slot) }
                    }
                    for position in 0..<size {
                        walks[position] = TreeWalk(key: RankKey.min, ref: RadixTree.empty)
                        if let slot = index.likelySlot(hash: ids[position].hash),
                            store.idMayMatch(slot, word0: ids[position].word0, word1: ids[position].word1)
                        {
                            walks[position] = TreeWalk(key: keys.key(ofSlot: slot), ref: tree.root)
                        }
                    }
                    while tree.advanceWalks(UnsafeMutableBufferPointer(rebasing: walks[0..<size]), keys: keys) {}
                    start += size
                }
            }
        }
    }

    private func prepareGroup(_ size: Int, countingBetter: Bool, _ upcoming: (Int) -> UpcomingWrite) {
        let keys = store.keys
        let newKeyKnown = config.writeOperator == .best || config.writeOperator == .set
        withUnsafeTemporaryAllocation(of: TreeWalk.self, capacity: 2 * size) { walks in
            withUnsafeTemporaryAllocation(of: (hash: UInt64, word0: UInt64, word1: UInt64).self, capacity: size) { ids in
                // Stage 1: every id's bucket; every new key's walk starts at the root.
                for position in 0..<size {
                    let write = upcoming(position)
                    let id = withPackedID(write.playerID) { (hash: $0.hash, word0: $0.word0, word1: $0.word1) }
                    ids[position] = id
                    index.prefetch(hash: id.hash)
                    walks[position] = TreeWalk(
                        key: codec.key(score: write.score, subscore: write.subscore, sequence: write.sequence),
                        ref: newKeyKnown ? tree.root : RadixTree.empty)
                }
                let newWalks = UnsafeMutableBufferPointer(rebasing: walks[0..<size])
                _ = tree.advanceWalks(newWalks, keys: keys)

                // Stage 2: the buckets are in; start each likely record.
                for position in 0..<size {
                    if let slot = index.likelySlot(hash: ids[position].hash) {
                        keys.prefetchKey(ofSlot: slot)
                    }
                }
                while tree.advanceWalks(newWalks, keys: keys) {}

                // Stage 3: the records are in; walk each old key an update will remove.
                for position in 0..<size {
                    var oldWalk = TreeWalk(key: RankKey.min, ref: RadixTree.empty)
                    if let slot = index.likelySlot(hash: ids[position].hash), store.idMayMatch(
                        slot, word0: ids[position].word0, word1: ids[position].word1)
                    {
                        let oldKey = keys.key(ofSlot: slot)
                        let newKey = walks[position].key
                        // Only a changed (score, subscore) moves the entry; the sequence is a guess.
                        let moves = !newKeyKnown || oldKey.word0 != newKey.word0 || oldKey.word1 != newKey.word1
                        let improves =
                            config.writeOperator != .best
                            || codec.isBetter(
                                score: codec.score(of: newKey), subscore: codec.subscore(of: newKey),
                                than: codec.score(of: oldKey), codec.subscore(of: oldKey))
                        if moves && improves || countingBetter { oldWalk = TreeWalk(key: oldKey, ref: tree.root) }
                    }
                    walks[size + position] = oldWalk
                }
                while tree.advanceWalks(UnsafeMutableBufferPointer(rebasing: walks[size..<(2 * size)]), keys: keys) {}
            }
        }
    }
}
