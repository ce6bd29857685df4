#ifndef HISCORE_PROCESS_WATCH_H
#define HISCORE_PROCESS_WATCH_H

#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434 /* the same number on every Linux architecture */
#endif

/* pidfd_open(2): a descriptor that turns readable when process `pid` exits (Linux 5.3+), or
 * -1 with errno set. Swift cannot call the variadic syscall(2); glibc 2.36 has no wrapper. */
static inline int hiscore_pidfd_open(pid_t pid) {
    return (int)syscall(SYS_pidfd_open, pid, 0);
}

#endif
