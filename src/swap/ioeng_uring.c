#include <errno.h>
#include <liburing.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "common/util.h"
#include "swap/ioeng_impl.h"

/*
 * One ring, and one thread that owns it: submitters (any thread) only
 * put requests on the pending list, under `lock`, and kick the ring's
 * thread through an eventfd the ring polls. That thread reaps CQEs,
 * continues short transfers, moves pending requests into SQEs, submits,
 * and calls done() outside the lock. io_uring may issue a write inline
 * in io_uring_enter and block there (FUSE blocks once its background
 * queue is full; a stalled disk): only this thread waits then, never a
 * submitter holding the engine lock (the storage_faults stall case took
 * 3.6 s to read stat before).
 *
 * At most `depth` requests own an SQE at a time and the CQ ring is twice
 * the SQ ring, so the CQ never overflows.
 */

/* user_data: the io_req pointer; its low bit flags a NOP whose result is preset. */
#define UD_PRESET 1ULL
#define UD_KICK   2ULL   /* the kick eventfd's poll: never an io_req (those are aligned) */

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
	int kick_fd;            /* eventfd: pending requests wait (polled by the ring) */
	bool kick_armed;        /* its poll is in the ring (ring thread only) */
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

/* Ring thread: the kick's poll into the ring, if it is not there. */
static void arm_kick(struct uring *u)
{
	struct io_uring_sqe *sqe;

	if (u->kick_armed || !(sqe = io_uring_get_sqe(&u->ring)))
		return;
	io_uring_prep_poll_add(sqe, u->kick_fd, POLLIN);
	io_uring_sqe_set_data64(sqe, UD_KICK);
	u->kick_armed = true;
}

/* Ring thread, under lock: pending requests into free SQEs. */
static void fill(struct uring *u)
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
}

/*
 * Ring thread, outside the lock (it may block: see the top). On failure
 * (-EAGAIN under memory pressure) the SQEs stay in the ring; the next
 * pass retries, at the latest after STALL_RETRY_NS.
 */
static void submit_ring(struct uring *u)
{
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
	pthread_mutex_unlock(&u->lock);
	eventfd_write(u->kick_fd, 1);
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
			if (ud == UD_KICK) {
				eventfd_t v;

				eventfd_read(u->kick_fd, &v);
				u->kick_armed = false;
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
		fill(u);
		if (u->stopping && !u->busy && !u->pend_head)
			stop = true;
		pthread_mutex_unlock(&u->lock);
		arm_kick(u);
		submit_ring(u);

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

	pthread_mutex_lock(&u->lock);
	u->stopping = true;
	pthread_mutex_unlock(&u->lock);
	/* the ring thread ends once nothing is pending or in flight */
	eventfd_write(u->kick_fd, 1);
	pthread_join(u->thread, NULL);
	io_uring_queue_exit(&u->ring);
	close(u->kick_fd);
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
	 * No SQPOLL (burns a core), no SINGLE_ISSUER/DEFER_TASKRUN (the kick
	 * is armed from this thread, the rest from the ring's), no COOP_TASKRUN (completions would wait until the
	 * submitting thread next enters the kernel, which may be never).
	 */
	p.flags = IORING_SETUP_CLAMP;
	r = io_uring_queue_init_params(cfg->depth, &u->ring, &p);
	if (r < 0)
		goto out_free;
	/* one SQE of the ring is the kick's poll */
	u->depth = MIN(cfg->depth, u->ring.sq.ring_entries - 1);
	u->timed_wait = p.features & IORING_FEAT_EXT_ARG;
	u->kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (u->kick_fd < 0) {
		r = -errno;
		goto out_ring;
	}
	/* armed before the ring thread exists, which owns the ring from then on */
	arm_kick(u);
	submit_ring(u);
	pthread_mutex_init(&u->lock, NULL);
	ioeng_base_init(&u->base, &uring_ops, cfg);
	r = ioeng_thread_start(&u->thread, completer, u, "uvmp-aiodone");
	if (r < 0)
		goto out_base;
	*out = &u->base;
	return 0;

out_base:
	ioeng_base_fini(&u->base);
	pthread_mutex_destroy(&u->lock);
	close(u->kick_fd);
out_ring:
	io_uring_queue_exit(&u->ring);
out_free:
	free(u);
	return r;
}

int ioeng_uring_fd(const struct ioeng *e)
{
	return container_of(e, const struct uring, base)->ring.ring_fd;
}
