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

static struct uobj *find_object(struct engine *e, struct client *c, uintptr_t addr)
{
	for (struct uobj *o = e->objects; o; o = o->next)
		if (o->client == c && addr >= o->caddr &&
		    addr < o->caddr + (o->npages << PAGE_SHIFT))
			return o;
	return NULL;
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
	case UFFD_EVENT_UNMAP:
		release_range(e, c, m->arg.remove.start, m->arg.remove.end);
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

		engine_client_free(free_list);
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
