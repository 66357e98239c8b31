/*
 * uvmpagerd with several client processes: users cannot see or change
 * each other's objects; a client killed mid-run gives every slot back and
 * the daemon serves the next one; clients share one global budget, which
 * holds; SIGTERM hands every swapped page back and the client goes on
 * with all its data.
 */
#include <check.h>
#include <poll.h>
#include <stdint.h>
#include <sys/wait.h>

#include "check_run.h"
#include "daemon_helpers.h"
#include "uvmpager/uvmpager.h"

#define PAGE 4096UL

static struct test_daemon d;

static uint64_t word(size_t p, size_t w, unsigned gen)
{
	return (p << 16 | w) ^ ((uint64_t)gen << 56);
}

static void write_page(uint8_t *m, size_t p, unsigned gen)
{
	for (size_t w = 0; w < PAGE / 8; w += 64)
		((uint64_t *)(m + p * PAGE))[w] = word(p, w, gen);
}

static bool page_ok(const uint8_t *m, size_t p, unsigned gen)
{
	for (size_t w = 0; w < PAGE / 8; w += 64)
		if (((const uint64_t *)(m + p * PAGE))[w] != word(p, w, gen))
			return false;
	return true;
}

static void fill_pages(uint8_t *m, size_t pages, unsigned gen)
{
	for (size_t p = 0; p < pages; p++)
		write_page(m, p, gen);
}

static size_t bad_pages(const uint8_t *m, size_t pages, unsigned gen)
{
	size_t bad = 0;

	for (size_t p = 0; p < pages; p++)
		bad += !page_ok(m, p, gen);
	return bad;
}

/* Child: connect (as uid when non-zero), map `bytes`, fill; returns the mapping. */
static uint8_t *child_object(uid_t uid, size_t bytes, uint64_t budget, struct uvmpager **c,
			     uint64_t *id)
{
	uint8_t *m;

	if (uid && (setresgid(uid, uid, uid) || setresuid(uid, uid, uid)))
		_exit(90);
	if (uvmpager_connect(d.sock, budget, c) < 0)
		_exit(91);
	if (uvmpager_anon_create(*c, bytes, 0, (void **)&m, id) < 0)
		_exit(92);
	fill_pages(m, bytes / PAGE, 1);
	return m;
}

static void tell(int fd, uint64_t v)
{
	if (write(fd, &v, sizeof(v)) != sizeof(v))
		_exit(93);
}

static uint64_t hear(int fd)
{
	uint64_t v = 0;

	if (read(fd, &v, sizeof(v)) != sizeof(v))
		return UINT64_MAX;
	return v;
}

static int wait_child(pid_t pid)
{
	int st;

	waitpid(pid, &st, 0);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

START_TEST(test_users_isolated)
{
	int a2t[2], t2a[2], b2t[2];
	pid_t a, b;
	uint64_t id, addr;

	ck_assert_int_eq(td_start(&d, "64M", NULL), 0);
	ck_assert_int_eq(pipe(a2t) | pipe(t2a) | pipe(b2t), 0);
	a = fork();
	if (a == 0) {
		struct uvmpager *c;
		uint64_t oid;
		uint8_t *m = child_object(1001, 16 << 20, 0, &c, &oid);

		tell(a2t[1], oid);
		tell(a2t[1], (uintptr_t)m);
		hear(t2a[0]);   /* B has had its go */
		_exit(bad_pages(m, (16 << 20) / PAGE, 1) ? 10 : 0);
	}
	id = hear(a2t[0]);
	addr = hear(a2t[0]);
	ck_assert_uint_ne(id, UINT64_MAX);
	b = fork();
	if (b == 0) {
		struct uvmp_obj_stat st;
		struct uvmpager *c;
		uint64_t mine;
		uint8_t *m = child_object(1002, 1 << 20, 0, &c, &mine);

		(void)m;
		/* another user's object does not exist for B */
		if (uvmpager_stat(c, id, &st) != -ENOENT)
			_exit(20);
		if (uvmpager_flush(c, id) != -ENOENT)
			_exit(21);
		if (uvmpager_set_budget(c, id, 4096) != -ENOENT)
			_exit(22);
		/* releasing "A's" range names nothing of B's: A keeps its data */
		if (uvmpager_release(c, (void *)(uintptr_t)addr, 16 << 20) < 0)
			_exit(23);
		_exit(0);
	}
	ck_assert_int_eq(wait_child(b), 0);
	tell(t2a[1], 1);
	ck_assert_int_eq(wait_child(a), 0);
	ck_assert_int_eq(td_stop(&d), 0);
}
END_TEST

START_TEST(test_killed_client)
{
	int p[2];
	pid_t a, b;
	long long used = -1, clients = -1;

	ck_assert_int_eq(td_start(&d, "64M", NULL), 0);
	ck_assert_int_eq(pipe(p), 0);
	a = fork();
	if (a == 0) {
		struct uvmpager *c;
		uint64_t id;

		/* 64 MiB under a 16 MiB budget: most of it in swap */
		child_object(0, 64 << 20, 16 << 20, &c, &id);
		tell(p[1], 1);
		for (;;)
			pause();
	}
	ck_assert_uint_eq(hear(p[0]), 1);
	ck_assert_int_gt(td_stat(&d, "swap_slots_used"), 0);
	kill(a, SIGKILL);
	waitpid(a, NULL, 0);
	/* within a second, everything it had is free */
	for (int i = 0; i < 100; i++) {
		used = td_stat(&d, "swap_slots_used");
		clients = td_stat(&d, "clients");
		if (used == 0 && clients == 0)
			break;
		usleep(10000);
	}
	ck_assert_int_eq(used, 0);
	ck_assert_int_eq(clients, 0);
	ck_assert_int_eq(td_stat(&d, "objects"), 0);
	b = fork();
	if (b == 0) {
		struct uvmpager *c;
		uint64_t id;
		uint8_t *m = child_object(0, 32 << 20, 8 << 20, &c, &id);

		_exit(bad_pages(m, (32 << 20) / PAGE, 1) ? 30 : 0);
	}
	ck_assert_int_eq(wait_child(b), 0);
	ck_assert_int_eq(td_stop(&d), 0);
}
END_TEST

START_TEST(test_global_budget)
{
	const size_t bytes = 48 << 20;
	pid_t kids[3];
	long long peak = 0;
	int running = 3;

	ck_assert_int_eq(td_start(&d, "32M", NULL), 0);
	for (int i = 0; i < 3; i++) {
		kids[i] = fork();
		if (kids[i] == 0) {
			struct uvmpager *c;
			uint64_t id, seed = 77 + i;
			size_t pages = bytes / PAGE;
			uint8_t *m = child_object(0, bytes, 0, &c, &id);
			unsigned *gen = calloc(pages, sizeof(unsigned));

			for (size_t p = 0; p < pages; p++)
				gen[p] = 1;
			for (int k = 0; k < 20000; k++) {
				size_t pg;

				seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
				pg = seed % pages;
				if (!page_ok(m, pg, gen[pg]))
					_exit(40);
				if (seed % 3 == 0)
					write_page(m, pg, ++gen[pg]);
			}
			for (size_t p = 0; p < pages; p++)
				if (!page_ok(m, p, gen[p]))
					_exit(41);
			_exit(0);
		}
	}
	/* sample the resident set while they run; all must end well */
	while (running) {
		long long r = td_stat(&d, "resident_bytes");

		if (r > peak)
			peak = r;
		running = 0;
		for (int i = 0; i < 3; i++) {
			int st;

			if (!kids[i])
				continue;
			if (waitpid(kids[i], &st, WNOHANG) == 0) {
				running++;
				continue;
			}
			ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "client %d: status %#x", i, st);
			kids[i] = 0;
		}
		usleep(2000);
	}
	printf("three clients of 48 MiB under 32 MiB: resident peaked at %lld MiB\n", peak >> 20);
	ck_assert_int_le(peak, 32LL << 20);
	ck_assert_int_gt(td_stat(&d, "swapouts"), 0);
	ck_assert_int_eq(td_stop(&d), 0);
}
END_TEST

START_TEST(test_sigterm_hands_back)
{
	int c2t[2], t2c[2];
	pid_t a;

	ck_assert_int_eq(td_start(&d, "64M", NULL), 0);
	ck_assert_int_eq(pipe(c2t) | pipe(t2c), 0);
	a = fork();
	if (a == 0) {
		struct uvmpager *c;
		uint64_t id;
		uint8_t *m = child_object(0, 64 << 20, 16 << 20, &c, &id);

		tell(c2t[1], 1);
		hear(t2c[0]);   /* the daemon is gone now */
		_exit(bad_pages(m, (64 << 20) / PAGE, 1) ? 50 : 0);
	}
	ck_assert_uint_eq(hear(c2t[0]), 1);
	ck_assert_int_gt(td_stat(&d, "swapped_bytes"), 0);
	/* a clean shutdown: every swapped page goes back to the client first */
	kill(d.pid, SIGTERM);
	ck_assert_int_eq(wait_child(d.pid), 0);
	d.pid = 0;
	tell(t2c[1], 1);
	ck_assert_int_eq(wait_child(a), 0);
	td_stop(&d);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("daemon_clients");
	TCase *tc = tcase_create("clients");

	require_daemon_env();
	tcase_set_timeout(tc, 180);
	tcase_add_test(tc, test_users_isolated);
	tcase_add_test(tc, test_killed_client);
	tcase_add_test(tc, test_global_budget);
	tcase_add_test(tc, test_sigterm_hands_back);
	suite_add_tcase(s, tc);
	return check_run(s, CK_VERBOSE);
}
