/*
 * libuvmpager-preload.so internals: the state its interposers share.
 *
 * Until the constructor has connected (and forever if it could not),
 * every call passes through to glibc or the kernel. shim_busy marks a
 * thread running the shim's own machinery (the client library, the
 * arena's callbacks): its allocations and mappings must not come back
 * into the arena.
 */
#ifndef UVMPAGER_SHIM_H
#define UVMPAGER_SHIM_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <unistd.h>

#include "shim/arena.h"
#include "shim/heap.h"

struct uvmpager;

struct shim {
	atomic_bool ready;          /* connected; set once, by the constructor */
	struct uvmpager *client;    /* replaced in a forked child */
	struct arena *arena;
	size_t min_size;            /* malloc: SIZE_MAX until ready, nothing is managed */
	size_t map_min;             /* mmap: the same */
	size_t seg_size;
	uint64_t budget;            /* asked for at start, and by forked children */
	uint64_t budget_granted;    /* what the daemon gave at start */
	uint64_t outside_max;       /* resident memory outside the budget before a warning */
	uintptr_t brk_start;        /* glibc's heap when we started */
	pid_t pid;                  /* the process the arena belongs to */
	bool debug;
	atomic_bool gone;           /* the daemon went away; said once */
};

extern struct shim shim;
extern __thread unsigned shim_busy __attribute__((tls_model("initial-exec")));

/*
 * This process owns the arena (it is not a child that skipped the fork
 * handlers, nor a vfork child running on its parent's memory).
 */
static inline bool shim_owner(void)
{
	return atomic_load_explicit(&shim.ready, memory_order_acquire) && shim.pid == getpid();
}

/* May this thread take new memory from the arena now? */
bool shim_can_alloc(void);
/*
 * The same for the heap, at every malloc, without shim_owner's getpid()
 * (a system call): a vfork child shares its parent's memory, heap
 * included; a child that skipped the fork handlers altogether (a raw
 * clone without CLONE_VM) would find holes where the heap was, and is
 * not supported.
 */
bool shim_heap_can_alloc(void);

/* len bytes of arena memory (zeros), or NULL: the caller falls back. */
void *shim_alloc(size_t len, size_t align);

/* May be arena memory (lock-free; false is certain). */
static inline bool shim_maybe(const void *p, size_t len)
{
	return shim.arena && arena_maybe(shim.arena, p, len);
}

/* Does [p, p + len) overlap the heap's reservation (heap.h)? Lock-free. */
static inline bool shim_heap_maybe(const void *p, size_t len)
{
	return heap_range.hi && (uintptr_t)p < heap_range.hi && (uintptr_t)p + len > heap_range.lo;
}

/*
 * Makes [addr, addr + len) of a block read as zeros (madvise(DONTNEED)
 * semantics), also when the daemon cannot do it for us.
 */
void shim_zero(void *addr, size_t len);

void shim_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * Some of the program's memory will be outside the budget: says so on
 * stderr, the first time only (what: the first such memory seen).
 * Async-signal-safe and allocation-free, so callable from malloc.
 */
void shim_unmanaged(const char *what_fmt, ...) __attribute__((format(printf, 1, 2)));
/* A warning on stderr, the first one only (async-signal-safe). */
void shim_warn_once(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * Cheap, for paths that hand out memory the budget does not cover: at
 * most once a second, compares the process's resident memory outside
 * every object with shim.outside_max (shim_unmanaged past it).
 */
void shim_watch(void);

#endif
