/*
 * The "set" swap device: N member devices (files, NBD exports, mixed) as
 * stripes, each stripe unit stored on R of them.
 *
 * Layout. Slot 0 is the header on the set as on every member. The data
 * slots after it are cut into units of SWAPDEV_SET_UNIT_SLOTS; unit u goes
 * round-robin: its first replica on member u mod N, replica k on member
 * (u + k) mod N (so R copies are always on R different members, and reads,
 * which go to the first replica that is up, spread over all members). On a
 * member, the units it holds are packed in order after its own slot 0:
 * cycle c = u / N holds R units on each member, replica k of unit u at
 * member unit c * R + k. The set's size is what the smallest member allows
 * for every member; what the others have beyond it is not used.
 *
 * I/O. A request is split at unit boundaries into chunks; a write becomes
 * one sub-request per chunk and replica, a read one per chunk, to the
 * first replica that is up. Sub-requests are ordinary io_reqs for the
 * members and go through ioeng_submit() (files to the engine, NBD to its
 * thread), so there is one submit path; their completions (sub_done())
 * finish the request with ioeng_req_complete() when its last one is back.
 *   - A read that fails is sent again to the next replica that is up; it
 *     fails when none is left.
 *   - A write succeeds when every chunk has a replica that succeeded and no
 *     replica failed on a member that is still up: a member that went down
 *     (the NBD device's failure detector) is ignored from then on, but a
 *     failure on a member that is up fails the whole write (the pager then
 *     writes the pages to other slots), so that every member that is up
 *     holds the latest data of every slot in use: reads may pick any.
 *   - Member states: up (read and written), down (skipped by reads,
 *     written but its failures ignored), rebuilding (written, failures
 *     ignored but noted, not read). Reads only use up members.
 *
 * Rebuild (replicas >= 2 only). The set asks its members to reconnect
 * (base.may_reconnect); the set's thread ("uvmp-rebuild") watches them
 * every WATCH_MS. A member that went down is marked down; one that answers
 * again (its NBD device cleared `down`) becomes rebuilding: every unit
 * written since the set was opened (the `written` bitmap) that has a
 * replica on it is copied from an up replica to it, whole, synchronously
 * from that thread, at most REBUILD_MIB_S, then the member is up again. A
 * restarted `nbdkit memory` is empty, so nothing it had is trusted.
 * Writes during the rebuild go to the member too, so the copy must not
 * put older data over newer: each write bumps its units' generation and
 * holds their busy count until it finishes (hashed into GEN_BUCKETS); a
 * unit is copied when not busy, and copied again if its generation moved
 * meanwhile. A write that fails on the rebuilding member while it stays
 * connected makes the pass start over (rebuild_dirty); the switch to up
 * and that note are under set->lock, so a failure is either seen as on an
 * up member (the write fails) or makes the pass start over. A member that
 * goes down again, or reconnects again (epoch), during the pass is down
 * again and starts over when it is back. With replicas 1 nothing can be
 * rebuilt: members are not asked to reconnect and stay down for good
 * (their pages give SIGBUS). A single device, without a set, does
 * reconnect (swap.c): the checksums judge what it serves.
 *
 * Memory. Sub-requests come from a pool allocated at open: POOL_PER_REPLICA
 * times R, far more than the engine has in flight (a request of the
 * engine's largest cluster needs at most 5 chunks). A request that finds
 * the pool short waits in a FIFO queue and is started when a finishing
 * request gives sub-requests back, so the write path does not allocate.
 * The one exception is a request needing more sub-requests than the whole
 * pool (no caller in the daemon makes one): it gets its own, malloc'ed,
 * retried every 10 ms while malloc fails.
 *
 * Locking: set->lock guards the pool, the wait queue and each operation's
 * pending count; it is never held across ioeng_submit() or a completion.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"
#include "swap/ioeng_impl.h"
#include "swap/swapdev.h"

#define POOL_PER_REPLICA 256
#define UNIT_BYTES ((uint64_t)SWAPDEV_SET_UNIT_SLOTS << PAGE_SHIFT)
#define GEN_BUCKETS 4096
#define WATCH_MS 100
#define REBUILD_MIB_S 256               /* rebuild copy rate bound */

enum member_state { M_UP, M_DOWN, M_REBUILDING };

struct set_dev;

/* One sub-request; the first of an operation's also carries the operation. */
struct set_sub {
	struct io_req req;              /* first: sub_done() gets &req */
	struct set_dev *set;
	struct set_sub *head;           /* the operation's first sub-request */
	struct set_sub *sibling;        /* the operation's next one */
	struct set_sub *next_free;
	uint64_t cycle;                 /* of the chunk's unit */
	uint64_t in_unit;               /* byte offset of the chunk inside its unit */
	unsigned first;                 /* member of the unit's replica 0 */
	unsigned chunk;                 /* index of the chunk in the request */
	unsigned replica;               /* which copy this one is */
	bool invalid;                   /* stands for a request out of the set's range */
	/* head only: */
	struct io_req *parent;
	unsigned pending;               /* sub-requests not finished, under set->lock */
	bool own_alloc;                 /* malloc'ed for an oversized request */
};

struct set_dev {
	struct swapdev base;
	unsigned n, replicas;
	struct swapdev *m[SWAPDEV_SET_MAX];
	_Atomic bool reported[SWAPDEV_SET_MAX];
	_Atomic int mstate[SWAPDEV_SET_MAX];    /* enum member_state */
	bool rebuild_dirty[SWAPDEV_SET_MAX];    /* under lock */
	_Atomic uint64_t rebuild_done[SWAPDEV_SET_MAX], rebuild_total[SWAPDEV_SET_MAX];
	uint64_t units;                         /* data units of the set */
	_Atomic uint64_t *written;              /* bitmap: units written since open */
	_Atomic uint32_t wgen[GEN_BUCKETS];     /* bumped by each write of a unit */
	_Atomic uint32_t wbusy[GEN_BUCKETS];    /* writes of a unit not finished */
	pthread_t thread;                       /* rebuild watcher, replicas >= 2 */
	bool has_thread;
	pthread_mutex_t stop_lock;
	pthread_cond_t stop_cond;
	bool stopping;                          /* under stop_lock */
	void (*rebuild_hook)(void *ctx, uint64_t unit);   /* tests only */
	void *hook_ctx;
	struct ioeng *eng;              /* set by submit; one engine per daemon */
	char *name;

	pthread_mutex_t lock;
	struct set_sub *pool;
	unsigned pool_n;
	struct set_sub *free;
	unsigned nfree;
	struct io_req *wait_head, *wait_tail;   /* requests waiting for the pool */
};

static const struct swapdev_ops set_ops;

static struct set_dev *to_set(const struct swapdev *dev)
{
	return dev && dev->ops == &set_ops ? container_of(dev, struct set_dev, base) : NULL;
}

unsigned swapdev_nmembers(const struct swapdev *dev)
{
	struct set_dev *s = to_set(dev);

	return s ? s->n : 0;
}

struct swapdev *swapdev_member(const struct swapdev *dev, unsigned i)
{
	struct set_dev *s = to_set(dev);

	return s && i < s->n ? s->m[i] : NULL;
}

unsigned swapdev_replicas(const struct swapdev *dev)
{
	struct set_dev *s = to_set(dev);

	return s ? s->replicas : 1;
}

/* Member i may serve reads: up in the set, and its device up. */
static bool readable(const struct set_dev *s, unsigned i)
{
	return atomic_load(&s->mstate[i]) == M_UP && !atomic_load(&s->m[i]->down);
}

/* Some unit has no replica on a readable member. */
static bool set_lost(const struct set_dev *s)
{
	for (unsigned j = 0; j < s->n; j++) {
		unsigned k;

		for (k = 0; k < s->replicas; k++)
			if (readable(s, (j + k) % s->n))
				break;
		if (k == s->replicas)
			return true;
	}
	return false;
}

const char *swapdev_state(const struct swapdev *dev)
{
	struct set_dev *s = to_set(dev);
	unsigned down = 0;

	if (!s)
		return atomic_load(&dev->down) ? "down" : "up";
	for (unsigned i = 0; i < s->n; i++)
		down += !readable(s, i);
	if (!down)
		return "up";
	return set_lost(s) ? "down" : "degraded";
}

const char *swapdev_member_state(const struct swapdev *dev, unsigned i)
{
	struct set_dev *s = to_set(dev);

	if (!s || i >= s->n)
		return "none";
	if (atomic_load(&s->mstate[i]) == M_REBUILDING && !atomic_load(&s->m[i]->down))
		return "rebuilding";
	return readable(s, i) ? "up" : "down";
}

void swapdev_member_rebuild(const struct swapdev *dev, unsigned i, uint64_t *done,
			    uint64_t *total)
{
	struct set_dev *s = to_set(dev);

	*done = *total = 0;
	if (s && i < s->n) {
		*done = atomic_load(&s->rebuild_done[i]);
		*total = atomic_load(&s->rebuild_total[i]);
	}
}

/* Logs a member's going down, once; any thread, no lock. */
static void note_down(struct set_dev *s, unsigned i)
{
	unsigned up = 0;

	if (!atomic_load(&s->m[i]->down) || atomic_exchange(&s->reported[i], true))
		return;
	for (unsigned k = 0; k < s->n; k++)
		up += readable(s, k);
	fprintf(stderr, "uvmpagerd: swap set: member %s is down%s (%u of %u members up, "
		"replicas %u): %s\n", s->m[i]->name,
		s->replicas > 1 ? ", retried in the background" : " for good", up, s->n, s->replicas,
		set_lost(s) ? "pages whose every copy was on down members are lost"
			    : "every page still has a copy");
}

static unsigned member_of(const struct set_sub *sub, unsigned k)
{
	return (sub->first + k) % sub->set->n;
}

/* Points sub at replica k of its chunk. */
static void sub_target(struct set_sub *sub, unsigned k)
{
	struct set_dev *s = sub->set;
	struct swapdev *m = s->m[member_of(sub, k)];

	sub->replica = k;
	sub->req.dev = m;
	sub->req.fd = m->fd;
	sub->req.offset = PAGE_SIZE + (sub->cycle * s->replicas + k) * UNIT_BYTES + sub->in_unit;
}

/* The first replica at or after k whose member is up, or -1. */
static int next_up(const struct set_sub *sub, unsigned k)
{
	for (; k < sub->set->replicas; k++)
		if (readable(sub->set, member_of(sub, k)))
			return (int)k;
	return -1;
}

/* Chunks of p: the pieces of it that fall in one unit each. */
static unsigned count_chunks(const struct io_req *p)
{
	uint64_t db = p->offset - PAGE_SIZE;

	return (unsigned)((db + p->total - 1) / UNIT_BYTES - db / UNIT_BYTES + 1);
}

/* p touches slot 0 or goes past the set's end (no caller in the daemon does). */
static bool out_of_range(const struct set_dev *s, const struct io_req *p)
{
	uint64_t end = s->base.nslots << PAGE_SHIFT;

	return p->offset < PAGE_SIZE || p->offset >= end || p->total > end - p->offset;
}

/*
 * Fills the operation's sub-requests (linked from head by sibling, as
 * many as subs_needed() says) from p. A request out of range becomes one
 * sub-request on no descriptor, which the engine fails (-EBADF) in its
 * own thread like any I/O error: never done() inline, and no member is
 * written past its end.
 */
static void build(struct set_dev *s, struct set_sub *head, struct io_req *p)
{
	unsigned copies = p->op == IO_WRITE ? s->replicas : 1;
	uint64_t db = p->offset - PAGE_SIZE;
	size_t left = p->total, voff = 0;
	struct set_sub *sub = head;
	unsigned chunk = 0;
	int vi = 0;

	if (out_of_range(s, p)) {
		memset(&head->req, 0, sizeof(head->req));
		head->req.op = p->op;
		head->req.fd = -1;
		head->req.iovcnt = 1;
		head->req.iov[0] = p->iov[0].iov_len ? p->iov[0] : (struct iovec){ p->iov[0].iov_base, 1 };
		head->req.sub = true;
		head->set = s;
		head->head = head;
		head->chunk = 0;
		head->invalid = true;
		return;
	}
	while (left) {
		uint64_t u = db / UNIT_BYTES, in_unit = db % UNIT_BYTES;
		size_t len = (size_t)MIN((uint64_t)left, UNIT_BYTES - in_unit), need = len;
		struct set_sub *first = sub;

		memset(&sub->req, 0, sizeof(sub->req));
		sub->req.op = p->op;
		/* done() is set by start() or set_run(), the one that sends it */
		while (need) {
			size_t take;

			while (p->iov[vi].iov_len == voff) {
				vi++;
				voff = 0;
			}
			take = MIN(need, p->iov[vi].iov_len - voff);
			sub->req.iov[sub->req.iovcnt].iov_base = (char *)p->iov[vi].iov_base + voff;
			sub->req.iov[sub->req.iovcnt].iov_len = take;
			sub->req.iovcnt++;
			voff += take;
			need -= take;
		}
		for (unsigned k = 0; k < copies; k++) {
			int r = (int)k;

			if (k)
				sub->req = first->req;
			sub->set = s;
			sub->head = head;
			sub->cycle = u / s->n;
			sub->first = (unsigned)(u % s->n);
			sub->in_unit = in_unit;
			sub->chunk = chunk;
			sub->invalid = false;
			sub->req.sub = true;
			if (p->op == IO_READ) {
				/* none up: the first copy's member fails it, in its own thread */
				r = next_up(sub, 0);
				if (r < 0)
					r = 0;
			}
			sub_target(sub, (unsigned)r);
			sub = sub->sibling;
		}
		chunk++;
		db += len;
		left -= len;
	}
}

static void sub_done(struct io_req *req);

/*
 * Lock held: takes need sub-requests from the pool for p, or returns NULL
 * (pool short).
 */
static struct set_sub *take(struct set_dev *s, unsigned need)
{
	struct set_sub *head = NULL, **tail = &head;

	if (s->nfree < need)
		return NULL;
	for (unsigned i = 0; i < need; i++) {
		struct set_sub *x = s->free;

		s->free = x->next_free;
		x->sibling = NULL;
		*tail = x;
		tail = &x->sibling;
	}
	s->nfree -= need;
	head->own_alloc = false;
	return head;
}

static unsigned subs_needed(const struct set_dev *s, const struct io_req *p)
{
	if (out_of_range(s, p))
		return 1;
	return count_chunks(p) * (p->op == IO_WRITE ? s->replicas : 1);
}

/*
 * A write's units: marked written, busy until write_end(), generation
 * bumped (busy first, so a rebuild that read the generation before the
 * bump sees the unit busy or the bump). No lock; any thread.
 */
static void write_begin(struct set_dev *s, const struct io_req *p)
{
	uint64_t db, u1;

	if (p->op != IO_WRITE || out_of_range(s, p))
		return;
	db = p->offset - PAGE_SIZE;
	u1 = (db + p->total - 1) / UNIT_BYTES;
	for (uint64_t u = db / UNIT_BYTES; u <= u1; u++) {
		atomic_fetch_or(&s->written[u / 64], (uint64_t)1 << (u % 64));
		atomic_fetch_add(&s->wbusy[u % GEN_BUCKETS], 1);
		atomic_fetch_add(&s->wgen[u % GEN_BUCKETS], 1);
	}
}

/* Before the write's completion is delivered (p may be reused after). */
static void write_end(struct set_dev *s, const struct io_req *p)
{
	uint64_t db, u1;

	if (p->op != IO_WRITE || out_of_range(s, p))
		return;
	db = p->offset - PAGE_SIZE;
	u1 = (db + p->total - 1) / UNIT_BYTES;
	for (uint64_t u = db / UNIT_BYTES; u <= u1; u++)
		atomic_fetch_sub(&s->wbusy[u % GEN_BUCKETS], 1);
}

/* Builds and sends an operation whose sub-requests are in hand. No lock. */
static void start(struct set_dev *s, struct set_sub *head, struct io_req *p, unsigned nsub)
{
	struct io_req *batch[64];
	struct set_sub *sub;
	unsigned nb = 0;

	head->parent = p;
	head->pending = nsub;
	build(s, head, p);
	/* the next one is read before a batch goes: what is sent may finish at once */
	for (sub = head; sub;) {
		struct set_sub *next = sub->sibling;

		sub->req.done = sub_done;
		batch[nb++] = &sub->req;
		if (nb == ARRAY_SIZE(batch) || !next) {
			/* well-formed by construction: cannot be refused */
			ioeng_submit(s->eng, batch, nb);
			nb = 0;
		}
		sub = next;
	}
}

static struct set_sub *alloc_own(struct set_dev *s, unsigned need)
{
	struct set_sub *v;
	bool said = false;

	while (!(v = calloc(need, sizeof(*v)))) {
		if (!said)
			fprintf(stderr, "uvmpagerd: swap set: out of memory for a request of %u "
				"sub-requests; retrying\n", need);
		said = true;
		usleep(10000);
	}
	for (unsigned i = 0; i + 1 < need; i++)
		v[i].sibling = &v[i + 1];
	v[0].own_alloc = true;
	(void)s;
	return v;
}

static void set_submit(struct swapdev *dev, struct ioeng *e, struct io_req *p)
{
	struct set_dev *s = to_set(dev);
	unsigned need = subs_needed(s, p);
	struct set_sub *head;

	s->eng = e;
	write_begin(s, p);
	if (need > s->pool_n) {
		start(s, alloc_own(s, need), p, need);
		return;
	}
	pthread_mutex_lock(&s->lock);
	head = s->wait_head ? NULL : take(s, need);
	if (!head) {
		p->next = NULL;
		if (s->wait_tail)
			s->wait_tail->next = p;
		else
			s->wait_head = p;
		s->wait_tail = p;
	}
	pthread_mutex_unlock(&s->lock);
	if (head)
		start(s, head, p, need);
}

/*
 * A write failed on member i: true if that fails the write (i is up), and
 * if i is rebuilding (and connected), its pass starts over. Under
 * set->lock, against the rebuild's switch to up.
 */
static bool write_failure_counts(struct set_dev *s, unsigned i)
{
	bool counts = false;

	if (atomic_load(&s->m[i]->down))
		return false;
	pthread_mutex_lock(&s->lock);
	if (atomic_load(&s->mstate[i]) == M_UP)
		counts = true;
	else if (atomic_load(&s->mstate[i]) == M_REBUILDING)
		s->rebuild_dirty[i] = true;
	pthread_mutex_unlock(&s->lock);
	return counts;
}

/* The request's result from its sub-requests' (see the file's comment). */
static ssize_t op_result(struct set_dev *s, struct set_sub *head, struct io_req *p)
{
	ssize_t err = 0;

	for (struct set_sub *sub = head; sub;) {
		unsigned chunk = sub->chunk;
		bool some_ok = false, bad = false;
		ssize_t first_err = 0;

		for (; sub && sub->chunk == chunk; sub = sub->sibling) {
			ssize_t r = sub->req.result;

			if (r >= 0) {
				some_ok = true;
				continue;
			}
			if (!first_err)
				first_err = r;
			if (p->op == IO_READ || sub->invalid || write_failure_counts(s, member_of(sub, sub->replica)))
				bad = true;
		}
		if ((bad || !some_ok) && !err)
			err = first_err ? first_err : -EIO;
	}
	return err ? err : (ssize_t)p->total;
}

static void finish(struct set_dev *s, struct set_sub *head)
{
	struct io_req *p = head->parent;
	struct io_req *ready = NULL, **rtail = &ready;
	struct set_sub *heads[8];
	unsigned nready = 0;

	p->result = op_result(s, head, p);
	write_end(s, p);

	if (head->own_alloc) {
		free(head);
	} else {
		pthread_mutex_lock(&s->lock);
		for (struct set_sub *sub = head, *nx; sub; sub = nx) {
			nx = sub->sibling;
			sub->next_free = s->free;
			s->free = sub;
			s->nfree++;
		}
		/* waiters in order, as many as now fit (a few at a time) */
		while (s->wait_head && nready < ARRAY_SIZE(heads)) {
			struct io_req *w = s->wait_head;
			struct set_sub *h = take(s, subs_needed(s, w));

			if (!h)
				break;
			s->wait_head = w->next;
			if (!s->wait_head)
				s->wait_tail = NULL;
			w->next = NULL;
			*rtail = w;
			rtail = &w->next;
			heads[nready++] = h;
		}
		pthread_mutex_unlock(&s->lock);
	}

	ioeng_req_complete(s->eng, p);
	for (unsigned i = 0; ready; i++) {
		struct io_req *w = ready;

		ready = w->next;
		start(s, heads[i], w, subs_needed(s, w));
	}
}

static void sub_done(struct io_req *req)
{
	struct set_sub *sub = container_of(req, struct set_sub, req);
	struct set_dev *s = sub->set;
	struct set_sub *head = sub->head;
	bool last;

	if (req->result < 0 && !sub->invalid) {
		unsigned i = member_of(sub, sub->replica);

		/* an NBD device counts its own */
		if (!swapdev_has_transport(s->m[i]))
			atomic_fetch_add(&s->m[i]->errors, 1);
		note_down(s, i);
		if (req->op == IO_READ) {
			int k = next_up(sub, sub->replica + 1);

			if (k >= 0) {
				sub_target(sub, (unsigned)k);
				ioeng_submit(s->eng, &req, 1);
				return;
			}
		}
	}
	pthread_mutex_lock(&s->lock);
	last = --head->pending == 0;
	pthread_mutex_unlock(&s->lock);
	if (last)
		finish(s, head);
}

static void run_done(struct io_req *req)
{
	(void)req;
}

/*
 * ioeng_run() of a set: the chunks one after the other in the calling
 * thread, each through ioeng_run() on its member, with the same rules.
 */
static void set_run(struct swapdev *dev, struct ioeng *e, struct io_req *p)
{
	struct set_dev *s = to_set(dev);
	unsigned need = subs_needed(s, p);
	struct set_sub stackv[4], *all = stackv;

	s->eng = e;
	write_begin(s, p);
	/* a fault's read fits on the stack; more (never from the daemon) is malloc'ed */
	if (need > ARRAY_SIZE(stackv)) {
		all = alloc_own(s, need);
	} else {
		memset(stackv, 0, sizeof(stackv));
		for (unsigned i = 0; i + 1 < need; i++)
			stackv[i].sibling = &stackv[i + 1];
	}
	all->parent = p;
	build(s, all, p);
	for (struct set_sub *sub = all; sub; sub = sub->sibling) {
		unsigned i;

		sub->req.done = run_done;
		for (;;) {
			int k;

			ioeng_run(e, &sub->req);
			if (sub->req.result >= 0 || sub->invalid)
				break;
			i = member_of(sub, sub->replica);
			if (!swapdev_has_transport(s->m[i]))
				atomic_fetch_add(&s->m[i]->errors, 1);
			note_down(s, i);
			if (p->op != IO_READ || (k = next_up(sub, sub->replica + 1)) < 0)
				break;
			sub_target(sub, (unsigned)k);
		}
	}
	p->result = op_result(s, all, p);
	write_end(s, p);
	if (all != stackv)
		free(all);
}

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Waits ms, or less if the set is closing; true when it is. */
static bool nap(struct set_dev *s, unsigned ms)
{
	struct timespec until;
	bool stop;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += ms / 1000;
	until.tv_nsec += (long)(ms % 1000) * 1000000;
	if (until.tv_nsec >= 1000000000) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&s->stop_lock);
	if (!s->stopping)
		pthread_cond_timedwait(&s->stop_cond, &s->stop_lock, &until);
	stop = s->stopping;
	pthread_mutex_unlock(&s->stop_lock);
	return stop;
}

static bool closing(struct set_dev *s)
{
	bool stop;

	pthread_mutex_lock(&s->stop_lock);
	stop = s->stopping;
	pthread_mutex_unlock(&s->stop_lock);
	return stop;
}

/*
 * One synchronous transfer of len bytes at off on member m, in the calling
 * (rebuild) thread, outside the engine (which may be gone before the set
 * is closed): NBD through its run op, a file with pread/pwrite.
 */
static int member_io(struct swapdev *m, enum io_op op, void *buf, uint64_t off, size_t len)
{
	struct io_req req;
	size_t done = 0;

	if (swapdev_has_transport(m)) {
		memset(&req, 0, sizeof(req));
		req.op = op;
		req.dev = m;
		req.fd = m->fd;
		req.offset = off;
		req.iovcnt = 1;
		req.iov[0] = (struct iovec){ buf, len };
		req.total = len;
		req.sub = true;
		req.done = run_done;
		swapdev_run(m, NULL, &req);
		if (req.result < 0)
			return (int)req.result;
	} else {
		while (done < len) {
			ssize_t n = op == IO_READ ? pread(m->fd, (char *)buf + done, len - done,
							  (off_t)(off + done))
						  : pwrite(m->fd, (char *)buf + done, len - done,
							   (off_t)(off + done));
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0)
				return -errno;
			if (n == 0)
				return -EIO;
			done += (size_t)n;
		}
	}
	atomic_fetch_add(op == IO_READ ? &m->read_bytes : &m->write_bytes, (uint64_t)len);
	return 0;
}

static uint64_t unit_offset(const struct set_dev *s, uint64_t u, unsigned k)
{
	return PAGE_SIZE + ((u / s->n) * s->replicas + k) * UNIT_BYTES;
}

/* The rebuild of member i must stop: closing, or it went down or reconnected again. */
static bool rebuild_stops(struct set_dev *s, unsigned i, unsigned epoch)
{
	return closing(s) || atomic_load(&s->m[i]->down) || atomic_load(&s->m[i]->epoch) != epoch;
}

/*
 * Copies unit u to its replica kt on member i from a readable replica,
 * again while a write of the unit was out or came meanwhile (see the
 * file's comment). 0, -ECANCELED (the rebuild stops), -ENODATA (no
 * readable copy: the unit is lost), or the target's write error.
 */
static int copy_unit(struct set_dev *s, unsigned i, unsigned epoch, uint64_t u, unsigned kt,
		     void *buf, uint64_t *recopied)
{
	unsigned b = (unsigned)(u % GEN_BUCKETS);

	for (;;) {
		uint32_t g;
		int r = -ENODATA;

		if (rebuild_stops(s, i, epoch))
			return -ECANCELED;
		g = atomic_load(&s->wgen[b]);
		if (atomic_load(&s->wbusy[b])) {
			usleep(500);
			continue;
		}
		for (unsigned k = 0; k < s->replicas && r; k++) {
			unsigned j = (unsigned)((u + k) % s->n);

			if (k != kt && readable(s, j))
				r = member_io(s->m[j], IO_READ, buf, unit_offset(s, u, k), UNIT_BYTES);
		}
		if (r)
			return rebuild_stops(s, i, epoch) ? -ECANCELED : -ENODATA;
		if (s->rebuild_hook)
			s->rebuild_hook(s->hook_ctx, u);
		r = member_io(s->m[i], IO_WRITE, buf, unit_offset(s, u, kt), UNIT_BYTES);
		if (r)
			return rebuild_stops(s, i, epoch) ? -ECANCELED : r;
		if (atomic_load(&s->wgen[b]) == g)
			return 0;
		(*recopied)++;
	}
}

static bool unit_in(const uint64_t *bits, uint64_t u)
{
	return bits[u / 64] & ((uint64_t)1 << (u % 64));
}

/* Replica index of unit u on member i, or replicas if i holds none of it. */
static unsigned replica_on(const struct set_dev *s, uint64_t u, unsigned i)
{
	unsigned k = (unsigned)((i + s->n - u % s->n) % s->n);

	return k < s->replicas ? k : s->replicas;
}

/*
 * The units written so far that member i holds a replica of, into todo;
 * their number. Units first written after this need no copy: their writes
 * went to i too (it was connected before the pass began; a write that
 * failed on it makes the pass start over).
 */
static uint64_t snapshot(struct set_dev *s, unsigned i, uint64_t *todo)
{
	uint64_t n = 0;

	for (uint64_t w = 0; w < (s->units + 63) / 64; w++)
		todo[w] = atomic_load(&s->written[w]);
	for (uint64_t u = 0; u < s->units; u++) {
		if (unit_in(todo, u) && replica_on(s, u, i) == s->replicas)
			todo[u / 64] &= ~((uint64_t)1 << (u % 64));
		n += unit_in(todo, u);
	}
	return n;
}

/*
 * Rebuild thread: member i answers again. Marks it rebuilding, copies
 * every written unit it holds a replica of, then marks it up, or down
 * again if the pass cannot finish. Returns in how many ms it may be retried.
 */
static unsigned rebuild(struct set_dev *s, unsigned i)
{
	struct swapdev *m = s->m[i];
	unsigned epoch = atomic_load(&m->epoch), passes = 0;
	uint64_t total = 0, done = 0, copied = 0, lost = 0, recopied = 0, t0 = mono_ms();
	uint64_t *todo = calloc((s->units + 63) / 64, sizeof(*todo));
	const char *why = NULL;
	void *buf = NULL;
	int r;

	pthread_mutex_lock(&s->lock);
	atomic_store(&s->mstate[i], M_REBUILDING);
	s->rebuild_dirty[i] = false;
	pthread_mutex_unlock(&s->lock);
	if (!todo || posix_memalign(&buf, PAGE_SIZE, UNIT_BYTES)) {
		why = "out of memory";
		goto down;
	}
again:
	passes++;
	total = snapshot(s, i, todo);
	atomic_store(&s->rebuild_total[i], total);
	atomic_store(&s->rebuild_done[i], 0);
	fprintf(stderr, "uvmpagerd: swap set: member %s answers again: rebuilding %" PRIu64
		" units (%.1f MiB) from the other replicas%s\n", m->name, total,
		(double)(total * UNIT_BYTES) / (1 << 20), passes > 1 ? " (a write to it failed: again)" : "");
	for (uint64_t u = 0; u < s->units; u++) {
		unsigned kt = replica_on(s, u, i);
		uint64_t due;

		if (!unit_in(todo, u))
			continue;
		r = copy_unit(s, i, epoch, u, kt, buf, &recopied);
		if (r == -ECANCELED) {
			why = closing(s) ? "closing" : "it went down again";
			goto down;
		}
		if (r == -ENODATA) {
			lost++;
		} else if (r < 0) {
			why = strerror(-r);
			goto down;
		}
		done++;
		copied++;
		atomic_store(&s->rebuild_done[i], done);
		/* the rate bound: copied units in no less than this many ms */
		due = copied * UNIT_BYTES * 1000 / ((uint64_t)REBUILD_MIB_S << 20);
		if (mono_ms() - t0 < due && nap(s, (unsigned)(due - (mono_ms() - t0)))) {
			why = "closing";
			goto down;
		}
	}
	pthread_mutex_lock(&s->lock);
	if (s->rebuild_dirty[i] && passes < 10) {
		/* a write failed on it during the pass: one more */
		s->rebuild_dirty[i] = false;
		pthread_mutex_unlock(&s->lock);
		done = 0;
		goto again;
	}
	if (s->rebuild_dirty[i] || rebuild_stops(s, i, epoch)) {
		pthread_mutex_unlock(&s->lock);
		why = s->rebuild_dirty[i] ? "writes to it keep failing" : "it went down again";
		goto down;
	}
	atomic_store(&s->mstate[i], M_UP);
	atomic_store(&s->reported[i], false);
	pthread_mutex_unlock(&s->lock);
	fprintf(stderr, "uvmpagerd: swap set: member %s rebuilt: %" PRIu64 " units (%.1f MiB) in "
		"%.1f s, %u pass%s, %" PRIu64 " copied again (written meanwhile)%s; it is up\n",
		m->name, total, (double)(total * UNIT_BYTES) / (1 << 20),
		(double)(mono_ms() - t0) / 1000, passes,
		passes > 1 ? "es" : "", recopied, lost ? ", some units had no copy left (their pages are lost)" : "");
	free(buf);
	free(todo);
	return 0;
down:
	pthread_mutex_lock(&s->lock);
	atomic_store(&s->mstate[i], M_DOWN);
	pthread_mutex_unlock(&s->lock);
	fprintf(stderr, "uvmpagerd: swap set: rebuild of member %s stopped after %" PRIu64 " of %"
		PRIu64 " units: %s; retried when it answers\n", m->name, done, total, why);
	free(buf);
	free(todo);
	/* it went down: its next answer (1 s apart) is the retry; an error while up: wait */
	return atomic_load(&m->down) || atomic_load(&m->epoch) != epoch ? 0 : 5000;
}

/* The set's thread (replicas >= 2): watches members, rebuilds those that come back. */
static void *watch_thread(void *arg)
{
	struct set_dev *s = arg;
	uint64_t retry_at[SWAPDEV_SET_MAX] = { 0 };

	while (!nap(s, WATCH_MS)) {
		for (unsigned i = 0; i < s->n; i++) {
			bool down = atomic_load(&s->m[i]->down);
			int st = atomic_load(&s->mstate[i]);

			if (down && st != M_DOWN) {
				pthread_mutex_lock(&s->lock);
				atomic_store(&s->mstate[i], M_DOWN);
				pthread_mutex_unlock(&s->lock);
				note_down(s, i);
			} else if (!down && st == M_DOWN && mono_ms() >= retry_at[i]) {
				retry_at[i] = mono_ms() + rebuild(s, i);
			}
		}
	}
	return NULL;
}

void swapdev_set_rebuild_hook(struct swapdev *dev, void (*fn)(void *ctx, uint64_t unit),
			      void *ctx)
{
	struct set_dev *s = to_set(dev);

	s->hook_ctx = ctx;
	s->rebuild_hook = fn;
}

static void set_close(struct swapdev *dev)
{
	struct set_dev *s = to_set(dev);

	if (s->has_thread) {
		pthread_mutex_lock(&s->stop_lock);
		s->stopping = true;
		pthread_cond_broadcast(&s->stop_cond);
		pthread_mutex_unlock(&s->stop_lock);
		pthread_join(s->thread, NULL);
	}
	pthread_cond_destroy(&s->stop_cond);
	pthread_mutex_destroy(&s->stop_lock);
	free(s->written);
	for (unsigned i = 0; i < s->n; i++)
		swapdev_close(s->m[i]);
	pthread_mutex_destroy(&s->lock);
	free(s->pool);
	free(s->name);
	free(s);
}

static const struct swapdev_ops set_ops = {
	.kind = "set",
	.close = set_close,
	.submit = set_submit,
	.run = set_run,
};

int swapdev_set_open(struct swapdev **members, unsigned n, unsigned replicas,
		     struct swapdev **out, char *err, size_t errlen)
{
	struct set_dev *s = NULL;
	uint64_t cycles = UINT64_MAX;
	size_t namelen = 1;
	int r = -EINVAL;

	if (n < 1 || n > SWAPDEV_SET_MAX || replicas < 1 || replicas > n) {
		if (err && errlen)
			snprintf(err, errlen, "swap set: %u replicas over %u devices (1 to %u devices, "
				 "replicas from 1 to their number)", replicas, n, SWAPDEV_SET_MAX);
		goto fail;
	}
	for (unsigned i = 0; i < n; i++) {
		uint64_t units = (members[i]->nslots - 1) / SWAPDEV_SET_UNIT_SLOTS;

		cycles = MIN(cycles, units / replicas);
		namelen += strlen(members[i]->name) + 1;
	}
	if (!cycles) {
		if (err && errlen)
			snprintf(err, errlen, "swap set: a device is too small for %u replicas of "
				 "%u-slot stripe units", replicas, SWAPDEV_SET_UNIT_SLOTS);
		goto fail;
	}
	r = -ENOMEM;
	s = calloc(1, sizeof(*s));
	if (!s || !(s->name = malloc(namelen)))
		goto fail_mem;
	s->pool_n = POOL_PER_REPLICA * replicas;
	s->pool = calloc(s->pool_n, sizeof(*s->pool));
	s->written = calloc((cycles * n + 63) / 64, sizeof(*s->written));
	if (!s->pool || !s->written)
		goto fail_mem;
	s->name[0] = 0;
	for (unsigned i = 0; i < n; i++) {
		if (i)
			strcat(s->name, ",");
		strcat(s->name, members[i]->name);
		s->m[i] = members[i];
	}
	for (unsigned i = 0; i < s->pool_n; i++) {
		s->pool[i].next_free = s->free;
		s->free = &s->pool[i];
	}
	s->nfree = s->pool_n;
	s->n = n;
	s->replicas = replicas;
	pthread_mutex_init(&s->lock, NULL);
	s->base.ops = &set_ops;
	s->base.name = s->name;
	s->base.nslots = 1 + cycles * n * SWAPDEV_SET_UNIT_SLOTS;
	s->base.fd = -1;
	s->units = cycles * n;
	pthread_mutex_init(&s->stop_lock, NULL);
	pthread_cond_init(&s->stop_cond, NULL);
	if (replicas > 1) {
		for (unsigned i = 0; i < n; i++)
			atomic_store(&members[i]->may_reconnect, true);
		r = ioeng_thread_start(&s->thread, watch_thread, s, "uvmp-rebuild");
		if (r < 0) {
			if (err && errlen)
				snprintf(err, errlen, "swap set: cannot start its thread: %s", strerror(-r));
			for (unsigned i = 0; i < n; i++)
				s->m[i] = NULL;
			set_close(&s->base);
			goto fail;
		}
		s->has_thread = true;
	}
	*out = &s->base;
	return 0;

fail_mem:
	if (err && errlen)
		snprintf(err, errlen, "swap set: out of memory");
	if (s) {
		free(s->written);
		free(s->pool);
		free(s->name);
		free(s);
	}
fail:
	for (unsigned i = 0; i < n; i++)
		swapdev_close(members[i]);
	return r;
}
