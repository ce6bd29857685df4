#ifndef HISCORE_ALLOCATOR_DEFAULTS_H
#define HISCORE_ALLOCATOR_DEFAULTS_H

/* The jemalloc options hiscored starts with (its malloc_conf); MALLOC_CONF overrides them. */
const char *hiscore_allocator_defaults(void);

#endif
