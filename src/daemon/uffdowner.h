/*
 * Whether the userfaultfd a client handed over belongs to its own address
 * space. The kernel binds a userfaultfd to the mm of the process that
 * created it and shows that binding nowhere: its fdinfo has counters
 * only, and kcmp(KCMP_FILE) proves only that two processes hold the same
 * file, not whose mm it serves. Another process's userfaultfd (a forked
 * child's, a descriptor handed over by someone else) would have the
 * daemon register, serve and write pages in that other mm. What the
 * kernel does show is a registration's effect on a VMA: /proc/PID/smaps
 * flags a registered VMA "um" (missing faults), "ui" (minor) or "uw"
 * (write-protect). So the daemon proves ownership by its first
 * registration: the client's VMA at that address was registered with no
 * userfaultfd before, and is after.
 */
#ifndef UVMPAGERD_UFFDOWNER_H
#define UVMPAGERD_UFFDOWNER_H

#include <stdint.h>
#include <sys/types.h>

/*
 * The VMA of pid that contains addr: 1 when it is registered with some
 * userfaultfd, 0 when not, -ENOENT when no VMA contains addr, or -errno
 * (/proc/PID/smaps could not be read). Reads smaps up to that VMA only
 * (the kernel walks each VMA's page tables to print it: a cost to pay
 * once per client, not per request).
 */
int vma_uffd_registered(pid_t pid, uint64_t addr);

#endif
