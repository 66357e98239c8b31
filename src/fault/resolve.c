/*
 * Resolving a fault from the page states: zero-fill (and fill-around, and
 * fill-ahead for a program filling fresh memory) for untouched pages,
 * read-around from swap or file for paged-out ones, with read-ahead for a
 * stream, a plain map for pages still in memory (fenced by the page
 * daemon), and a park on pages with I/O in flight. Faults are held back
 * here while a budget is full. Runs under the engine lock; the reads a
 * fault waits on are deferred to the fault thread (pager_defer_begin).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"
#include "engine_impl.h"
#include "fault/uffd_compat.h"
#include "pager/pager.h"

/*
 * Read-ahead of a stream: windows of two clusters, four in flight (1 GiB
 * re-read under 256 MiB through the daemon: 451 MiB/s with none, 677
 * with two windows, 733 with four; 256 KiB windows did worse).
 */
#define RA_PAGES(e) ((size_t)(e)->cfg.cluster_pages * 2)
#define RA_DEPTH 4u

static size_t room_under(size_t budget, size_t resident)
{
	if (!budget)
		return SIZE_MAX;
	return budget > resident ? budget - resident : 0;
}

/* Pages o may still bring in before a budget (global, client, object) is full. */
static size_t budget_room(struct engine *e, struct uobj *o)
{
	size_t room;

	if (e->throttle_off)
		return SIZE_MAX;
	room = MIN(room_under(e->budget, e->resident), room_under(o->budget, o->cnt.resident));
	if (o->client)
		room = MIN(room, room_under(o->client->budget, o->client->resident));
	return room;
}

static bool over_budget(struct engine *e, struct uobj *o, size_t add)
{
	return budget_room(e, o) < add;
}

/* Hold a fault back until the page daemon has made room. */
static bool throttle(struct engine *e, struct uobj *o, size_t idx, bool write)
{
	if (!over_budget(e, o, 1))
		return false;
	if (e->nthrottle == e->capthrottle) {
		size_t ncap = e->capthrottle ? e->capthrottle * 2 : 64;
		struct throttled *nt = realloc(e->throttle, ncap * sizeof(*nt));

		if (!nt)
			return false;   /* no memory to park it: serve it over budget */
		e->throttle = nt;
		e->capthrottle = ncap;
	}
	e->throttle[e->nthrottle++] = (struct throttled){ o, idx, write };
	e->throttled_faults++;
	engine_wake_pdaemon(e);
	return true;
}

/* The page's only copy is lost: the toucher dies by SIGBUS, never reads garbage. */
static void kill_toucher(struct engine *e, struct uobj *o, size_t idx)
{
	struct client *c = o->client;

	int r = uffd_poison(c->ufd, (void *)uobj_caddr(o, idx), PAGE_SIZE, 0);

	if (r >= 0)
		return;
	/* the layout is changing (an event not read yet): fault again, poison then */
	if (r == -EAGAIN) {
		uffd_wake(c->ufd, (void *)uobj_caddr(o, idx), PAGE_SIZE);
		return;
	}
	kill(c->pid, SIGBUS);
}

static void read_ahead(struct engine *e, struct uobj *o, size_t from);

/*
 * Fault-around for fenced pages: a program walking through memory the
 * hand fenced (a sort's partition passes, a scan of an array) would take
 * a fault per page, each costing a round trip through us where the
 * kernel's own fault costs a microsecond. So while fenced faults walk
 * (each near the one before), their aligned window of fenced neighbours
 * is mapped too, growing fourfold up to the kernel's fault-around size;
 * a scattered fault maps its page alone, so random use keeps the
 * reference test page by page. Pages mapped around are no longer fenced,
 * so the eviction end passes over them as over touched ones, but they
 * earn no second chance (PGF_REF) and are not counted as touched: the
 * hand fences them again on its next pass.
 */
#define FENCED_AROUND_MAX 16u

/*
 * A walk's window, read-around's and fenced fault-around's: fourfold up
 * to max while each fault lands within twice the window of the one before
 * (ahead of it only, or on either side), else back to first.
 */
static size_t walk_window(size_t *last, size_t *win, size_t idx, bool either_side,
			  size_t first, size_t max)
{
	bool near = either_side ? idx + 2 * *win >= *last && idx <= *last + 2 * *win
				: idx > *last && idx <= *last + 2 * *win;

	*win = *win && near ? MIN(*win * 4, max) : MIN(first, max);
	*last = idx;
	return *win;
}

/*
 * Map the fenced resident pages of idx's window but idx itself, in runs
 * of one write-protect flag. Their writes before the fence show only as
 * a missing marker, read first (as map_resident does) when a clean one
 * is among them. A run the kernel
 * refuses stays unmapped but no longer counts as fenced: its next fault
 * reads its evidence as an unfenced page's (pager_sync_unfenced), and
 * the hand fences it again.
 */
static void map_fenced_around(struct engine *e, struct uobj *o, size_t idx, size_t win)
{
	struct client *c = o->client;
	size_t lo = idx & ~(win - 1), hi = MIN(lo + win, o->npages), run = 0, n = 0;
	unsigned runfl = 0;

	for (size_t p = lo; p < hi; p++) {
		pgword_t w = uobj_get(o, p);

		if (p != idx && pg_state(w) == PG_CLEAN && pg_has(w, PGF_INACTIVE) &&
		    !pg_has(w, PGF_FRESH)) {
			pager_sync_dirty(o, lo, hi - lo, false);
			break;
		}
	}
	for (size_t p = lo; p <= hi; p++) {
		bool take = false;
		unsigned fl = 0;

		if (p < hi && p != idx) {
			pgword_t w = uobj_get(o, p);
			enum pg_state st = pg_state(w);

			take = (st == PG_CLEAN || st == PG_DIRTY) && pg_has(w, PGF_INACTIVE) &&
			       !pg_has(w, PGF_DISCARD) && !pg_has(w, PGF_RAMARK);
			if (take && st == PG_CLEAN && !o->ops->read_only) {
				if (!e->continue_wp)
					pager_page_dirtied(o, p);
				else
					fl = UFFD_F_WP;
			}
		}
		if (n && (!take || fl != runfl)) {
			if (uffd_continue(c->ufd, (void *)uobj_caddr(o, run), n << PAGE_SHIFT, runfl))
				uffd_wake(c->ufd, (void *)uobj_caddr(o, run), n << PAGE_SHIFT);
			n = 0;
		}
		if (!take)
			continue;
		if (!n) {
			run = p;
			runfl = fl;
		}
		n++;
		uobj_set(o, p, uobj_get(o, p) & ~(PGF_INACTIVE | PGF_FRESH));
		e->fenced_around++;
	}
}

static void map_resident(struct engine *e, struct uobj *o, size_t idx, bool write)
{
	struct client *c = o->client;
	pgword_t w = uobj_get(o, idx);
	unsigned fl = 0;
	size_t win = 1;
	int r;

	/*
	 * A fenced page's writes before the fence show only as a missing
	 * marker, and mapping it back write-protected would erase that:
	 * read the evidence first. So for a page not fenced, whose pte went
	 * some other way (pager_sync_unfenced); a read-ahead marker page was
	 * never mapped, and a fresh one is fenced.
	 */
	if (pg_state(w) == PG_CLEAN && !write && !pg_has(w, PGF_FRESH)) {
		if (pg_has(w, PGF_INACTIVE))
			pager_sync_dirty(o, idx, 1, false);
		else if (!pg_has(w, PGF_RAMARK))
			pager_sync_unfenced(o, idx);
	}
	/* mapped writable, it can be written unseen: it counts as dirty */
	if ((write || !e->continue_wp) && !o->ops->read_only &&
	    pg_state(uobj_get(o, idx)) == PG_CLEAN)
		pager_page_dirtied(o, idx);
	w = uobj_get(o, idx);
	if (pg_state(w) == PG_CLEAN && e->continue_wp && !o->ops->read_only)
		fl = UFFD_F_WP;
	/* touched while fenced: that is a reference */
	if (pg_has(w, PGF_INACTIVE)) {
		w = (w & ~(PGF_INACTIVE | PGF_FRESH)) | PGF_REF;
		o->fenced_touched++;
		e->faults_fenced++;
		win = walk_window(&o->fa_last, &o->fa_win, idx, true, 1, FENCED_AROUND_MAX);
	}
	uobj_set(o, idx, w & ~PGF_RAMARK);
	r = uffd_continue(c->ufd, (void *)uobj_caddr(o, idx), PAGE_SIZE, fl);
	/* cannot be mapped: let the toucher retry rather than hang (mapped already: woken) */
	if (r < 0)
		uffd_wake(c->ufd, (void *)uobj_caddr(o, idx), PAGE_SIZE);
	if (win > 1)
		map_fenced_around(e, o, idx, win);
	if (pg_has(w, PGF_RAMARK)) {
		/* the stream reached the window read ahead: read the one after it */
		e->ra_hits++;
		o->ra_last = idx;
		read_ahead(e, o, idx + RA_DEPTH * RA_PAGES(e));
	}
}

/*
 * Install n zero pages at start. The memfd allocates them (fallocate) and
 * CONTINUE maps them, which zeroes them in the kernel as its own fault
 * would; UFFDIO_COPY from a buffer of zeros costs a copy per page and is
 * kept for kernels that cannot CONTINUE a page write-protected (6.1).
 */
static int install_zeros(struct engine *e, struct uobj *o, size_t start, size_t n, bool wp)
{
	void *addr = (void *)uobj_caddr(o, start);
	int r = 0;

	if (!wp || e->continue_wp) {
		if (fallocate(o->memfd, FALLOC_FL_KEEP_SIZE, uobj_memoff(o, start),
			      (off_t)n << PAGE_SHIFT) == 0)
			return uffd_continue(o->client->ufd, addr, n << PAGE_SHIFT,
					     wp ? UFFD_F_WP : 0);
		/* without memory for the pages, fall through: no fallocate, no partial state */
		pager_punch(o, start, n);
	}
	for (size_t done = 0; done < n && r >= 0; done += e->cfg.readahead_pages) {
		size_t k = MIN(n - done, (size_t)e->cfg.readahead_pages);

		r = uffd_copy(o->client->ufd, (char *)addr + (done << PAGE_SHIFT), e->zeros,
			      k << PAGE_SHIFT, wp ? UFFD_F_WP : 0);
	}
	return r;
}

/*
 * A fill that did not map exactly the range: some pages were mapped
 * already (EEXIST, skipped) or the kernel gave up part-way (EAGAIN while
 * an event waits, after some pages went in). Which pages it mapped is not
 * told, and a page mapped but recorded EMPTY was written unseen: the next
 * collect re-protected it without a word (its state took no write), a
 * later fill marked it clean with no slot, and it read back as zeros
 * after its eviction (torture seed 480537895: a fork child's copy, and
 * the parent's own page). So every page the client maps now is recorded
 * dirty (its content is the memfd's, whatever was written); the others
 * stay EMPTY and fault again. Lock held. Returns the pages recorded.
 */
static size_t fill_settle(struct engine *e, struct uobj *o, size_t start, size_t n)
{
	uint64_t stackmap[4], *mapped = stackmap;
	size_t words = DIV_ROUND_UP(n, 64), got = 0;

	if (words > ARRAY_SIZE(stackmap))
		mapped = malloc(words * sizeof(uint64_t));
	if (!mapped || !o->client->tr ||
	    tracker_mapped(o->client->tr, uobj_caddr(o, start), n, mapped) < 0) {
		/* not known: every page may be mapped, and dirty is always safe */
		if (mapped && mapped != stackmap)
			free(mapped);
		mapped = NULL;
	}
	for (size_t i = 0; i < n; i++) {
		pgword_t w = uobj_get(o, start + i);

		if (pg_state(w) != PG_EMPTY || (mapped && !bitmap_test(mapped, i)))
			continue;
		uobj_set(o, start + i, pg_make(PG_DIRTY, w & PGF_QUEUED, 0));
		got++;
	}
	if (mapped != stackmap)
		free(mapped);
	o->cnt.zero_fills += got;
	e->zero_fills += got;
	return got;
}

/*
 * Install n zero pages at start that may lie in several of the client's
 * mappings, and record the pages installed: clean if write-protected,
 * else dirty. A view is one mapping until the program splits it (mprotect,
 * mlock, madvise of part of it), and one UFFDIO_CONTINUE or COPY must lie
 * in one mapping: across a boundary the kernel refuses it all (ENOENT).
 * The window is then halved until each part fits, so every page is still
 * installed; refusing the whole window instead would wake the toucher
 * only to fault again into the same window, forever. A page no mapping
 * takes (unmapped behind our back, its UNMAP event unread) stays EMPTY,
 * its allocation punched. Returns the pages installed.
 */
static size_t fill_zeros(struct engine *e, struct uobj *o, size_t start, size_t n, bool wp)
{
	int r;

	if (!n)
		return 0;
	r = install_zeros(e, o, start, n, wp);
	if (r == -ENOENT) {
		/* refused before mapping any: let go of what install_zeros allocated */
		pager_punch(o, start, n);
		if (n == 1)
			return 0;
		return fill_zeros(e, o, start, n / 2, wp) +
		       fill_zeros(e, o, start + n / 2, n - n / 2, wp);
	}
	if (r != 0)
		return fill_settle(e, o, start, n);
	for (size_t i = start; i < start + n; i++)
		uobj_set(o, i, pg_make(wp ? PG_CLEAN : PG_DIRTY, uobj_get(o, i) & PGF_QUEUED, 0));
	o->cnt.zero_fills += n;
	e->zero_fills += n;
	return n;
}

/*
 * Zero-fill window: the read-around size for scattered first touches,
 * doubling up to ZF_MAX_PAGES while they walk forward, so a program
 * filling fresh memory takes one fault per 2 MiB and one touching it
 * here and there is given only a little more than it touches.
 */
#define ZF_MAX_PAGES 512

static size_t zero_fill_window(struct engine *e, struct uobj *o, size_t idx)
{
	size_t min = e->cfg.readahead_pages;

	if (o->zf_win && idx >= o->zf_next && idx < o->zf_next + o->zf_win)
		o->zf_win = MIN(o->zf_win * 2, (size_t)ZF_MAX_PAGES);
	else
		o->zf_win = min;
	while (o->zf_win > min && over_budget(e, o, o->zf_win))
		o->zf_win /= 2;
	return o->zf_win;
}

/*
 * A program filling fresh memory at full speed: the next window is
 * zero-filled too, once the faulting thread is already on its way, so the
 * program's writes overlap with this thread's work instead of waiting for
 * it at every window (first touch of 2 GiB: 1.51x plain's time without,
 * see bench/README.md for with).
 */
static void zero_fill_ahead(struct engine *e, struct uobj *o, size_t from)
{
	size_t hi = MIN(from + ZF_MAX_PAGES, o->npages), t = from;
	bool wp = e->install_wp;

	if (over_budget(e, o, ZF_MAX_PAGES))
		return;
	while (t < hi && pg_state(uobj_get(o, t)) == PG_EMPTY)
		t++;
	if (t == from)
		return;
	fill_zeros(e, o, from, t - from, wp);
	o->zf_next = t;
}

/*
 * First touch: zero-fill the untouched neighbours within the window too,
 * so a sequential first pass takes one fault per window. Neighbours, and
 * the page itself on a read, are installed clean (they equal zeros, which
 * needs no slot); a write starts dirty.
 */
static void zero_fill_around(struct engine *e, struct uobj *o, size_t idx, bool write)
{
	size_t win = zero_fill_window(e, o, idx);
	size_t lo = ALIGN_DOWN(idx, win), hi = MIN(lo + win, o->npages);
	size_t s = idx, t = idx + 1;
	bool wp = e->install_wp;

	if (over_budget(e, o, win))
		lo = idx, hi = idx + 1;
	while (s > lo && pg_state(uobj_get(o, s - 1)) == PG_EMPTY)
		s--;
	while (t < hi && pg_state(uobj_get(o, t)) == PG_EMPTY)
		t++;
	o->zf_next = t;
	if (write && wp) {
		/* neighbours clean, the written page dirty: no second (WP) fault */
		fill_zeros(e, o, s, idx - s, true);
		fill_zeros(e, o, idx + 1, t - idx - 1, true);
		fill_zeros(e, o, idx, 1, false);
	} else {
		fill_zeros(e, o, s, t - s, wp);
	}
	if (pg_state(uobj_get(o, idx)) == PG_EMPTY) {
		/* not installed: wake the toucher to fault again, never leave it asleep */
		uffd_wake(o->client->ufd, (void *)uobj_caddr(o, idx), PAGE_SIZE);
		return;
	}
	if (win == ZF_MAX_PAGES && t == hi)
		zero_fill_ahead(e, o, t);
}

/*
 * Read-around window: one page for scattered faults, growing fourfold up
 * to the cluster size while faults walk forward, so a sequential pass takes
 * one fault per cluster and a random one reads only what it touches. (By
 * doubling, a 64 KiB piece read back took 5 faults: 1+2+4+8+1 pages.)
 */
static size_t readahead_window(struct engine *e, struct uobj *o, size_t idx)
{
	return walk_window(&o->ra_last, &o->ra_win, idx, false, e->cfg.readahead_min, e->ra_max);
}

/*
 * A read that could not start. The get op put back the pages of the runs
 * it did not start (runs already started complete as usual): wake every
 * fault parked on those, to fault again, never to sleep on.
 */
static void get_failed(struct uobj *o, size_t start, size_t n)
{
	for (size_t i = start; i < start + n; i++) {
		pgword_t w = uobj_get(o, i);
		struct fault_wait *waits;

		if (pg_state(w) == PG_BUSY_IN)
			continue;
		uobj_set(o, i, w & ~(PGF_WANTED | PGF_RAMARK));
		if (!pg_has(w, PGF_WANTED))
			continue;
		uobj_wait_take(o, i, 1, &waits);
		free(waits);
		uffd_wake(o->client->ufd, (void *)uobj_caddr(o, i), PAGE_SIZE);
	}
}

/* The state of a page that waits in swap (aobj) or in the file (vnode, device). */
static enum pg_state paged_out_state(const struct uobj *o)
{
	return o->ops->zero_fill ? PG_SWAPPED : PG_EMPTY;
}

/*
 * Asynchronous read-ahead for a stream: the window of RA_PAGES after
 * `from` comes in while the program still works through what it has.
 * Its first page is left unmapped (PGF_RAMARK): the stream's touch of it
 * is a minor fault that starts the next window, so a sequential pass
 * keeps one window in flight ahead of it without faulting on every
 * window (the kernel's PG_readahead marker).
 */
static void read_ahead(struct engine *e, struct uobj *o, size_t from)
{
	enum pg_state want = paged_out_state(o);
	/* under a small budget, a smaller window: the page daemon keeps some room */
	size_t n = MIN((size_t)RA_PAGES(e), budget_room(e, o) / 2);
	size_t hi = MIN(from + n, o->npages), t = from;
	int r;

	if (from >= o->npages || n < e->cfg.readahead_pages)
		return;
	while (t < hi && pg_state(uobj_get(o, t)) == want)
		t++;
	if (t == from)
		return;
	for (size_t i = from; i < t; i++) {
		pgword_t w = uobj_get(o, i) & ~(PGF_INACTIVE | PGF_REF | PGF_FRESH);

		uobj_set(o, i, pg_set_state(w, PG_BUSY_IN) | (i == from ? PGF_RAMARK : 0));
	}
	/* nobody waits on it: the I/O engine does it, not this thread */
	r = pager_get_async(o, from, t - from);
	if (r < 0) {
		get_failed(o, from, t - from);
		return;
	}
	o->cnt.readahead += t - from;
	e->readahead += t - from;
}

/*
 * Read-around: the faulting page and the following pages that wait in
 * swap (aobj) or in the file (vnode, device) come in with one fault; runs
 * of contiguous slots become one read each. The fault waits on the page
 * until its read completes. A stream also reads ahead.
 */
static void page_in_around(struct engine *e, struct uobj *o, size_t idx, bool write)
{
	size_t win = readahead_window(e, o, idx);
	enum pg_state want = pg_state(uobj_get(o, idx));
	size_t t = idx + 1, hi = MIN(idx + MIN(win, MAX(budget_room(e, o), 1)), o->npages);

	while (t < hi && pg_state(uobj_get(o, t)) == want)
		t++;
	for (size_t i = idx; i < t; i++) {
		pgword_t w = uobj_get(o, i) & ~(PGF_INACTIVE | PGF_REF | PGF_FRESH | PGF_RAMARK);

		if (i == idx)
			w |= PGF_REF;
		uobj_set(o, i, pg_set_state(w, PG_BUSY_IN));
	}
	uobj_wait_add(o, idx, write);
	if (pager_get(o, idx, t - idx) < 0) {
		get_failed(o, idx, t - idx);
		return;
	}
	if (win == e->ra_max && t == hi)
		for (unsigned k = 0; k < RA_DEPTH; k++)
			read_ahead(e, o, t + k * RA_PAGES(e));
}

static void serve(struct engine *e, struct uobj *o, size_t idx, bool write)
{
	pgword_t w = uobj_get(o, idx);

	/*
	 * Discarded by the program while it may have been mapped (page.h,
	 * PGF_DISCARD): a fault says its pte is gone, but a fault held back
	 * (throttled, parked) may find it mapped again since: look first.
	 */
	if (pg_has(w, PGF_DISCARD) && !pg_busy(w)) {
		pager_discard_settle(o, idx);
		w = uobj_get(o, idx);
	}
	switch (pg_state(w)) {
	case PG_BUSY_IN:
	case PG_BUSY_OUT:
		uobj_wait_add(o, idx, write);
		break;
	case PG_BAD:
		kill_toucher(e, o, idx);
		break;
	case PG_GONE:
		/* not ours since it was unmapped: the toucher retries and finds its own */
		uffd_wake(o->client->ufd, (void *)uobj_caddr(o, idx), PAGE_SIZE);
		break;
	case PG_DIRTY:
	case PG_CLEAN:
		map_resident(e, o, idx, write);
		break;
	case PG_EMPTY:
	case PG_SWAPPED:
		if (throttle(e, o, idx, write))
			break;
		if (pg_state(w) == PG_EMPTY && o->ops->zero_fill)
			zero_fill_around(e, o, idx, write);
		else
			page_in_around(e, o, idx, write);
		pdaemon_poke(e, o);
		break;
	}
}

/* What a fault found, counted once when it arrives (a resumed fault is not counted again). */
static void count_kind(struct engine *e, struct uobj *o, pgword_t w)
{
	switch (pg_state(w)) {
	case PG_BUSY_IN:
	case PG_BUSY_OUT:
		e->faults_wait++;
		break;
	case PG_DIRTY:
	case PG_CLEAN:
		e->faults_minor++;
		break;
	case PG_SWAPPED:
		e->faults_major++;
		o->refaults++;
		break;
	case PG_EMPTY:
		if (o->ops->zero_fill)
			e->faults_first++;
		else
			e->faults_major++;
		break;
	default:
		break;
	}
}

void fault_handle(struct engine *e, struct uobj *o, size_t idx, bool write, bool wp)
{
	if (wp) {
		/*
		 * Synchronous write-protect: a first write to a clean page.
		 * Not a reference: it usually follows the install at once.
		 * Counting it would split the fill's pages between two hand
		 * passes and break up pageout clusters.
		 */
		e->faults_wp++;
		pager_page_dirtied(o, idx);
		/*
		 * Refused while the layout changes (EAGAIN until an event of
		 * this uffd is read, maybe by this very thread): the toucher
		 * faults again rather than sleep on a fault nobody answers.
		 */
		if (uffd_writeprotect(o->client->ufd, (void *)uobj_caddr(o, idx),
				      PAGE_SIZE, false, 0) < 0)
			uffd_wake(o->client->ufd, (void *)uobj_caddr(o, idx), PAGE_SIZE);
		return;
	}
	o->cnt.faults++;
	e->faults++;
	count_kind(e, o, uobj_get(o, idx));
	serve(e, o, idx, write);
}

void fault_resume(struct engine *e, struct uobj *o, struct fault_wait *w, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (o->dying)
			uffd_wake(o->client->ufd, (void *)uobj_caddr(o, w[i].idx), PAGE_SIZE);
		else
			serve(e, o, w[i].idx, w[i].write);
	}
}

void fault_resume_throttled(struct engine *e)
{
	struct throttled *t = e->throttle;
	size_t n = e->nthrottle;

	/* serve() may hold faults back again: they go to a fresh list */
	e->throttle = NULL;
	e->nthrottle = e->capthrottle = 0;
	for (size_t i = 0; i < n; i++) {
		struct uobj *o = t[i].o;

		if (o->dying)
			uffd_wake(o->client->ufd, (void *)uobj_caddr(o, t[i].idx), PAGE_SIZE);
		else
			serve(e, o, t[i].idx, t[i].write);
	}
	free(t);
}
