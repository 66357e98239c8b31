/*
 * The shim's segment allocator alone, on plain private anonymous memory
 * (release = MADV_DONTNEED, which reads back as zeros there): placement,
 * coalescing, in-place growth, partial frees, segment lifetime, failed
 * releases, foreign mappings, fragmentation and threads.
 */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "check_run.h"
#include "common/util.h"
#include "shim/arena.h"

#define REQUIRE(cond) \
	do { \
		if (!(cond)) \
			ck_abort_msg("%s:%d: %s", __FILE__, __LINE__, #cond); \
	} while (0)

#define SEG (16UL << 20)
#define PG PAGE_SIZE

struct backend {
	atomic_int creates, destroys, releases, protects;
	bool fail_release, fail_create;
};

static int be_create(void *ctx, size_t size, void **addr)
{
	struct backend *b = ctx;
	void *p;

	if (b->fail_create)
		return -ENOMEM;
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return -errno;
	b->creates++;
	*addr = p;
	return 0;
}

static void be_destroy(void *ctx, void *addr, size_t size)
{
	struct backend *b = ctx;

	b->destroys++;
	munmap(addr, size);
}

static int be_release(void *ctx, void *addr, size_t len)
{
	struct backend *b = ctx;

	if (b->fail_release)
		return -EIO;
	b->releases++;
	return madvise(addr, len, MADV_DONTNEED) < 0 ? -errno : 0;
}

static void be_protect(void *ctx, void *addr, size_t len)
{
	struct backend *b = ctx;

	b->protects++;
	mprotect(addr, len, PROT_READ | PROT_WRITE);
}

static const struct arena_ops ops = {
	.seg_create = be_create, .seg_destroy = be_destroy,
	.release = be_release, .protect = be_protect,
};

static struct backend be;

static struct arena *mk(void)
{
	struct arena *a = NULL;

	memset(&be, 0, sizeof(be));
	ck_assert_int_eq(arena_create(&ops, &be, SEG, &a), 0);
	return a;
}

static char *alloc(struct arena *a, size_t len, size_t align)
{
	void *p = NULL;

	ck_assert_int_eq(arena_alloc(a, len, align, &p), 0);
	ck_assert_ptr_nonnull(p);
	ck_assert_uint_eq((uintptr_t)p % (align > PG ? align : PG), 0);
	return p;
}

static size_t blen(struct arena *a, const void *p)
{
	size_t len = 0;

	return arena_block_len(a, p, &len) == 0 ? len : 0;
}

static bool all_zero(const char *p, size_t len)
{
	for (size_t i = 0; i < len; i += 512)
		if (p[i])
			return false;
	return !p[len - 1];
}

START_TEST(test_args)
{
	struct arena *a = mk();
	void *p;

	ck_assert_int_eq(arena_create(NULL, NULL, SEG, &a), -EINVAL);
	ck_assert_int_eq(arena_alloc(a, 0, 0, &p), -EINVAL);
	ck_assert_int_eq(arena_alloc(a, PG, 3 * PG, &p), -EINVAL);
	ck_assert_int_eq(arena_free(a, (void *)1, PG), -EINVAL);
	ck_assert_int_eq(arena_free_block(a, (void *)PG, NULL), -ENOENT);
	ck_assert_uint_eq(blen(a, NULL), 0);
	ck_assert_int_eq(arena_free_block(a, NULL, NULL), -ENOENT);
	ck_assert(!arena_maybe(a, (void *)PG, PG));
	ck_assert_int_eq(be.creates, 0);
	arena_destroy(a);
	arena_destroy(NULL);
}
END_TEST

START_TEST(test_alloc_free_coalesce)
{
	struct arena *a = mk();
	struct arena_stats st;
	char *x = alloc(a, 1, 0), *y = alloc(a, 3 * PG, 0), *z = alloc(a, PG + 1, 0);
	size_t len;

	/* carved one after another from the one segment */
	ck_assert_ptr_eq(y, x + PG);
	ck_assert_ptr_eq(z, y + 3 * PG);
	ck_assert_int_eq(be.creates, 1);
	ck_assert(arena_maybe(a, y, 1));
	ck_assert_uint_eq(blen(a, y), 3 * PG);
	ck_assert_uint_eq(blen(a, y + PG), 0);
	ck_assert_int_eq(arena_free_block(a, y + PG, NULL), -EINVAL);
	ck_assert(all_zero(x, PG) && all_zero(y, 3 * PG) && all_zero(z, 2 * PG));
	arena_get_stats(a, &st);
	ck_assert_uint_eq(st.used_bytes, 6 * PG);
	ck_assert_uint_eq(st.extents, 4);
	ck_assert_uint_eq(st.mapped_bytes, SEG);

	ck_assert_int_eq(arena_free_block(a, y, &len), 0);
	ck_assert_uint_eq(len, 3 * PG);
	ck_assert_int_eq(arena_free_block(a, y, &len), -EINVAL);
	ck_assert(arena_check(a));
	ck_assert_int_eq(arena_free_block(a, x, NULL), 0);
	arena_get_stats(a, &st);
	ck_assert_uint_eq(st.extents, 3);       /* [x..y) merged, z, the tail */
	ck_assert_int_eq(arena_free_block(a, z, NULL), 0);
	arena_get_stats(a, &st);
	/* all free: one extent, the segment kept as the spare */
	ck_assert_uint_eq(st.extents, 1);
	ck_assert_uint_eq(st.empty_segments, 1);
	ck_assert_int_eq(be.destroys, 0);
	ck_assert_int_eq(be.releases, 3);
	ck_assert(arena_check(a));
	arena_destroy(a);
	ck_assert_int_eq(be.destroys, 1);
}
END_TEST

START_TEST(test_best_fit)
{
	struct arena *a = mk();
	char *p[8];
	size_t sizes[8] = { 5, 1, 3, 1, 8, 1, 3, 1 };

	for (int i = 0; i < 8; i++)
		p[i] = alloc(a, sizes[i] * PG, 0);
	/* holes of 5, 3, 8 and 3 pages */
	arena_free_block(a, p[0], NULL);
	arena_free_block(a, p[2], NULL);
	arena_free_block(a, p[4], NULL);
	arena_free_block(a, p[6], NULL);
	ck_assert(arena_check(a));
	/* smallest hole that fits, lowest address among equals */
	ck_assert_ptr_eq(alloc(a, 3 * PG, 0), p[2]);
	ck_assert_ptr_eq(alloc(a, 2 * PG, 0), p[6]);
	ck_assert_ptr_eq(alloc(a, 4 * PG, 0), p[0]);
	ck_assert_ptr_eq(alloc(a, 6 * PG, 0), p[4]);
	ck_assert_ptr_eq(alloc(a, PG, 0), p[0] + 4 * PG);
	ck_assert_ptr_eq(alloc(a, PG, 0), p[6] + 2 * PG);
	ck_assert(arena_check(a));
	arena_destroy(a);
}
END_TEST

START_TEST(test_alignment)
{
	struct arena *a = mk();
	char *x = alloc(a, PG, 0);
	char *y = alloc(a, 3 * PG, 64 << 10);
	char *z = alloc(a, PG, 2 << 20);

	ck_assert_ptr_nonnull(x);
	ck_assert_uint_eq(blen(a, y), 3 * PG);
	ck_assert_uint_eq(blen(a, z), PG);
	ck_assert(arena_check(a));
	/* the alignment slack went back to the free pool */
	ck_assert_uint_eq(((uintptr_t)alloc(a, PG, 0) - (uintptr_t)x), PG);
	arena_destroy(a);
}
END_TEST

START_TEST(test_grow_in_place)
{
	struct arena *a = mk();
	char *x = alloc(a, 4 * PG, 0), *y;
	struct arena_stats st;

	memset(x, 0x5a, 4 * PG);
	ck_assert_int_eq(arena_grow(a, x, 4 * PG, 10 * PG), 0);
	ck_assert_uint_eq(blen(a, x), 10 * PG);
	ck_assert(all_zero(x + 4 * PG, 6 * PG));
	ck_assert_int_eq(x[4 * PG - 1], 0x5a);
	y = alloc(a, PG, 0);
	ck_assert_ptr_eq(y, x + 10 * PG);
	/* the next page is taken now */
	ck_assert_int_eq(arena_grow(a, x, 10 * PG, 11 * PG), -ENOMEM);
	/* shrink: the tail is freed, then taken back */
	ck_assert_int_eq(arena_free(a, x + 6 * PG, 4 * PG), 0);
	ck_assert_uint_eq(blen(a, x), 6 * PG);
	ck_assert_int_eq(arena_grow(a, x, 6 * PG, 9 * PG), 0);
	ck_assert_int_eq(arena_grow(a, x, 9 * PG, 10 * PG), 0);
	ck_assert_int_eq(arena_grow(a, x, 10 * PG, 11 * PG), -ENOMEM);
	/* growing a range that does not end a block */
	ck_assert_int_eq(arena_grow(a, x, 2 * PG, 3 * PG), -ENOMEM);
	/* to the very end of the segment, not past it */
	ck_assert_int_eq(arena_grow(a, y, PG, SEG - 11 * PG), 0);
	ck_assert_int_eq(arena_grow(a, y, SEG - 11 * PG, SEG - 10 * PG), 0);
	ck_assert_int_eq(arena_grow(a, y, SEG - 10 * PG, SEG - 9 * PG), -ENOMEM);
	arena_get_stats(a, &st);
	ck_assert_uint_eq(st.free_bytes, 0);
	ck_assert_uint_eq(st.grows_in_place, 5);
	ck_assert(arena_check(a));
	arena_destroy(a);
}
END_TEST

START_TEST(test_partial_free)
{
	struct arena *a = mk();
	char *x = alloc(a, 10 * PG, 0);
	uintptr_t end;

	memset(x, 1, 10 * PG);
	/* munmap of the middle of an mmap()ed block */
	ck_assert_int_eq(arena_free(a, x + 3 * PG, 3 * PG), 0);
	ck_assert_uint_eq(blen(a, x), 3 * PG);
	ck_assert_uint_eq(blen(a, x + 6 * PG), 4 * PG);
	ck_assert_int_eq(arena_lookup(a, x + 4 * PG, &end), ARENA_FREE);
	ck_assert_uint_eq(end, (uintptr_t)x + 6 * PG);
	ck_assert_int_eq(arena_lookup(a, x, &end), ARENA_USED);
	ck_assert_uint_eq(end, (uintptr_t)x + 3 * PG);
	ck_assert_int_eq(x[6 * PG], 1);
	/* a range over used and free pages frees the used ones */
	ck_assert_int_eq(arena_free(a, x, 10 * PG), 0);
	ck_assert(arena_check(a));
	ck_assert_int_eq(arena_lookup(a, x, &end), ARENA_FREE);
	ck_assert_uint_eq(end, (uintptr_t)x + SEG);
	/* freed memory comes back as zeros */
	ck_assert_ptr_eq(alloc(a, 10 * PG, 0), x);
	ck_assert(all_zero(x, 10 * PG));
	ck_assert_int_eq(arena_lookup(a, (void *)PG, &end), ARENA_NONE);
	ck_assert_uint_eq(end, (uintptr_t)x);
	ck_assert_int_eq(arena_lookup(a, x + SEG, &end), ARENA_NONE);
	ck_assert_uint_eq(end, UINTPTR_MAX);
	arena_destroy(a);
}
END_TEST

START_TEST(test_segments)
{
	struct arena *a = mk();
	struct arena_stats st;
	char *big, *p[3];

	/* bigger than a segment: one of its own, gone when freed */
	big = alloc(a, SEG + 5 * PG, 0);
	ck_assert_int_eq(be.creates, 1);
	ck_assert_uint_eq(blen(a, big), SEG + 5 * PG);
	ck_assert_int_eq(arena_free_block(a, big, NULL), 0);
	ck_assert_int_eq(be.destroys, 1);
	/* three full segments; freed, one stays as the spare */
	for (int i = 0; i < 3; i++)
		p[i] = alloc(a, SEG, 0);
	ck_assert_int_eq(be.creates, 4);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(arena_free_block(a, p[i], NULL), 0);
	arena_get_stats(a, &st);
	ck_assert_uint_eq(st.segments, 1);
	ck_assert_uint_eq(st.empty_segments, 1);
	ck_assert_int_eq(be.destroys, 3);
	/* the spare serves the next request */
	alloc(a, PG, 0);
	ck_assert_int_eq(be.creates, 4);
	/* a failing backend fails the allocation, nothing else */
	be.fail_create = true;
	{
		void *q;

		ck_assert_int_eq(arena_alloc(a, SEG, 0, &q), -ENOMEM);
	}
	ck_assert(arena_check(a));
	arena_destroy(a);
}
END_TEST

START_TEST(test_release_failure)
{
	struct arena *a = mk();
	char *x = alloc(a, 4 * PG, 0), *y = alloc(a, PG, 0);
	struct arena_stats st;
	uintptr_t end;

	memset(x, 7, 4 * PG);
	be.fail_release = true;
	ck_assert_int_eq(arena_free_block(a, x, NULL), 0);
	/* not known to be zero: never handed out again */
	ck_assert_int_eq(arena_lookup(a, x, &end), ARENA_LOST);
	be.fail_release = false;
	ck_assert_ptr_eq(alloc(a, PG, 0), y + PG);
	ck_assert_int_eq(arena_free(a, x, 4 * PG), 0);
	ck_assert_int_eq(arena_lookup(a, x, &end), ARENA_LOST);
	arena_get_stats(a, &st);
	ck_assert_uint_eq(st.lost_bytes, 4 * PG);
	ck_assert_uint_eq(st.release_failures, 1);
	/* arena_zero reports it */
	be.fail_release = true;
	ck_assert_int_eq(arena_zero(a, y, PG), -EIO);
	ck_assert(arena_check(a));
	arena_destroy(a);
}
END_TEST

START_TEST(test_take_over_and_protect)
{
	struct arena *a = mk();
	char *x = alloc(a, 4 * PG, 0), *y = alloc(a, 4 * PG, 0), *z;
	uintptr_t end;

	arena_free_block(a, y, NULL);
	/* MAP_FIXED over the tail of x and the free pages after it */
	ck_assert_int_eq(arena_take_over(a, x + 2 * PG, 4 * PG), 0);
	ck_assert_int_eq(arena_lookup(a, x + 2 * PG, &end), ARENA_FOREIGN);
	ck_assert_uint_eq(end, (uintptr_t)x + 6 * PG);
	ck_assert_uint_eq(blen(a, x), 2 * PG);
	ck_assert(arena_check(a));
	z = alloc(a, 2 * PG, 0);
	ck_assert_ptr_eq(z, x + 6 * PG);
	ck_assert_int_eq(arena_take_over(a, x, 8 * PG), 0);
	ck_assert_int_eq(arena_lookup(a, x, &end), ARENA_FOREIGN);
	ck_assert_uint_eq(end, (uintptr_t)x + 8 * PG);
	/* mprotect()ed memory is made read-write before it is reused */
	z = alloc(a, 2 * PG, 0);
	arena_mark_protect(a, z, PG);
	mprotect(z, PG, PROT_READ);
	ck_assert_int_eq(arena_free_block(a, z, NULL), 0);
	ck_assert_int_eq(be.protects, 1);
	z = alloc(a, 2 * PG, 0);
	z[0] = 1;
	ck_assert(arena_check(a));
	arena_destroy(a);
}
END_TEST

START_TEST(test_zero_and_close)
{
	struct arena *a = mk();
	char *x = alloc(a, 4 * PG, 0);
	void *p;

	memset(x, 3, 4 * PG);
	ck_assert_int_eq(arena_zero(a, x + PG, 2 * PG), 0);
	ck_assert_int_eq(x[0], 3);
	ck_assert(all_zero(x + PG, 2 * PG));
	ck_assert_int_eq(x[3 * PG], 3);
	ck_assert_uint_eq(blen(a, x), 4 * PG);
	arena_close(a);
	ck_assert(arena_closed(a));
	ck_assert_int_eq(arena_alloc(a, PG, 0, &p), -ESHUTDOWN);
	ck_assert_int_eq(arena_grow(a, x, 4 * PG, 5 * PG), -ENOMEM);
	ck_assert_int_eq(arena_free_block(a, x, NULL), 0);
	ck_assert(arena_check(a));
	arena_destroy(a);
}
END_TEST

/* xorshift: reproducible without rand()'s global state */
static uint64_t next_rand(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

struct block {
	char *p;
	size_t len;
	unsigned char tag;
};

static void fill(struct block *b)
{
	b->p[0] = (char)b->tag;
	b->p[b->len - 1] = (char)b->tag;
	for (size_t off = PG; off < b->len; off += PG)
		b->p[off] = (char)b->tag;
}

static bool intact(const struct block *b)
{
	if (b->p[0] != (char)b->tag || b->p[b->len - 1] != (char)b->tag)
		return false;
	for (size_t off = PG; off < b->len; off += PG)
		if (b->p[off] != (char)b->tag)
			return false;
	return true;
}

/* Random sizes, frees, grows and shrinks; contents and invariants hold throughout. */
static void churn(struct arena *a, uint64_t seed, int rounds, bool check_each)
{
	enum { N = 64 };
	struct block b[N] = { 0 };

	for (int i = 0; i < rounds; i++) {
		struct block *k = &b[next_rand(&seed) % N];
		uint64_t op = next_rand(&seed) % 4;

		if (!k->p) {
			size_t pages = 1 + next_rand(&seed) % (next_rand(&seed) % 8 ? 16 : 600);
			void *p;

			REQUIRE(arena_alloc(a, pages * PG, op == 0 ? 16 * PG : 0, &p) == 0);
			k->p = p;
			k->len = pages * PG;
			REQUIRE(all_zero(k->p, k->len));
			k->tag = (unsigned char)(1 + next_rand(&seed) % 255);
			fill(k);
		} else if (op == 1) {
			size_t more = (1 + next_rand(&seed) % 8) * PG;

			REQUIRE(intact(k));
			if (arena_grow(a, k->p, k->len, k->len + more) == 0) {
				REQUIRE(all_zero(k->p + k->len, more));
				k->len += more;
				fill(k);
			}
		} else if (op == 2 && k->len > PG) {
			size_t keep = k->len / 2 & ~(PG - 1);

			REQUIRE(intact(k));
			REQUIRE(arena_free(a, k->p + keep, k->len - keep) == 0);
			k->len = keep;
			fill(k);
		} else {
			size_t len;

			REQUIRE(intact(k));
			REQUIRE(arena_free_block(a, k->p, &len) == 0 && len == k->len);
			k->p = NULL;
		}
		if (check_each && i % 64 == 0)
			REQUIRE(arena_check(a));
	}
	for (int i = 0; i < N; i++) {
		if (!b[i].p)
			continue;
		REQUIRE(intact(&b[i]));
		REQUIRE(arena_free_block(a, b[i].p, NULL) == 0);
	}
}

START_TEST(test_fragmentation)
{
	struct arena *a = mk();
	struct arena_stats st;

	churn(a, 0x9e3779b97f4a7c15ULL, 20000, true);
	ck_assert(arena_check(a));
	arena_get_stats(a, &st);
	/* everything free again: one extent per (spare) segment */
	ck_assert_uint_eq(st.used_bytes, 0);
	ck_assert_uint_eq(st.segments, 1);
	ck_assert_uint_eq(st.extents, 1);
	ck_assert_int_eq(be.creates - be.destroys, 1);
	arena_destroy(a);
}
END_TEST

struct worker {
	struct arena *a;
	uint64_t seed;
};

static void *work(void *arg)
{
	struct worker *w = arg;

	churn(w->a, w->seed, 6000, false);
	return NULL;
}

START_TEST(test_threads)
{
	struct arena *a = mk();
	struct worker w[4];
	pthread_t t[4];
	struct arena_stats st;

	for (int i = 0; i < 4; i++) {
		w[i] = (struct worker){ .a = a, .seed = 0x1234567ULL * (uint64_t)(i + 1) };
		ck_assert_int_eq(pthread_create(&t[i], NULL, work, &w[i]), 0);
	}
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	ck_assert(arena_check(a));
	arena_get_stats(a, &st);
	ck_assert_uint_eq(st.used_bytes, 0);
	arena_destroy(a);
}
END_TEST

static Suite *arena_suite(void)
{
	Suite *s = suite_create("arena");
	TCase *tc = tcase_create("arena");

	tcase_add_test(tc, test_args);
	tcase_add_test(tc, test_alloc_free_coalesce);
	tcase_add_test(tc, test_best_fit);
	tcase_add_test(tc, test_alignment);
	tcase_add_test(tc, test_grow_in_place);
	tcase_add_test(tc, test_partial_free);
	tcase_add_test(tc, test_segments);
	tcase_add_test(tc, test_release_failure);
	tcase_add_test(tc, test_take_over_and_protect);
	tcase_add_test(tc, test_zero_and_close);
	tcase_add_test(tc, test_fragmentation);
	tcase_add_test(tc, test_threads);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return check_run(arena_suite(), CK_NORMAL);
}
