#ifndef HISCORE_CJEMALLOC_SHIM_H
#define HISCORE_CJEMALLOC_SHIM_H
// Debian's jemalloc has no je_ prefix: linking it replaces the process malloc.
#include <jemalloc/jemalloc.h>
#include <stdio.h>
#include <sys/types.h>

/* Makes an arena whose freed pages are returned to the system at once (dirty and muzzy decay
 * 0), for blocks that are large and freed in bulk. Stores its index in *arena; 0 on success. */
static inline int hiscore_jemalloc_create_prompt_arena(unsigned *arena) {
    size_t size = sizeof(unsigned);
    if (mallctl("arenas.create", arena, &size, NULL, 0) != 0) return -1;
    ssize_t zero = 0;
    char name[64];
    snprintf(name, sizeof name, "arena.%u.dirty_decay_ms", *arena);
    if (mallctl(name, NULL, NULL, &zero, sizeof zero) != 0) return -1;
    snprintf(name, sizeof name, "arena.%u.muzzy_decay_ms", *arena);
    if (mallctl(name, NULL, NULL, &zero, sizeof zero) != 0) return -1;
    return 0;
}

/* Allocations in that arena, bypassing the thread cache (which would keep freed blocks). Sizes
 * must be > 0. */
static inline void *hiscore_jemalloc_arena_allocate(size_t size, unsigned arena, int zeroed) {
    return mallocx(size, MALLOCX_ARENA(arena) | MALLOCX_TCACHE_NONE | (zeroed ? MALLOCX_ZERO : 0));
}

static inline void *hiscore_jemalloc_arena_reallocate(void *pointer, size_t size, unsigned arena) {
    return rallocx(pointer, size, MALLOCX_ARENA(arena) | MALLOCX_TCACHE_NONE);
}

#endif
