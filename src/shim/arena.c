#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "common/util.h"
#include "shim/arena.h"
#include "shim/avl.h"

/* glibc's own allocator: the program's malloc may be the arena's caller */
extern void *__libc_malloc(size_t size);
extern void __libc_free(void *p);

#define NKINDS (ARENA_LOST + 1)

struct segment {
	struct avl_node node;
	uintptr_t start, end;
	size_t used;                /* bytes not FREE */
	bool own_size;              /* made for one big request */
};

struct extent {
	struct avl_node by_addr;
	struct avl_node by_size;    /* FREE extents only */
	uintptr_t start, end;
	struct segment *seg;
	enum arena_kind kind;
	bool reprotect;             /* the program changed its protection */
};

struct arena {
	pthread_mutex_t lock;
	struct arena_ops ops;
	void *ctx;
	size_t seg_size;
	struct avl_tree segs, addrs, sizes;
	size_t nsegs, nempty, nextents;
	bool closed;
	_Atomic uintptr_t lo, hi;   /* bounds of every segment ever made */
	uint64_t bytes[NKINDS];
	uint64_t allocs, frees, grows, releases, release_failures;
};

/* Two splits at most per operation: its first and its last extent. */
#define SPARES 2

static size_t ext_len(const struct extent *e)
{
	return e->end - e->start;
}

static int seg_cmp(const struct avl_node *a, const struct avl_node *b)
{
	const struct segment *x = container_of(a, struct segment, node);
	const struct segment *y = container_of(b, struct segment, node);

	return x->start < y->start ? -1 : x->start > y->start;
}

static int seg_key(const void *key, const struct avl_node *n)
{
	uintptr_t k = *(const uintptr_t *)key;
	const struct segment *s = container_of(n, struct segment, node);

	return k < s->start ? -1 : k > s->start;
}

static int addr_cmp(const struct avl_node *a, const struct avl_node *b)
{
	const struct extent *x = container_of(a, struct extent, by_addr);
	const struct extent *y = container_of(b, struct extent, by_addr);

	return x->start < y->start ? -1 : x->start > y->start;
}

static int addr_key(const void *key, const struct avl_node *n)
{
	uintptr_t k = *(const uintptr_t *)key;
	const struct extent *e = container_of(n, struct extent, by_addr);

	return k < e->start ? -1 : k > e->start;
}

/* Best fit: by length, then by address, so ties go low. */
static int size_cmp(const struct avl_node *a, const struct avl_node *b)
{
	const struct extent *x = container_of(a, struct extent, by_size);
	const struct extent *y = container_of(b, struct extent, by_size);

	if (ext_len(x) != ext_len(y))
		return ext_len(x) < ext_len(y) ? -1 : 1;
	return x->start < y->start ? -1 : x->start > y->start;
}

static int size_key(const void *key, const struct avl_node *n)
{
	size_t k = *(const size_t *)key, len = ext_len(container_of(n, struct extent, by_size));

	/* equal lengths compare as "key first": the lowest address wins */
	return k <= len ? -1 : 1;
}

static struct extent *ext_of(struct avl_node *n)
{
	return n ? container_of(n, struct extent, by_addr) : NULL;
}

static struct extent *ext_next(struct extent *e)
{
	return ext_of(avl_next(&e->by_addr));
}

static struct extent *ext_prev(struct extent *e)
{
	return ext_of(avl_prev(&e->by_addr));
}

/* The extent containing addr, or NULL outside every segment. */
static struct extent *find(struct arena *a, uintptr_t addr)
{
	struct extent *e = ext_of(avl_floor(&a->addrs, &addr, addr_key));

	return e && addr < e->end ? e : NULL;
}

static struct segment *find_seg(struct arena *a, uintptr_t addr)
{
	struct avl_node *n = avl_floor(&a->segs, &addr, seg_key);
	struct segment *s = n ? container_of(n, struct segment, node) : NULL;

	return s && addr < s->end ? s : NULL;
}

static void seg_account(struct arena *a, struct segment *s, long long delta)
{
	bool was_empty = s->used == 0;

	s->used = (size_t)((long long)s->used + delta);
	if (was_empty && s->used)
		a->nempty--;
	else if (!was_empty && !s->used)
		a->nempty++;
}

static void set_kind(struct arena *a, struct extent *e, enum arena_kind kind)
{
	size_t len = ext_len(e);

	if (e->kind == kind)
		return;
	if (e->kind == ARENA_FREE)
		avl_remove(&a->sizes, &e->by_size);
	if (kind == ARENA_FREE)
		avl_insert(&a->sizes, &e->by_size, size_cmp);
	if (e->kind == ARENA_FREE)
		seg_account(a, e->seg, (long long)len);
	else if (kind == ARENA_FREE)
		seg_account(a, e->seg, -(long long)len);
	a->bytes[e->kind] -= len;
	a->bytes[kind] += len;
	e->kind = kind;
}

/* Splits e at `at` with a spare node; e keeps the left part, the right part is returned. */
static struct extent *split(struct arena *a, struct extent *e, uintptr_t at, struct extent **spare)
{
	struct extent *n = *spare;

	*spare = NULL;
	*n = *e;
	n->start = at;
	if (e->kind == ARENA_FREE)
		avl_remove(&a->sizes, &e->by_size);
	e->end = at;
	avl_insert(&a->addrs, &n->by_addr, addr_cmp);
	if (e->kind == ARENA_FREE) {
		avl_insert(&a->sizes, &e->by_size, size_cmp);
		avl_insert(&a->sizes, &n->by_size, size_cmp);
	}
	a->nextents++;
	return n;
}

static struct extent **take_spare(struct extent *spares[SPARES])
{
	for (int i = 0; i < SPARES; i++)
		if (spares[i])
			return &spares[i];
	return NULL;
}

/* Cuts [start, end) out of e into an extent of its own, which is returned. */
static struct extent *isolate(struct arena *a, struct extent *e, uintptr_t start, uintptr_t end,
			      struct extent *spares[SPARES])
{
	if (e->start < start)
		e = split(a, e, start, take_spare(spares));
	if (e->end > end)
		split(a, e, end, take_spare(spares));
	return e;
}

static void drop(struct arena *a, struct extent *e)
{
	if (e->kind == ARENA_FREE)
		avl_remove(&a->sizes, &e->by_size);
	avl_remove(&a->addrs, &e->by_addr);
	a->nextents--;
	__libc_free(e);
}

/* Merges e with its neighbours of the same kind (never USED ones); returns the survivor. */
static struct extent *coalesce(struct arena *a, struct extent *e)
{
	struct extent *p = ext_prev(e), *n = ext_next(e);

	if (e->kind == ARENA_USED)
		return e;
	if (n && n->seg == e->seg && n->kind == e->kind && n->start == e->end) {
		uintptr_t end = n->end;

		e->reprotect |= n->reprotect;
		drop(a, n);
		if (e->kind == ARENA_FREE)
			avl_remove(&a->sizes, &e->by_size);
		e->end = end;
		if (e->kind == ARENA_FREE)
			avl_insert(&a->sizes, &e->by_size, size_cmp);
	}
	if (p && p->seg == e->seg && p->kind == e->kind && p->end == e->start) {
		uintptr_t end = e->end;

		p->reprotect |= e->reprotect;
		drop(a, e);
		if (p->kind == ARENA_FREE)
			avl_remove(&a->sizes, &p->by_size);
		p->end = end;
		if (p->kind == ARENA_FREE)
			avl_insert(&a->sizes, &p->by_size, size_cmp);
		e = p;
	}
	return e;
}

static void destroy_segment(struct arena *a, struct segment *s)
{
	struct extent *e = find(a, s->start);

	/* empty and coalesced: one FREE extent covers it */
	a->bytes[ARENA_FREE] -= ext_len(e);
	drop(a, e);
	avl_remove(&a->segs, &s->node);
	a->nsegs--;
	a->nempty--;
	a->ops.seg_destroy(a->ctx, (void *)s->start, s->end - s->start);
	__libc_free(s);
}

/* One spare empty segment of the usual size is kept for the next request. */
static void maybe_destroy_segment(struct arena *a, struct segment *s)
{
	if (s->used == 0 && (s->own_size || a->nempty > 1))
		destroy_segment(a, s);
}

static int add_segment(struct arena *a, size_t need, struct extent **out)
{
	size_t size = need > a->seg_size ? need : a->seg_size;
	struct segment *s;
	struct extent *e;
	uintptr_t lo, hi;
	void *addr;
	int r;

	s = __libc_malloc(sizeof(*s));
	e = __libc_malloc(sizeof(*e));
	if (!s || !e) {
		r = -ENOMEM;
		goto fail;
	}
	r = a->ops.seg_create(a->ctx, size, &addr);
	if (r < 0)
		goto fail;
	*s = (struct segment){ .start = (uintptr_t)addr, .end = (uintptr_t)addr + size,
			       .own_size = need > a->seg_size };
	avl_insert(&a->segs, &s->node, seg_cmp);
	a->nsegs++;
	a->nempty++;
	*e = (struct extent){ .start = s->start, .end = s->end, .seg = s, .kind = ARENA_FREE };
	avl_insert(&a->addrs, &e->by_addr, addr_cmp);
	avl_insert(&a->sizes, &e->by_size, size_cmp);
	a->nextents++;
	a->bytes[ARENA_FREE] += size;
	lo = atomic_load_explicit(&a->lo, memory_order_relaxed);
	hi = atomic_load_explicit(&a->hi, memory_order_relaxed);
	if (!lo || s->start < lo)
		atomic_store_explicit(&a->lo, s->start, memory_order_relaxed);
	if (s->end > hi)
		atomic_store_explicit(&a->hi, s->end, memory_order_relaxed);
	*out = e;
	return 0;
fail:
	__libc_free(s);
	__libc_free(e);
	return r;
}

static int get_spares(struct extent *spares[SPARES])
{
	for (int i = 0; i < SPARES; i++) {
		spares[i] = __libc_malloc(sizeof(struct extent));
		if (!spares[i])
			return -ENOMEM;
	}
	return 0;
}

static void put_spares(struct extent *spares[SPARES])
{
	for (int i = 0; i < SPARES; i++)
		__libc_free(spares[i]);
}

int arena_create(const struct arena_ops *ops, void *ctx, size_t seg_size, struct arena **out)
{
	struct arena *a;

	if (!ops || !ops->seg_create || !ops->seg_destroy || !ops->release || !ops->protect ||
	    !out || !seg_size)
		return -EINVAL;
	a = __libc_malloc(sizeof(*a));
	if (!a)
		return -ENOMEM;
	memset(a, 0, sizeof(*a));
	pthread_mutex_init(&a->lock, NULL);
	a->ops = *ops;
	a->ctx = ctx;
	a->seg_size = ALIGN_UP(seg_size, PAGE_SIZE);
	*out = a;
	return 0;
}

void arena_destroy(struct arena *a)
{
	struct avl_node *n;

	if (!a)
		return;
	while ((n = a->addrs.root)) {
		struct extent *e = ext_of(n);

		if (e->kind == ARENA_FREE)
			avl_remove(&a->sizes, &e->by_size);
		avl_remove(&a->addrs, n);
		__libc_free(e);
	}
	while ((n = a->segs.root)) {
		struct segment *s = container_of(n, struct segment, node);

		avl_remove(&a->segs, n);
		a->ops.seg_destroy(a->ctx, (void *)s->start, s->end - s->start);
		__libc_free(s);
	}
	pthread_mutex_destroy(&a->lock);
	__libc_free(a);
}

int arena_alloc(struct arena *a, size_t len, size_t align, void **out)
{
	struct extent *spares[SPARES] = { 0 }, *e;
	struct avl_node *n;
	uintptr_t start;
	size_t need;
	int r;

	if (align < PAGE_SIZE)
		align = PAGE_SIZE;
	if (!len || (align & (align - 1)) || len > SIZE_MAX / 4 || align > SIZE_MAX / 4)
		return -EINVAL;
	len = ALIGN_UP(len, PAGE_SIZE);
	need = len + align - PAGE_SIZE;
	r = get_spares(spares);
	if (r < 0)
		goto out;
	pthread_mutex_lock(&a->lock);
	if (a->closed) {
		r = -ESHUTDOWN;
		goto unlock;
	}
	n = avl_lower_bound(&a->sizes, &need, size_key);
	if (n) {
		e = container_of(n, struct extent, by_size);
	} else {
		r = add_segment(a, need, &e);
		if (r < 0)
			goto unlock;
	}
	start = ALIGN_UP(e->start, align);
	e = isolate(a, e, start, start + len, spares);
	set_kind(a, e, ARENA_USED);
	if (e->reprotect) {
		a->ops.protect(a->ctx, (void *)e->start, len);
		e->reprotect = false;
	}
	a->allocs++;
	*out = (void *)start;
unlock:
	pthread_mutex_unlock(&a->lock);
out:
	put_spares(spares);
	return r;
}

/* Gives a USED extent back: FREE if its release worked, LOST if not. */
static void free_extent(struct arena *a, struct extent *e)
{
	struct segment *s = e->seg;
	int r;

	if (e->reprotect) {
		a->ops.protect(a->ctx, (void *)e->start, ext_len(e));
		e->reprotect = false;
	}
	r = a->ops.release(a->ctx, (void *)e->start, ext_len(e));
	a->releases++;
	a->frees++;
	if (r < 0)
		a->release_failures++;
	/*
	 * -EXDEV: the program replaced part of it by raw syscall; that part
	 * is its own mapping, as if mapped over (FOREIGN), never handed out.
	 */
	set_kind(a, e, r == -EXDEV ? ARENA_FOREIGN : r < 0 ? ARENA_LOST : ARENA_FREE);
	coalesce(a, e);
	maybe_destroy_segment(a, s);
}

#define KIND(k) (1u << (k))

/*
 * Calls fn on each piece of [start, end) lying in one extent whose kind
 * is in the mask `kinds`, cut out as an extent of its own when `cut`. fn
 * may merge or free the piece; the walk goes on by address. Only the
 * first and the last piece can need a cut: a piece merged by fn merges
 * into a kind the walk does not visit.
 */
static void walk(struct arena *a, uintptr_t start, uintptr_t end, unsigned kinds, bool cut,
		 struct extent *spares[SPARES], void (*fn)(struct arena *, struct extent *, void *),
		 void *arg)
{
	uintptr_t cur = start;

	while (cur < end) {
		struct extent *e = find(a, cur);
		uintptr_t piece_end;

		if (!e) {
			e = ext_of(avl_lower_bound(&a->addrs, &cur, addr_key));
			if (!e || e->start >= end)
				return;
			cur = e->start;
		}
		piece_end = MIN(e->end, end);
		if (kinds & KIND(e->kind)) {
			if (cut)
				e = isolate(a, e, cur, piece_end, spares);
			fn(a, e, arg);
		}
		cur = piece_end;
	}
}

static void free_piece(struct arena *a, struct extent *e, void *arg)
{
	free_extent(a, e);
}

static bool page_range(void *addr, size_t len, uintptr_t *start, uintptr_t *end)
{
	uintptr_t s = (uintptr_t)addr;

	if (s & (PAGE_SIZE - 1) || !len || len > UINTPTR_MAX - s - PAGE_SIZE)
		return false;
	*start = s;
	*end = ALIGN_UP(s + len, PAGE_SIZE);
	return true;
}

int arena_free(struct arena *a, void *addr, size_t len)
{
	struct extent *spares[SPARES] = { 0 };
	uintptr_t start, end;
	int r;

	if (!page_range(addr, len, &start, &end))
		return -EINVAL;
	r = get_spares(spares);
	if (r == 0) {
		pthread_mutex_lock(&a->lock);
		walk(a, start, end, KIND(ARENA_USED), true, spares, free_piece, NULL);
		pthread_mutex_unlock(&a->lock);
	}
	put_spares(spares);
	return r;
}

/* The USED extent starting at p. */
static int block(struct arena *a, const void *p, struct extent **out)
{
	struct extent *e = find(a, (uintptr_t)p);

	if (!e)
		return -ENOENT;
	if (e->start != (uintptr_t)p || e->kind != ARENA_USED)
		return -EINVAL;
	*out = e;
	return 0;
}

int arena_free_block(struct arena *a, void *p, size_t *len)
{
	struct extent *e;
	int r;

	pthread_mutex_lock(&a->lock);
	r = block(a, p, &e);
	if (r == 0) {
		if (len)
			*len = ext_len(e);
		free_extent(a, e);
	}
	pthread_mutex_unlock(&a->lock);
	return r;
}

int arena_block_len(struct arena *a, const void *p, size_t *len)
{
	struct extent *e;
	int r;

	pthread_mutex_lock(&a->lock);
	r = block(a, p, &e);
	if (r == 0)
		*len = ext_len(e);
	pthread_mutex_unlock(&a->lock);
	return r;
}

int arena_grow(struct arena *a, void *addr, size_t old_len, size_t new_len)
{
	uintptr_t start, old_end, new_end;
	struct extent *e, *n;
	size_t delta;
	int r = -ENOMEM;

	if (!page_range(addr, old_len, &start, &old_end) ||
	    !page_range(addr, new_len, &start, &new_end))
		return -EINVAL;
	if (new_end <= old_end)
		return 0;
	delta = new_end - old_end;
	pthread_mutex_lock(&a->lock);
	e = find(a, old_end - 1);
	if (!e || e->kind != ARENA_USED || e->end != old_end || e->start > start) {
		r = e ? -ENOMEM : -EINVAL;
		goto out;
	}
	n = ext_next(e);
	if (a->closed || !n || n->seg != e->seg || n->kind != ARENA_FREE || n->end < new_end)
		goto out;
	if (n->reprotect)
		a->ops.protect(a->ctx, (void *)old_end, delta);
	if (n->end == new_end) {
		drop(a, n);
	} else {
		/* n keeps its place in the address order: it only starts later */
		avl_remove(&a->sizes, &n->by_size);
		n->start = new_end;
		avl_insert(&a->sizes, &n->by_size, size_cmp);
	}
	e->end = new_end;
	a->bytes[ARENA_FREE] -= delta;
	a->bytes[ARENA_USED] += delta;
	seg_account(a, e->seg, (long long)delta);
	a->grows++;
	r = 0;
out:
	pthread_mutex_unlock(&a->lock);
	return r;
}

struct zero_arg {
	uintptr_t start, end;
	int err;
};

static void zero_piece(struct arena *a, struct extent *e, void *arg)
{
	struct zero_arg *z = arg;
	uintptr_t s = MAX(e->start, z->start), t = MIN(e->end, z->end);
	int r = a->ops.release(a->ctx, (void *)s, t - s);

	a->releases++;
	if (r < 0) {
		a->release_failures++;
		if (!z->err)
			z->err = r;
	}
}

int arena_zero(struct arena *a, void *addr, size_t len)
{
	struct zero_arg z = { 0 };

	if (!page_range(addr, len, &z.start, &z.end))
		return -EINVAL;
	pthread_mutex_lock(&a->lock);
	walk(a, z.start, z.end, KIND(ARENA_USED), false, NULL, zero_piece, &z);
	pthread_mutex_unlock(&a->lock);
	return z.err;
}

static void foreign_piece(struct arena *a, struct extent *e, void *arg)
{
	struct segment *s = e->seg;

	/* the daemon frees its pages and swap; the mapping over it is the program's */
	if (e->kind == ARENA_USED || e->kind == ARENA_FREE) {
		a->releases++;
		if (a->ops.release(a->ctx, (void *)e->start, ext_len(e)) < 0)
			a->release_failures++;
	}
	e->reprotect = false;
	set_kind(a, e, ARENA_FOREIGN);
	coalesce(a, e);
	maybe_destroy_segment(a, s);
}

int arena_take_over(struct arena *a, void *addr, size_t len)
{
	struct extent *spares[SPARES] = { 0 };
	uintptr_t start, end;
	int r;

	if (!page_range(addr, len, &start, &end))
		return -EINVAL;
	r = get_spares(spares);
	if (r == 0) {
		pthread_mutex_lock(&a->lock);
		walk(a, start, end, KIND(ARENA_FREE) | KIND(ARENA_USED) | KIND(ARENA_LOST), true,
		     spares, foreign_piece, NULL);
		pthread_mutex_unlock(&a->lock);
	}
	put_spares(spares);
	return r;
}

static void protect_piece(struct arena *a, struct extent *e, void *arg)
{
	e->reprotect = true;
}

void arena_mark_protect(struct arena *a, void *addr, size_t len)
{
	uintptr_t start, end;

	if (!page_range(addr, len, &start, &end))
		return;
	pthread_mutex_lock(&a->lock);
	walk(a, start, end, KIND(ARENA_FREE) | KIND(ARENA_USED) | KIND(ARENA_LOST), false,
		     NULL, protect_piece, NULL);
	pthread_mutex_unlock(&a->lock);
}

enum arena_kind arena_lookup(struct arena *a, const void *addr, uintptr_t *end)
{
	uintptr_t p = (uintptr_t)addr;
	enum arena_kind kind = ARENA_NONE;
	struct avl_node *n;
	struct extent *e;

	pthread_mutex_lock(&a->lock);
	e = find(a, p);
	if (e) {
		kind = e->kind;
		*end = e->end;
	} else {
		n = avl_lower_bound(&a->segs, &p, seg_key);
		*end = n ? container_of(n, struct segment, node)->start : UINTPTR_MAX;
	}
	pthread_mutex_unlock(&a->lock);
	return kind;
}

bool arena_maybe(const struct arena *a, const void *addr, size_t len)
{
	uintptr_t p = (uintptr_t)addr, lo, hi;

	if (!a)
		return false;
	lo = atomic_load_explicit(&a->lo, memory_order_relaxed);
	hi = atomic_load_explicit(&a->hi, memory_order_relaxed);
	return lo && p < hi && (len ? p + len > lo : p >= lo);
}

void arena_close(struct arena *a)
{
	pthread_mutex_lock(&a->lock);
	a->closed = true;
	pthread_mutex_unlock(&a->lock);
}

bool arena_closed(struct arena *a)
{
	bool closed;

	pthread_mutex_lock(&a->lock);
	closed = a->closed;
	pthread_mutex_unlock(&a->lock);
	return closed;
}

void arena_lock(struct arena *a)
{
	pthread_mutex_lock(&a->lock);
}

void arena_unlock(struct arena *a)
{
	pthread_mutex_unlock(&a->lock);
}

void arena_fork_child(struct arena *a)
{
	pthread_mutex_init(&a->lock, NULL);
}

void arena_for_each_segment_locked(struct arena *a,
				   void (*fn)(void *ctx, void *addr, size_t size), void *ctx)
{
	for (struct avl_node *n = avl_first(&a->segs); n; n = avl_next(n)) {
		struct segment *s = container_of(n, struct segment, node);

		fn(ctx, (void *)s->start, s->end - s->start);
	}
}

void arena_get_stats(struct arena *a, struct arena_stats *st)
{
	pthread_mutex_lock(&a->lock);
	*st = (struct arena_stats){
		.segments = a->nsegs,
		.empty_segments = a->nempty,
		.extents = a->nextents,
		.free_bytes = a->bytes[ARENA_FREE],
		.used_bytes = a->bytes[ARENA_USED],
		.foreign_bytes = a->bytes[ARENA_FOREIGN],
		.lost_bytes = a->bytes[ARENA_LOST],
		.allocs = a->allocs,
		.frees = a->frees,
		.grows_in_place = a->grows,
		.releases = a->releases,
		.release_failures = a->release_failures,
	};
	for (int k = 0; k < NKINDS; k++)
		st->mapped_bytes += a->bytes[k];
	pthread_mutex_unlock(&a->lock);
}

static bool check_locked(struct arena *a)
{
	uint64_t bytes[NKINDS] = { 0 };
	size_t nsegs = 0, nempty = 0, nextents = 0, nfree = 0, nsized = 0;
	struct extent *e = ext_of(avl_first(&a->addrs));

	if (!avl_valid(&a->segs, seg_cmp) || !avl_valid(&a->addrs, addr_cmp) ||
	    !avl_valid(&a->sizes, size_cmp))
		return false;
	for (struct avl_node *n = avl_first(&a->segs); n; n = avl_next(n)) {
		struct segment *s = container_of(n, struct segment, node);
		uintptr_t cur = s->start;
		size_t used = 0;

		nsegs++;
		/* the extents tile the segment, in order, with no gap */
		while (cur < s->end) {
			struct extent *p;

			if (!e || e->start != cur || e->end <= e->start || e->end > s->end ||
			    e->seg != s || find_seg(a, e->start) != s)
				return false;
			if (e->kind == ARENA_FREE) {
				nfree++;
				p = ext_prev(e);
				if (p && p->seg == s && p->kind == ARENA_FREE)
					return false;       /* not maximal */
			} else {
				used += ext_len(e);
			}
			bytes[e->kind] += ext_len(e);
			nextents++;
			cur = e->end;
			e = ext_next(e);
		}
		if (used != s->used)
			return false;
		nempty += !used;
	}
	if (e)
		return false;               /* an extent outside every segment */
	for (struct avl_node *n = avl_first(&a->sizes); n; n = avl_next(n)) {
		if (container_of(n, struct extent, by_size)->kind != ARENA_FREE)
			return false;
		nsized++;
	}
	if (nsized != nfree || nsegs != a->nsegs || nempty != a->nempty || nextents != a->nextents)
		return false;
	return !memcmp(bytes, a->bytes, sizeof(bytes));
}

bool arena_check(struct arena *a)
{
	bool ok;

	pthread_mutex_lock(&a->lock);
	ok = check_locked(a);
	pthread_mutex_unlock(&a->lock);
	return ok;
}
