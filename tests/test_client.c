/*
 * libuvmpager against a uvmpagerd of the test's own: paging under a
 * budget, release, file and device objects, fork (the child's copy is
 * private both ways), and the daemon killed: the agent fails closed,
 * pages still in memory keep their data, a page only swap had raises
 * SIGBUS. Needs root (the daemon does).
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check_run.h"
#include "common/util.h"
#include "daemon_helpers.h"
#include "uvmpager/uvmpager.h"

#define REQUIRE(cond) \
	do { \
		if (!(cond)) \
			ck_abort_msg("%s:%d: %s", __FILE__, __LINE__, #cond); \
	} while (0)

#define MiB (1UL << 20)

static struct test_daemon td;

static void setup(void)
{
	ck_assert_int_eq(td_start(&td, "256M", (const char *)NULL), 0);
}

static void teardown(void)
{
	td_stop(&td);
}

static struct uvmpager *conn(uint64_t budget)
{
	struct uvmpager *c = NULL;

	ck_assert_int_eq(uvmpager_connect(td.sock, budget, &c), 0);
	ck_assert_ptr_nonnull(c);
	return c;
}

/* Every 8-byte word says which page it is in and which pass wrote it. */
static void fill(char *p, size_t len, uint64_t seed)
{
	for (size_t off = 0; off < len; off += PAGE_SIZE) {
		uint64_t v = (off / PAGE_SIZE) * 2654435761ULL ^ seed;

		for (size_t w = 0; w < PAGE_SIZE; w += 512)
			memcpy(p + off + w, &v, sizeof(v));
	}
}

static bool page_ok(const char *p, size_t off, uint64_t seed)
{
	uint64_t v = (off / PAGE_SIZE) * 2654435761ULL ^ seed, got;

	for (size_t w = 0; w < PAGE_SIZE; w += 512) {
		memcpy(&got, p + off + w, sizeof(got));
		if (got != v)
			return false;
	}
	return true;
}

static bool all_ok(const char *p, size_t len, uint64_t seed)
{
	for (size_t off = 0; off < len; off += PAGE_SIZE)
		if (!page_ok(p, off, seed))
			return false;
	return true;
}

static bool zeros(const char *p, size_t len)
{
	for (size_t i = 0; i < len; i += 256)
		if (p[i])
			return false;
	return true;
}

START_TEST(test_connect)
{
	struct uvmpager_info info;
	struct uvmpager *c = NULL;
	void *p;

	ck_assert_int_eq(uvmpager_connect("/nonexistent/sock", 0, &c), -ENOENT);
	ck_assert_ptr_null(c);
	c = conn(64 * MiB);
	uvmpager_get_info(c, &info);
	ck_assert(info.alive);
	ck_assert_uint_gt(info.client_id, 0);
	ck_assert_uint_eq(info.budget, 64 * MiB);
	ck_assert_uint_eq(info.min_size, 1 * MiB);
	ck_assert(uvmpager_alive(c));
	ck_assert_int_eq(uvmpager_anon_create(c, 0, 0, &p, NULL), -EINVAL);
	ck_assert_int_eq(uvmpager_anon_destroy(c, (void *)PAGE_SIZE), -ENOENT);
	ck_assert_int_eq(uvmpager_release(c, (void *)1, PAGE_SIZE), -EINVAL);
	ck_assert_int_eq(uvmpager_flush(c, 123456), -ENOENT);
	uvmpager_disconnect(c);
	uvmpager_disconnect(NULL);
}
END_TEST

START_TEST(test_paging_and_release)
{
	struct uvmpager *c = conn(0);
	size_t len = 64 * MiB;
	struct uvmp_obj_stat st;
	uint64_t id, at;
	char *p;

	ck_assert_int_eq(uvmpager_anon_create(c, len, 8 * MiB, (void **)&p, &id), 0);
	REQUIRE(zeros(p, len));
	fill(p, len, 1);
	REQUIRE(all_ok(p, len, 1));
	ck_assert_int_eq(uvmpager_stat(c, id, &st), 0);
	ck_assert_uint_eq(st.object_id, id);
	ck_assert_uint_eq(st.size, len);
	ck_assert_uint_gt(st.swapouts, 0);
	ck_assert_uint_gt(st.swapins, 0);
	ck_assert_uint_le(st.resident_bytes, 8 * MiB);
	ck_assert_int_eq(uvmpager_object_at(c, p + 5 * MiB, &at), 0);
	ck_assert_uint_eq(at, id);
	/* released pages read as zeros, their neighbours keep their data */
	ck_assert_int_eq(uvmpager_release(c, p + 16 * MiB, 16 * MiB), 0);
	REQUIRE(zeros(p + 16 * MiB, 16 * MiB));
	REQUIRE(all_ok(p, 16 * MiB, 1));
	for (size_t off = 32 * MiB; off < len; off += PAGE_SIZE)
		REQUIRE(page_ok(p, off, 1));
	ck_assert_int_eq(uvmpager_set_budget(c, id, 4 * MiB), 0);
	ck_assert_int_eq(uvmpager_set_budget(c, 0, 32 * MiB), 0);
	ck_assert_int_eq(uvmpager_flush(c, id), 0);
	ck_assert_int_eq(uvmpager_anon_destroy(c, p), 0);
	ck_assert_int_eq(uvmpager_object_at(c, p, &at), -ENOENT);
	uvmpager_disconnect(c);
}
END_TEST

START_TEST(test_file_and_device)
{
	char path[] = "/var/tmp/uvmpager-client-XXXXXX";
	struct uvmpager *c = conn(0);
	size_t len = 16 * MiB;
	uint64_t id, v;
	char *buf, *p;
	int fd;

	fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	unlink(path);
	buf = malloc(len);
	fill(buf, len, 7);
	ck_assert_int_eq(pwrite(fd, buf, len, 0), (ssize_t)len);
	/* a file through a 2 MiB window: read, change, flush, read the file */
	ck_assert_int_eq(uvmpager_file_map(c, fd, len, 2 * MiB, false, (void **)&p, &id), 0);
	REQUIRE(all_ok(p, len, 7));
	for (size_t off = 0; off < len; off += 3 * PAGE_SIZE)
		memset(p + off, 0xab, 8);
	ck_assert_int_eq(uvmpager_flush(c, id), 0);
	for (size_t off = 0; off < len; off += PAGE_SIZE) {
		ck_assert_int_eq(pread(fd, &v, sizeof(v), (off_t)off), (ssize_t)sizeof(v));
		if (off % (3 * PAGE_SIZE) == 0)
			REQUIRE(v == 0xababababababababULL);
		else
			REQUIRE(page_ok(buf, off, 7) && !memcmp(&v, buf + off, sizeof(v)));
	}
	ck_assert_int_eq(uvmpager_file_unmap(c, p), 0);
	/* read-only pages from the file */
	ck_assert_int_eq(pwrite(fd, buf, len, 0), (ssize_t)len);
	ck_assert_int_eq(uvmpager_file_map(c, fd, len, 2 * MiB, true, (void **)&p, &id), 0);
	REQUIRE(all_ok(p, len, 7));
	REQUIRE(all_ok(p, len, 7));
	ck_assert_int_eq(uvmpager_file_unmap(c, p), 0);
	/* read-only pages wholly past the file's end would have nothing to read */
	ck_assert_int_eq(uvmpager_file_map(c, fd, len + 2 * PAGE_SIZE, 2 * MiB, true,
					   (void **)&p, &id), -EINVAL);
	close(fd);
	free(buf);
	uvmpager_disconnect(c);
}
END_TEST

START_TEST(test_fork)
{
	struct uvmpager *c = conn(0);
	size_t len = 32 * MiB;
	uint64_t token, id;
	int status;
	pid_t pid;
	char *p;

	ck_assert_int_eq(uvmpager_anon_create(c, len, 4 * MiB, (void **)&p, &id), 0);
	fill(p, len, 11);
	ck_assert_int_eq(uvmpager_fork_prepare(c, &token), 0);
	pid = fork();
	if (pid == 0) {
		uint64_t cid;

		if (uvmpager_fork_child(&c, token) < 0 || !c)
			_exit(2);
		/* the parent's memory as of the fork, and private to us */
		if (!all_ok(p, len, 11))
			_exit(3);
		fill(p, len, 13);
		if (!all_ok(p, len, 13))
			_exit(4);
		if (uvmpager_object_at(c, p, &cid) < 0 || cid == id)
			_exit(5);
		if (uvmpager_anon_destroy(c, p) < 0)
			_exit(6);
		uvmpager_disconnect(c);
		_exit(0);
	}
	uvmpager_fork_parent(c, token, pid);
	ck_assert_int_gt(pid, 0);
	fill(p, len, 12);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status));
	ck_assert_int_eq(WEXITSTATUS(status), 0);
	REQUIRE(all_ok(p, len, 12));
	/* a fork that failed: the clones are dropped */
	ck_assert_int_eq(uvmpager_fork_prepare(c, &token), 0);
	uvmpager_fork_parent(c, token, -1);
	ck_assert_int_eq(uvmpager_anon_destroy(c, p), 0);
	uvmpager_disconnect(c);
}
END_TEST

/* Waits up to 3 s for the daemon's stat `name` to read want. */
static bool stat_becomes(const char *name, long long want)
{
	for (int i = 0; i < 300; i++) {
		if (td_stat(&td, name) == want)
			return true;
		usleep(10 * 1000);
	}
	return false;
}

/*
 * Part of a region moved by a raw mremap (behind the library's back)
 * becomes an object of its own: its data arrives and pages through its
 * own budget share, a fork child gets a copy, a raw discard reads zeros,
 * and once the program unmaps it the object goes. The daemon says so in
 * the pin table while it lasts (uvmpager_moved_parts).
 */
START_TEST(test_raw_moved_part)
{
	struct uvmpager *c = conn(0);
	size_t len = 8 * MiB, half = len / 2;
	uint64_t token, id;
	int status;
	pid_t pid;
	char *p, *dst, *q;

	ck_assert_int_eq(uvmpager_anon_create(c, len, 2 * MiB, (void **)&p, &id), 0);
	fill(p, len, 21);
	ck_assert(!uvmpager_moved_parts(c));
	dst = (char *)syscall(SYS_mmap, NULL, half, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ck_assert(dst != MAP_FAILED);
	q = (char *)syscall(SYS_mremap, p + half, half, half, MREMAP_MAYMOVE | MREMAP_FIXED, dst);
	ck_assert_ptr_eq(q, dst);
	for (size_t off = 0; off < half; off += PAGE_SIZE)
		REQUIRE(page_ok(q - half, half + off, 21));
	REQUIRE(stat_becomes("objects", 2));
	ck_assert(uvmpager_moved_parts(c));
	/* its own budget share: written whole, it pages */
	for (size_t off = 0; off < half; off += PAGE_SIZE)
		fill(q + off, PAGE_SIZE, 22 + off);
	for (size_t off = 0; off < half; off += PAGE_SIZE)
		REQUIRE(page_ok(q + off, 0, 22 + off));
	REQUIRE(all_ok(p, half, 21));

	ck_assert_int_eq(uvmpager_fork_prepare(c, &token), 0);
	pid = fork();
	if (pid == 0) {
		if (uvmpager_fork_child(&c, token) < 0 || !c)
			_exit(2);
		for (size_t off = 0; off < half; off += PAGE_SIZE)
			if (!page_ok(q + off, 0, 22 + off))
				_exit(3);
		fill(q, half, 23);
		if (!all_ok(q, half, 23) || !uvmpager_moved_parts(c))
			_exit(4);
		_exit(0);
	}
	uvmpager_fork_parent(c, token, pid);
	ck_assert_int_gt(pid, 0);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status));
	ck_assert_int_eq(WEXITSTATUS(status), 0);
	for (size_t off = 0; off < half; off += PAGE_SIZE)
		REQUIRE(page_ok(q + off, 0, 22 + off));

	ck_assert_int_eq(syscall(SYS_madvise, q, 16 * PAGE_SIZE, MADV_DONTNEED), 0);
	REQUIRE(zeros(q, 16 * PAGE_SIZE));
	ck_assert_int_eq(syscall(SYS_munmap, q, half), 0);
	REQUIRE(stat_becomes("objects", 1));
	ck_assert(!uvmpager_moved_parts(c));
	REQUIRE(all_ok(p, half, 21));
	ck_assert_int_eq(uvmpager_anon_destroy(c, p), 0);
	uvmpager_disconnect(c);
}
END_TEST

static void put_word(char *p, uint64_t v)
{
	for (size_t w = 0; w < PAGE_SIZE; w += 8)
		memcpy(p + w, &v, 8);
}

static uint64_t get_word(const char *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return v;
}

/*
 * Views moved whole by raw mremap into each other's raw-unmapped holes
 * (a review's case): X (pages 10-11) loses 11, Z (3 pages) moves to 11-13
 * and loses 13, Y (1 page) moves to 13. Z must map before X in the child
 * and Y before Z, whatever their order of creation: the child hung on
 * page 13 when the clones were ordered in one pass.
 */
START_TEST(test_moved_into_holes_fork)
{
	struct uvmpager *c = conn(0);
	char *R = mmap(NULL, 64 * PAGE_SIZE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char *Z = R + 40 * PAGE_SIZE, *Y = R + 50 * PAGE_SIZE, *X = R + 10 * PAGE_SIZE;
	uint64_t id, token;
	int status;
	pid_t pid;

	ck_assert(R != MAP_FAILED);
	ck_assert_int_eq(uvmpager_anon_create_at(c, Z, 3 * PAGE_SIZE, 0, &id), 0);
	ck_assert_int_eq(uvmpager_anon_create_at(c, Y, PAGE_SIZE, 0, &id), 0);
	ck_assert_int_eq(uvmpager_anon_create_at(c, X, 2 * PAGE_SIZE, 0, &id), 0);
	put_word(X, 0x1111);
	put_word(X + PAGE_SIZE, 0x1112);
	put_word(Z, 0x3331);
	put_word(Z + PAGE_SIZE, 0x3332);
	put_word(Z + 2 * PAGE_SIZE, 0x3333);
	put_word(Y, 0x2221);
	ck_assert_int_eq(syscall(SYS_munmap, X + PAGE_SIZE, PAGE_SIZE), 0);
	ck_assert_ptr_eq((char *)syscall(SYS_mremap, Z, 3 * PAGE_SIZE, 3 * PAGE_SIZE,
					 MREMAP_MAYMOVE | MREMAP_FIXED, R + 11 * PAGE_SIZE),
			 R + 11 * PAGE_SIZE);
	ck_assert_int_eq(syscall(SYS_munmap, R + 13 * PAGE_SIZE, PAGE_SIZE), 0);
	ck_assert_ptr_eq((char *)syscall(SYS_mremap, Y, PAGE_SIZE, PAGE_SIZE,
					 MREMAP_MAYMOVE | MREMAP_FIXED, R + 13 * PAGE_SIZE),
			 R + 13 * PAGE_SIZE);
	ck_assert_int_eq(uvmpager_fork_prepare(c, &token), 0);
	pid = fork();
	if (pid == 0) {
		alarm(20);
		if (uvmpager_fork_child(&c, token) < 0)
			_exit(2);
		if (get_word(R + 10 * PAGE_SIZE) != 0x1111 || get_word(R + 11 * PAGE_SIZE) != 0x3331 ||
		    get_word(R + 12 * PAGE_SIZE) != 0x3332 || get_word(R + 13 * PAGE_SIZE) != 0x2221)
			_exit(3);
		_exit(0);
	}
	uvmpager_fork_parent(c, token, pid);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %#x", status);
	ck_assert_uint_eq(get_word(R + 13 * PAGE_SIZE), 0x2221);
	uvmpager_disconnect(c);
}
END_TEST

/*
 * GNU sort's access pattern, which once lost pages (read back as zeros)
 * under wp-async tracking: read() a file into the object chunk by chunk,
 * NUL each newline and write a line descriptor downward from the top as
 * each chunk arrives, then one merge-like pass (each line's text read,
 * its descriptor copied below), then every text page is checked.
 */
struct line_desc {
	char *text;
	size_t len;
	char *key, *end;
};

START_TEST(test_sort_pattern)
{
	char path[] = "/var/tmp/uvmpager-lines-XXXXXX";
	size_t cap = 200 * MiB, n = 0, chunk = 3 * MiB, nlines = 0, lost = 0;
	struct uvmpager *c = conn(32 * MiB);
	struct line_desc *line, *lines, *temp;
	char *buf, *start, *text, *q;
	unsigned long sum = 0;
	FILE *f;
	ssize_t k;
	int fd;

	fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	unlink(path);
	f = fdopen(dup(fd), "w");
	for (unsigned i = 1; i <= 1500000; i++)
		fprintf(f, "%010u %x abcdefghijklmnopqrstuvwxyz\n", i + (i % 97 ? 0 : 5000),
			i * 40503 % 65536);
	fclose(f);
	ck_assert_int_eq(uvmpager_anon_create(c, cap, 0, (void **)&buf, NULL), 0);
	line = (struct line_desc *)(buf + cap);
	start = buf;
	while ((k = pread(fd, buf + n, chunk, (off_t)n)) > 0) {
		n += (size_t)k;
		chunk = chunk > 800000 ? chunk - 100000 : chunk;
		for (char *p; (p = memchr(start, '\n', (size_t)(buf + n - start))); start = p + 1) {
			*p = 0;
			line--;
			nlines++;
			*line = (struct line_desc){ start, (size_t)(p + 1 - start), start, p };
		}
	}
	lines = line;
	temp = lines - nlines;
	for (size_t i = 0; i < nlines; i++) {
		sum += (unsigned char)lines[i].text[0];
		temp[i] = lines[i];
	}
	ck_assert_uint_eq(sum, '0' * nlines);
	text = malloc(n);
	ck_assert_int_eq(pread(fd, text, n, 0), (ssize_t)n);
	for (q = text; (q = memchr(q, '\n', (size_t)(text + n - q))); q++)
		*q = 0;
	for (size_t off = 0; off < n; off += PAGE_SIZE)
		lost += memcmp(buf + off, text + off, MIN(PAGE_SIZE, n - off)) != 0;
	ck_assert_msg(lost == 0, "%zu of %zu pages lost", lost, n / PAGE_SIZE);
	free(text);
	close(fd);
	ck_assert_int_eq(uvmpager_anon_destroy(c, buf), 0);
	uvmpager_disconnect(c);
}
END_TEST

/*
 * The client runs in a child: it fills a region (most pages go to swap),
 * the test kills the daemon, then the child reads every page still in
 * memory (intact) and touches one that was only in swap: SIGBUS.
 */
START_TEST(test_daemon_killed)
{
	int ready[2], go[2], status;
	pid_t pid;
	char b;

	ck_assert_int_eq(pipe(ready), 0);
	ck_assert_int_eq(pipe(go), 0);
	pid = fork();
	if (pid == 0) {
		struct uvmpager_info info;
		struct uvmpager *c = NULL;
		size_t len = 32 * MiB, n = len / PAGE_SIZE, swapped = n;
		unsigned char *vec = malloc(n);
		char *p;

		if (uvmpager_connect(td.sock, 0, &c) < 0 ||
		    uvmpager_anon_create(c, len, 4 * MiB, (void **)&p, NULL) < 0)
			_exit(2);
		fill(p, len, 21);
		if (write(ready[1], "r", 1) != 1 || read(go[0], &b, 1) != 1)
			_exit(3);
		for (int i = 0; i < 500 && uvmpager_alive(c); i++)
			usleep(10000);
		if (uvmpager_alive(c))
			_exit(4);
		/* in the memfd's page cache: the data is there */
		if (mincore(p, len, vec) < 0)
			_exit(5);
		for (size_t i = 0; i < n; i++) {
			if (!(vec[i] & 1)) {
				swapped = i;
				continue;
			}
			if (!page_ok(p, i * PAGE_SIZE, 21))
				_exit(6);
		}
		uvmpager_get_info(c, &info);
		if (swapped == n || !info.fc_continued)
			_exit(7);
		/* only swap had it: never zeros */
		if (p[swapped * PAGE_SIZE + 1] == 0)
			_exit(8);
		_exit(9);
	}
	ck_assert_int_eq(read(ready[0], &b, 1), 1);
	kill(td.pid, SIGKILL);
	waitpid(td.pid, NULL, 0);
	td.pid = 0;
	ck_assert_int_eq(write(go[1], "g", 1), 1);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	if (WIFEXITED(status))
		ck_abort_msg("client exited with %d", WEXITSTATUS(status));
	ck_assert_int_eq(WTERMSIG(status), SIGBUS);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("client");
	TCase *tc = tcase_create("client");

	require_daemon_env();
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_connect);
	tcase_add_test(tc, test_paging_and_release);
	tcase_add_test(tc, test_file_and_device);
	tcase_add_test(tc, test_fork);
	tcase_add_test(tc, test_raw_moved_part);
	tcase_add_test(tc, test_moved_into_holes_fork);
	tcase_add_test(tc, test_sort_pattern);
	tcase_add_test(tc, test_daemon_killed);
	suite_add_tcase(s, tc);
	return check_run(s, CK_VERBOSE);
}
