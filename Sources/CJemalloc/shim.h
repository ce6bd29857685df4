#ifndef HISCORE_CJEMALLOC_SHIM_H
#define HISCORE_CJEMALLOC_SHIM_H
// Debian's jemalloc has no je_ prefix: linking it replaces the process malloc.
#include <jemalloc/jemalloc.h>
#endif
