/* Must NOT compile (the Makefile checks that it fails, naming the macro): an application may not
 * choose HISCORE_ENTRY_METADATA_MAX. It sizes hiscore_entry, which libhiscore.a was compiled
 * with; another value would make the library write past the application's arrays. */
#define HISCORE_ENTRY_METADATA_MAX 16
#include "hiscore.h"

int hiscore_abi_override(void);
int hiscore_abi_override(void) { return (int)sizeof(hiscore_entry); }
