#ifndef HISCORE_CPROTOBUFC_SHIM_H
#define HISCORE_CPROTOBUFC_SHIM_H
#include <protobuf-c/protobuf-c.h>

/* The static "" that protobuf-c's generated initializers give absent `string` fields (an array of
   unknown size, which Swift cannot import as a value). */
static inline const char *hiscore_protobuf_c_empty_string(void) { return protobuf_c_empty_string; }
#endif
