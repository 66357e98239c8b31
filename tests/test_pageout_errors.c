/*
 * put/dropcluster against a failing swap backend (DESIGN.md §2.4, §2.6):
 * on a write error the cluster is dropped, its slots are freed (or marked
 * bad for EIO) except the centre's, the centre is retried alone once, the
 * error is reported, and the data stays resident and correct. Also: swap
 * that fills up, for real, on a small filesystem.
 */
#include <check.h>

#include "check_run.h"
#include <sched.h>
#include <stdatomic.h>
#include <inttypes.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include "engine_helpers.h"
#include "pager/page.h"

#define NPAGES 16

struct inject {
	atomic_int fail_writes;   /* fail this many writes (-1: all) */
	int err;
	atomic_uint_fast64_t first_offset;
	atomic_int failed;
};

static int inject_writes(void *ctx, const struct io_req *req)
{
	struct inject *in = ctx;
	int left;

	if (req->op != IO_WRITE)
		return 0;
	left = atomic_load(&in->fail_writes);
	if (left == 0)
		return 0;
	if (left > 0)
		atomic_fetch_sub(&in->fail_writes, 1);
	if (atomic_fetch_add(&in->failed, 1) == 0)
		atomic_store(&in->first_offset, req->offset);
	return in->err;
}

static void setup(struct test_engine *t, struct inject *in, uint8_t **mem, struct uobj **o)
{
	ck_assert_int_eq(test_engine_create(t, IOENG_AUTO, TRACK_AUTO, 0, 16ULL << 20,
					    inject_writes, in), 0);
	ck_assert_int_eq(engine_aobj_create(t->e, NPAGES * PAGE_SIZE, 0, (void **)mem, o), 0);
	for (size_t p = 0; p < NPAGES; p++)
		fill(*mem + (p << PAGE_SHIFT), p, 3);
}

static void assert_data(struct test_engine *t, struct uobj *o, uint8_t *mem)
{
	for (size_t p = 0; p < NPAGES; p++)
		ck_assert_msg(check(mem + (p << PAGE_SHIFT), p, 3), "page %zu corrupt", p);
}

/* EIO on the cluster: its slots go bad, the centre is retried in a fresh slot. */
START_TEST(test_eio_once)
{
	struct inject in = { .fail_writes = 1, .err = -EIO };
	struct engine_stats st;
	struct test_engine t;
	struct uobj *o;
	uint8_t *mem;
	unsigned state;
	uint64_t slot;

	setup(&t, &in, &mem, &o);
	ck_assert_int_eq(engine_flush(t.e, o), 0);
	engine_get_stats(t.e, &st);
	ck_assert_int_eq(atomic_load(&in.failed), 1);
	ck_assert_uint_eq(st.write_errors, 1);
	ck_assert_uint_eq(st.swap_slots_bad, NPAGES);     /* the whole failed run */
	ck_assert_uint_eq(st.swap_slots_used, NPAGES);    /* every page clean on disk */
	ck_assert_uint_eq(st.dirty_bytes, 0);
	ck_assert_int_eq(engine_page_state(t.e, o, 0, &state, &slot), 0);
	ck_assert_uint_eq(state, PG_CLEAN);
	ck_assert_uint_ne(slot, atomic_load(&in.first_offset) >> PAGE_SHIFT);
	/* and it all reads back after eviction */
	ck_assert_int_eq(engine_reclaim(t.e, o, 0), 0);
	assert_data(&t, o, mem);
	test_engine_destroy(&t);
}
END_TEST

/* A transient error: slots go back to the pool, the centre keeps its own. */
START_TEST(test_transient_once)
{
	struct inject in = { .fail_writes = 1, .err = -ENOSPC };
	struct engine_stats st;
	struct test_engine t;
	struct uobj *o;
	uint8_t *mem;
	unsigned state;
	uint64_t slot;

	setup(&t, &in, &mem, &o);
	ck_assert_int_eq(engine_flush(t.e, o), 0);
	engine_get_stats(t.e, &st);
	ck_assert_uint_eq(st.write_errors, 1);
	ck_assert_uint_eq(st.swap_slots_bad, 0);
	ck_assert_uint_eq(st.swap_slots_used, NPAGES);
	ck_assert_int_eq(engine_page_state(t.e, o, 0, &state, &slot), 0);
	ck_assert_uint_eq(state, PG_CLEAN);
	/* pages mapped writable count as written, so the centre may be written again elsewhere */
	if (st.clean_mapping)
		ck_assert_uint_eq(slot, atomic_load(&in.first_offset) >> PAGE_SHIFT);
	ck_assert_int_eq(engine_reclaim(t.e, o, 0), 0);
	assert_data(&t, o, mem);
	test_engine_destroy(&t);
}
END_TEST

/* Every write fails: flush reports it, nothing leaks, nothing is lost. */
START_TEST(test_always_failing)
{
	struct inject in = { .fail_writes = -1, .err = -EIO };
	struct engine_stats st;
	struct test_engine t;
	struct uobj *o;
	uint8_t *mem;
	unsigned state;

	setup(&t, &in, &mem, &o);
	ck_assert_int_eq(engine_flush(t.e, o), -EIO);
	engine_get_stats(t.e, &st);
	ck_assert_uint_ge(st.write_errors, 2);            /* cluster, then the centre's retry */
	ck_assert_uint_eq(st.swap_slots_used, 0);         /* no slot holds anything */
	ck_assert_uint_gt(st.swap_slots_bad, 0);
	ck_assert_uint_eq(st.dirty_bytes, NPAGES * PAGE_SIZE);
	for (size_t p = 0; p < NPAGES; p++) {
		ck_assert_int_eq(engine_page_state(t.e, o, p, &state, NULL), 0);
		ck_assert_uint_eq(state, PG_DIRTY);
	}
	/* eviction can't make room either, and keeps the pages */
	ck_assert_int_eq(engine_reclaim(t.e, o, 0), -EAGAIN);
	assert_data(&t, o, mem);
	test_engine_destroy(&t);
}
END_TEST

/*
 * Swap full for real: a sparse swap file on a 4 MiB tmpfs, an object of
 * 32 MiB under a 4 MiB budget. Writes fail with ENOSPC once the filesystem
 * is full; the program goes on over budget and loses nothing.
 */
START_TEST(test_swap_full_enospc)
{
	struct engine_config cfg;
	struct engine_stats st;
	struct engine *e;
	char err[256] = "";
	const unsigned scale = test_scale() < 4 ? test_scale() : 4;   /* 1 MiB still fills */
	const size_t npages = 8192 / scale;
	char opts[32];
	uint8_t *mem;
	struct uobj *o;

	ck_assert_int_eq(unshare(CLONE_NEWNS), 0);
	ck_assert_int_eq(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL), 0);
	mkdir("/run/uvmpager-test-full", 0700);
	snprintf(opts, sizeof(opts), "size=%uk", 4096 / scale);
	ck_assert_int_eq(mount("tmpfs", "/run/uvmpager-test-full", "tmpfs", 0, opts), 0);
	engine_config_defaults(&cfg);
	cfg.swap_path = "/run/uvmpager-test-full/swap";
	cfg.swap_size = 64ULL << 20;      /* sparse: far more than the filesystem holds */
	cfg.budget = (4ULL << 20) / scale;
	cfg.track = test_track(cfg.track);
	cfg.io = test_io(cfg.io);
	cfg.swap_no_direct = true;        /* tmpfs before 6.6 has no O_DIRECT */
	ck_assert_msg(engine_create(&cfg, &e, err, sizeof(err)) == 0, "%s", err);
	ck_assert_int_eq(engine_aobj_create(e, npages * PAGE_SIZE, 0, (void **)&mem, &o), 0);
	for (size_t p = 0; p < npages; p++)
		fill(mem + (p << PAGE_SHIFT), p, 5);
	for (size_t p = 0; p < npages; p++)
		ck_assert_msg(check(mem + (p << PAGE_SHIFT), p, 5), "page %zu lost", p);
	engine_get_stats(e, &st);
	printf("swap full: write errors %" PRIu64 " budget overruns %" PRIu64
	       " resident %" PRIu64 " MiB swapped %" PRIu64 " MiB\n", st.write_errors,
	       st.budget_overruns, st.resident_bytes >> 20, st.swapped_bytes >> 20);
	ck_assert_uint_gt(st.write_errors, 0);
	ck_assert_uint_gt(st.budget_overruns, 0);
	/*
	 * Some pages went out before the swap filled. Not swapped_bytes: with
	 * the swap full, faults are served over the budget and the pages read
	 * back may all stay in memory (CI under ASan: 0 swapped at the end).
	 */
	ck_assert_uint_gt(st.swapouts, 0);
	engine_destroy(e);
	umount("/run/uvmpager-test-full");
	rmdir("/run/uvmpager-test-full");
}
END_TEST

int main(void)
{
	Suite *s = suite_create("pageout_errors");
	TCase *tc = tcase_create("errors");

	require_engine_env();
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_eio_once);
	tcase_add_test(tc, test_transient_once);
	tcase_add_test(tc, test_always_failing);
	tcase_add_test(tc, test_swap_full_enospc);
	suite_add_tcase(s, tc);
	return check_run(s, CK_VERBOSE);
}
