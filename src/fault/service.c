/*
 * The fault service: threads that read the clients' userfaultfds and hand
 * each fault to resolve.c. A client's uffd is armed one-shot, so one
 * thread reads and handles its messages at a time (they stay in order)
 * and different clients are served in parallel. The reads its faults wait
 * on a thread does itself, after letting go of the engine lock
 * (pager_run_deferred): a completion thread in between cost a hand-off per
 * fault; read-ahead and pageout stay asynchronous. Before those reads the
 * uffd goes on to the next thread (serve_client), so a program's threads
 * have as many reads in flight as there are fault threads: an event may
 * be handled while an earlier fault's read is still out.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
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
		    !pg_gone(uobj_get(o, (addr - o->caddr) >> PAGE_SHIFT)))
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
 * Unregisters the pages of [a, a + len) that no object of c serves: the
 * lock may have been let go since the range was ours, and the program
 * may have put a new view there meanwhile. Lock held.
 */
static void unregister_unserved(struct engine *e, struct client *c, uintptr_t a, size_t len)
{
	uintptr_t run = 0;

	for (uintptr_t p = a; p <= a + len; p += PAGE_SIZE) {
		bool free = p < a + len && !find_object(e, c, p);

		if (free && !run)
			run = p;
		if (!free && run) {
			uffd_unregister(c->ufd, (void *)run, p - run);
			run = 0;
		}
	}
}

/*
 * Without an object for the moved part (no memory, or the client has
 * ENGINE_MOVED_PARTS_MAX of them), it is left to the kernel as plain
 * shared memory of the memfd, whole: every page of it read back into the
 * memfd first (the lock is let go meanwhile), a page whose only copy is
 * unreadable poisoned (SIGBUS, never the zeros of a hole; where it cannot
 * be, the process gets SIGBUS now), then the range unregistered. It is
 * no longer budgeted, and a fork child does not inherit it (it was
 * MADV_DONTFORK as a view): said in the log. Lock held.
 */
static void remap_unmanaged(struct engine *e, struct client *c, struct uobj *o, size_t first,
			    size_t n, uintptr_t to, int why)
{
	bool again = true, lost = false;

	engine_log(e, 3, "pid %d: %#lx-%#lx, moved out of a managed object by a raw mremap, "
		   "cannot become an object of its own (%s): it stays as plain shared memory, "
		   "unbudgeted, that fork children do not inherit", (int)c->pid, (unsigned long)to,
		   (unsigned long)(to + (n << PAGE_SHIFT)),
		   why == -EMFILE ? "the process has as many such objects as allowed" : strerror(-why));
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

		if ((pg_state(w) == PG_BAD || pg_state(w) == PG_SWAPPED) &&
		    !find_object(e, c, to + ((i - first) << PAGE_SHIFT))) {
			void *a = (void *)(to + ((i - first) << PAGE_SHIFT));
			int r = -EAGAIN;

			/* EAGAIN: the program's next move is under way; it is read after us */
			for (int k = 0; k < 100 && r == -EAGAIN; k++)
				r = uffd_poison(c->ufd, a, PAGE_SIZE, UFFD_F_DONTWAKE);
			lost |= r < 0 && r != -ENOENT && r != -EINVAL;
		}
		if (pg_slot(w) && o->ops->releasepg)
			o->ops->releasepg(o, i);
		/* no punch: the moved mapping reads these pages */
		uobj_set(o, i, pg_make(PG_GONE, w & PGF_QUEUED, 0));
	}
	unregister_unserved(e, c, to, n << PAGE_SHIFT);
	if (lost) {
		engine_log(e, 2, "pid %d: pages of %#lx-%#lx whose only copy is unreadable could not "
			   "be poisoned: SIGBUS to the process rather than zeros", (int)c->pid,
			   (unsigned long)to, (unsigned long)(to + (n << PAGE_SHIFT)));
		kill(c->pid, SIGBUS);
	}
}

/*
 * Part of an object's view moved to `to` behind our back (a raw mremap):
 * one object cannot have two views, so the moved part becomes an object
 * of its own (engine.c, object_split). Its mapping still maps the memfd
 * where the pages are and is still registered, so nothing of the
 * program's address space is touched: whatever it does there meanwhile
 * (unmap part of it, map memory of its own, mprotect) is its own
 * business, and the kernel's events about it (UNMAP, REMOVE) find the
 * new object. The pages must be at rest first: I/O in flight ends (the
 * lock is let go meanwhile). A discard waiting for its zap goes along:
 * its proof is the client's PTE, which moved with the part (settled
 * here, it would look at the old address, find no PTE and punch what
 * the program wrote since). Lock held.
 */
static void remap_part(struct engine *e, struct client *c, struct uobj *o, size_t first,
		       size_t n, uintptr_t to)
{
	struct uobj *p;
	bool busy = true;
	int r;

	/*
	 * The waits below let go of the lock: the page daemon keeps away,
	 * and a destroy of o (the program unmapping the rest of the view,
	 * or exiting) waits for us. The part is split off even then: it is
	 * still the program's memory where it went.
	 */
	o->remapping++;
	while (busy) {
		busy = false;
		for (size_t i = first; i < first + n && !busy; i++)
			busy = pg_busy(uobj_get(o, i));
		if (busy)
			pthread_cond_wait(&e->io_cond, &e->lock);
	}
	r = object_split(e, o, first, n, to, &p);
	if (r < 0)
		remap_unmanaged(e, c, o, first, n, to, r);
	o->remapping--;
	pthread_cond_broadcast(&e->io_cond);
}

/*
 * A fault where the client's uffd still covers the address but no object
 * serves it: a mapping of ours the program remade behind our back into
 * something we cannot give a meaning, such as the old range an
 * MREMAP_DONTUNMAP left, or the tail a raw mremap grew onto the memfd's
 * next pages (another part's memory). Woken, the toucher would fault
 * again forever; mapped, it would alias another view. So it gets
 * SIGBUS: the page is poisoned. Poison refuses a range that is no longer
 * registered (a fault read before the program unmapped it): only woken,
 * it finds its own. Where the kernel has no poison (6.1), the page is
 * unregistered instead and the kernel's own fault maps it. Lock held.
 */
static void unserved_fault(struct client *c, uintptr_t addr)
{
	int r = uffd_poison(c->ufd, (void *)addr, PAGE_SIZE, 0);

	/*
	 * A fault is read before the events queued ahead of it: one on the
	 * new place of a move whose REMAP is still unread lands here. Poison
	 * says EAGAIN then (the kernel's mmap_changing); without poison, so
	 * does an un-protect, which changes nothing on a page with no PTE.
	 */
	if (r == -EOPNOTSUPP &&
	    uffd_writeprotect(c->ufd, (void *)addr, PAGE_SIZE, false, UFFD_F_DONTWAKE) != -EAGAIN)
		uffd_unregister(c->ufd, (void *)addr, PAGE_SIZE);
	if (r < 0)
		uffd_wake(c->ufd, (void *)addr, PAGE_SIZE);
}

/* Whether any page of o in [s, t) (client addresses) is still o's. */
static bool live_in(const struct uobj *o, uintptr_t s, uintptr_t t)
{
	for (uintptr_t a = s; a < t; a += PAGE_SIZE)
		if (!pg_gone(uobj_get(o, (a - o->caddr) >> PAGE_SHIFT)))
			return true;
	return false;
}

/*
 * UFFD_EVENT_REMAP: [from, from + len) now lives at to. One VMA may hold
 * the views of several objects (a moved part put back where it came
 * from merges with its neighbours): each object with pages of its own
 * in the range follows it whole, or gives up the part that moved. An
 * object whose pages there are gone had the range once and stays.
 */
static void remapped(struct engine *e, struct client *c, uintptr_t from, uintptr_t to,
		     size_t len)
{
	uint64_t ids[16];
	size_t n = 0;
	bool more = true, any = false;

	pinned_moved(c, from, to, len);
	/* remap_part lets go of the lock, and adds objects: by id, a batch at a time */
	while (more) {
		more = false;
		n = 0;
		for (struct uobj *o = e->objects; o; o = o->next) {
			uintptr_t oend = o->caddr + (o->npages << PAGE_SHIFT);
			uintptr_t s = MAX(from, o->caddr), t = MIN(from + len, oend);

			/* a dying object too: its destroy waits for remap_part, or unregisters at to */
			if (o->client != c || s >= t || !live_in(o, s, t))
				continue;
			if (n == ARRAY_SIZE(ids)) {
				more = true;
				break;
			}
			ids[n++] = o->id;
			any = true;
		}
		for (size_t k = 0; k < n; k++) {
			struct uobj *o = e->objects;
			uintptr_t oend, s, t;

			while (o && o->id != ids[k])
				o = o->next;
			if (!o)
				continue;
			oend = o->caddr + (o->npages << PAGE_SHIFT);
			s = MAX(from, o->caddr);
			t = MIN(from + len, oend);
			if (s >= t)
				continue;
			if (s == o->caddr && t == oend) {
				/* the whole view moved: the object follows it */
				o->caddr = to + (o->caddr - from);
				pager_journal_move(o);
				/*
				 * A fault at the old place may still sleep there:
				 * its read ends (or its page was busy) and is mapped
				 * and woken at the new one. Woken here, it touches
				 * the old place again and finds what the program
				 * left there (nothing: SIGSEGV; with DONTUNMAP an
				 * unserved fault). Not woken, it slept for good.
				 */
				uffd_wake(c->ufd, (void *)s, t - s);
				continue;
			}
			remap_part(e, c, o, (s - o->caddr) >> PAGE_SHIFT, (t - s) >> PAGE_SHIFT,
				   to + (s - from));
		}
	}
	/*
	 * Nothing of ours moved (the object went while the event waited):
	 * the range is still registered, and no object would serve it.
	 */
	if (!any)
		unregister_unserved(e, c, to, len);
}

static void handle_msg(struct engine *e, struct client *c, const struct uffd_msg *m)
{
	switch (m->event) {
	case UFFD_EVENT_PAGEFAULT: {
		uintptr_t addr = ALIGN_DOWN((uintptr_t)m->arg.pagefault.address, PAGE_SIZE);
		uint64_t fl = m->arg.pagefault.flags;
		struct uobj *o = find_object(e, c, addr);

		if (!o) {
			unserved_fault(c, addr);
			break;
		}
		if (o->dying) {
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
		/* engine_client_unmaps_wait waits for this */
		if (c->unmaps_pending && !--c->unmaps_pending)
			pthread_cond_broadcast(&e->io_cond);
		break;
	case UFFD_EVENT_REMAP:
		remapped(e, c, m->arg.remap.from, m->arg.remap.to, m->arg.remap.len);
		/* engine_client_new_objects waits for this */
		if (c->remaps_pending && !--c->remaps_pending) {
			pinned_moved_parts(c, 0);
			pthread_cond_broadcast(&e->io_cond);
		}
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

		if (z->serving || z->io_users) {
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

/*
 * The thread serving c is done with it; lock not held. Once serving is
 * clear a removed client may be reaped: the arm after the lock holds it
 * as an I/O user, or it could read a freed client (and re-arm another
 * client's uffd under a reused fd number with this one's id).
 */
static void client_put(struct engine *e, struct client *c)
{
	bool rearm;

	engine_lock_fault(e);
	c->serving = 0;
	rearm = c->missed && !c->dead;
	c->missed = false;
	if (rearm)
		c->io_users++;
	pthread_mutex_unlock(&e->lock);
	if (!rearm)
		return;
	arm(e, c, EPOLL_CTL_MOD);
	pthread_mutex_lock(&e->lock);
	c->io_users--;
	pthread_mutex_unlock(&e->lock);
}

/*
 * The next batch of c's messages, read under the lock: each is stamped
 * as it is read (fence_stamp), and a fork waits for the REMAPs read.
 */
static int next_batch(struct client *c, struct uffd_msg *msgs, int max)
{
	int k = uffd_read_msgs(c->ufd, msgs, max);

	if (k > 0)
		fence_stamp(c, msgs, k);
	return k;
}

/*
 * Before an event (REMAP, REMOVE, UNMAP): the reads this thread deferred
 * for earlier faults of the batch go out first. An event may wait for the
 * object's I/O to end (remap_part), and a read this thread holds back
 * would never end. Reads of a batch handed on before (another thread's)
 * may still be out: they need nothing of this thread but the lock, which
 * the waits let go of. Lock held on entry and return; let go meanwhile.
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

/* c's uffd cannot be served any more: out of the epoll set, and dead. */
static void client_lost(struct engine *e, struct client *c)
{
	epoll_ctl(e->epfd, EPOLL_CTL_DEL, c->ufd, NULL);
	pthread_mutex_lock(&e->lock);
	c->dead = true;
	pthread_mutex_unlock(&e->lock);
}

/*
 * Drain one client's uffd, then arm it again for the next fault thread.
 * Once a batch has left reads to do, the uffd is handed on before they
 * are done: every message read so far is handled, so another thread may
 * read the next ones (another program thread's fault) while this one
 * waits on the disk. Without that, a program's threads faulted one read
 * at a time where the kernel has one read in flight per faulting thread.
 * Returns false if c was handed on (the caller no longer serves it).
 */
static bool serve_client(struct engine *e, struct client *c, uint32_t events)
{
	struct uffd_msg msgs[64];
	struct pager_io *reads;
	int k = 0;

	for (;;) {
		engine_lock_fault(e);
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
		if (reads && !c->dead && !(events & (EPOLLHUP | EPOLLERR))) {
			/* c's memory stays (a destroy waits for the reads), c itself too */
			c->io_users++;
			c->serving = 0;
			c->missed = false;
			pthread_mutex_unlock(&e->lock);
			if (arm(e, c, EPOLL_CTL_MOD) < 0)
				client_lost(e, c);
			pager_run_deferred(reads);
			pthread_mutex_lock(&e->lock);
			c->io_users--;
			pthread_mutex_unlock(&e->lock);
			return false;
		}
		pthread_mutex_unlock(&e->lock);
		pager_run_deferred(reads);
	}
	if (k < 0 || (events & (EPOLLHUP | EPOLLERR)) || arm(e, c, EPOLL_CTL_MOD) < 0)
		client_lost(e, c);
	return true;
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
				/* a client left: reaped below */
				if (read(e->kick_fd, &v, sizeof(v)) < 0)
					continue;
				continue;
			}
			engine_lock_fault(e);
			c = client_take(e, id);
			pthread_mutex_unlock(&e->lock);
			if (!c)
				continue;
			if (serve_client(e, c, evs[i].events))
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
		/* named for top -H, perf and the journal's readers */
		pthread_setname_np(e->fault_threads[e->nfault_threads], "uvmp-fault");
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
