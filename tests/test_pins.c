/*
 * fault/pins.c: the io_uring fdinfo text of 6.1 and 6.18 parsed, an
 * unknown answer never read as "not pinned", and a live ring's
 * registered buffers found in this process's own /proc.
 */
#include <check.h>

#include "check_run.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#ifdef HAVE_LIBURING
#include <liburing.h>
#endif

#include "fault/pins.h"

static int parse(const char *text, struct pin_range **r, size_t *n)
{
	size_t cap = 0;

	*r = NULL;
	*n = 0;
	return pins_parse_fdinfo(text, strlen(text), r, n, &cap);
}

/* 6.18 with the lock: a sparse table, the next section after it */
START_TEST(parse_buffers)
{
	struct pin_range *r;
	size_t n;

	ck_assert_int_eq(parse("SqMask:\t0x7\nSQEs:\t1\n    0: opcode:READ_FIXED, fd:3\n"
			       "UserFiles:\t0\nUserBufs:\t3\n    0: 0x7f0000001000/8192\n"
			       "    1: <none>\n    2: 0x7f0000010000/4096\nPollList:\n", &r, &n), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_uint_eq(r[0].addr, 0x7f0000001000);
	ck_assert_uint_eq(r[0].len, 8192);
	ck_assert_uint_eq(r[1].addr, 0x7f0000010000);
	free(r);
	ck_assert_int_eq(parse("UserFiles:\t0\nUserBufs:\t0\nPollList:\n", &r, &n), 0);
	ck_assert_uint_eq(n, 0);
	free(r);
}
END_TEST

/* the trylock failed: 6.1 prints the count alone, 6.18 nothing at all */
START_TEST(parse_unknown)
{
	struct pin_range *r;
	size_t n;

	ck_assert_int_eq(parse("UserFiles:\t1\nUserBufs:\t2\nPollList:\n", &r, &n), -EAGAIN);
	free(r);
	ck_assert_int_eq(parse("UserBufs:\t2\n    0: 0x1000/4096\nPollList:\n", &r, &n), -EAGAIN);
	free(r);
	ck_assert_int_eq(parse("pos:\t0\nflags:\t02000002\nmnt_id:\t17\nino:\t7\n", &r, &n), -EAGAIN);
	free(r);
}
END_TEST

START_TEST(merge)
{
	struct pin_range r[] = { { 0x5000, 0x1000 }, { 0x1000, 0x2000 }, { 0x2000, 0x2000 },
				 { 0x9000, 0x10 } };

	ck_assert_uint_eq(pin_ranges_merge(r, 4), 3);
	ck_assert_uint_eq(r[0].addr, 0x1000);
	ck_assert_uint_eq(r[0].len, 0x3000);
	ck_assert_uint_eq(r[1].addr, 0x5000);
	ck_assert_uint_eq(r[2].addr, 0x9000);
}
END_TEST

#ifdef HAVE_LIBURING
START_TEST(live_ring)
{
	static char buf[2][65536] __attribute__((aligned(4096)));
	struct iovec iov[2] = { { buf[0], 65536 }, { buf[1], 8192 } };
	const struct pin_range *r;
	struct io_uring ring;
	struct pins *p;
	size_t n;

	ck_assert_int_eq(pins_create(0, &p), 0);
	ck_assert_int_eq(pins_scan(p, &r, &n), 0);
	ck_assert_uint_eq(n, 0);
	ck_assert_int_eq(io_uring_queue_init(8, &ring, 0), 0);
	ck_assert_int_eq(io_uring_register_buffers(&ring, iov, 2), 0);
	ck_assert_int_eq(pins_scan(p, &r, &n), 0);
	ck_assert_uint_ge(n, 1);
	ck_assert_uint_eq(r[0].addr, (uintptr_t)buf[0]);
	ck_assert_uint_eq(r[n - 1].addr + r[n - 1].len, (uintptr_t)buf[1] + 8192);
	io_uring_unregister_buffers(&ring);
	ck_assert_int_eq(pins_scan(p, &r, &n), 0);
	ck_assert_uint_eq(n, 0);
	io_uring_queue_exit(&ring);
	pins_destroy(p);
}
END_TEST
#endif

int main(void)
{
	Suite *s = suite_create("pins");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, parse_buffers);
	tcase_add_test(tc, parse_unknown);
	tcase_add_test(tc, merge);
#ifdef HAVE_LIBURING
	tcase_add_test(tc, live_ring);
#endif
	suite_add_tcase(s, tc);
	return check_run(s, CK_NORMAL);
}
