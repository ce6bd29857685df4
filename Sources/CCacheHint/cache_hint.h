#ifndef HISCORE_CACHE_HINT_H
#define HISCORE_CACHE_HINT_H

/* Swift has no prefetch intrinsic. The engine uses this to start the cache misses of a
 * search it is about to make while it does other work, so that two independent chains of
 * misses (the old and the new place of a score) overlap instead of following each other.
 * A hint only: it never faults, and a wrong address costs a wasted line fill. */
static inline void hiscore_prefetch(const void *address) {
    __builtin_prefetch(address, 0, 3);
}

/* The same, for a line about to be written (a subtree count on the path of an insert). */
static inline void hiscore_prefetch_for_write(const void *address) {
    __builtin_prefetch(address, 1, 3);
}

#endif
