/*
 * Pager core: cluster, put, dropcluster and the page-in completion
 * (DESIGN.md §2, after the origin's uvm_pager.c). Runs under the engine
 * lock; I/O completes in the I/O engine's thread (the aiodone context),
 * or for a read a fault waits on, in the fault thread itself
 * (pager_run_deferred), which takes the lock and finishes the job here.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/util.h"
#include "engine_impl.h"
#include "pager/pager.h"
#include "swap/csum.h"

int pager_pool_init(struct engine *e)
{
	e->pool_mem = calloc(PAGER_POOL_SIZE + 1, sizeof(*e->pool_mem));
	if (!e->pool_mem)
		return -ENOMEM;
	for (size_t i = 0; i < PAGER_POOL_SIZE; i++) {
		e->pool_mem[i].next_free = e->pool_free;
		e->pool_free = &e->pool_mem[i];
	}
	e->pool_emergency = &e->pool_mem[PAGER_POOL_SIZE];
	e->pool_emergency->emergency = true;
	pthread_cond_init(&e->pool_cond, NULL);
	return 0;
}

void pager_pool_fini(struct engine *e)
{
	free(e->pool_mem);
	e->pool_mem = NULL;
	pthread_cond_destroy(&e->pool_cond);
}

/*
 * Set while this thread completes I/O (pager_io_done). Work started from
 * a completion (a resumed fault's read-ahead) must not wait for a free
 * descriptor: only completions free them, and this thread may be the one
 * that runs them all (the io_uring reaper): it would wait for itself.
 */
static __thread bool completing;

struct pager_io *pager_io_get(struct engine *e, bool may_wait, bool pdaemon)
{
	struct pager_io *pio;

	for (;;) {
		if (e->pool_free) {
			pio = e->pool_free;
			e->pool_free = pio->next_free;
			break;
		}
		/*
		 * The page daemon must not sleep here: the I/O it would wait
		 * for may need memory it is supposed to free. It gets the
		 * reserve (the later NetBSD's emergva), or gives up for now.
		 */
		if (pdaemon) {
			if (e->emergency_used)
				return NULL;
			e->emergency_used = true;
			pio = e->pool_emergency;
			break;
		}
		if (!may_wait || completing)
			return NULL;
		pthread_cond_wait(&e->pool_cond, &e->lock);
	}
	bool emergency = pio->emergency;

	memset(pio, 0, sizeof(*pio));
	pio->emergency = emergency;
	pio->center = SIZE_MAX;
	return pio;
}

void pager_io_put(struct engine *e, struct pager_io *pio)
{
	/* a read that never started (or ended): its pages hide nothing now */
	pager_journal_clear(pio);
	if (pio->emergency) {
		e->emergency_used = false;
	} else {
		pio->next_free = e->pool_free;
		e->pool_free = pio;
	}
	pthread_cond_broadcast(&e->pool_cond);
}

static void put_done(struct engine *e, struct pager_io *pio);
static void get_done(struct engine *e, struct pager_io *pio);

/*
 * A swap read's checksums, before the engine lock: the pages are BUSY_IN,
 * so nothing else touches them or their slots, and the checksum table has
 * its own lock. Under the lock, 128-page read-ahead windows spent ~40 us
 * each here while every fault waited.
 */
static size_t req_bytes(const struct io_req *req);

/*
 * A swap read of several pages failed as a whole (EIO on one block fails
 * the whole request): read each page alone, so only the pages whose own
 * block is unreadable are lost, not the read-around neighbours read with
 * them. Synchronous, outside the lock, on this error path only; the pages
 * are BUSY_IN, as in check_read. A page counts only when its checksum
 * matches too.
 */
static void reread_pages(struct engine *e, struct pager_io *pio)
{
	struct uobj *o = pio->obj;

	for (size_t i = 0; i < pio->n; i++) {
		void *page = uobj_eaddr(o, pio->start + i);
		ssize_t got;

		do
			got = pread(pio->req.fd, page, PAGE_SIZE,
				    (off_t)((pio->slot + i) << PAGE_SHIFT));
		while (got < 0 && errno == EINTR);
		if (got == PAGE_SIZE &&
		    crc32c(0, page, PAGE_SIZE) == swap_csum_get(e->swap, pio->slot + i))
			pio->crc_ok[i / 64] |= 1ULL << (i % 64);
	}
}

static void check_read(struct engine *e, struct pager_io *pio)
{
	struct uobj *o = pio->obj;

	memset(pio->crc_ok, 0, sizeof(pio->crc_ok));
	if (!o->ops->swap_backed)
		return;
	if (pio->req.result != (ssize_t)req_bytes(&pio->req)) {
		if (pio->n > 1)
			reread_pages(e, pio);
		return;
	}
	for (size_t i = 0; i < pio->n; i++)
		if (crc32c(0, uobj_eaddr(o, pio->start + i), PAGE_SIZE) ==
		    swap_csum_get(e->swap, pio->slot + i))
			pio->crc_ok[i / 64] |= 1ULL << (i % 64);
}

static void pager_io_done(struct io_req *req)
{
	struct pager_io *pio = container_of(req, struct pager_io, req);
	struct uobj *o = pio->obj;
	struct engine *e = o->eng;

	if (req->op == IO_READ)
		check_read(e, pio);
	engine_lock_fault(e);
	completing = true;
	if (req->op == IO_WRITE)
		put_done(e, pio);
	else
		get_done(e, pio);
	completing = false;
	o->inflight--;
	e->inflight--;
	pthread_cond_broadcast(&e->io_cond);
	/* a read frees nothing: waking the page daemon for it only costs a switch */
	if (req->op == IO_WRITE || e->nthrottle)
		engine_wake_pdaemon(e);
	pthread_mutex_unlock(&e->lock);
}

void pager_plug(struct engine *e)
{
	e->plugged = true;
}

void pager_unplug(struct engine *e)
{
	e->plugged = false;
	if (e->nplug) {
		unsigned n = e->nplug;

		e->nplug = 0;
		/* ioeng_submit never completes a request inline, so the lock may stay held. */
		ioeng_submit(e->io, e->plug, n);
	}
}

static __thread struct pager_io **deferred;

void pager_defer_begin(struct pager_io **list)
{
	*list = NULL;
	deferred = list;
}

void pager_defer_end(void)
{
	deferred = NULL;
}

void pager_run_deferred(struct pager_io *pio)
{
	while (pio) {
		struct pager_io *next = pio->next_free;
		struct engine *e = pio->obj->eng;

		if (ioeng_run(e->io, &pio->req) < 0) {
			pio->req.result = -EINVAL;
			pager_io_done(&pio->req);
		}
		pio = next;
	}
}

/*
 * Give the read its pages before it starts: an O_DIRECT read into a hole
 * of the memfd cannot pin the page without a fault, so io_uring would
 * hand it to a worker thread (measured: 112 -> 83 us per 4 KiB swap-in).
 */
static void prefault_read(struct io_req *req)
{
	for (int i = 0; i < req->iovcnt; i++)
		madvise(req->iov[i].iov_base, req->iov[i].iov_len, MADV_POPULATE_WRITE);
}

_Static_assert(PAGER_POOL_SIZE + 1 <= UVMP_JOURNAL_ENTRIES,
	       "every pager_io of the pool needs a journal entry");

static struct uvmp_journal *journal_entry(struct pager_io *pio)
{
	struct client *c = pio->obj->client;
	struct engine *e = pio->obj->eng;

	if (!c || !c->journal)
		return NULL;
	return &c->journal[pio - e->pool_mem];
}

void pager_journal_note(struct pager_io *pio)
{
	struct uvmp_journal *j = journal_entry(pio);

	if (!j)
		return;
	j->addr = uobj_caddr(pio->obj, pio->start);
	/* the agent trusts addr once len is set: len goes last */
	__atomic_store_n(&j->len, (uint64_t)pio->n << PAGE_SHIFT, __ATOMIC_RELEASE);
	pio->journaled = true;
}

void pager_journal_clear(struct pager_io *pio)
{
	struct uvmp_journal *j;

	if (!pio->journaled)
		return;
	pio->journaled = false;
	j = journal_entry(pio);
	if (j)
		__atomic_store_n(&j->len, 0, __ATOMIC_RELEASE);
}

void pager_journal_move(struct uobj *o)
{
	struct engine *e = o->eng;

	for (size_t i = 0; i <= PAGER_POOL_SIZE; i++) {
		struct pager_io *pio = &e->pool_mem[i];
		struct uvmp_journal *j;

		if (!pio->journaled || pio->obj != o || !(j = journal_entry(pio)))
			continue;
		/* the old range first, so the entry never names neither */
		__atomic_store_n(&j->len, 0, __ATOMIC_RELEASE);
		j->addr = uobj_caddr(o, pio->start);
		__atomic_store_n(&j->len, (uint64_t)pio->n << PAGE_SHIFT, __ATOMIC_RELEASE);
	}
}

int pager_io_submit(struct engine *e, struct pager_io *pio)
{
	struct io_req *req = &pio->req;

	/* before anything can put the read's pages in the page cache */
	if (req->op == IO_READ)
		pager_journal_note(pio);

	req->done = pager_io_done;
	req->priv = pio;
	pio->obj->inflight++;
	e->inflight++;
	if (pio->sync)
		pio->sync->pending++;
	/*
	 * A fault waiting on this read: the fault thread does it itself once
	 * it has let go of the lock, so the completion needs no hand-off
	 * between threads (165 -> 85 us median per random fault). Its preadv
	 * faults the pages in itself.
	 */
	if (deferred && req->op == IO_READ) {
		pio->next_free = *deferred;
		*deferred = pio;
		return 0;
	}
	if (req->op == IO_READ)
		prefault_read(req);
	if (e->plugged) {
		e->plug[e->nplug++] = req;
		if (e->nplug == ARRAY_SIZE(e->plug)) {
			pager_unplug(e);
			e->plugged = true;
		}
		return 0;
	}
	return ioeng_submit(e->io, &req, 1);
}

void pager_io_fill_iov(struct pager_io *pio, size_t bytes_last)
{
	struct uobj *o = pio->obj;

	/* The engine view is contiguous: a run of pages is a single iovec. */
	pio->req.iovcnt = 1;
	pio->req.iov[0].iov_base = uobj_eaddr(o, pio->start);
	pio->req.iov[0].iov_len = ((pio->n - 1) << PAGE_SHIFT) + bytes_last;
}

static size_t req_bytes(const struct io_req *req)
{
	size_t b = 0;

	for (int i = 0; i < req->iovcnt; i++)
		b += req->iov[i].iov_len;
	return b;
}

int pager_punch(struct uobj *o, size_t start, size_t n)
{
	if (fallocate(o->memfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		      uobj_memoff(o, start), (off_t)n << PAGE_SHIFT) < 0)
		return -errno;
	return 0;
}

void pager_page_dirtied(struct uobj *o, size_t idx)
{
	pgword_t w = uobj_get(o, idx);

	switch (pg_state(w)) {
	case PG_CLEAN:
		/* The copy on disk is stale from now on: give its slot back. */
		if (pg_slot(w) && o->ops->releasepg)
			o->ops->releasepg(o, idx);
		w = uobj_get(o, idx);
		uobj_set(o, idx, pg_set_slot(pg_set_state(w, PG_DIRTY), 0));
		break;
	case PG_BUSY_OUT:
		uobj_set(o, idx, w | PGF_WRITTEN);
		break;
	default:
		break;
	}
}

void pager_cluster_window(struct uobj *o, size_t idx, size_t *lo, size_t *hi)
{
	size_t win = o->eng->cfg.cluster_pages;

	*lo = ALIGN_DOWN(idx, win);
	*hi = MIN(*lo + win, o->npages);
}

size_t pager_mk_pcluster(struct uobj *o, size_t center, size_t maxpages,
			 int flags, size_t mlo, size_t mhi, size_t *start)
{
	size_t lo, hi, first = center, n = 1;
	unsigned enroll = PGF_WASDIRTY | ((flags & PGO_EVICT) ? PGF_EVICT : 0);

	o->ops->cluster(o, center, &lo, &hi);
	if (!(flags & PGO_ALLPAGES)) {
		lo = MAX(lo, mlo);
		hi = MIN(hi, mhi);
	}
	*start = center;
	if (hi - lo > maxpages)
		return 1;

	for (int forward = 0; forward <= 1; forward++) {
		size_t cur = center;

		for (;;) {
			pgword_t w;

			if (forward) {
				if (++cur >= hi)
					break;
			} else {
				if (cur == 0 || --cur < lo)
					break;
			}
			w = uobj_get(o, cur);
			if (pg_state(w) != PG_DIRTY && pg_state(w) != PG_CLEAN)
				break;          /* not resident, or busy */
			if (!pg_has(w, PGF_INACTIVE)) {
				if (!(flags & PGO_DOACTCLUST))
					break;  /* mapped pages are not wanted */
				/* re-check the dirty bit of a mapped clean page, once */
				if (pg_state(w) == PG_CLEAN && o->is_modified &&
				    o->is_modified(o, cur)) {
					pager_page_dirtied(o, cur);
					w = uobj_get(o, cur);
				}
			}
			if (pg_state(w) == PG_CLEAN)
				break;          /* already clean */
			if (pinned_keep(o, cur, w))
				break;          /* stays dirty and resident (pinned.c) */
			uobj_set(o, cur, pg_set_state(w, PG_BUSY_OUT) | enroll);
			if (!forward)
				first = cur;
			n++;
		}
	}
	*start = first;
	return n;
}

int pager_put(struct uobj *o, size_t center, int flags, size_t mlo, size_t mhi,
	      struct pager_sync *sync)
{
	struct engine *e = o->eng;
	struct pager_sync local = { 0 };
	size_t start = center, n = 1;
	int r;

	if (!o->ops->put)
		return -EROFS;
	if ((flags & PGO_SYNCIO) && !sync)
		sync = &local;
	if (o->ops->mk_pcluster)
		n = o->ops->mk_pcluster(o, center, e->cfg.cluster_pages, flags,
					mlo, mhi, &start);
	if (flags & PGO_EVICT) {
		o->evicting += n;
		e->evicting += n;
	}
	r = o->ops->put(o, start, n, center, flags, sync);
	if ((flags & PGO_SYNCIO) && sync == &local) {
		pager_unplug(e);
		while (local.pending)
			pthread_cond_wait(&e->io_cond, &e->lock);
		if (!r)
			r = local.error;
	}
	return r;
}

static void evicting_done(struct uobj *o, pgword_t w)
{
	if (pg_has(w, PGF_EVICT)) {
		o->evicting--;
		o->eng->evicting--;
	}
}

/* State a clean page takes when it leaves memory. */
static pgword_t evicted_word(const struct uobj *o, pgword_t w)
{
	unsigned keep = w & PGF_QUEUED;

	if (o->ops->swap_backed && pg_slot(w))
		return pg_make(PG_SWAPPED, keep, pg_slot(w));
	return pg_make(PG_EMPTY, keep, 0);
}

static void release_page(struct uobj *o, size_t idx)
{
	pgword_t w = uobj_get(o, idx);

	if (pg_slot(w) && o->ops->releasepg)
		o->ops->releasepg(o, idx);
	uobj_set(o, idx, pg_make(pg_has(w, PGF_GONE) ? PG_GONE : PG_EMPTY,
				 uobj_get(o, idx) & PGF_QUEUED, 0));
}

void pager_unmapped_range(struct uobj *o, size_t start, size_t n)
{
	size_t run = SIZE_MAX;

	for (size_t i = start; i <= start + n; i++) {
		pgword_t w = i < start + n ? uobj_get(o, i) : 0;
		bool gone = i == start + n || pg_state(w) == PG_GONE;

		/*
		 * Pages already gone keep their memory: after a raw mremap
		 * moved them, the new mapping uses it (remap_part).
		 */
		if (gone && run != SIZE_MAX) {
			pager_punch(o, run, i - run);
			run = SIZE_MAX;
		}
		if (gone)
			continue;
		if (run == SIZE_MAX)
			run = i;
		if (pg_busy(w)) {
			uobj_set(o, i, w | PGF_RELEASED | PGF_GONE);
		} else {
			uobj_set(o, i, w | PGF_GONE);
			release_page(o, i);
		}
	}
}

size_t pager_release_range(struct uobj *o, size_t start, size_t n)
{
	size_t run = SIZE_MAX, ngone = 0;

	for (size_t i = start; i <= start + n; i++) {
		pgword_t w = i < start + n ? uobj_get(o, i) : 0;
		bool gone = i == start + n || pg_state(w) == PG_GONE;

		/* a gone page's memory may be a moved view's now (remap_part) */
		if (gone && run != SIZE_MAX) {
			pager_punch(o, run, i - run);
			run = SIZE_MAX;
		}
		if (gone) {
			ngone += i < start + n;
			continue;
		}
		if (run == SIZE_MAX)
			run = i;
		switch (pg_state(w)) {
		case PG_EMPTY:
			break;
		case PG_BUSY_IN:
		case PG_BUSY_OUT:
			/* unmapped while its I/O runs: gone once it ends */
			ngone += pg_has(w, PGF_GONE);
			uobj_set(o, i, w | PGF_RELEASED);
			break;
		default:
			release_page(o, i);
			break;
		}
	}
	return ngone;
}

/* May the client still map it? Resident, not fenced, not being read in. */
static bool maybe_mapped(pgword_t w)
{
	enum pg_state st = pg_state(w);

	return (st == PG_DIRTY || st == PG_CLEAN || st == PG_BUSY_OUT) &&
	       !pg_has(w, PGF_INACTIVE);
}

size_t pager_discard_range(struct uobj *o, size_t start, size_t n)
{
	size_t ngone = 0, run = start;

	/*
	 * A fenced page, or one not in memory, has no pte: every touch after
	 * the madvise faults, behind this event. Those go at once. The others
	 * may be written through their ptes once the madvise returned (which
	 * it did when the event was read), whether it zaps them or is refused
	 * (MADV_FREE): they wait for proof of the zap (page.h).
	 */
	for (size_t i = start; i <= start + n; i++) {
		pgword_t w = i < start + n ? uobj_get(o, i) : 0;

		if (i < start + n && !maybe_mapped(w))
			continue;
		if (i > run)
			ngone += pager_release_range(o, run, i - run);
		run = i + 1;
		if (i < start + n)
			uobj_set(o, i, w | PGF_DISCARD);
	}
	return ngone;
}

bool pager_discard_settle(struct uobj *o, size_t idx)
{
	struct client *c = o->client;
	pgword_t w = uobj_get(o, idx);
	uint64_t mapped = 1;

	if (!pg_has(w, PGF_DISCARD) || pg_busy(w))
		return false;
	/* a client gone or not answering: keep the data (old data, never lost data) */
	if (c && !c->dead && c->tr)
		tracker_mapped(c->tr, uobj_caddr(o, idx), 1, &mapped);
	/*
	 * No pte at the address proves the zap only if the mapping is still
	 * there: a raw mremap or munmap of it moves its ptes away before its
	 * event is read (then the uffd's layout is changing), and one read
	 * and not yet handled leaves the object at the old address (seed
	 * 111269866: released at the old address, the moved page read zeros).
	 * Unsure, the page is kept as if the zap was refused. The probe needs
	 * the page in the memory file (uffd_layout_settled): resident.
	 */
	if (!(mapped & 1) &&
	    ((pg_state(w) != PG_DIRTY && pg_state(w) != PG_CLEAN) ||
	     c->remaps_pending || c->unmaps_pending ||
	     uffd_layout_settled(c->ufd, (void *)uobj_caddr(o, idx)) != 1))
		mapped = 1;
	if (mapped & 1) {
		/*
		 * Refused (MADV_FREE), or a zap still on its way: the program
		 * keeps what it wrote, and reads old data rather than zeros
		 * if the zap comes after all.
		 */
		uobj_set(o, idx, w & ~PGF_DISCARD);
		return false;
	}
	pager_release_range(o, idx, 1);
	return true;
}

/* Punch [start, start + n) where the evict bitmap says so, in runs. */
static void punch_runs(struct uobj *o, size_t start, size_t n, const uint64_t *map)
{
	size_t i = 0;

	while (i < n) {
		size_t j;

		if (!bitmap_test(map, i)) {
			i++;
			continue;
		}
		for (j = i; j < n && bitmap_test(map, j); j++)
			;
		pager_punch(o, start + i, j - i);
		i = j;
	}
}

void pager_dropcluster(struct uobj *o, size_t center, size_t start, size_t n,
		       int flags)
{
	struct engine *e = o->eng;
	uint64_t evict[DIV_ROUND_UP(IO_MAX_IOV * 4, 64)] = { 0 };
	uint64_t *emap = evict;
	struct fault_wait *waits;
	size_t nw;

	if (n > ARRAY_SIZE(evict) * 64) {
		emap = calloc(DIV_ROUND_UP(n, 64), sizeof(uint64_t));
		if (!emap)
			flags &= ~PGO_EVICT;
	}
	for (size_t i = 0; i < n; i++) {
		size_t idx = start + i;
		pgword_t w = uobj_get(o, idx);

		if (idx == center)
			continue;
		evicting_done(o, w);
		if (pg_has(w, PGF_RELEASED)) {
			/* its object let go of it during the I/O */
			release_page(o, idx);
			pager_punch(o, idx, 1);
			continue;
		}
		w &= ~(PGF_WANTED | PGF_EVICT | PGF_WASDIRTY);
		if (flags & PGO_REALLOCSWAP)
			w = pg_set_slot(w, 0);
		/* a pinned page may be written through the pin at any time */
		if ((flags & PGO_PDFREECLUST) && !pg_has(w, PGF_WRITTEN) &&
		    !pg_has(w, PGF_PINNED)) {
			w = pg_set_state(w, PG_CLEAN);
			/* fenced all along: nothing wrote it since it was read for I/O */
			if (pg_has(w, PGF_INACTIVE))
				w |= PGF_FRESH;
			/* a fault waiting on the page keeps it */
			if ((flags & PGO_EVICT) && emap &&
			    !pg_has(uobj_get(o, idx), PGF_WANTED)) {
				w = evicted_word(o, w);
				bitmap_set(emap, i);
				o->cnt.evictions++;
				e->evictions++;
			}
		} else {
			/* failed, or written meanwhile: resident and dirty */
			if ((flags & PGO_PDFREECLUST) && pg_slot(w) && o->ops->releasepg)
				o->ops->releasepg(o, idx);
			w = pg_set_slot(pg_set_state(w, PG_DIRTY), 0);
		}
		uobj_set(o, idx, w & ~PGF_WRITTEN);
	}
	if (flags & PGO_EVICT)
		punch_runs(o, start, n, emap);
	if (emap != evict)
		free(emap);

	nw = uobj_wait_take(o, start, n, &waits);
	/* the centre's waiters are resumed by whoever finishes the centre */
	size_t keep = 0;
	for (size_t i = 0; i < nw; i++)
		if (waits[i].idx != center)
			waits[keep++] = waits[i];
		else
			uobj_wait_add(o, waits[i].idx, waits[i].write);
	if (keep)
		fault_resume(e, o, waits, keep);
	free(waits);
}

/* Finish the centre page of a failed cluster: it stays resident and dirty. */
static void center_failed(struct uobj *o, size_t center)
{
	struct fault_wait *waits;
	pgword_t w = uobj_get(o, center);
	size_t nw;

	evicting_done(o, w);
	if (pg_has(w, PGF_RELEASED)) {
		release_page(o, center);
		pager_punch(o, center, 1);
	} else {
		w &= ~(PGF_WANTED | PGF_EVICT | PGF_WASDIRTY | PGF_WRITTEN);
		uobj_set(o, center, pg_set_slot(pg_set_state(w, PG_DIRTY), 0));
	}
	nw = uobj_wait_take(o, center, 1, &waits);
	if (nw)
		fault_resume(o->eng, o, waits, nw);
	free(waits);
}

static void put_done(struct engine *e, struct pager_io *pio)
{
	struct uobj *o = pio->obj;
	ssize_t want = (ssize_t)req_bytes(&pio->req);
	size_t center = pio->center;
	struct pager_sync *sync = pio->sync;
	int err;

	if (pio->req.result == want) {
		o->cnt.swapouts += pio->n;
		e->swapouts += pio->n;
		pager_dropcluster(o, SIZE_MAX, pio->start, pio->n,
				  PGO_PDFREECLUST | (pio->flags & PGO_EVICT));
		goto out;
	}

	err = pio->req.result < 0 ? (int)pio->req.result : -EIO;
	o->cnt.write_errors++;
	e->write_errors++;
	e->last_write_error = err;
	/*
	 * EIO means the blocks themselves failed: those slots are marked bad
	 * and never reused. Anything else (ENOSPC on a sparse file, ...) is
	 * transient: the slots go back to the pool.
	 */
	if (o->ops->swap_backed) {
		for (size_t i = 0; i < pio->n; i++) {
			uint64_t slot = pio->slot + i;
			bool keep = pio->start + i == center && !pio->retried &&
				    err != -EIO;

			if (err == -EIO)
				swap_mark_bad(e->swap, slot);
			if (!keep)
				swap_free(e->swap, slot, 1);
		}
	}
	/* drop the cluster; retry the centre alone, once */
	pager_dropcluster(o, center, pio->start, pio->n, PGO_REALLOCSWAP);
	if (center != SIZE_MAX && !pio->retried) {
		struct pager_io *retry = pager_io_get(e, false, true);
		pgword_t w = uobj_get(o, center);
		uint64_t slot = pg_slot(w);
		int r = 0;

		if (!retry)
			goto fail_center;
		if (o->ops->swap_backed && err == -EIO) {
			r = swap_alloc(e->swap, 1, 1, &slot);
			if (r < 0) {
				pager_io_put(e, retry);
				goto fail_center;
			}
			uobj_set(o, center, pg_set_slot(w, slot));
			swap_csum_set(e->swap, slot,
				      crc32c(0, uobj_eaddr(o, center), PAGE_SIZE));
		}
		*retry = (struct pager_io){
			.obj = o, .start = center, .n = 1, .center = center,
			.slot = slot, .flags = pio->flags, .retried = true,
			.sync = sync, .emergency = retry->emergency,
		};
		retry->req.op = IO_WRITE;
		retry->req.fd = pio->req.fd;
		retry->req.dev = pio->req.dev;
		retry->req.offset = o->ops->swap_backed ? slot << PAGE_SHIFT
							 : (uint64_t)uobj_memoff(o, center);
		pager_io_fill_iov(retry, MIN(PAGE_SIZE, want - ((pio->n - 1) << PAGE_SHIFT)));
		if (!o->ops->swap_backed)
			retry->req.iov[0].iov_len = MIN(PAGE_SIZE,
				o->backing_size - (uint64_t)uobj_memoff(o, center));
		if (pager_io_submit(e, retry) < 0) {
			pager_io_put(e, retry);
			if (o->ops->swap_backed)
				swap_free(e->swap, slot, 1);
			goto fail_center;
		}
		goto out;
	}
	if (center == SIZE_MAX)
		goto out_err;
fail_center:
	/*
	 * The centre's word still names a slot it owns after a retry, or
	 * when a transient error let it keep its own; after EIO with no
	 * retry that slot was marked bad and freed above.
	 */
	if (o->ops->swap_backed && pg_slot(uobj_get(o, center)) &&
	    (pio->retried || err != -EIO))
		swap_free(e->swap, pg_slot(uobj_get(o, center)), 1);
	center_failed(o, center);
out_err:
	if (sync)
		sync->error = err;
out:
	if (sync)
		sync->pending--;
	pager_io_put(e, pio);
}

int pager_get(struct uobj *o, size_t start, size_t n)
{
	return o->ops->get(o, start, n);
}

int pager_get_async(struct uobj *o, size_t start, size_t n)
{
	struct pager_io **saved = deferred;
	int r;

	deferred = NULL;
	r = o->ops->get(o, start, n);
	deferred = saved;
	return r;
}

static void get_done(struct engine *e, struct pager_io *pio)
{
	struct uobj *o = pio->obj;
	struct client *c = o->client;
	bool ok = pio->req.result == (ssize_t)req_bytes(&pio->req);
	unsigned wp = e->continue_wp && !o->ops->read_only ? UFFD_F_WP : 0;
	uint64_t mapped[PAGER_IO_MAX_PAGES / 64] = { 0 };
	struct fault_wait *waits;
	size_t nw, run = SIZE_MAX, nbad = 0, firstbad = 0;

	for (size_t i = 0; i <= pio->n; i++) {
		size_t idx = pio->start + i;
		bool good = false;

		if (i < pio->n) {
			pgword_t w = uobj_get(o, idx);

			if (pg_has(w, PGF_RELEASED)) {
				release_page(o, idx);
				pager_punch(o, idx, 1);
			} else if (o->ops->swap_backed ? (pio->crc_ok[i / 64] >> (i % 64) & 1)
						       : ok) {
				w &= ~(PGF_WANTED | PGF_INACTIVE | PGF_FRESH);
				uobj_set(o, idx, pg_set_state(w, PG_CLEAN));
				/* a read-ahead marker stays unmapped: its touch is the signal */
				good = !pg_has(w, PGF_RAMARK);
				/* mapped writable below: it counts as dirty */
				if (good && !wp && !o->ops->read_only)
					pager_page_dirtied(o, idx);
				o->cnt.swapins++;
				e->swapins++;
			} else {
				/*
				 * The only copy cannot be read back: never hand
				 * the garbage to the program.
				 */
				w &= ~PGF_WANTED;
				if (o->ops->swap_backed)
					swap_mark_bad(e->swap, pg_slot(w));
				uobj_set(o, idx, pg_set_state(w, PG_BAD));
				pager_punch(o, idx, 1);
				o->cnt.read_errors++;
				e->read_errors++;
				if (!nbad++)
					firstbad = idx;
			}
		}
		if (good && run == SIZE_MAX)
			run = idx;
		if (!good && run != SIZE_MAX) {
			/* map the run into the client (zero copy: the page cache is shared) */
			if (c && !c->dead &&
			    uffd_continue(c->ufd, (void *)uobj_caddr(o, run),
					  (idx - run) << PAGE_SHIFT, wp) < 0)
				/* the waiters retry and fault again */
				uffd_wake(c->ufd, (void *)uobj_caddr(o, run),
					  (idx - run) << PAGE_SHIFT);
			else if (c && !c->dead)
				for (size_t k = run; k < idx; k++)
					bitmap_set(mapped, k - pio->start);
			run = SIZE_MAX;
		}
	}
	/* every page is checked and mapped, or punched: nothing left to hide */
	pager_journal_clear(pio);
	if (nbad)
		engine_log(e, 3, "object %llu (pid %d): %zu page(s) of %zu-%zu unreadable (%s), "
			   "first at offset %#llx: the only copy is lost, their touchers get SIGBUS",
			   (unsigned long long)o->id, c ? (int)c->pid : 0, nbad, pio->start,
			   pio->start + pio->n - 1, ok ? "checksum mismatch" : "read error",
			   (unsigned long long)firstbad << PAGE_SHIFT);
	nw = uobj_wait_take(o, pio->start, pio->n, &waits);
	/*
	 * A fault parked on a page the CONTINUE above mapped was woken by it:
	 * served again it would only find the page mapped (a pagemap read, a
	 * CONTINUE refused with EEXIST, two wakes, per major fault). A write
	 * among them meets the page mapped write-protected: it comes back as
	 * a write-protect fault (wp-sync) or shows in the next collect
	 * (wp-async), as any write to a clean page; without CONTINUE_MODE_WP
	 * the page was mapped writable and counted dirty above.
	 */
	size_t keep = 0;

	for (size_t i = 0; i < nw; i++)
		if (!bitmap_test(mapped, waits[i].idx - pio->start))
			waits[keep++] = waits[i];
	nw = keep;
	if (nw)
		fault_resume(e, o, waits, nw);
	free(waits);
	pager_io_put(e, pio);
}

/*
 * Nothing is known of page idx's writes: it is dirty unless it cannot
 * have been written (cleaned while fenced, or a read-ahead page never
 * mapped: a write to either would have faulted to us first).
 */
static void sync_page_unknown(struct uobj *o, size_t idx)
{
	pgword_t w = uobj_get(o, idx);

	if (pg_has(w, PGF_INACTIVE) && (pg_has(w, PGF_FRESH) || pg_has(w, PGF_RAMARK)))
		return;
	if (pg_state(w) == PG_CLEAN || pg_state(w) == PG_BUSY_OUT)
		pager_page_dirtied(o, idx);
}

/*
 * Apply the tracker's answers to [start, start + n). A tracker that fails
 * (EINTR, ESRCH, PAGEMAP_SCAN's walk_end short of the range, no memory
 * for the bitmap) has set every bit: an error here means "written", never
 * "clean", and the loop applies it like any answer. Returns the first
 * error, for callers that want to know; the page states are safe either way.
 */
int pager_sync_dirty(struct uobj *o, size_t start, size_t n, bool collect)
{
	return pager_sync_dirty_map(o, start, n, collect, NULL);
}

/*
 * A read fault on a CLEAN page the engine did not fence: its pte went
 * some other way. A fence that failed part-way zapped the ranges before
 * its failing one, and the engine took none of them as fenced (a range
 * the program had just moved away by raw mremap: torture seed
 * 480537895). A write through the write-protected pte before such a zap
 * shows only as the missing uffd-wp bit, and serving the fault maps the
 * page write-protected over that: read it first, as for a fenced page
 * (pager_sync_dirty), but a pte still protected proves the page unwritten
 * too (another fault of the same page mapped it meanwhile). With wp-sync
 * the page states know every write already. Lock held.
 */
void pager_sync_unfenced(struct uobj *o, size_t idx)
{
	struct client *c = o->client;
	uint64_t written = 1;   /* not answered: written */

	if (!c || c->dead || !c->tr || o->ops->read_only || o->eng->track == TRACK_WP_SYNC ||
	    pg_state(uobj_get(o, idx)) != PG_CLEAN)
		return;
	tracker_unprotected(c->tr, uobj_caddr(o, idx), 1, &written);
	if (written & 1)
		pager_page_dirtied(o, idx);
}

/*
 * The collect of [start, start + n) into map (bit i: page start + i), over
 * the runs of pages still o's only. It re-protects what it reports, by
 * address, and a page gone from o may be another object's now at the same
 * address (a part moved by raw mremap and put back into o's hole, a block
 * moved there): its written bit is that object's only evidence of a
 * write, and o, to which the page is GONE, would drop it (torture seed
 * 587261471: lost writes under wp-async). Lock held.
 */
static int collect_live(struct uobj *o, size_t start, size_t n, uint64_t *map)
{
	struct client *c = o->client;
	uint64_t stackrun[DIV_ROUND_UP(256, 64)];
	uint64_t *run = NULL;
	size_t from = start, s, len;
	int err = 0;

	while ((len = uobj_next_live_run(o, &from, start + n, &s))) {
		uint64_t *bits = map;
		int r;

		/* a piece of the window: its bits go to their place in map after */
		if (len < n) {
			if (!run)
				run = n <= ARRAY_SIZE(stackrun) * 64 ? stackrun
					: malloc(DIV_ROUND_UP(n, 64) * sizeof(uint64_t));
			if (!run)
				return -ENOMEM;   /* the caller takes every page as written */
			bits = run;
		}
		/* on failure the tracker has set every bit of the run */
		r = tracker_collect(c->tr, c->ufd, uobj_caddr(o, s), len, bits);
		if (r < 0 && !err)
			err = r;
		if (bits != map)
			for (size_t k = 0; k < len; k++)
				if (bitmap_test(run, k))
					bitmap_set(map, s - start + k);
	}
	if (run != stackrun)
		free(run);
	return err;
}

int pager_sync_dirty_map(struct uobj *o, size_t start, size_t n, bool collect,
			 uint64_t *written)
{
	struct client *c = o->client;
	uint64_t stackmap[DIV_ROUND_UP(256, 64)];
	uint64_t *map = stackmap;
	size_t words = DIV_ROUND_UP(n, 64);
	int r = 0, err = 0;

	/* read-only objects are mapped without write access: never written */
	if (!c || c->dead || !c->tr || o->ops->read_only)
		return 0;
	if (words > ARRAY_SIZE(stackmap)) {
		map = malloc(words * sizeof(uint64_t));
		if (!map) {
			/* no room to ask: every page that could hold a write does */
			for (size_t i = 0; i < n; i++)
				sync_page_unknown(o, start + i);
			if (written)
				memset(written, 0xff, words * sizeof(uint64_t));
			return -ENOMEM;
		}
	}
	/*
	 * Fenced pages first: their written state lives in the absence of a
	 * pte marker, which a collect would overwrite.
	 *
	 * With synchronous write-protect the page states already know every
	 * write (each one faulted): only a collect's re-protection is needed.
	 */
	for (int pass = o->eng->track == TRACK_WP_SYNC; pass < (collect ? 2 : 1); pass++) {
		memset(map, 0, words * sizeof(uint64_t));
		if (pass == 0)
			r = tracker_fenced_written(c->tr, c->ufd, uobj_caddr(o, start), n, map);
		else
			r = collect_live(o, start, n, map);
		if (r < 0) {
			/* the tracker's contract already set every bit; make sure */
			memset(map, 0xff, words * sizeof(uint64_t));
			if (!err)
				err = r;
		}
		if (written && pass == 1)
			for (size_t k = 0; k < words; k++)
				written[k] |= map[k];
		for (size_t i = 0; i < n; i++) {
			pgword_t w;

			if (!bitmap_test(map, i))
				continue;
			w = uobj_get(o, start + i);
			/*
			 * A missing marker only means "written" while the page
			 * is fenced; BUSY_OUT pages were judged when enrolled.
			 * A read-ahead marker page was never mapped at all.
			 */
			if (pass == 0) {
				if (pg_has(w, PGF_INACTIVE) && !pg_has(w, PGF_FRESH) &&
				    !pg_has(w, PGF_RAMARK) && pg_state(w) == PG_CLEAN)
					pager_page_dirtied(o, start + i);
				continue;
			}
			if (pg_state(w) == PG_CLEAN || pg_state(w) == PG_BUSY_OUT) {
				pager_page_dirtied(o, start + i);
				w = uobj_get(o, start + i);
			}
			/* a write is a reference */
			uobj_set(o, start + i, w | PGF_REF);
		}
	}
	if (map != stackmap)
		free(map);
	return err;
}
