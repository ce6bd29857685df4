// Compile-only check: hiscore.h is usable from C++.
#include "hiscore.h"

int hiscore_cxx_check(void);
int hiscore_cxx_check(void) {
    hiscore_client c;
    hiscore_entry e;
    (void)e;
    int st = hiscore_connect(&c, "127.0.0.1", HISCORE_DEFAULT_PORT, 10);
    hiscore_close(&c);
    return st == HISCORE_OK ? 0 : 1;
}
