/*
 * userfaultfd wrappers and probe, against the running kernel. Needs a
 * userfaultfd (root, or access to /dev/userfaultfd): exits 77 without.
 */
#include <check.h>

#include "check_run.h"
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"
#include "fault/uffd.h"

#define NPAGES 16
#define LEN (NPAGES * PAGE_SIZE)
#define BASE_FEATURES (UFFD_FEATURE_MISSING_SHMEM | UFFD_FEATURE_MINOR_SHMEM | \
		       UFFD_FEATURE_WP_HUGETLBFS_SHMEM)

/* A memfd seen twice, like a managed region: client view registered, engine view not. */
struct region {
	int mfd, ufd;
	char *client, *engine;
};

static void region_init(struct region *r, uint64_t features, unsigned modes)
{
	r->mfd = memfd_create("test-uffd", MFD_CLOEXEC);
	ck_assert_int_ge(r->mfd, 0);
	ck_assert_int_eq(ftruncate(r->mfd, LEN), 0);
	r->client = mmap(NULL, LEN, PROT_READ | PROT_WRITE, MAP_SHARED, r->mfd, 0);
	ck_assert_ptr_ne(r->client, MAP_FAILED);
	madvise(r->client, LEN, MADV_NOHUGEPAGE);
	r->engine = mmap(NULL, LEN, PROT_READ | PROT_WRITE, MAP_SHARED, r->mfd, 0);
	ck_assert_ptr_ne(r->engine, MAP_FAILED);
	r->ufd = uffd_create(features, NULL);
	ck_assert_int_ge(r->ufd, 0);
	ck_assert_int_eq(uffd_register(r->ufd, r->client, LEN, modes, NULL), 0);
}

static void region_fini(struct region *r)
{
	close(r->ufd);
	munmap(r->client, LEN);
	munmap(r->engine, LEN);
	close(r->mfd);
}

static uint64_t pagemap_of(const void *addr)
{
	uint64_t e = 0;
	int pm = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);

	ck_assert_int_ge(pm, 0);
	ck_assert_int_eq(pread(pm, &e, sizeof(e), (off_t)((uintptr_t)addr / PAGE_SIZE * 8)), 8);
	close(pm);
	return e;
}

static bool kernel_at_least(int major, int minor)
{
	struct utsname u;
	int ma = 0, mi = 0;

	uname(&u);
	sscanf(u.release, "%d.%d", &ma, &mi);
	return ma > major || (ma == major && mi >= minor);
}

/*
 * UFFDIO_CONTINUE_MODE_WP came with 6.6 (Debian 12's 6.1 refuses it with
 * EINVAL): there, map and then protect, then wake.
 */
static int continue_wp(int ufd, char *addr, size_t len)
{
	int r = uffd_continue(ufd, addr, len, UFFD_F_WP);

	if (kernel_at_least(6, 6))
		return r;
	ck_assert_int_eq(r, -EINVAL);		/* refused, not ignored */
	r = uffd_continue(ufd, addr, len, UFFD_F_DONTWAKE);
	if (r >= 0) {
		ck_assert_int_eq(uffd_writeprotect(ufd, addr, len, true, 0), 0);
		ck_assert_int_eq(uffd_wake(ufd, addr, len), 0);
	}
	return r;
}

/* 1 / 0 from the running kernel's config, -1 when it is not exposed. */
static int kernel_config_has(const char *option)
{
	char cmd[256];
	int found = -1;
	FILE *p;

	if (access("/proc/config.gz", R_OK))
		return -1;
	snprintf(cmd, sizeof(cmd), "zcat /proc/config.gz 2>/dev/null | grep -c '^%s=y'", option);
	p = popen(cmd, "r");
	if (!p)
		return -1;
	if (fscanf(p, "%d", &found) != 1)
		found = -1;
	pclose(p);
	return found < 0 ? -1 : found > 0;
}

START_TEST(probe_sane)
{
	struct uffd_caps caps;

	ck_assert_int_eq(uffd_probe(&caps), 0);
	ck_assert_uint_ne(caps.features, 0);
	/* Flags that merely mirror feature bits must agree with them. */
	ck_assert(caps.wp_unpopulated == !!(caps.features & UFFD_FEATURE_WP_UNPOPULATED));
	ck_assert(caps.poison == !!(caps.features & UFFD_FEATURE_POISON));
	ck_assert(caps.event_remove == !!(caps.features & UFFD_FEATURE_EVENT_REMOVE));
	ck_assert(caps.event_unmap == !!(caps.features & UFFD_FEATURE_EVENT_UNMAP));
	ck_assert(caps.event_remap == !!(caps.features & UFFD_FEATURE_EVENT_REMAP));
	ck_assert(caps.event_fork == !!(caps.features & UFFD_FEATURE_EVENT_FORK));
	ck_assert(!caps.wp_async || caps.wp_shmem);
	if (kernel_at_least(5, 19)) {
		ck_assert(caps.missing_shmem);
		ck_assert(caps.minor_shmem);
		ck_assert(caps.wp_shmem);
	}
	if (kernel_at_least(6, 7)) {
		ck_assert(caps.wp_async);
		ck_assert(caps.wp_unpopulated);
		ck_assert(caps.poison);
		ck_assert(caps.pagemap_scan);
	}
	switch (kernel_config_has("CONFIG_MEM_SOFT_DIRTY")) {
	case 1:
		ck_assert(caps.soft_dirty);
		break;
	case 0:
		ck_assert(!caps.soft_dirty);
		break;
	default:
		printf("probe_sane: kernel config not exposed, soft_dirty=%d unchecked\n",
		       caps.soft_dirty);
		break;
	}
}
END_TEST

START_TEST(create_flags_and_features)
{
	uint64_t got = 0;
	int fd, fl;

	fd = uffd_create(UFFD_FEATURE_MINOR_SHMEM, &got);
	ck_assert_int_ge(fd, 0);
	ck_assert(got & UFFD_FEATURE_MINOR_SHMEM);
	fl = fcntl(fd, F_GETFL);
	ck_assert(fl & O_NONBLOCK);
	ck_assert(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	close(fd);

	/* A feature no kernel has. */
	ck_assert_int_eq(uffd_create(1ULL << 62, &got), -EOPNOTSUPP);
}
END_TEST

START_TEST(register_ioctls)
{
	struct region r;
	uint64_t ioctls = 0;
	int ufd;

	region_init(&r, BASE_FEATURES, UFFD_MISSING);
	ck_assert_int_eq(uffd_unregister(r.ufd, r.client, LEN), 0);
	ck_assert_int_eq(uffd_register(r.ufd, r.client, LEN, UFFD_MISSING | UFFD_MINOR | UFFD_WP,
				       &ioctls), 0);
	ck_assert(ioctls & (1ULL << _UFFDIO_COPY));
	ck_assert(ioctls & (1ULL << _UFFDIO_WAKE));
	ck_assert(ioctls & (1ULL << _UFFDIO_CONTINUE));
	ck_assert(ioctls & (1ULL << _UFFDIO_WRITEPROTECT));
	ck_assert_int_eq(uffd_register(r.ufd, r.client, LEN, 0, NULL), -EINVAL);
	ck_assert_int_eq(uffd_register(r.ufd, r.client, LEN, 8, NULL), -EINVAL);
	region_fini(&r);

	ufd = uffd_create(0, NULL);
	ck_assert_int_eq(uffd_read_msgs(ufd, NULL, 0), -EINVAL);
	close(ufd);
}
END_TEST

START_TEST(copy_skips_present)
{
	char *src = aligned_alloc(PAGE_SIZE, LEN);
	struct region r;

	region_init(&r, BASE_FEATURES, UFFD_MISSING | UFFD_MINOR | UFFD_WP);
	for (size_t i = 0; i < NPAGES; i++)
		memset(src + i * PAGE_SIZE, 'a' + (int)i, PAGE_SIZE);

	ck_assert_int_eq(uffd_copy(r.ufd, r.client, src, 4 * PAGE_SIZE, UFFD_F_WP), 0);
	ck_assert_int_eq(r.engine[0], 'a');
	ck_assert_int_eq(r.engine[3 * PAGE_SIZE], 'd');
	ck_assert(pagemap_of(r.client) & PM_ENTRY_UFFD_WP);

	/* All four present: all skipped, nothing overwritten. */
	ck_assert_int_eq(uffd_copy(r.ufd, r.client, src + 8 * PAGE_SIZE, 4 * PAGE_SIZE, 0), 4);
	ck_assert_int_eq(r.client[0], 'a');

	/* Pages 2,3 present, 4..7 copied, with the source kept in step. */
	ck_assert_int_eq(uffd_copy(r.ufd, r.client + 2 * PAGE_SIZE, src + 2 * PAGE_SIZE,
				   6 * PAGE_SIZE, 0), 2);
	ck_assert_int_eq(r.client[4 * PAGE_SIZE], 'e');
	ck_assert_int_eq(r.client[7 * PAGE_SIZE], 'h');
	ck_assert(!(pagemap_of(r.client + 5 * PAGE_SIZE) & PM_ENTRY_UFFD_WP));
	ck_assert(pagemap_of(r.client + 5 * PAGE_SIZE) & PM_ENTRY_PRESENT);

	ck_assert_int_eq(uffd_copy(r.ufd, r.client + 1, src, PAGE_SIZE, 0), -EINVAL);
	region_fini(&r);
	free(src);
}
END_TEST

START_TEST(continue_skips_present)
{
	struct region r;

	region_init(&r, BASE_FEATURES, UFFD_MISSING | UFFD_MINOR | UFFD_WP);
	memset(r.engine, 'x', 4 * PAGE_SIZE);
	ck_assert_int_eq(continue_wp(r.ufd, r.client, 4 * PAGE_SIZE), 0);
	ck_assert_int_eq(r.client[3 * PAGE_SIZE + 5], 'x');
	ck_assert(pagemap_of(r.client + PAGE_SIZE) & PM_ENTRY_UFFD_WP);
	ck_assert_int_eq(uffd_continue(r.ufd, r.client, 4 * PAGE_SIZE, 0), 4);

	/* The zap keeps the page cache: continue maps it again. */
	madvise(r.client, 4 * PAGE_SIZE, MADV_DONTNEED);
	ck_assert_int_eq(uffd_continue(r.ufd, r.client, 4 * PAGE_SIZE, 0), 0);
	ck_assert(!(pagemap_of(r.client) & PM_ENTRY_UFFD_WP));

	/* Not in the page cache: nothing to continue. */
	ck_assert_int_eq(uffd_continue(r.ufd, r.client + 8 * PAGE_SIZE, PAGE_SIZE, 0), -EFAULT);
	region_fini(&r);
}
END_TEST

struct toucher {
	char *addr;
	bool write;
	atomic_bool done;
	char seen;
};

static void *touch_fn(void *arg)
{
	struct toucher *t = arg;

	if (t->write)
		*(volatile char *)t->addr = 'W';
	else
		t->seen = *(volatile char *)t->addr;
	atomic_store(&t->done, true);
	return NULL;
}

static int wait_msgs(int ufd, struct uffd_msg *msgs, int max)
{
	struct pollfd p = { .fd = ufd, .events = POLLIN };

	ck_assert_int_eq(poll(&p, 1, 5000), 1);
	return uffd_read_msgs(ufd, msgs, max);
}

static void sleep_ms(int ms)
{
	struct timespec ts = { .tv_sec = 0, .tv_nsec = ms * 1000000L };

	nanosleep(&ts, NULL);
}

START_TEST(read_msgs_and_wake)
{
	char *src = aligned_alloc(PAGE_SIZE, PAGE_SIZE);
	struct toucher t = { 0 };
	struct uffd_msg msgs[4];
	struct region r;
	pthread_t th;

	region_init(&r, BASE_FEATURES, UFFD_MISSING | UFFD_MINOR | UFFD_WP);
	ck_assert_int_eq(uffd_read_msgs(r.ufd, msgs, 4), 0);

	/* A hole: MISSING. Filled with DONTWAKE, the toucher sleeps on until the wake. */
	t.addr = r.client + 2 * PAGE_SIZE + 7;
	pthread_create(&th, NULL, touch_fn, &t);
	ck_assert_int_eq(wait_msgs(r.ufd, msgs, 4), 1);
	ck_assert_int_eq(msgs[0].event, UFFD_EVENT_PAGEFAULT);
	ck_assert_uint_eq(msgs[0].arg.pagefault.address & ~(PAGE_SIZE - 1),
			  (uintptr_t)r.client + 2 * PAGE_SIZE);
	ck_assert(!(msgs[0].arg.pagefault.flags & (UFFD_PAGEFAULT_FLAG_MINOR | UFFD_PAGEFAULT_FLAG_WP)));
	ck_assert_int_eq(uffd_read_msgs(r.ufd, msgs, 4), 0);
	memset(src, 'm', PAGE_SIZE);
	ck_assert_int_eq(uffd_copy(r.ufd, r.client + 2 * PAGE_SIZE, src, PAGE_SIZE,
				   UFFD_F_WP | UFFD_F_DONTWAKE), 0);
	sleep_ms(50);
	ck_assert(!atomic_load(&t.done));
	ck_assert_int_eq(uffd_wake(r.ufd, r.client + 2 * PAGE_SIZE, PAGE_SIZE), 0);
	pthread_join(th, NULL);
	ck_assert_int_eq(t.seen, 'm');

	/* In the page cache but not mapped: MINOR. */
	r.engine[5 * PAGE_SIZE] = 'c';
	t = (struct toucher){ .addr = r.client + 5 * PAGE_SIZE };
	pthread_create(&th, NULL, touch_fn, &t);
	ck_assert_int_eq(wait_msgs(r.ufd, msgs, 4), 1);
	ck_assert(msgs[0].arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_MINOR);
	ck_assert_int_eq(continue_wp(r.ufd, r.client + 5 * PAGE_SIZE, PAGE_SIZE), 0);
	pthread_join(th, NULL);
	ck_assert_int_eq(t.seen, 'c');

	/* A faulting thread on a page someone else filled is woken by the skip. */
	r.engine[6 * PAGE_SIZE] = 'd';
	t = (struct toucher){ .addr = r.client + 6 * PAGE_SIZE };
	pthread_create(&th, NULL, touch_fn, &t);
	ck_assert_int_eq(wait_msgs(r.ufd, msgs, 4), 1);
	ck_assert_int_eq(uffd_continue(r.ufd, r.client + 6 * PAGE_SIZE, PAGE_SIZE, UFFD_F_DONTWAKE), 0);
	ck_assert_int_eq(uffd_continue(r.ufd, r.client + 6 * PAGE_SIZE, PAGE_SIZE, 0), 1);
	pthread_join(th, NULL);
	ck_assert_int_eq(t.seen, 'd');

	region_fini(&r);
	free(src);
}
END_TEST

START_TEST(writeprotect_sync)
{
	struct toucher t = { 0 };
	struct uffd_msg msgs[4];
	struct region r;
	pthread_t th;

	region_init(&r, BASE_FEATURES, UFFD_MISSING | UFFD_MINOR | UFFD_WP);
	memset(r.engine, 'p', 2 * PAGE_SIZE);
	ck_assert_int_eq(continue_wp(r.ufd, r.client, 2 * PAGE_SIZE), 0);

	t.addr = r.client + PAGE_SIZE;
	t.write = true;
	pthread_create(&th, NULL, touch_fn, &t);
	ck_assert_int_eq(wait_msgs(r.ufd, msgs, 4), 1);
	ck_assert(msgs[0].arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_WP);
	ck_assert(msgs[0].arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_WRITE);
	sleep_ms(20);
	ck_assert(!atomic_load(&t.done));
	ck_assert_int_eq(uffd_writeprotect(r.ufd, r.client + PAGE_SIZE, PAGE_SIZE, false, 0), 0);
	pthread_join(th, NULL);
	ck_assert_int_eq(r.engine[PAGE_SIZE], 'W');
	ck_assert(!(pagemap_of(r.client + PAGE_SIZE) & PM_ENTRY_UFFD_WP));
	ck_assert(pagemap_of(r.client) & PM_ENTRY_UFFD_WP);

	ck_assert_int_eq(uffd_writeprotect(r.ufd, r.client, 2 * PAGE_SIZE, true, 0), 0);
	ck_assert(pagemap_of(r.client + PAGE_SIZE) & PM_ENTRY_UFFD_WP);
	region_fini(&r);
}
END_TEST

#define EXIT_SIGBUS 42

/* A sanitizer would turn the signal into its own report: catch it first. */
static void on_sigbus(int sig)
{
	(void)sig;
	_exit(EXIT_SIGBUS);
}

/* Runs in a forked child: its own region, poisoned, then touched. */
static void poison_child(void)
{
	struct sigaction sa = { .sa_handler = on_sigbus };
	struct region r;
	int n;

	sigaction(SIGBUS, &sa, NULL);

	region_init(&r, BASE_FEATURES | UFFD_FEATURE_POISON, UFFD_MISSING);
	n = uffd_poison(r.ufd, r.client + 3 * PAGE_SIZE, PAGE_SIZE, 0);
	if (n != 0)
		_exit(10);
	(void)*(volatile char *)(r.client + 3 * PAGE_SIZE);
	_exit(0);
}

START_TEST(poison_sigbus)
{
	struct uffd_caps caps;
	char *src;
	struct region r;
	int status;
	pid_t pid;

	ck_assert_int_eq(uffd_probe(&caps), 0);
	region_init(&r, BASE_FEATURES, UFFD_MISSING);
	if (!caps.poison) {
		ck_assert_int_eq(uffd_poison(r.ufd, r.client, PAGE_SIZE, 0), -EOPNOTSUPP);
		region_fini(&r);
		printf("poison_sigbus: kernel lacks UFFDIO_POISON\n");
		return;
	}
	/* Present pages are skipped, not poisoned. */
	src = aligned_alloc(PAGE_SIZE, PAGE_SIZE);
	memset(src, 'k', PAGE_SIZE);
	ck_assert_int_eq(uffd_copy(r.ufd, r.client, src, PAGE_SIZE, 0), 0);
	ck_assert_int_eq(uffd_poison(r.ufd, r.client, 2 * PAGE_SIZE, 0), 1);
	ck_assert_int_eq(r.client[0], 'k');
	ck_assert(!(pagemap_of(r.client + PAGE_SIZE) & PM_ENTRY_PRESENT));
	region_fini(&r);
	free(src);

	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		poison_child();
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == EXIT_SIGBUS,
		      "child status %#x, expected SIGBUS", status);
}
END_TEST

/* The target exits holding nothing but its uffd in our hands: ESRCH, no spin. */
START_TEST(target_gone_esrch)
{
	char *src = aligned_alloc(PAGE_SIZE, PAGE_SIZE);
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct msghdr mh = { 0 };
	struct cmsghdr *cm;
	struct iovec iov;
	uintptr_t addr;
	int sv[2], ufd, status;
	pid_t pid;

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct region r;

		region_init(&r, BASE_FEATURES, UFFD_MISSING);
		addr = (uintptr_t)r.client;
		iov = (struct iovec){ &addr, sizeof(addr) };
		mh.msg_iov = &iov;
		mh.msg_iovlen = 1;
		mh.msg_control = cbuf;
		mh.msg_controllen = sizeof(cbuf);
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &r.ufd, sizeof(int));
		_exit(sendmsg(sv[1], &mh, 0) < 0);
	}
	iov = (struct iovec){ &addr, sizeof(addr) };
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = cbuf;
	mh.msg_controllen = sizeof(cbuf);
	ck_assert_int_eq(recvmsg(sv[0], &mh, 0), sizeof(addr));
	cm = CMSG_FIRSTHDR(&mh);
	ck_assert_ptr_nonnull(cm);
	memcpy(&ufd, CMSG_DATA(cm), sizeof(int));
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);

	memset(src, 0, PAGE_SIZE);
	ck_assert_int_eq(uffd_copy(ufd, (void *)addr, src, PAGE_SIZE, 0), -ESRCH);
	close(ufd);
	close(sv[0]);
	close(sv[1]);
	free(src);
}
END_TEST

static Suite *uffd_suite(void)
{
	Suite *s = suite_create("uffd");
	TCase *tc = tcase_create("kernel");

	tcase_add_test(tc, probe_sane);
	tcase_add_test(tc, create_flags_and_features);
	tcase_add_test(tc, register_ioctls);
	tcase_add_test(tc, copy_skips_present);
	tcase_add_test(tc, continue_skips_present);
	tcase_add_test(tc, read_msgs_and_wake);
	tcase_add_test(tc, writeprotect_sync);
	tcase_add_test(tc, poison_sigbus);
	tcase_add_test(tc, target_gone_esrch);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	int fd;

	fd = uffd_create(0, NULL);
	if (fd < 0) {
		printf("skip: no userfaultfd (%s): needs root or access to /dev/userfaultfd\n",
		       strerror(-fd));
		return 77;
	}
	close(fd);
	return check_run(uffd_suite(), CK_NORMAL);
}
