/* Must NOT compile (the Makefile checks that it fails, naming the macro): an application may not
 * choose HISCORE_MAX_SUBSCRIPTIONS. It sizes hiscore_client, which libhiscore.a was compiled
 * with; another value would make the library write past the application's struct. */
#define HISCORE_MAX_SUBSCRIPTIONS 64
#include "hiscore.h"

int hiscore_abi_override(void);
int hiscore_abi_override(void) { return (int)sizeof(hiscore_client); }
