/*
 * The fence of a client in another process, and telling its REMOVE
 * events apart from the program's own.
 *
 * The fence is MADV_DONTNEED, done by the client's agent on its own view,
 * and with UFFD_FEATURE_EVENT_REMOVE every MADV_DONTNEED of a registered
 * range comes back as a REMOVE event, ours included: the kernel holds the
 * madvise until the event is read. A program's own MADV_DONTNEED (or
 * MADV_REMOVE) by raw syscall means "these pages read zeros from now on",
 * which we must carry out; ours means nothing. A REMOVE carries no thread,
 * so the rule is by range: a piece inside a range a fence is zapping now
 * (or a fence that timed out and that the agent may still carry out) is
 * the fence's; the rest is the program's. The price, for a program that
 * discards pages at the very moment we fence the same pages, is that
 * those pages keep their data instead of reading zeros: never a loss.
 *
 * While the fence waits, the engine lock is held, so the fault threads
 * (which read the uffd under the lock) cannot read the fence's events:
 * the fence callback pumps them here, into the client's backlog, which
 * the fault threads empty first, in order.
 *
 * A program's REMOVE is not always handled before our next fence: one
 * pumped into the backlog waits for the lock, and a fault thread lets go
 * of the lock between messages of a batch. The program's madvise
 * returned when the event was read, and if it was a refused MADV_FREE
 * the program wrote on through its ptes until that later fence zapped
 * them: the page holds those writes and no pte, and a discard carried
 * out then would throw them away. So every message is stamped with the
 * fence count when read, and the pieces of a REMOVE that a fence begun
 * after its stamp named keep their data (old data at worst, never lost
 * data); the last FENCE_LOG fences' ranges are kept to tell.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "engine_impl.h"
#include "fault/uffd_compat.h"

/*
 * Which range covers addr: a fence's (i < nfencing), a stale one's
 * (i >= nfencing), or none (-1). *end: where that answer may change.
 */
static int covering(const struct client *c, uintptr_t addr, uintptr_t *end)
{
	uintptr_t next = UINTPTR_MAX;
	int found = -1;

	for (unsigned i = 0; i < c->nfencing + c->nstale; i++) {
		const struct engine_range *r =
			i < c->nfencing ? &c->fencing[i] : &c->stale[i - c->nfencing];

		if (addr >= r->addr && addr < r->addr + r->len) {
			found = (int)i;
			next = MIN(next, r->addr + r->len);
		} else if (r->addr > addr) {
			next = MIN(next, r->addr);
		}
	}
	*end = next;
	return found;
}

/*
 * A page a REMOVE names twice during a fence was named once by the
 * program (the agent zaps every page of a fence exactly once), but which
 * of the two REMOVEs was the program's cannot be told, nor whether its
 * madvise zapped anything: MADV_DONTNEED does, and MADV_FREE, which
 * sends the same event, is refused on these shared views after it. The
 * kernel lets either madvise return as soon as its REMOVE is read.
 *
 * If the first REMOVE was ours, or the program's DONTNEED, the page has
 * had no pte since then: every later touch faults, and is behind that
 * REMOVE in the backlog. If it was the program's refused MADV_FREE, the
 * program wrote on through its ptes until our zap, without a fault, and
 * a discard carried out now would punch those writes away (hostile
 * raw-free). So the page is discarded only if a fault on it came between
 * the two REMOVEs: then it had no pte after the first (a refused
 * MADV_FREE leaves a writable pte, and a write-protected one takes no
 * write before its fault), and the discard goes where the first REMOVE
 * was, ahead of that fault. Otherwise it keeps its data: a DONTNEED
 * racing our fence of the same page, untouched in between, reads its old
 * content instead of zeros (libuvmpager-preload(7)), never a loss. Every
 * fault read during the fence still blocks its thread (the fault threads
 * wait for the fence), so a fault between the two REMOVEs races the
 * discard in the program itself, and the discard may come first. A page
 * named a third time (the program discarding twice) was settled at its
 * second naming.
 *
 * So the first REMOVE of a page waits in the backlog as a tentative
 * message; the second makes it a REMOVE or a kept message; what is
 * still tentative or kept when the fence ends goes.
 */
#define BACKLOG_TENTATIVE 0xf0   /* not a kernel event: a first REMOVE, in the backlog */
#define BACKLOG_KEPT      0xf1   /* not a kernel event: a page named twice, kept */

/* Is there a fault on addr's page in the backlog from message k on? */
static bool faulted_since(const struct client *c, unsigned k, uintptr_t addr)
{
	for (; k < c->nbacklog; k++) {
		const struct uffd_msg *m = &c->backlog[k];

		if (m->event == UFFD_EVENT_PAGEFAULT &&
		    (m->arg.pagefault.address & ~(uintptr_t)(PAGE_SIZE - 1)) == addr)
			return true;
	}
	return false;
}

static int backlog_reserve(struct client *c, unsigned more)
{
	unsigned ncap = c->capbacklog ? c->capbacklog : 64;
	struct uffd_msg *nb;

	if (c->nbacklog + more <= c->capbacklog)
		return 0;
	while (ncap < c->nbacklog + more)
		ncap *= 2;
	nb = realloc(c->backlog, ncap * sizeof(*nb));
	if (!nb)
		return -ENOMEM;
	c->backlog = nb;
	c->capbacklog = ncap;
	return 0;
}

static int backlog_insert(struct client *c, unsigned at, uint8_t event, uintptr_t s, uintptr_t e)
{
	struct uffd_msg m = { .event = event, .reserved3 = c->fence_seq };

	if (backlog_reserve(c, 1) < 0)
		return -ENOMEM;
	m.arg.remove.start = s;
	m.arg.remove.end = e;
	memmove(c->backlog + at + 1, c->backlog + at, (c->nbacklog - at) * sizeof(m));
	c->backlog[at] = m;
	c->nbacklog++;
	return 0;
}

/*
 * The page at addr, named for the second time: the tentative message of
 * its first REMOVE is split around it and its part becomes a REMOVE. None
 * covers it: named a third time, or the tentative message could not be
 * kept (out of memory: old data, not lost data).
 */
static int second_remove(struct client *c, uintptr_t addr)
{
	for (unsigned k = 0; k < c->nbacklog; k++) {
		struct uffd_msg *m = &c->backlog[k];
		uintptr_t s = m->arg.remove.start, e = m->arg.remove.end;
		uint8_t what = faulted_since(c, k + 1, addr) ? UFFD_EVENT_REMOVE : BACKLOG_KEPT;
		int r = 0;

		if (m->event != BACKLOG_TENTATIVE || addr < s || addr >= e)
			continue;
		/* [s, addr) tentative, [addr, +page) discarded or kept, the rest tentative */
		if (e > addr + PAGE_SIZE) {
			m->arg.remove.start = addr + PAGE_SIZE;
			r = backlog_insert(c, k, what, addr, addr + PAGE_SIZE);
		} else {
			m->event = what;
			m->arg.remove.start = addr;
		}
		if (r == 0 && addr > s)
			r = backlog_insert(c, k, BACKLOG_TENTATIVE, s, addr);
		return r;
	}
	return 0;
}

/* The fence is over: first REMOVEs never named again were its own. */
static void drop_tentative(struct client *c)
{
	unsigned k = 0;

	for (unsigned i = 0; i < c->nbacklog; i++)
		if (c->backlog[i].event != BACKLOG_TENTATIVE &&
		    c->backlog[i].event != BACKLOG_KEPT)
			c->backlog[k++] = c->backlog[i];
	c->nbacklog = k;
}

/*
 * Did a fence begun after stamp name addr? *end: where that answer may
 * change. A stamp older than the log may have had any page zapped since.
 */
static bool zapped_since(const struct client *c, uint32_t stamp, uintptr_t addr, uintptr_t *end)
{
	uintptr_t next = UINTPTR_MAX;
	bool found = false;

	if (!stamp || stamp == c->fence_seq)
		return false;
	if (c->fence_seq - stamp >= FENCE_LOG)
		return true;
	for (unsigned k = 0; k < FENCE_LOG; k++) {
		const struct fence_logged *f = &c->fence_log[k];

		if ((int32_t)(f->seq - stamp) <= 0)
			continue;
		for (unsigned i = 0; i < f->n; i++) {
			const struct engine_range *r = &f->r[i];

			if (addr >= r->addr && addr < r->addr + r->len) {
				found = true;
				next = MIN(next, r->addr + r->len);
			} else if (r->addr > addr) {
				next = MIN(next, r->addr);
			}
		}
	}
	*end = MIN(*end, next);
	return found;
}

/*
 * The program's pieces of a REMOVE of [start, end): pieces outside every
 * fence go to fn; inside a stale fence (timed out: the agent may still
 * zap it, and we no longer count) they are taken as the fence's; inside
 * a fence going on now, see above (only the fence pump reads then, so
 * those go to the backlog). Lock held. 0, or -ENOMEM when a message
 * could not be kept (a program's discard not carried out: old data, not
 * lost data).
 */
static int user_pieces(struct client *c, uint32_t stamp, uintptr_t start, uintptr_t end,
		       void (*fn)(void *arg, uintptr_t s, uintptr_t e), void *arg)
{
	int err = 0;

	while (start < end) {
		uintptr_t next;
		int i = covering(c, start, &next);

		next = MIN(next, end);
		if (i < 0) {
			/*
			 * A later fence may have zapped it after the program's
			 * madvise returned (a refused MADV_FREE writes on through
			 * its ptes until then): its writes are in the page, and
			 * it keeps its data.
			 */
			if (!zapped_since(c, stamp, start, &next))
				fn(arg, start, next);
		} else if ((unsigned)i < c->nfencing && c->claimed) {
			size_t base = c->fence_first[i] +
				      ((start - c->fencing[i].addr) >> PAGE_SHIFT);
			size_t n = (next - start) >> PAGE_SHIFT;
			size_t run = SIZE_MAX;

			for (size_t k = 0; k <= n; k++) {
				uintptr_t page = start + (k << PAGE_SHIFT);
				bool first = k < n && !bitmap_test(c->claimed, base + k);
				int r = 0;

				if (first) {
					bitmap_set(c->claimed, base + k);
					if (run == SIZE_MAX)
						run = k;
					continue;
				}
				if (run != SIZE_MAX) {
					r = backlog_insert(c, c->nbacklog, BACKLOG_TENTATIVE,
							   start + (run << PAGE_SHIFT), page);
					run = SIZE_MAX;
				}
				if (k < n && second_remove(c, page) < 0)
					r = -ENOMEM;
				if (r < 0 && !err)
					err = r;
			}
		}
		start = next;
	}
	return err;
}

struct backlog_arg {
	struct client *c;
	int err;
};

static int backlog_push(struct client *c, const struct uffd_msg *m)
{
	if (backlog_reserve(c, 1) < 0)
		return -ENOMEM;
	c->backlog[c->nbacklog++] = *m;
	return 0;
}

static void push_remove(void *arg, uintptr_t s, uintptr_t e)
{
	struct backlog_arg *a = arg;
	struct uffd_msg m = { .event = UFFD_EVENT_REMOVE, .reserved3 = a->c->fence_seq };
	int r;

	m.arg.remove.start = s;
	m.arg.remove.end = e;
	r = backlog_push(a->c, &m);
	if (r < 0 && !a->err)
		a->err = r;
}

int engine_client_uffd(struct client *c)
{
	return c->ufd;
}

int engine_client_fence_pump(struct client *c)
{
	struct uffd_msg msgs[64];
	struct backlog_arg a = { .c = c };
	int k;

	while ((k = uffd_read_msgs(c->ufd, msgs, ARRAY_SIZE(msgs))) > 0) {
		fence_stamp(c, msgs, k);
		for (int i = 0; i < k; i++) {
			if (msgs[i].event == UFFD_EVENT_REMOVE) {
				int r = user_pieces(c, msgs[i].reserved3, msgs[i].arg.remove.start,
						    msgs[i].arg.remove.end, push_remove, &a);

				if (r < 0 && !a.err)
					a.err = r;
			} else if (backlog_push(c, &msgs[i]) < 0 && !a.err)
				a.err = -ENOMEM;
		}
	}
	/*
	 * Out of memory for the backlog loses a message: a fault whose
	 * thread then sleeps until the next fault on its page wakes it, or
	 * a program's discard not carried out (old data, not lost data).
	 */
	return k < 0 ? k : a.err;
}

void fence_remove_user_parts(struct client *c, const struct uffd_msg *m,
			     void (*fn)(void *arg, uintptr_t s, uintptr_t e), void *arg)
{
	(void)user_pieces(c, m->reserved3, m->arg.remove.start, m->arg.remove.end, fn, arg);
}

void fence_stamp(const struct client *c, struct uffd_msg *msgs, int n)
{
	for (int i = 0; i < n; i++)
		msgs[i].reserved3 = c->fence_seq;
}

/* Keep a timed-out fence's ranges: its agent may still zap them. */
static void keep_stale(struct client *c, const struct engine_range *r, unsigned n)
{
	struct engine_range *ns = realloc(c->stale, (c->nstale + n) * sizeof(*ns));

	if (!ns)
		return;   /* its late REMOVEs will release pages: only if memory is that short */
	memcpy(ns + c->nstale, r, n * sizeof(*r));
	c->stale = ns;
	c->nstale += n;
}

/* Does m take [r, r + n) away from the object's view (an UNMAP, or the old place of a REMAP)? */
static bool takes_view(const struct uffd_msg *m, const struct engine_range *r, unsigned n)
{
	uintptr_t s, t;

	if (m->event == UFFD_EVENT_UNMAP) {
		s = m->arg.remove.start;
		t = m->arg.remove.end;
	} else if (m->event == UFFD_EVENT_REMAP) {
		s = m->arg.remap.from;
		t = s + m->arg.remap.len;
	} else {
		return false;
	}
	for (unsigned i = 0; i < n; i++)
		if (s < r[i].addr + r[i].len && r[i].addr < t)
			return true;
	return false;
}

/*
 * A raw munmap (or mremap) returns once its event is read, not handled:
 * the program may have mapped memory of its own there already, which a
 * fence would zap. Until the event is handled, a fence that names such
 * a range is not sent.
 */
static bool view_in_flux(const struct client *c, const struct engine_range *r, unsigned n)
{
	for (unsigned k = 0; k < c->nbacklog; k++)
		if (takes_view(&c->backlog[k], r, n))
			return true;
	for (unsigned k = 0; k < c->nbatch; k++)
		if (takes_view(&c->batch[k], r, n))
			return true;
	return false;
}

/* How long a client that did not answer a fence is left alone before the next try. */
#define STUCK_RETRY_NS (1000ULL * 1000 * 1000)

/*
 * A fence timed out, or the agent has not answered the one that did
 * (-EBUSY): say so once, and count its pages outside the global budget
 * (engine_stuck_resident) until it answers.
 */
static void fence_unanswered(struct client *c, int ret)
{
	struct engine *e = c->eng;

	if (ret == -ETIMEDOUT)
		e->fence_timeouts++;
	if (!c->stuck)
		engine_log(e, 4, "pid %d does not answer fences (%s): its %zu MiB stay resident, "
			   "outside the global budget, until it does", (int)c->pid,
			   ret == -ETIMEDOUT ? "timed out" : "an earlier one timed out",
			   c->resident >> (20 - PAGE_SHIFT));
	c->stuck = true;
	c->stuck_ns = now_ns();
}

/*
 * What an answer (or none) from the agent tells: whether the client is
 * stuck, and whether the ranges of fences that timed out may still be
 * zapped by it (the agent answers in order: once it answered, every
 * earlier fence is done).
 */
static void fence_result(struct client *c, const struct engine_range *r, unsigned n, int ret)
{
	/* what the fence pumped: its epoll event may have been drained away */
	if (c->nbacklog)
		fault_service_kick(c->eng);
	if (ret == -ETIMEDOUT || ret == -EBUSY) {
		fence_unanswered(c, ret);
	} else if (ret == 0 && c->stuck) {
		c->stuck = false;
		engine_log(c->eng, 4, "pid %d answers fences again", (int)c->pid);
	}
	if (ret == -ETIMEDOUT) {
		keep_stale(c, r, n);
	} else if (ret == 0 && c->nstale) {
		free(c->stale);
		c->stale = NULL;
		c->nstale = 0;
	}
}

/*
 * A fence of no range, to a stuck client once STUCK_RETRY_NS passed:
 * whether its agent answers again. Nothing is zapped, so nothing is
 * logged for the REMOVE stamps.
 */
static int fence_probe(struct client *c)
{
	static const struct engine_range none;
	int ret;

	if (now_ns() - c->stuck_ns < STUCK_RETRY_NS)
		return -EBUSY;
	ret = c->ext_fence(c->priv, &none, 0, 0, -1, 0);
	fence_result(c, &none, 0, ret);
	return ret;
}

void fence_log_note(struct client *c, const struct engine_range *r, unsigned n)
{
	struct fence_logged *f;

	n = MIN(n, (unsigned)ENGINE_FENCE_MAX);
	/* 0 is "no stamp" (a message not read through the fault service) */
	if (++c->fence_seq == 0)
		c->fence_seq = 1;
	f = &c->fence_log[c->fence_seq % FENCE_LOG];
	f->seq = c->fence_seq;
	f->n = n;
	memcpy(f->r, r, n * sizeof(*r));
}

/*
 * Fence n ranges of a client in another process (n == 0: only find out
 * whether a stuck client answers again). Engine lock held; returns 0,
 * -EAGAIN (an unmap of the range not handled yet), -EBUSY (the client
 * does not answer fences), -ETIMEDOUT, or another error of the wire.
 */
int fence_call(struct client *c, const struct engine_range *r, unsigned n)
{
	size_t pages = 0;
	int ret;

	n = MIN(n, (unsigned)ENGINE_FENCE_MAX);
	if (c->stuck && (ret = fence_probe(c)) < 0)
		return ret;
	if (!n)
		return 0;
	if (view_in_flux(c, r, n)) {
		c->eng->fences_deferred++;
		return -EAGAIN;
	}
	memcpy(c->fencing, r, n * sizeof(*r));
	for (unsigned i = 0; i < n; i++) {
		c->fence_first[i] = pages;
		pages += r[i].len >> PAGE_SHIFT;
	}
	/* without it every REMOVE inside the ranges counts as ours: old data, never lost data */
	c->claimed = calloc(DIV_ROUND_UP(pages, 64) + 1, sizeof(uint64_t));
	c->nfencing = n;
	fence_log_note(c, r, n);
	ret = c->ext_fence(c->priv, r, n, 0, -1, 0);
	drop_tentative(c);
	c->nfencing = 0;
	free(c->claimed);
	c->claimed = NULL;
	fence_result(c, r, n, ret);
	return ret;
}
