#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
/*
 * A program's own allocator, as jemalloc or tcmalloc would be: malloc,
 * free, malloc_usable_size and the rest, over memory it maps itself in
 * 64 KiB pieces (bigger blocks get a mapping each). Linked into an
 * executable (-rdynamic) it stands for an allocator linked statically,
 * which wins over the shim's malloc; built as a shared library the
 * program links to, it stands for libjemalloc.so.2, loaded after the
 * shim, whose malloc the shim's replaces. Simple on purpose: size
 * classes of 16 bytes with free lists, one lock.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#define PIECE (64UL << 10)
#define SMALL_MAX (PIECE / 4)
#define NCLASSES (SMALL_MAX / 16)
#define MAGIC 0x6f776e616c6c6f63ULL

#define EXPORT __attribute__((visibility("default")))

/* Before every block: its usable size, and where its memory starts. */
struct head {
	size_t size;
	void *base;                 /* the mapping of a big block, NULL for a small one */
	size_t map_len;
	uint64_t magic;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static void *free_lists[NCLASSES + 1];
static char *cur, *cur_end;

static struct head *head_of(void *p)
{
	return (struct head *)p - 1;
}

static void *small(size_t size)
{
	size_t cls = (size + 15) / 16, len = sizeof(struct head) + cls * 16;
	struct head *h;
	void *p;

	pthread_mutex_lock(&lock);
	p = free_lists[cls];
	if (p) {
		free_lists[cls] = *(void **)p;
		pthread_mutex_unlock(&lock);
		return p;
	}
	if (!cur || cur + len > cur_end) {
		char *m = mmap(NULL, PIECE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (m == MAP_FAILED) {
			pthread_mutex_unlock(&lock);
			errno = ENOMEM;
			return NULL;
		}
		cur = m;
		cur_end = m + PIECE;
	}
	h = (struct head *)cur;
	cur += len;
	pthread_mutex_unlock(&lock);
	*h = (struct head){ .size = cls * 16, .magic = MAGIC };
	return h + 1;
}

static void *aligned_block(size_t align, size_t size)
{
	size_t len;
	char *m, *p;

	if (align < 16)
		align = 16;
	if (align <= 16 && size <= SMALL_MAX)
		return small(size ? size : 1);
	if (size > SIZE_MAX / 2 || align > SIZE_MAX / 4) {
		errno = ENOMEM;
		return NULL;
	}
	len = (sizeof(struct head) + align + size + 4095) & ~4095UL;
	m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED) {
		errno = ENOMEM;
		return NULL;
	}
	p = (char *)(((uintptr_t)m + sizeof(struct head) + align - 1) & ~(uintptr_t)(align - 1));
	*head_of(p) = (struct head){ .size = (size_t)(m + len - p), .base = m, .map_len = len,
				     .magic = MAGIC };
	return p;
}

EXPORT void *malloc(size_t size)
{
	return aligned_block(16, size);
}

EXPORT void free(void *p)
{
	struct head *h;
	size_t cls;

	if (!p)
		return;
	h = head_of(p);
	if (h->magic != MAGIC)
		__builtin_trap();   /* not ours: what the shim's lookup once fed us */
	if (h->base) {
		munmap(h->base, h->map_len);
		return;
	}
	cls = h->size / 16;
	pthread_mutex_lock(&lock);
	*(void **)p = free_lists[cls];
	free_lists[cls] = p;
	pthread_mutex_unlock(&lock);
}

EXPORT size_t malloc_usable_size(void *p)
{
	if (!p)
		return 0;
	if (head_of(p)->magic != MAGIC)
		__builtin_trap();
	return head_of(p)->size;
}

EXPORT void *calloc(size_t n, size_t size)
{
	size_t total;
	void *p;

	if (__builtin_mul_overflow(n, size, &total)) {
		errno = ENOMEM;
		return NULL;
	}
	p = malloc(total);
	if (p)
		memset(p, 0, total);
	return p;
}

EXPORT void *realloc(void *p, size_t size)
{
	size_t old;
	void *q;

	if (!p)
		return malloc(size);
	if (!size) {
		free(p);
		return NULL;
	}
	old = malloc_usable_size(p);
	if (size <= old)
		return p;
	q = malloc(size);
	if (!q)
		return NULL;
	memcpy(q, p, old);
	free(p);
	return q;
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

EXPORT int posix_memalign(void **out, size_t align, size_t size)
{
	void *p;

	if (!align || (align & (align - 1)) || align % sizeof(void *))
		return EINVAL;
	p = aligned_block(align, size);
	if (!p)
		return ENOMEM;
	*out = p;
	return 0;
}

EXPORT void *aligned_alloc(size_t align, size_t size)
{
	return aligned_block(align, size);
}

EXPORT void *memalign(size_t align, size_t size)
{
	return aligned_block(align, size);
}

EXPORT void *valloc(size_t size)
{
	return aligned_block(4096, size);
}

EXPORT void *pvalloc(size_t size)
{
	return aligned_block(4096, (size + 4095) & ~4095UL);
}
