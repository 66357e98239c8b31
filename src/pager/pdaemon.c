/*
 * The page daemon: keeps objects under their budgets and the engine under
 * the global one.
 *
 * Victims come from a clock over each object's queue of resident pages.
 * Without an accessed bit to read, the reference signal is the fence
 * itself: the hand first deactivates a page by dropping its client PTEs
 * (as the origin's inactive pages have no mappings); a touch after that is
 * a fault the fault service records as a reference. A page the hand finds
 * still fenced and unreferenced on its next pass is evicted: with no I/O
 * when it is clean, clustered with its fenced dirty neighbours otherwise.
 * When idle, it launders dirty pages so later evictions need no I/O.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "swap/csum.h"

#include "common/util.h"
#include "engine_impl.h"
#include "pager/pager.h"

/* A run of contiguous pages gathered for one syscall. */
struct run {
	size_t start, n;
};

/* Runs of pages to fence, sent to the client in one call. */
struct fence_batch {
	struct run run;                    /* the run being gathered */
	struct run done[ENGINE_FENCE_MAX];
	unsigned ndone;
};

/*
 * The zap lost the data of these pages (no memory to put it back, zap.c):
 * a clean one is read back from its copy, a dirty one is unreadable
 * (SIGBUS for its toucher), never zeros.
 */
static void zap_lost(struct engine *e, struct uobj *o, size_t start, size_t n)
{
	for (size_t p = start; p < start + n; p++) {
		pgword_t w = uobj_get(o, p) & ~(PGF_INACTIVE | PGF_REF | PGF_FRESH | PGF_RAMARK);

		if (pg_state(w) == PG_CLEAN)
			w = o->ops->swap_backed && pg_slot(w) ? pg_set_state(w, PG_SWAPPED)
				: pg_make(PG_EMPTY, w & PGF_QUEUED, 0);
		else
			w = pg_set_state(w, PG_BAD);
		uobj_set(o, p, w);
		pager_punch(o, p, 1);
	}
	engine_log(e, 2, "object %llu: out of memory while fencing pages %zu..%zu: "
		   "their data could not be kept (clean ones are read back, dirty ones give SIGBUS)",
		   (unsigned long long)o->id, start, start + n - 1);
}

/* Zap a run of pages and mark those zapped inactive. */
static void zap_run(struct engine *e, struct uobj *o, size_t start, size_t n)
{
	size_t done, lost;
	int r = pager_zap(o, start, n, &done, &lost);

	for (size_t p = start; p < start + done; p++)
		/* still resident and idle: it was so when enrolled, lock held since */
		uobj_set(o, p, uobj_get(o, p) | PGF_INACTIVE);
	o->fenced += done;
	if (r == -EIO)
		zap_lost(e, o, start + done, lost);
	else if (r < 0)
		engine_log(e, 3, "object %llu: fence of pages %zu..%zu failed: %s (they stay active)",
			   (unsigned long long)o->id, start + done, start + n - 1, strerror(-r));
}

/*
 * After the zap: did an io_uring registration slip in between the scan
 * and the zap? Only a registration made with the pages still mapped
 * (no fault) shows here: one that faulted waits for the lock we hold.
 * Its pin holds the page the zap took out of the memfd, and what the
 * kernel writes through it misses the program's copy. The program cannot
 * be told to wait as O_DIRECT can (it registers by raw syscall): say it
 * loudly.
 */
static void zap_races(struct engine *e, struct uobj *o, struct client *c,
		      const struct fence_batch *b)
{
	for (unsigned i = 0; i < b->ndone; i++)
		for (size_t p = b->done[i].start; p < b->done[i].start + b->done[i].n; p++) {
			if (!pg_has(uobj_get(o, p), PGF_INACTIVE) || !pinned_by_kernel(c, o, p, 1))
				continue;
			e->pin_races++;
			engine_log(e, 2, "pid %d registered a buffer with io_uring while object %llu "
				   "page %zu was being fenced: what the kernel writes through that "
				   "registration is lost", (int)c->pid, (unsigned long long)o->id, p);
		}
}

/*
 * Fence the batch: zap its runs (zap.c) in every mapping of the memfd,
 * nothing else of the client's. Pages the kernel holds pinned stay out:
 * the zap takes the page out of the memfd, and a pin would keep the old
 * one. So the scan that says which are pinned comes right before the
 * zap, after the client's O_DIRECT was told to wait (pinned_fencing),
 * and one more after it. An unknown answer fences nothing.
 */
static void fence_send(struct uobj *o, struct fence_batch *b)
{
	struct engine_range r[ENGINE_FENCE_MAX];
	struct engine *e = o->eng;
	struct client *c = o->client;

	if (!b->ndone)
		return;
	/* a clone waiting for its child has no client: nothing maps it */
	if (!c) {
		for (unsigned i = 0; i < b->ndone; i++)
			for (size_t p = b->done[i].start; p < b->done[i].start + b->done[i].n; p++)
				uobj_set(o, p, uobj_get(o, p) | PGF_INACTIVE);
		b->ndone = 0;
		return;
	}
	if (c->dead)
		goto out;
	pinned_fencing(c, true);
	if (pinned_refresh(e, c, true) < 0) {
		pinned_fencing(c, false);
		goto out;
	}
	for (unsigned i = 0; i < b->ndone; i++)
		r[i] = (struct engine_range){ uobj_caddr(o, b->done[i].start),
					      b->done[i].n << PAGE_SHIFT };
	/* a program's REMOVE read before now and handled after keeps these pages' data */
	fence_log_note(c, r, b->ndone);
	/* pins taken before this fence are not known yet (pinned.c) */
	c->fences++;
	for (unsigned i = 0; i < b->ndone; i++) {
		size_t run = b->done[i].start, end = run + b->done[i].n;

		for (size_t p = run; p <= end; p++) {
			if (p < end && !pinned_keep(o, p, uobj_get(o, p)))
				continue;
			if (p > run)
				zap_run(e, o, run, p - run);
			run = p + 1;
		}
	}
	pinned_fencing(c, false);
	/*
	 * pin_safe stays: the pages zapped now may go only in a later round
	 * (pinned_round), which gives them the time to be touched that the
	 * reference test needs. A process with no io_uring at the scan
	 * before would have had to make a ring and register a buffer in
	 * the microseconds since: it is not looked at again.
	 */
	if (c->pins && pins_rings(c->pins) && pinned_refresh(e, c, true) == 0)
		zap_races(e, o, c, b);
out:
	b->ndone = 0;
}

static void fence_add(struct uobj *o, struct fence_batch *b, size_t idx)
{
	if (b->run.n && b->run.start + b->run.n == idx) {
		b->run.n++;
		return;
	}
	if (b->run.n) {
		if (b->ndone == ENGINE_FENCE_MAX)
			fence_send(o, b);
		b->done[b->ndone++] = b->run;
	}
	b->run = (struct run){ idx, 1 };
}

static void fence_flush(struct uobj *o, struct fence_batch *b)
{
	if (b->run.n) {
		if (b->ndone == ENGINE_FENCE_MAX)
			fence_send(o, b);
		b->done[b->ndone++] = b->run;
		b->run.n = 0;
	}
	fence_send(o, b);
}

static void run_add(struct uobj *o, struct run *r, size_t idx,
		    void (*flush)(struct uobj *, struct run *))
{
	if (r->n && r->start + r->n == idx) {
		r->n++;
		return;
	}
	flush(o, r);
	r->start = idx;
	r->n = 1;
}

static void punch_flush(struct uobj *o, struct run *r)
{
	if (r->n)
		pager_punch(o, r->start, r->n);
	r->n = 0;
}

/*
 * verify_clean: does the page really equal its copy (its slot's checksum,
 * or zeros)? A safety net behind the dirty tracking, for tests and for
 * debugging; it costs a checksum per clean eviction.
 */
static bool clean_copy_matches(struct engine *e, struct uobj *o, size_t idx, pgword_t w)
{
	const uint64_t *pg = uobj_eaddr(o, idx);

	if (!o->ops->swap_backed)
		return true;   /* the file's copy is not at hand */
	if (pg_slot(w))
		return crc32c(0, pg, PAGE_SIZE) == swap_csum_get(e->swap, pg_slot(w));
	for (size_t i = 0; i < PAGE_SIZE / 8; i++)
		if (pg[i])
			return false;
	return true;
}

/* A clean page leaves memory with no I/O. */
static void evict_clean(struct engine *e, struct uobj *o, size_t idx, pgword_t w,
			struct run *punch)
{
	if (pg_has(w, PGF_RAMARK))
		e->ra_misses++;   /* a window read ahead that the stream never reached */
	w &= ~(PGF_QUEUED | PGF_INACTIVE | PGF_REF | PGF_FRESH | PGF_RAMARK);
	if (o->ops->swap_backed && pg_slot(w))
		w = pg_set_state(w, PG_SWAPPED);
	else
		w = pg_make(PG_EMPTY, 0, 0);
	uobj_set(o, idx, w);
	run_add(o, punch, idx, punch_flush);
	o->cnt.evictions++;
	o->cnt.clean_evictions++;
	e->evictions++;
	e->clean_evictions++;
}

/*
 * Move pages from the head of the active queue to the inactive one,
 * fencing them, until the inactive queue holds `target` pages. A page
 * referenced since it was last looked at gets another round instead.
 */
static void deactivate(struct uobj *o, size_t target)
{
	struct fence_batch fence = { 0 };
	size_t scanned = 0, limit = o->active.len, idx;

	while (o->inactive.len < target && scanned++ < limit &&
	       pgqueue_pop(&o->active, &idx)) {
		pgword_t w = uobj_get(o, idx) & ~PGF_QUEUED;
		enum pg_state st = pg_state(w);

		if (st != PG_DIRTY && st != PG_CLEAN) {
			/* busy pages stay in line; gone ones leave it */
			uobj_set(o, idx, w);
			continue;
		}
		if (pg_has(w, PGF_REF) || pg_has(w, PGF_INACTIVE)) {
			uobj_set(o, idx, w & ~PGF_REF);   /* second chance */
			continue;
		}
		if (pinned_keep(o, idx, w)) {
			uobj_set(o, idx, w);   /* pinned or mlocked: stays active */
			continue;
		}
		/*
		 * A discard waiting for its zap (page.h, PGF_DISCARD) is
		 * settled before our own zap, after which the two could not
		 * be told apart. Released, it leaves the queue.
		 */
		if (pg_has(w, PGF_DISCARD) && pager_discard_settle(o, idx)) {
			uobj_set(o, idx, uobj_get(o, idx) & ~PGF_QUEUED);
			continue;
		}
		w = uobj_get(o, idx) & ~PGF_QUEUED;
		if (pgqueue_push(&o->inactive, idx) < 0) {
			uobj_set(o, idx, w);
			break;
		}
		uobj_set(o, idx, w | PGF_QUEUED);
		fence_add(o, &fence, idx);
	}
	fence_flush(o, &fence);
}

/*
 * How much of an object's resident set the hand keeps fenced. A fenced
 * page has until it reaches the inactive head to be touched, so a large
 * share keeps a hot set against a cold stream: three quarters keep a hot
 * set of a quarter of the budget (test_pdaemon: 0.3% of hot touches
 * fault at 3/4, 4% at 2/3, 14% at 1/2). The price is a fault per touch
 * of a fenced page, worth paying only while the test tells pages apart:
 * while a page in swap is touched far less often than a fenced one. Where
 * the whole set is in use alike (a sort's compares, random gathers, a
 * hash table larger than the budget), pages in swap come back as often,
 * per page, as fenced ones are touched: whichever page goes is as likely
 * to return, and every touch of a fenced page is a fault bought for
 * nothing. So, once per sixteenth of the resident set fenced, the share
 * shrinks by two sixteenths (down to one eighth) when a page in swap was
 * touched at least half as often as a fenced one, and grows back by one
 * when less than an eighth as often (or no fenced page was touched: then
 * the share costs nothing).
 */
static void fenced_share_adapt(struct uobj *o)
{
	/* touches per page: refaults / swapped against fenced_touched / inactive */
	uint64_t in_swap = (uint64_t)o->refaults * o->inactive.len;
	uint64_t in_fence = (uint64_t)o->fenced_touched * o->cnt.swapped;

	if (o->fenced < MAX(o->cnt.resident / 16, (size_t)128))
		return;
	if (in_fence && in_swap * 2 >= in_fence)
		o->fenced_share = MAX(o->fenced_share, UOBJ_FENCED_SHARE_MIN + 2) - 2;
	else if ((in_swap * 8 < in_fence || !o->fenced_touched) &&
		 o->fenced_share < UOBJ_FENCED_SHARE_MAX)
		o->fenced_share++;
	o->fenced = o->fenced_touched = o->refaults = 0;
}

/*
 * Evict up to `want` pages of o: from the head of the inactive queue,
 * fenced pages nobody touched since go, with no I/O when clean and
 * clustered with their fenced dirty neighbours otherwise. Returns the
 * pages freed or on their way out.
 */
size_t pdaemon_reclaim_object(struct engine *e, struct uobj *o, size_t want)
{
	struct run punch = { 0 };
	size_t synced_lo = 1, synced_hi = 0, freed = 0, idx, scanned = 0, limit;
	size_t target;

	/* a clone waiting for its child has no client: its pages are all fenced */
	if (o->dying || o->pinned || o->remapping || (o->client && o->client->dead))
		return 0;
	fenced_share_adapt(o);
	target = MAX(2 * want, o->cnt.resident * o->fenced_share / 16);
	deactivate(o, target);
	/*
	 * Only pages fenced before the client's last pin scan (pinned.c,
	 * pinned_round) may go: the scan must come after the fence and
	 * before the punch. Those fenced just now wait for the next round.
	 * Pinned pages go back to the tail, past that head.
	 */
	limit = o->client ? MIN(o->inactive.len, o->pin_safe) : o->inactive.len;
	while (freed < want && scanned++ < limit && pgqueue_pop(&o->inactive, &idx)) {
		pgword_t w = uobj_get(o, idx) & ~PGF_QUEUED;
		enum pg_state st = pg_state(w);

		if (o->pin_safe)
			o->pin_safe--;
		if (st != PG_DIRTY && st != PG_CLEAN) {
			uobj_set(o, idx, w);   /* busy: back to the active queue */
			continue;
		}
		if (!pg_has(w, PGF_INACTIVE) || pg_has(w, PGF_REF)) {
			/* touched while fenced: it is in use, keep it */
			uobj_set(o, idx, w);
			continue;
		}
		if (pinned_keep(o, idx, w)) {
			/*
			 * The kernel holds it (pinned.c), or the program locked it
			 * after its fence: dropping it would orphan the page its
			 * I/O fills. Still fenced, so it waits in the inactive
			 * queue for a scan that finds it free.
			 */
			if (pgqueue_push(&o->inactive, idx) == 0)
				w |= PGF_QUEUED;
			uobj_set(o, idx, w);
			e->pinned_kept++;
			continue;
		}
		if (idx < synced_lo || idx >= synced_hi) {
			o->ops->cluster(o, idx, &synced_lo, &synced_hi);
			pager_sync_dirty(o, synced_lo, synced_hi - synced_lo, false);
			w = uobj_get(o, idx) & ~PGF_QUEUED;
			st = pg_state(w);
		}
		if (st == PG_CLEAN && e->cfg.verify_clean && !clean_copy_matches(e, o, idx, w)) {
			/* the tracking missed a write: count it, and write the page */
			e->clean_mismatches++;
			uobj_set(o, idx, w);
			pager_page_dirtied(o, idx);
			w = uobj_get(o, idx) & ~PGF_QUEUED;
			st = pg_state(w);
		}
		if (st == PG_CLEAN) {
			evict_clean(e, o, idx, w, &punch);
			freed++;
			continue;
		}
		if (o->ops->read_only || !o->ops->put) {
			uobj_set(o, idx, w);
			continue;
		}
		/* dirty: out with its fenced dirty neighbours, dropped when written */
		size_t before = o->evicting;

		uobj_set(o, idx, pg_set_state(w, PG_BUSY_OUT) | PGF_EVICT | PGF_WASDIRTY);
		if (pager_put(o, idx, PGO_EVICT | PGO_PDAEMON, 0, o->npages, NULL) < 0)
			break;   /* swap full or out of descriptors: the pages stay */
		freed += o->evicting - before;
	}
	punch_flush(o, &punch);
	return freed;
}

/*
 * Reclaim starts above the high watermark and goes down to the low one,
 * then rests: evicting in bursts leaves the disk and the CPUs to the
 * faults in between (one small round per few faults made every swap-in
 * wait behind pageout writes: 165 us median against 85). The gap between
 * the marks is one burst: it must hold a read-around cluster and its
 * read-ahead; beyond that every page kept out of use is a fault more
 * (skewed mix: a 1/32 gap kept 1.2% more swap-ins than the kernel, which
 * fills its limit). Global, client and object budgets use the same marks.
 */
static size_t mark_gap(struct engine *e, size_t budget)
{
	return MAX(budget / 128, (size_t)e->cfg.cluster_pages * 2);
}

size_t pdaemon_mark_high(struct engine *e, size_t budget)
{
	return budget - MIN(budget, mark_gap(e, budget));
}

size_t pdaemon_mark_low(struct engine *e, size_t budget)
{
	return budget - MIN(budget, 2 * mark_gap(e, budget));
}

static size_t object_have(struct uobj *o)
{
	return o->cnt.resident - MIN(o->cnt.resident, o->evicting);
}

static size_t client_have(struct engine *e, struct client *c)
{
	size_t evicting = 0;

	for (struct uobj *o = e->objects; o; o = o->next)
		if (o->client == c)
			evicting += o->evicting;
	return c->resident - MIN(evicting, c->resident);
}

/* Pages this object should give back to meet its own budget. */
static size_t object_excess(struct engine *e, struct uobj *o)
{
	size_t have = object_have(o), low;

	if (!o->budget)
		return 0;
	low = pdaemon_mark_low(e, o->budget);
	return have > low ? have - low : 0;
}

/* Pages a client should give back to meet its budget (all its objects). */
static size_t client_excess(struct engine *e, struct client *c)
{
	size_t have, low;

	if (!c->budget || c->dead)
		return 0;
	have = client_have(e, c);
	low = pdaemon_mark_low(e, c->budget);
	return have > low ? have - low : 0;
}

/* Resident pages the global budget counts. */
static size_t global_have(struct engine *e)
{
	return e->resident - MIN(e->resident, e->evicting);
}

static size_t global_excess(struct engine *e)
{
	size_t have = global_have(e);

	if (!e->budget)
		return 0;
	return have > e->low ? have - e->low : 0;
}

/*
 * Over a high watermark (or faults held back): start. Once started
 * (`going`), carry on until every budget is down to its low mark.
 */
static bool needs_reclaim(struct engine *e, bool going)
{
	size_t have = global_have(e);

	if (e->nthrottle)
		return true;
	if (going) {
		if (global_excess(e))
			return true;
		for (struct uobj *o = e->objects; o; o = o->next)
			if (object_excess(e, o))
				return true;
		for (struct client *c = e->clients; c; c = c->next)
			if (client_excess(e, c))
				return true;
		return false;
	}
	if (e->budget && have > e->high)
		return true;
	for (struct uobj *o = e->objects; o; o = o->next)
		if (o->budget &&
		    object_have(o) > pdaemon_mark_high(e, o->budget))
			return true;
	for (struct client *c = e->clients; c; c = c->next)
		if (c->budget && !c->dead &&
		    client_have(e, c) > pdaemon_mark_high(e, c->budget))
			return true;
	return false;
}

#define RECLAIM_BATCH 512

/* One round: objects over their own budget, then the global budget round-robin. */
static size_t reclaim_round(struct engine *e)
{
	size_t freed = 0;

	/* once per round per client, not per object: a scan reads /proc */
	for (struct client *c = e->clients; c; c = c->next)
		if (!c->dead)
			pinned_round(e, c);
	pager_plug(e);
	for (struct uobj *o = e->objects; o; o = o->next) {
		size_t x = object_excess(e, o);

		if (x)
			freed += pdaemon_reclaim_object(e, o, MIN(x, RECLAIM_BATCH));
	}
	for (struct client *c = e->clients; c; c = c->next) {
		size_t x = client_excess(e, c);

		for (struct uobj *o = e->objects; o && x; o = o->next) {
			if (o->client != c)
				continue;
			size_t got = pdaemon_reclaim_object(e, o, MIN(x, RECLAIM_BATCH));

			freed += got;
			x -= MIN(x, got);
		}
	}
	if (global_excess(e) && e->objects) {
		struct uobj *start = e->pd_cursor ? e->pd_cursor : e->objects;
		struct uobj *o = start;

		do {
			size_t x = global_excess(e);

			if (!x)
				break;
			freed += pdaemon_reclaim_object(e, o, MIN(x, RECLAIM_BATCH));
			o = o->next ? o->next : e->objects;
		} while (o != start);
		e->pd_cursor = o;
	}
	pager_unplug(e);
	return freed;
}

/*
 * Laundering pays off only if eviction is likely: some budget is more
 * than launder_pct used (half, unless tuned). Without one, writing pages out is wasted I/O.
 */
static bool over_launder_mark(struct engine *e, size_t have, size_t budget)
{
	/* budget is in pages: times 100 cannot overflow */
	return budget && have > budget * e->launder_pct / 100;
}

static bool launder_wanted(struct engine *e)
{
	if (over_launder_mark(e, e->resident, e->budget))
		return true;
	for (struct client *c = e->clients; c; c = c->next)
		if (over_launder_mark(e, c->resident, c->budget))
			return true;
	for (struct uobj *o = e->objects; o; o = o->next)
		if (over_launder_mark(e, o->cnt.resident, o->budget))
			return true;
	return false;
}

/*
 * Write dirty pages back while idle, so that evicting them later is free.
 * A page installed clean and written since is dirty only in its PTE
 * (wp-async): every window with pages in memory is collected, not just
 * the ones already known dirty (zero-fill installs whole windows clean).
 */
static size_t launder_round(struct engine *e, size_t budget_pages)
{
	size_t started = 0;

	pager_plug(e);
	for (struct uobj *o = e->objects; o && started < budget_pages; o = o->next) {
		size_t win = e->cfg.cluster_pages;

		if (o->dying || o->pinned || o->remapping || !o->cnt.resident || !o->ops->put ||
		    !o->client ||
		    o->client->dead)
			continue;
		for (size_t scanned = 0; scanned < o->npages && started < budget_pages;
		     scanned += win) {
			size_t lo = o->launder_cursor, hi = MIN(lo + win, o->npages);
			bool any = false;

			o->launder_cursor = hi >= o->npages ? 0 : hi;
			for (size_t i = lo; i < hi && !any; i++) {
				enum pg_state st = pg_state(uobj_get(o, i));

				any = st == PG_DIRTY || (st == PG_CLEAN && e->track == TRACK_WP_ASYNC);
			}
			if (!any)
				continue;
			pager_sync_dirty(o, lo, hi - lo, true);
			for (size_t i = lo; i < hi; i++) {
				pgword_t w = uobj_get(o, i);
				size_t before = o->cnt.dirty;

				/* a pinned page stays dirty whatever is written: leave it */
				if (pg_state(w) != PG_DIRTY || pinned_keep(o, i, w))
					continue;
				uobj_set(o, i, pg_set_state(w, PG_BUSY_OUT) | PGF_WASDIRTY);
				if (pager_put(o, i, PGO_DOACTCLUST | PGO_PDAEMON, lo, hi, NULL) < 0)
					goto out;
				started += before - o->cnt.dirty;
			}
		}
	}
out:
	/*
	 * A page pinned before its collect above was seen written (the pin
	 * faulted it writable), but what the kernel writes through the pin
	 * from now on no tracker sees: look before these writes can end and
	 * mark such pages clean (pinned.c makes them dirty again).
	 */
	for (struct client *c = e->clients; c; c = c->next)
		if (started)
			pinned_refresh(e, c, true);
	pager_unplug(e);
	return started;
}

static void timed_wait(struct engine *e, unsigned ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_cond_timedwait(&e->pd_cond, &e->lock, &ts);
}

/* How long faults may be held back with no page leaving memory. */
#define STALL_NS (300 * 1000000ULL)

/*
 * Says in the log when swap writes start failing (EIO, ENOSPC on a full
 * filesystem, swap slots exhausted) and when they succeed again: one line
 * each way, not one per failed write. Pages that could not be written stay
 * resident and dirty (over budget if need be), so the line is what tells
 * an administrator that the budget is not being kept, and why. Recovery is
 * declared once pages have gone to swap with no new failure for a second.
 * Called by the page daemon with e->lock held; the seen_* are its own.
 */
static void swap_health_log(struct engine *e, uint64_t failures, uint64_t *seen_failures,
			    uint64_t *seen_swapouts, uint64_t *last_failure_ns, uint64_t now)
{
	if (failures != *seen_failures) {
		*seen_failures = failures;
		*last_failure_ns = now;
		*seen_swapouts = e->swapouts;
		if (!e->swap_failing) {
			e->swap_failing = true;
			engine_log(e, 4, "swap writes failing (%s): %llu write errors, swap full "
				   "%llu times so far; the pages stay resident and dirty, over "
				   "budget if need be",
				   strerror(-(e->last_write_error ? e->last_write_error : -EIO)),
				   (unsigned long long)e->write_errors,
				   (unsigned long long)e->swap_full_events);
		}
		return;
	}
	if (e->swap_failing && e->swapouts != *seen_swapouts &&
	    now - *last_failure_ns > 1000000000ULL) {
		e->swap_failing = false;
		engine_log(e, 6, "swap writes succeed again: %llu write errors, swap full %llu "
			   "times in all", (unsigned long long)e->write_errors,
			   (unsigned long long)e->swap_full_events);
	}
}

static void *pdaemon_thread(void *arg)
{
	struct engine *e = arg;
	uint64_t last_busy = now_ns(), last_progress = now_ns();
	uint64_t seen_evictions = 0, seen_errors = 0;
	uint64_t seen_failures = 0, seen_swapouts = 0, last_failure_ns = 0;
	unsigned backoff = 0, idle_passes = 0;
	bool going = false;

	pthread_mutex_lock(&e->lock);
	while (!e->stopping) {
		bool need;
		uint64_t errors, now;
		size_t freed = 0;

		need = going = needs_reclaim(e, going);

		if (need) {
			freed = reclaim_round(e);
			last_busy = now_ns();
			if (freed)
				idle_passes = 0;
		}
		now = now_ns();
		errors = e->write_errors + e->swap_full_events;
		swap_health_log(e, errors, &seen_failures, &seen_swapouts, &last_failure_ns, now);
		if (e->evictions != seen_evictions) {
			seen_evictions = e->evictions;
			last_progress = now;
			/*
			 * Hold faults back again only once every budget is met:
			 * a few pages leaving while swap is still short (slots
			 * freed by swap-ins) would otherwise stall each next
			 * fault for STALL_NS again.
			 */
			if (errors == seen_errors && !needs_reclaim(e, false))
				e->throttle_off = false;
		} else if (!need) {
			last_progress = now;
		}
		/*
		 * Nothing has left memory for a while although faults wait:
		 * swap is full or failing. Serve them over budget rather than
		 * hang the program; the pages stay resident and intact.
		 */
		if (e->nthrottle && !e->throttle_off && now - last_progress > STALL_NS) {
			e->throttle_off = true;
			e->budget_overruns++;
		}
		if (e->nthrottle)
			fault_resume_throttled(e);
		if (need && errors != seen_errors) {
			/* writes are failing: back off instead of hammering the disk */
			seen_errors = errors;
			backoff = backoff ? MIN(backoff * 2, 1000) : 50;
			timed_wait(e, backoff);
			continue;
		}
		backoff = 0;
		if (need && (freed || e->inflight)) {
			/* give the fault service the lock between rounds */
			pthread_mutex_unlock(&e->lock);
			sched_yield();
			pthread_mutex_lock(&e->lock);
			if (!freed && e->inflight)
				timed_wait(e, 2);
			continue;
		}
		if (need) {
			/* a pass that only fenced pages: judge them at once, then wait */
			if (idle_passes++) {
				timed_wait(e, 1);
			} else {
				pthread_mutex_unlock(&e->lock);
				sched_yield();
				pthread_mutex_lock(&e->lock);
			}
			continue;
		}
		if (e->launder_pct && launder_wanted(e) &&
		    now - last_busy > 500 * 1000000ULL) {
			/* at most 32 MiB a round: laundering must not crowd out faults */
			launder_round(e, 8192);
			last_busy = now_ns();
		}
		timed_wait(e, 100);
	}
	pthread_mutex_unlock(&e->lock);
	return NULL;
}

void pdaemon_poke(struct engine *e, struct uobj *o)
{
	struct client *c = o->client;

	if ((e->budget && e->resident > e->high) ||
	    (o->budget && o->cnt.resident > pdaemon_mark_high(e, o->budget)) ||
	    (c && c->budget && c->resident > pdaemon_mark_high(e, c->budget)))
		engine_wake_pdaemon(e);
}

int pdaemon_start(struct engine *e)
{
	int r = -pthread_create(&e->pd_thread, NULL, pdaemon_thread, e);

	if (!r) {
		pthread_setname_np(e->pd_thread, "uvmp-pdaemon");
		e->pd_running = true;
	}
	return r;
}

void pdaemon_stop(struct engine *e)
{
	if (!e->pd_running)
		return;
	pthread_mutex_lock(&e->lock);
	e->stopping = true;
	pthread_cond_broadcast(&e->pd_cond);
	pthread_mutex_unlock(&e->lock);
	pthread_join(e->pd_thread, NULL);
	e->pd_running = false;
}
