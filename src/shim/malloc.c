/*
 * The malloc family. With the heap (heap.h: jemalloc over managed
 * segments) every block comes from it. Without it, glibc's malloc maps
 * big blocks with its internal mmap, which no interposer sees, so big
 * requests must be caught here: blocks of at least shim.min_size come
 * from the arena, the rest from glibc. Everything while the shim is not
 * ready (or busy, or without a daemon) comes from glibc's own functions.
 * Blocks are recognised by address: the heap's reservation; arena blocks
 * are page-aligned, in a segment.
 */
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "shim/heap.h"
#include "shim/shim.h"

extern void *__libc_malloc(size_t size);
extern void __libc_free(void *p);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t size);
extern void *__libc_memalign(size_t align, size_t size);
extern void *__libc_valloc(size_t size);
extern void *__libc_pvalloc(size_t size);

#define EXPORT __attribute__((visibility("default")))

/*
 * glibc's malloc_usable_size, which exports no __libc_ name. Looked up in
 * libc.so.6 itself, not with RTLD_NEXT: a program linked to an allocator
 * of its own (libjemalloc.so.2, loaded after us) has that allocator's
 * next, which cannot size a block of glibc's heap and crashes on it.
 */
static size_t libc_usable_size(void *p)
{
	static size_t (*real)(void *);
	size_t (*f)(void *) = __atomic_load_n(&real, __ATOMIC_ACQUIRE);
	void *libc;

	if (!f) {
		shim_busy++;
		libc = dlopen("libc.so.6", RTLD_LAZY | RTLD_NOLOAD);
		if (libc) {
			f = (size_t (*)(void *))dlsym(libc, "malloc_usable_size");
			/* NOLOAD took a reference; libc stays loaded anyway */
			dlclose(libc);
		}
		shim_busy--;
		__atomic_store_n(&real, f, __ATOMIC_RELEASE);
	}
	return f ? f(p) : 0;
}

/*
 * A block glibc serves is outside the budget: one such call in 4096 per
 * thread lets the shim look at how much memory that has come to.
 */
static void *watched(void *p)
{
	static __thread unsigned calls __attribute__((tls_model("initial-exec")));

	if (!(++calls & 4095))
		shim_watch();
	return p;
}

static bool arena_ptr(const void *p)
{
	return p && !((uintptr_t)p & (PAGE_SIZE - 1)) && shim_maybe(p, 1);
}

/* A block of managed memory, or NULL: the caller goes to glibc. */
static void *big(size_t size, size_t align, bool zero)
{
	if (heap_on())
		return shim_heap_can_alloc() ? heap_alloc(size, align, zero) : NULL;
	/* arena memory reads as zeros already */
	return size >= shim.min_size ? shim_alloc(size, align) : NULL;
}

EXPORT void *malloc(size_t size)
{
	void *p = big(size, 0, false);

	return p ? p : watched(__libc_malloc(size));
}

EXPORT void free(void *p)
{
	int r;

	if (heap_owns(p)) {
		/*
		 * Not once the daemon is gone: jemalloc's metadata may be in
		 * swap then. The block is left where it is.
		 */
		if (!atomic_load_explicit(&shim.gone, memory_order_relaxed))
			heap_free(p);
		return;
	}
	if (!arena_ptr(p) || shim_busy) {
		__libc_free(p);
		return;
	}
	/*
	 * A child that skipped the fork handlers (vfork, a raw clone) must
	 * not touch the arena, whose lock another thread may have held at
	 * the fork; its blocks are not its to free anyway.
	 */
	if (!shim_owner())
		return;
	r = arena_free_block(shim.arena, p, NULL);
	if (r == -ENOENT)
		__libc_free(p);
}

EXPORT void *calloc(size_t n, size_t size)
{
	size_t total;
	void *p;

	if (__builtin_mul_overflow(n, size, &total)) {
		errno = ENOMEM;
		return NULL;
	}
	p = big(total, 0, true);
	return p ? p : watched(__libc_calloc(n, size));
}

/* Moves an arena block to a new arena block, or to glibc. */
static void *move(void *p, size_t old, size_t size)
{
	void *q = big(size, 0, false);

	if (!q)
		q = __libc_malloc(size);
	if (!q)
		return NULL;
	memcpy(q, p, MIN(old, size));
	arena_free_block(shim.arena, p, NULL);
	return q;
}

static void *realloc_arena(void *p, size_t size, size_t len)
{
	size_t want;

	if (!size) {
		free(p);
		return NULL;
	}
	if (size >= shim.min_size && size <= SIZE_MAX - PAGE_SIZE) {
		want = ALIGN_UP(size, PAGE_SIZE);
		if (want == len)
			return p;
		/* shrink: the tail goes back; grow: into the free pages after it */
		if (want < len && arena_free(shim.arena, (char *)p + want, len - want) == 0)
			return p;
		if (want > len && arena_grow(shim.arena, p, len, want) == 0)
			return p;
	}
	return move(p, len, size);
}

/* realloc of a heap block: jemalloc's, or a copy in glibc's heap when it cannot. */
static void *realloc_heap(void *p, size_t size)
{
	size_t old;
	void *q;

	if (!size) {
		free(p);
		return NULL;
	}
	if (shim_heap_can_alloc() && (q = heap_realloc(p, size)))
		return q;
	old = heap_usable_size(p);
	q = __libc_malloc(size);
	if (!q)
		return NULL;
	memcpy(q, p, MIN(old, size));
	if (!atomic_load_explicit(&shim.gone, memory_order_relaxed))
		heap_free(p);
	return q;
}

EXPORT void *realloc(void *p, size_t size)
{
	size_t len, old;
	int r;

	if (!p)
		return malloc(size);
	if (heap_owns(p))
		return realloc_heap(p, size);
	if (arena_ptr(p) && !shim_busy) {
		if (!shim_owner()) {
			/* a child without its parent's memory: the block cannot be read */
			errno = ENOMEM;
			return NULL;
		}
		r = arena_block_len(shim.arena, p, &len);
		if (r == 0)
			return realloc_arena(p, size, len);
		if (r == -EINVAL) {
			errno = EINVAL;
			return NULL;
		}
	}
	/* growing past the threshold (any growth, with the heap): into managed memory, once */
	if ((heap_on() || size >= shim.min_size) && !shim_busy &&
	    size > (old = libc_usable_size(p))) {
		void *q = big(size, 0, false);

		if (q) {
			memcpy(q, p, old);
			__libc_free(p);
			return q;
		}
	}
	return watched(__libc_realloc(p, size));
}

EXPORT void *reallocarray(void *p, size_t n, size_t size)
{
	size_t total;

	if (__builtin_mul_overflow(n, size, &total)) {
		errno = ENOMEM;
		return NULL;
	}
	return realloc(p, total);
}

static void *aligned(size_t align, size_t size)
{
	void *p;

	/* glibc rounds an alignment that is no power of two up to one */
	if (align & (align - 1))
		align = align > SIZE_MAX / 2 ? 0 : 1UL << (64 - __builtin_clzl(align));
	p = align ? big(size, align, false) : NULL;
	return p ? p : __libc_memalign(align, size);
}

EXPORT int posix_memalign(void **out, size_t align, size_t size)
{
	void *p;

	if (!align || align % sizeof(void *) || (align & (align - 1)))
		return EINVAL;
	p = aligned(align, size);
	if (!p)
		return ENOMEM;
	*out = p;
	return 0;
}

EXPORT void *aligned_alloc(size_t align, size_t size)
{
	return aligned(align, size);
}

EXPORT void *memalign(size_t align, size_t size)
{
	return aligned(align, size);
}

EXPORT void *valloc(size_t size)
{
	void *p = big(size, PAGE_SIZE, false);

	return p ? p : __libc_valloc(size);
}

EXPORT void *pvalloc(size_t size)
{
	void *p = size <= SIZE_MAX - PAGE_SIZE ? big(ALIGN_UP(size, PAGE_SIZE), PAGE_SIZE, false) : NULL;

	return p ? p : __libc_pvalloc(size);
}

EXPORT size_t malloc_usable_size(void *p)
{
	size_t len;

	if (!p)
		return 0;
	if (heap_owns(p))
		return heap_usable_size(p);
	if (arena_ptr(p) && !shim_busy && shim_owner() &&
	    arena_block_len(shim.arena, p, &len) == 0)
		return len;
	return libc_usable_size(p);
}
