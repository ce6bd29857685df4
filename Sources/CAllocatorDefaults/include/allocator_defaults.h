#ifndef HISCORE_ALLOCATOR_DEFAULTS_H
#define HISCORE_ALLOCATOR_DEFAULTS_H

/* The jemalloc options hiscored starts with; jemalloc reads this symbol at start-up, and
 * MALLOC_CONF overrides them. Nothing else refers to it. */
extern const char *malloc_conf;

#endif
