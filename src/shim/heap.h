/*
 * The heap: every malloc-family block, small or big, served by jemalloc
 * (Debian's libjemalloc) from an arena of its own whose extents are
 * carved, through jemalloc's extent hooks, from managed segments. Small
 * objects, thread caches and fragmentation are jemalloc's; the memory is
 * the daemon's, under the budget, with the arena's metadata (not one
 * object per block). The segments lie in one reservation of address
 * space, so that free() tells the heap's blocks from glibc's (made before
 * the shim was ready, or after the daemon went away) by address alone.
 *
 * Built only with jemalloc (meson option jemalloc); without it, or when
 * heap_create failed, heap_on() is false and malloc.c serves big blocks
 * from the shim's arena and small ones from glibc, as before.
 */
#ifndef UVMPAGER_SHIM_HEAP_H
#define UVMPAGER_SHIM_HEAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shim/arena.h"

struct heap_range {
	uintptr_t lo, hi;           /* the reservation; 0 without a heap */
};

extern struct heap_range heap_range;

/* Is p a heap block (or at least in the heap's reservation)? Lock-free. */
static inline bool heap_owns(const void *p)
{
	return (uintptr_t)p - heap_range.lo < heap_range.hi - heap_range.lo;
}

static inline bool heap_on(void)
{
	return heap_range.hi != 0;
}

/*
 * From the shim's constructor, connected, with shim_busy held: reserves
 * the address space, makes the jemalloc arena. 0 or -errno (no heap).
 */
int heap_create(const struct arena_ops *seg_ops);

/* The heap's segments, for fork(2) (see shim.c). NULL without a heap. */
struct arena *heap_arena(void);
/* Bytes of the reservation holding segments, from its start (lock-free). */
size_t heap_span(void);
/*
 * In a forked child, from the fork handler: the heap arena's lock may
 * have been held by a thread that is not there (its tree is whole: a
 * segment is linked in only after it is made, and making one waits for
 * the client's lock, held across the fork). Made anew.
 */
void heap_fork_child(void);

/* NULL when jemalloc cannot: the caller falls back to glibc. */
void *heap_alloc(size_t size, size_t align, bool zero);
void heap_free(void *p);
/* NULL (p untouched) when it cannot grow p. */
void *heap_realloc(void *p, size_t size);
size_t heap_usable_size(const void *p);

#endif
