/* Page table, accounting, clock queue and fault parking shared by all object types. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"
#include "engine_impl.h"
#include "objects/uobj.h"

const struct pagerops *const uvm_pagerops[3] = {
	&aobj_pagerops,
	&device_pagerops,
	&vnode_pagerops,
};

static const struct pagerops *ops_of(enum uobj_type type)
{
	switch (type) {
	case UOBJ_AOBJ: return &aobj_pagerops;
	case UOBJ_VNODE: return &vnode_pagerops;
	case UOBJ_DEVICE: return &device_pagerops;
	}
	return NULL;
}

const char *pg_state_name(enum pg_state st)
{
	static const char *const names[] = {
		[PG_EMPTY] = "empty", [PG_DIRTY] = "dirty", [PG_CLEAN] = "clean",
		[PG_BUSY_OUT] = "busy-out", [PG_SWAPPED] = "swapped",
		[PG_BUSY_IN] = "busy-in", [PG_BAD] = "bad", [PG_GONE] = "gone",
	};

	return (unsigned)st < ARRAY_SIZE(names) && names[st] ? names[st] : "?";
}

int uobj_create(struct engine *e, enum uobj_type type, size_t npages, struct uobj **out)
{
	struct uobj *o;

	if (npages == 0 || npages > UINT32_MAX)
		return -EINVAL;
	o = calloc(1, sizeof(*o));
	if (!o)
		return -ENOMEM;
	o->ndir = DIV_ROUND_UP(npages, UOBJ_CHUNK);
	o->dir = calloc(o->ndir, sizeof(*o->dir));
	if (!o->dir) {
		free(o);
		return -ENOMEM;
	}
	o->eng = e;
	o->type = type;
	o->ops = ops_of(type);
	o->npages = npages;
	o->memfd = -1;
	o->backing_fd = -1;
	o->fenced_share = UOBJ_FENCED_SHARE_MAX;
	*out = o;
	return 0;
}

void uobj_destroy(struct uobj *o)
{
	if (!o)
		return;
	for (size_t i = 0; i < o->ndir; i++)
		free(o->dir[i]);
	free(o->dir);
	free(o->active.q);
	free(o->inactive.q);
	free(o->waits);
	free(o);
}

static bool counts_resident(enum pg_state st)
{
	return st == PG_DIRTY || st == PG_CLEAN || st == PG_BUSY_OUT || st == PG_BUSY_IN;
}

void engine_account(struct engine *e, struct uobj *o, pgword_t old, pgword_t nw)
{
	enum pg_state a = pg_state(old), b = pg_state(nw);
	long d;

	if (a == b)
		return;
	d = (long)counts_resident(b) - (long)counts_resident(a);
	o->cnt.resident += d;
	e->resident += d;
	if (o->client)
		o->client->resident += d;
	d = (long)(b == PG_DIRTY) - (long)(a == PG_DIRTY);
	o->cnt.dirty += d;
	e->dirty += d;
	d = (long)(b == PG_SWAPPED) - (long)(a == PG_SWAPPED);
	o->cnt.swapped += d;
	e->swapped += d;
	d = (long)(b == PG_BAD) - (long)(a == PG_BAD);
	o->cnt.bad += d;
	e->bad += d;
}

int uobj_set(struct uobj *o, size_t idx, pgword_t w)
{
	pgword_t **cp = &o->dir[idx >> UOBJ_CHUNK_SHIFT];
	pgword_t *slotp, old;

	if (!*cp) {
		if (w == 0)
			return 0;
		*cp = calloc(UOBJ_CHUNK, sizeof(pgword_t));
		if (!*cp)
			return -ENOMEM;
	}
	slotp = &(*cp)[idx & (UOBJ_CHUNK - 1)];
	old = *slotp;
	/* Every page that becomes resident joins the clock queue once. */
	if (counts_resident(pg_state(w)) && !pg_has(w, PGF_QUEUED) &&
	    pgqueue_push(&o->active, idx) == 0)
		w |= PGF_QUEUED;
	*slotp = w;
	engine_account(o->eng, o, old, w);
	return 0;
}

#define PGQUEUE_MIN 1024

static int pgqueue_resize(struct pgqueue *q, size_t ncap)
{
	uint32_t *nq = malloc(ncap * sizeof(*nq));

	if (!nq)
		return -ENOMEM;
	for (size_t i = 0; i < q->len; i++)
		nq[i] = q->q[(q->head + i) % q->cap];
	free(q->q);
	q->q = nq;
	q->cap = ncap;
	q->head = 0;
	return 0;
}

int pgqueue_push(struct pgqueue *q, size_t idx)
{
	if (q->len == q->cap && pgqueue_resize(q, q->cap ? q->cap * 2 : PGQUEUE_MIN) < 0)
		return -ENOMEM;
	q->q[(q->head + q->len) % q->cap] = (uint32_t)idx;
	q->len++;
	return 0;
}

bool pgqueue_pop(struct pgqueue *q, size_t *idx)
{
	if (!q->len)
		return false;
	*idx = q->q[q->head];
	q->head = (q->head + 1) % q->cap;
	q->len--;
	/* give back what a burst left: the queues are part of the per-page metadata */
	if (q->cap > PGQUEUE_MIN && q->len < q->cap / 4)
		pgqueue_resize(q, q->cap / 2);
	return true;
}

int uobj_wait_add(struct uobj *o, size_t idx, bool write)
{
	pgword_t w = uobj_get(o, idx);

	if (o->nwaits == o->capwaits) {
		size_t ncap = o->capwaits ? o->capwaits * 2 : 16;
		struct fault_wait *nw = realloc(o->waits, ncap * sizeof(*nw));

		if (!nw)
			return -ENOMEM;
		o->waits = nw;
		o->capwaits = ncap;
	}
	o->waits[o->nwaits++] = (struct fault_wait){ .idx = idx, .write = write };
	return uobj_set(o, idx, w | PGF_WANTED);
}

size_t uobj_wait_take(struct uobj *o, size_t start, size_t n, struct fault_wait **out)
{
	size_t got = 0, keep = 0;
	struct fault_wait *res;

	*out = NULL;
	for (size_t i = 0; i < o->nwaits; i++)
		got += o->waits[i].idx >= start && o->waits[i].idx < start + n;
	if (!got)
		return 0;
	/* without memory the faults stay parked: a later completion takes them */
	res = malloc(got * sizeof(*res));
	if (!res)
		return 0;
	got = 0;
	for (size_t i = 0; i < o->nwaits; i++) {
		struct fault_wait fw = o->waits[i];

		if (fw.idx >= start && fw.idx < start + n)
			res[got++] = fw;
		else
			o->waits[keep++] = fw;
	}
	o->nwaits = keep;
	*out = res;
	return got;
}
