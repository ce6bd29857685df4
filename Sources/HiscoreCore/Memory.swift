#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// Thin wrappers over the C allocator for the engine's manually managed storage (node chunks,
// entry pages, the player hash table). Under jemalloc (the server's allocator) these are jemalloc
// calls, so `stats.allocated` sees every byte the engine holds.

/// Allocates `bytes` (at least 1); traps only when the allocator is out of memory.
@inline(__always)
func engineAllocate(_ bytes: Int) -> UnsafeMutableRawPointer {
    guard let memory = malloc(max(bytes, 1)) else { fatalError("out of memory allocating \(bytes) bytes") }
    return memory
}

/// Allocates `bytes` of zeroed memory.
@inline(__always)
func engineAllocateZeroed(_ bytes: Int) -> UnsafeMutableRawPointer {
    guard let memory = calloc(1, max(bytes, 1)) else { fatalError("out of memory allocating \(bytes) bytes") }
    return memory
}

@inline(__always)
func engineReallocate(_ memory: UnsafeMutableRawPointer?, _ bytes: Int) -> UnsafeMutableRawPointer {
    guard let moved = realloc(memory, max(bytes, 1)) else { fatalError("out of memory allocating \(bytes) bytes") }
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
