/*
 * Dirty tracking: which resident pages of a client view were written
 * since the engine last looked.
 *
 * The one rule every backend keeps: a page may be reported written when
 * it was not, never the other way round. "Not written" is what lets the
 * engine drop a page without writing it out.
 *
 * The ladder, best first:
 *   wp-async    uffd async write-protect + PAGEMAP_SCAN (6.7+): exact,
 *               atomic get-and-clear, no fault per write.
 *   wp-sync     uffd sync write-protect (5.19+ on shmem): exact; the
 *               engine serves one WP fault per first write and learns of
 *               writes that way.
 *   soft-dirty  pagemap bit 55 + clear_refs: cannot prove any page
 *               clean in a running process (see track.c), so it reports
 *               every page written. Chosen only when uffd-wp on shmem is
 *               missing.
 */
#ifndef UVMPAGER_FAULT_TRACK_H
#define UVMPAGER_FAULT_TRACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "fault/uffd.h"

enum track_mode {
	TRACK_AUTO,
	TRACK_WP_ASYNC,
	TRACK_SOFT_DIRTY,
	TRACK_WP_SYNC,
};

/* "auto", "wp-async", "soft-dirty", "wp-sync"; NULL for a bad value. */
const char *track_mode_name(enum track_mode m);
/* 0 or -EINVAL. */
int track_mode_parse(const char *s, enum track_mode *out);

/* Can this kernel run mode m? AUTO: can it run any. */
bool track_mode_offered(const struct uffd_caps *caps, enum track_mode m);
/* AUTO picks the best offered mode; a forced mode not offered is -EOPNOTSUPP. */
int track_mode_pick(const struct uffd_caps *caps, enum track_mode want, enum track_mode *out);
/*
 * UFFDIO_API features the mode needs on the client's uffd, on top of the
 * fault service's own (MISSING_SHMEM, MINOR_SHMEM, events).
 */
uint64_t track_uffd_features(enum track_mode m);
/* Should pages faulted in by a read be installed write-protected (UFFD_F_WP)? */
bool track_install_wp(enum track_mode m);

struct tracker;

/*
 * A tracker for the address space of pid (0: the caller's own). The
 * mode must be a concrete one (not AUTO). Opens /proc/<pid>/pagemap,
 * which needs ptrace-read access to the target. 0 or -errno; wp-async
 * without PAGEMAP_SCAN is -EOPNOTSUPP.
 */
int tracker_create(enum track_mode m, pid_t pid, struct tracker **out);
void tracker_destroy(struct tracker *t);
enum track_mode tracker_mode(const struct tracker *t);

/*
 * Both calls below cover npages pages from addr (page-aligned, in the
 * target's address space, registered with ufd in UFFD_WP mode for the
 * wp modes) and overwrite bits [0, npages) of `written`, which holds at
 * least DIV_ROUND_UP(npages, 64) words. Bit i stands for page i.
 * 0 or -errno; on error every bit is set, since unknown counts as
 * written.
 */

/*
 * Get-and-clear: sets bit i if page i was written since its previous
 * collect or since it was installed writable, and leaves the whole
 * range write-protected, atomically with the read.
 *   wp-async: exact. A page with no pte (never mapped in this view, or
 *             zapped after a write) reads as written and gets a wp
 *             marker, so it reads clean next time.
 *   wp-sync:  write-protects the range; bits stay 0 because the engine
 *             learns of every write through its WP fault.
 *   soft-dirty: every bit set.
 */
int tracker_collect(struct tracker *t, int ufd, uintptr_t addr, size_t npages, uint64_t *written);

/*
 * After the range was fenced (MADV_DONTNEED on the client view) and
 * before any fault on it is resolved: sets bit i unless page i provably
 * was not written since its last collect or write-protected install.
 * The only proof is the uffd-wp pte marker the zap leaves for a pte that
 * was still write-protected. Anything else reads as written: no pte at
 * all is both "written, then zapped" and "never mapped in the client
 * view" (only in the page cache), which cannot be told apart; a present
 * pte means something was installed after the fence, over whatever the
 * zap left.
 *   wp-async, wp-sync: as above (PAGEMAP_SCAN; /proc/pid/pagemap bit 57
 *                      on kernels without it).
 *   soft-dirty: every bit set.
 */
int tracker_fenced_written(struct tracker *t, int ufd, uintptr_t addr, size_t npages,
			   uint64_t *written);

/*
 * For pages whose ptes something other than the engine's fence may have
 * dropped since they were write-protected (a fault on a page the engine
 * did not fence): sets bit i unless page i provably was not written
 * since its last collect or write-protected install, which its pte, or
 * the uffd-wp marker a zap left for it, shows by still carrying the
 * uffd-wp bit. Unlike tracker_fenced_written, a present pte that is
 * still write-protected is proof too: nothing installs one over a
 * written page without asking here or there first. No pte at all reads
 * as written. On error every bit is set.
 *   wp-async, wp-sync: /proc/pid/pagemap bit 57.
 *   soft-dirty: every bit set.
 */
int tracker_unprotected(struct tracker *t, uintptr_t addr, size_t npages, uint64_t *written);

/*
 * Sets bit i unless page i provably has no pte left that maps it: a zap
 * (MADV_DONTNEED) leaves pte_none, or a uffd-wp marker for a pte that
 * was write-protected. A present pte, and any other swap-type entry (a
 * migration entry: the page comes back), read as mapped. On error every
 * bit is set: "may still be written through a pte" is the safe answer.
 * Any mode (it reads /proc/pid/pagemap).
 */
int tracker_mapped(struct tracker *t, uintptr_t addr, size_t npages, uint64_t *mapped);


/*
 * Is the tracked address space still there? False once the process
 * exited or exec'd (its pagemap then reads as empty); true where that
 * cannot be told.
 */
bool tracker_mm_alive(struct tracker *t);

#endif
