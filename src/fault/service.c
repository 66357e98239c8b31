/*
 * The fault service: threads that read the clients' userfaultfds and hand
 * each fault to resolve.c. A client's uffd is armed one-shot, so one
 * thread serves it at a time (its faults stay in order) and different
 * clients are served in parallel. The reads its faults wait on a thread
 * does itself, after letting go of the engine lock (pager_run_deferred): a
 * completion thread in between cost a hand-off per fault; read-ahead and
 * pageout stay asynchronous.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "common/util.h"
#include "engine_impl.h"
#include "fault/uffd_compat.h"
#include "pager/pager.h"

/* The object whose view maps addr now (a page unmapped from under one is not its). */
static struct uobj *find_object(struct engine *e, struct client *c, uintptr_t addr)
{
	for (struct uobj *o = e->objects; o; o = o->next)
		if (o->client == c && addr >= o->caddr &&
		    addr < o->caddr + (o->npages << PAGE_SHIFT) &&
		    pg_state(uobj_get(o, (addr - o->caddr) >> PAGE_SHIFT)) != PG_GONE)
			return o;
	return NULL;
}

/* The program discarded [start, end) of its address space (pager_discard_range). */
static void release_range(struct engine *e, struct client *c, uintptr_t start, uintptr_t end)
{
	for (struct uobj *o = e->objects; o; o = o->next) {
		uintptr_t oend = o->caddr + (o->npages << PAGE_SHIFT);
		uintptr_t s = MAX(start, o->caddr), t = MIN(end, oend);

		if (o->client != c || s >= t)
			continue;
		pager_discard_range(o, (s - o->caddr) >> PAGE_SHIFT,
				    (t - s) >> PAGE_SHIFT);
	}
}

struct release_arg {
	struct engine *e;
	struct client *c;
};

static void release_piece(void *arg, uintptr_t s, uintptr_t t)
{
	struct release_arg *a = arg;

	release_range(a->e, a->c, s, t);
}

/*
 * UFFD_EVENT_UNMAP: the client unmapped [start, end) itself (a raw
 * munmap, mmap MAP_FIXED over it, an mremap shrink), so the shim could
 * not tell us. Those pages are gone from its view for good: whatever it
 * maps there next is not ours to fence or fill.
 */
static void unmapped(struct engine *e, struct client *c, uintptr_t start, uintptr_t end)
{
	for (struct uobj *o = e->objects; o; o = o->next) {
		uintptr_t oend = o->caddr + (o->npages << PAGE_SHIFT);
		uintptr_t s = MAX(start, o->caddr), t = MIN(end, oend);

		if (o->client != c || s >= t)
			continue;
		pager_unmapped_range(o, (s - o->caddr) >> PAGE_SHIFT, (t - s) >> PAGE_SHIFT);
	}
}

/*
 * Whether the kernel may hold a pin on [addr, addr + len) of c: now
 * (fresh: a scan of its own), or as of the last scan.
 */
static bool range_pinned(struct engine *e, struct client *c, uintptr_t addr, size_t len,
			 bool fresh)
{
	if (pinned_refresh(e, c, fresh) < 0)
		return true;   /* unknown is pinned */
	for (size_t i = 0; i < c->npinned; i++)
		if (c->pinned[i].addr < addr + len && addr < c->pinned[i].addr + c->pinned[i].len)
			return true;
	return false;
}

/*
 * The agent's hand-over of [addr, addr + len), a registered mapping of
 * memfd at off, to the program as private memory (agent.c hand_over),
 * unless the kernel holds a pin on it: a pin taken before the move keeps
 * the memfd's pages, and whatever the kernel writes through it (an
 * io_uring READ_FIXED) would miss the copy. So the PTEs go first and the
 * pins are read after: a pin taken since had to fault, and waits for us.
 * The program's mremap returned when its REMAP event was read, so by the
 * time we get here it may have unmapped part of the range (seed
 * 610077490: the hole made the fence fail, ENOMEM, and the part stayed
 * shared memory its fork children did not inherit): the agent hands
 * over the pieces that still map memfd at their offset. Memory the
 * program mapped anew in such a hole is zapped by the first fence (the
 * open fence race of docs/design-notes.md). -EBUSY when pinned (nothing
 * handed over), -ESTALE when nothing of the view is left. Lock held.
 */
static int hand_over(struct engine *e, struct client *c, uintptr_t addr, size_t len, int memfd,
		     uint64_t off)
{
	struct engine_range r = { addr, len };
	int ret = c->ext_fence(c->priv, &r, 1, 0, -1, 0);

	/* holes: madvise zapped every mapping of the range, and says ENOMEM for the gaps */
	if (ret == -ENOMEM)
		ret = 0;

	if (ret == 0)
		ret = range_pinned(e, c, addr, len, true) ? -EBUSY
			: c->ext_fence(c->priv, &r, 1, ENGINE_FENCE_PRIVATE, memfd, off);
	if (ret == -ETIMEDOUT)
		e->fence_timeouts++;
	/*
	 * The agent's calls pumped the client's messages into its backlog
	 * and drained the uffd: its epoll event may never come.
	 */
	if (c->nbacklog)
		fault_service_kick(e);
	return ret;
}

/*
 * Remember a pinned moved part for later (moved_settle). Its pages stay
 * in the memfd (the object turned them GONE without a punch), so the
 * program reads and writes them as before, shared and unbudgeted; a
 * fork child does not inherit it (it was MADV_DONTFORK as a view).
 * Without memory to remember it, it stays so for good.
 */
static void moved_keep(struct engine *e, struct client *c, uintptr_t addr, size_t len,
		       int memfd, uint64_t off)
{
	struct moved_part *nm = realloc(c->moved, (c->nmoved + 1) * sizeof(*nm));
	int fd = fcntl(memfd, F_DUPFD_CLOEXEC, 0);

	if (!c->moved_warned) {
		engine_log(e, 4, "pid %d: %#lx-%#lx, moved out of a managed object by a raw mremap, "
			   "is pinned by the kernel (an io_uring buffer or direct I/O): it stays "
			   "shared, unbudgeted memory that fork children do not inherit until the "
			   "pin goes", (int)c->pid, (unsigned long)addr, (unsigned long)(addr + len));
		c->moved_warned = true;
	}
	if (!nm || fd < 0) {
		if (nm)
			c->moved = nm;
		if (fd >= 0)
			close(fd);
		return;
	}
	c->moved = nm;
	c->moved[c->nmoved++] = (struct moved_part){ addr, len, fd, off };
}

/* Whether [addr, addr + len) overlaps a view of c's objects. */
static bool overlaps_view(struct engine *e, struct client *c, uintptr_t addr, size_t len)
{
	for (struct uobj *o = e->objects; o; o = o->next)
		if (o->client == c && addr < o->caddr + (o->npages << PAGE_SHIFT) &&
		    o->caddr < addr + len)
			return true;
	return false;
}

void moved_settle(struct engine *e, struct client *c)
{
	size_t k = 0;

	for (size_t i = 0; i < c->nmoved; i++) {
		struct moved_part m = c->moved[i];
		int ret = -ESTALE;

		/*
		 * Registered again for the hand-over, so that a touch waits
		 * for it. A range the program unmapped, or replaced with its
		 * own memory, is not ours: registration fails on private
		 * memory, and the agent checks the mapping is still this
		 * memfd at this offset before it copies.
		 */
		/* still pinned by the last scan: nothing to do this time, no zap */
		if (!c->dead && range_pinned(e, c, m.addr, m.len, false)) {
			c->moved[k++] = m;
			continue;
		}
		if (!c->dead && c->ext_fence && !overlaps_view(e, c, m.addr, m.len) &&
		    uffd_register(c->ufd, (void *)m.addr, m.len, UFFD_MISSING | UFFD_MINOR,
				  NULL) == 0) {
			ret = hand_over(e, c, m.addr, m.len, m.memfd, m.off);
			uffd_unregister(c->ufd, (void *)m.addr, m.len);
		}
		if (ret == -EBUSY) {
			c->moved[k++] = m;
			continue;
		}
		if (ret < 0 && ret != -ESTALE)
			engine_log(e, 3, "pid %d: the hand-over of %#lx-%#lx failed (%s): it stays "
				   "shared memory", (int)c->pid, (unsigned long)m.addr,
				   (unsigned long)(m.addr + m.len), strerror(-ret));
		close(m.memfd);
	}
	c->nmoved = k;
}

/*
 * Part of an object's view moved to `to` behind our back (a raw mremap):
 * one object cannot have two views, so the moved part leaves it. Its
 * pages are brought into memory, the new range is unregistered and
 * handed to the program as private memory of its own (unbudgeted, see
 * the agent's hand_over), the old pages turn PG_GONE without a punch
 * (the new mapping reads them). A page whose only copy is unreadable is
 * poisoned there first and kept out of the hand-over: SIGBUS, never
 * zeros. Lock held; waits for the reads (the lock is let go meanwhile);
 * without memory for the poisoned set, nothing is handed over (the part
 * stays shared memory the children do not inherit).
 */
static void remap_part(struct engine *e, struct client *c, struct uobj *o, size_t first,
		       size_t n, uintptr_t to)
{
	uint64_t *lost = NULL;      /* poisoned pages, by index from first */
	bool again = true, nomem = false;

	o->pinned = true;   /* the page daemon keeps away */
	while (again) {
		again = false;
		for (size_t i = first; i < first + n; i++) {
			pgword_t w = uobj_get(o, i);
			size_t t = i + 1;

			if (pg_busy(w))
				again = true;
			if (pg_state(w) != PG_SWAPPED &&
			    !(pg_state(w) == PG_EMPTY && !o->ops->zero_fill))
				continue;
			while (t < first + n && t - i < (size_t)e->cfg.cluster_pages &&
			       pg_state(uobj_get(o, t)) == pg_state(w))
				t++;
			for (size_t k = i; k < t; k++)
				uobj_set(o, k, pg_set_state(uobj_get(o, k) | PGF_INACTIVE, PG_BUSY_IN));
			if (pager_get_async(o, i, t - i) == 0)
				again = true;
			i = t - 1;
		}
		while (o->inflight)
			pthread_cond_wait(&e->io_cond, &e->lock);
	}
	for (size_t i = first; i < first + n; i++) {
		pgword_t w = uobj_get(o, i);

		if (pg_state(w) == PG_BAD || pg_state(w) == PG_SWAPPED) {
			uffd_poison(c->ufd, (void *)(to + ((i - first) << PAGE_SHIFT)), PAGE_SIZE, 0);
			if (!lost)
				lost = calloc((n + 63) / 64, sizeof(*lost));
			if (lost)
				lost[(i - first) / 64] |= 1ULL << ((i - first) % 64);
			else
				nomem = true;
		}
		if (pg_slot(w) && o->ops->releasepg)
			o->ops->releasepg(o, i);
		uobj_set(o, i, pg_make(PG_GONE, uobj_get(o, i) & PGF_QUEUED, 0));
	}
	/*
	 * The view was private memory to the program (fork gives children a
	 * copy, MADV_DONTNEED reads zeros): the moved part becomes private
	 * anonymous memory again, copied from the memfd by the agent while
	 * the range is still registered, so a touch meanwhile waits for us
	 * (its fault finds the page GONE after and retries on the copy).
	 * Poisoned pages stay as they are, unregistered below (a copy would
	 * read their hole as zeros); children do not inherit them (managed
	 * views are MADV_DONTFORK).
	 */
	for (size_t i = 0; c->ext_fence && !nomem && i < n; i++) {
		size_t t = i;

		while (t < n && !(lost && (lost[t / 64] >> (t % 64) & 1)))
			t++;
		int ret = t > i ? hand_over(e, c, to + (i << PAGE_SHIFT), (t - i) << PAGE_SHIFT,
					    o->memfd, (uint64_t)(first + i) << PAGE_SHIFT) : 0;

		if (ret == -EBUSY)
			moved_keep(e, c, to + (i << PAGE_SHIFT), (t - i) << PAGE_SHIFT, o->memfd,
				   (uint64_t)(first + i) << PAGE_SHIFT);
		else if (ret < 0 && ret != -ESTALE)
			engine_log(e, 3, "pid %d: the hand-over of %#lx-%#lx, moved out of a managed "
				   "object by a raw mremap, failed (%s): it stays shared memory that "
				   "fork children do not inherit", (int)c->pid,
				   (unsigned long)(to + (i << PAGE_SHIFT)),
				   (unsigned long)(to + (t << PAGE_SHIFT)), strerror(-ret));
		i = t;
	}
	free(lost);
	uffd_unregister(c->ufd, (void *)to, n << PAGE_SHIFT);
	o->pinned = false;
}

/* UFFD_EVENT_REMAP: [from, from + len) now lives at to. */
static void remapped(struct engine *e, struct client *c, uintptr_t from, uintptr_t to,
		     size_t len)
{
	pinned_moved(c, from, to, len);
	for (struct uobj *o = e->objects; o; o = o->next) {
		uintptr_t oend = o->caddr + (o->npages << PAGE_SHIFT);

		if (o->client != c || from < o->caddr || from >= oend)
			continue;
		if (from == o->caddr && len == o->npages << PAGE_SHIFT) {
			/* the whole view moved: the object follows it */
			o->caddr = to;
			pager_journal_move(o);
			return;
		}
		remap_part(e, c, o, (from - o->caddr) >> PAGE_SHIFT,
			   (MIN(from + len, oend) - from) >> PAGE_SHIFT, to);
		return;
	}
}

static void handle_msg(struct engine *e, struct client *c, const struct uffd_msg *m)
{
	switch (m->event) {
	case UFFD_EVENT_PAGEFAULT: {
		uintptr_t addr = ALIGN_DOWN((uintptr_t)m->arg.pagefault.address, PAGE_SIZE);
		uint64_t fl = m->arg.pagefault.flags;
		struct uobj *o = find_object(e, c, addr);

		if (!o || o->dying) {
			uffd_wake(c->ufd, (void *)addr, PAGE_SIZE);
			break;
		}
		fault_handle(e, o, (addr - o->caddr) >> PAGE_SHIFT,
			     fl & UFFD_PAGEFAULT_FLAG_WRITE, fl & UFFD_PAGEFAULT_FLAG_WP);
		break;
	}
	case UFFD_EVENT_REMOVE: {
		/* the program discarded pages itself: they read zeros from now on */
		struct release_arg a = { e, c };

		fence_remove_user_parts(c, m, release_piece, &a);
		break;
	}
	case UFFD_EVENT_UNMAP:
		unmapped(e, c, m->arg.remove.start, m->arg.remove.end);
		break;
	case UFFD_EVENT_REMAP:
		remapped(e, c, m->arg.remap.from, m->arg.remap.to, m->arg.remap.len);
		break;
	default:
		break;
	}
}

/* epoll names: the two eventfds, then clients by fault_id */
#define EV_STOP 0
#define EV_KICK 1

/*
 * Clients leave through here, once no fault thread serves them: a thread
 * finds its client by fault_id under the lock, so an event that outlives
 * its client finds nothing.
 */
static void reap_zombies(struct engine *e)
{
	struct client *free_list = NULL, **pp;

	pthread_mutex_lock(&e->lock);
	for (pp = &e->zombies; *pp;) {
		struct client *z = *pp;

		if (z->serving) {
			pp = &z->next;
			continue;
		}
		*pp = z->next;
		z->next = free_list;
		free_list = z;
	}
	pthread_mutex_unlock(&e->lock);
	while (free_list) {
		struct client *next = free_list->next;

		client_free(free_list);
		free_list = next;
	}
}

static int arm(struct engine *e, struct client *c, int op)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLONESHOT, .data.u64 = c->fault_id };

	return epoll_ctl(e->epfd, op, c->ufd, &ev) < 0 ? -errno : 0;
}

/*
 * Under the lock: the live client named by an event, now being served by
 * this thread alone (its messages must be handled in order). A client
 * already served is left to its thread, which arms its uffd again when
 * done, so nothing pending is missed.
 */
static struct client *client_take(struct engine *e, uint64_t id)
{
	for (struct client *c = e->clients; c; c = c->next) {
		if (c->fault_id != id || c->dead)
			continue;
		if (c->serving) {
			/* the one-shot event is spent: the serving thread arms again */
			c->missed = true;
			return NULL;
		}
		c->serving = 1;
		return c;
	}
	return NULL;
}

/* The thread serving c is done with it; lock not held. */
static void client_put(struct engine *e, struct client *c)
{
	bool rearm, kick;

	pthread_mutex_lock(&e->lock);
	c->serving = 0;
	rearm = c->missed && !c->dead;
	/*
	 * A fence may have pumped messages into the backlog after our last
	 * look, and its kick found us still serving: look again.
	 */
	kick = c->nbacklog && !c->dead;
	c->missed = false;
	pthread_mutex_unlock(&e->lock);
	if (rearm)
		arm(e, c, EPOLL_CTL_MOD);
	if (kick)
		fault_service_kick(e);
}

/*
 * The next batch of c's messages: the backlog a fence pumped first (it
 * was read earlier), then the uffd. Read under the lock, so a fence
 * (which pumps under the lock) and this thread never split a batch out
 * of order.
 */
static int next_batch(struct client *c, struct uffd_msg *msgs, int max)
{
	int k;

	if (c->nbacklog) {
		k = (int)MIN((unsigned)max, c->nbacklog);

		memcpy(msgs, c->backlog, (size_t)k * sizeof(*msgs));
		memmove(c->backlog, c->backlog + k, (c->nbacklog - (unsigned)k) * sizeof(*msgs));
		c->nbacklog -= (unsigned)k;
		return k;
	}
	k = uffd_read_msgs(c->ufd, msgs, max);
	if (k > 0)
		fence_stamp(c, msgs, k);
	return k;
}

/*
 * Before an event (REMAP, REMOVE, UNMAP): the reads this thread deferred
 * for earlier faults of the batch go out first. An event may wait for the
 * object's I/O to end (remap_part), and a read this thread holds back
 * would never end. Lock held on entry and return; let go meanwhile.
 */
static void run_deferred_now(struct engine *e, struct pager_io **reads)
{
	pager_defer_end();
	if (*reads) {
		struct pager_io *list = *reads;

		pthread_mutex_unlock(&e->lock);
		pager_run_deferred(list);
		pthread_mutex_lock(&e->lock);
	}
	pager_defer_begin(reads);
}

/* Drain one client's uffd, then arm it again for the next fault thread. */
static void serve_client(struct engine *e, struct client *c, uint32_t events)
{
	struct uffd_msg msgs[64];
	struct pager_io *reads;
	int k = 0;

	for (;;) {
		pthread_mutex_lock(&e->lock);
		if (c->dead) {
			pthread_mutex_unlock(&e->lock);
			break;
		}
		k = next_batch(c, msgs, ARRAY_SIZE(msgs));
		if (k <= 0) {
			pthread_mutex_unlock(&e->lock);
			break;
		}
		pager_defer_begin(&reads);
		for (int j = 0; j < k && !c->dead; j++) {
			if (msgs[j].event != UFFD_EVENT_PAGEFAULT)
				run_deferred_now(e, &reads);
			if (!c->dead)
				handle_msg(e, c, &msgs[j]);
		}
		pager_defer_end();
		pager_unplug(e);
		pthread_mutex_unlock(&e->lock);
		pager_run_deferred(reads);
	}
	if (k < 0 || (events & (EPOLLHUP | EPOLLERR)) || arm(e, c, EPOLL_CTL_MOD) < 0) {
		epoll_ctl(e->epfd, EPOLL_CTL_DEL, c->ufd, NULL);
		pthread_mutex_lock(&e->lock);
		c->dead = true;
		pthread_mutex_unlock(&e->lock);
	}
}

/*
 * A fence pumped messages into a backlog and drained the uffd, so its
 * epoll event may never come: serve every client with a backlog that no
 * thread serves.
 */
static void serve_backlogs(struct engine *e)
{
	for (;;) {
		struct client *c;

		pthread_mutex_lock(&e->lock);
		for (c = e->clients; c; c = c->next)
			if (c->nbacklog && !c->dead && !c->serving)
				break;
		if (c)
			c->serving = 1;
		pthread_mutex_unlock(&e->lock);
		if (!c)
			return;
		serve_client(e, c, 0);
		client_put(e, c);
	}
}

static void *fault_thread(void *arg)
{
	struct engine *e = arg;
	struct epoll_event evs[16];

	for (;;) {
		int n = epoll_wait(e->epfd, evs, ARRAY_SIZE(evs), -1);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			break;
		for (int i = 0; i < n; i++) {
			uint64_t id = evs[i].data.u64, v;
			struct client *c;

			if (id == EV_STOP)
				return NULL;   /* never read: every thread sees it */
			if (id == EV_KICK) {
				if (read(e->kick_fd, &v, sizeof(v)) < 0)
					continue;
				serve_backlogs(e);
				continue;
			}
			pthread_mutex_lock(&e->lock);
			c = client_take(e, id);
			pthread_mutex_unlock(&e->lock);
			if (!c)
				continue;
			serve_client(e, c, evs[i].events);
			client_put(e, c);
		}
		reap_zombies(e);
	}
	return NULL;
}

int fault_service_add_client(struct engine *e, struct client *c)
{
	pthread_mutex_lock(&e->lock);
	c->fault_id = e->next_fault_id++;
	pthread_mutex_unlock(&e->lock);
	return arm(e, c, EPOLL_CTL_ADD);
}

void fault_service_kick(struct engine *e)
{
	uint64_t one = 1;

	if (write(e->kick_fd, &one, sizeof(one)) < 0)
		return;   /* only on overflow: a kick is pending already */
}

void fault_service_remove_client(struct engine *e, struct client *c)
{
	uint64_t one = 1;

	epoll_ctl(e->epfd, EPOLL_CTL_DEL, c->ufd, NULL);
	pthread_mutex_lock(&e->lock);
	c->dead = true;
	c->next = e->zombies;
	e->zombies = c;
	pthread_mutex_unlock(&e->lock);
	if (write(e->kick_fd, &one, sizeof(one)) < 0)
		return;   /* the next batch reaps it anyway */
}

int fault_service_start(struct engine *e)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = EV_STOP };
	int r;

	e->next_fault_id = EV_KICK + 1;
	e->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (e->epfd < 0)
		return -errno;
	e->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (e->stop_fd < 0) {
		r = -errno;
		goto fail_ep;
	}
	if (epoll_ctl(e->epfd, EPOLL_CTL_ADD, e->stop_fd, &ev) < 0) {
		r = -errno;
		goto fail_ev;
	}
	e->kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	ev.data.u64 = EV_KICK;
	if (e->kick_fd < 0 || epoll_ctl(e->epfd, EPOLL_CTL_ADD, e->kick_fd, &ev) < 0) {
		r = -errno;
		goto fail_kick;
	}
	for (e->nfault_threads = 0; e->nfault_threads < ENGINE_FAULT_THREADS; e->nfault_threads++) {
		r = -pthread_create(&e->fault_threads[e->nfault_threads], NULL, fault_thread, e);
		if (r)
			break;
	}
	if (e->nfault_threads)
		return 0;

fail_kick:
	if (e->kick_fd >= 0)
		close(e->kick_fd);
	e->kick_fd = -1;
fail_ev:
	close(e->stop_fd);
	e->stop_fd = -1;
fail_ep:
	close(e->epfd);
	e->epfd = -1;
	return r;
}

void fault_service_stop(struct engine *e)
{
	uint64_t one = 1;

	if (e->epfd < 0)
		return;
	if (write(e->stop_fd, &one, sizeof(one)) == sizeof(one))
		for (unsigned i = 0; i < e->nfault_threads; i++)
			pthread_join(e->fault_threads[i], NULL);
	close(e->stop_fd);
	close(e->kick_fd);
	close(e->epfd);
	e->epfd = e->stop_fd = e->kick_fd = -1;
	reap_zombies(e);
}
