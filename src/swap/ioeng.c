#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>

#include "build-config.h"
#include "swap/ioeng_impl.h"
#include "swap/swapdev.h"

void ioeng_base_init(struct ioeng *e, const struct ioeng_ops *ops,
		     const struct ioeng_config *cfg)
{
	e->ops = ops;
	e->cfg = *cfg;
	pthread_mutex_init(&e->drain_lock, NULL);
	pthread_cond_init(&e->drained, NULL);
}

void ioeng_base_fini(struct ioeng *e)
{
	pthread_cond_destroy(&e->drained);
	pthread_mutex_destroy(&e->drain_lock);
}

int ioeng_thread_start(pthread_t *t, void *(*fn)(void *), void *arg, const char *name)
{
	sigset_t all, old;
	int r;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	r = pthread_create(t, NULL, fn, arg);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r)
		return -r;
	pthread_setname_np(*t, name);
	return 0;
}

int ioeng_create(const struct ioeng_config *cfg, struct ioeng **out)
{
	struct ioeng_config c = { 0 };

	if (cfg)
		c = *cfg;
	if (!c.depth)
		c.depth = 256;
	if (!c.threads)
		c.threads = 4;
	switch (c.kind) {
	case IOENG_URING:
#ifdef HAVE_LIBURING
		return ioeng_uring_create(&c, out);
#else
		return -EOPNOTSUPP;
#endif
	case IOENG_AUTO: {
		int why = -EOPNOTSUPP, r;

#ifdef HAVE_LIBURING
		/* Any failure (disabled by sysctl, seccomp, old kernel) means threads. */
		why = ioeng_uring_create(&c, out);
		if (why == 0)
			return 0;
#endif
		r = ioeng_threads_create(&c, out);
		if (r == 0)
			(*out)->fallback_err = why;
		return r;
	}
	case IOENG_THREADS:
		return ioeng_threads_create(&c, out);
	}
	return -EINVAL;
}

void ioeng_destroy(struct ioeng *e)
{
	if (!e)
		return;
	pthread_mutex_lock(&e->drain_lock);
	while (atomic_load(&e->inflight))
		pthread_cond_wait(&e->drained, &e->drain_lock);
	pthread_mutex_unlock(&e->drain_lock);
	e->ops->destroy(e);
}

const char *ioeng_name(const struct ioeng *e)
{
	return e->ops->name;
}

enum ioeng_kind ioeng_kind_of(const struct ioeng *e)
{
	return e->ops->kind;
}

int ioeng_ring_fd(const struct ioeng *e)
{
#ifdef HAVE_LIBURING
	if (e->ops->kind == IOENG_URING)
		return ioeng_uring_fd(e);
#endif
	return -1;
}

int ioeng_fallback_error(const struct ioeng *e)
{
	return e->fallback_err;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* Adds one completed request of req->dev to its latency counters. */
static void dev_latency_add(const struct io_req *req)
{
	struct swapdev_latency *l = &req->dev->lat[req->op == IO_READ ? IO_READ : IO_WRITE];
	uint64_t ns = now_ns() - req->submit_ns, max;

	atomic_fetch_add_explicit(&l->ops, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&l->sum_ns, ns, memory_order_relaxed);
	max = atomic_load_explicit(&l->max_ns, memory_order_relaxed);
	while (ns > max && !atomic_compare_exchange_weak_explicit(&l->max_ns, &max, ns,
								  memory_order_relaxed,
								  memory_order_relaxed))
		;
}

static int req_prepare(struct io_req *req)
{
	size_t total = 0;

	if (!req || !req->done || (req->op != IO_READ && req->op != IO_WRITE) ||
	    req->iovcnt < 1 || req->iovcnt > IO_MAX_IOV)
		return -EINVAL;
	for (int i = 0; i < req->iovcnt; i++) {
		if (req->iov[i].iov_len > SSIZE_MAX - total)
			return -EINVAL;
		total += req->iov[i].iov_len;
	}
	if (!total)
		return -EINVAL;
	req->total = total;
	req->xfered = 0;
	req->result = 0;
	req->next = NULL;
	req->cur = 0;
	req->cur_orig = req->iov[0];
	/* A vDSO read per request, only for swap devices (their latency stat). */
	if (req->dev)
		req->submit_ns = now_ns();
	return 0;
}

int ioeng_submit(struct ioeng *e, struct io_req **reqs, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		int r = req_prepare(reqs[i]);

		if (r < 0)
			return r;
	}
	if (!n)
		return 0;
	atomic_fetch_add(&e->inflight, n);
	/* Device requests go to their device, the rest to the engine, in order. */
	for (unsigned i = 0, first = 0; i <= n; i++) {
		bool own = i < n && swapdev_has_transport(reqs[i]->dev);

		if (i == n || own) {
			if (i > first)
				e->ops->submit(e, reqs + first, i - first);
			first = i + 1;
		}
		if (own)
			swapdev_submit(reqs[i]->dev, e, reqs[i]);
	}
	return 0;
}

int ioeng_req_inject(struct ioeng *e, const struct io_req *req)
{
	int r;

	if (!e->cfg.inject)
		return 0;
	r = e->cfg.inject(e->cfg.inject_ctx, req);
	return r > 0 ? -r : r;
}

void ioeng_req_execute(struct ioeng *e, struct io_req *req)
{
	req->result = ioeng_req_inject(e, req);
	if (req->result)
		return;
	for (;;) {
		struct iovec *iov = &req->iov[req->cur];
		int cnt = req->iovcnt - req->cur;
		off_t off = (off_t)(req->offset + req->xfered);
		ssize_t n;

		n = req->op == IO_READ ? preadv(req->fd, iov, cnt, off)
				       : pwritev(req->fd, iov, cnt, off);
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			req->result = -errno;
			break;
		}
		if (n == 0) {
			/* Read past EOF (or a write making no progress). */
			req->result = -EIO;
			break;
		}
		req->xfered += (size_t)n;
		if (req->xfered >= req->total) {
			req->result = (ssize_t)req->xfered;
			break;
		}
		ioeng_req_window(req);
	}
	ioeng_req_restore(req);
}

int ioeng_run(struct ioeng *e, struct io_req *req)
{
	int r = req_prepare(req);

	if (r < 0)
		return r;
	atomic_fetch_add(&e->inflight, 1);
	if (swapdev_has_transport(req->dev)) {
		r = ioeng_req_inject(e, req);
		if (r)
			req->result = r;
		else
			swapdev_run(req->dev, e, req);
	} else {
		ioeng_req_execute(e, req);
	}
	ioeng_req_complete(e, req);
	return 0;
}

void ioeng_req_window(struct io_req *req)
{
	size_t skip = req->xfered;
	int i = 0;

	ioeng_req_restore(req);
	/* Zero-length entries are skipped along with the finished ones. */
	while (i < req->iovcnt && skip >= req->iov[i].iov_len) {
		skip -= req->iov[i].iov_len;
		i++;
	}
	req->cur = i;
	if (i < req->iovcnt) {
		req->cur_orig = req->iov[i];
		req->iov[i].iov_base = (char *)req->iov[i].iov_base + skip;
		req->iov[i].iov_len -= skip;
	}
}

void ioeng_req_restore(struct io_req *req)
{
	if (req->cur < req->iovcnt)
		req->iov[req->cur] = req->cur_orig;
}

void ioeng_req_complete(struct ioeng *e, struct io_req *req)
{
	ssize_t res = req->result;

	if (req->dev)
		dev_latency_add(req);
	if (req->dev && res > 0)
		atomic_fetch_add_explicit(req->op == IO_READ ? &req->dev->read_bytes
							     : &req->dev->write_bytes,
					  (uint64_t)res, memory_order_relaxed);
	if (req->sub)
		goto done;      /* counted with its parent */
	if (req->op == IO_READ) {
		atomic_fetch_add_explicit(&e->reads, 1, memory_order_relaxed);
		if (res > 0)
			atomic_fetch_add_explicit(&e->read_bytes, (uint64_t)res, memory_order_relaxed);
	} else {
		atomic_fetch_add_explicit(&e->writes, 1, memory_order_relaxed);
		if (res > 0)
			atomic_fetch_add_explicit(&e->write_bytes, (uint64_t)res, memory_order_relaxed);
	}
	if (res < 0)
		atomic_fetch_add_explicit(&e->errors, 1, memory_order_relaxed);
done:

	/* req may be reused or freed by done(): do not touch it afterwards. */
	req->done(req);

	/*
	 * Dropped only after done() returns, so a done() that submits more
	 * work keeps the count above zero and ioeng_destroy() waiting.
	 */
	if (atomic_fetch_sub(&e->inflight, 1) == 1) {
		pthread_mutex_lock(&e->drain_lock);
		pthread_cond_broadcast(&e->drained);
		pthread_mutex_unlock(&e->drain_lock);
	}
}

void ioeng_get_stats(struct ioeng *e, struct ioeng_stats *st)
{
	st->reads = atomic_load_explicit(&e->reads, memory_order_relaxed);
	st->writes = atomic_load_explicit(&e->writes, memory_order_relaxed);
	st->read_bytes = atomic_load_explicit(&e->read_bytes, memory_order_relaxed);
	st->write_bytes = atomic_load_explicit(&e->write_bytes, memory_order_relaxed);
	st->errors = atomic_load_explicit(&e->errors, memory_order_relaxed);
	st->inflight = atomic_load_explicit(&e->inflight, memory_order_relaxed);
}

int ioeng_kind_parse(const char *s, enum ioeng_kind *out)
{
	if (!s)
		return -EINVAL;
	if (!strcmp(s, "auto"))
		*out = IOENG_AUTO;
	else if (!strcmp(s, "io_uring") || !strcmp(s, "uring"))
		*out = IOENG_URING;
	else if (!strcmp(s, "threads"))
		*out = IOENG_THREADS;
	else
		return -EINVAL;
	return 0;
}

const char *ioeng_kind_name(enum ioeng_kind kind)
{
	switch (kind) {
	case IOENG_AUTO: return "auto";
	case IOENG_URING: return "io_uring";
	case IOENG_THREADS: return "threads";
	}
	return "?";
}
