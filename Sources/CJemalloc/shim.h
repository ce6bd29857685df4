#ifndef HISCORE_CJEMALLOC_SHIM_H
#define HISCORE_CJEMALLOC_SHIM_H
// Debian's jemalloc has no je_ prefix: linking it replaces the process malloc.
#include <jemalloc/jemalloc.h>
#include <dlfcn.h>
#include <stdio.h>
#include <sys/types.h>

/* True when the process's malloc is this jemalloc's, not another allocator's preloaded over it
 * (LD_PRELOAD, a sanitizer's runtime): the engine's large blocks then share the heap whose
 * statistics the server reports and limits. Compares the malloc every library gets (dlsym with a
 * null handle: glibc's RTLD_DEFAULT) with libjemalloc's own; any doubt answers no. (Valgrind
 * redirects calls rather than symbols, so it is not seen; nothing breaks either way: every block
 * is resized and freed by the allocator that made it.) */
static inline int hiscore_jemalloc_is_process_malloc(void) {
    void *library = dlopen("libjemalloc.so.2", RTLD_LAZY);
    if (library == NULL) return 0;
    void *own = dlsym(library, "malloc");
    void *process = dlsym(NULL, "malloc");
    dlclose(library);
    return own != NULL && own == process;
}

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

/* Frees past the thread cache: a cached block would be handed to the next malloc of its size
 * class instead of going back (only with a tcache_max raised past the block's size). */
static inline void hiscore_jemalloc_arena_free(void *pointer) {
    dallocx(pointer, MALLOCX_TCACHE_NONE);
}

#endif
