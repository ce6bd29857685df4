#ifndef HISCORE_CPROTOBUFC_SHIM_H
#define HISCORE_CPROTOBUFC_SHIM_H
#include <protobuf-c/protobuf-c.h>
#endif
