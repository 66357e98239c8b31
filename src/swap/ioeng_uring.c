#include <errno.h>
#include <liburing.h>
#include <stdlib.h>

#include "common/util.h"
#include "swap/ioeng_impl.h"

/*
 * One ring. Submitters (any thread, under `lock`) move requests from the
 * pending list into SQEs and call io_uring_submit once per batch; a single
 * completion thread reaps CQEs, continues short transfers, refills the ring
 * from the pending list and calls done() outside the lock.
 *
 * At most `depth` requests own an SQE at a time and the CQ ring is twice
 * the SQ ring, so the CQ never overflows.
 */

/* user_data: the io_req pointer; its low bit flags a NOP whose result is preset. */
#define UD_STOP   0ULL
#define UD_PRESET 1ULL

/* How often the completion thread looks for SQEs a failed submit left behind. */
#define STALL_RETRY_NS 1000000000LL

struct uring {
	struct ioeng base;
	struct io_uring ring;
	pthread_mutex_t lock;
	struct io_req *pend_head, *pend_tail;
	unsigned depth;
	unsigned busy;          /* requests owning an SQE */
	bool stopping;
	bool timed_wait;        /* kernel takes a wait timeout without an SQE */
	pthread_t thread;
};

static void prep(struct io_uring_sqe *sqe, struct io_req *req)
{
	if (req->result) {
		io_uring_prep_nop(sqe);
		io_uring_sqe_set_data64(sqe, (uintptr_t)req | UD_PRESET);
		return;
	}
	if (req->op == IO_READ)
		io_uring_prep_readv(sqe, req->fd, &req->iov[req->cur],
				    (unsigned)(req->iovcnt - req->cur),
				    req->offset + req->xfered);
	else
		io_uring_prep_writev(sqe, req->fd, &req->iov[req->cur],
				     (unsigned)(req->iovcnt - req->cur),
				     req->offset + req->xfered);
	io_uring_sqe_set_data64(sqe, (uintptr_t)req);
}

/* Under lock: pending requests into free SQEs, then one submit. */
static void fill_and_submit(struct uring *u)
{
	while (u->pend_head && u->busy < u->depth) {
		struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);
		struct io_req *req = u->pend_head;

		if (!sqe)
			break;
		u->pend_head = req->next;
		if (!u->pend_head)
			u->pend_tail = NULL;
		req->next = NULL;
		prep(sqe, req);
		u->busy++;
	}
	/*
	 * On failure (-EAGAIN under memory pressure) the SQEs stay in the
	 * ring; the next submit, from here or the completion thread, retries.
	 */
	while (io_uring_sq_ready(&u->ring) && io_uring_submit(&u->ring) == -EINTR)
		;
}

static void uring_submit(struct ioeng *e, struct io_req **reqs, unsigned n)
{
	struct uring *u = container_of(e, struct uring, base);

	/* Outside the lock: the hook is test code and may be slow. */
	for (unsigned i = 0; i < n; i++)
		reqs[i]->result = ioeng_req_inject(e, reqs[i]);

	pthread_mutex_lock(&u->lock);
	for (unsigned i = 0; i < n; i++) {
		if (u->pend_tail)
			u->pend_tail->next = reqs[i];
		else
			u->pend_head = reqs[i];
		u->pend_tail = reqs[i];
	}
	fill_and_submit(u);
	pthread_mutex_unlock(&u->lock);
}

/*
 * Applies one CQE to its request. Returns true when the request is
 * finished; false when it needs another SQE (short transfer, EINTR).
 */
static bool reap_one(struct io_req *req, bool preset, int res)
{
	if (preset)
		return true;
	if (res == -EINTR || res == -EAGAIN)
		return false;
	if (res < 0) {
		req->result = res;
		return true;
	}
	if (res == 0) {
		/* Read past EOF (or a write making no progress): never a valid page. */
		req->result = -EIO;
		return true;
	}
	req->xfered += (size_t)res;
	if (req->xfered >= req->total) {
		req->result = (ssize_t)req->xfered;
		return true;
	}
	ioeng_req_window(req);
	return false;
}

static int wait_cqe(struct uring *u, struct io_uring_cqe **cqe)
{
	struct __kernel_timespec ts = {
		.tv_sec = STALL_RETRY_NS / 1000000000LL,
		.tv_nsec = STALL_RETRY_NS % 1000000000LL,
	};

	if (!u->timed_wait)
		return io_uring_wait_cqe(&u->ring, cqe);
	return io_uring_wait_cqe_timeout(&u->ring, cqe, &ts);
}

static void *completer(void *arg)
{
	struct uring *u = arg;
	bool stop = false;

	while (!stop) {
		struct io_req *done_head = NULL, **done_tail = &done_head;
		struct io_req *again_head = NULL, **again_tail = &again_head;
		struct io_uring_cqe *cqe;
		unsigned head, seen = 0, retired = 0;

		/* Errors (ETIME, EINTR) only mean there may be nothing to reap. */
		wait_cqe(u, &cqe);
		io_uring_for_each_cqe(&u->ring, head, cqe) {
			uint64_t ud = io_uring_cqe_get_data64(cqe);
			struct io_req *req = (struct io_req *)(uintptr_t)(ud & ~UD_PRESET);

			seen++;
			if (ud == UD_STOP) {
				stop = true;
				continue;
			}
			retired++;
			if (reap_one(req, ud & UD_PRESET, cqe->res)) {
				ioeng_req_restore(req);
				*done_tail = req;
				done_tail = &req->next;
			} else {
				*again_tail = req;
				again_tail = &req->next;
			}
		}
		io_uring_cq_advance(&u->ring, seen);
		*done_tail = NULL;
		*again_tail = NULL;

		pthread_mutex_lock(&u->lock);
		u->busy -= retired;
		/* Continuations go first: they are already partly done. */
		if (again_head) {
			if (!u->pend_head)
				u->pend_tail = container_of(again_tail, struct io_req, next);
			*again_tail = u->pend_head;
			u->pend_head = again_head;
		}
		fill_and_submit(u);
		if (u->stopping && !u->busy && !u->pend_head)
			stop = true;
		pthread_mutex_unlock(&u->lock);

		while (done_head) {
			struct io_req *req = done_head;

			/* done() may resubmit req, which rewrites req->next. */
			done_head = req->next;
			ioeng_req_complete(&u->base, req);
		}
	}
	return NULL;
}

static void uring_destroy(struct ioeng *e)
{
	struct uring *u = container_of(e, struct uring, base);
	struct io_uring_sqe *sqe;

	pthread_mutex_lock(&u->lock);
	u->stopping = true;
	sqe = io_uring_get_sqe(&u->ring);
	if (sqe) {
		io_uring_prep_nop(sqe);
		io_uring_sqe_set_data64(sqe, UD_STOP);
		while (io_uring_submit(&u->ring) == -EINTR)
			;
	}
	/* Without the NOP the thread still sees `stopping` at its next timed wake. */
	pthread_mutex_unlock(&u->lock);
	pthread_join(u->thread, NULL);
	io_uring_queue_exit(&u->ring);
	pthread_mutex_destroy(&u->lock);
	ioeng_base_fini(&u->base);
	free(u);
}

static const struct ioeng_ops uring_ops = {
	.name = "io_uring",
	.kind = IOENG_URING,
	.submit = uring_submit,
	.destroy = uring_destroy,
};

int ioeng_uring_create(const struct ioeng_config *cfg, struct ioeng **out)
{
	struct io_uring_params p = { 0 };
	struct uring *u;
	int r;

	u = calloc(1, sizeof(*u));
	if (!u)
		return -ENOMEM;
	/*
	 * No SQPOLL (burns a core), no SINGLE_ISSUER/DEFER_TASKRUN (any thread
	 * submits), no COOP_TASKRUN (completions would wait until the
	 * submitting thread next enters the kernel, which may be never).
	 */
	p.flags = IORING_SETUP_CLAMP;
	r = io_uring_queue_init_params(cfg->depth, &u->ring, &p);
	if (r < 0)
		goto out_free;
	u->depth = MIN(cfg->depth, u->ring.sq.ring_entries);
	u->timed_wait = p.features & IORING_FEAT_EXT_ARG;
	pthread_mutex_init(&u->lock, NULL);
	ioeng_base_init(&u->base, &uring_ops, cfg);
	r = ioeng_thread_start(&u->thread, completer, u, "uvmp-aiodone");
	if (r < 0)
		goto out_ring;
	*out = &u->base;
	return 0;

out_ring:
	ioeng_base_fini(&u->base);
	pthread_mutex_destroy(&u->lock);
	io_uring_queue_exit(&u->ring);
out_free:
	free(u);
	return r;
}

int ioeng_uring_fd(const struct ioeng *e)
{
	return container_of(e, const struct uring, base)->ring.ring_fd;
}
