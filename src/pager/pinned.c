/*
 * Pages the kernel holds pinned: kept resident, and never taken as clean.
 *
 * A fence drops the client's PTEs, but not the kernel's pins: an
 * io_uring registered buffer, an O_DIRECT read in flight. Punching such
 * a page from the memfd orphans the pinned copy; the kernel fills it and
 * the program reads the old data back from swap. Two sources name them:
 * /proc (fault/pins.c: io_uring buffers) and the pin table the client's
 * shim writes around O_DIRECT reads (protocol.h).
 *
 * When to look: after the fence, before the punch. A pin taken once a
 * page was fenced had to fault it in through the userfaultfd, which the
 * page daemon sees (a reference) or blocks until the punch is done (the
 * fault then reads the page back). Only pins older than the fence are
 * invisible to the fault path, and those are still there when we look.
 * So an answer stays good until the client's next fence: the page daemon
 * asks once per eviction pass at most, never per page.
 *
 * A pinned page can also be written by the kernel through the pin, which
 * no PTE and so no dirty tracker sees: a pinned page is dirty, and stays
 * so (pager_dropcluster does not clean it), until a scan finds it no
 * longer pinned; then it is written out before it may leave.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "engine_impl.h"
#include "pager/pager.h"

/*
 * The client's in-flight O_DIRECT entries onto *r. The client writes the
 * table as it likes; a lie only keeps its own pages in memory.
 */
static int add_table(const struct uvmp_pin *t, struct pin_range **r, size_t *n, size_t *cap)
{
	for (size_t i = 0; i < UVMP_PIN_ENTRIES; i++) {
		uint64_t len = __atomic_load_n(&t[i].len, __ATOMIC_ACQUIRE), addr;

		/* CLAIMED: its syscall has not begun, nothing pinned yet */
		if (!len || len == UVMP_PIN_CLAIMED)
			continue;
		addr = __atomic_load_n(&t[i].addr, __ATOMIC_RELAXED);
		if (addr + len < addr)
			len = UINTPTR_MAX - addr;
		if (*n == *cap) {
			size_t nc = *cap ? *cap * 2 : 16;
			struct pin_range *nr = realloc(*r, nc * sizeof(*nr));

			if (!nr)
				return -ENOMEM;
			*r = nr;
			*cap = nc;
		}
		(*r)[(*n)++] = (struct pin_range){ (uintptr_t)addr, (size_t)len };
	}
	return 0;
}

/* The pages of o that [addr, addr + len) touches: [*lo, *hi). False if none. */
static bool overlap(struct uobj *o, uintptr_t addr, size_t len, size_t *lo, size_t *hi)
{
	uintptr_t start = o->caddr, end = o->caddr + (o->npages << PAGE_SHIFT);
	uintptr_t a = MAX(addr, start), b = MIN(addr + len, end);

	if (a >= b)
		return false;
	*lo = (a - start) >> PAGE_SHIFT;
	*hi = DIV_ROUND_UP(b - start, PAGE_SIZE);
	return true;
}

static void mark(struct engine *e, struct client *c, const struct pin_range *r, size_t n,
		 bool pinned)
{
	for (struct uobj *o = e->objects; o; o = o->next) {
		if (o->client != c)
			continue;
		for (size_t k = 0; k < n; k++) {
			size_t lo, hi;

			if (!overlap(o, r[k].addr, r[k].len, &lo, &hi))
				continue;
			for (size_t i = lo; i < hi; i++) {
				pgword_t w = uobj_get(o, i);

				if (!pinned) {
					if (pg_has(w, PGF_PINNED))
						uobj_set(o, i, w & ~PGF_PINNED);
					continue;
				}
				if (!pg_resident(w))
					continue;   /* not in memory: nothing the kernel can pin */
				/* CLEAN -> DIRTY, BUSY_OUT -> written meanwhile */
				pager_page_dirtied(o, i);
				uobj_set(o, i, uobj_get(o, i) | PGF_PINNED);
			}
		}
	}
}

void pinned_moved(struct client *c, uintptr_t from, uintptr_t to, size_t len)
{
	if (c->npin_moves == PIN_MOVES) {
		memmove(c->pin_moves, c->pin_moves + 1, (PIN_MOVES - 1) * sizeof(c->pin_moves[0]));
		c->npin_moves--;
	}
	c->pin_moves[c->npin_moves++] = (struct pin_move){ from, to, len };
	c->pins_at = UINT64_MAX;   /* the next scan is not the last one's answer */
}

/*
 * A buffer registered before a move is printed where it was: follow the
 * moves, oldest first, so that a range moved twice is found where it is
 * now. The old ranges stay too (something else may be pinned there).
 */
static int add_moved(const struct client *c, struct pin_range **r, size_t *n, size_t *cap)
{
	for (unsigned m = 0; m < c->npin_moves; m++) {
		const struct pin_move *mv = &c->pin_moves[m];
		size_t had = *n;

		for (size_t i = 0; i < had; i++) {
			uintptr_t s = MAX((*r)[i].addr, mv->from);
			uintptr_t t = MIN((*r)[i].addr + (*r)[i].len, mv->from + mv->len);

			if (s >= t)
				continue;
			if (*n == *cap) {
				size_t nc = *cap ? *cap * 2 : 16;
				struct pin_range *nr = realloc(*r, nc * sizeof(*nr));

				if (!nr)
					return -ENOMEM;
				*r = nr;
				*cap = nc;
			}
			(*r)[(*n)++] = (struct pin_range){ mv->to + (s - mv->from), t - s };
		}
	}
	return 0;
}

void pinned_round(struct engine *e, struct client *c)
{
	bool known = pinned_refresh(e, c, false) == 0;

	/* every entry queued now was fenced before the answer, so it covers them */
	for (struct uobj *o = e->objects; o; o = o->next)
		if (o->client == c)
			o->pin_safe = known ? o->inactive.len : 0;
}

int pinned_refresh(struct engine *e, struct client *c, bool force)
{
	const struct pin_range *kr = NULL;
	struct pin_range *r = NULL;
	size_t n = 0, cap = 0, kn = 0;
	uint64_t t0;
	int err;

	if (!c->pins || c->dead)
		return 0;
	if (!force && c->pins_at == c->fences && !c->pins_unknown)
		return 0;
	/* under the engine lock: once per pass per client, a readlink per fd */
	t0 = now_ns();
	err = pins_scan(c->pins, &kr, &kn);
	e->pin_scans++;
	if (!err && kn) {
		r = malloc(kn * sizeof(*r));
		if (!r)
			err = -ENOMEM;
		else
			memcpy(r, kr, kn * sizeof(*r));
		n = cap = kn;
	}
	if (!err && c->npin_moves)
		err = add_moved(c, &r, &n, &cap);
	if (!err) {
		/* the kernel's own answer, before the table's claims join it */
		free(c->kpinned);
		c->kpinned = NULL;
		c->nkpinned = 0;
		if (n && !(c->kpinned = malloc(n * sizeof(*r))))
			err = -ENOMEM;
		else if (n)
			memcpy(c->kpinned, r, (c->nkpinned = n) * sizeof(*r));
	}
	if (!err && c->pintab)
		err = add_table(c->pintab, &r, &n, &cap);
	e->pin_scan_ns += now_ns() - t0;
	if (err) {
		/*
		 * Some ring's buffers could not be read (its lock stayed busy)
		 * or the process is going: any page may be pinned. The marks
		 * of the last answer stay; nothing of c leaves this pass.
		 */
		free(r);
		e->pin_unknown++;
		c->pins_unknown = true;
		return err;
	}
	n = pin_ranges_merge(r, n);
	/*
	 * Mark again even when the ranges did not change: a page of a range
	 * may have come into memory since (a read's pin faulted it in) and
	 * be pinned now. Unmark first: a range in both answers ends up marked.
	 */
	mark(e, c, c->pinned, c->npinned, false);
	mark(e, c, r, n, true);
	free(c->pinned);
	c->pinned = r;
	c->npinned = c->cappinned = n;
	c->pins_at = c->fences;
	c->pins_unknown = false;
	return 0;
}

void pinned_fencing(struct client *c, bool on)
{
	/* the table is shared and writable; const says only that we do not write entries */
	if (c->pintab)
		__atomic_store_n(UVMP_PIN_FENCING((struct uvmp_pin *)c->pintab), (uint64_t)on,
				 __ATOMIC_SEQ_CST);
}

void pinned_moved_parts(struct client *c, int delta)
{
	c->nmoved_parts += delta;
	if (c->pintab)
		__atomic_store_n(UVMP_PIN_MOVED((struct uvmp_pin *)c->pintab),
				 (uint64_t)(c->nmoved_parts || c->remaps_pending), __ATOMIC_SEQ_CST);
}

size_t pinned_by_kernel(const struct client *c, struct uobj *o, size_t start, size_t n)
{
	size_t count = 0;

	for (size_t k = 0; k < c->nkpinned; k++) {
		size_t lo, hi;

		if (!overlap(o, c->kpinned[k].addr, c->kpinned[k].len, &lo, &hi))
			continue;
		lo = MAX(lo, start);
		hi = MIN(hi, start + n);
		if (lo < hi)
			count += hi - lo;
	}
	return count;
}

/* --- what the program mlocked ----------------------------------------- */

static bool locked(const struct client *c, uintptr_t addr)
{
	size_t lo = 0, hi = c->nlocked;

	if (c->lock_all)
		return true;
	/* sorted and merged: the last range starting at or before addr */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (c->locked[mid].addr <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo && addr - c->locked[lo - 1].addr < c->locked[lo - 1].len;
}

bool pinned_keep(const struct uobj *o, size_t idx, pgword_t w)
{
	return pg_has(w, PGF_PINNED) || (o->client && locked(o->client, uobj_caddr(o, idx)));
}

/* Take [s, e) out of c's locked ranges. */
static int unlock_range(struct client *c, uintptr_t s, uintptr_t e)
{
	struct pin_range *r = malloc((c->nlocked + 1) * sizeof(*r));
	size_t n = 0;

	if (!r)
		return -ENOMEM;
	for (size_t i = 0; i < c->nlocked; i++) {
		uintptr_t a = c->locked[i].addr, b = a + c->locked[i].len;

		if (b <= s || a >= e) {
			r[n++] = c->locked[i];
			continue;
		}
		if (a < s)
			r[n++] = (struct pin_range){ a, s - a };
		if (b > e)
			r[n++] = (struct pin_range){ e, b - e };
	}
	free(c->locked);
	c->locked = r;
	c->nlocked = n;
	return 0;
}

int engine_client_lock(struct engine *e, struct client *c, uintptr_t addr, size_t len, bool on,
		       bool all)
{
	uintptr_t s = ALIGN_DOWN(addr, PAGE_SIZE), end;
	int r = 0;

	if (!all && (!len || addr + len < addr || addr + len > UINTPTR_MAX - PAGE_SIZE))
		return -EINVAL;
	end = all ? 0 : ALIGN_UP(addr + len, PAGE_SIZE);
	pthread_mutex_lock(&e->lock);
	if (all) {
		c->lock_all = on;
		if (!on) {
			free(c->locked);
			c->locked = NULL;
			c->nlocked = 0;
		}
	} else if (on) {
		struct pin_range *nr = realloc(c->locked, (c->nlocked + 1) * sizeof(*nr));

		if (!nr) {
			r = -ENOMEM;
		} else {
			c->locked = nr;
			c->locked[c->nlocked++] = (struct pin_range){ s, end - s };
			c->nlocked = pin_ranges_merge(c->locked, c->nlocked);
		}
	} else {
		r = unlock_range(c, s, end);
	}
	/* pinned_keep reads the ranges at each decision: no marks to update */
	pthread_mutex_unlock(&e->lock);
	return r;
}
