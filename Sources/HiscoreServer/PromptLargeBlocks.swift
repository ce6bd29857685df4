import CJemalloc
import HiscoreCore

/// The engine's large blocks (node chunks, player index tables, entry pages) in a jemalloc arena
/// of their own that returns freed pages to the system at once (`LargeBlockAllocator` says why).
/// Every other allocation keeps jemalloc's default decay.
public enum PromptLargeBlocks {
    /// Creates the arena and routes the engine's large blocks to it. Call once at start-up,
    /// before any board exists. False (and nothing changed: the engine keeps the C allocator)
    /// when jemalloc is not the process's allocator (another one preloaded, a sanitizer's), when
    /// it refuses the arena, or when large blocks were routed already.
    @discardableResult
    public static func install() -> Bool {
        guard !LargeBlocks.isInstalled, hiscore_jemalloc_is_process_malloc() != 0 else { return false }
        var created: UInt32 = 0
        guard hiscore_jemalloc_create_prompt_arena(&created) == 0 else { return false }
        let arena = created
        return LargeBlocks.install(LargeBlockAllocator(
            allocate: { hiscore_jemalloc_arena_allocate($0, arena, 0) },
            allocateZeroed: { hiscore_jemalloc_arena_allocate($0, arena, 1) },
            reallocate: { hiscore_jemalloc_arena_reallocate($0, $1, arena) },
            free: { hiscore_jemalloc_arena_free($0) }))
    }
}
