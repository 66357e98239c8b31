/* Slot allocator: contiguity, fragmentation, exhaustion, bad slots, refs. */
#include <check.h>

#include "check_run.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "swap/slots.h"

/*
 * Check's ck_assert_* records every passing assertion with a write(2); in
 * loops of millions use this instead, which only reports failures.
 */
#define REQUIRE(cond) \
	do { \
		if (!(cond)) \
			ck_abort_msg("%s:%d: %s", __FILE__, __LINE__, #cond); \
	} while (0)

static struct slots *mk(uint64_t n)
{
	struct slots *s = NULL;

	ck_assert_int_eq(slots_create(n, &s), 0);
	ck_assert_ptr_nonnull(s);
	return s;
}

START_TEST(test_create_args)
{
	struct slots *s = NULL;
	uint64_t at;

	ck_assert_int_eq(slots_create(0, &s), -EINVAL);
	ck_assert_int_eq(slots_create(1, &s), -EINVAL);
	s = mk(2);
	ck_assert_uint_eq(slots_total(s), 1);
	ck_assert_int_eq(slots_alloc(s, 0, 0, &at), -EINVAL);
	ck_assert_int_eq(slots_alloc(s, 2, 3, &at), -EINVAL);
	ck_assert_int_eq(slots_alloc(s, SLOTS_MAX_RUN + 1, 1, &at), -EINVAL);
	ck_assert_int_eq(slots_alloc(s, 4, 1, &at), 1);
	ck_assert_uint_eq(at, 1);
	ck_assert_int_eq(slots_alloc(s, 1, 1, &at), -ENOSPC);
	slots_destroy(s);
	slots_destroy(NULL);
}
END_TEST

START_TEST(test_contiguity)
{
	struct slots *s = mk(4096);
	uint64_t at, expect = 1;

	for (int i = 0; i < 200; i++) {
		unsigned want = 1 + (unsigned)(i % 16);

		ck_assert_int_eq(slots_alloc(s, want, want, &at), (int)want);
		ck_assert_uint_eq(at, expect);
		expect += want;
	}
	ck_assert_uint_eq(slots_used(s), expect - 1);
	slots_destroy(s);
}
END_TEST

START_TEST(test_slot0_and_exhaustion)
{
	struct slots *s = mk(100);
	uint64_t at, seen = 0;
	int n;

	while ((n = slots_alloc(s, 7, 1, &at)) > 0) {
		ck_assert_uint_ne(at, 0);
		ck_assert_uint_le(at + (uint64_t)n, 100);
		seen += (uint64_t)n;
	}
	ck_assert_int_eq(n, -ENOSPC);
	ck_assert_uint_eq(seen, 99);
	ck_assert_uint_eq(slots_free_count(s), 0);
	ck_assert_uint_eq(slots_refcount(s, 0), 0);

	/* Recovery: a freed hole is found again, whole, and only it. */
	slots_free(s, 40, 5);
	ck_assert_uint_eq(slots_free_count(s), 5);
	ck_assert_int_eq(slots_alloc(s, 16, 6, &at), -ENOSPC);
	ck_assert_int_eq(slots_alloc(s, 16, 1, &at), 5);
	ck_assert_uint_eq(at, 40);
	ck_assert_int_eq(slots_alloc(s, 1, 1, &at), -ENOSPC);

	/* Bogus frees are ignored. */
	slots_free(s, 0, 1);
	slots_free(s, 100, 4);
	ck_assert_uint_eq(slots_used(s), 99);
	slots_destroy(s);
}
END_TEST

START_TEST(test_fragmentation)
{
	/* 64 runs of 16 slots, then every other run freed. */
	struct slots *s = mk(1 + 64 * 16);
	uint64_t at, starts[64];
	int n, got = 0;

	for (int i = 0; i < 64; i++) {
		ck_assert_int_eq(slots_alloc(s, 16, 16, &starts[i]), 16);
		ck_assert_uint_eq(starts[i], 1 + (uint64_t)i * 16);
	}
	for (int i = 0; i < 64; i += 2)
		slots_free(s, starts[i], 16);
	ck_assert_uint_eq(slots_free_count(s), 32 * 16);

	/* No run of 32 exists: refused at min 32, a 16 at min 8. */
	ck_assert_int_eq(slots_alloc(s, 32, 32, &at), -ENOSPC);
	ck_assert_int_eq(slots_alloc(s, 32, 17, &at), -ENOSPC);
	ck_assert_int_eq(slots_alloc(s, 64, 8, &at), 16);
	ck_assert_uint_eq((at - 1) % 32, 0);
	got += 16;
	/* Asking for less than a hole gives exactly what was asked. */
	ck_assert_int_eq(slots_alloc(s, 8, 8, &at), 8);
	ck_assert_uint_eq((at - 1) % 32, 0);
	got += 8;
	/* The rest of that hole (8) is now the best for a 16 with min 4. */
	n = slots_alloc(s, 16, 4, &at);
	ck_assert_int_eq(n, 16);
	got += n;
	while ((n = slots_alloc(s, 256, 1, &at)) > 0) {
		ck_assert_int_le(n, 16);
		ck_assert_uint_eq(slots_refcount(s, at), 1);
		got += n;
	}
	ck_assert_int_eq(n, -ENOSPC);
	ck_assert_int_eq(got, 32 * 16);
	slots_destroy(s);
}
END_TEST

START_TEST(test_straddle)
{
	struct slots *s = mk(1000);
	uint64_t at;

	/* 1..60, then 61..70 crosses the word boundary at 64. */
	ck_assert_int_eq(slots_alloc(s, 60, 60, &at), 60);
	ck_assert_int_eq(slots_alloc(s, 10, 10, &at), 10);
	ck_assert_uint_eq(at, 61);
	for (uint64_t i = 61; i < 71; i++)
		ck_assert_uint_eq(slots_refcount(s, i), 1);
	ck_assert_uint_eq(slots_refcount(s, 71), 0);

	/* A maximal run spans five words. */
	ck_assert_int_eq(slots_alloc(s, 256, 256, &at), 256);
	ck_assert_uint_eq(at, 71);

	/* Fill, then open a hole across two words and find it whole. */
	while (slots_alloc(s, 256, 1, &at) > 0)
		;
	slots_free(s, 124, 9);
	ck_assert_int_eq(slots_alloc(s, 9, 9, &at), 9);
	ck_assert_uint_eq(at, 124);

	/* A hole across three words (190..330), built from separate frees. */
	slots_free(s, 190, 100);
	slots_free(s, 290, 41);
	ck_assert_int_eq(slots_alloc(s, 141, 141, &at), 141);
	ck_assert_uint_eq(at, 190);
	ck_assert_uint_eq(slots_free_count(s), 0);

	/* The tail word: slots past nslots are never handed out. */
	slots_free(s, 990, 10);
	ck_assert_int_eq(slots_alloc(s, 64, 1, &at), 10);
	ck_assert_uint_eq(at, 990);
	slots_destroy(s);
}
END_TEST

START_TEST(test_bad_slots)
{
	struct slots *s = mk(300);
	uint64_t at;
	int n;

	REQUIRE((slots_alloc(s, 16, 16, &at)) == (16));
	REQUIRE((at) == (1));
	/* Bad while allocated: the owner keeps it until it frees it. */
	slots_mark_bad(s, 5);
	REQUIRE(slots_is_bad(s, 5));
	REQUIRE((slots_refcount(s, 5)) == (1));
	REQUIRE((slots_bad(s)) == (1));
	slots_free(s, 1, 16);
	REQUIRE((slots_used(s)) == (0));
	REQUIRE((slots_refcount(s, 5)) == (0));
	/* Bad while free. */
	slots_mark_bad(s, 200);
	slots_mark_bad(s, 200);
	REQUIRE((slots_bad(s)) == (2));
	REQUIRE((slots_free_count(s)) == (299 - 2));
	REQUIRE(!slots_is_bad(s, 6));

	/* Drain in every run size: neither bad slot ever comes back. */
	for (unsigned want = 1; want <= 64; want *= 4) {
		uint64_t total = 0;

		while ((n = slots_alloc(s, want, 1, &at)) > 0) {
			REQUIRE(at > 5 || at + (uint64_t)n <= 5);
			REQUIRE(at > 200 || at + (uint64_t)n <= 200);
			total += (uint64_t)n;
		}
		REQUIRE((total) == (299 - 2));
		slots_free(s, 1, 299);
		REQUIRE((slots_used(s)) == (0));
	}
	REQUIRE((slots_bad(s)) == (2));
	slots_destroy(s);
}
END_TEST

START_TEST(test_refcount)
{
	struct slots *s = mk(64);
	uint64_t at, other;

	ck_assert_int_eq(slots_alloc(s, 1, 1, &at), 1);
	ck_assert_int_eq(slots_ref(s, at), 0);
	ck_assert_uint_eq(slots_refcount(s, at), 2);
	ck_assert_int_eq(slots_ref(s, at), 0);
	ck_assert_uint_eq(slots_refcount(s, at), 3);
	slots_free(s, at, 1);
	slots_free(s, at, 1);
	ck_assert_uint_eq(slots_refcount(s, at), 1);
	ck_assert_uint_eq(slots_used(s), 1);
	/* Still allocated: the next run starts after it. */
	ck_assert_int_eq(slots_alloc(s, 1, 1, &other), 1);
	ck_assert_uint_ne(other, at);
	slots_free(s, at, 1);
	ck_assert_uint_eq(slots_refcount(s, at), 0);
	ck_assert_uint_eq(slots_used(s), 1);
	/* Free slots cannot be referenced. */
	ck_assert_int_eq(slots_ref(s, at), -EINVAL);
	ck_assert_int_eq(slots_ref(s, 0), -EINVAL);
	ck_assert_int_eq(slots_ref(s, 64), -EINVAL);
	slots_destroy(s);
}
END_TEST

START_TEST(test_refcount_table)
{
	/* Enough shared slots to grow, probe and shrink the table. */
	enum { N = 20000 };
	struct slots *s = mk(N + 1);
	size_t base;
	uint64_t at;

	REQUIRE((slots_alloc(s, 256, 1, &at)) == (256));
	while (slots_alloc(s, 256, 1, &at) > 0)
		;
	base = slots_memory(s);
	for (uint64_t i = 1; i <= N; i++)
		for (uint64_t k = 0; k < i % 4; k++)
			REQUIRE((slots_ref(s, i)) == (0));
	ck_assert_uint_gt(slots_memory(s), base);
	for (uint64_t i = 1; i <= N; i++)
		REQUIRE((slots_refcount(s, i)) == (1 + i % 4));
	/* Free in a scattered order, one reference at a time. */
	for (int round = 0; round < 4; round++)
		for (uint64_t i = 1; i <= N; i++) {
			uint64_t slot = 1 + (i * 7919) % N;

			if (slots_refcount(s, slot))
				slots_free(s, slot, 1);
			REQUIRE(slots_refcount(s, slot) ==
				(round < (int)(slot % 4) + 1 ? slot % 4 - (uint64_t)round : 0));
		}
	REQUIRE((slots_used(s)) == (0));
	REQUIRE((slots_free_count(s)) == (N));
	ck_assert_uint_le(slots_memory(s), base + 64 * 16);
	slots_destroy(s);
}
END_TEST

/* Single-slot holes must not make a "min 2" allocation scan forever. */
START_TEST(test_holes)
{
	struct slots *s = mk(1 << 16);
	uint64_t at;

	while (slots_alloc(s, 256, 1, &at) > 0)
		;
	for (uint64_t i = 3; i < (1 << 16); i += 3)
		slots_free(s, i, 1);
	REQUIRE((slots_alloc(s, 16, 2, &at)) == (-ENOSPC));
	for (int i = 0; i < 10000; i++)
		REQUIRE((slots_alloc(s, 16, 2, &at)) == (-ENOSPC));
	/* A merged hole is found again: 3000..3003 once 3001, 3002 are freed. */
	slots_free(s, 3001, 2);
	REQUIRE((slots_alloc(s, 16, 2, &at)) == (4));
	REQUIRE((at) == (3000));
	REQUIRE((slots_alloc(s, 16, 1, &at)) == (1));
	slots_destroy(s);
}
END_TEST

/* Random operations against a byte-per-slot model. */
START_TEST(test_model)
{
	enum { N = 1000 };
	struct slots *s = mk(N);
	unsigned char refs[N] = { 0 }, bad[N] = { 0 };
	unsigned seed = 12345;

	for (int op = 0; op < 40000; op++) {
		unsigned r = (unsigned)rand_r(&seed);
		uint64_t slot = 1 + r / 8 % (N - 1);

		switch (r % 8) {
		case 0: case 1: case 2: {
			unsigned want = 1 + r / 16 % 32, min = 1 + r / 1024 % want;
			unsigned longest = 0, cur = 0;
			uint64_t at;
			int n;

			for (int i = 1; i < N; i++) {
				cur = refs[i] || bad[i] ? 0 : cur + 1;
				longest = MAX(longest, cur);
			}
			n = slots_alloc(s, want, min, &at);
			if (longest < min) {
				REQUIRE((n) == (-ENOSPC));
				break;
			}
			REQUIRE(n == (int)MIN(want, longest));
			for (uint64_t i = at; i < at + (uint64_t)n; i++) {
				REQUIRE(!refs[i] && !bad[i]);
				refs[i] = 1;
			}
			break;
		}
		case 3: case 4: {
			unsigned len = 1 + r / 16 % 8;

			for (uint64_t i = slot; i < MIN(slot + len, (uint64_t)N); i++) {
				if (refs[i])
					refs[i]--;
			}
			slots_free(s, slot, len);
			break;
		}
		case 5:
			REQUIRE((slots_ref(s, slot)) == (refs[slot] ? 0 : -EINVAL));
			if (refs[slot])
				refs[slot]++;
			break;
		case 6:
			if (r / 8192 % 16 == 0) {
				slots_mark_bad(s, slot);
				bad[slot] = 1;
			}
			break;
		default: {
			uint64_t used = 0, nbad = 0, nfree = 0;

			for (int i = 1; i < N; i++) {
				REQUIRE((slots_refcount(s, (uint64_t)i)) == (refs[i]));
				REQUIRE((slots_is_bad(s, (uint64_t)i)) == (bad[i]));
				used += refs[i] > 0;
				nbad += bad[i];
				nfree += !refs[i] && !bad[i];
			}
			REQUIRE((slots_used(s)) == (used));
			REQUIRE((slots_bad(s)) == (nbad));
			REQUIRE((slots_free_count(s)) == (nfree));
			break;
		}
		}
	}
	slots_destroy(s);
}
END_TEST

/* 64 GiB of swap: 16M slots, filled in 16-slot runs and emptied. */
START_TEST(test_big)
{
	const uint64_t n = 16ULL << 20;
	struct slots *s = mk(n);
	uint64_t at, expect = 1, t0 = now_ns();
	double secs;
	int r;

	ck_assert_uint_lt(slots_memory(s), 5 << 20);
	while ((r = slots_alloc(s, 16, 1, &at)) > 0) {
		if (at != expect)
			ck_abort_msg("run at %llu, expected %llu", (unsigned long long)at,
				     (unsigned long long)expect);
		expect += (uint64_t)r;
	}
	ck_assert_int_eq(r, -ENOSPC);
	ck_assert_uint_eq(slots_used(s), n - 1);
	for (uint64_t i = 1; i < n; i += 16)
		slots_free(s, i, 16);
	ck_assert_uint_eq(slots_used(s), 0);
	/* Refill after a wrap: the cursor restarts at the front. */
	ck_assert_int_eq(slots_alloc(s, 16, 16, &at), 16);
	secs = (double)(now_ns() - t0) / 1e9;
	ck_assert_msg(secs < 2.0, "16M slots took %.2f s", secs);
	ck_assert_uint_lt(slots_memory(s), 5 << 20);
	slots_destroy(s);
}
END_TEST

static Suite *suite(void)
{
	Suite *su = suite_create("slots");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_create_args);
	tcase_add_test(tc, test_contiguity);
	tcase_add_test(tc, test_slot0_and_exhaustion);
	tcase_add_test(tc, test_fragmentation);
	tcase_add_test(tc, test_straddle);
	tcase_add_test(tc, test_bad_slots);
	tcase_add_test(tc, test_refcount);
	tcase_add_test(tc, test_refcount_table);
	tcase_add_test(tc, test_holes);
	tcase_add_test(tc, test_model);
	tcase_add_test(tc, test_big);
	suite_add_tcase(su, tc);
	return su;
}

int main(void)
{
	return check_run(suite(), CK_NORMAL);
}
