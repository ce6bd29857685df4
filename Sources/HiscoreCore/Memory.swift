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
public struct LargeBlockAllocator: Sendable {
    public var allocate: @Sendable (Int) -> UnsafeMutableRawPointer?
    public var allocateZeroed: @Sendable (Int) -> UnsafeMutableRawPointer?
    /// Resizes a block from `allocate`, `allocateZeroed` or the C allocator.
    public var reallocate: @Sendable (UnsafeMutableRawPointer, Int) -> UnsafeMutableRawPointer?

    public init(
        allocate: @escaping @Sendable (Int) -> UnsafeMutableRawPointer?,
        allocateZeroed: @escaping @Sendable (Int) -> UnsafeMutableRawPointer?,
        reallocate: @escaping @Sendable (UnsafeMutableRawPointer, Int) -> UnsafeMutableRawPointer?
    ) {
        self.allocate = allocate
        self.allocateZeroed = allocateZeroed
        self.reallocate = reallocate
    }
}

public enum LargeBlocks {
    /// Blocks from this size up go to the installed allocator.
    public static let minimumBytes = 64 << 10

    /// Set once, before any partition exists (`install`), read on the engine's large allocations.
    nonisolated(unsafe) private static var installed: LargeBlockAllocator?

    /// Routes the engine's large blocks to `allocator`, whose blocks `free` must release (they are
    /// freed with the C allocator's `free`). Call once at start-up, before the first partition is
    /// made and before other threads run engine code; later calls are ignored (returns false).
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

/// Allocates `bytes` (at least 1); traps only when the allocator is out of memory.
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

@inline(__always)
func engineReallocate(_ memory: UnsafeMutableRawPointer?, _ bytes: Int) -> UnsafeMutableRawPointer {
    let size = max(bytes, 1)
    let moved: UnsafeMutableRawPointer? =
        if let memory, let large = LargeBlocks.allocator(for: size) { large.reallocate(memory, size) } else { realloc(memory, size) }
    guard let moved else { fatalError("out of memory allocating \(bytes) bytes") }
    return moved
}

@inline(__always)
func engineFree(_ memory: UnsafeMutableRawPointer?) {
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
