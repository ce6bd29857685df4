import CCacheHint

/// Reference to a radix tree node: bit 31 set = a leaf, whose low 31 bits are an entry slot;
/// otherwise the word offset of an inner node in its `NodeArena` (chunk << 16 | word in chunk).
typealias NodeRef = UInt32

/// View of one inner node in the arena. A node is a run of 32-bit words.
///
/// Sorted layout (size classes 0-11 in use, up to 96 children; class 12 is skipped, see
/// `largestSortedClass`):
///
///     word 0            header: child count (bits 0-8) | depth (9-13) | size class (14-17) | hasCounts (18)
///     words 1...        key bytes, one per child, sorted ascending (capacity bytes, padded to words)
///     then              children: NodeRef per child, in key order
///     then (hasCounts)  subtree entry counts per child (UInt32), in key order
///
/// Dense layouts (size classes 13 and 14, up to 256 children, as ART's Node256):
///
///     word 0            header (as above; hasCounts always set)
///     words 1-16        group sums: entries below children 16g ..< 16g + 16
///     words 17-272      children indexed by key byte (`RadixTree.empty` where absent)
///     class 14 (wide):  words 273-528, counts indexed by key byte (UInt32, 0 where absent)
///     class 13 (narrow): words 273-336, counts indexed by key byte (UInt8, 0 where absent)
///
/// A narrow dense node (1,348 bytes against 2,116) holds children of at most 255 entries each:
/// the nodes just above the leaves and small tie groups, which are most of a big board's dense
/// nodes (at 1M random scores, the 4,096 nodes under the two high score bytes, ~157 children of
/// one or two entries each). The insert that would take a child to 256 entries first turns the
/// node wide (`RadixTree.insert`); a wide node never turns narrow again (it shrinks to sorted
/// when it loses most of its children). Both share the group sums and the children array, so
/// finding a child and summing whole groups read the same words in either.
///
/// Children are addressed by an *index*: the position in a sorted node, the key byte in a dense
/// one. A sorted node without counts ("leaf-only") has only leaf children, each counting 1: the
/// bottom nodes that separate tied scores by sequence are almost all of this kind, and dropping
/// their count array saves about 3 bytes per entry. The dense layout makes the hot 256-way
/// levels cost one cache line to find a child and two to sum the counts left of it, with no
/// memmove on insert.
struct RadixNode {
    let base: UnsafeMutablePointer<UInt32>

    static let countMask: UInt32 = 0x1FF
    static let hasCountsBit: UInt32 = 1 << 18
    static let maxSizeClass = 14
    static let narrowDenseClass = 13
    static let denseClass = 14
    /// Most entries a child of a narrow dense node may hold.
    static let narrowCountLimit = 255
    static let groupShift = 4
    static let groupCount = 256 >> groupShift
    static let absent: UInt32 = .max

    /// Capacities by size class: 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, (128: unused), then
    /// the two dense classes of 256 (sorted steps of x1.5 / x1.33, so a sorted node wastes at most
    /// a third of its slots).
    @inline(__always)
    static func capacity(ofClass sizeClass: Int) -> Int {
        sizeClass >= narrowDenseClass ? 256 : (sizeClass & 1 == 0 ? 2 : 3) << (sizeClass >> 1)
    }

    @inline(__always)
    static func keyWords(capacity: Int) -> Int { (capacity + 3) >> 2 }

    @inline(__always)
    static func strideWords(sizeClass: Int, hasCounts: Bool) -> Int {
        if sizeClass == denseClass { return 1 + groupCount + 2 * 256 }
        if sizeClass == narrowDenseClass { return 1 + groupCount + 256 + 256 / 4 }
        let capacity = capacity(ofClass: sizeClass)
        return 1 + keyWords(capacity: capacity) + (hasCounts ? 2 * capacity : capacity)
    }

    /// Biggest sorted class: a node outgrowing it turns dense (narrow when its children allow).
    /// Classes between it and `narrowDenseClass` are not used. A sorted insert moves half the
    /// node (keys, children and counts: about 9 bytes a child) and touches every line it moves,
    /// while a dense insert touches three; and a node growing through the sorted classes leaves
    /// each old one behind for compaction. 96 rather than 64 (whose loads are faster still) for
    /// memory: a two-shard server at 1M players has nodes of ~97 children, 1,348 bytes narrow
    /// dense against 870 as 96-way sorted, and going dense from 65 cost it 2 bytes per entry,
    /// past half of Redis's (measured: docs/engine.md).
    static let largestSortedClass = 11

    /// The class a full node of `sizeClass` grows into, when its biggest child holds
    /// `largestChildCount` entries.
    @inline(__always)
    static func grownClass(from sizeClass: Int, largestChildCount: Int) -> Int {
        if sizeClass < largestSortedClass { return sizeClass + 1 }
        return largestChildCount <= narrowCountLimit ? narrowDenseClass : denseClass
    }

    /// The class a node of `sizeClass` shrinks into, once its children fit `shrinkLimit`.
    @inline(__always)
    static func shrunkClass(from sizeClass: Int) -> Int {
        sizeClass >= narrowDenseClass ? largestSortedClass : sizeClass - 1
    }

    /// A node of `sizeClass` (>= 2) with this many children or fewer shrinks one class: one class
    /// below the class it shrinks into, so that a node does not flap between two classes.
    @inline(__always)
    static func shrinkLimit(of sizeClass: Int) -> Int {
        sizeClass < 2 ? 0 : capacity(ofClass: shrunkClass(from: sizeClass) - 1)
    }

    /// The smallest size class in use holding `children` children of at most
    /// `largestChildCount` entries each.
    static func sizeClass(holding children: Int, largestChildCount: Int = 1) -> Int {
        assert(children >= 1 && children <= 256)
        var sizeClass = 0
        while capacity(ofClass: sizeClass) < children {
            sizeClass = grownClass(from: sizeClass, largestChildCount: largestChildCount)
        }
        return sizeClass
    }

    @inline(__always) var header: UInt32 { base.pointee }
    @inline(__always) var childCount: Int { Int(base.pointee & Self.countMask) }
    @inline(__always) var depth: Int { Int((base.pointee >> 9) & 0x1F) }
    @inline(__always) var sizeClass: Int { Int((base.pointee >> 14) & 0xF) }
    @inline(__always) var hasCounts: Bool { base.pointee & Self.hasCountsBit != 0 }
    @inline(__always) var isDense: Bool { sizeClass >= Self.narrowDenseClass }
    @inline(__always) var isNarrowDense: Bool { sizeClass == Self.narrowDenseClass }
    @inline(__always) var capacity: Int { Self.capacity(ofClass: sizeClass) }

    @inline(__always)
    static func makeHeader(childCount: Int, depth: Int, sizeClass: Int, hasCounts: Bool) -> UInt32 {
        assert(childCount <= 256 && depth < RankKey.byteCount && sizeClass <= maxSizeClass)
        assert(sizeClass < narrowDenseClass || hasCounts, "dense nodes always keep counts")
        return UInt32(childCount) | UInt32(depth) << 9 | UInt32(sizeClass) << 14 | (hasCounts ? hasCountsBit : 0)
    }

    /// Sets up an empty node's child arrays (dense nodes start with every child absent).
    @inline(__always)
    func initializeEmpty() {
        if isDense {
            (base + 1).update(repeating: 0, count: Self.groupCount)
            children.update(repeating: Self.absent, count: 256)
            if isNarrowDense {
                narrowCounts.update(repeating: 0, count: 256)
            } else {
                counts.update(repeating: 0, count: 256)
            }
        }
    }

    @inline(__always)
    func setChildCount(_ count: Int) {
        assert(count >= 0 && count <= capacity)
        base.pointee = (base.pointee & ~Self.countMask) | UInt32(count)
    }

    /// Sorted layout only.
    @inline(__always) var keys: UnsafeMutableRawPointer { UnsafeMutableRawPointer(base + 1) }
    /// Dense layout only.
    @inline(__always) var groupSums: UnsafeMutablePointer<UInt32> { base + 1 }
    @inline(__always) var children: UnsafeMutablePointer<UInt32> {
        isDense ? base + 1 + Self.groupCount : base + 1 + Self.keyWords(capacity: capacity)
    }
    /// Valid only when `hasCounts` and not narrow dense.
    @inline(__always) var counts: UnsafeMutablePointer<UInt32> { children + capacity }
    /// Narrow dense layout only: one count byte per key byte.
    @inline(__always) var narrowCounts: UnsafeMutablePointer<UInt8> {
        UnsafeMutableRawPointer(children + 256).assumingMemoryBound(to: UInt8.self)
    }
    /// Where child `index`'s count lives (for a prefetch); the node must have counts.
    @inline(__always)
    func countAddress(at index: Int) -> UnsafeRawPointer {
        isNarrowDense ? UnsafeRawPointer(narrowCounts + index) : UnsafeRawPointer(counts + index)
    }

    /// Key byte of the child at `index`.
    @inline(__always)
    func key(at index: Int) -> UInt8 {
        isDense ? UInt8(truncatingIfNeeded: index) : keys.load(fromByteOffset: index, as: UInt8.self)
    }

    /// Index where a child for `byte` is or would go; entries left of it are `countBefore(index)`.
    @inline(__always)
    func lowerBound(_ byte: UInt8) -> Int {
        if isDense { return Int(byte) }
        // Counting the smaller keys (sorted and distinct, so that is the index) 16 at a time has
        // no branch on the data: a binary search over random keys mispredicts about every other
        // step, ~15 cycles each. A 16-byte load from a node of capacity >= 4 stays inside it (its
        // children array follows the keys); the two smallest classes are counted one by one.
        let keys = self.keys
        let childCount = self.childCount
        if childCount <= 3 {
            var smaller = keys.load(as: UInt8.self) < byte ? 1 : 0
            smaller &+= keys.load(fromByteOffset: 1, as: UInt8.self) < byte ? 1 : 0
            if childCount == 3 { smaller &+= keys.load(fromByteOffset: 2, as: UInt8.self) < byte ? 1 : 0 }
            return smaller
        }
        let probe = SIMD16<UInt8>(repeating: byte)
        var smaller = 0
        var offset = 0
        while offset < childCount {
            let chunk = keys.loadUnaligned(fromByteOffset: offset, as: SIMD16<UInt8>.self)
            let live = Self.laneIndices .< SIMD16<UInt8>(repeating: UInt8(truncatingIfNeeded: min(childCount - offset, 16)))
            let below = SIMD16<UInt8>(repeating: 0).replacing(with: 1, where: (chunk .< probe) .& live)
            smaller &+= Int(below.wrappedSum())
            offset &+= 16
        }
        return smaller
    }

    /// A computed constant, not a `static let`: a stored static is reached through a lazy
    /// initializer check (`swift_once`) on every probe of a sorted node.
    @inline(__always)
    static var laneIndices: SIMD16<UInt8> { SIMD16<UInt8>(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15) }

    /// True when index (from `lowerBound(byte)`) holds the child for `byte`.
    @inline(__always)
    func holds(_ index: Int, _ byte: UInt8) -> Bool {
        if isDense { return children[index] != Self.absent }
        return index < childCount && keys.load(fromByteOffset: index, as: UInt8.self) == byte
    }

    /// Some child at or near `index` (any will do): to reach a representative leaf.
    @inline(__always)
    func anyChild(near index: Int) -> UInt32 {
        if !isDense { return children[min(index, childCount - 1)] }
        if children[index] != Self.absent { return children[index] }
        return children[firstIndex]
    }

    /// Entries below the children left of `index`.
    @inline(__always)
    func countBefore(_ index: Int) -> Int {
        guard hasCounts else { return index }
        var sum = 0
        if isDense {
            let groupSums = self.groupSums
            for group in 0..<(index >> Self.groupShift) { sum &+= Int(groupSums[group]) }
            if isNarrowDense {
                let counts = narrowCounts
                for i in (index & ~15)..<index { sum &+= Int(counts[i]) }
            } else {
                let counts = self.counts
                for i in (index & ~15)..<index { sum &+= Int(counts[i]) }
            }
            return sum
        }
        let counts = self.counts
        for i in 0..<index { sum &+= Int(counts[i]) }
        return sum
    }

    /// Entries below child `index`.
    @inline(__always)
    func count(at index: Int) -> Int {
        guard hasCounts else { return 1 }
        return isNarrowDense ? Int(narrowCounts[index]) : Int(counts[index])
    }

    /// True when child `index` can take `delta` more entries in this layout (false only for a
    /// narrow dense node whose child would pass `narrowCountLimit`: the node must turn wide).
    @inline(__always)
    func canAddToCount(at index: Int, _ delta: Int) -> Bool {
        !isNarrowDense || Int(narrowCounts[index]) + delta <= Self.narrowCountLimit
    }

    /// Adds `delta` to child `index`'s count (the node must have counts, and room for it:
    /// `canAddToCount`).
    @inline(__always)
    func addToCount(at index: Int, _ delta: Int) {
        assert(hasCounts)
        if isNarrowDense {
            let updated = Int(narrowCounts[index]) + delta
            assert(updated >= 0 && updated <= Self.narrowCountLimit, "narrow count out of range")
            narrowCounts[index] = UInt8(truncatingIfNeeded: updated)
        } else {
            counts[index] = UInt32(truncatingIfNeeded: Int(counts[index]) + delta)
        }
        if isDense { groupSums[index >> Self.groupShift] = UInt32(truncatingIfNeeded: Int(groupSums[index >> Self.groupShift]) + delta) }
    }

    /// The most entries below any one child (a full scan: for a node about to change layout).
    func largestChildCount() -> Int {
        guard hasCounts else { return 1 }
        var largest = 0
        var index = firstIndex
        while index >= 0 {
            largest = max(largest, count(at: index))
            index = nextIndex(after: index)
        }
        return largest
    }

    /// The child index holding local rank `remaining`; subtracts the entries skipped.
    @inline(__always)
    func index(containing remaining: inout Int) -> Int {
        if !hasCounts {
            let index = remaining
            remaining = 0
            return index
        }
        var index = 0
        if isDense {
            let groupSums = self.groupSums
            var group = 0
            while remaining >= Int(groupSums[group]) {
                remaining -= Int(groupSums[group])
                group += 1
            }
            index = group << Self.groupShift
            if isNarrowDense {
                let counts = narrowCounts
                while remaining >= Int(counts[index]) {
                    remaining -= Int(counts[index])
                    index += 1
                }
                return index
            }
        }
        let counts = self.counts
        while remaining >= Int(counts[index]) {
            remaining -= Int(counts[index])
            index += 1
        }
        return index
    }

    // Iteration over present children, in key order.
    @inline(__always) var firstIndex: Int { isDense ? nextIndex(after: -1) : 0 }
    @inline(__always) var lastIndex: Int { isDense ? previousIndex(before: 256) : childCount - 1 }
    /// The next present index after `index`, or -1.
    @inline(__always)
    func nextIndex(after index: Int) -> Int {
        if !isDense { return index + 1 < childCount ? index + 1 : -1 }
        var next = index + 1
        while next < 256 {
            if children[next] != Self.absent { return next }
            next += 1
        }
        return -1
    }
    /// The previous present index before `index`, or -1.
    @inline(__always)
    func previousIndex(before index: Int) -> Int {
        if !isDense { return index - 1 }
        var previous = index - 1
        while previous >= 0 {
            if children[previous] != Self.absent { return previous }
            previous -= 1
        }
        return -1
    }

    /// Inserts a child for `byte` at `index` (= `lowerBound(byte)`). The node must have room.
    func insertChild(at index: Int, byte: UInt8, child: NodeRef, count: Int) {
        let n = childCount
        assert(n < capacity)
        assert(hasCounts || count == 1)
        if isDense {
            assert(index == Int(byte) && children[index] == Self.absent)
            children[index] = child
            if isNarrowDense {
                assert(count <= Self.narrowCountLimit)
                narrowCounts[index] = UInt8(truncatingIfNeeded: count)
            } else {
                counts[index] = UInt32(count)
            }
            groupSums[index >> Self.groupShift] += UInt32(count)
            setChildCount(n + 1)
            return
        }
        assert(index <= n)
        let moved = n - index
        if moved > 0 {
            (keys + index + 1).copyMemory(from: keys + index, byteCount: moved)
            (children + index + 1).update(from: children + index, count: moved)
            if hasCounts { (counts + index + 1).update(from: counts + index, count: moved) }
        }
        keys.storeBytes(of: byte, toByteOffset: index, as: UInt8.self)
        children[index] = child
        if hasCounts { counts[index] = UInt32(count) }
        setChildCount(n + 1)
    }

    /// Removes child `index`.
    func removeChild(at index: Int) {
        let n = childCount
        if isDense {
            assert(children[index] != Self.absent)
            groupSums[index >> Self.groupShift] -= UInt32(count(at: index))
            if isNarrowDense { narrowCounts[index] = 0 } else { counts[index] = 0 }
            children[index] = Self.absent
            setChildCount(n - 1)
            return
        }
        assert(index < n)
        let moved = n - index - 1
        if moved > 0 {
            (keys + index).copyMemory(from: keys + index + 1, byteCount: moved)
            children.advanced(by: index).update(from: children + index + 1, count: moved)
            if hasCounts { counts.advanced(by: index).update(from: counts + index + 1, count: moved) }
        }
        setChildCount(n - 1)
    }
}

/// Contiguous storage for radix tree nodes, addressed by 32-bit word offsets.
///
/// Memory is a list of chunks of 2^16 words (256 KiB). The first chunk starts small and grows by
/// `realloc` (so a board with a handful of players costs a few hundred bytes, not 256 KiB); later
/// chunks are allocated whole, so the arena never copies a large block and wastes at most one
/// partly filled chunk. Nodes never straddle chunks. Freed nodes go to a free list per layout
/// (size class x with/without counts), threaded through their second word. No node is an object:
/// there is no ARC traffic and no per-node malloc.
///
/// Growing chunk 0 moves it: a `RadixNode` view taken before an `allocate` must be re-fetched.
struct NodeArena {
    static let chunkShift = 16
    static let chunkWords = 1 << chunkShift
    static let offsetMask: UInt32 = UInt32(chunkWords - 1)
    /// Chunk indexes must keep bit 31 of a NodeRef clear (it marks leaves).
    static let maxChunks = 1 << (31 - chunkShift)
    static let layoutCount = 2 * (RadixNode.maxSizeClass + 1)
    static let noNode: UInt32 = .max
    static let freedMarker: UInt32 = .max

    private var chunks: UnsafeMutablePointer<UnsafeMutablePointer<UInt32>>?
    private var chunkTableCapacity = 0
    private var chunkCount = 0
    /// Capacity in words of the last chunk (below `chunkWords` only while it is chunk 0).
    private var lastChunkWords = 0
    /// Capacity in words of chunk 0 (it grows by reallocation; the others are `chunkWords`).
    private var firstChunkWords = 0
    /// Words handed out from the last chunk.
    private var usedWords = 0
    private var freeHeads: UnsafeMutablePointer<UInt32>?
    /// Live (allocated, not freed) nodes, for invariant checks.
    private(set) var liveNodes = 0
    /// Words sitting on free lists. Nodes grow through size classes, so a bulk load leaves many
    /// freed nodes of classes nothing needs any more; `RadixTree` compacts when this gets large.
    private(set) var freeWords = 0
    /// Words ever handed out from chunk tails since the arena was made (accounting check:
    /// `handedOutWords == live node words + freeWords`).
    private(set) var handedOutWords = 0
    /// Free words below which compaction is not worth it (tests lower it to exercise compaction).
    var compactionFloorWords = NodeArena.chunkWords

    init() {}

    /// Debug: chunk count, words used in the last chunk, free nodes per layout.
    var debugDescription: String {
        var free: [Int: Int] = [:]
        if let freeHeads {
            for layout in 0..<Self.layoutCount {
                var ref = freeHeads[layout]
                var n = 0
                while ref != Self.noNode { n += 1; ref = pointer(ref)[1] }
                if n > 0 { free[layout] = n }
            }
        }
        return "chunks \(chunkCount) last \(lastChunkWords) used \(usedWords) live \(liveNodes) free \(free.sorted { $0.key < $1.key })"
    }

    /// Words on the free lists, counted by walking them (invariant checks; O(free nodes)).
    var wordsOnFreeLists: Int {
        guard let freeHeads else { return 0 }
        var words = 0
        for layout in 0..<Self.layoutCount {
            var ref = freeHeads[layout]
            while ref != Self.noNode {
                words += Self.strideWords(layout: layout)
                ref = pointer(ref)[1]
            }
        }
        return words
    }

    /// True when more than an eighth of the arena (and at least one chunk) is on free lists.
    var wantsCompaction: Bool {
        freeWords >= compactionFloorWords && freeWords * 8 > (chunkCount - 1) * Self.chunkWords + lastChunkWords
    }

    /// Copies the subtree at `ref` (in `source`) into this arena, depth first (so a subtree's
    /// nodes end up near each other), and returns the copy's ref.
    mutating func copySubtree(_ ref: NodeRef, from source: NodeArena) -> NodeRef {
        if ref & (1 << 31) != 0 { return ref }  // a leaf
        let original = source.node(ref)
        let copy = allocate(
            sizeClass: original.sizeClass, hasCounts: original.hasCounts, depth: original.depth, initialized: false)
        pointer(copy).update(
            from: original.base, count: RadixNode.strideWords(sizeClass: original.sizeClass, hasCounts: original.hasCounts))
        var index = original.firstIndex
        while index >= 0 {
            let child = original.children[index]
            if child & (1 << 31) == 0 {
                let childCopy = copySubtree(child, from: source)
                node(copy).children[index] = childCopy  // re-fetched: chunk 0 may have moved
            }
            index = original.nextIndex(after: index)
        }
        return copy
    }

    /// Bytes held from the allocator (chunk capacity, not just the words in use).
    var reservedBytes: Int {
        chunkCount == 0 ? 0 : ((chunkCount - 1) * Self.chunkWords + lastChunkWords) * 4
    }

    @inline(__always)
    func pointer(_ ref: NodeRef) -> UnsafeMutablePointer<UInt32> {
        assert(ref & (1 << 31) == 0 && Int(ref >> UInt32(Self.chunkShift)) < chunkCount)
        return chunks.unsafelyUnwrapped[Int(ref >> UInt32(Self.chunkShift))] + Int(ref & Self.offsetMask)
    }

    @inline(__always)
    func node(_ ref: NodeRef) -> RadixNode { RadixNode(base: pointer(ref)) }

    /// Starts loading the lines a descent is about to read in node `ref`: its header and, in case
    /// it is a dense node probed at `byte`, that byte's child ref and the counts up to it.
    ///
    /// Why: a dense node's header, child slot and count line are three different lines, and a
    /// descent reads them one after the other (the header says the node is dense, the slot says
    /// where to go next, the counts come with the rank or the write): three cache misses in a row
    /// per cold node. The caller does not know the child's layout or depth yet; it guesses dense
    /// at its own depth + 1, which is what the big levels of a large board are. A wrong guess
    /// costs one or two wasted line fills (a prefetch never faults, whatever the address).
    ///
    /// The two dense layouts keep the child slot at the same place but their counts at different
    /// ones; the guess is narrow: a wide node has a child of 256 entries or more, so wide nodes
    /// are the few near the root, which stay in cache, while the cold dense nodes of a big board
    /// are those just above its leaves. The 16 count bytes left of the byte span one line or two.
    ///
    /// The guessed addresses can lie past the node, or past its chunk: they are computed as
    /// integers, never as pointers, and only ever handed to the prefetch hint.
    @inline(__always)
    func prefetchDescent(into ref: NodeRef, likelyByte byte: UInt8) {
        let base = pointer(ref)
        hiscore_prefetch(base)
        let slot = Int(bitPattern: base) &+ (1 + RadixNode.groupCount + Int(byte)) &* 4
        let narrowCounts = Int(bitPattern: base) &+ (1 + RadixNode.groupCount + 256) &* 4 &+ Int(byte)
        hiscore_prefetch(UnsafeRawPointer(bitPattern: slot))
        hiscore_prefetch(UnsafeRawPointer(bitPattern: narrowCounts &- Int(byte & 15)))
        hiscore_prefetch(UnsafeRawPointer(bitPattern: narrowCounts))
    }

    @inline(__always)
    private static func layout(sizeClass: Int, hasCounts: Bool) -> Int { sizeClass << 1 | (hasCounts ? 1 : 0) }

    @inline(__always)
    private static func strideWords(layout: Int) -> Int {
        RadixNode.strideWords(sizeClass: layout >> 1, hasCounts: layout & 1 != 0)
    }

    /// A new node with no children (or, when not `initialized`, with whatever its words held:
    /// for a caller that overwrites the whole node). Invalidates earlier `RadixNode` views
    /// (chunk 0 may move).
    ///
    /// The words come from the free list of this layout, else from the tail of the last chunk.
    mutating func allocate(sizeClass: Int, hasCounts: Bool, depth: Int, initialized: Bool = true) -> NodeRef {
        let layout = Self.layout(sizeClass: sizeClass, hasCounts: hasCounts)
        let header = RadixNode.makeHeader(childCount: 0, depth: depth, sizeClass: sizeClass, hasCounts: hasCounts)
        let stride = RadixNode.strideWords(sizeClass: sizeClass, hasCounts: hasCounts)
        liveNodes += 1
        let ref: NodeRef
        if let freeHeads, freeHeads[layout] != Self.noNode {
            ref = freeHeads[layout]
            let base = pointer(ref)
            assert(base[0] == Self.freedMarker)
            freeHeads[layout] = base[1]
            freeWords -= stride
        } else {
            if chunkCount == 0 || usedWords + stride > lastChunkWords { makeRoom(words: stride) }
            ref = UInt32(chunkCount - 1) << UInt32(Self.chunkShift) | UInt32(usedWords)
            usedWords += stride
            handedOutWords += stride
        }
        let base = pointer(ref)
        base[0] = header
        if initialized { RadixNode(base: base).initializeEmpty() }
        return ref
    }

    private mutating func makeRoom(words: Int) {
        if freeHeads == nil {
            freeHeads = .allocate(capacity: Self.layoutCount)
            freeHeads!.initialize(repeating: Self.noNode, count: Self.layoutCount)
        }
        if chunkCount == 1 && lastChunkWords < Self.chunkWords {
            // Grow chunk 0 in place (or by copy) so offsets stay valid.
            var newWords = lastChunkWords
            while newWords < usedWords + words { newWords *= 2 }
            newWords = min(newWords, Self.chunkWords)
            if usedWords + words <= newWords {
                let moved = engineReallocate(chunks![0], from: lastChunkWords * 4, to: newWords * 4)
                chunks![0] = moved.assumingMemoryBound(to: UInt32.self)
                lastChunkWords = newWords
                firstChunkWords = newWords
                return
            }
            // Chunk 0 is as large as it gets; start chunk 1.
        }
        if chunkCount == chunkTableCapacity {
            precondition(chunkCount < Self.maxChunks, "radix tree arena exhausted")
            let newCapacity = max(4, chunkTableCapacity * 2)
            let table = UnsafeMutablePointer<UnsafeMutablePointer<UInt32>>.allocate(capacity: newCapacity)
            if let chunks {
                table.moveInitialize(from: chunks, count: chunkCount)
                chunks.deallocate()
            }
            chunks = table
            chunkTableCapacity = newCapacity
        }
        let chunkWords = chunkCount == 0 ? max(64, words) : Self.chunkWords
        let memory = engineAllocate(chunkWords * 4).assumingMemoryBound(to: UInt32.self)
        (chunks! + chunkCount).initialize(to: memory)
        if chunkCount == 0 { firstChunkWords = chunkWords }
        chunkCount += 1
        lastChunkWords = chunkWords
        usedWords = 0
    }

    mutating func free(_ ref: NodeRef) {
        let base = pointer(ref)
        let node = RadixNode(base: base)
        let layout = Self.layout(sizeClass: node.sizeClass, hasCounts: node.hasCounts)
        freeWords += RadixNode.strideWords(sizeClass: node.sizeClass, hasCounts: node.hasCounts)
        base[0] = Self.freedMarker
        base[1] = freeHeads![layout]
        freeHeads![layout] = ref
        liveNodes -= 1
    }

    /// Copies `ref` into a node of another layout (bigger, smaller, gaining counts, sorted <->
    /// dense), frees the old node and returns the new one. A leaf-only node gaining counts gets
    /// count 1 per child.
    mutating func relocate(_ ref: NodeRef, sizeClass: Int, hasCounts: Bool) -> NodeRef {
        let depth = node(ref).depth
        let keepsCounts = hasCounts || sizeClass >= RadixNode.narrowDenseClass
        let newRef = allocate(sizeClass: sizeClass, hasCounts: keepsCounts, depth: depth)
        let old = node(ref)  // re-fetched: allocate may have moved chunk 0
        let new = node(newRef)
        assert(old.childCount <= new.capacity)
        assert(!old.hasCounts || keepsCounts, "dropping counts needs all-leaf children")
        if !old.isDense && !new.isDense {
            let n = old.childCount
            new.keys.copyMemory(from: old.keys, byteCount: n)
            new.children.update(from: old.children, count: n)
            if keepsCounts {
                if old.hasCounts { new.counts.update(from: old.counts, count: n) } else { new.counts.update(repeating: 1, count: n) }
            }
            new.setChildCount(n)
        } else {
            var index = old.firstIndex
            var position = 0
            while index >= 0 {
                let byte = old.key(at: index)
                new.insertChild(
                    at: new.isDense ? Int(byte) : position, byte: byte, child: old.children[index],
                    count: keepsCounts ? old.count(at: index) : 1)
                position += 1
                index = old.nextIndex(after: index)
            }
        }
        free(ref)
        return newRef
    }

    /// Releases every chunk; the arena is empty afterwards.
    mutating func deallocateAll() {
        if let chunks {
            for index in 0..<chunkCount { engineFree(chunks[index], bytes: (index == 0 ? firstChunkWords : Self.chunkWords) * 4) }
            chunks.deallocate()
        }
        freeHeads?.deallocate()
        let floor = compactionFloorWords
        self = NodeArena()
        compactionFloorWords = floor
    }
}
