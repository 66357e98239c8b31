/*
 * The fence (src/pager/zap.c): the page daemon drops the PTEs of an
 * object's pages by punching them from the memfd and putting their data
 * back, so that it reaches every mapping of the object and nothing else.
 *
 * - The data stays, every mapping of the memfd loses its PTEs, and the
 *   dirty tracker reads what it read after the old MADV_DONTNEED: a
 *   write-protected PTE leaves its uffd-wp marker, a written one none.
 * - Memory the program mapped where its view was (raw munmap, then a
 *   private mapping at the same address) is not the object's: the fence
 *   of the object's pages leaves it alone. The old fence, MADV_DONTNEED
 *   by address, zapped it (hostile raw-unmap-race, torture seed
 *   759207558).
 * - A write that races the zap lands in the page the pipe holds, and
 *   comes back with it.
 */
#include <check.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#include "check_run.h"
#include "engine_helpers.h"
#include "engine_impl.h"

/* An engine with room for everything, and an aobj of n pages at *mem. */
static struct uobj *setup(struct test_engine *t, size_t n, void **mem)
{
	struct uobj *o;

	ck_assert_int_eq(test_engine_create(t, IOENG_AUTO, TRACK_AUTO, 1ULL << 30, 64ULL << 20,
					    NULL, NULL), 0);
	ck_assert_int_eq(engine_aobj_create(t->e, n * PAGE_SIZE, 0, mem, &o), 0);
	return o;
}

static void zap(struct test_engine *t, struct uobj *o, size_t start, size_t n)
{
	size_t done, lost;

	pthread_mutex_lock(&t->e->lock);
	ck_assert_int_eq(pager_zap(o, start, n, &done, &lost), 0);
	pthread_mutex_unlock(&t->e->lock);
	ck_assert_uint_eq(done, n);
	ck_assert_uint_eq(lost, 0);
}

START_TEST(test_zap_keeps_data)
{
	const size_t n = 64, half = n / 2;
	struct test_engine t;
	uint64_t written[1] = { 0 };
	struct uobj *o;
	uint8_t *mem, *other;

	o = setup(&t, n, (void **)&mem);
	for (size_t p = 0; p < half; p++)
		fill(mem + p * PAGE_SIZE, p, 1);
	for (size_t p = half; p < n; p++)
		ck_assert_int_eq(((volatile uint8_t *)mem)[p * PAGE_SIZE], 0);
	/* a second mapping of the same memfd, as a forked sharer would have */
	other = mmap(NULL, n * PAGE_SIZE, PROT_READ, MAP_SHARED, o->memfd, 0);
	ck_assert_ptr_ne(other, MAP_FAILED);
	for (size_t p = 0; p < n; p++)
		(void)((volatile uint8_t *)other)[p * PAGE_SIZE];

	zap(&t, o, 0, n);
	for (size_t p = 0; p < n; p++) {
		ck_assert_msg(!page_present(mem + p * PAGE_SIZE), "page %zu still mapped", p);
		ck_assert_msg(!page_present(other + p * PAGE_SIZE),
			      "page %zu still mapped in the other view", p);
	}
	if (t.e->track == TRACK_WP_ASYNC || t.e->track == TRACK_WP_SYNC) {
		pthread_mutex_lock(&t.e->lock);
		ck_assert_int_eq(tracker_fenced_written(t.e->self->tr, t.e->self->ufd,
							(uintptr_t)mem, n, written), 0);
		pthread_mutex_unlock(&t.e->lock);
		/* written pages leave no marker; the zero-filled ones were installed protected */
		ck_assert_msg(written[0] == (1ULL << half) - 1,
			      "written after the zap: %#" PRIx64, written[0]);
	}
	for (size_t p = 0; p < half; p++) {
		ck_assert_msg(check(mem + p * PAGE_SIZE, p, 1), "page %zu lost its data", p);
		ck_assert(check(other + p * PAGE_SIZE, p, 1));
	}
	for (size_t p = half; p < n; p++)
		ck_assert_int_eq(((volatile uint8_t *)mem)[p * PAGE_SIZE], 0);
	munmap(other, n * PAGE_SIZE);
	test_engine_destroy(&t);
}
END_TEST

START_TEST(test_fence_spares_replaced_memory)
{
	const size_t n = 256, lo = 64, len = 64;
	struct test_engine t;
	struct uobj *o;
	uint8_t *mem, *hole;

	o = setup(&t, n, (void **)&mem);
	for (size_t p = 0; p < n; p++)
		fill(mem + p * PAGE_SIZE, p, 1);
	/* behind the engine's back: the view's middle is unmapped and replaced */
	hole = mem + lo * PAGE_SIZE;
	ck_assert_int_eq(syscall(SYS_munmap, hole, len * PAGE_SIZE), 0);
	ck_assert_ptr_eq(mmap(hole, len * PAGE_SIZE, PROT_READ | PROT_WRITE,
			      MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0), hole);
	memset(hole, 0xa5, len * PAGE_SIZE);

	/* every page of the object fenced and evicted, those of the hole too */
	engine_reclaim(t.e, o, 0);
	for (size_t i = 0; i < len * PAGE_SIZE; i += 512)
		ck_assert_msg(hole[i] == 0xa5, "the program's own memory at +%zu reads %#x", i,
			      hole[i]);
	for (size_t p = 0; p < n; p++)
		if (p < lo || p >= lo + len)
			ck_assert_msg(check(mem + p * PAGE_SIZE, p, 1), "page %zu lost its data", p);
	test_engine_destroy(&t);
}
END_TEST

struct writer {
	uint64_t *mem;
	size_t n;
	atomic_bool stop;
	uint64_t last;
};

static void *write_on(void *arg)
{
	struct writer *w = arg;
	uint64_t i = 1;

	for (; !atomic_load(&w->stop); i++)
		for (size_t p = 0; p < w->n; p++)
			((volatile uint64_t *)w->mem)[p * (PAGE_SIZE / 8)] = i;
	w->last = i - 1;
	return NULL;
}

START_TEST(test_zap_under_writer)
{
	struct writer w = { .n = 16 };
	struct test_engine t;
	pthread_t th;
	struct uobj *o;

	o = setup(&t, w.n, (void **)&w.mem);
	ck_assert_int_eq(pthread_create(&th, NULL, write_on, &w), 0);
	for (int k = 0; k < 300; k++) {
		zap(&t, o, 0, w.n);
		usleep(200);
	}
	atomic_store(&w.stop, true);
	pthread_join(th, NULL);
	ck_assert_uint_gt(w.last, 0);
	for (size_t p = 0; p < w.n; p++)
		ck_assert_msg(w.mem[p * (PAGE_SIZE / 8)] == w.last,
			      "page %zu reads %" PRIu64 " after the writer's last %" PRIu64, p,
			      w.mem[p * (PAGE_SIZE / 8)], w.last);
	/* and out to swap and back */
	engine_reclaim(t.e, o, 0);
	for (size_t p = 0; p < w.n; p++)
		ck_assert_uint_eq(w.mem[p * (PAGE_SIZE / 8)], w.last);
	test_engine_destroy(&t);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("fence");
	TCase *tc = tcase_create("zap");

	require_engine_env();
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_zap_keeps_data);
	tcase_add_test(tc, test_fence_spares_replaced_memory);
	tcase_add_test(tc, test_zap_under_writer);
	suite_add_tcase(s, tc);
	return check_run(s, CK_NORMAL);
}
