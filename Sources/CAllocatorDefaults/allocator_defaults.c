#include "allocator_defaults.h"

/*
 * hiscored's jemalloc defaults, read by jemalloc at start-up before MALLOC_CONF (which overrides
 * any of them: docs/operations.md, "jemalloc tuning").
 *
 * oversize_threshold:131072 -- allocations of 128 KiB and more get jemalloc's oversize arena,
 * whose freed pages go back to the system at once (its decay is 0), instead of staying resident
 * for the default 10 s. Such allocations on the request path are a big batch's arrays (a submit
 * of 1,000 items needs ~1.2 MB while it runs); with 16 batches in flight their freed pages held
 * ~20 MB of the peak resident set. The engine's own large blocks already have such an arena
 * (PromptLargeBlocks). Measured (two shards, 1M players preloaded, then submit, rank, page and
 * mixed at P16): peak RSS 106-112 MB -> 97-98 MB, CPU per call within the runs' noise.
 */
const char *malloc_conf = "oversize_threshold:131072";
