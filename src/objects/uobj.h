/*
 * Memory objects: the page table, the pager-ops table and the per-object
 * bookkeeping every object type shares. One engine lock protects all of it.
 */
#ifndef UVMPAGER_UOBJ_H
#define UVMPAGER_UOBJ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "pager/page.h"

struct engine;
struct client;
struct uobj;
struct pager_sync;

enum uobj_type { UOBJ_AOBJ, UOBJ_VNODE, UOBJ_DEVICE };

/* Flags of the pageout calls, named after the origin's PGO_* flags. */
#define PGO_ALLPAGES    0x01  /* any page of the object may join the cluster */
#define PGO_DOACTCLUST  0x02  /* active (mapped) pages may join the cluster */
#define PGO_SYNCIO      0x04  /* wait for the I/O */
#define PGO_PDFREECLUST 0x08  /* pageout succeeded: unbusy + clean the cluster */
#define PGO_REALLOCSWAP 0x10  /* error: give the cluster's slots back */
#define PGO_EVICT       0x20  /* drop the pages once they are clean on disk */
#define PGO_PDAEMON     0x40  /* caller is the page daemon: never sleep */

/*
 * A pager-ops table: one per object type (DESIGN.md §2.1). Operations run
 * with the engine lock held; I/O is started and completes later in the
 * aiodone context.
 */
struct pagerops {
	const char *name;
	/* once at engine start, in table order */
	int (*init)(struct engine *e);
	/*
	 * Page in [start, start + n): every page is BUSY_IN. On failure, the
	 * pages of the runs not started are back in their paged-out state;
	 * runs already started complete as usual. -EAGAIN: no I/O descriptor
	 * was free and the caller may not wait for one (an I/O completion).
	 */
	int (*get)(struct uobj *o, size_t start, size_t n);
	/*
	 * Page out the cluster [start, start + n) around `center` (SIZE_MAX:
	 * none): every page is BUSY_OUT. sync, when not NULL, counts the
	 * requests started.
	 */
	int (*put)(struct uobj *o, size_t start, size_t n, size_t center, int flags,
		   struct pager_sync *sync);
	/* Cluster bounds [*lo, *hi) around idx. */
	void (*cluster)(struct uobj *o, size_t idx, size_t *lo, size_t *hi);
	/* Build a pageout cluster; NULL: never cluster. */
	size_t (*mk_pcluster)(struct uobj *o, size_t center, size_t maxpages,
			      int flags, size_t mlo, size_t mhi, size_t *start);
	/* The page goes away: give back what backs it (its swap slot). */
	void (*releasepg)(struct uobj *o, size_t idx);
	/* A never-touched page reads as zeros without I/O (aobj). */
	bool zero_fill;
	/* Pages are never written (device): mapped read-only, dropped on eviction. */
	bool read_only;
	/* Pages live in swap slots (aobj): write errors can mark slots bad. */
	bool swap_backed;
};

extern const struct pagerops aobj_pagerops;
extern const struct pagerops vnode_pagerops;
extern const struct pagerops device_pagerops;
/* The pager-ops table, in init order (the origin's uvmpagerops[]). */
extern const struct pagerops *const uvm_pagerops[3];

/* A FIFO of page indices. */
struct pgqueue {
	uint32_t *q;
	size_t head, len, cap;
};

/* A fault parked on a busy page until its I/O ends (the origin's PG_WANTED). */
struct fault_wait {
	size_t idx;
	bool write;
};

/* Per-object counters, in pages or events. */
struct uobj_counts {
	size_t resident;    /* in the page cache: DIRTY, CLEAN, BUSY_* */
	size_t dirty;
	size_t swapped;
	size_t bad;
	uint64_t swapins;         /* pages read back in */
	uint64_t swapouts;        /* pages written out */
	uint64_t evictions;       /* pages dropped from memory */
	uint64_t clean_evictions; /* ... of which needed no I/O */
	uint64_t faults;
	uint64_t zero_fills;
	uint64_t readahead;       /* pages read ahead of a stream */
	uint64_t write_errors;
	uint64_t read_errors;
};

struct uobj {
	uint64_t id;
	enum uobj_type type;
	const struct pagerops *ops;
	struct engine *eng;
	struct client *client;
	struct uobj *next;        /* engine's object list */

	size_t npages;
	pgword_t **dir;           /* page table: 512-word chunks, NULL = all EMPTY */
	size_t ndir;

	int memfd;
	/*
	 * Where page 0 lives in memfd and in the backing file: 0 but for a
	 * part of a view the program moved away with a raw mremap, which
	 * keeps mapping its old object's memfd (engine.c, object_split).
	 */
	uint64_t memoff;
	/*
	 * Shared by an object and the parts split off it (NULL until a first
	 * split): the memfd and the engine view of all of it, closed and
	 * unmapped by the last object to go. A split costs no descriptor.
	 */
	struct uobj_memfile {
		int fd;
		char *view;
		size_t len;
		unsigned refs;        /* atomic */
	} *memfile;
	uintptr_t caddr;          /* client view, in the client's address space */
	char *eview;              /* engine view of the memfd, from memoff */

	int backing_fd;           /* vnode/device: the file */
	uint64_t backing_size;

	size_t budget;            /* resident pages allowed; 0 = global budget only */
	struct uobj_counts cnt;

	/*
	 * Resident pages in two queues, oldest first (the origin's active
	 * and inactive page queues): mapped pages, and fenced ones waiting
	 * to be evicted unless touched first. A page's PGF_QUEUED says it
	 * sits in one of them.
	 */
	struct pgqueue active, inactive;

	struct fault_wait *waits;
	size_t nwaits, capwaits;

	/* Re-check a mapped page's dirty bit (mk_pcluster with PGO_DOACTCLUST). */
	bool (*is_modified)(struct uobj *o, size_t idx);

	size_t ra_last, ra_win;   /* read-around: last fault, current window */
	size_t fa_last, fa_win;   /* fault-around of fenced pages (resolve.c): the same */
	size_t zf_next, zf_win;   /* zero-fill: where the last window ended, its size */
	size_t launder_cursor;    /* next window the page daemon launders */
	unsigned inflight;        /* I/O requests in flight */
	size_t evicting;          /* pages BUSY_OUT on their way out */
	/*
	 * Entries at the head of the inactive queue fenced before the
	 * client's last pin scan (pinned.c): only those may be evicted.
	 */
	size_t pin_safe;
	/*
	 * How much of the resident set the hand keeps fenced, in sixteenths
	 * (pdaemon.c, fenced_share_adapt), and what happened since it was
	 * last set: pages fenced, fenced pages touched (a fault each), and
	 * faults on pages in swap.
	 */
	unsigned fenced_share;
	size_t fenced, fenced_touched, refaults;
	bool dying;
	bool pinned;              /* being handed back to its client: never evicted */
	/*
	 * A raw mremap of part of it is being taken in (service.c,
	 * remap_part), which lets go of the lock: the page daemon keeps
	 * away, and a destroy waits for it to end.
	 */
	unsigned remapping;
	/* made of another by a raw mremap (object_split): its id; the server told */
	uint64_t split_from;
	bool announced;
};

#define UOBJ_FENCED_SHARE_MAX 12   /* three quarters */
#define UOBJ_FENCED_SHARE_MIN 2    /* one eighth */

#define UOBJ_CHUNK_SHIFT 9
#define UOBJ_CHUNK (1UL << UOBJ_CHUNK_SHIFT)

int uobj_create(struct engine *e, enum uobj_type type, size_t npages, struct uobj **out);
void uobj_destroy(struct uobj *o);

static inline pgword_t uobj_get(const struct uobj *o, size_t idx)
{
	pgword_t *c = o->dir[idx >> UOBJ_CHUNK_SHIFT];

	return c ? c[idx & (UOBJ_CHUNK - 1)] : 0;
}

/*
 * The one place a page word changes: keeps the counters and the clock
 * queue in step with the state. Returns -ENOMEM only when a chunk of the
 * page table cannot be allocated (the word is then unchanged).
 */
int uobj_set(struct uobj *o, size_t idx, pgword_t w);

int pgqueue_push(struct pgqueue *q, size_t idx);
bool pgqueue_pop(struct pgqueue *q, size_t *idx);

/* Park a fault on a busy page; the page gets PGF_WANTED. */
int uobj_wait_add(struct uobj *o, size_t idx, bool write);
/* Take the parked faults of [start, start + n) out into *out (caller frees). */
size_t uobj_wait_take(struct uobj *o, size_t start, size_t n, struct fault_wait **out);

/*
 * The next run of pages still o's (not pg_gone) in [*from, end): its
 * first page in *start, its length returned (0: none left); *from moves
 * past it. Whatever is done by address in the client goes by these runs:
 * a page gone from o may be anyone's memory now, another object's view
 * among them.
 */
static inline size_t uobj_next_live_run(const struct uobj *o, size_t *from, size_t end,
					size_t *start)
{
	size_t i = *from, j;

	while (i < end && pg_gone(uobj_get(o, i)))
		i++;
	for (j = i; j < end && !pg_gone(uobj_get(o, j)); j++)
		;
	*start = i;
	*from = j;
	return j - i;
}

static inline void *uobj_eaddr(const struct uobj *o, size_t idx)
{
	return o->eview + (idx << 12);
}

/* Offset of page idx in the memfd (and the backing file). */
static inline off_t uobj_memoff(const struct uobj *o, size_t idx)
{
	return (off_t)(o->memoff + ((uint64_t)idx << 12));
}

static inline uintptr_t uobj_caddr(const struct uobj *o, size_t idx)
{
	return o->caddr + (idx << 12);
}

#endif
