/*
 * The programs run-isolation.sh starts as real unprivileged users, each
 * as the user it names:
 *
 *   hold MIB      (user A, under the shim) maps MIB MiB of private memory,
 *                 fills it with a known pattern, prints "ready ADDR LEN",
 *                 then waits: SIGUSR1 checks every page (printing
 *                 "check PAGES BAD"), SIGTERM checks once more and exits,
 *                 0 when no check ever found a bad page
 *   connect SOCK  (a user outside the socket's group) connects: exits 0
 *                 when the kernel refuses with EACCES
 *   attack SOCK SHMFILE ID:ADDR:LEN...  (user B, in the group) tries
 *                 to reach user A's objects and memory through the
 *                 socket, and to make the daemon register memory B does
 *                 not own; every attempt must be refused (or, for a
 *                 RELEASE/UNMAP of addresses that are none of B's
 *                 objects, be a no-op). Prints "attack: N refused, M
 *                 no-ops" and exits 0, or the number of the check that
 *                 failed
 *   foreign-uffd SOCK  (user B) sends the daemon a userfaultfd made by
 *                 its own child (a forked copy of its address space):
 *                 the daemon must refuse to register memory through it;
 *                 B's own memory and the child's stay as they were
 *   uffd-give SOCK PATH  (user A) hands its own userfaultfd to whoever
 *                 connects to PATH, with a memfd mapped at a fixed
 *                 address; checks its pages once told
 *   uffd-take SOCK PATH  (user B) sends A's userfaultfd to the daemon and
 *                 a MAP of its own memfd mapped at the same address: the
 *                 daemon must refuse (EBADF)
 *
 * Exit codes over 100 mean the helper itself could not run.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/userfaultfd.h>

#include "uvmpager/protocol.h"
#include "uvmpager/uvmpager.h"

#define PAGE 4096UL
#define MAGIC 0x6a09e667f3bcc908ULL

#ifndef USERFAULTFD_IOC_NEW
#define USERFAULTFD_IOC_NEW _IO(0xAA, 0x00)
#endif

static int check_no;   /* the check under way: the exit code if it fails */
static unsigned refused, noops;

static void fail(const char *what, long got)
{
	fprintf(stderr, "FAIL check %d: %s (got %ld)\n", check_no, what, got);
	exit(check_no);
}

/* ---- hold ---- */

static volatile sig_atomic_t want_check, want_exit;

static void on_signal(int sig)
{
	if (sig == SIGUSR1)
		want_check = 1;
	else
		want_exit = 1;
}

static uint64_t word(size_t page, size_t w)
{
	return (page << 20 | w) ^ MAGIC;
}

static size_t bad_pages(const uint64_t *m, size_t pages)
{
	size_t bad = 0;

	for (size_t p = 0; p < pages; p++)
		for (size_t w = 0; w < PAGE / 8; w += 32)
			if (m[p * (PAGE / 8) + w] != word(p, w)) {
				bad++;
				break;
			}
	return bad;
}

static int hold(size_t mib)
{
	size_t len = mib << 20, pages = len / PAGE, total_bad = 0;
	struct sigaction sa = { .sa_handler = on_signal };
	uint64_t *m;

	sigaction(SIGUSR1, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		return 101;
	for (size_t p = 0; p < pages; p++)
		for (size_t w = 0; w < PAGE / 8; w += 32)
			m[p * (PAGE / 8) + w] = word(p, w);
	printf("ready %#" PRIxPTR " %zu\n", (uintptr_t)m, len);
	fflush(stdout);
	for (;;) {
		if (want_check || want_exit) {
			size_t bad = bad_pages(m, pages);

			total_bad += bad;
			printf("check %zu %zu\n", pages, bad);
			fflush(stdout);
			want_check = 0;
			if (want_exit)
				return total_bad ? 1 : 0;
		}
		pause();
	}
}

/* ---- connect ---- */

static int sock_connect(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;

		close(fd);
		return -e;
	}
	return fd;
}

static int connect_refused(const char *sock)
{
	int fd = sock_connect(sock);

	if (fd >= 0) {
		fprintf(stderr, "FAIL: connected as uid %u\n", (unsigned)getuid());
		return 1;
	}
	printf("connect as uid %u: %s\n", (unsigned)getuid(), strerror(-fd));
	return fd == -EACCES ? 0 : 2;
}

/* ---- the raw protocol ---- */

static int send_req(int fd, uint16_t type, const void *p, size_t plen, int passfd)
{
	char buf[UVMP_MAX_MSG];
	struct uvmp_hdr h = { .len = (uint32_t)(sizeof(h) + plen), .type = type,
			      .version = UVMP_PROTO_VERSION, .seq = 1 };
	union { char b[CMSG_SPACE(sizeof(int))]; struct cmsghdr a; } cb;
	struct iovec iov = { buf, sizeof(h) + plen };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

	memcpy(buf, &h, sizeof(h));
	if (plen)
		memcpy(buf + sizeof(h), p, plen);
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

/*
 * One request and its reply: the reply's status; 1 if the daemon hung
 * up, 2 if it said nothing in 10 s. The reply's payload goes to p, a
 * received fd to *rfd.
 */
static int call(int fd, uint16_t type, const void *req, size_t rlen, int passfd,
		void *p, size_t plen, int *rfd)
{
	char buf[UVMP_MAX_MSG];
	union { char b[CMSG_SPACE(sizeof(int) * UVMP_MAX_FDS)]; struct cmsghdr a; } cb;
	struct iovec iov = { buf, sizeof(buf) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cb.b,
			     .msg_controllen = sizeof(cb.b) };
	struct uvmp_hdr *h = (struct uvmp_hdr *)buf;
	struct pollfd pfd = { fd, POLLIN, 0 };
	ssize_t n;

	if (send_req(fd, type, req, rlen, passfd) < 0)
		return 1;
	if (poll(&pfd, 1, 10000) <= 0)
		return 2;
	n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
	if (n < (ssize_t)sizeof(*h))
		return 1;
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
		unsigned k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);

		for (unsigned i = 0; i < k; i++) {
			int f;

			memcpy(&f, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
			if (rfd && i == 0 && *rfd < 0)
				*rfd = f;
			else
				close(f);
		}
	}
	if (p && !h->status)
		memcpy(p, h + 1, plen < (size_t)n - sizeof(*h) ? plen : (size_t)n - sizeof(*h));
	return h->status;
}

/* A new userfaultfd: the syscall, else through the daemon's /dev/userfaultfd. */
static int new_uffd(int dev)
{
	int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);

	if (fd >= 0 || dev < 0)
		return fd;
	return ioctl(dev, USERFAULTFD_IOC_NEW, O_CLOEXEC | O_NONBLOCK);
}

/* HELLO (asking for the device); the device's fd in *dev (or -1). */
static int raw_hello(const char *sock, int *dev)
{
	struct uvmp_hello hello = { .pid = (uint32_t)getpid(),
				    .flags = UVMP_HELLO_WANT_UFFD_DEV };
	struct uvmp_hello_reply rep;
	int fd = sock_connect(sock), r;

	if (fd < 0)
		fail("connect to the daemon", fd);
	*dev = -1;
	r = call(fd, UVMP_HELLO, &hello, sizeof(hello), -1, &rep, sizeof(rep), dev);
	if (r)
		fail("HELLO", r);
	return fd;
}

/* A client as the library makes one: HELLO, then its own userfaultfd. */
static int raw_client(const char *sock)
{
	int dev, fd = raw_hello(sock, &dev), uffd = new_uffd(dev), r;

	if (uffd < 0)
		fail("a userfaultfd", -errno);
	r = call(fd, UVMP_UFFD, NULL, 0, uffd, NULL, 0, NULL);
	if (r)
		fail("UFFD", r);
	close(uffd);
	if (dev >= 0)
		close(dev);
	return fd;
}

static int sealable_memfd(size_t len)
{
	int fd = memfd_create("iso", MFD_CLOEXEC | MFD_ALLOW_SEALING);

	if (fd < 0 || ftruncate(fd, (off_t)len) < 0)
		exit(102);
	return fd;
}

/* MAP [addr, addr + len) of memfd: its status (0 and the id in *id on success). */
static int map_req(int fd, int memfd, uint64_t addr, uint64_t len, uint64_t *id)
{
	struct uvmp_map map = { .addr = addr, .len = len, .type = UVMP_OBJ_ANON,
				.prot = PROT_READ | PROT_WRITE };
	struct uvmp_map_reply rep = { 0 };
	int r = call(fd, UVMP_MAP, &map, sizeof(map), memfd, &rep, sizeof(rep), NULL);

	if (id)
		*id = rep.object_id;
	return r;
}

/* The request must fail with an error reply (not a hang-up, not silence). */
static void expect_refused(const char *what, int st)
{
	if (st >= 0)
		fail(what, st);
	printf("  refused: %s: %s\n", what, strerror(-st));
	refused++;
}

static void expect_status(const char *what, int st, int want)
{
	if (st != want)
		fail(what, st);
	if (st < 0) {
		printf("  refused: %s: %s\n", what, strerror(-st));
		refused++;
	} else {
		printf("  no-op: %s\n", what);
		noops++;
	}
}

/* ---- attack ---- */

struct target {
	uint64_t id, addr, len;
};

static bool mapped_here(uint64_t addr)
{
	unsigned char v;

	return mincore((void *)(uintptr_t)(addr & ~(PAGE - 1)), PAGE, &v) == 0;
}

static int attack(const char *sock, const char *shmfile, struct target *t, int nt)
{
	struct uvmpager *lib;
	struct uvmp_obj_stat st;
	uint64_t mine_id, id;
	size_t mine_len = 4 << 20;
	uint8_t *mine, *priv;
	int fd, memfd, r;

	/* through the client library, as test_daemon_clients does */
	check_no = 10;
	if ((r = uvmpager_connect(sock, 0, &lib)) < 0)
		fail("uvmpager_connect as a member of the group", r);
	if ((r = uvmpager_anon_create(lib, mine_len, 0, (void **)&mine, &mine_id)) < 0)
		fail("an object of B's own", r);
	memset(mine, 0xb5, mine_len);
	for (int i = 0; i < nt; i++) {
		check_no = 11;
		expect_status("library: stat of A's object", uvmpager_stat(lib, t[i].id, &st),
			      -ENOENT);
		check_no = 12;
		expect_status("library: flush of A's object", uvmpager_flush(lib, t[i].id),
			      -ENOENT);
		check_no = 13;
		expect_status("library: budget of A's object",
			      uvmpager_set_budget(lib, t[i].id, 4096), -ENOENT);
		check_no = 14;
		/* the library madvises B's own range too: B has nothing there */
		if (!mapped_here(t[i].addr))
			expect_status("library: release (madvise) of A's range",
				      uvmpager_release(lib, (void *)(uintptr_t)t[i].addr,
						       t[i].len), 0);
	}

	/* the raw protocol: requests the library would never send */
	fd = raw_client(sock);
	for (int i = 0; i < nt; i++) {
		struct uvmp_range rg = { .addr = t[i].addr, .len = t[i].len };
		struct uvmp_remap rm = { .old_addr = t[i].addr, .old_len = t[i].len,
					 .new_addr = t[i].addr, .new_len = t[i].len };
		struct uvmp_obj ob = { .object_id = t[i].id };
		struct uvmp_budget bu = { .object_id = t[i].id, .bytes = 4096 };

		check_no = 20;
		expect_status("RELEASE of A's range", call(fd, UVMP_RELEASE, &rg, sizeof(rg), -1,
							   NULL, 0, NULL), 0);
		check_no = 21;
		expect_status("UNMAP of A's range", call(fd, UVMP_UNMAP, &rg, sizeof(rg), -1,
							 NULL, 0, NULL), 0);
		check_no = 22;
		expect_status("REMAP of A's range", call(fd, UVMP_REMAP, &rm, sizeof(rm), -1,
							 NULL, 0, NULL), -ENOENT);
		check_no = 23;
		expect_status("FLUSH of A's object", call(fd, UVMP_FLUSH, &ob, sizeof(ob), -1,
							  NULL, 0, NULL), -ENOENT);
		check_no = 24;
		expect_status("OBJ_STAT of A's object", call(fd, UVMP_OBJ_STAT, &ob, sizeof(ob), -1,
							     NULL, 0, NULL), -ENOENT);
		check_no = 25;
		expect_status("SET_BUDGET of A's object", call(fd, UVMP_SET_BUDGET, &bu,
							       sizeof(bu), -1, NULL, 0, NULL),
			      -ENOENT);
	}

	/*
	 * MAP: the daemon registers [addr, addr + len) through B's own
	 * userfaultfd, so an address is always one of B's; none of these
	 * is memory B handed over (a MAP_SHARED mapping of the memfd sent).
	 */
	for (int i = 0; i < nt; i++) {
		check_no = 30;
		memfd = sealable_memfd(t[i].len);
		/* A's range: unmapped in B (unless B happens to have something there) */
		if (!mapped_here(t[i].addr))
			expect_refused("MAP of A's address range",
				       map_req(fd, memfd, t[i].addr, t[i].len, NULL));
		close(memfd);
	}
	/* B's own private memory, with data, never handed over */
	check_no = 31;
	memfd = sealable_memfd(1 << 20);
	priv = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (priv == MAP_FAILED)
		exit(103);
	memset(priv, 0x3c, 1 << 20);
	expect_refused("MAP of B's own private memory",
		       map_req(fd, memfd, (uintptr_t)priv, 1 << 20, NULL));
	for (size_t k = 0; k < (1 << 20); k += PAGE)
		if (priv[k] != 0x3c)
			fail("B's private memory changed", k);
	/* unmapped memory: a hole made here */
	check_no = 32;
	{
		void *hole = mmap(NULL, 1 << 20, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		munmap(hole, 1 << 20);
		expect_refused("MAP of unmapped memory",
			       map_req(fd, memfd, (uintptr_t)hole, 1 << 20, NULL));
	}
	/* the bottom and the top of the address space, and the kernel's half */
	check_no = 33;
	expect_refused("MAP of address 0", map_req(fd, memfd, 0, 1 << 20, NULL));
	expect_refused("MAP of the top of user space",
		       map_req(fd, memfd, (1ULL << 47) - (1 << 20), 1 << 20, NULL));
	expect_refused("MAP of kernel addresses",
		       map_req(fd, memfd, 0xffff800000000000ULL, 1 << 20, NULL));
	/* B's object of the library's connection, again, through another uffd */
	check_no = 34;
	expect_refused("MAP over B's own object of another connection",
		       map_req(fd, memfd, (uintptr_t)mine, mine_len > (1 << 20) ? 1 << 20 : mine_len,
			       NULL));
	close(memfd);
	/*
	 * A shared file B may read but not write, mapped read-only: had the
	 * daemon registered it, it would write into it at the first fault
	 * (UFFDIO_COPY) with root's rights.
	 */
	check_no = 35;
	{
		int sfd = open(shmfile, O_RDONLY | O_CLOEXEC);
		struct stat sst;
		void *ro;

		if (sfd < 0 || fstat(sfd, &sst) < 0)
			fail("open the read-only file", -errno);
		ro = mmap(NULL, (size_t)sst.st_size, PROT_READ, MAP_SHARED, sfd, 0);
		if (ro == MAP_FAILED)
			fail("map the read-only file", -errno);
		memfd = sealable_memfd((size_t)sst.st_size);
		expect_refused("MAP over a read-only shared file",
			       map_req(fd, memfd, (uintptr_t)ro, (uint64_t)sst.st_size, NULL));
		/* and the file's own descriptor as the memfd, over B's own memory */
		expect_refused("MAP with a read-only file as the memfd",
			       map_req(fd, sfd, (uintptr_t)priv, 1 << 20, NULL));
		close(memfd);
		close(sfd);
	}
	/* a MAP that is B's own and right still works on this connection */
	check_no = 36;
	{
		uint8_t *own;

		memfd = sealable_memfd(1 << 20);
		own = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
		if (own == MAP_FAILED)
			exit(104);
		r = map_req(fd, memfd, (uintptr_t)own, 1 << 20, &id);
		if (r != 0)
			fail("B's own proper MAP", r);
		close(memfd);
	}

	/* someone else's identity */
	check_no = 40;
	{
		struct uvmp_hello hello = { .pid = 1 };
		int f2 = sock_connect(sock);

		expect_refused("HELLO with another pid",
			       call(f2, UVMP_HELLO, &hello, sizeof(hello), -1, NULL, 0, NULL));
		close(f2);
	}
	check_no = 41;
	for (uint64_t cid = 1; cid <= 8; cid++) {
		struct uvmp_agent ag = { .client_id = cid, .agent_token = cid * MAGIC };
		int f2 = sock_connect(sock);

		expect_refused("AGENT of a guessed client and token",
			       call(f2, UVMP_AGENT, &ag, sizeof(ag), -1, NULL, 0, NULL));
		close(f2);
	}
	check_no = 42;
	{
		struct uvmp_adopt ad = { .token = MAGIC };
		struct uvmp_adopt_done dn = { .token = MAGIC };

		expect_refused("ADOPT of a guessed fork token",
			       call(fd, UVMP_ADOPT, &ad, sizeof(ad), -1, NULL, 0, NULL));
		expect_refused("ADOPT_DONE of a guessed fork token",
			       call(fd, UVMP_ADOPT_DONE, &dn, sizeof(dn), -1, NULL, 0, NULL));
	}
	/* B's own memory is still B's */
	check_no = 50;
	for (size_t k = 0; k < mine_len; k += PAGE)
		if (mine[k] != 0xb5)
			fail("B's own object lost its data", k);
	close(fd);
	uvmpager_anon_destroy(lib, mine);
	uvmpager_disconnect(lib);
	printf("attack: %u refused, %u no-ops\n", refused, noops);
	return 0;
}

/* ---- foreign-uffd ---- */

/*
 * B hands the daemon a userfaultfd its forked child created: the child's
 * address space is a copy of B's, the memfd is mapped at the same
 * address in both, so the registration itself would succeed, in the
 * child's address space. The daemon must see that the userfaultfd is not
 * B's and refuse.
 */
static int foreign_uffd(const char *sock)
{
	size_t len = 1 << 20;
	int sp[2], dev, fd, memfd, uffd = -1, r, st;
	uint8_t *mem;
	pid_t child;
	char ok;

	memfd = sealable_memfd(len);
	mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
	if (mem == MAP_FAILED)
		return 105;
	memset(mem, 0x77, len);
	fd = raw_hello(sock, &dev);
	if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sp) < 0)
		return 106;
	child = fork();
	if (child == 0) {
		/* the child's own userfaultfd, created in its address space */
		int cu = new_uffd(dev);

		if (cu < 0 || send_req(sp[1], 0, NULL, 0, cu) < 0)
			_exit(1);
		/* stay alive (its mm with it) until the parent is done */
		if (read(sp[1], &ok, 1) != 1)
			_exit(2);
		/* the child's copy: still the memfd's data, no fault ever stuck */
		for (size_t k = 0; k < len; k += PAGE)
			if (mem[k] != 0x77)
				_exit(3);
		_exit(0);
	}
	{
		char buf[64];
		union { char b[CMSG_SPACE(sizeof(int))]; struct cmsghdr a; } cb;
		struct iovec iov = { buf, sizeof(buf) };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cb.b,
				     .msg_controllen = sizeof(cb.b) };
		struct cmsghdr *cm;

		if (recvmsg(sp[0], &mh, 0) < 0 || !(cm = CMSG_FIRSTHDR(&mh)))
			return 107;
		memcpy(&uffd, CMSG_DATA(cm), sizeof(int));
	}
	check_no = 60;
	r = call(fd, UVMP_UFFD, NULL, 0, uffd, NULL, 0, NULL);
	if (r)
		fail("UFFD with the child's userfaultfd (taken at this step)", r);
	close(uffd);
	check_no = 61;
	/* EBADF: the daemon's ownership check (src/daemon/uffdowner.h) */
	r = map_req(fd, memfd, (uintptr_t)mem, len, NULL);
	expect_status("MAP through the child's userfaultfd", r, -EBADF);
	check_no = 62;
	for (size_t k = 0; k < len; k += PAGE)
		if (mem[k] != 0x77)
			fail("B's memory changed", k);
	if (write(sp[0], "x", 1) != 1)
		return 108;
	waitpid(child, &st, 0);
	check_no = 63;
	if (!WIFEXITED(st) || WEXITSTATUS(st))
		fail("the child's copy", st);
	close(fd);
	if (dev >= 0)
		close(dev);
	printf("foreign-uffd: %u refused, 256 pages intact in B and in its child\n", refused);
	return 0;
}

/* ---- a userfaultfd of another user ---- */

#define SHARED_AT 0x500000000000ULL   /* where A and B both map a memfd */
#define GIVE_LEN (1 << 20)

static int unix_sock(const char *path, bool listen_on)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (fd < 0)
		exit(111);
	if (listen_on) {
		unlink(path);
		if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || chmod(path, 0666) < 0 ||
		    listen(fd, 1) < 0)
			exit(112);
		return fd;
	}
	for (int i = 0; i < 100; i++) {
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			return fd;
		usleep(50000);
	}
	exit(113);
}

/*
 * User A: a userfaultfd of its own (through the daemon's device, as the
 * library gets one) and a memfd with data mapped at SHARED_AT; hands the
 * userfaultfd to whoever connects to PATH, waits for a byte, then checks
 * its data: exit 0 when intact.
 */
static int uffd_give(const char *sock, const char *path)
{
	int dev, ctl = raw_hello(sock, &dev), uffd = new_uffd(dev), lfd, cfd, memfd;
	uint8_t *mem;
	char b;

	if (uffd < 0)
		return 114;
	memfd = sealable_memfd(GIVE_LEN);
	mem = mmap((void *)(uintptr_t)SHARED_AT, GIVE_LEN, PROT_READ | PROT_WRITE,
		   MAP_SHARED | MAP_FIXED_NOREPLACE, memfd, 0);
	if (mem == MAP_FAILED)
		return 115;
	memset(mem, 0xa7, GIVE_LEN / 2);   /* the second half: never touched */
	lfd = unix_sock(path, true);
	printf("giving\n");
	cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	if (cfd < 0 || send_req(cfd, 0, NULL, 0, uffd) < 0)
		return 116;
	if (read(cfd, &b, 1) != 1)
		return 117;
	for (size_t k = 0; k < GIVE_LEN; k += PAGE)
		if (mem[k] != (k < GIVE_LEN / 2 ? 0xa7 : 0)) {
			fprintf(stderr, "FAIL: A's page %zu changed\n", k / PAGE);
			return 1;
		}
	printf("A: %lu pages intact\n", GIVE_LEN / PAGE);
	close(ctl);
	return 0;
}

/*
 * User B, holding A's userfaultfd: maps a memfd of its own (other data)
 * at the same address and asks the daemon to register it through A's
 * userfaultfd. The kernel would accept the registration (A has a shared
 * writable mapping there): the daemon must refuse (EBADF), so that it
 * never fills A's untouched pages with B's data.
 */
static int uffd_take(const char *sock, const char *path)
{
	int dev, fd = raw_hello(sock, &dev), cfd = unix_sock(path, false), memfd, uffd = -1, r;
	char buf[16];
	union { char b[CMSG_SPACE(sizeof(int))]; struct cmsghdr a; } cb;
	struct iovec iov = { buf, sizeof(buf) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cb.b,
			     .msg_controllen = sizeof(cb.b) };
	struct cmsghdr *cm;
	uint8_t *mem;

	if (recvmsg(cfd, &mh, MSG_CMSG_CLOEXEC) < 0 || !(cm = CMSG_FIRSTHDR(&mh)))
		return 118;
	memcpy(&uffd, CMSG_DATA(cm), sizeof(int));
	memfd = sealable_memfd(GIVE_LEN);
	mem = mmap((void *)(uintptr_t)SHARED_AT, GIVE_LEN, PROT_READ | PROT_WRITE,
		   MAP_SHARED | MAP_FIXED_NOREPLACE, memfd, 0);
	if (mem == MAP_FAILED)
		return 119;
	memset(mem, 0xbb, GIVE_LEN);
	check_no = 70;
	r = call(fd, UVMP_UFFD, NULL, 0, uffd, NULL, 0, NULL);
	if (r)
		fail("UFFD with A's userfaultfd (taken at this step)", r);
	check_no = 71;
	r = map_req(fd, memfd, SHARED_AT, GIVE_LEN, NULL);
	/* A checks its pages either way: what a registration would have done */
	if (write(cfd, "x", 1) != 1)
		return 120;
	expect_status("MAP through A's userfaultfd", r, -EBADF);
	printf("uffd-take: %u refused\n", refused);
	close(fd);
	return 0;
}

int main(int argc, char **argv)
{
	struct target t[64];
	int nt = 0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc == 3 && strcmp(argv[1], "hold") == 0)
		return hold(strtoull(argv[2], NULL, 0));
	if (argc == 3 && strcmp(argv[1], "connect") == 0)
		return connect_refused(argv[2]);
	if (argc == 3 && strcmp(argv[1], "foreign-uffd") == 0)
		return foreign_uffd(argv[2]);
	if (argc == 4 && strcmp(argv[1], "uffd-give") == 0)
		return uffd_give(argv[2], argv[3]);
	if (argc == 4 && strcmp(argv[1], "uffd-take") == 0)
		return uffd_take(argv[2], argv[3]);
	if (argc >= 5 && strcmp(argv[1], "attack") == 0) {
		for (int i = 4; i < argc && nt < 64; i++) {
			if (sscanf(argv[i], "%" SCNu64 ":%" SCNx64 ":%" SCNu64, &t[nt].id,
				   &t[nt].addr, &t[nt].len) != 3)
				return 109;
			nt++;
		}
		return attack(argv[2], argv[3], t, nt);
	}
	fprintf(stderr, "usage: iso_helper hold MIB | connect SOCK | attack SOCK SHMFILE "
		"ID:ADDR:LEN... | foreign-uffd SOCK | uffd-give SOCK PATH | uffd-take SOCK PATH\n");
	return 110;
}
