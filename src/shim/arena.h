/*
 * The arena: managed memory carved page by page from a few big segments,
 * each one memory object of the daemon, so that a program with thousands
 * of big blocks costs a handful of descriptors and objects.
 *
 * Segments are tiled by extents: FREE (reads as zeros: never touched, or
 * released), USED (handed out), FOREIGN (the program mapped something
 * else over it with MAP_FIXED; ours no more, never reused) and LOST (its
 * release failed, so it may not read as zeros: never reused). FREE
 * extents are kept maximal; USED ones are never merged, so a block
 * handed out keeps its boundaries for free() and realloc(). Allocation is
 * best fit (smallest free extent, lowest address), O(log n) in extents.
 *
 * Every metadata allocation goes to glibc (__libc_malloc), never to the
 * program's malloc, which in the shim is this arena's caller. Thread-safe;
 * the callbacks run under the arena's lock and must not call back in.
 */
#ifndef UVMPAGER_SHIM_ARENA_H
#define UVMPAGER_SHIM_ARENA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct arena;

struct arena_ops {
	/* Maps a new segment of size bytes that reads as zeros. 0 or -errno. */
	int (*seg_create)(void *ctx, size_t size, void **addr);
	void (*seg_destroy)(void *ctx, void *addr, size_t size);
	/* [addr, addr + len) must read as zeros and give its memory back. 0 or -errno. */
	int (*release)(void *ctx, void *addr, size_t len);
	/* The program changed the range's protection: make it read-write again. */
	void (*protect)(void *ctx, void *addr, size_t len);
};

enum arena_kind { ARENA_NONE, ARENA_FREE, ARENA_USED, ARENA_FOREIGN, ARENA_LOST };

struct arena_stats {
	size_t segments, empty_segments, extents;
	uint64_t mapped_bytes, free_bytes, used_bytes, foreign_bytes, lost_bytes;
	uint64_t allocs, frees, grows_in_place, releases, release_failures;
};

/* seg_size: the usual segment (bigger requests get one of their own size). */
int arena_create(const struct arena_ops *ops, void *ctx, size_t seg_size, struct arena **out);
/* Unmaps every segment. Accepts NULL. */
void arena_destroy(struct arena *a);

/*
 * len bytes (rounded up to pages) aligned to align (a power of two; page
 * alignment at least), reading as zeros. -ESHUTDOWN once closed.
 */
int arena_alloc(struct arena *a, size_t len, size_t align, void **out);

/* The USED pages of [addr, addr + len) are released and become FREE. */
int arena_free(struct arena *a, void *addr, size_t len);
/*
 * Frees the block starting at p; *len (may be NULL) gets its length.
 * -ENOENT if p lies in no segment, -EINVAL if it does but starts no block.
 */
int arena_free_block(struct arena *a, void *p, size_t *len);
/* The length of the block starting at p; errors as arena_free_block. */
int arena_block_len(struct arena *a, const void *p, size_t *len);

/*
 * Grows [addr, addr + old_len), which must end where a block ends, to
 * new_len in place, from the free pages right after it. -ENOMEM if they
 * are not free (or the arena is closed).
 */
int arena_grow(struct arena *a, void *addr, size_t old_len, size_t new_len);

/* The USED pages of [addr, addr + len) read as zeros from now on; they stay USED. */
int arena_zero(struct arena *a, void *addr, size_t len);

/* The program maps over [addr, addr + len) (MAP_FIXED): those pages are FOREIGN. */
int arena_take_over(struct arena *a, void *addr, size_t len);

/* The program changed the protection of some of [addr, addr + len). */
void arena_mark_protect(struct arena *a, void *addr, size_t len);

/*
 * What lies at addr; *end gets where that stops (the extent's end, or
 * for ARENA_NONE the next segment's start, UINTPTR_MAX if none).
 */
enum arena_kind arena_lookup(struct arena *a, const void *addr, uintptr_t *end);

/* Lock-free and approximate: false means [addr, addr + len) is surely not arena memory. */
bool arena_maybe(const struct arena *a, const void *addr, size_t len);

/* No more allocations or growth (the daemon is gone); frees still work. */
void arena_close(struct arena *a);
bool arena_closed(struct arena *a);

/* Held across fork(2), so the child finds the arena in one piece. */
void arena_lock(struct arena *a);
void arena_unlock(struct arena *a);
/*
 * In a forked child whose parent did not hold the lock across the fork:
 * the lock is made anew (a thread of the parent may have held it).
 */
void arena_fork_child(struct arena *a);
/* With the lock held. */
void arena_for_each_segment_locked(struct arena *a,
				   void (*fn)(void *ctx, void *addr, size_t size), void *ctx);

void arena_get_stats(struct arena *a, struct arena_stats *st);
/* Verifies every invariant above; for tests. */
bool arena_check(struct arena *a);

#endif
