/*
 * The NBD swap device through the I/O engine, against a real nbdkit
 * (memory plugin on a unix socket) started here: data round trip, then
 * the server killed with commands out: every request completes with -EIO,
 * within the timeout, and later ones too (no hang, no zeros). Then the set
 * device over two servers (and a file): its layout, replicas, a read
 * falling back to the second replica after the first server is killed.
 */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"
#include "swap/ioeng.h"
#include "swap/swapdev.h"

static char sockpath[64], uri[128];
static pid_t server = -1;

/* nbdkit [filter args...] memory SIZE, on a fresh socket; extra: NULL-terminated */
static void start_server_with(const char *size, const char *const *extra)
{
	const char *argv[16] = { "nbdkit", "-f", "-U", sockpath };
	int argc = 4;

	static int seq;

	snprintf(sockpath, sizeof(sockpath), "/tmp/uvmp-nbd-test.%d.%d.sock", getpid(), seq++);
	snprintf(uri, sizeof(uri), "nbd+unix:///?socket=%s", sockpath);
	unlink(sockpath);
	server = fork();
	ck_assert_int_ge(server, 0);
	if (server == 0) {
		for (int i = 0; extra && extra[i] && argc < 12; i++)
			if (strncmp(extra[i], "--filter", 8) == 0)
				argv[argc++] = extra[i];
		argv[argc++] = "memory";
		argv[argc++] = size;
		for (int i = 0; extra && extra[i] && argc < 15; i++)
			if (strncmp(extra[i], "--filter", 8) != 0)
				argv[argc++] = extra[i];
		argv[argc] = NULL;
		execvp("nbdkit", (char *const *)argv);
		_exit(127);
	}
	for (int i = 0; i < 500; i++) {
		struct stat st;

		if (stat(sockpath, &st) == 0)
			return;
		usleep(10000);
	}
	ck_abort_msg("nbdkit did not come up");
}

static void start_server(const char *size)
{
	start_server_with(size, NULL);
}

static void stop_server(void)
{
	if (server > 0) {
		kill(server, SIGKILL);
		waitpid(server, NULL, 0);
		server = -1;
	}
	unlink(sockpath);
}

struct waiter {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned left;
};

static struct waiter w = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0 };

static void done(struct io_req *req)
{
	(void)req;
	pthread_mutex_lock(&w.lock);
	if (--w.left == 0)
		pthread_cond_broadcast(&w.cond);
	pthread_mutex_unlock(&w.lock);
}

static void wait_all(void)
{
	pthread_mutex_lock(&w.lock);
	while (w.left)
		pthread_cond_wait(&w.cond, &w.lock);
	pthread_mutex_unlock(&w.lock);
}

#define NREQ 32
#define PAGES 4

static void fill_req(struct io_req *r, struct swapdev *dev, enum io_op op,
		     uint8_t *buf, uint64_t slot)
{
	memset(r, 0, sizeof(*r));
	r->op = op;
	r->fd = -1;
	r->dev = dev;
	r->offset = slot << PAGE_SHIFT;
	r->iovcnt = PAGES;
	for (int j = 0; j < PAGES; j++) {
		r->iov[j].iov_base = buf + (size_t)j * PAGE_SIZE;
		r->iov[j].iov_len = PAGE_SIZE;
	}
	r->done = done;
}

static bool have_nbdkit(void)
{
	return system("nbdkit --version >/dev/null 2>&1") == 0;
}

START_TEST(round_trip_then_kill)
{
	static struct io_req reqs[NREQ];
	struct io_req *ptrs[NREQ];
	uint8_t *buf, *back;
	struct swapdev *dev;
	struct ioeng *e;
	struct swapdev_nbd_config cfg = { .uri = uri, .timeout_ms = 2000 };
	char err[256] = "";
	time_t t0;

	if (!have_nbdkit()) {
		fprintf(stderr, "skip: nbdkit not installed\n");
		return;
	}
	start_server("64M");
	ck_assert_msg(swapdev_nbd_open(&cfg, &dev, err, sizeof(err)) == 0, "%s", err);
	ck_assert_str_eq(swapdev_kind(dev), "nbd");
	ck_assert_uint_eq(dev->nslots, (64u << 20) >> PAGE_SHIFT);
	ck_assert_int_eq(ioeng_create(NULL, &e), 0);

	buf = aligned_alloc(PAGE_SIZE, (size_t)NREQ * PAGES * PAGE_SIZE);
	back = aligned_alloc(PAGE_SIZE, (size_t)NREQ * PAGES * PAGE_SIZE);
	for (size_t i = 0; i < (size_t)NREQ * PAGES * PAGE_SIZE; i++)
		buf[i] = (uint8_t)(i * 7 + i / PAGE_SIZE);
	memset(back, 0, (size_t)NREQ * PAGES * PAGE_SIZE);

	/* writes, one batch */
	for (int i = 0; i < NREQ; i++) {
		fill_req(&reqs[i], dev, IO_WRITE, buf + (size_t)i * PAGES * PAGE_SIZE, 1 + (uint64_t)i * PAGES);
		ptrs[i] = &reqs[i];
	}
	w.left = NREQ;
	ck_assert_int_eq(ioeng_submit(e, ptrs, NREQ), 0);
	wait_all();
	for (int i = 0; i < NREQ; i++)
		ck_assert_int_eq(reqs[i].result, PAGES * PAGE_SIZE);

	/* reads, asynchronously, and one through ioeng_run */
	for (int i = 0; i < NREQ; i++)
		fill_req(&reqs[i], dev, IO_READ, back + (size_t)i * PAGES * PAGE_SIZE, 1 + (uint64_t)i * PAGES);
	w.left = NREQ - 1;
	ck_assert_int_eq(ioeng_submit(e, ptrs, NREQ - 1), 0);
	wait_all();
	w.left = 1;
	ck_assert_int_eq(ioeng_run(e, &reqs[NREQ - 1]), 0);
	for (int i = 0; i < NREQ; i++)
		ck_assert_int_eq(reqs[i].result, PAGES * PAGE_SIZE);
	ck_assert_mem_eq(buf, back, (size_t)NREQ * PAGES * PAGE_SIZE);
	ck_assert(!atomic_load(&dev->down));

	/* the server dies: requests fail, none hangs, none reads zeros as data */
	stop_server();
	memset(back, 0, (size_t)NREQ * PAGES * PAGE_SIZE);
	t0 = time(NULL);
	w.left = NREQ;
	ck_assert_int_eq(ioeng_submit(e, ptrs, NREQ), 0);
	wait_all();
	ck_assert_int_le(time(NULL) - t0, 4);
	for (int i = 0; i < NREQ; i++)
		ck_assert_int_eq(reqs[i].result, -EIO);
	ck_assert(atomic_load(&dev->down));
	w.left = 1;
	ck_assert_int_eq(ioeng_run(e, &reqs[0]), 0);
	ck_assert_int_eq(reqs[0].result, -EIO);

	ioeng_destroy(e);
	swapdev_close(dev);
	free(buf);
	free(back);
}
END_TEST

/* A server that accepts and never answers: the timeout, not a hang. */
START_TEST(stalled_server_times_out)
{
	static struct io_req req;
	struct io_req *p = &req;
	uint8_t *buf;
	struct swapdev *dev;
	struct ioeng *e;
	struct swapdev_nbd_config cfg = { .uri = uri, .timeout_ms = 1000 };
	char err[256] = "";
	time_t t0;

	if (!have_nbdkit()) {
		fprintf(stderr, "skip: nbdkit not installed\n");
		return;
	}
	start_server("16M");
	ck_assert_msg(swapdev_nbd_open(&cfg, &dev, err, sizeof(err)) == 0, "%s", err);
	ck_assert_int_eq(ioeng_create(NULL, &e), 0);
	buf = aligned_alloc(PAGE_SIZE, PAGES * PAGE_SIZE);
	memset(buf, 0x5a, PAGES * PAGE_SIZE);
	kill(server, SIGSTOP);
	/* kill() returns before the stop takes: wait for state T. */
	for (int i = 0; i < 500; i++) {
		char path[64], st[512] = "";
		FILE *f;

		snprintf(path, sizeof(path), "/proc/%d/stat", (int)server);
		f = fopen(path, "r");
		if (f) {
			if (!fgets(st, sizeof(st), f))
				st[0] = 0;
			fclose(f);
		}
		if (strstr(st, ") T "))
			break;
		usleep(10000);
	}
	fill_req(&req, dev, IO_WRITE, buf, 1);
	t0 = time(NULL);
	w.left = 1;
	ck_assert_int_eq(ioeng_submit(e, &p, 1), 0);
	wait_all();
	ck_assert_int_le(time(NULL) - t0, 3);
	ck_assert_int_eq(req.result, -EIO);
	ck_assert(atomic_load(&dev->down));
	kill(server, SIGCONT);
	ioeng_destroy(e);
	swapdev_close(dev);
	stop_server();
	free(buf);
}
END_TEST

static ssize_t one_request(struct ioeng *e, struct swapdev *dev, enum io_op op,
			   uint8_t *buf, uint64_t slot, bool sync)
{
	static struct io_req req;
	struct io_req *p = &req;

	fill_req(&req, dev, op, buf, slot);
	w.left = 1;
	if (sync)
		ck_assert_int_eq(ioeng_run(e, &req), 0);
	else
		ck_assert_int_eq(ioeng_submit(e, &p, 1), 0);
	wait_all();
	return req.result;
}

/* nbdkit's error filter: the server answers with EIO; the device stays up. */
START_TEST(error_filter_fails_requests_not_the_device)
{
	static const char *const extra[] = { "--filter=error", "error=EIO", "error-pwrite-rate=100%", NULL };
	struct swapdev_nbd_config cfg = { .uri = uri, .timeout_ms = 2000 };
	struct swapdev *dev;
	struct ioeng *e;
	char err[256] = "";
	uint8_t *buf;

	if (!have_nbdkit())
		return;
	start_server_with("16M", extra);
	ck_assert_msg(swapdev_nbd_open(&cfg, &dev, err, sizeof(err)) == 0, "%s", err);
	ck_assert_int_eq(ioeng_create(NULL, &e), 0);
	buf = aligned_alloc(PAGE_SIZE, PAGES * PAGE_SIZE);
	memset(buf, 0x77, PAGES * PAGE_SIZE);
	for (int i = 0; i < 8; i++)
		ck_assert_int_eq(one_request(e, dev, IO_WRITE, buf, 1 + i * PAGES, i & 1), -EIO);
	ck_assert_int_eq(one_request(e, dev, IO_READ, buf, 1, false), PAGES * PAGE_SIZE);
	ck_assert(!atomic_load(&dev->down));
	ioeng_destroy(e);
	swapdev_close(dev);
	stop_server();
	free(buf);
}
END_TEST

/* nbdkit's delay filter: slow but inside the timeout works, beyond it is down. */
START_TEST(delay_filter)
{
	static const char *const extra[] = { "--filter=delay", "delay-write=300ms", "delay-read=2500ms", NULL };
	struct swapdev_nbd_config cfg = { .uri = uri, .timeout_ms = 1000 };
	struct swapdev *dev;
	struct ioeng *e;
	char err[256] = "";
	uint8_t *buf;
	time_t t0;

	if (!have_nbdkit())
		return;
	start_server_with("16M", extra);
	ck_assert_msg(swapdev_nbd_open(&cfg, &dev, err, sizeof(err)) == 0, "%s", err);
	ck_assert_int_eq(ioeng_create(NULL, &e), 0);
	buf = aligned_alloc(PAGE_SIZE, PAGES * PAGE_SIZE);
	memset(buf, 0x33, PAGES * PAGE_SIZE);
	ck_assert_int_eq(one_request(e, dev, IO_WRITE, buf, 1, false), PAGES * PAGE_SIZE);
	ck_assert(!atomic_load(&dev->down));
	t0 = time(NULL);
	ck_assert_int_eq(one_request(e, dev, IO_READ, buf, 1, true), -EIO);
	ck_assert_int_le(time(NULL) - t0, 2);
	ck_assert(atomic_load(&dev->down));
	ioeng_destroy(e);
	swapdev_close(dev);
	stop_server();
	free(buf);
}
END_TEST

START_TEST(bad_uri_is_an_error)
{
	struct swapdev_nbd_config cfg = { .uri = "nbd+unix:///?socket=/nonexistent/sock" };
	struct swapdev *dev = NULL;
	char err[256] = "";

	ck_assert_int_lt(swapdev_nbd_open(&cfg, &dev, err, sizeof(err)), 0);
	ck_assert_ptr_null(dev);
	ck_assert(strstr(err, "/nonexistent/sock") != NULL);
	ck_assert(swapdev_name_is_nbd("nbd://host:10809/x"));
	ck_assert(!swapdev_name_is_nbd("/var/lib/uvmpager/swap"));
}
END_TEST

/* A started server, kept while another is started. */
struct srv {
	pid_t pid;
	char sock[64], uri[128];
};

static void server_keep(struct srv *k, const char *size, const char *const *extra)
{
	start_server_with(size, extra);
	k->pid = server;
	snprintf(k->sock, sizeof(k->sock), "%s", sockpath);
	snprintf(k->uri, sizeof(k->uri), "%s", uri);
	server = -1;
}

static void server_kill(struct srv *k)
{
	if (k->pid > 0) {
		kill(k->pid, SIGKILL);
		waitpid(k->pid, NULL, 0);
		k->pid = -1;
	}
	unlink(k->sock);
}

static struct swapdev *nbd_member(struct srv *k)
{
	struct swapdev_nbd_config cfg = { .uri = k->uri, .timeout_ms = 2000 };
	struct swapdev *dev;
	char err[256] = "";

	/* the socket file exists a moment before nbdkit listens on it */
	for (int i = 0; i < 100; i++) {
		if (swapdev_nbd_open(&cfg, &dev, err, sizeof(err)) == 0)
			return dev;
		usleep(20000);
	}
	ck_abort_msg("%s", err);
	return NULL;
}

/* One request of n pages of buf at a global slot, through the engine. */
static ssize_t set_io(struct ioeng *e, struct swapdev *dev, enum io_op op, uint8_t *buf,
		      uint64_t slot, size_t pages, bool sync)
{
	static struct io_req req;
	struct io_req *p = &req;

	memset(&req, 0, sizeof(req));
	req.op = op;
	req.fd = dev->fd;
	req.dev = dev;
	req.offset = slot << PAGE_SHIFT;
	req.iovcnt = 1;
	req.iov[0].iov_base = buf;
	req.iov[0].iov_len = pages * PAGE_SIZE;
	req.done = done;
	w.left = 1;
	if (sync)
		ck_assert_int_eq(ioeng_run(e, &req), 0);
	else
		ck_assert_int_eq(ioeng_submit(e, &p, 1), 0);
	wait_all();
	return req.result;
}

static void stamp(uint8_t *buf, size_t pages, unsigned seed)
{
	for (size_t i = 0; i < pages * PAGE_SIZE; i += 8)
		*(uint64_t *)(buf + i) = (i / PAGE_SIZE) * 1000003u + seed;
}

/* Stripes, no replicas: unit u on member u mod 2, packed after its slot 0. */
START_TEST(set_layout)
{
	struct srv a = { .pid = -1 }, b = { .pid = -1 };
	struct swapdev *m[2], *set;
	struct ioeng *e;
	uint8_t *buf, *back;
	char err[256] = "";
	const unsigned U = SWAPDEV_SET_UNIT_SLOTS;

	if (!have_nbdkit())
		return;
	server_keep(&a, "16M", NULL);
	server_keep(&b, "8M", NULL);
	m[0] = nbd_member(&a);
	m[1] = nbd_member(&b);
	ck_assert_msg(swapdev_set_open(m, 2, 1, &set, err, sizeof(err)) == 0, "%s", err);
	/* replicas 1: nothing to rebuild from, so members are not reconnected */
	ck_assert(!atomic_load(&m[0]->may_reconnect) && !atomic_load(&m[1]->may_reconnect));
	ck_assert_str_eq(swapdev_kind(set), "set");
	/* the smaller member sets the size: 8M is 2048 slots, 31 whole units after slot 0 */
	ck_assert_uint_eq(set->nslots, 1 + 2 * 31 * U);
	ck_assert_uint_eq(swapdev_nmembers(set), 2);
	ck_assert_int_eq(ioeng_create(NULL, &e), 0);
	buf = aligned_alloc(PAGE_SIZE, 256 * PAGE_SIZE);
	back = aligned_alloc(PAGE_SIZE, 256 * PAGE_SIZE);
	/* 256 pages from slot 30: units 0..4, the first and last in part */
	stamp(buf, 256, 1);
	ck_assert_int_eq(set_io(e, set, IO_WRITE, buf, 30, 256, false), 256 * PAGE_SIZE);
	memset(back, 0, 256 * PAGE_SIZE);
	ck_assert_int_eq(set_io(e, set, IO_READ, back, 30, 256, false), 256 * PAGE_SIZE);
	ck_assert_mem_eq(buf, back, 256 * PAGE_SIZE);
	memset(back, 0, 256 * PAGE_SIZE);
	ck_assert_int_eq(set_io(e, set, IO_READ, back, 30, 256, true), 256 * PAGE_SIZE);
	ck_assert_mem_eq(buf, back, 256 * PAGE_SIZE);
	/* global slot 1 + U (unit 1) is member 1's slot 1; 1 + 2U (unit 2) member 0's 1 + U */
	ck_assert_int_eq(set_io(e, m[1], IO_READ, back, 1, 1, false), PAGE_SIZE);
	ck_assert_mem_eq(back, buf + (size_t)(1 + U - 30) * PAGE_SIZE, PAGE_SIZE);
	ck_assert_int_eq(set_io(e, m[0], IO_READ, back, 1 + U, 1, false), PAGE_SIZE);
	ck_assert_mem_eq(back, buf + (size_t)(1 + 2 * U - 30) * PAGE_SIZE, PAGE_SIZE);
	/* 5 units: 3 on member 0 (34 + 64 + 64 pages... of them), both written */
	ck_assert_uint_gt(atomic_load(&m[0]->write_bytes), 0);
	ck_assert_uint_gt(atomic_load(&m[1]->write_bytes), 0);
	ck_assert_uint_eq(atomic_load(&m[0]->write_bytes) + atomic_load(&m[1]->write_bytes),
			  256 * PAGE_SIZE);
	ck_assert_str_eq(swapdev_state(set), "up");
	/* out of range (slot 0, past the end): an error, in the engine's thread or inline for run */
	ck_assert_int_eq(set_io(e, set, IO_WRITE, buf, 0, 1, false), -EBADF);
	ck_assert_int_eq(set_io(e, set, IO_READ, back, set->nslots - 1, 2, false), -EBADF);
	ck_assert_int_eq(set_io(e, set, IO_READ, back, set->nslots, 1, true), -EBADF);
	ck_assert_uint_eq(atomic_load(&m[0]->errors) + atomic_load(&m[1]->errors), 0);
	ioeng_destroy(e);
	swapdev_close(set);
	server_kill(&a);
	server_kill(&b);
	free(buf);
	free(back);
}
END_TEST

#define SET_NREQ 300    /* x 2 replicas: more sub-requests than the pool holds */

/* Replicas 2: reads fall back to the second copy when the first server dies. */
START_TEST(set_replica_fallback)
{
	static struct io_req reqs[SET_NREQ];
	struct io_req *ptrs[SET_NREQ];
	struct srv a = { .pid = -1 }, b = { .pid = -1 };
	struct swapdev *m[2], *set;
	struct ioeng *e;
	uint8_t *buf, *back;
	char err[256] = "";
	size_t len = (size_t)SET_NREQ * PAGES * PAGE_SIZE;

	if (!have_nbdkit())
		return;
	server_keep(&a, "64M", NULL);
	server_keep(&b, "64M", NULL);
	m[0] = nbd_member(&a);
	m[1] = nbd_member(&b);
	ck_assert_msg(swapdev_set_open(m, 2, 2, &set, err, sizeof(err)) == 0, "%s", err);
	ck_assert_int_eq(ioeng_create(NULL, &e), 0);
	buf = aligned_alloc(PAGE_SIZE, len);
	back = aligned_alloc(PAGE_SIZE, len);
	stamp(buf, SET_NREQ * PAGES, 7);

	for (int i = 0; i < SET_NREQ; i++) {
		fill_req(&reqs[i], set, IO_WRITE, buf + (size_t)i * PAGES * PAGE_SIZE,
			 1 + (uint64_t)i * PAGES);
		ptrs[i] = &reqs[i];
	}
	w.left = SET_NREQ;
	ck_assert_int_eq(ioeng_submit(e, ptrs, SET_NREQ), 0);
	wait_all();
	for (int i = 0; i < SET_NREQ; i++)
		ck_assert_int_eq(reqs[i].result, PAGES * PAGE_SIZE);
	/* every page on both */
	ck_assert_uint_eq(atomic_load(&m[0]->write_bytes), len);
	ck_assert_uint_eq(atomic_load(&m[1]->write_bytes), len);

	/* the first server dies with reads out: they go to the second copy */
	memset(back, 0, len);
	for (int i = 0; i < SET_NREQ; i++)
		fill_req(&reqs[i], set, IO_READ, back + (size_t)i * PAGES * PAGE_SIZE,
			 1 + (uint64_t)i * PAGES);
	w.left = SET_NREQ;
	ck_assert_int_eq(ioeng_submit(e, ptrs, SET_NREQ), 0);
	server_kill(&a);
	wait_all();
	for (int i = 0; i < SET_NREQ; i++)
		ck_assert_int_eq(reqs[i].result, PAGES * PAGE_SIZE);
	ck_assert_mem_eq(buf, back, len);
	fprintf(stderr, "set fallback: member 0 read %llu bytes, %llu errors; member 1 read %llu of %zu\n",
		(unsigned long long)atomic_load(&m[0]->read_bytes),
		(unsigned long long)atomic_load(&m[0]->errors),
		(unsigned long long)atomic_load(&m[1]->read_bytes), len);
	/* down for certain now (the kill may have beaten or trailed the reads) */
	memset(back, 0, PAGES * PAGE_SIZE);
	ck_assert_int_eq(set_io(e, set, IO_READ, back, 1, PAGES, true), PAGES * PAGE_SIZE);
	for (int i = 0; i < 50 && !atomic_load(&m[0]->down); i++) {
		ck_assert_int_eq(set_io(e, set, IO_READ, back, 1, PAGES, false), PAGES * PAGE_SIZE);
		usleep(20000);
	}
	ck_assert(atomic_load(&m[0]->down));
	ck_assert_str_eq(swapdev_state(set), "degraded");
	ck_assert_mem_eq(buf, back, PAGES * PAGE_SIZE);

	/* writes go on with one copy, sync and async; reads see them */
	stamp(buf, 2 * PAGES, 9);
	ck_assert_int_eq(set_io(e, set, IO_WRITE, buf, 1 + 64 - 2, PAGES, false), PAGES * PAGE_SIZE);
	ck_assert_int_eq(set_io(e, set, IO_WRITE, buf + PAGES * PAGE_SIZE, 1 + 128, PAGES, true),
			 PAGES * PAGE_SIZE);
	ck_assert_int_eq(set_io(e, set, IO_READ, back, 1 + 64 - 2, PAGES, false), PAGES * PAGE_SIZE);
	ck_assert_mem_eq(buf, back, PAGES * PAGE_SIZE);
	ck_assert_int_eq(set_io(e, set, IO_READ, back, 1 + 128, PAGES, true), PAGES * PAGE_SIZE);
	ck_assert_mem_eq(buf + PAGES * PAGE_SIZE, back, PAGES * PAGE_SIZE);

	/* the second dies too: errors, never zeros as data, never a hang */
	server_kill(&b);
	memset(back, 0, PAGES * PAGE_SIZE);
	for (int i = 0; i < 100 && !atomic_load(&m[1]->down); i++)
		usleep(20000);
	ck_assert_int_eq(set_io(e, set, IO_READ, back, 1, PAGES, false), -EIO);
	ck_assert_int_eq(set_io(e, set, IO_READ, back, 1, PAGES, true), -EIO);
	ck_assert_int_eq(set_io(e, set, IO_WRITE, buf, 1, PAGES, false), -EIO);
	ck_assert_str_eq(swapdev_state(set), "down");
	ioeng_destroy(e);
	swapdev_close(set);
	free(buf);
	free(back);
}
END_TEST

/* nbdkit memory SIZE again on k's socket (a restarted server: empty) */
static void server_restart(struct srv *k, const char *size)
{
	unlink(k->sock);
	k->pid = fork();
	ck_assert_int_ge(k->pid, 0);
	if (k->pid == 0) {
		execlp("nbdkit", "nbdkit", "-f", "-U", k->sock, "memory", size, (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 500; i++) {
		struct stat st;

		if (stat(k->sock, &st) == 0)
			return;
		usleep(10000);
	}
	ck_abort_msg("nbdkit did not come back");
}

/* Reads through the set until member i is seen down (a kill is noticed on I/O). */
static void wait_member_down(struct ioeng *e, struct swapdev *set, unsigned i, uint8_t *back)
{
	for (int k = 0; k < 100 && !atomic_load(&swapdev_member(set, i)->down); k++) {
		set_io(e, set, IO_READ, back, 1 + (uint64_t)k % 4 * 64, PAGES, false);
		usleep(20000);
	}
	ck_assert(atomic_load(&swapdev_member(set, i)->down));
}

/*
 * Replicas 2: server 0 dies, pages are written while it is down, it comes
 * back empty on the same socket: it is reconnected, rebuilt (not read
 * before), and once up it alone serves every page when server 1 dies.
 */
START_TEST(set_member_back_is_rebuilt)
{
	static struct io_req reqs[SET_NREQ];
	struct io_req *ptrs[SET_NREQ];
	struct srv a = { .pid = -1 }, b = { .pid = -1 };
	struct swapdev *m[2], *set;
	struct ioeng *e;
	uint8_t *buf, *back;
	char err[256] = "";
	size_t len = (size_t)SET_NREQ * PAGES * PAGE_SIZE;
	uint64_t done, total;
	bool saw_rebuilding = false;
	int i;

	if (!have_nbdkit())
		return;
	server_keep(&a, "64M", NULL);
	server_keep(&b, "64M", NULL);
	m[0] = nbd_member(&a);
	m[1] = nbd_member(&b);
	ck_assert_msg(swapdev_set_open(m, 2, 2, &set, err, sizeof(err)) == 0, "%s", err);
	ck_assert(atomic_load(&m[0]->may_reconnect));
	ck_assert_int_eq(ioeng_create(NULL, &e), 0);
	buf = aligned_alloc(PAGE_SIZE, len);
	back = aligned_alloc(PAGE_SIZE, len);
	stamp(buf, SET_NREQ * PAGES, 7);
	for (i = 0; i < SET_NREQ; i++) {
		fill_req(&reqs[i], set, IO_WRITE, buf + (size_t)i * PAGES * PAGE_SIZE,
			 1 + (uint64_t)i * PAGES);
		ptrs[i] = &reqs[i];
	}
	w.left = SET_NREQ;
	ck_assert_int_eq(ioeng_submit(e, ptrs, SET_NREQ), 0);
	wait_all();

	/* server 0 dies; the first 40 requests' pages change while it is down */
	server_kill(&a);
	wait_member_down(e, set, 0, back);
	stamp(buf, 40 * PAGES, 11);
	for (i = 0; i < 40; i++)
		ck_assert_int_eq(set_io(e, set, IO_WRITE, buf + (size_t)i * PAGES * PAGE_SIZE,
					1 + (uint64_t)i * PAGES, PAGES, i % 2), PAGES * PAGE_SIZE);
	ck_assert_str_eq(swapdev_member_state(set, 0), "down");

	/* back, empty: rebuilt from server 1, then up */
	server_restart(&a, "64M");
	for (i = 0; i < 1000 && strcmp(swapdev_member_state(set, 0), "up"); i++) {
		if (!strcmp(swapdev_member_state(set, 0), "rebuilding")) {
			saw_rebuilding = true;
			/* not read while rebuilding: reads are right all along */
			ck_assert_int_eq(set_io(e, set, IO_READ, back, 1, PAGES, false), PAGES * PAGE_SIZE);
			ck_assert_mem_eq(buf, back, PAGES * PAGE_SIZE);
		}
		usleep(10000);
	}
	ck_assert_str_eq(swapdev_member_state(set, 0), "up");
	ck_assert_str_eq(swapdev_state(set), "up");
	swapdev_member_rebuild(set, 0, &done, &total);
	fprintf(stderr, "set rebuild: %llu of %llu units, rebuilding seen %d\n",
		(unsigned long long)done, (unsigned long long)total, saw_rebuilding);
	ck_assert_uint_gt(total, 0);
	ck_assert_uint_eq(done, total);

	/* server 1 dies: every page comes from the rebuilt server 0 */
	server_kill(&b);
	wait_member_down(e, set, 1, back);
	memset(back, 0, len);
	for (i = 0; i < SET_NREQ; i++)
		fill_req(&reqs[i], set, IO_READ, back + (size_t)i * PAGES * PAGE_SIZE,
			 1 + (uint64_t)i * PAGES);
	w.left = SET_NREQ;
	ck_assert_int_eq(ioeng_submit(e, ptrs, SET_NREQ), 0);
	wait_all();
	for (i = 0; i < SET_NREQ; i++)
		ck_assert_int_eq(reqs[i].result, PAGES * PAGE_SIZE);
	ck_assert_mem_eq(buf, back, len);
	ck_assert_str_eq(swapdev_state(set), "degraded");
	ioeng_destroy(e);
	swapdev_close(set);
	server_kill(&a);
	free(buf);
	free(back);
}
END_TEST

/*
 * Writes during a rebuild are not undone by it: the test's hook, in the
 * rebuild thread between reading unit 0 from server 1 and writing it to
 * server 0, rewrites that unit through the set (new data on both); the
 * stale copy must then be done again (its generation moved), not left.
 */
struct newer {
	struct ioeng *e;
	struct swapdev *set;
	uint8_t *buf;
	int calls;
	ssize_t result;
};

static void no_done(struct io_req *req)
{
	(void)req;
}

static void rewrite_unit0(void *ctx, uint64_t unit)
{
	struct newer *n = ctx;
	struct io_req req;

	if (unit != 0 || n->calls++)
		return;
	memset(&req, 0, sizeof(req));
	req.op = IO_WRITE;
	req.fd = -1;
	req.dev = n->set;
	req.offset = PAGE_SIZE;
	req.iovcnt = 1;
	req.iov[0].iov_base = n->buf;
	req.iov[0].iov_len = SWAPDEV_SET_UNIT_SLOTS * PAGE_SIZE;
	req.done = no_done;
	n->result = ioeng_run(n->e, &req) ? -EINVAL : req.result;
}

/* The hook kills the member being rebuilt (once): the pass stops, and starts over when it is back. */
struct again {
	struct srv *a;
	int calls;
};

static void kill_target(void *ctx, uint64_t unit)
{
	struct again *g = ctx;

	(void)unit;
	if (g->calls++ == 1)
		server_kill(g->a);
}

START_TEST(set_rebuild_member_dies_again)
{
	struct srv a = { .pid = -1 }, b = { .pid = -1 };
	struct swapdev *m[2], *set;
	struct ioeng *e;
	const unsigned pages = 4 * SWAPDEV_SET_UNIT_SLOTS;
	size_t len = (size_t)pages * PAGE_SIZE;
	struct again g = { .a = &a };
	uint8_t *buf, *back;
	char err[256] = "";
	uint64_t done, total;
	int i;

	if (!have_nbdkit())
		return;
	server_keep(&a, "16M", NULL);
	server_keep(&b, "16M", NULL);
	m[0] = nbd_member(&a);
	m[1] = nbd_member(&b);
	ck_assert_msg(swapdev_set_open(m, 2, 2, &set, err, sizeof(err)) == 0, "%s", err);
	ck_assert_int_eq(ioeng_create(NULL, &e), 0);
	buf = aligned_alloc(PAGE_SIZE, len);
	back = aligned_alloc(PAGE_SIZE, len);
	stamp(buf, pages, 5);
	ck_assert_int_eq(set_io(e, set, IO_WRITE, buf, 1, pages, false), (ssize_t)len);
	server_kill(&a);
	wait_member_down(e, set, 0, back);
	swapdev_set_rebuild_hook(set, kill_target, &g);
	server_restart(&a, "16M");
	/* the second unit's copy finds it dead: down again, not up */
	for (i = 0; i < 500 && g.calls < 2; i++)
		usleep(10000);
	ck_assert_int_ge(g.calls, 2);
	for (i = 0; i < 200 && !atomic_load(&m[0]->down); i++)
		usleep(10000);
	usleep(200000);
	ck_assert_str_eq(swapdev_member_state(set, 0), "down");
	ck_assert_str_eq(swapdev_state(set), "degraded");
	server_restart(&a, "16M");
	for (i = 0; i < 1000 && strcmp(swapdev_member_state(set, 0), "up"); i++)
		usleep(10000);
	ck_assert_str_eq(swapdev_member_state(set, 0), "up");
	swapdev_member_rebuild(set, 0, &done, &total);
	ck_assert_uint_eq(done, 4);
	server_kill(&b);
	wait_member_down(e, set, 1, back);
	memset(back, 0, len);
	ck_assert_int_eq(set_io(e, set, IO_READ, back, 1, pages, true), (ssize_t)len);
	ck_assert_mem_eq(buf, back, len);
	ioeng_destroy(e);
	swapdev_close(set);
	server_kill(&a);
	free(buf);
	free(back);
}
END_TEST

START_TEST(set_rebuild_keeps_newer_writes)
{
	struct srv a = { .pid = -1 }, b = { .pid = -1 };
	struct swapdev *m[2], *set;
	struct ioeng *e;
	const unsigned units = 4, pages = units * SWAPDEV_SET_UNIT_SLOTS;
	size_t len = (size_t)pages * PAGE_SIZE;
	struct newer n = { 0 };
	uint8_t *buf, *back;
	char err[256] = "";
	uint64_t done, total;
	int i;

	if (!have_nbdkit())
		return;
	server_keep(&a, "16M", NULL);
	server_keep(&b, "16M", NULL);
	m[0] = nbd_member(&a);
	m[1] = nbd_member(&b);
	ck_assert_msg(swapdev_set_open(m, 2, 2, &set, err, sizeof(err)) == 0, "%s", err);
	ck_assert_int_eq(ioeng_create(NULL, &e), 0);
	buf = aligned_alloc(PAGE_SIZE, len);
	back = aligned_alloc(PAGE_SIZE, len);
	stamp(buf, pages, 7);
	for (unsigned p = 0; p < pages; p += PAGES)
		ck_assert_int_eq(set_io(e, set, IO_WRITE, buf + (size_t)p * PAGE_SIZE, 1 + p, PAGES,
					false), PAGES * PAGE_SIZE);
	server_kill(&a);
	wait_member_down(e, set, 0, back);
	/* unit 0's new data, written by the hook while its old copy is in flight */
	stamp(buf, SWAPDEV_SET_UNIT_SLOTS, 13);
	n.e = e;
	n.set = set;
	n.buf = buf;
	swapdev_set_rebuild_hook(set, rewrite_unit0, &n);
	server_restart(&a, "16M");
	for (i = 0; i < 1000 && strcmp(swapdev_member_state(set, 0), "up"); i++)
		usleep(10000);
	ck_assert_str_eq(swapdev_member_state(set, 0), "up");
	ck_assert_int_eq(n.calls, 2);   /* unit 0 copied twice: once stale, once right */
	ck_assert_int_eq(n.result, SWAPDEV_SET_UNIT_SLOTS * PAGE_SIZE);
	swapdev_member_rebuild(set, 0, &done, &total);
	ck_assert_uint_eq(total, units);
	/* server 1 goes: server 0 alone must have the new data */
	server_kill(&b);
	wait_member_down(e, set, 1, back);
	memset(back, 0, len);
	for (unsigned p = 0; p < pages; p += PAGES)
		ck_assert_int_eq(set_io(e, set, IO_READ, back + (size_t)p * PAGE_SIZE, 1 + p, PAGES,
					p % 8 == 0), PAGES * PAGE_SIZE);
	ck_assert_mem_eq(buf, back, len);
	ioeng_destroy(e);
	swapdev_close(set);
	server_kill(&a);
	free(buf);
	free(back);
}
END_TEST

/*
 * A file and an NBD server whose writes fail (error filter): the server
 * is up, so a failed copy fails the write (the pager writes elsewhere);
 * reads are fine.
 */
START_TEST(set_write_error_on_up_member_fails_write)
{
	static const char *const extra[] = { "--filter=error", "error=EIO", "error-pwrite-rate=100%", NULL };
	struct srv b = { .pid = -1 };
	struct swapfile_config fcfg = { .size = 8 << 20, .no_direct = true };
	struct swapdev *m[2], *set;
	struct ioeng *e;
	char path[64], err[256] = "";
	uint8_t *buf;

	if (!have_nbdkit())
		return;
	snprintf(path, sizeof(path), "/tmp/uvmp-set-test.%d.swap", getpid());
	unlink(path);
	fcfg.path = path;
	ck_assert_msg(swapdev_file_open(&fcfg, &m[0], err, sizeof(err)) == 0, "%s", err);
	server_keep(&b, "16M", extra);
	m[1] = nbd_member(&b);
	ck_assert_msg(swapdev_set_open(m, 2, 2, &set, err, sizeof(err)) == 0, "%s", err);
	ck_assert_int_eq(ioeng_create(NULL, &e), 0);
	buf = aligned_alloc(PAGE_SIZE, PAGES * PAGE_SIZE);
	stamp(buf, PAGES, 3);
	ck_assert_int_eq(set_io(e, set, IO_WRITE, buf, 1, PAGES, false), -EIO);
	ck_assert_int_eq(set_io(e, set, IO_WRITE, buf, 1, PAGES, true), -EIO);
	ck_assert(!atomic_load(&m[1]->down));
	ck_assert_uint_eq(atomic_load(&m[0]->write_bytes), 2 * PAGES * PAGE_SIZE);
	ck_assert_int_eq(set_io(e, set, IO_READ, buf, 1, PAGES, false), PAGES * PAGE_SIZE);
	ck_assert_str_eq(swapdev_state(set), "up");
	ioeng_destroy(e);
	swapdev_close(set);
	server_kill(&b);
	unlink(path);
	free(buf);
}
END_TEST

START_TEST(set_bad_shapes_are_refused)
{
	struct swapfile_config fcfg = { .size = 1 << 20, .no_direct = true };
	struct swapdev *m[2], *set = NULL;
	char path[64], err[256] = "";

	snprintf(path, sizeof(path), "/tmp/uvmp-set-test2.%d.swap", getpid());
	unlink(path);
	fcfg.path = path;
	ck_assert_int_eq(swapdev_file_open(&fcfg, &m[0], err, sizeof(err)), 0);
	/* more replicas than devices: refused, and the member closed */
	ck_assert_int_eq(swapdev_set_open(m, 1, 2, &set, err, sizeof(err)), -EINVAL);
	ck_assert_ptr_null(set);
	ck_assert(strstr(err, "replicas") != NULL);
	ck_assert_int_eq(swapdev_file_open(&fcfg, &m[0], err, sizeof(err)), 0);
	unlink(path);
	/* 1M is 255 data slots: 3 units, 1 cycle of 2 replicas... fine; 3 replicas of 1 device not */
	ck_assert_int_eq(swapdev_set_open(m, 1, 1, &set, err, sizeof(err)), 0);
	ck_assert_uint_eq(set->nslots, 1 + 3 * SWAPDEV_SET_UNIT_SLOTS);
	swapdev_close(set);
}
END_TEST

/*
 * Distinct "connection=N" numbers on nbdkit log-filter lines for `what`
 * ("Read", "Write"), as a bitmask of N (N < 64).
 */
static uint64_t log_connections(const char *log, const char *what)
{
	uint64_t seen = 0;
	char line[512], key[32];
	FILE *f = fopen(log, "r");

	ck_assert_ptr_nonnull(f);
	snprintf(key, sizeof(key), " %s ", what);
	while (fgets(line, sizeof(line), f)) {
		const char *c = strstr(line, "connection=");

		if (c && strstr(line, key))
			seen |= 1ull << (strtoul(c + 11, NULL, 10) & 63);
	}
	fclose(f);
	return seen;
}

/*
 * nbdkit memory allows multi-conn: the device opens 4 connections, spreads
 * requests over all of them (the server's log says which connection each
 * came on), and pages written on one read back right on another. Then the
 * server dies: the device is one, every request fails, it is down. A
 * server that forbids multi-conn (nbdkit's multi-conn filter) gets one.
 */
START_TEST(multi_conn_spreads_requests)
{
	static struct io_req reqs[NREQ];
	struct io_req *ptrs[NREQ];
	char log[64], larg[80], err[256] = "";
	const char *extra[] = { "--filter=log", larg, NULL };
	static const char *const nomc[] = { "--filter=multi-conn", "multi-conn-mode=disable", NULL };
	static const char *const lim2[] = { "--filter=limit", "limit=2", NULL };
	struct swapdev_nbd_config cfg = { .uri = uri, .timeout_ms = 2000 };
	struct swapdev *dev;
	struct ioeng *e;
	uint8_t *buf, *back;

	if (!have_nbdkit())
		return;
	snprintf(log, sizeof(log), "/tmp/uvmp-nbd-mc.%d.log", getpid());
	snprintf(larg, sizeof(larg), "logfile=%s", log);
	unlink(log);
	start_server_with("16M", extra);
	ck_assert_msg(swapdev_nbd_open(&cfg, &dev, err, sizeof(err)) == 0, "%s", err);
	ck_assert_uint_eq(atomic_load(&dev->connections), 4);
	ck_assert_int_eq(ioeng_create(NULL, &e), 0);
	buf = aligned_alloc(PAGE_SIZE, (size_t)NREQ * PAGES * PAGE_SIZE);
	back = aligned_alloc(PAGE_SIZE, (size_t)NREQ * PAGES * PAGE_SIZE);
	for (size_t i = 0; i < (size_t)NREQ * PAGES * PAGE_SIZE; i++)
		buf[i] = (uint8_t)(i * 31 + i / PAGE_SIZE);
	memset(back, 0, (size_t)NREQ * PAGES * PAGE_SIZE);
	for (int i = 0; i < NREQ; i++) {
		fill_req(&reqs[i], dev, IO_WRITE, buf + (size_t)i * PAGES * PAGE_SIZE,
			 1 + (uint64_t)i * PAGES);
		ptrs[i] = &reqs[i];
	}
	w.left = NREQ;
	ck_assert_int_eq(ioeng_submit(e, ptrs, NREQ), 0);
	wait_all();
	for (int i = 0; i < NREQ; i++)
		ck_assert_int_eq(reqs[i].result, PAGES * PAGE_SIZE);
	/* read back shifted by one request: each page comes back on another connection */
	for (int i = 0; i < NREQ; i++)
		fill_req(&reqs[i], dev, IO_READ, back + (size_t)i * PAGES * PAGE_SIZE,
			 1 + (uint64_t)i * PAGES);
	w.left = 1;
	ck_assert_int_eq(ioeng_run(e, &reqs[NREQ - 1]), 0);
	w.left = NREQ - 1;
	ck_assert_int_eq(ioeng_submit(e, ptrs, NREQ - 1), 0);
	wait_all();
	for (int i = 0; i < NREQ; i++)
		ck_assert_int_eq(reqs[i].result, PAGES * PAGE_SIZE);
	ck_assert(memcmp(buf, back, (size_t)NREQ * PAGES * PAGE_SIZE) == 0);
	/* the log filter writes a request's line when it is done: all are */
	ck_assert_int_eq(__builtin_popcountll(log_connections(log, "Write")), 4);
	ck_assert_int_eq(__builtin_popcountll(log_connections(log, "Read")), 4);

	stop_server();
	for (int i = 0; i < NREQ; i++)
		fill_req(&reqs[i], dev, IO_WRITE, buf + (size_t)i * PAGES * PAGE_SIZE,
			 1 + (uint64_t)i * PAGES);
	w.left = NREQ;
	ck_assert_int_eq(ioeng_submit(e, ptrs, NREQ), 0);
	wait_all();
	for (int i = 0; i < NREQ; i++)
		ck_assert_int_eq(reqs[i].result, -EIO);
	ck_assert(atomic_load(&dev->down));
	ioeng_destroy(e);
	swapdev_close(dev);
	unlink(log);

	/* a server that takes 2 connections at most: the device goes on with 2 */
	start_server_with("16M", lim2);
	ck_assert_msg(swapdev_nbd_open(&cfg, &dev, err, sizeof(err)) == 0, "%s", err);
	ck_assert_uint_eq(atomic_load(&dev->connections), 2);
	ck_assert_int_eq(ioeng_create(NULL, &e), 0);
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(one_request(e, dev, IO_WRITE, buf, 1 + i * PAGES, i & 1),
				 PAGES * PAGE_SIZE);
	ck_assert_int_eq(one_request(e, dev, IO_READ, back, 1, false), PAGES * PAGE_SIZE);
	ck_assert(memcmp(buf, back, PAGES * PAGE_SIZE) == 0);
	ioeng_destroy(e);
	swapdev_close(dev);
	stop_server();

	/* no multi-conn from the server, or one asked for: one connection */
	start_server_with("16M", nomc);
	ck_assert_msg(swapdev_nbd_open(&cfg, &dev, err, sizeof(err)) == 0, "%s", err);
	ck_assert_uint_eq(atomic_load(&dev->connections), 1);
	swapdev_close(dev);
	stop_server();
	start_server("16M");
	cfg.connections = 1;
	ck_assert_msg(swapdev_nbd_open(&cfg, &dev, err, sizeof(err)) == 0, "%s", err);
	ck_assert_uint_eq(atomic_load(&dev->connections), 1);
	swapdev_close(dev);
	stop_server();
	free(buf);
	free(back);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("swapdev_nbd");
	TCase *tc = tcase_create("nbd");
	SRunner *sr;
	int failed;

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, round_trip_then_kill);
	tcase_add_test(tc, stalled_server_times_out);
	tcase_add_test(tc, error_filter_fails_requests_not_the_device);
	tcase_add_test(tc, delay_filter);
	tcase_add_test(tc, bad_uri_is_an_error);
	tcase_add_test(tc, set_layout);
	tcase_add_test(tc, set_replica_fallback);
	tcase_add_test(tc, set_member_back_is_rebuilt);
	tcase_add_test(tc, set_rebuild_keeps_newer_writes);
	tcase_add_test(tc, set_rebuild_member_dies_again);
	tcase_add_test(tc, set_write_error_on_up_member_fails_write);
	tcase_add_test(tc, set_bad_shapes_are_refused);
	tcase_add_test(tc, multi_conn_spreads_requests);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
