/*
 * userfaultfd: capability probe and thin wrappers around the ioctls the
 * fault service and the tracker use.
 *
 * Every call returns a negative errno on failure. The resolution calls
 * (copy, continue, poison) hide the kernel's partial-progress protocol:
 * they retry until the whole range is done, and a page that is already
 * present is skipped and counted rather than failing the call.
 */
#ifndef UVMPAGER_FAULT_UFFD_H
#define UVMPAGER_FAULT_UFFD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fault/uffd_compat.h"

/* What this kernel offers, learned once at start on throwaway objects. */
struct uffd_caps {
	uint64_t features;		/* what UFFDIO_API offers */
	bool dev_userfaultfd;		/* /dev/userfaultfd hands out uffds */
	bool missing_shmem;		/* registering a memfd mapping in that mode works */
	bool minor_shmem;
	bool wp_shmem;
	bool wp_async;
	bool wp_unpopulated;
	bool poison;
	bool pagemap_scan;		/* PAGEMAP_SCAN works on /proc/self/pagemap */
	bool soft_dirty;		/* a write after clear_refs(4) sets pagemap bit 55 */
	bool event_remove;
	bool event_unmap;
	bool event_remap;
	bool event_fork;
	bool continue_wp;		/* UFFDIO_CONTINUE_MODE_WP (6.6+): map a cached page clean */
	bool thp_shmem_forced;		/* shmem THP is always/force: 4 KiB faults populate 2 MiB */
};

/*
 * Fills caps. Side effect worth knowing: the soft-dirty check writes 4
 * to /proc/self/clear_refs, which write-protects every pte of the
 * calling process once (a burst of minor faults afterwards).
 * Returns 0, or -errno when no userfaultfd can be had at all.
 */
int uffd_probe(struct uffd_caps *caps);

/*
 * A new userfaultfd (O_CLOEXEC | O_NONBLOCK) with UFFDIO_API done for
 * `features`: the userfaultfd(2) syscall first, /dev/userfaultfd when the
 * syscall is refused. -EOPNOTSUPP if the kernel lacks a requested
 * feature. *got (may be NULL) receives the features the fd now has.
 */
int uffd_create(uint64_t features, uint64_t *got);

/*
 * UFFDIO_API on a userfaultfd created elsewhere (a client's, passed over
 * a socket): the daemon does it so that privileged features are checked
 * against the daemon. Same returns as uffd_create.
 */
int uffd_api(int fd, uint64_t features, uint64_t *got);

/* Registration modes, combined with |. */
#define UFFD_MISSING (1u << 0)
#define UFFD_MINOR (1u << 1)
#define UFFD_WP (1u << 2)

/* *ioctls (may be NULL) receives the range ioctls the kernel allows (1 << _UFFDIO_*). */
int uffd_register(int ufd, void *addr, size_t len, unsigned modes, uint64_t *ioctls);
int uffd_unregister(int ufd, void *addr, size_t len);

/* Flags for the resolution calls. */
#define UFFD_F_WP (1u << 0)		/* install write-protected (clean) */
#define UFFD_F_DONTWAKE (1u << 1)	/* leave faulting threads asleep; wake later with uffd_wake() */

/*
 * Resolution calls. `addr`/`dst` and `len` are page-aligned. Return the
 * number of pages skipped because something was already mapped there
 * (their waiters are woken unless UFFD_F_DONTWAKE), or -errno:
 * -ESRCH/-ENOENT when the target mm is gone or the range no longer
 * registered, -EAGAIN when the target's layout keeps changing (a
 * fork/remap/remove/unmap event is waiting to be read from this uffd:
 * read it and retry), -EFAULT for uffd_continue on a page that is not
 * in the page cache.
 */
int uffd_copy(int ufd, void *dst, const void *src, size_t len, unsigned flags);
int uffd_continue(int ufd, void *addr, size_t len, unsigned flags);
int uffd_poison(int ufd, void *addr, size_t len, unsigned flags);	/* -EOPNOTSUPP without kernel support */

int uffd_wake(int ufd, void *addr, size_t len);

/*
 * Is the layout at page settled: the page's mapping registered with ufd,
 * and no fork, remap, remove or unmap of that mm raised and still unread
 * on ufd? The kernel raises the uffd's mmap_changing count before it
 * moves or unmaps anything (under the mmap lock) and drops it once the
 * event is read, and every fill ioctl refuses with EAGAIN meanwhile. So
 * an answer by address read before this call (a pte seen missing) is
 * about the mapping still there when this returns 1. The probe is a
 * UFFDIO_ZEROPAGE, which fills only a page missing from the memory file:
 * the caller must know the page is in it (resident; lock held), so it
 * can only fail (EEXIST: settled). 1 settled, 0 changing or not
 * registered there, -errno otherwise (-EIO if it filled the page).
 */
int uffd_layout_settled(int ufd, void *page);

/*
 * Sets (protect) or clears write protection on a range registered with
 * UFFD_WP. Clearing wakes threads waiting on a WP fault there unless
 * UFFD_F_DONTWAKE. 0 or -errno.
 */
int uffd_writeprotect(int ufd, void *addr, size_t len, bool protect, unsigned flags);

/*
 * Reads up to max pending messages without blocking (the fd must be
 * O_NONBLOCK, as uffd_create makes it). Returns the count read, 0 when
 * none is pending, or -errno.
 */
int uffd_read_msgs(int ufd, struct uffd_msg *msgs, int max);

#endif
