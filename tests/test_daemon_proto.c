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
#include <sys/syscall.h>
#include <sys/param.h>
#include <sys/wait.h>
#include <grp.h>

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

	/* an oversized datagram: an error reply, then the hang-up */
	{
		static char big[UVMP_MAX_MSG + 1000];
		struct uvmp_hdr bh = { .len = sizeof(big), .type = UVMP_HELLO,
				       .version = UVMP_PROTO_VERSION, .seq = 9 };

		memcpy(big, &bh, sizeof(bh));
		fd = td_connect(d.sock);
		ck_assert_int_eq(send_raw(fd, big, sizeof(big), -1), 0);
		ck_assert_int_eq(reply_status(fd), -EMSGSIZE);
		ck_assert_int_eq(reply_status(fd), 1);
		close(fd);
	}

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

/* A request's status, its payload (up to plen bytes) in p. */
static int call(int fd, uint16_t type, const void *req, size_t rlen, int passfd, void *p, size_t plen)
{
	char buf[UVMP_MAX_MSG];
	struct uvmp_hdr *h = (struct uvmp_hdr *)buf;
	struct pollfd pfd = { fd, POLLIN, 0 };
	ssize_t n;

	if (send_req(fd, type, req, rlen, passfd) < 0)
		return 1;
	if (poll(&pfd, 1, 5000) <= 0)
		return 2;
	n = recv(fd, buf, sizeof(buf), 0);
	if (n < (ssize_t)sizeof(*h))
		return 1;
	if (p && !h->status)
		memcpy(p, h + 1, MIN(plen, (size_t)n - sizeof(*h)));
	return h->status;
}

/* A client as the library makes one: HELLO, then its own userfaultfd. */
static int raw_client(void)
{
	struct uvmp_hello hello = { .pid = (uint32_t)getpid() };
	int fd = td_connect(d.sock), uffd;

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(call(fd, UVMP_HELLO, &hello, sizeof(hello), -1, NULL, 0), 0);
	uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	ck_assert_int_ge(uffd, 0);
	ck_assert_int_eq(call(fd, UVMP_UFFD, NULL, 0, uffd, NULL, 0), 0);
	close(uffd);
	return fd;
}

/*
 * MAP requests that name memory the client does not hand over properly:
 * absurd sizes, unaligned or wrapping ranges, a memfd smaller than the
 * range, an object over another one. Each is refused; the daemon goes on.
 */
START_TEST(test_map_hostile)
{
	const size_t len = 1 << 20;
	struct uvmp_map map = { .len = len, .type = UVMP_OBJ_ANON };
	struct uvmp_map_reply rep = { 0 };
	int fd = raw_client(), memfd, small, st;
	char *mem;

	memfd = memfd_create("t", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	ck_assert_int_eq(ftruncate(memfd, (off_t)len), 0);
	mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
	ck_assert_ptr_ne(mem, MAP_FAILED);
	/* a memfd that cannot be sealed against shrinking is refused */
	{
		int unsealable = memfd_create("t", MFD_CLOEXEC);

		ck_assert_int_eq(ftruncate(unsealable, (off_t)len), 0);
		map.addr = (uintptr_t)mem;
		ck_assert_int_eq(call(fd, UVMP_MAP, &map, sizeof(map), unsealable, NULL, 0), -EINVAL);
		close(unsealable);
	}
	map.addr = (uintptr_t)mem;

	/* absurd, unaligned, wrapping */
	map.len = 1ULL << 62;
	ck_assert_int_lt(call(fd, UVMP_MAP, &map, sizeof(map), memfd, NULL, 0), 0);
	map.len = 0;
	ck_assert_int_lt(call(fd, UVMP_MAP, &map, sizeof(map), memfd, NULL, 0), 0);
	map.len = len - 1;
	ck_assert_int_lt(call(fd, UVMP_MAP, &map, sizeof(map), memfd, NULL, 0), 0);
	map.len = len;
	map.addr = (uintptr_t)mem + 1;
	ck_assert_int_lt(call(fd, UVMP_MAP, &map, sizeof(map), memfd, NULL, 0), 0);
	map.addr = UINT64_MAX & ~4095ULL;
	ck_assert_int_lt(call(fd, UVMP_MAP, &map, sizeof(map), memfd, NULL, 0), 0);
	map.addr = (uintptr_t)mem;
	map.offset = 4096;
	ck_assert_int_lt(call(fd, UVMP_MAP, &map, sizeof(map), memfd, NULL, 0), 0);
	map.offset = 0;
	/* a memfd smaller than the range */
	small = memfd_create("small", MFD_CLOEXEC);
	ck_assert_int_eq(ftruncate(small, 4096), 0);
	ck_assert_int_lt(call(fd, UVMP_MAP, &map, sizeof(map), small, NULL, 0), 0);
	/* a pipe for a memfd */
	{
		int p[2];

		ck_assert_int_eq(pipe(p), 0);
		ck_assert_int_lt(call(fd, UVMP_MAP, &map, sizeof(map), p[0], NULL, 0), 0);
		close(p[0]);
		close(p[1]);
	}

	/* the real one, then an overlapping second object */
	st = call(fd, UVMP_MAP, &map, sizeof(map), memfd, &rep, sizeof(rep));
	ck_assert_int_eq(st, 0);
	ck_assert_uint_ne(rep.object_id, 0);
	memset(mem, 0x5a, len);
	st = call(fd, UVMP_MAP, &map, sizeof(map), memfd, NULL, 0);
	ck_assert_msg(st < 0, "an object over another one: status %d", st);

	/* an UNMAP/RELEASE of memory that is not ours to manage: no effect */
	{
		struct uvmp_range rg = { .addr = 4096 * 16, .len = 1 << 20 };

		ck_assert_int_eq(call(fd, UVMP_RELEASE, &rg, sizeof(rg), -1, NULL, 0), 0);
		rg.addr = UINT64_MAX & ~4095ULL;
		rg.len = 8192;
		ck_assert_int_lt(call(fd, UVMP_RELEASE, &rg, sizeof(rg), -1, NULL, 0), 0);
	}
	ck_assert_int_eq((unsigned char)mem[len / 2], 0x5a);

	/* the client shrinks the memfd under the daemon, then asks for a flush */
	{
		struct uvmp_obj ob = { .object_id = rep.object_id };

		/* sealed by the daemon at MAP: the shrink fails, the flush works */
		ck_assert_int_eq(ftruncate(memfd, 0), -1);
		ck_assert_int_eq(errno, EPERM);
		st = call(fd, UVMP_FLUSH, &ob, sizeof(ob), -1, NULL, 0);
		ck_assert_int_eq(st, 0);
	}
	ck_assert_int_eq(kill(d.pid, 0), 0);
	close(fd);
	close(small);
	munmap(mem, len);
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

/*
 * A user outside the socket's group (nobody) cannot connect at all: the
 * socket's mode is the boundary (uvmpager(7), SECURITY MODEL).
 */
START_TEST(test_stranger_cannot_connect)
{
	struct test_daemon dm = { 0 };
	pid_t pid;
	int status, r, fd;

	/* the test daemons' 0666 (other tests connect as other users) overridden */
	r = td_start(&dm, "64M", "--no-fs", "--socket-mode=0600", NULL);
	ck_assert_msg(r == 0, "daemon did not start: %s", strerror(-r));
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		if (setgroups(0, NULL) < 0 || setgid(65534) < 0 || setuid(65534) < 0)
			_exit(3);
		fd = td_connect(dm.sock);
		_exit(fd >= 0 ? 1 : errno == EACCES || errno == EPERM ? 0 : 10 + errno);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      "nobody could connect (or could not drop privileges): status %#x", status);
	fd = td_connect(dm.sock);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(hello_budget(fd, 0), 0);
	close(fd);
	ck_assert_int_eq(td_stop(&dm), 0);
}
END_TEST

/*
 * A user may not exhaust the daemon for the others: a user's programs
 * connected at once and its objects are limited (max-clients-per-user,
 * max-objects-per-user), one more refused with EDQUOT; root has no limit.
 * The child runs as nobody and reports by exit status.
 */
static int limits_child(const char *sock)
{
	struct uvmp_hello hello = { .pid = (uint32_t)getpid() };
	struct uvmp_map map = { .len = 1 << 20, .type = UVMP_OBJ_ANON };
	struct uvmp_map_reply rep;
	int fd[3], uffd, r;

	if (setgroups(0, NULL) < 0 || setgid(65534) < 0 || setuid(65534) < 0)
		return 3;
	for (int i = 0; i < 3; i++) {
		fd[i] = td_connect(sock);
		if (fd[i] < 0)
			return 4;
		r = call(fd[i], UVMP_HELLO, &hello, sizeof(hello), -1, NULL, 0);
		if (i < 2 && r != 0)
			return 5;
		if (i == 2 && r != -EDQUOT)
			return 6;
	}
	/* what an unprivileged user may create (vm.unprivileged_userfaultfd is 0) */
	uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | 1 /* UFFD_USER_MODE_ONLY */);
	if (uffd < 0)
		return 7;
	if (call(fd[0], UVMP_UFFD, NULL, 0, uffd, NULL, 0) != 0)
		return 10;
	for (int i = 0; i < 4; i++) {
		int memfd = memfd_create("t", MFD_CLOEXEC | MFD_ALLOW_SEALING);
		void *mem;

		if (memfd < 0 || ftruncate(memfd, 1 << 20) < 0)
			return 8;
		mem = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
		if (mem == MAP_FAILED)
			return 8;
		map.addr = (uintptr_t)mem;
		r = call(fd[0], UVMP_MAP, &map, sizeof(map), memfd, &rep, sizeof(rep));
		if (i < 3 && r != 0)
			return 20 + i;
		if (i == 3 && r != -EDQUOT)
			return 9;
	}
	/* the second connection's objects count for the same user */
	return 0;
}

START_TEST(test_user_limits)
{
	struct test_daemon dm = { 0 };
	pid_t pid;
	int status, r, fd[3];

	r = td_start(&dm, "64M", "--no-fs", "--max-clients-per-user=2",
		     "--max-objects-per-user=3", NULL);
	ck_assert_msg(r == 0, "daemon did not start: %s", strerror(-r));
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		_exit(limits_child(dm.sock));
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      "nobody's limits: exit status %#x (see limits_child)", status);
	/* root: no limit, and the user's programs gone, nothing of theirs is left */
	for (int i = 0; i < 3; i++) {
		fd[i] = td_connect(dm.sock);
		ck_assert_int_ge(fd[i], 0);
		ck_assert_int_ge(hello_budget(fd[i], 0), 0);
	}
	for (int i = 0; i < 3; i++)
		close(fd[i]);
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
	tcase_add_test(tc, test_map_hostile);
	suite_add_tcase(s, tc);
	tc = tcase_create("limits");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_budget_max);
	tcase_add_test(tc, test_stranger_cannot_connect);
	tcase_add_test(tc, test_user_limits);
	suite_add_tcase(s, tc);
	return check_run(s, CK_VERBOSE);
}
