/* I/O engines: every case runs for io_uring and for the thread pool. */
#include <check.h>

#include "check_run.h"
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "build-config.h"
#include "common/util.h"
#include "swap/ioeng.h"
#include "swap/ioeng_impl.h"

static const enum ioeng_kind kinds[] = {
#ifdef HAVE_LIBURING
	IOENG_URING,
#endif
	IOENG_THREADS,
};

#define NPAGES 1024

static char path[512];
static int fd = -1;
static uint8_t *pages;           /* NPAGES aligned pages */
static pthread_t main_thread;
static __thread bool in_submit;

/* Completion bookkeeping shared by the done() callbacks. */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static unsigned ndone;
static atomic_uint bad_context;

static void note_done(void)
{
	pthread_mutex_lock(&mu);
	ndone++;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
}

static void wait_done(unsigned n)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 20;
	pthread_mutex_lock(&mu);
	while (ndone < n)
		if (pthread_cond_timedwait(&cv, &mu, &ts) == ETIMEDOUT)
			break;
	pthread_mutex_unlock(&mu);
	ck_assert_uint_eq(ndone, n);
}

static void check_context(void)
{
	if (in_submit || pthread_equal(pthread_self(), main_thread))
		atomic_fetch_add(&bad_context, 1);
}

static void on_done(struct io_req *req)
{
	check_context();
	note_done();
	(void)req;
}

static void fill_page(uint8_t *p, unsigned tag)
{
	for (size_t i = 0; i < PAGE_SIZE; i += 4) {
		uint32_t v = tag * 2654435761u + (uint32_t)i;

		memcpy(p + i, &v, 4);
	}
}

static bool page_ok(const uint8_t *p, unsigned tag)
{
	uint8_t want[PAGE_SIZE];

	fill_page(want, tag);
	return !memcmp(p, want, PAGE_SIZE);
}

/* A directory whose filesystem takes O_DIRECT (tmpfs before 6.6 does not). */
static void make_file(void)
{
	const char *dirs[] = { getenv("TEST_DIR"), ".", "/var/tmp", "/tmp" };

	for (size_t i = 0; i < ARRAY_SIZE(dirs); i++) {
		if (!dirs[i])
			continue;
		snprintf(path, sizeof(path), "%s/ioeng-test-XXXXXX", dirs[i]);
		fd = mkostemp(path, O_CLOEXEC);
		if (fd < 0)
			continue;
		close(fd);
		fd = open(path, O_RDWR | O_DIRECT | O_CLOEXEC);
		if (fd >= 0)
			break;
		unlink(path);
	}
	ck_assert_msg(fd >= 0, "no directory with O_DIRECT support");
	ck_assert_int_eq(ftruncate(fd, (off_t)NPAGES * PAGE_SIZE), 0);
}

static void setup(void)
{
	main_thread = pthread_self();
	ndone = 0;
	atomic_store(&bad_context, 0);
	make_file();
	ck_assert_int_eq(posix_memalign((void **)&pages, PAGE_SIZE, NPAGES * PAGE_SIZE), 0);
}

static void teardown(void)
{
	free(pages);
	close(fd);
	unlink(path);
}

static struct ioeng *mk(int i, unsigned depth,
			int (*inject)(void *, const struct io_req *), void *ctx)
{
	struct ioeng_config cfg = {
		.kind = kinds[i], .depth = depth, .threads = 4,
		.inject = inject, .inject_ctx = ctx,
	};
	struct ioeng *e = NULL;

	ck_assert_int_eq(ioeng_create(&cfg, &e), 0);
	ck_assert_int_eq(ioeng_kind_of(e), kinds[i]);
	return e;
}

static int submit(struct ioeng *e, struct io_req **reqs, unsigned n)
{
	int r;

	in_submit = true;
	r = ioeng_submit(e, reqs, n);
	in_submit = false;
	return r;
}

/*
 * 32 writes of 16 pages each, every page its own iovec taken from a
 * scattered buffer position, then read back with the buffers permuted.
 */
START_TEST(test_write_read_back)
{
	enum { NREQ = 32, PER = 16 };
	struct ioeng *e = mk(_i, 0, NULL, NULL);
	struct io_req *reqs = calloc(NREQ, sizeof(*reqs));
	struct io_req *ptrs[NREQ];
	struct ioeng_stats st;

	for (int r = 0; r < NREQ; r++) {
		struct io_req *q = &reqs[r];

		q->op = IO_WRITE;
		q->fd = fd;
		q->offset = (uint64_t)r * PER * PAGE_SIZE;
		q->iovcnt = PER;
		q->done = on_done;
		for (int k = 0; k < PER; k++) {
			unsigned slot = r * PER + k;
			uint8_t *buf = pages + (size_t)((slot * 37) % (NREQ * PER)) * PAGE_SIZE;

			fill_page(buf, slot);
			q->iov[k].iov_base = buf;
			q->iov[k].iov_len = PAGE_SIZE;
		}
		ptrs[r] = q;
	}
	ck_assert_int_eq(submit(e, ptrs, NREQ), 0);
	wait_done(NREQ);
	for (int r = 0; r < NREQ; r++)
		ck_assert_int_eq(reqs[r].result, PER * PAGE_SIZE);

	memset(pages, 0, NPAGES * PAGE_SIZE);
	ndone = 0;
	for (int r = 0; r < NREQ; r++) {
		reqs[r].op = IO_READ;
		for (int k = 0; k < PER; k++)
			reqs[r].iov[k].iov_base = pages + (size_t)(512 + r * PER + (PER - 1 - k)) * PAGE_SIZE;
	}
	/* One at a time and in pairs: batching must not matter. */
	for (int r = 0; r < NREQ; r += 3)
		ck_assert_int_eq(submit(e, ptrs + r, MIN(3, NREQ - r)), 0);
	wait_done(NREQ);
	for (int r = 0; r < NREQ; r++) {
		ck_assert_int_eq(reqs[r].result, PER * PAGE_SIZE);
		for (int k = 0; k < PER; k++)
			ck_assert_msg(page_ok(reqs[r].iov[k].iov_base, r * PER + k),
				      "page %d of request %d differs", k, r);
	}
	ck_assert_uint_eq(atomic_load(&bad_context), 0);
	ioeng_get_stats(e, &st);
	ck_assert_uint_eq(st.writes, NREQ);
	ck_assert_uint_eq(st.reads, NREQ);
	ck_assert_uint_eq(st.write_bytes, NREQ * PER * PAGE_SIZE);
	ck_assert_uint_eq(st.read_bytes, NREQ * PER * PAGE_SIZE);
	ck_assert_uint_eq(st.errors, 0);
	/* done() has been called, but may not have returned yet. */
	for (int i = 0; i < 1000 && st.inflight; i++) {
		usleep(1000);
		ioeng_get_stats(e, &st);
	}
	ck_assert_uint_eq(st.inflight, 0);
	ioeng_destroy(e);
	free(reqs);
}
END_TEST

struct many {
	struct ioeng *e;
	struct io_req **ptrs;
	unsigned from, n;
};

static void *submitter(void *arg)
{
	struct many *m = arg;

	for (unsigned i = 0; i < m->n; i += 7)
		ck_assert_int_eq(submit(m->e, m->ptrs + m->from + i, MIN(7, m->n - i)), 0);
	return NULL;
}

/* 500 one-page requests in flight at once from 4 threads, through a small ring. */
START_TEST(test_500_concurrent)
{
	enum { N = 500, T = 4 };
	struct ioeng *e = mk(_i, 64, NULL, NULL);
	struct io_req *reqs = calloc(N, sizeof(*reqs));
	struct io_req *ptrs[N];
	struct many m[T];
	pthread_t th[T];

	for (int pass = 0; pass < 2; pass++) {
		ndone = 0;
		for (int r = 0; r < N; r++) {
			struct io_req *q = &reqs[r];

			if (!pass)
				fill_page(pages + (size_t)r * PAGE_SIZE, 1000 + r);
			q->op = pass ? IO_READ : IO_WRITE;
			q->fd = fd;
			q->offset = (uint64_t)((r * 3) % NPAGES) * PAGE_SIZE;
			q->iovcnt = 1;
			q->iov[0].iov_base = pages + (size_t)(pass ? NPAGES - 1 - r : r) * PAGE_SIZE;
			q->iov[0].iov_len = PAGE_SIZE;
			q->done = on_done;
			ptrs[r] = q;
		}
		for (int t = 0; t < T; t++) {
			m[t] = (struct many){ e, ptrs, t * (N / T), N / T };
			ck_assert_int_eq(pthread_create(&th[t], NULL, submitter, &m[t]), 0);
		}
		for (int t = 0; t < T; t++)
			pthread_join(th[t], NULL);
		wait_done(N);
		for (int r = 0; r < N; r++)
			ck_assert_int_eq(reqs[r].result, PAGE_SIZE);
	}
	for (int r = 0; r < N; r++)
		ck_assert_msg(page_ok(pages + (size_t)(NPAGES - 1 - r) * PAGE_SIZE, 1000 + r),
			      "page %d differs", r);
	ck_assert_uint_eq(atomic_load(&bad_context), 0);
	ioeng_destroy(e);
	free(reqs);
}
END_TEST

static int inject_every_7th(void *ctx, const struct io_req *req)
{
	atomic_uint *calls = ctx;

	atomic_fetch_add(calls, 1);
	return (uintptr_t)req->priv % 7 == 3 ? -EIO : 0;
}

START_TEST(test_inject)
{
	enum { N = 200 };
	atomic_uint calls = 0;
	struct ioeng *e = mk(_i, 32, inject_every_7th, &calls);
	struct io_req *reqs = calloc(N, sizeof(*reqs));
	struct io_req *ptrs[N];
	struct ioeng_stats st;
	unsigned failed = 0;

	memset(pages, 0xab, 2 * PAGE_SIZE);
	for (int r = 0; r < N; r++) {
		struct io_req *q = &reqs[r];

		q->op = r % 2 ? IO_READ : IO_WRITE;
		q->fd = fd;
		q->offset = (uint64_t)(r % 16) * 2 * PAGE_SIZE;
		q->iovcnt = 2;
		q->iov[0] = (struct iovec){ pages + (size_t)(2 + 2 * r) * PAGE_SIZE, PAGE_SIZE };
		q->iov[1] = (struct iovec){ pages + (size_t)(3 + 2 * r) * PAGE_SIZE, PAGE_SIZE };
		if (q->op == IO_WRITE)
			q->iov[0].iov_base = q->iov[1].iov_base = pages;
		q->priv = (void *)(uintptr_t)r;
		q->done = on_done;
		ptrs[r] = q;
	}
	ck_assert_int_eq(submit(e, ptrs, N), 0);
	wait_done(N);
	for (int r = 0; r < N; r++) {
		if (r % 7 == 3) {
			ck_assert_int_eq(reqs[r].result, -EIO);
			failed++;
		} else {
			ck_assert_int_eq(reqs[r].result, 2 * PAGE_SIZE);
		}
	}
	ck_assert_uint_eq(atomic_load(&calls), N);
	ioeng_get_stats(e, &st);
	ck_assert_uint_eq(st.errors, failed);
	ck_assert_uint_eq(st.reads + st.writes, N);
	ck_assert_uint_eq(atomic_load(&bad_context), 0);
	ioeng_destroy(e);
	free(reqs);
}
END_TEST

static pthread_t run_thread;
static unsigned run_done_calls;

static void on_run_done(struct io_req *req)
{
	/* ioeng_run: done() in the caller's own thread, before it returns */
	if (!pthread_equal(pthread_self(), run_thread))
		atomic_fetch_add(&bad_context, 1);
	run_done_calls++;
	(void)req;
}

static int inject_eio_reads(void *ctx, const struct io_req *req)
{
	(void)ctx;
	return req->op == IO_READ && req->offset == 5 * PAGE_SIZE ? -EIO : 0;
}

/* ioeng_run: a write and a read done in the calling thread, the hook honoured. */
START_TEST(test_run_in_caller)
{
	struct ioeng *e = mk(_i, 8, inject_eio_reads, NULL);
	struct io_req req = { 0 };
	struct ioeng_stats st;

	run_thread = pthread_self();
	run_done_calls = 0;
	fill_page(pages, 77);
	req = (struct io_req){ .op = IO_WRITE, .fd = fd, .offset = 4 * PAGE_SIZE, .iovcnt = 1,
			       .done = on_run_done };
	req.iov[0] = (struct iovec){ pages, PAGE_SIZE };
	ck_assert_int_eq(ioeng_run(e, &req), 0);
	ck_assert_int_eq(req.result, PAGE_SIZE);
	ck_assert_uint_eq(run_done_calls, 1);

	memset(pages + PAGE_SIZE, 0, PAGE_SIZE);
	req = (struct io_req){ .op = IO_READ, .fd = fd, .offset = 4 * PAGE_SIZE, .iovcnt = 1,
			       .done = on_run_done };
	req.iov[0] = (struct iovec){ pages + PAGE_SIZE, PAGE_SIZE };
	ck_assert_int_eq(ioeng_run(e, &req), 0);
	ck_assert_int_eq(req.result, PAGE_SIZE);
	ck_assert(page_ok(pages + PAGE_SIZE, 77));

	req.offset = 5 * PAGE_SIZE;   /* the hook fails this one */
	ck_assert_int_eq(ioeng_run(e, &req), 0);
	ck_assert_int_eq(req.result, -EIO);

	req.iovcnt = 0;               /* malformed: refused, done() not called */
	ck_assert_int_eq(ioeng_run(e, &req), -EINVAL);
	ck_assert_uint_eq(run_done_calls, 3);

	ioeng_get_stats(e, &st);
	ck_assert_uint_eq(st.reads, 2);
	ck_assert_uint_eq(st.writes, 1);
	ck_assert_uint_eq(st.errors, 1);
	ck_assert_uint_eq(st.inflight, 0);
	ck_assert_uint_eq(atomic_load(&bad_context), 0);
	ioeng_destroy(e);
}
END_TEST

/* A chain: each done() submits the next request, from the engine thread. */
struct chain {
	struct ioeng *e;
	struct io_req req;
	unsigned left;
	unsigned steps;
	ssize_t worst;
};

static void chain_done(struct io_req *req)
{
	struct chain *c = container_of(req, struct chain, req);

	check_context();
	c->steps++;
	if (req->result < 0 || (c->worst >= 0 && req->result < c->worst))
		c->worst = req->result;
	if (c->left) {
		c->left--;
		req->op = req->op == IO_READ ? IO_WRITE : IO_READ;
		req->offset = (uint64_t)(c->left % 64) * PAGE_SIZE;
		ck_assert_int_eq(ioeng_submit(c->e, &req, 1), 0);
		return;
	}
	note_done();
}

static void chain_init(struct chain *c, struct ioeng *e, unsigned len, uint8_t *buf)
{
	memset(c, 0, sizeof(*c));
	c->e = e;
	c->left = len;
	c->worst = PAGE_SIZE;
	c->req.op = IO_WRITE;
	c->req.fd = fd;
	c->req.iovcnt = 1;
	c->req.iov[0] = (struct iovec){ buf, PAGE_SIZE };
	c->req.done = chain_done;
}

START_TEST(test_submit_from_done)
{
	enum { C = 8, LEN = 100 };
	struct ioeng *e = mk(_i, 16, NULL, NULL);
	struct chain *c = calloc(C, sizeof(*c));
	struct io_req *ptrs[C];

	for (int i = 0; i < C; i++) {
		chain_init(&c[i], e, LEN, pages + (size_t)i * PAGE_SIZE);
		ptrs[i] = &c[i].req;
	}
	ck_assert_int_eq(submit(e, ptrs, C), 0);
	wait_done(C);
	for (int i = 0; i < C; i++) {
		ck_assert_uint_eq(c[i].steps, LEN + 1);
		ck_assert_int_eq(c[i].worst, PAGE_SIZE);
	}
	ck_assert_uint_eq(atomic_load(&bad_context), 0);
	ioeng_destroy(e);
	free(c);
}
END_TEST

/* Destroy right after submitting: everything still completes, chains too. */
START_TEST(test_destroy_inflight)
{
	enum { N = 300, C = 4, LEN = 50 };
	struct ioeng *e = mk(_i, 32, NULL, NULL);
	struct io_req *reqs = calloc(N, sizeof(*reqs));
	struct chain *c = calloc(C, sizeof(*c));
	struct io_req *ptrs[N];

	for (int r = 0; r < N; r++) {
		reqs[r] = (struct io_req){
			.op = r % 3 ? IO_WRITE : IO_READ, .fd = fd,
			.offset = (uint64_t)(r % NPAGES) * PAGE_SIZE, .iovcnt = 1,
			.done = on_done,
		};
		reqs[r].iov[0] = (struct iovec){ pages + (size_t)(r % 256) * PAGE_SIZE, PAGE_SIZE };
		ptrs[r] = &reqs[r];
	}
	for (int i = 0; i < C; i++) {
		struct io_req *q = &c[i].req;

		chain_init(&c[i], e, LEN, pages + (size_t)(300 + i) * PAGE_SIZE);
		ck_assert_int_eq(submit(e, &q, 1), 0);
	}
	ck_assert_int_eq(submit(e, ptrs, N), 0);
	ioeng_destroy(e);
	/* No waiting: destroy returned, so every done() has run. */
	ck_assert_uint_eq(ndone, N + C);
	for (int r = 0; r < N; r++)
		ck_assert_int_eq(reqs[r].result, PAGE_SIZE);
	for (int i = 0; i < C; i++)
		ck_assert_uint_eq(c[i].steps, LEN + 1);
	/* And an idle engine goes away at once. */
	ioeng_destroy(mk(_i, 0, NULL, NULL));
	ioeng_destroy(NULL);
	free(reqs);
	free(c);
}
END_TEST

/* Reads past EOF fail with -EIO; a read straddling EOF too, iov untouched. */
START_TEST(test_eof)
{
	struct ioeng *e = mk(_i, 0, NULL, NULL);
	struct io_req q = { .fd = fd, .op = IO_READ, .done = on_done };
	struct io_req *p = &q;
	char name[600];
	int bfd;

	q.offset = (uint64_t)NPAGES * PAGE_SIZE;
	q.iovcnt = 1;
	q.iov[0] = (struct iovec){ pages, PAGE_SIZE };
	ck_assert_int_eq(submit(e, &p, 1), 0);
	wait_done(1);
	ck_assert_int_eq(q.result, -EIO);

	/* Buffered, 2500 bytes: the first read stops inside the third iovec. */
	snprintf(name, sizeof(name), "%s.short", path);
	bfd = open(name, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	ck_assert_int_ge(bfd, 0);
	memset(pages, 'a', 2500);
	ck_assert_int_eq(write(bfd, pages, 2500), 2500);
	q.fd = bfd;
	q.offset = 0;
	q.iovcnt = 4;
	for (int k = 0; k < 4; k++)
		q.iov[k] = (struct iovec){ pages + PAGE_SIZE + (size_t)k * 1000, 1000 };
	ck_assert_int_eq(submit(e, &p, 1), 0);
	wait_done(2);
	ck_assert_int_eq(q.result, -EIO);
	for (int k = 0; k < 4; k++) {
		ck_assert_ptr_eq(q.iov[k].iov_base, pages + PAGE_SIZE + (size_t)k * 1000);
		ck_assert_uint_eq(q.iov[k].iov_len, 1000);
	}
	/* The same read, exactly as long as the file, succeeds. */
	q.iov[2].iov_len = 500;
	q.iovcnt = 3;
	ck_assert_int_eq(submit(e, &p, 1), 0);
	wait_done(3);
	ck_assert_int_eq(q.result, 2500);
	ioeng_destroy(e);
	close(bfd);
	unlink(name);
}
END_TEST

/*
 * A genuine short write: RLIMIT_FSIZE lets the first pwritev stop at the
 * limit; the continuation starts exactly there and gets EFBIG.
 */
START_TEST(test_short_write)
{
	struct rlimit rl = { 6 * PAGE_SIZE, RLIM_INFINITY };
	struct ioeng *e = mk(_i, 0, NULL, NULL);
	struct io_req q = { .fd = fd, .op = IO_WRITE, .done = on_done };
	struct io_req *p = &q;
	uint8_t *back;

	signal(SIGXFSZ, SIG_IGN);
	ck_assert_int_eq(ftruncate(fd, 0), 0);
	ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &rl), 0);
	q.offset = 4 * PAGE_SIZE;
	q.iovcnt = 3;
	for (int k = 0; k < 3; k++) {
		fill_page(pages + (size_t)k * PAGE_SIZE, 77 + k);
		q.iov[k] = (struct iovec){ pages + (size_t)k * PAGE_SIZE, PAGE_SIZE };
	}
	ck_assert_int_eq(submit(e, &p, 1), 0);
	wait_done(1);
	ck_assert_int_eq(q.result, -EFBIG);
	ck_assert_int_eq(lseek(fd, 0, SEEK_END), 6 * PAGE_SIZE);
	back = pages + 10 * PAGE_SIZE;
	ck_assert_int_eq(pread(fd, back, 2 * PAGE_SIZE, 4 * PAGE_SIZE), 2 * PAGE_SIZE);
	ck_assert(page_ok(back, 77));
	ck_assert(page_ok(back + PAGE_SIZE, 78));
	ck_assert_int_eq(q.iovcnt, 3);
	for (int k = 0; k < 3; k++)
		ck_assert_uint_eq(q.iov[k].iov_len, PAGE_SIZE);
	ioeng_destroy(e);
}
END_TEST

START_TEST(test_malformed)
{
	struct ioeng *e = mk(_i, 0, NULL, NULL);
	struct io_req ok = { .fd = fd, .op = IO_WRITE, .iovcnt = 1, .done = on_done };
	struct io_req bad = ok;
	struct io_req *two[2] = { &ok, &bad };

	ok.iov[0] = (struct iovec){ pages, PAGE_SIZE };
	bad.iov[0] = ok.iov[0];
	bad.iovcnt = IO_MAX_IOV + 1;
	ck_assert_int_eq(submit(e, two, 2), -EINVAL);
	bad.iovcnt = 0;
	ck_assert_int_eq(submit(e, two, 2), -EINVAL);
	bad.iovcnt = 1;
	bad.done = NULL;
	ck_assert_int_eq(submit(e, two, 2), -EINVAL);
	bad.done = on_done;
	bad.iov[0].iov_len = 0;
	ck_assert_int_eq(submit(e, two, 2), -EINVAL);
	ck_assert_int_eq(submit(e, two, 0), 0);
	/* Nothing of a refused batch was queued. */
	ioeng_destroy(e);
	ck_assert_uint_eq(ndone, 0);
}
END_TEST

START_TEST(test_auto_and_names)
{
	struct ioeng_config cfg = { .kind = IOENG_AUTO };
	struct ioeng *e = NULL;
	enum ioeng_kind k;
	FILE *f = fopen("/proc/sys/kernel/io_uring_disabled", "r");
	int disabled = 0;

	if (f) {
		if (fscanf(f, "%d", &disabled) != 1)
			disabled = 0;
		fclose(f);
	}
	ck_assert_int_eq(ioeng_create(&cfg, &e), 0);
#ifdef HAVE_LIBURING
	if (!disabled) {
		ck_assert_int_eq(ioeng_kind_of(e), IOENG_URING);
		ck_assert_str_eq(ioeng_name(e), "io_uring");
		ck_assert_int_eq(ioeng_fallback_error(e), 0);
	}
#endif
	ioeng_destroy(e);
	ck_assert_int_eq(ioeng_create(NULL, &e), 0);
	ioeng_destroy(e);
	cfg.kind = IOENG_THREADS;
	ck_assert_int_eq(ioeng_create(&cfg, &e), 0);
	ck_assert_str_eq(ioeng_name(e), "threads");
	ck_assert_int_eq(ioeng_kind_of(e), IOENG_THREADS);
	ioeng_destroy(e);

	ck_assert_int_eq(ioeng_kind_parse("auto", &k), 0);
	ck_assert_int_eq(k, IOENG_AUTO);
	ck_assert_int_eq(ioeng_kind_parse("io_uring", &k), 0);
	ck_assert_int_eq(k, IOENG_URING);
	ck_assert_int_eq(ioeng_kind_parse("threads", &k), 0);
	ck_assert_int_eq(k, IOENG_THREADS);
	ck_assert_int_eq(ioeng_kind_parse("aio", &k), -EINVAL);
	ck_assert_int_eq(ioeng_kind_parse(NULL, &k), -EINVAL);
	ck_assert_str_eq(ioeng_kind_name(IOENG_URING), "io_uring");
}
END_TEST

/* What a container's seccomp profile does: io_uring_setup fails with EPERM. */
static int block_io_uring(void)
{
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { ARRAY_SIZE(f), f };

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return -errno;
	return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) < 0 ? -errno : 0;
}

/* In a child, so the filter cannot leak into other tests even without CK_FORK. */
static int blocked_child(void)
{
	struct ioeng_config cfg = { .kind = IOENG_URING };
	struct ioeng *e = NULL;
	struct io_req q = { .op = IO_WRITE, .iovcnt = 1, .done = on_done };
	struct io_req *p = &q;
	char buf[PAGE_SIZE] = "x";
	FILE *f = tmpfile();

	if (block_io_uring() < 0)
		return 10;
	if (ioeng_create(&cfg, &e) != -EPERM)
		return 11;
	cfg.kind = IOENG_AUTO;
	if (ioeng_create(&cfg, &e) < 0)
		return 12;
	if (ioeng_kind_of(e) != IOENG_THREADS || ioeng_fallback_error(e) != -EPERM)
		return 13;
	/* And it works: a write to a temp file. */
	if (!f)
		return 14;
	q.fd = fileno(f);
	q.iov[0] = (struct iovec){ buf, sizeof(buf) };
	if (ioeng_submit(e, &p, 1) < 0)
		return 15;
	ioeng_destroy(e);
	return q.result == sizeof(buf) ? 0 : 16;
}

START_TEST(test_fallback_when_blocked)
{
#ifdef HAVE_LIBURING
	int status;
	pid_t pid = fork();

	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		_exit(blocked_child());
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      "child status %#x", status);
#endif
}
END_TEST

/* The continuation window, table-driven: iov lengths 0,100,0,200,50. */
START_TEST(test_window)
{
	static char buf[400];
	const struct { size_t xfered; int cur; size_t off; } t[] = {
		{ 0, 1, 0 }, { 1, 1, 1 }, { 99, 1, 99 }, { 100, 3, 0 },
		{ 150, 3, 50 }, { 299, 3, 199 }, { 300, 4, 0 }, { 349, 4, 49 },
	};
	const size_t len[5] = { 0, 100, 0, 200, 50 };
	struct io_req q = { .iovcnt = 5 };
	size_t at = 0;

	for (int k = 0; k < 5; k++) {
		q.iov[k] = (struct iovec){ buf + at, len[k] };
		at += len[k];
	}
	q.cur = 0;
	q.cur_orig = q.iov[0];
	for (size_t i = 0; i < ARRAY_SIZE(t); i++) {
		size_t before = 0;

		q.xfered = t[i].xfered;
		ioeng_req_window(&q);
		ck_assert_int_eq(q.cur, t[i].cur);
		for (int k = 0; k < t[i].cur; k++)
			before += len[k];
		ck_assert_ptr_eq(q.iov[q.cur].iov_base, buf + before + t[i].off);
		ck_assert_uint_eq(q.iov[q.cur].iov_len, len[q.cur] - t[i].off);
	}
	ioeng_req_restore(&q);
	at = 0;
	for (int k = 0; k < 5; k++) {
		ck_assert_ptr_eq(q.iov[k].iov_base, buf + at);
		ck_assert_uint_eq(q.iov[k].iov_len, len[k]);
		at += len[k];
	}
}
END_TEST

static Suite *suite(void)
{
	Suite *su = suite_create("ioeng");
	TCase *tc = tcase_create("engines");
	TCase *misc = tcase_create("misc");
	int n = (int)ARRAY_SIZE(kinds);

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_loop_test(tc, test_write_read_back, 0, n);
	tcase_add_loop_test(tc, test_500_concurrent, 0, n);
	tcase_add_loop_test(tc, test_inject, 0, n);
	tcase_add_loop_test(tc, test_submit_from_done, 0, n);
	tcase_add_loop_test(tc, test_destroy_inflight, 0, n);
	tcase_add_loop_test(tc, test_eof, 0, n);
	tcase_add_loop_test(tc, test_short_write, 0, n);
	tcase_add_loop_test(tc, test_malformed, 0, n);
	tcase_add_loop_test(tc, test_run_in_caller, 0, n);
	suite_add_tcase(su, tc);
	tcase_add_test(misc, test_auto_and_names);
	tcase_add_test(misc, test_window);
	tcase_add_test(misc, test_fallback_when_blocked);
	suite_add_tcase(su, misc);
	return su;
}

int main(void)
{
	return check_run(suite(), CK_NORMAL);
}
