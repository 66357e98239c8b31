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
#include <stdlib.h>
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
 * Part of an object's view moved to `to` behind our back (a raw mremap):
 * one object cannot have two views, so the moved part leaves it. Its
 * pages are brought into memory, the new range is unregistered and runs
 * as plain shared memory (unbudgeted), the old pages turn PG_GONE
 * without a punch (the new mapping holds them). A page whose only copy
 * is unreadable is poisoned there first: SIGBUS, never zeros. Lock held;
 * waits for the reads (the lock is let go meanwhile).
 */
static void remap_part(struct engine *e, struct client *c, struct uobj *o, size_t first,
		       size_t n, uintptr_t to)
{
	bool again = true;

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

		if (pg_state(w) == PG_BAD || pg_state(w) == PG_SWAPPED)
			uffd_poison(c->ufd, (void *)(to + ((i - first) << PAGE_SHIFT)), PAGE_SIZE, 0);
		if (pg_slot(w) && o->ops->releasepg)
			o->ops->releasepg(o, i);
		uobj_set(o, i, pg_make(PG_GONE, uobj_get(o, i) & PGF_QUEUED, 0));
	}
	uffd_unregister(c->ufd, (void *)to, n << PAGE_SHIFT);
	o->pinned = false;
}

/* UFFD_EVENT_REMAP: [from, from + len) now lives at to. */
static void remapped(struct engine *e, struct client *c, uintptr_t from, uintptr_t to,
		     size_t len)
{
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

/* Pages of [start, end) in the client's address space go away. */
static void release_range(struct engine *e, struct client *c, uintptr_t start, uintptr_t end)
{
	for (struct uobj *o = e->objects; o; o = o->next) {
		uintptr_t oend = o->caddr + (o->npages << PAGE_SHIFT);
		uintptr_t s = MAX(start, o->caddr), t = MIN(end, oend);

		if (o->client != c || s >= t)
			continue;
		pager_release_range(o, (s - o->caddr) >> PAGE_SHIFT,
				    (t - s) >> PAGE_SHIFT);
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
	case UFFD_EVENT_REMOVE:
		release_range(e, c, m->arg.remove.start, m->arg.remove.end);
		break;
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

		tracker_destroy(free_list->tr);
		if (free_list->ufd >= 0)
			close(free_list->ufd);
		free(free_list);
		free_list = next;
	}
}

/* Under the lock: the live client named by an event, now being served. */
static struct client *client_take(struct engine *e, uint64_t id)
{
	for (struct client *c = e->clients; c; c = c->next) {
		if (c->fault_id == id && !c->dead) {
			c->serving++;
			return c;
		}
	}
	return NULL;
}

static int arm(struct engine *e, struct client *c, int op)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLONESHOT, .data.u64 = c->fault_id };

	return epoll_ctl(e->epfd, op, c->ufd, &ev) < 0 ? -errno : 0;
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
		pthread_mutex_unlock(&e->lock);
		k = uffd_read_msgs(c->ufd, msgs, ARRAY_SIZE(msgs));
		if (k <= 0)
			break;
		pthread_mutex_lock(&e->lock);
		pager_defer_begin(&reads);
		for (int j = 0; j < k && !c->dead; j++)
			handle_msg(e, c, &msgs[j]);
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
				continue;
			}
			pthread_mutex_lock(&e->lock);
			c = client_take(e, id);
			pthread_mutex_unlock(&e->lock);
			if (!c)
				continue;
			serve_client(e, c, evs[i].events);
			pthread_mutex_lock(&e->lock);
			c->serving--;
			pthread_mutex_unlock(&e->lock);
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
