/*
 * Page daemon policy: a hot set survives a cold stream (the clock keeps
 * what is used, unlike FIFO), per-object budgets hold, and idle dirty
 * pages are laundered so that evicting them later writes nothing.
 */
#include <check.h>

#include "check_run.h"
#include <inttypes.h>
#include <sys/mman.h>

#include "engine_helpers.h"

/*
 * 1024 hot pages touched every round between 2048-page slices of a cold
 * stream, under a 4096-page budget. FIFO would evict every hot page once
 * per round (the stream pushes the whole budget through twice); the clock
 * sees the hot pages referenced and keeps them.
 */
START_TEST(test_hot_set_survives)
{
	const size_t hot = 1024, slice = 2048, rounds = 24, cold_pages = slice * rounds;
	struct engine_stats a, b;
	struct test_engine t;
	uint8_t *mem;
	size_t hot_faults = 0, hot_touches = 0;

	ck_assert_int_eq(test_engine_create(&t, IOENG_AUTO, TRACK_AUTO, 16ULL << 20,
					    1ULL << 30, NULL, NULL), 0);
	ck_assert_int_eq(engine_aobj_create(t.e, (hot + cold_pages) * PAGE_SIZE, 0,
					    (void **)&mem, NULL), 0);
	for (size_t p = 0; p < hot; p++)
		fill(mem + p * PAGE_SIZE, p, 1);
	for (size_t r = 0; r < rounds; r++) {
		for (size_t p = 0; p < hot; p += 64) {
			/* one touch per 64 pages, the other 63 ride along by read-around */
			engine_get_stats(t.e, &a);
			for (size_t q = p; q < p + 64; q++)
				ck_assert(check(mem + q * PAGE_SIZE, q, 1));
			engine_get_stats(t.e, &b);
			if (r >= 4) {
				hot_touches += 64;
				hot_faults += b.swapins - a.swapins;
			}
		}
		for (size_t p = hot + r * slice; p < hot + (r + 1) * slice; p++)
			fill(mem + p * PAGE_SIZE, p, 2);
	}
	printf("hot set: %zu of %zu hot touches needed a swap-in\n", hot_faults, hot_touches);
	/* FIFO would fault nearly every hot page every round */
	ck_assert_msg(hot_faults * 10 < hot_touches, "hot set evicted: %zu/%zu", hot_faults,
		      hot_touches);
	test_engine_destroy(&t);
}
END_TEST

/*
 * The share of fenced pages follows use: under random reads over 1.5
 * times the budget a page in swap comes back as often as a fenced one is
 * touched (each such touch a fault that buys nothing), so the share
 * shrinks; a hot set against a cold stream (the test above) makes the
 * fenced pages the ones touched, so it grows back.
 */
START_TEST(test_fenced_share_follows_use)
{
	const size_t pages = 6144;
	struct engine_obj_stat st;
	struct engine_stats a, b;
	struct test_engine t;
	struct uobj *o;
	uint8_t *mem;
	uint64_t x = 88172645463325252ULL;

	ck_assert_int_eq(test_engine_create(&t, IOENG_AUTO, TRACK_AUTO, 16ULL << 20,
					    1ULL << 30, NULL, NULL), 0);
	ck_assert_int_eq(engine_aobj_create(t.e, (pages + 12 * 2048) * PAGE_SIZE, 0,
					    (void **)&mem, &o), 0);
	for (size_t p = 0; p < pages; p++)
		fill(mem + p * PAGE_SIZE, p, 1);
	engine_object_stat(t.e, o, &st);
	ck_assert_uint_eq(st.fenced_percent, 75);
	engine_get_stats(t.e, &a);
	for (size_t i = 0; i < 40000; i++) {
		size_t p;

		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		p = x % pages;
		ck_assert(check(mem + p * PAGE_SIZE, p, 1));
	}
	engine_get_stats(t.e, &b);
	engine_object_stat(t.e, o, &st);
	printf("random: fenced share %u%%, %" PRIu64 " of %" PRIu64 " faults on fenced pages\n",
	       st.fenced_percent, b.faults_fenced - a.faults_fenced, b.faults - a.faults);
	ck_assert_uint_le(st.fenced_percent, 25);
	/* then a hot set between slices of a cold stream through fresh memory */
	for (size_t r = 0; r < 12; r++) {
		for (size_t p = 0; p < 1024; p++)
			ck_assert(check(mem + p * PAGE_SIZE, p, 1));
		for (size_t p = pages + r * 2048; p < pages + (r + 1) * 2048; p++)
			fill(mem + p * PAGE_SIZE, p, 2);
	}
	engine_object_stat(t.e, o, &st);
	printf("hot set and stream: fenced share %u%%\n", st.fenced_percent);
	ck_assert_uint_ge(st.fenced_percent, 50);
	test_engine_destroy(&t);
}
END_TEST

/*
 * A walk through fenced pages maps them in windows (resolve.c,
 * map_fenced_around): most of them come with a neighbour's fault, not
 * one of their own.
 */
START_TEST(test_fenced_fault_around)
{
	const size_t pages = 6144;
	struct engine_stats a, b;
	struct test_engine t;
	uint8_t *mem;

	ck_assert_int_eq(test_engine_create(&t, IOENG_AUTO, TRACK_AUTO, 16ULL << 20,
					    1ULL << 30, NULL, NULL), 0);
	ck_assert_int_eq(engine_aobj_create(t.e, pages * PAGE_SIZE, 0, (void **)&mem, NULL), 0);
	for (size_t p = 0; p < pages; p++)
		fill(mem + p * PAGE_SIZE, p, 1);
	/* the fill left the last pages resident, the older three quarters of them fenced */
	engine_get_stats(t.e, &a);
	for (size_t p = pages - 3584; p < pages; p++)
		ck_assert(check(mem + p * PAGE_SIZE, p, 1));
	engine_get_stats(t.e, &b);
	ck_assert_uint_eq(b.swapins, a.swapins);
	printf("walk: %" PRIu64 " fenced faults, %" PRIu64 " fenced pages mapped around them\n",
	       b.faults_fenced - a.faults_fenced, b.fenced_around - a.fenced_around);
	ck_assert_uint_gt(b.faults_fenced - a.faults_fenced, 0);
	ck_assert_uint_gt(b.fenced_around - a.fenced_around, 4 * (b.faults_fenced - a.faults_fenced));
	test_engine_destroy(&t);
}
END_TEST

/* An object with a budget of its own stays under it; another does not care. */
START_TEST(test_object_budget)
{
	struct test_engine t;
	struct uobj *small, *big;
	uint8_t *a, *b;

	ck_assert_int_eq(test_engine_create(&t, IOENG_AUTO, TRACK_AUTO, 0, 1ULL << 30,
					    NULL, NULL), 0);
	ck_assert_int_eq(engine_aobj_create(t.e, 64ULL << 20, 4ULL << 20, (void **)&a, &small), 0);
	ck_assert_int_eq(engine_aobj_create(t.e, 32ULL << 20, 0, (void **)&b, &big), 0);
	for (size_t p = 0; p < (64ULL << 20) / PAGE_SIZE; p++)
		fill(a + p * PAGE_SIZE, p, 3);
	for (size_t p = 0; p < (32ULL << 20) / PAGE_SIZE; p++)
		fill(b + p * PAGE_SIZE, p, 4);
	for (size_t p = 0; p < (64ULL << 20) / PAGE_SIZE; p++)
		ck_assert(check(a + p * PAGE_SIZE, p, 3));
	struct engine_obj_stat sa, sb;

	engine_object_stat(t.e, small, &sa);
	engine_object_stat(t.e, big, &sb);
	ck_assert_uint_le(sa.resident_bytes, 4ULL << 20);
	ck_assert_uint_gt(sa.swapouts, 0);
	ck_assert_uint_eq(sb.resident_bytes, 32ULL << 20);   /* untouched by the other's budget */
	ck_assert_uint_eq(sb.swapouts, 0);
	test_engine_destroy(&t);
}
END_TEST

/*
 * Dirty pages left alone get written back while idle, once the budget is
 * more than half used; evicting them is then free. With no budget nobody
 * will evict them, and nothing is written.
 */
START_TEST(test_laundering)
{
	struct engine_stats a, b;
	struct test_engine t;
	struct uobj *o;
	uint8_t *mem;
	const size_t pages = 4096;

	ck_assert_int_eq(test_engine_create(&t, IOENG_AUTO, TRACK_AUTO, 0, 256ULL << 20,
					    NULL, NULL), 0);
	ck_assert_int_eq(engine_aobj_create(t.e, pages * PAGE_SIZE, 0, (void **)&mem, &o), 0);
	for (size_t p = 0; p < pages; p++)
		fill(mem + p * PAGE_SIZE, p, 5);
	usleep(1500 * 1000);
	engine_get_stats(t.e, &a);
	ck_assert_uint_eq(a.swapouts, 0);
	test_engine_destroy(&t);

	/* 16 MiB dirty under a 24 MiB budget */
	ck_assert_int_eq(test_engine_create(&t, IOENG_AUTO, TRACK_AUTO, 24ULL << 20,
					    256ULL << 20, NULL, NULL), 0);
	ck_assert_int_eq(engine_aobj_create(t.e, pages * PAGE_SIZE, 0, (void **)&mem, &o), 0);
	for (size_t p = 0; p < pages; p++)
		fill(mem + p * PAGE_SIZE, p, 5);
	/* dirtiness may sit in the written bits: the launderer collects them */
	for (int i = 0; i < 50; i++) {
		engine_get_stats(t.e, &a);
		if (a.swapouts >= pages)
			break;
		usleep(100 * 1000);
	}
	engine_get_stats(t.e, &a);
	ck_assert_uint_ge(a.swapouts, pages);
	ck_assert_uint_eq(a.dirty_bytes, 0);
	ck_assert_uint_eq(a.evictions, 0);          /* written back, still in memory */
	ck_assert_uint_eq(a.resident_bytes, pages * PAGE_SIZE);
	/* now evicting them costs no write */
	ck_assert_int_eq(engine_reclaim(t.e, o, 0), 0);
	engine_get_stats(t.e, &b);
	if (b.clean_mapping || !strcmp(b.tracking, "wp-sync")) {
		ck_assert_uint_eq(b.swap_write_bytes, a.swap_write_bytes);
		ck_assert_uint_eq(b.clean_evictions - a.clean_evictions, pages);
	}
	for (size_t p = 0; p < pages; p++)
		ck_assert(check(mem + p * PAGE_SIZE, p, 5));
	test_engine_destroy(&t);
}
END_TEST

/*
 * A page written, then fenced, then read before it is evicted: the read
 * maps it back write-protected, which must not erase the evidence of the
 * write (the missing marker) and let the page go as clean. A random mix
 * of reads and writes over a fill twice the budget hits this constantly.
 */
START_TEST(test_written_fenced_read)
{
	const size_t n = 32768;
	struct test_engine t;
	unsigned *gen = calloc(n, sizeof(unsigned));
	uint64_t seed = 12345;
	size_t bad = 0;
	uint8_t *mem;

	ck_assert_int_eq(test_engine_create(&t, IOENG_AUTO, TRACK_AUTO, 64ULL << 20,
					    1ULL << 30, NULL, NULL), 0);
	ck_assert_int_eq(engine_aobj_create(t.e, n * PAGE_SIZE, 0, (void **)&mem, NULL), 0);
	for (size_t p = 0; p < n; p++) {
		gen[p] = 1;
		fill(mem + p * PAGE_SIZE, p, 1);
	}
	for (int k = 0; k < 40000; k++) {
		size_t p;

		seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
		p = seed % 10 < 9 ? seed / 10 % (n / 10) : seed / 10 % n;
		bad += !check(mem + p * PAGE_SIZE, p, gen[p]);
		if (seed % 100 < 30)
			fill(mem + p * PAGE_SIZE, p, ++gen[p]);
	}
	for (size_t p = 0; p < n; p++)
		bad += !check(mem + p * PAGE_SIZE, p, gen[p]);
	ck_assert_msg(bad == 0, "%zu pages lost writes", bad);
	free(gen);
	test_engine_destroy(&t);
}
END_TEST

/*
 * A page written through its write-protected pte and then zapped is
 * known to be written only by its missing uffd-wp bit; the read fault
 * that follows must not map it back write-protected over that evidence,
 * or the page goes as clean with its write (zeros for an aobj). Torture
 * seed 480537895 found it with a fence that failed part-way (the agent's
 * MADV_DONTNEED, refused on a range the program had just moved away)
 * and left the zapped pages active. The fence is the memfd's now
 * (zap.c), which an mlock does not stop; the locked page stays in as a
 * program's mlock would put it.
 */
START_TEST(test_partly_failed_fence)
{
	const size_t n = 64;
	struct engine_stats st;
	struct test_engine t;
	struct uobj *o;
	uint8_t *mem;

	ck_assert_int_eq(test_engine_create(&t, IOENG_AUTO, TRACK_AUTO, 1ULL << 30,
					    64ULL << 20, NULL, NULL), 0);
	ck_assert_int_eq(engine_aobj_create(t.e, n * PAGE_SIZE, 0, (void **)&mem, &o), 0);
	/* every page in, clean and write-protected (zero fill on a read) */
	for (size_t p = 0; p < n; p++)
		ck_assert_int_eq(((volatile uint8_t *)mem)[p * PAGE_SIZE], 0);
	/* wp-async: a write through the protected pte, no fault, the page word says clean */
	fill(mem, 0, 1);
	ck_assert_int_eq(mlock(mem + (n - 1) * PAGE_SIZE, PAGE_SIZE), 0);
	engine_reclaim(t.e, o, 0);
	ck_assert_msg(!page_present(mem), "the fence did not zap page 0");
	ck_assert_int_eq(munlock(mem + (n - 1) * PAGE_SIZE, PAGE_SIZE), 0);
	/* a read fault on the zapped page, then every page out */
	ck_assert(check(mem, 0, 1));
	ck_assert_int_eq(engine_reclaim(t.e, o, 0), 0);
	engine_get_stats(t.e, &st);
	ck_assert_msg(st.clean_mismatches == 0,
		      "%" PRIu64 " written pages were about to be dropped as clean",
		      st.clean_mismatches);
	ck_assert(check(mem, 0, 1));
	test_engine_destroy(&t);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("pdaemon");
	TCase *tc = tcase_create("policy");

	require_engine_env();
	tcase_set_timeout(tc, 180);
	tcase_add_test(tc, test_hot_set_survives);
	tcase_add_test(tc, test_fenced_share_follows_use);
	tcase_add_test(tc, test_fenced_fault_around);
	tcase_add_test(tc, test_object_budget);
	tcase_add_test(tc, test_laundering);
	tcase_add_test(tc, test_written_fenced_read);
	tcase_add_test(tc, test_partly_failed_fence);
	suite_add_tcase(s, tc);
	return check_run(s, CK_VERBOSE);
}
