/// Reference to a radix tree node: bit 31 set = a leaf, whose low 31 bits are an entry slot;
/// otherwise the word offset of an inner node in its `NodeArena` (chunk << 16 | word in chunk).
typealias NodeRef = UInt32

/// View of one inner node in the arena. A node is a run of 32-bit words:
///
///     word 0            header: child count (bits 0-8) | depth (9-13) | size class (14-17) | hasCounts (18)
///     words 1...        key bytes, one per child, sorted ascending (capacity bytes, padded to words)
///     then              children: NodeRef per child, in key order
///     then (hasCounts)  subtree entry counts per child (UInt32), in key order
///
/// A node without counts ("leaf-only") has only leaf children, each counting 1: the bottom nodes
/// that separate tied scores by sequence are almost all of this kind, and saving their count
/// array is worth about 3 bytes per entry.
struct RadixNode {
    let base: UnsafeMutablePointer<UInt32>

    static let countMask: UInt32 = 0x1FF
    static let hasCountsBit: UInt32 = 1 << 18
    static let maxSizeClass = 14

    /// Capacities by size class: 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256
    /// (steps of x1.5 / x1.33, so a node wastes at most a third of its slots).
    @inline(__always)
    static func capacity(ofClass sizeClass: Int) -> Int {
        (sizeClass & 1 == 0 ? 2 : 3) << (sizeClass >> 1)
    }

    @inline(__always)
    static func keyWords(capacity: Int) -> Int { (capacity + 3) >> 2 }

    @inline(__always)
    static func strideWords(sizeClass: Int, hasCounts: Bool) -> Int {
        let capacity = capacity(ofClass: sizeClass)
        return 1 + keyWords(capacity: capacity) + (hasCounts ? 2 * capacity : capacity)
    }

    /// The smallest size class holding `children` children.
    static func sizeClass(holding children: Int) -> Int {
        assert(children >= 1 && children <= 256)
        var sizeClass = 0
        while capacity(ofClass: sizeClass) < children { sizeClass += 1 }
        return sizeClass
    }

    @inline(__always) var header: UInt32 { base.pointee }
    @inline(__always) var childCount: Int { Int(base.pointee & Self.countMask) }
    @inline(__always) var depth: Int { Int((base.pointee >> 9) & 0x1F) }
    @inline(__always) var sizeClass: Int { Int((base.pointee >> 14) & 0xF) }
    @inline(__always) var hasCounts: Bool { base.pointee & Self.hasCountsBit != 0 }
    @inline(__always) var capacity: Int { Self.capacity(ofClass: sizeClass) }

    @inline(__always)
    static func makeHeader(childCount: Int, depth: Int, sizeClass: Int, hasCounts: Bool) -> UInt32 {
        assert(childCount <= 256 && depth < RankKey.byteCount && sizeClass <= maxSizeClass)
        return UInt32(childCount) | UInt32(depth) << 9 | UInt32(sizeClass) << 14 | (hasCounts ? hasCountsBit : 0)
    }

    @inline(__always)
    func setChildCount(_ count: Int) {
        assert(count >= 0 && count <= capacity)
        base.pointee = (base.pointee & ~Self.countMask) | UInt32(count)
    }

    @inline(__always) var keys: UnsafeMutableRawPointer { UnsafeMutableRawPointer(base + 1) }
    @inline(__always) var children: UnsafeMutablePointer<UInt32> { base + 1 + Self.keyWords(capacity: capacity) }
    /// Valid only when `hasCounts`.
    @inline(__always) var counts: UnsafeMutablePointer<UInt32> { children + capacity }

    @inline(__always)
    func key(at index: Int) -> UInt8 { keys.load(fromByteOffset: index, as: UInt8.self) }

    /// Number of children whose key byte is < `byte` (= the index where `byte` is or would go).
    @inline(__always)
    func lowerBound(_ byte: UInt8) -> Int {
        let keys = self.keys
        var low = 0
        var length = childCount
        while length > 0 {
            let half = length >> 1
            if keys.load(fromByteOffset: low + half, as: UInt8.self) < byte {
                low += half + 1
                length -= half + 1
            } else {
                length = half
            }
        }
        return low
    }

    /// Entries below children 0..<index.
    @inline(__always)
    func countBefore(_ index: Int) -> Int {
        guard hasCounts else { return index }
        let counts = self.counts
        var sum = 0
        for i in 0..<index { sum &+= Int(counts[i]) }
        return sum
    }

    /// Entries below child `index`.
    @inline(__always)
    func count(at index: Int) -> Int { hasCounts ? Int(counts[index]) : 1 }

    /// Inserts a child at `index`, shifting later children right. The node must have room.
    func insertChild(at index: Int, byte: UInt8, child: NodeRef, count: Int) {
        let n = childCount
        assert(n < capacity && index <= n)
        assert(hasCounts || count == 1)
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

    /// Removes child `index`, shifting later children left.
    func removeChild(at index: Int) {
        let n = childCount
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
    /// Words handed out from the last chunk.
    private var usedWords = 0
    private var freeHeads: UnsafeMutablePointer<UInt32>?
    /// Live (allocated, not freed) nodes, for invariant checks.
    private(set) var liveNodes = 0

    init() {}

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

    @inline(__always)
    private static func layout(sizeClass: Int, hasCounts: Bool) -> Int { sizeClass << 1 | (hasCounts ? 1 : 0) }

    /// A new node with no children. Invalidates earlier `RadixNode` views (chunk 0 may move).
    mutating func allocate(sizeClass: Int, hasCounts: Bool, depth: Int) -> NodeRef {
        let layout = Self.layout(sizeClass: sizeClass, hasCounts: hasCounts)
        let header = RadixNode.makeHeader(childCount: 0, depth: depth, sizeClass: sizeClass, hasCounts: hasCounts)
        liveNodes += 1
        if let freeHeads, freeHeads[layout] != Self.noNode {
            let ref = freeHeads[layout]
            let base = pointer(ref)
            assert(base[0] == Self.freedMarker)
            freeHeads[layout] = base[1]
            base[0] = header
            return ref
        }
        let stride = RadixNode.strideWords(sizeClass: sizeClass, hasCounts: hasCounts)
        if chunkCount == 0 || usedWords + stride > lastChunkWords { makeRoom(words: stride) }
        let ref = UInt32(chunkCount - 1) << UInt32(Self.chunkShift) | UInt32(usedWords)
        usedWords += stride
        pointer(ref)[0] = header
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
                let moved = engineReallocate(chunks![0], newWords * 4)
                chunks![0] = moved.assumingMemoryBound(to: UInt32.self)
                lastChunkWords = newWords
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
        chunkCount += 1
        lastChunkWords = chunkWords
        usedWords = 0
    }

    mutating func free(_ ref: NodeRef) {
        let base = pointer(ref)
        let node = RadixNode(base: base)
        let layout = Self.layout(sizeClass: node.sizeClass, hasCounts: node.hasCounts)
        base[0] = Self.freedMarker
        base[1] = freeHeads![layout]
        freeHeads![layout] = ref
        liveNodes -= 1
    }

    /// Copies `ref` into a node of another layout (bigger, smaller, or gaining counts), frees the
    /// old node and returns the new one. A leaf-only node gaining counts gets count 1 per child.
    mutating func relocate(_ ref: NodeRef, sizeClass: Int, hasCounts: Bool) -> NodeRef {
        let depth = node(ref).depth
        let newRef = allocate(sizeClass: sizeClass, hasCounts: hasCounts, depth: depth)
        let old = node(ref)  // re-fetched: allocate may have moved chunk 0
        let new = node(newRef)
        let n = old.childCount
        assert(n <= new.capacity)
        assert(old.hasCounts == false || hasCounts, "dropping counts needs all-leaf children")
        new.keys.copyMemory(from: old.keys, byteCount: n)
        new.children.update(from: old.children, count: n)
        if hasCounts {
            if old.hasCounts {
                new.counts.update(from: old.counts, count: n)
            } else {
                new.counts.update(repeating: 1, count: n)
            }
        }
        new.setChildCount(n)
        free(ref)
        return newRef
    }

    /// Releases every chunk; the arena is empty afterwards.
    mutating func deallocateAll() {
        if let chunks {
            for index in 0..<chunkCount { engineFree(chunks[index]) }
            chunks.deallocate()
        }
        freeHeads?.deallocate()
        self = NodeArena()
    }
}
