/*-----------------------------------------------------------------------------
 * Order-statistic radix tree
 *
 * The tree indexes the 24-byte big-endian `RankKey`s of one partition's entries.
 * Its in-order (ascending key) sequence is the ranking, best first.
 *
 * Layout
 * ------
 * - A leaf is not a node: it is a `NodeRef` with bit 31 set whose low bits are the
 *   entry's slot in the partition's `EntryStore`. The key is not stored in the tree;
 *   it is derived from the slot's columns (score, subscore, sequence) when needed.
 * - An inner node (see `RadixNode`) branches on one key byte, its `depth`. It holds
 *   its children's key bytes (sorted), their refs and — unless every child is a
 *   leaf — the number of entries below each child, inline. Sorted nodes come in
 *   12 size classes (2 ... 96 children), searched with SIMD; past 96 a node turns
 *   into a 256-way dense layout indexed by the byte: narrow (one count byte per
 *   child, 1,348 bytes) while no child holds more than 255 entries, wide (32-bit
 *   counts, 2,116 bytes) once one does. A node grows or shrinks one class at a
 *   time; narrow turns wide on the insert that would overflow a count byte.
 * - Path compression is optimistic (as in ART): a node stores only its depth, not
 *   the bytes skipped since its parent. All keys below a node share those bytes, so
 *   a search that skips them is checked once, at the end, against one leaf's key.
 *   A node's depth is strictly greater than its parent's, so a path has at most
 *   24 inner nodes whatever the number of entries; with 1M random scores it has
 *   about 4 (the root skips the constant high bytes of the score).
 * - Nodes live in a `NodeArena`: 256 KiB chunks of 32-bit words, addressed by
 *   word offset, free lists per layout. No object per node, no ARC, no malloc per
 *   insert once warm.
 *
 * Costs (n entries, h <= 24 inner nodes on a path, c <= 256 children per node)
 * -----------------------------------------------------------------------------
 * - insert:   O(h log c) to reach a leaf, then O(h) more to add 1 to each count on
 *             the path; adds one child (in a sorted node a memmove of <= 96 bytes
 *             + 192 words; in a dense one, three lines written) or one 2-child
 *             node. Touches one leaf's entry record to find where keys diverge,
 *             unless the key's byte is missing at a node reached without skipping a
 *             byte (most inserts into a big board: a new score value).
 * - remove:   O(h log c) + O(c) memmove; a node left with one child is replaced by
 *             that child (path compression restored), an emptied-out class shrinks.
 * - rank:     (entries with a strictly smaller key) O(h log c) + the counts left of
 *             the path, O(h c) additions over contiguous words. When the key is not
 *             in the tree a second, cached pass over the same nodes settles the
 *             skipped bytes. One entry record touched. `countLess(absent:)`, for keys
 *             the tree does not hold, usually stops at the node where the key's byte has
 *             no child: O(h log c) + O(h c), no record touched (`rootPrefix` vouches for
 *             the bytes the root skips).
 * - select:   (k-th entry) O(h c): at each node, walk the counts until k is reached.
 * - iterate:  a stack of (node, child index) frames, O(1) amortized per entry.
 * - count in [lo, hi]: two ranks.
 * None of these depends on n, except through the cache misses of a bigger tree.
 *---------------------------------------------------------------------------*/

import CCacheHint

/// Supplies the key of an entry slot; the tree stores only slots.
protocol LeafKeySource {
    func key(ofSlot slot: UInt32) -> RankKey
    /// Starts loading what `key(ofSlot:)` will read, without waiting for it.
    func prefetchKey(ofSlot slot: UInt32)
}

extension LeafKeySource {
    func prefetchKey(ofSlot slot: UInt32) {}
}

/// A search being walked for prefetching (`RadixTree.advanceWalks`): its key and the node it
/// has reached (`RadixTree.empty` once done).
struct TreeWalk {
    var key: RankKey
    var ref: NodeRef
}

/// One step of a root-to-leaf path: a node and the index of the child taken.
struct PathFrame {
    var node: NodeRef
    var index: Int32
}

struct RadixTree {
    static let leafFlag: NodeRef = 1 << 31
    static let empty: NodeRef = .max
    /// Largest slot a leaf can reference.
    static let maxSlot: UInt32 = (1 << 31) - 2
    /// Inner nodes on any path (one per key byte at most) plus the leaf.
    static let maxPathLength = RankKey.byteCount + 1

    private(set) var arena = NodeArena()
    private(set) var root: NodeRef = empty
    private(set) var count = 0
    /// Bytes every key in the tree shares: the first `rootPrefixBytes` bytes of `rootPrefix`
    /// agree with every stored key's as far as the root's depth (the bytes path compression skips
    /// at the root). Set from the key that made the current root, cut back when a removal lifts a
    /// deeper node to the root. Lets `countLess(absent:)` place a key without reading a leaf.
    private(set) var rootPrefix = RankKey.min
    private(set) var rootPrefixBytes = 0

    init() {}

    /// A tree that compacts its arena as soon as `floorWords` words are free (and over an eighth).
    init(compactionFloorWords floorWords: Int) {
        arena.compactionFloorWords = floorWords
    }

    @inline(__always) static func isLeaf(_ ref: NodeRef) -> Bool { ref & leafFlag != 0 }
    @inline(__always) static func leaf(_ slot: UInt32) -> NodeRef { slot | leafFlag }
    @inline(__always) static func slot(of ref: NodeRef) -> UInt32 { ref & ~leafFlag }

    @inline(__always) private func node(_ ref: NodeRef) -> RadixNode { arena.node(ref) }

    /// Starts loading what a descent for `key` reads in `child`, an inner child of `parent`
    /// (see `NodeArena.prefetchDescent`).
    @inline(__always)
    private func prefetchDescent(into child: NodeRef, below parent: RadixNode, key: RankKey) {
        arena.prefetchDescent(into: child, likelyByte: key.byte(at: min(parent.depth + 1, RankKey.byteCount - 1)))
    }

    var reservedBytes: Int { arena.reservedBytes }

    /// Rebuilds the arena with only the live nodes when free lists hold too much (after a bulk
    /// load, or many removals). O(nodes), amortized O(1) per insert/remove: the garbage it drops
    /// took at least as many operations to accumulate.
    @inline(__always)
    private mutating func compactIfNeeded() {
        if arena.wantsCompaction { compact() }
    }

    mutating func compact() {
        var fresh = NodeArena()
        fresh.compactionFloorWords = arena.compactionFloorWords
        if root != Self.empty { root = fresh.copySubtree(root, from: arena) }
        arena.deallocateAll()
        arena = fresh
    }

    mutating func removeAll() {
        arena.deallocateAll()
        root = Self.empty
        count = 0
        rootPrefixBytes = 0
    }

    /// Points `parent`'s child `index` (or the root, when `parent` is `empty`) at `ref`.
    @inline(__always)
    private mutating func replaceChild(of parent: NodeRef, at index: Int, with ref: NodeRef) {
        if parent == Self.empty {
            root = ref
        } else {
            node(parent).children[index] = ref
        }
    }

    // MARK: - Warming two paths at once

    /// Walks the paths a removal at `removed` and an insertion at `inserted` will take, in
    /// lockstep, prefetching the lines each will read or write (child refs, counts, the leaf
    /// record an insert compares against), and changes nothing.
    ///
    /// Why: at 1M entries the nodes below the top two levels and the entry records are cache
    /// (and TLB) misses, and each descent is a chain of them. An update's two descents do not
    /// depend on each other, so taking one step of each per iteration lets the core wait for
    /// both chains' misses at once; the real removal and insertion that follow find their lines
    /// in cache. Cost: one extra read-only descent per path, O(h log c).
    func warmPaths<Keys: LeafKeySource>(removing removed: RankKey, inserting inserted: RankKey, keys: Keys) {
        guard root != Self.empty else { return }
        var first = root
        var second = root
        while !Self.isLeaf(first) || !Self.isLeaf(second) {
            if !Self.isLeaf(first) { first = warmStep(first, key: removed) }
            if !Self.isLeaf(second) { second = warmStep(second, key: inserted) }
        }
        keys.prefetchKey(ofSlot: Self.slot(of: second))
    }

    /// Walks the path an insertion at `key` will take, prefetching as `warmPaths` does.
    func warmPath<Keys: LeafKeySource>(inserting key: RankKey, keys: Keys) {
        guard root != Self.empty else { return }
        var ref = root
        while !Self.isLeaf(ref) { ref = warmStep(ref, key: key) }
        keys.prefetchKey(ofSlot: Self.slot(of: ref))
    }

    /// Advances every walk in `cursors` by one node, prefetching as `warmStep` does; a walk that
    /// reaches a leaf prefetches its record and stops (its ref becomes `empty`). Returns true
    /// while some walk is still under way.
    ///
    /// Group prefetching: stepping many independent searches one level at a time issues all of
    /// their misses at a level together, so a group of g writes waits about as long as one.
    func advanceWalks<Keys: LeafKeySource>(_ cursors: UnsafeMutableBufferPointer<TreeWalk>, keys: Keys) -> Bool {
        var walking = false
        for index in cursors.indices {
            let ref = cursors[index].ref
            if ref == Self.empty { continue }
            if Self.isLeaf(ref) {
                keys.prefetchKey(ofSlot: Self.slot(of: ref))
                cursors[index].ref = Self.empty
                continue
            }
            cursors[index].ref = warmStep(ref, key: cursors[index].key)
            walking = true
        }
        return walking
    }

    /// One node of a warming walk: prefetches the child's first line and this node's count line,
    /// and returns the child (any child, when the key's byte is absent: an insert's first pass
    /// goes there too). Stopping where an insert stops (`rootCheckedDepth`) was measured: no
    /// change (six alternating rounds at 1M, medians 600 / 602 ns per insert).
    @inline(__always)
    private func warmStep(_ ref: NodeRef, key: RankKey) -> NodeRef {
        let current = node(ref)
        let index = current.lowerBound(key.byte(at: current.depth))
        let child = current.anyChild(near: index)
        if current.hasCounts { hiscore_prefetch_for_write(current.countAddress(at: min(index, current.capacity - 1))) }
        if !Self.isLeaf(child) { prefetchDescent(into: child, below: current, key: key) }
        return child
    }

    /// The depth of the root when every key's bytes above it are known to match `key`'s
    /// (`rootPrefix` covers them and agrees), else -1. A descent that then meets nodes one byte
    /// apart has checked every byte of the key on its way: where the key's byte is missing, no
    /// entry shares more of it, and the walk can stop there without reading a leaf's key.
    @inline(__always)
    func rootCheckedDepth(_ key: RankKey) -> Int {
        guard root != Self.empty, !Self.isLeaf(root) else { return -1 }
        let depth = node(root).depth
        return depth <= rootPrefixBytes && key.firstDifferingByte(from: rootPrefix) >= depth ? depth : -1
    }

    /// The key of some leaf below `ref`: all of them share the bytes above its depth.
    private func representativeKey<Keys: LeafKeySource>(under ref: NodeRef, keys: Keys) -> RankKey {
        var current = ref
        while !Self.isLeaf(current) { current = node(current).anyChild(near: 0) }
        return keys.key(ofSlot: Self.slot(of: current))
    }

    // MARK: - Insert

    /// Adds `slot` under `key`. Returns false (and changes nothing) when `key` is already present.
    mutating func insert<Keys: LeafKeySource>(slot: UInt32, key: RankKey, keys: Keys) -> Bool {
        insert(slot: slot, key: key, keys: keys, countingLess: false) != nil
    }

    /// Adds `slot` under `key`; nil (and nothing changed) when `key` is already present.
    /// Otherwise, with `countingLess`, the number of keys smaller than `key` (what `countLess`
    /// would answer), summed on the way down at no extra miss: the nodes are the ones the insert
    /// walks anyway, and no leaf record is read for it. Without, 0.
    mutating func insert<Keys: LeafKeySource>(slot: UInt32, key: RankKey, keys: Keys, countingLess: Bool) -> Int? {
        assert(slot <= Self.maxSlot)
        let newLeaf = Self.leaf(slot)
        if root == Self.empty {
            root = newLeaf
            count = 1
            rootPrefix = key
            rootPrefixBytes = RankKey.byteCount
            return 0
        }

        // Pass 1: follow the key's bytes to some leaf; any leaf below the point where the key's
        // byte is missing will do, they all share the bytes that matter. Its key says where the
        // new key diverges. Unless no byte was skipped on the way to a node that lacks the key's
        // byte (the root's skipped bytes vouched for by `rootPrefix`, then nodes one byte
        // apart): the key diverges right there, and neither the leaf below nor its record (one
        // or two cache misses, for most inserts into a big board) is read.
        var ref = root
        var checkedDepth = rootCheckedDepth(key)
        var missingByteDepth: Int?
        while !Self.isLeaf(ref) {
            let current = node(ref)
            let byte = key.byte(at: current.depth)
            let index = current.lowerBound(byte)
            if current.depth == checkedDepth {
                if !current.holds(index, byte) {
                    missingByteDepth = checkedDepth
                    break
                }
                checkedDepth += 1
            } else {
                checkedDepth = -1
            }
            ref = current.anyChild(near: index)
            if !Self.isLeaf(ref) { prefetchDescent(into: ref, below: current, key: key) }
        }
        let neighbourKey: RankKey?
        let splitDepth: Int
        if let missingByteDepth {
            neighbourKey = nil
            splitDepth = missingByteDepth
        } else {
            let leafKey = keys.key(ofSlot: Self.slot(of: ref))
            neighbourKey = leafKey
            splitDepth = key.firstDifferingByte(from: leafKey)
            if splitDepth == RankKey.byteCount { return nil }
        }
        let newByte = key.byte(at: splitDepth)
        var less = 0

        // Pass 2: descend through the nodes above `splitDepth` (their bytes match), counting the
        // new entry in each; then either add a child to the node at `splitDepth` or put a new
        // 2-child node above the subtree whose depth is beyond it.
        var grandparent = Self.empty
        var grandparentIndex = 0
        var parent = Self.empty
        var parentIndex = 0
        var subtreeCount = count
        ref = root
        while true {
            if Self.isLeaf(ref) || node(ref).depth > splitDepth {
                // Reached only when pass 1 read a leaf (a missing byte ends at a node of that depth).
                assert(neighbourKey != nil, "a split below a node that lacks the key's byte")
                let existingByte = (neighbourKey ?? representativeKey(under: ref, keys: keys)).byte(at: splitDepth)
                assert(existingByte != newByte)
                if countingLess && existingByte < newByte { less &+= subtreeCount }
                let existingIsLeaf = Self.isLeaf(ref)
                let split = arena.allocate(sizeClass: 0, hasCounts: !existingIsLeaf, depth: splitDepth)
                let created = node(split)
                let newFirst = newByte < existingByte
                created.insertChild(at: 0, byte: newFirst ? newByte : existingByte, child: newFirst ? newLeaf : ref,
                                    count: newFirst ? 1 : subtreeCount)
                created.insertChild(at: 1, byte: newFirst ? existingByte : newByte, child: newFirst ? ref : newLeaf,
                                    count: newFirst ? subtreeCount : 1)
                if parent != Self.empty && !node(parent).hasCounts {
                    // A leaf-only node is about to get an inner child: give it counts.
                    let upgraded = arena.relocate(
                        parent, sizeClass: node(parent).sizeClass, hasCounts: true)
                    replaceChild(of: grandparent, at: grandparentIndex, with: upgraded)
                    parent = upgraded
                }
                replaceChild(of: parent, at: parentIndex, with: split)
                if parent == Self.empty {
                    // A new root: every key shares the bytes above it with this one.
                    rootPrefix = key
                    rootPrefixBytes = RankKey.byteCount
                }
                if parent != Self.empty {
                    let linked = node(parent)
                    let correction = subtreeCount + 1 - linked.count(at: parentIndex)
                    if correction != 0 { linked.addToCount(at: parentIndex, correction) }
                }
                count += 1
                compactIfNeeded()
                return less
            }
            var current = node(ref)
            if current.depth == splitDepth {
                if current.childCount == current.capacity {
                    assert(!current.isDense, "a full 256-way node has every byte")
                    let grownClass = RadixNode.grownClass(
                        from: current.sizeClass, largestChildCount: current.largestChildCount())
                    let grown = arena.relocate(ref, sizeClass: grownClass, hasCounts: current.hasCounts)
                    replaceChild(of: parent, at: parentIndex, with: grown)
                    current = node(grown)
                }
                let position = current.lowerBound(newByte)
                if countingLess { less &+= current.countBefore(position) }
                current.insertChild(at: position, byte: newByte, child: newLeaf, count: 1)
                count += 1
                compactIfNeeded()
                return less
            }
            let index = current.lowerBound(key.byte(at: current.depth))
            assert(current.holds(index, key.byte(at: current.depth)))
            if countingLess { less &+= current.countBefore(index) }
            if current.hasCounts {
                if !current.canAddToCount(at: index, 1) {
                    // A narrow dense node's child is about to hold 256 entries: turn it wide.
                    let widened = arena.relocate(ref, sizeClass: RadixNode.denseClass, hasCounts: true)
                    replaceChild(of: parent, at: parentIndex, with: widened)
                    ref = widened
                    current = node(widened)
                }
                subtreeCount = current.count(at: index)
                current.addToCount(at: index, 1)
            } else {
                subtreeCount = 1
            }
            grandparent = parent
            grandparentIndex = parentIndex
            parent = ref
            parentIndex = index
            ref = current.children[index]
        }
    }

    // MARK: - Remove

    /// Removes the leaf of `slot`, which must be stored under `key`. Returns false (and changes
    /// nothing) when it is not there.
    mutating func remove(slot: UInt32, key: RankKey) -> Bool {
        remove(slot: slot, key: key, countingLess: false) != nil
    }

    /// Removes the leaf of `slot`, which must be stored under `key`; nil (and nothing changed)
    /// when it is not there. Otherwise, with `countingLess`, the number of keys that were smaller
    /// than `key` (summed on the removal's own descent, as in `insert`); without, 0.
    mutating func remove(slot: UInt32, key: RankKey, countingLess: Bool) -> Int? {
        guard root != Self.empty else { return nil }
        if Self.isLeaf(root) {
            guard Self.slot(of: root) == slot else { return nil }
            root = Self.empty
            count = 0
            return 0
        }
        let removed: Int? = withUnsafeTemporaryAllocation(of: PathFrame.self, capacity: Self.maxPathLength) { path in
            var depth = 0
            var less = 0
            var ref = root
            while !Self.isLeaf(ref) {
                let current = node(ref)
                let byte = key.byte(at: current.depth)
                let index = current.lowerBound(byte)
                guard current.holds(index, byte) else { return nil }
                if countingLess { less &+= current.countBefore(index) }
                path[depth] = PathFrame(node: ref, index: Int32(index))
                depth += 1
                ref = current.children[index]
                if !Self.isLeaf(ref) { prefetchDescent(into: ref, below: current, key: key) }
            }
            guard Self.slot(of: ref) == slot else { return nil }

            for level in 0..<(depth - 1) {
                let current = node(path[level].node)
                if current.hasCounts { current.addToCount(at: Int(path[level].index), -1) }
            }
            let parentFrame = path[depth - 1]
            let parent = node(parentFrame.node)
            parent.removeChild(at: Int(parentFrame.index))
            let grandparent = depth >= 2 ? path[depth - 2].node : Self.empty
            let grandparentIndex = depth >= 2 ? Int(path[depth - 2].index) : 0
            let remaining = parent.childCount
            if remaining == 1 {
                // A one-child node discriminates nothing: splice its child into its place. The
                // grandparent's count for it is already the child's count.
                let onlyChild = parent.children[parent.firstIndex]
                if grandparent == Self.empty {
                    // The root's child takes its place: the bytes between the two depths are
                    // shared by every key left, but not known here without reading a leaf
                    // (`refreshRootPrefix` does, for callers that can).
                    rootPrefixBytes = min(rootPrefixBytes, parent.depth)
                }
                arena.free(parentFrame.node)
                replaceChild(of: grandparent, at: grandparentIndex, with: onlyChild)
            } else if remaining <= RadixNode.shrinkLimit(of: parent.sizeClass) {
                // Shrink one class; the two-class gap is the hysteresis against grow/shrink flapping.
                let shrunk = arena.relocate(
                    parentFrame.node, sizeClass: RadixNode.shrunkClass(from: parent.sizeClass), hasCounts: parent.hasCounts)
                replaceChild(of: grandparent, at: grandparentIndex, with: shrunk)
            }
            count -= 1
            return less
        }
        if removed != nil { compactIfNeeded() }
        return removed
    }

    // MARK: - Rank and select

    /// Entries with a key strictly smaller than `key` (plus the entry equal to it, if `orEqual`).
    func countLess<Keys: LeafKeySource>(than key: RankKey, orEqual: Bool, keys: Keys) -> Int {
        guard root != Self.empty else { return 0 }
        // Pass 1: follow the key's bytes, summing the counts to the left. If every byte matched
        // and the leaf is the key itself (the common case: ranking a stored entry), that is it.
        var sum = 0
        var exact = true
        var ref = root
        while !Self.isLeaf(ref) {
            let current = node(ref)
            let byte = key.byte(at: current.depth)
            let index = current.lowerBound(byte)
            if exact && current.holds(index, byte) {
                ref = current.children[index]
                if !Self.isLeaf(ref) { prefetchDescent(into: ref, below: current, key: key) }
                sum &+= current.countBefore(index)
            } else {
                exact = false
                ref = current.anyChild(near: index)
            }
        }
        let leafKey = keys.key(ofSlot: Self.slot(of: ref))
        let firstDifference = key.firstDifferingByte(from: leafKey)
        if firstDifference == RankKey.byteCount {
            assert(exact)
            return orEqual ? sum + 1 : sum
        }

        // Pass 2: the key leaves the tree at byte `firstDifference`. Above it the path is right;
        // at the first node at or beyond it the key falls between children (depth == difference)
        // or before/after that node's whole subtree (depth > difference, or a leaf).
        sum = 0
        var subtreeCount = count
        ref = root
        while true {
            if Self.isLeaf(ref) || node(ref).depth > firstDifference {
                if key.byte(at: firstDifference) > leafKey.byte(at: firstDifference) { sum &+= subtreeCount }
                return sum
            }
            let current = node(ref)
            let index = current.lowerBound(key.byte(at: current.depth))
            sum &+= current.countBefore(index)
            if current.depth == firstDifference { return sum }
            subtreeCount = current.count(at: index)
            ref = current.children[index]
        }
    }

    /// After a removal lifted a deeper node into the root (and cut `rootPrefixBytes` back), takes
    /// the bytes the new root skips from one of its leaves, so that `countLess(absent:)` settles
    /// counts early again. Reads one leaf's record, on that rare path only; otherwise a check of
    /// the root's header.
    mutating func refreshRootPrefix<Keys: LeafKeySource>(keys: Keys) {
        guard root != Self.empty, !Self.isLeaf(root), rootPrefixBytes < node(root).depth else { return }
        var ref = root
        while !Self.isLeaf(ref) {
            let current = node(ref)
            ref = current.children[current.firstIndex]
        }
        rootPrefix = keys.key(ofSlot: Self.slot(of: ref))
        rootPrefixBytes = RankKey.byteCount
    }

    /// Entries with a key strictly smaller than `key`, for a key the tree most likely does not
    /// hold: another partition's entry (what a board's other shards count for each rank and
    /// submit), or a tie group's first key.
    ///
    /// Such a key usually leaves the tree at a node where its byte has no child. If no byte was
    /// skipped on the way down (the root's skipped bytes checked against `rootPrefix`, then nodes
    /// one byte apart), every entry left of that point is smaller and every entry right of it
    /// larger: the count is settled there, without the leaf read and the second descent of
    /// `countLess(than:orEqual:keys:)`, which this falls back to otherwise (a key it holds costs
    /// one more walk over lines already in cache). O(h log c), no leaf record touched.
    func countLess<Keys: LeafKeySource>(absent key: RankKey, keys: Keys) -> Int {
        if let settled = countLessAtMissingByte(key) { return settled }
        return countLess(than: key, orEqual: false, keys: keys)
    }

    private func countLessAtMissingByte(_ key: RankKey) -> Int? {
        var depth = rootCheckedDepth(key)
        guard depth >= 0 else { return nil }
        var sum = 0
        var ref = root
        while !Self.isLeaf(ref) {
            let current = node(ref)
            guard current.depth == depth else { return nil }
            let byte = key.byte(at: depth)
            let index = current.lowerBound(byte)
            guard current.holds(index, byte) else { return sum &+ current.countBefore(index) }
            ref = current.children[index]
            if !Self.isLeaf(ref) { prefetchDescent(into: ref, below: current, key: key) }
            sum &+= current.countBefore(index)
            depth += 1
        }
        return nil
    }

    /// The slot of the entry at 0-based rank `rank` (0 <= rank < count).
    func select(_ rank: Int) -> UInt32 {
        precondition(rank >= 0 && rank < count, "rank out of range")
        var remaining = rank
        var ref = root
        while !Self.isLeaf(ref) {
            let current = node(ref)
            let index = current.index(containing: &remaining)
            ref = current.children[index]
        }
        return Self.slot(of: ref)
    }

    // MARK: - Iteration

    /// Calls `body` with the slots from 0-based rank `start` on, toward larger keys (`ascending`)
    /// or smaller ones, until `body` returns false or the entries run out. The tree must not be
    /// changed meanwhile.
    func forEachSlot(fromRank start: Int, ascending: Bool, _ body: (UInt32) -> Bool) {
        guard start >= 0 && start < count else { return }
        if Self.isLeaf(root) {
            _ = body(Self.slot(of: root))
            return
        }
        withUnsafeTemporaryAllocation(of: PathFrame.self, capacity: Self.maxPathLength) { path in
            var depth = 0
            var remaining = start
            var ref = root
            while !Self.isLeaf(ref) {
                let current = node(ref)
                let index = current.index(containing: &remaining)
                path[depth] = PathFrame(node: ref, index: Int32(index))
                depth += 1
                ref = current.children[index]
            }
            while true {
                if !body(Self.slot(of: ref)) { return }
                // Climb to the nearest frame with a next child in this direction, then descend
                // to the extreme leaf below that child.
                while true {
                    if depth == 0 { return }
                    let frame = path[depth - 1]
                    let current = node(frame.node)
                    let next = ascending ? current.nextIndex(after: Int(frame.index)) : current.previousIndex(before: Int(frame.index))
                    if next >= 0 {
                        path[depth - 1].index = Int32(next)
                        ref = current.children[next]
                        break
                    }
                    depth -= 1
                }
                while !Self.isLeaf(ref) {
                    let current = node(ref)
                    let index = ascending ? current.firstIndex : current.lastIndex
                    path[depth] = PathFrame(node: ref, index: Int32(index))
                    depth += 1
                    ref = current.children[index]
                }
            }
        }
    }

    // MARK: - Distinct tie groups

    /// Number of distinct (score, subscore) values — key prefixes of 16 bytes — among the first
    /// `limit` entries in key order. Below a node of depth >= 16 all keys share their first 16
    /// bytes (one group), and groups never straddle the children of a shallower node, so this
    /// visits only the nodes above depth 16 and the single-entry groups: O(distinct values).
    func distinctGroups(inFirst limit: Int) -> Int {
        guard root != Self.empty, limit > 0 else { return 0 }
        return distinctGroups(ref: root, limit: min(limit, count))
    }

    private func distinctGroups(ref: NodeRef, limit: Int) -> Int {
        if limit == 0 { return 0 }
        if Self.isLeaf(ref) { return 1 }
        let current = node(ref)
        if current.depth >= 16 { return 1 }
        var remaining = limit
        var groups = 0
        var index = current.firstIndex
        while index >= 0 && remaining > 0 {
            let childCount = current.count(at: index)
            groups += distinctGroups(ref: current.children[index], limit: min(childCount, remaining))
            remaining -= childCount
            index = current.nextIndex(after: index)
        }
        return groups
    }

    // MARK: - Invariants

    /// Verifies the whole structure (debug builds; O(n)): node shapes, sorted bytes, strictly
    /// increasing depths, shared prefixes below each node, exact subtree counts, arena accounting.
    /// Returns the slots in key order.
    func checkInvariants<Keys: LeafKeySource>(keys: Keys) -> [UInt32] {
        var slots: [UInt32] = []
        slots.reserveCapacity(count)
        var nodes = 0
        var words = 0
        if root != Self.empty {
            let (total, _, _) = check(ref: root, parentDepth: -1, keys: keys, slots: &slots, nodes: &nodes, words: &words)
            precondition(total == count, "tree count \(count) but \(total) leaves")
        } else {
            precondition(count == 0, "empty tree with count \(count)")
        }
        precondition(nodes == arena.liveNodes, "\(nodes) reachable nodes, arena has \(arena.liveNodes) live")
        if root != Self.empty && !Self.isLeaf(root) {
            let shared = min(rootPrefixBytes, node(root).depth)
            for slot in slots {
                precondition(keys.key(ofSlot: slot).firstDifferingByte(from: rootPrefix) >= shared, "a key outside the root prefix")
            }
        }
        precondition(
            words + arena.freeWords == arena.handedOutWords,
            "\(words) words in reachable nodes + \(arena.freeWords) free != \(arena.handedOutWords) handed out")
        precondition(arena.wordsOnFreeLists == arena.freeWords, "free lists hold \(arena.wordsOnFreeLists) words, not \(arena.freeWords)")
        for index in slots.indices.dropFirst() {
            precondition(keys.key(ofSlot: slots[index - 1]) < keys.key(ofSlot: slots[index]), "keys out of order")
        }
        return slots
    }

    private func check<Keys: LeafKeySource>(
        ref: NodeRef, parentDepth: Int, keys: Keys, slots: inout [UInt32], nodes: inout Int, words: inout Int
    ) -> (count: Int, first: RankKey, last: RankKey) {
        if Self.isLeaf(ref) {
            let key = keys.key(ofSlot: Self.slot(of: ref))
            slots.append(Self.slot(of: ref))
            return (1, key, key)
        }
        nodes += 1
        let current = node(ref)
        words += RadixNode.strideWords(sizeClass: current.sizeClass, hasCounts: current.hasCounts)
        let depth = current.depth
        let n = current.childCount
        precondition(depth > parentDepth && depth < RankKey.byteCount, "depth \(depth) under \(parentDepth)")
        precondition(n >= 2 && n <= current.capacity, "node with \(n) children, capacity \(current.capacity)")
        var total = 0
        var first = RankKey.max
        var last = RankKey.min
        precondition(n > RadixNode.shrinkLimit(of: current.sizeClass), "node of class \(current.sizeClass) should have shrunk (\(n) children)")
        precondition(
            current.sizeClass <= RadixNode.largestSortedClass || current.isDense, "node of unused class \(current.sizeClass)")
        if current.isDense {
            precondition(current.hasCounts, "dense node without counts")
            for group in 0..<RadixNode.groupCount {
                var sum = 0
                for index in (group * 16)..<(group * 16 + 16) {
                    let count = current.count(at: index)
                    if current.children[index] == RadixNode.absent {
                        precondition(count == 0, "absent child with a count")
                    }
                    sum += count
                }
                precondition(Int(current.groupSums[group]) == sum, "stale group sum")
            }
        }
        var visited = 0
        var previousIndex = -1
        var index = current.firstIndex
        while index >= 0 {
            defer {
                previousIndex = index
                index = current.nextIndex(after: index)
                visited += 1
            }
            if previousIndex >= 0 { precondition(current.key(at: previousIndex) < current.key(at: index), "child bytes unsorted") }
            let child = current.children[index]
            if !current.hasCounts { precondition(Self.isLeaf(child), "inner child in a leaf-only node") }
            let (childCount, childFirst, childLast) = check(
                ref: child, parentDepth: depth, keys: keys, slots: &slots, nodes: &nodes, words: &words)
            precondition(current.count(at: index) == childCount, "stale subtree count")
            precondition(childFirst.byte(at: depth) == current.key(at: index), "leaf under wrong byte")
            precondition(childLast.byte(at: depth) == current.key(at: index), "leaf under wrong byte")
            if previousIndex < 0 {
                first = childFirst
            } else {
                precondition(childFirst.firstDifferingByte(from: first) >= depth, "prefix not shared")
                precondition(last < childFirst, "children out of order")
            }
            precondition(childLast.firstDifferingByte(from: first) >= depth, "prefix not shared")
            last = childLast
            total += childCount
        }
        precondition(visited == n, "node lists \(n) children, has \(visited)")
        return (total, first, last)
    }
}
