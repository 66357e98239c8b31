/*
 * uvmpagerd against malformed and hostile control messages: each gets an
 * error reply and/or a closed connection, and the daemon goes on serving
 * everyone else.
 */
#include <check.h>

#include "check_run.h"
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <sys/mman.h>

#include "daemon_helpers.h"
#include "uvmpager/protocol.h"

static struct test_daemon d;

static void setup(void)
{
	int r = td_start(&d, "64M", "--no-fs", NULL);

	ck_assert_msg(r == 0, "daemon did not start: %s", strerror(-r));
}

static void teardown(void)
{
	ck_assert_int_eq(td_stop(&d), 0);
}

static int send_raw(int fd, const void *buf, size_t len, int passfd)
{
	union { char b[CMSG_SPACE(sizeof(int))]; struct cmsghdr a; } cb;
	struct iovec iov = { (void *)buf, len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

	if (passfd >= 0) {
		struct cmsghdr *cm;

		memset(&cb, 0, sizeof(cb));
		mh.msg_control = cb.b;
		mh.msg_controllen = sizeof(cb.b);
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &passfd, sizeof(int));
	}
	return sendmsg(fd, &mh, MSG_NOSIGNAL) < 0 ? -errno : 0;
}

static int send_req(int fd, uint16_t type, const void *p, size_t plen, int passfd)
{
	char buf[UVMP_MAX_MSG];
	struct uvmp_hdr h = { .len = (uint32_t)(sizeof(h) + plen), .type = type,
			      .version = UVMP_PROTO_VERSION, .seq = 7 };

	memcpy(buf, &h, sizeof(h));
	memcpy(buf + sizeof(h), p, plen);
	return send_raw(fd, buf, sizeof(h) + plen, passfd);
}

/* The status of the reply, 1 if the daemon hung up, 2 if it said nothing. */
static int reply_status(int fd)
{
	char buf[UVMP_MAX_MSG];
	struct pollfd pfd = { fd, POLLIN, 0 };
	struct uvmp_hdr *h = (struct uvmp_hdr *)buf;
	ssize_t n;

	if (poll(&pfd, 1, 3000) <= 0)
		return 2;
	n = recv(fd, buf, sizeof(buf), 0);
	if (n <= 0)
		return 1;
	ck_assert_uint_ge((size_t)n, sizeof(*h));
	ck_assert(h->type & UVMP_REPLY);
	return h->status;
}

static void assert_serving(void)
{
	struct uvmp_hello hello = { .pid = (uint32_t)getpid() };
	int fd = td_connect(d.sock);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(send_req(fd, UVMP_HELLO, &hello, sizeof(hello), -1), 0);
	ck_assert_int_eq(reply_status(fd), 0);
	close(fd);
	ck_assert_int_eq(kill(d.pid, 0), 0);
}

START_TEST(test_garbage)
{
	uint64_t seed = 0x9E3779B97F4A7C15ULL;
	unsigned hangups = 0, errors = 0;

	for (int i = 0; i < 1500; i++) {
		char buf[UVMP_MAX_MSG + 512];
		struct uvmp_hdr *h = (struct uvmp_hdr *)buf;
		size_t len;
		int fd, st;

		seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
		len = seed % sizeof(buf);
		for (size_t k = 0; k < len; k++) {
			seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
			buf[k] = (char)seed;
		}
		/* half of them look like a header, to get past the first checks */
		if (i % 2 && len >= sizeof(*h)) {
			h->len = (uint32_t)(i % 4 == 1 ? len : seed % 5000);
			h->version = i % 8 == 1 ? 9 : UVMP_PROTO_VERSION;
			h->type = (uint16_t)(seed % 16);
		}
		fd = td_connect(d.sock);
		ck_assert_int_ge(fd, 0);
		if (send_raw(fd, buf, len, -1) < 0) {
			close(fd);
			continue;
		}
		st = reply_status(fd);
		if (st == 1)
			hangups++;
		else if (st < 0)
			errors++;
		/* never a success for garbage, never silence */
		ck_assert_msg(st != 0 && st != 2, "message %d (%zu bytes) got status %d", i, len, st);
		close(fd);
	}
	printf("garbage: %u error replies, %u hang-ups\n", errors, hangups);
	assert_serving();
}
END_TEST

START_TEST(test_hostile)
{
	struct uvmp_hello hello = { .pid = (uint32_t)getpid() };
	struct uvmp_map map = { .addr = 0x10000000, .len = 1 << 20, .type = UVMP_OBJ_ANON };
	int fd, p[2], memfd;
	void *mem;

	/* someone else's pid */
	fd = td_connect(d.sock);
	hello.pid = 1;
	send_req(fd, UVMP_HELLO, &hello, sizeof(hello), -1);
	ck_assert_int_eq(reply_status(fd), -EPERM);
	close(fd);
	hello.pid = (uint32_t)getpid();

	/* requests before HELLO */
	fd = td_connect(d.sock);
	send_req(fd, UVMP_MAP, &map, sizeof(map), -1);
	ck_assert_int_eq(reply_status(fd), -EPROTO);
	ck_assert_int_eq(reply_status(fd), 1);   /* and hung up */
	close(fd);

	/* an agent claiming another client */
	fd = td_connect(d.sock);
	struct uvmp_agent ag = { .client_id = 1, .agent_token = 42 };
	send_req(fd, UVMP_AGENT, &ag, sizeof(ag), -1);
	ck_assert_int_eq(reply_status(fd), -EPERM);
	close(fd);

	/* a pipe where a userfaultfd should be */
	fd = td_connect(d.sock);
	send_req(fd, UVMP_HELLO, &hello, sizeof(hello), -1);
	ck_assert_int_eq(reply_status(fd), 0);
	ck_assert_int_eq(pipe(p), 0);
	send_req(fd, UVMP_UFFD, NULL, 0, p[0]);
	ck_assert_int_lt(reply_status(fd), 0);
	/* a MAP with no userfaultfd yet */
	memfd = memfd_create("t", MFD_CLOEXEC);
	ck_assert_int_eq(ftruncate(memfd, 1 << 20), 0);
	mem = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
	map.addr = (uintptr_t)mem;
	send_req(fd, UVMP_MAP, &map, sizeof(map), memfd);
	ck_assert_int_eq(reply_status(fd), -EPROTO);
	close(fd);
	close(p[0]);
	close(p[1]);

	/* a truncated payload */
	fd = td_connect(d.sock);
	send_req(fd, UVMP_HELLO, &hello, sizeof(hello) - 4, -1);
	ck_assert_int_eq(reply_status(fd), -EPROTO);
	close(fd);

	munmap(mem, 1 << 20);
	close(memfd);
	assert_serving();
}
END_TEST

/* HELLO's reply: the budget granted, or -errno for anything else. */
static int64_t hello_budget(int fd, uint64_t ask)
{
	struct uvmp_hello hello = { .pid = (uint32_t)getpid(), .budget = ask };
	char buf[UVMP_MAX_MSG];
	struct uvmp_hdr *h = (struct uvmp_hdr *)buf;
	struct uvmp_hello_reply rep;
	struct pollfd pfd = { fd, POLLIN, 0 };
	ssize_t n;

	ck_assert_int_eq(send_req(fd, UVMP_HELLO, &hello, sizeof(hello), -1), 0);
	ck_assert_int_gt(poll(&pfd, 1, 3000), 0);
	n = recv(fd, buf, sizeof(buf), 0);
	ck_assert_int_ge(n, (ssize_t)sizeof(*h));
	if (h->status)
		return h->status;
	ck_assert_int_eq(n, (ssize_t)(sizeof(*h) + sizeof(rep)));
	memcpy(&rep, h + 1, sizeof(rep));
	return (int64_t)rep.budget;
}

/*
 * client-budget-max is a clamp, documented and logged, never a silent
 * grant of more: a client asking for more (even 2^63) gets exactly the
 * maximum, and the reply says so; one asking for less gets what it asked;
 * one asking for none gets client-budget.
 */
START_TEST(test_budget_max)
{
	struct test_daemon dm = { 0 };
	int fd, r;

	r = td_start(&dm, "64M", "--no-fs", "--client-budget-max=16M", "--client-budget=8M", NULL);
	ck_assert_msg(r == 0, "daemon did not start: %s", strerror(-r));
	fd = td_connect(dm.sock);
	ck_assert_int_eq(hello_budget(fd, 1ULL << 63), 16 << 20);
	close(fd);
	fd = td_connect(dm.sock);
	ck_assert_int_eq(hello_budget(fd, UINT64_MAX), 16 << 20);
	close(fd);
	fd = td_connect(dm.sock);
	ck_assert_int_eq(hello_budget(fd, 4 << 20), 4 << 20);
	close(fd);
	fd = td_connect(dm.sock);
	ck_assert_int_eq(hello_budget(fd, 0), 8 << 20);
	close(fd);
	ck_assert_int_eq(kill(dm.pid, 0), 0);
	ck_assert_int_eq(td_stop(&dm), 0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("daemon_proto");
	TCase *tc = tcase_create("proto");

	require_daemon_env();
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_garbage);
	tcase_add_test(tc, test_hostile);
	suite_add_tcase(s, tc);
	tc = tcase_create("limits");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_budget_max);
	suite_add_tcase(s, tc);
	return check_run(s, CK_VERBOSE);
}
