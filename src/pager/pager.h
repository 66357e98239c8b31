/*
 * The pager core: building pageout clusters, putting them to backing store,
 * dropping them when done (the origin's uvm_mk_pcluster, uvm_pager_put and
 * uvm_pager_dropcluster), and the page-in completion that mirrors them.
 * Everything here runs with the engine lock held.
 */
#ifndef UVMPAGER_PAGER_H
#define UVMPAGER_PAGER_H

#include "objects/uobj.h"
#include "swap/ioeng.h"

struct engine;

/* Waits for the requests of one synchronous operation. */
struct pager_sync {
	unsigned pending;
	int error;
};

/*
 * One I/O on a contiguous run of an object's pages: the unit the bounded
 * pool hands out (the origin's pager_map).
 */
/* The largest run of slots one swap I/O covers. */
#define PAGER_IO_MAX_PAGES (IO_MAX_IOV * 4)

struct pager_io {
	struct io_req req;
	struct uobj *obj;
	size_t start, n;      /* pages [start, start + n) of obj */
	size_t center;        /* page of interest, or SIZE_MAX */
	uint64_t slot;        /* aobj: first slot of the run */
	int flags;
	bool retried;
	bool emergency;       /* from the page daemon's reserve */
	bool journaled;       /* a read noted in its client's page-in journal */
	struct pager_sync *sync;
	struct pager_io *next_free;   /* in the pool, or on a deferred list */
	/* a swap read's pages whose checksum matched, checked before the lock */
	uint64_t crc_ok[PAGER_IO_MAX_PAGES / 64];
};

#define PAGER_POOL_SIZE 256

int pager_pool_init(struct engine *e);
void pager_pool_fini(struct engine *e);
/*
 * Take an I/O descriptor. may_wait callers sleep until one returns,
 * except inside an I/O completion, which gets NULL instead; the page
 * daemon (pdaemon = true) never sleeps: it gets the emergency reserve,
 * or NULL.
 */
struct pager_io *pager_io_get(struct engine *e, bool may_wait, bool pdaemon);
void pager_io_put(struct engine *e, struct pager_io *pio);
/* Submit pio->req with done = the pager's completion, counting it in flight. */
int pager_io_submit(struct engine *e, struct pager_io *pio);

/*
 * Generic cluster builder. The caller made `center` busy. Bounds come from
 * the object's cluster op, clamped to [mlo, mhi) unless PGO_ALLPAGES; a
 * cluster wider than maxpages falls back to one page. Scans backward, then
 * forward, stopping at the first page that is not resident, busy or clean
 * (or active without PGO_DOACTCLUST). Enrolled pages become BUSY_OUT.
 * Returns the page count and sets *start.
 */
size_t pager_mk_pcluster(struct uobj *o, size_t center, size_t maxpages,
			 int flags, size_t mlo, size_t mhi, size_t *start);

/*
 * Page out `center` (BUSY_OUT, made so by the caller), clustered by the
 * object. PGO_SYNCIO waits; otherwise completion happens in the aiodone
 * context. PGO_EVICT drops the pages once they are safely written.
 */
int pager_put(struct uobj *o, size_t center, int flags, size_t mlo, size_t mhi,
	      struct pager_sync *sync);

/*
 * Drop a cluster: wake the waiters of every page, release pages whose
 * object went away, unbusy the rest; after a successful pageout
 * (PGO_PDFREECLUST) mark them clean, and with PGO_EVICT drop them.
 * PGO_REALLOCSWAP gives back the slots of every page but `center`.
 */
void pager_dropcluster(struct uobj *o, size_t center, size_t start, size_t n,
		       int flags);

/* Page in [start, start + n): the caller made the pages BUSY_IN. */
int pager_get(struct uobj *o, size_t start, size_t n);
/* The same for read-ahead: submitted at once, never deferred (nobody waits on it yet). */
int pager_get_async(struct uobj *o, size_t start, size_t n);

/* aobj/vnode op helpers */
void pager_cluster_window(struct uobj *o, size_t idx, size_t *lo, size_t *hi);
/* Fill pio->req's iovecs with the engine view of its pages. */
void pager_io_fill_iov(struct pager_io *pio, size_t bytes_last);

/*
 * The object lets go of [start, start + n): slots and memory are freed;
 * pages with I/O in flight are marked released and freed by completion.
 * Returns how many pages of the range were PG_GONE (unmapped behind our
 * back): whatever the program mapped there is not ours to zero.
 */
size_t pager_release_range(struct uobj *o, size_t start, size_t n);

/*
 * The program discarded [start, start + n) itself (UFFD_EVENT_REMOVE of
 * its own madvise): released like pager_release_range, but for pages it
 * may still map, whose discard waits for proof that the madvise zapped
 * them (page.h, PGF_DISCARD). Returns the PG_GONE pages, as release does.
 */
size_t pager_discard_range(struct uobj *o, size_t start, size_t n);

/*
 * Settle idx's PGF_DISCARD (page.h): released if the client has no pte
 * left for it (true), kept with the flag cleared if it is still mapped.
 * Lock held; the page is not busy.
 */
bool pager_discard_settle(struct uobj *o, size_t idx);

/*
 * The client's view of [start, start + n) was unmapped behind our back
 * (UFFD_EVENT_UNMAP): released like pager_release_range, and PG_GONE from
 * then on, so no fill or read-around brings a page back there and no
 * fence ever names the range again (it may hold someone else's memory).
 */
void pager_unmapped_range(struct uobj *o, size_t start, size_t n);

/* Drop resident pages [start, start + n) from memory (no I/O). */
int pager_punch(struct uobj *o, size_t start, size_t n);

/* The fence's pipe (zap.c), made with the engine and closed with it. */
int zap_init(struct engine *e);
void zap_fini(struct engine *e);
/*
 * The fence: zap every PTE of [start, start + n) of o in every process,
 * keeping the pages' data (zap.c). 0; or < 0 with *done pages zapped
 * from start on, the rest untouched, and -EIO when the *lost pages after
 * those lost their data (no memory to put it back). Lock held.
 */
int pager_zap(struct uobj *o, size_t start, size_t n, size_t *done, size_t *lost);

#endif
