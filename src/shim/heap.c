#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include "shim/heap.h"

struct heap_range heap_range;

#ifdef HAVE_JEMALLOC
#include <jemalloc/jemalloc.h>

#include "client/rawsys.h"
#include "common/util.h"
#include "shim/shim.h"
#include "uvmpager/uvmpager.h"

/*
 * The reservation: address space only (PROT_NONE, MAP_NORESERVE), into
 * which segments are mapped in order and never reused: jemalloc retains
 * what it got (its dalloc hook is refused), so a segment lives as long as
 * the process. A heap past it falls back to glibc (and is said once).
 */
#define HEAP_RESERVE (1ULL << 40)

static struct {
	struct arena *arena;
	uintptr_t next;             /* the next segment's place; under the arena's lock */
	struct arena_ops ops;       /* the shim's, with seg_create/destroy of our own */
	int flags;                  /* MALLOCX_ARENA of ours */
} heap;

/* --- segments, in the reservation --- */

static int seg_create(void *ctx, size_t size, void **addr)
{
	uint64_t id;
	int r;

	if (size > heap_range.hi - heap.next) {
		shim_unmanaged("the heap past %llu GiB", HEAP_RESERVE >> 30);
		return -ENOMEM;
	}
	shim_busy++;
	r = uvmpager_anon_create_at(shim.client, (void *)heap.next, size, 0, &id);
	shim_busy--;
	if (r < 0) {
		shim_debug("no new heap segment of %zu bytes: %s", size, strerror(-r));
		return r;
	}
	*addr = (void *)heap.next;
	__atomic_store_n(&heap.next, heap.next + size, __ATOMIC_RELEASE);
	shim_debug("heap segment %p, %zu bytes: object %llu", *addr, size, (unsigned long long)id);
	return 0;
}

static void seg_destroy(void *ctx, void *addr, size_t size)
{
	shim_busy++;
	uvmpager_anon_destroy(shim.client, addr);
	shim_busy--;
	/* the place stays ours: nothing else may land in the reservation */
	raw_mmap(addr, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED,
		 -1, 0);
}

/* --- jemalloc's extent hooks: its arena's memory is ours --- */

/*
 * jemalloc calls these with its own locks held, in whatever thread
 * allocates; they take the arena's lock, and the client library's for a
 * new segment (shim_busy keeps its allocations in glibc's heap, never
 * back in jemalloc).
 */
static void *ex_alloc(extent_hooks_t *h, void *new_addr, size_t size, size_t align, bool *zero,
		      bool *commit, unsigned ind)
{
	void *p;

	/* growth in place at new_addr: a best-fit arena cannot promise it */
	if (new_addr || arena_alloc(heap.arena, size, align, &p) < 0)
		return NULL;
	/* the arena's free pages read as zeros (released), and need no commit */
	*zero = true;
	*commit = true;
	return p;
}

/* Refused: jemalloc retains the extent for reuse, as it does with mmap'd memory. */
static bool ex_dalloc(extent_hooks_t *h, void *addr, size_t size, bool committed, unsigned ind)
{
	return true;
}

static void ex_destroy(extent_hooks_t *h, void *addr, size_t size, bool committed, unsigned ind)
{
	arena_free(heap.arena, addr, size);
}

static bool ex_commit(extent_hooks_t *h, void *addr, size_t size, size_t off, size_t len,
		      unsigned ind)
{
	return false;
}

/*
 * Dirty pages jemalloc has decayed: the daemon frees their memory and
 * swap, and they read as zeros (what a forced purge promises).
 */
static bool ex_purge(extent_hooks_t *h, void *addr, size_t size, size_t off, size_t len,
		     unsigned ind)
{
	return arena_zero(heap.arena, (char *)addr + off, len) < 0;
}

/* Any split or merge: arena_free and arena_zero take any range of blocks. */
static bool ex_split(extent_hooks_t *h, void *addr, size_t size, size_t a, size_t b,
		     bool committed, unsigned ind)
{
	return false;
}

static bool ex_merge(extent_hooks_t *h, void *a, size_t la, void *b, size_t lb, bool committed,
		     unsigned ind)
{
	return false;
}

static extent_hooks_t hooks = {
	.alloc = ex_alloc,
	.dalloc = ex_dalloc,
	.destroy = ex_destroy,
	.commit = ex_commit,
	.decommit = NULL,           /* opted out: always committed */
	.purge_lazy = NULL,         /* opted out: jemalloc purges by force instead */
	.purge_forced = ex_purge,
	.split = ex_split,
	.merge = ex_merge,
};

/*
 * jemalloc's own metadata must stay out of the segments: a forked child
 * runs jemalloc's fork handler (registered before ours) while the
 * segments are still holes, until ours adopts the parent's copies. So
 * its arena is made with the default hooks (its base metadata comes from
 * mmap) and given ours after; and every call into jemalloc is made busy,
 * so that the mmap it does for more metadata is the kernel's, not ours.
 */
int heap_create(const struct arena_ops *seg_ops)
{
	extent_hooks_t *hp = &hooks;
	char name[64];
	unsigned ind;
	size_t sz = sizeof(ind);
	void *res;
	int r;

	res = raw_mmap(NULL, HEAP_RESERVE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
		       -1, 0);
	if (res == MAP_FAILED)
		return -errno;
	heap.ops = *seg_ops;
	heap.ops.seg_create = seg_create;
	heap.ops.seg_destroy = seg_destroy;
	heap.next = (uintptr_t)res;
	r = arena_create(&heap.ops, NULL, shim.seg_size, &heap.arena);
	if (r < 0)
		goto fail;
	/* set before the arena exists: its first extent already comes here */
	heap_range.lo = (uintptr_t)res;
	heap_range.hi = (uintptr_t)res + HEAP_RESERVE;
	r = -mallctl("arenas.create", &ind, &sz, NULL, 0);
	if (r < 0)
		goto fail_arena;
	snprintf(name, sizeof(name), "arena.%u.extent_hooks", ind);
	r = -mallctl(name, NULL, NULL, &hp, sizeof(hp));
	if (r < 0)
		goto fail_arena;        /* an arena of jemalloc's left unused */
	heap.flags = MALLOCX_ARENA(ind);
	return 0;
fail_arena:
	heap_range.lo = heap_range.hi = 0;
	arena_destroy(heap.arena);
	heap.arena = NULL;
fail:
	raw_munmap(res, HEAP_RESERVE);
	return r;
}

struct arena *heap_arena(void)
{
	return heap.arena;
}

size_t heap_span(void)
{
	uintptr_t next = __atomic_load_n(&heap.next, __ATOMIC_ACQUIRE);

	return heap_range.hi ? next - heap_range.lo : 0;
}

void heap_fork_child(void)
{
	if (heap.arena)
		arena_fork_child(heap.arena);
}

void *heap_alloc(size_t size, size_t align, bool zero)
{
	int flags = heap.flags | (zero ? MALLOCX_ZERO : 0);
	void *p;

	/* glibc's alignment floor; jemalloc's mallocx(0) is undefined */
	if (align > 16)
		flags |= MALLOCX_ALIGN(align);
	shim_busy++;
	p = mallocx(size ? size : 1, flags);
	shim_busy--;
	return p;
}

void heap_free(void *p)
{
	shim_busy++;
	dallocx(p, 0);
	shim_busy--;
}

void *heap_realloc(void *p, size_t size)
{
	void *q;

	shim_busy++;
	q = rallocx(p, size ? size : 1, heap.flags);
	shim_busy--;
	return q;
}

size_t heap_usable_size(const void *p)
{
	size_t n;

	shim_busy++;
	n = sallocx(p, 0);
	shim_busy--;
	return n;
}

#else /* no jemalloc: no heap, heap_on() is false and nothing else is called */

int heap_create(const struct arena_ops *seg_ops)
{
	return -ENOTSUP;
}

struct arena *heap_arena(void)
{
	return NULL;
}

size_t heap_span(void)
{
	return 0;
}

void heap_fork_child(void)
{
}

void *heap_alloc(size_t size, size_t align, bool zero)
{
	return NULL;
}

void heap_free(void *p)
{
}

void *heap_realloc(void *p, size_t size)
{
	return NULL;
}

size_t heap_usable_size(const void *p)
{
	return 0;
}
#endif
