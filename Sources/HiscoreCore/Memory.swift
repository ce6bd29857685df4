#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// Thin wrappers over the C allocator for the engine's manually managed storage (node chunks,
// entry pages, the player hash table). Under jemalloc (the server's allocator) these are jemalloc
// calls, so `stats.allocated` sees every byte the engine holds.

/// Where the engine's large blocks (`LargeBlocks.minimumBytes` and up: node chunks, player index
/// tables, entry pages) come from, when the process installs one (`LargeBlocks.install`).
///
/// Why: those blocks are freed in bulk — a tree's whole arena after its compaction copy, the old
/// index after a rehash, a board's pages when it is deleted or reset — and an allocator that keeps
/// freed pages for reuse (jemalloc's decay, 10 s by default) keeps them resident meanwhile: at 1M
/// players the server's peak RSS was the live data plus such freed pages. The server gives them
/// a jemalloc arena that returns freed pages at once, which costs a page fault on reuse only for
/// these rare, large blocks (every other allocation keeps the default decay: returning all freed
/// pages at once cost 40% more CPU on the preload).
///
/// Blocks never cross allocators: the engine frees and resizes every block by its size (the
/// threshold decides which allocator made it), and a block crossing the threshold by a resize is
/// copied from one to the other.
public struct LargeBlockAllocator: Sendable {
    public var allocate: @Sendable (Int) -> UnsafeMutableRawPointer?
    public var allocateZeroed: @Sendable (Int) -> UnsafeMutableRawPointer?
    /// Resizes a block from `allocate` or `allocateZeroed` (it stays this allocator's).
    public var reallocate: @Sendable (UnsafeMutableRawPointer, Int) -> UnsafeMutableRawPointer?
    /// Releases a block from `allocate`, `allocateZeroed` or `reallocate`.
    public var free: @Sendable (UnsafeMutableRawPointer) -> Void

    public init(
        allocate: @escaping @Sendable (Int) -> UnsafeMutableRawPointer?,
        allocateZeroed: @escaping @Sendable (Int) -> UnsafeMutableRawPointer?,
        reallocate: @escaping @Sendable (UnsafeMutableRawPointer, Int) -> UnsafeMutableRawPointer?,
        free: @escaping @Sendable (UnsafeMutableRawPointer) -> Void
    ) {
        self.allocate = allocate
        self.allocateZeroed = allocateZeroed
        self.reallocate = reallocate
        self.free = free
    }
}

public enum LargeBlocks {
    /// Blocks from this size up go to the installed allocator.
    public static let minimumBytes = 64 << 10

    /// Set once, before any partition exists (`install`), read on the engine's large allocations.
    nonisolated(unsafe) private static var installed: LargeBlockAllocator?

    /// Whether large blocks are routed (`install` was called).
    public static var isInstalled: Bool { installed != nil }

    /// Routes the engine's large blocks to `allocator`. Call once at start-up, before the first
    /// partition is made and before other threads run engine code; later calls are ignored
    /// (returns false).
    @discardableResult
    public static func install(_ allocator: LargeBlockAllocator) -> Bool {
        guard installed == nil else { return false }
        installed = allocator
        return true
    }

    @inline(__always)
    static func allocator(for bytes: Int) -> LargeBlockAllocator? {
        bytes >= minimumBytes ? installed : nil
    }
}

/// Allocates `bytes` (at least 1); traps only when the allocator is out of memory. Release it
/// with `engineFree(_:bytes:)`.
@inline(__always)
func engineAllocate(_ bytes: Int) -> UnsafeMutableRawPointer {
    let size = max(bytes, 1)
    let memory = if let large = LargeBlocks.allocator(for: size) { large.allocate(size) } else { malloc(size) }
    guard let memory else { fatalError("out of memory allocating \(bytes) bytes") }
    return memory
}

/// Allocates `bytes` of zeroed memory.
@inline(__always)
func engineAllocateZeroed(_ bytes: Int) -> UnsafeMutableRawPointer {
    let size = max(bytes, 1)
    let memory = if let large = LargeBlocks.allocator(for: size) { large.allocateZeroed(size) } else { calloc(1, size) }
    guard let memory else { fatalError("out of memory allocating \(bytes) bytes") }
    return memory
}

/// Resizes a block of `oldBytes` from `engineAllocate` (or an earlier resize) to `bytes`.
///
/// A block growing past `LargeBlocks.minimumBytes` moves to the large-block allocator by a copy:
/// a resize would grow it in place where it can, in the C allocator's arena, where its pages
/// would not be returned at once (jemalloc's `rallocx` keeps a block in its arena unless it moves).
@inline(__always)
func engineReallocate(_ memory: UnsafeMutableRawPointer, from oldBytes: Int, to bytes: Int) -> UnsafeMutableRawPointer {
    let size = max(bytes, 1)
    let moved: UnsafeMutableRawPointer?
    if let large = LargeBlocks.allocator(for: size) {
        if oldBytes >= LargeBlocks.minimumBytes {
            moved = large.reallocate(memory, size)
        } else {
            moved = large.allocate(size)
            if let moved { moved.copyMemory(from: memory, byteCount: min(oldBytes, size)) }
            free(memory)
        }
    } else if let large = LargeBlocks.allocator(for: oldBytes) {
        // Shrinking below the threshold: out of the large-block allocator, by a copy.
        moved = malloc(size)
        if let moved { moved.copyMemory(from: memory, byteCount: size) }
        large.free(memory)
    } else {
        moved = realloc(memory, size)
    }
    guard let moved else { fatalError("out of memory allocating \(bytes) bytes") }
    return moved
}

/// Releases a block of `bytes` from `engineAllocate`, `engineAllocateZeroed` or
/// `engineReallocate` (nil: nothing).
@inline(__always)
func engineFree(_ memory: UnsafeMutableRawPointer?, bytes: Int) {
    guard let memory else { return }
    if let large = LargeBlocks.allocator(for: max(bytes, 1)) { large.free(memory) } else { free(memory) }
}

/// Releases a block known to be smaller than `LargeBlocks.minimumBytes` (ids, metadata).
@inline(__always)
func engineFreeSmall(_ memory: UnsafeMutableRawPointer?) {
    free(memory)
}

/// `bytes` rounded up to the allocator's size class (jemalloc's spacing: four classes per
/// doubling), so a growable table asks for exactly what it will be given and can use it all.
@inline(__always)
func engineSizeClass(_ bytes: Int) -> Int {
    if bytes <= 64 { return max(16, (bytes + 15) & ~15) }
    let power = 1 << (Int.bitWidth - 1 - (bytes - 1).leadingZeroBitCount)
    let step = power / 4
    return (bytes + step - 1) / step * step
}
