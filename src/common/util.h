/* Small helpers shared by every module. Nothing here allocates or logs. */
#ifndef UVMPAGER_UTIL_H
#define UVMPAGER_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The engine works in 4 KiB pages; x86-64 and arm64 (4K) kernels only. */
#define PAGE_SHIFT 12
#define PAGE_SIZE (1UL << PAGE_SHIFT)

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))
#define DIV_ROUND_UP(n, d) (((n) + (d) - 1) / (d))
#define ALIGN_DOWN(x, a) ((x) & ~((__typeof__(x))(a) - 1))
#define ALIGN_UP(x, a) ALIGN_DOWN((x) + (a) - 1, (a))

#define container_of(ptr, type, member) \
	((type *)((char *)(ptr) - offsetof(type, member)))

static inline void bitmap_set(uint64_t *map, size_t bit)
{
	map[bit / 64] |= 1ULL << (bit % 64);
}

static inline void bitmap_clear(uint64_t *map, size_t bit)
{
	map[bit / 64] &= ~(1ULL << (bit % 64));
}

static inline bool bitmap_test(const uint64_t *map, size_t bit)
{
	return map[bit / 64] >> (bit % 64) & 1;
}

/* Monotonic clock in nanoseconds. */
uint64_t now_ns(void);

/*
 * Parses "123", "64K", "128M", "2G", "1T" (binary units) into bytes.
 * Returns 0 or -EINVAL.
 */
int parse_size(const char *s, uint64_t *out);

#endif
