// Compile-only check: hiscore.h is usable from C++.
#include "hiscore.h"

int hiscore_cxx_check(void);
int hiscore_cxx_check(void) {
    hiscore_client c;
    hiscore_entry e;
    hiscore_batch_item item = {};
    hiscore_batch_result result;
    hiscore_board_details details;
    hiscore_id id;
    hiscore_auth_info auth;
    (void)e;
    (void)item;
    (void)result;
    (void)details;
    (void)id;
    (void)auth;
    int st = hiscore_connect(&c, "127.0.0.1", HISCORE_DEFAULT_PORT, 10);
    hiscore_close(&c);
    return st == HISCORE_OK ? 0 : 1;
}
