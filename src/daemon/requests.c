/*
 * The control requests (include/uvmpager/protocol.h): each checks its
 * payload to the byte, acts on the sender's own objects only (root: any),
 * and answers.
 */
#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"
#include "daemon/config.h"
#include "daemon/log.h"
#include "daemon/server_impl.h"
#include "daemon/uffdowner.h"
#include "daemon/wire.h"
#include "engine.h"

/* The file behind fd, as /proc names it; NULL if it cannot be had. */
static char *fd_path(int fd)
{
	char link[64], buf[4096];
	ssize_t n;

	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, buf, sizeof(buf) - 1);
	if (n < 0)
		return NULL;
	buf[n] = '\0';
	return strdup(buf);
}

static struct dobj *find_obj_id(struct server *s, struct conn *c, uint64_t id)
{
	/* a client sees only its own objects; root sees all */
	for (struct dclient *dc = s->clients; dc; dc = dc->next) {
		if (dc != c->client && c->cred.uid != 0)
			continue;
		for (struct dobj *d = dc->objs; d; d = d->next)
			if (d->id == id)
				return d;
	}
	return NULL;
}

/*
 * Two objects over the same addresses would both answer their faults and
 * both write their pages back: one range, one object, whichever request
 * (MAP, REMAP, ADOPT_DONE) puts it there. skip: the object being moved.
 */
bool srv_range_taken(struct dclient *dc, uint64_t addr, uint64_t len, const struct dobj *skip)
{
	for (struct dobj *o = dc->objs; o; o = o->next) {
		uint64_t base = engine_object_addr(o->o);

		if (o != skip && addr < base + o->len && base < addr + len)
			return true;
	}
	return false;
}

/*
 * The first registration of a client proves its userfaultfd is its own
 * (uffdowner.h): before it, the client's VMA at addr must not be
 * registered with any userfaultfd (else it could have registered it
 * itself, through one of its own, and handed us another process's);
 * after it, it must be. Both are no-ops once proved. Server thread.
 */
int srv_uffd_check_before(struct dclient *dc, uint64_t addr)
{
	int r;

	if (dc->uffd_owned)
		return 0;
	r = vma_uffd_registered(dc->pid, addr);
	if (r == 1)
		return -EBUSY;
	return r == -ENOENT ? -EINVAL : r;
}

/* 0 (and from now on proved), or -EBADF: the caller undoes the registration. */
int srv_uffd_check_after(struct dclient *dc, uint64_t addr, const char *what)
{
	if (dc->uffd_owned)
		return 0;
	if (vma_uffd_registered(dc->pid, addr) != 1) {
		log_warn("pid %d uid %u: %s refused: the userfaultfd it sent is not its own "
			 "(its range is not registered in its address space)", dc->pid, dc->uid,
			 what);
		return -EBADF;
	}
	dc->uffd_owned = true;
	return 0;
}

static int do_hello(struct server *s, struct conn *c, const struct uvmp_hdr *h, ssize_t n)
{
	const struct uvmp_hello *p = payload(h, n, sizeof(*p));
	struct uvmp_hello_reply rep = { 0 };
	struct epoll_event ev = { .events = EPOLLIN };
	struct dclient *dc;
	uint64_t max = server_client_budget_max(s);
	int devfd = -1, r;

	if (!p || c->client)
		return -EPROTO;
	if ((pid_t)p->pid != c->cred.pid)
		return -EPERM;
	if ((r = srv_user_room(s, c->cred.uid, c->cred.pid, false)) < 0)
		return r;
	dc = calloc(1, sizeof(*dc));
	if (!dc)
		return -ENOMEM;
	dc->pid = c->cred.pid;
	dc->uid = c->cred.uid;
	dc->gid = c->cred.gid;
	dc->agent_fd = -1;
	dc->token = srv_random_u64();
	dc->budget = p->budget ? p->budget : s->cfg->client_budget;
	if (dc->budget > max) {
		/*
		 * A clamp, not a refusal: a program started under the shim
		 * should run rather than fail at its first allocation, and
		 * the reply says what was granted (uvmpager-run(1) and
		 * uvmpager(3) document it). The operator sees it here.
		 */
		log_info("pid %d uid %u asked for a budget of %" PRIu64 " MiB: granted the "
			 "client-budget-max, %" PRIu64 " MiB", dc->pid, dc->uid, dc->budget >> 20,
			 max >> 20);
		dc->budget = max;
	}
	dc->pidfd = (int)syscall(SYS_pidfd_open, dc->pid, 0);
	if (dc->pidfd < 0) {
		r = -errno;
		free(dc);
		return r;
	}
	dc->pid_watch = (struct watch){ W_PIDFD, dc };
	ev.data.ptr = &dc->pid_watch;
	if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, dc->pidfd, &ev) < 0) {
		r = -errno;
		close(dc->pidfd);
		free(dc);
		return r;
	}
	if (p->flags & UVMP_HELLO_WANT_UFFD_DEV) {
		/*
		 * The client may create a userfaultfd through us: who may
		 * connect (socket mode and group) is the boundary.
		 */
		devfd = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
		if (devfd >= 0)
			rep.flags = 1;
	}
	dc->created = time(NULL);
	pthread_mutex_lock(&s->lock);
	dc->id = ++s->next_client_id;
	dc->next = s->clients;
	s->clients = dc;
	s->nclients++;
	pthread_mutex_unlock(&s->lock);
	dc->ctl = c;
	c->client = dc;
	rep.client_id = dc->id;
	rep.agent_token = dc->token;
	rep.budget = dc->budget;
	rep.min_size = s->cfg->min_size;
	r = srv_reply(c, h, 0, &rep, sizeof(rep), &devfd, devfd >= 0);
	if (devfd >= 0)
		close(devfd);
	/* debug: a shell pipeline makes dozens of clients, one per exec */
	log_debug("client %" PRIu64 ": pid %d uid %u, budget %" PRIu64 " MiB", dc->id, dc->pid,
		 dc->uid, dc->budget >> 20);
	return r < 0 ? r : 1;
}

static int do_uffd(struct server *s, struct conn *c, const struct uvmp_hdr *h, ssize_t n,
		   int *fds, unsigned nfds)
{
	struct dclient *dc = c->client;
	int tfd[2] = { -1, -1 }, r;

	if (!payload(h, n, 0) || !dc || dc->ec || nfds != 1)
		return -EPROTO;
	r = engine_client_create(s->e, dc->pid, fds[0], dc->budget, &dc->ec);
	if (r < 0)
		return r;
	fds[0] = -1;   /* the engine owns it now */
	r = engine_client_journal(s->e, dc->ec, &tfd[0]);
	if (r < 0)
		return r;
	r = engine_client_pintab(s->e, dc->ec, &tfd[1]);
	if (r < 0)
		goto out;
	r = srv_reply(c, h, 0, NULL, 0, tfd, 2);
out:
	for (int i = 0; i < 2; i++)
		if (tfd[i] >= 0)
			close(tfd[i]);
	return r < 0 ? r : 1;
}

static int do_agent(struct server *s, struct conn *c, const struct uvmp_hdr *h, ssize_t n)
{
	const struct uvmp_agent *p = payload(h, n, sizeof(*p));
	struct dclient *dc;
	struct timeval tv = { .tv_sec = 0, .tv_usec = 0 };
	int r;

	if (!p || c->client)
		return -EPROTO;
	dc = srv_find_client(s, p->client_id);
	if (!dc || dc->token != p->agent_token || dc->pid != c->cred.pid || dc->agent_fd >= 0)
		return -EPERM;
	r = srv_reply(c, h, 0, NULL, 0, NULL, 0);
	if (r < 0)
		return r;
	/* held to the end: the agent takes its closing as the daemon's */
	epoll_ctl(s->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	dc->agent_fd = c->fd;
	c->fd = -1;
	return 2;   /* connection handed over: drop the conn without closing */
}

static int do_map(struct server *s, struct conn *c, const struct uvmp_hdr *h, ssize_t n,
		  int *fds, unsigned nfds)
{
	const struct uvmp_map *p = payload(h, n, sizeof(*p));
	struct dclient *dc = c->client;
	struct uvmp_map_reply rep;
	enum engine_obj_type type;
	struct dobj *d;
	int r;

	if (!p || !dc || !dc->ec || nfds < 1 || nfds > 2)
		return -EPROTO;
	switch (p->type) {
	case UVMP_OBJ_ANON: type = ENGINE_OBJ_ANON; break;
	case UVMP_OBJ_FILE: type = ENGINE_OBJ_FILE; break;
	case UVMP_OBJ_DEVICE: type = ENGINE_OBJ_DEVICE; break;
	default: return -EINVAL;
	}
	if ((type == ENGINE_OBJ_ANON) != (nfds == 1) || p->offset || p->addr + p->len < p->addr)
		return -EINVAL;
	if (srv_range_taken(dc, p->addr, p->len, NULL))
		return -EEXIST;
	/*
	 * The engine maps the memfd and reads and writes its pages: a
	 * client that shrank it afterwards would kill the daemon (SIGBUS)
	 * and every other client's memory with it. It stays at least as
	 * long as it is now, or it is not taken.
	 */
	if ((r = srv_user_room(s, dc->uid, dc->pid, true)) < 0)
		return r;
	if (fcntl(fds[0], F_ADD_SEALS, F_SEAL_SHRINK) < 0) {
		log_info("pid %d: MAP refused: its memfd cannot be sealed against shrinking "
			 "(created without MFD_ALLOW_SEALING?): %s", dc->pid, strerror(errno));
		return -EINVAL;
	}
	if ((r = srv_uffd_check_before(dc, p->addr)) < 0)
		return r;
	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	r = engine_object_attach(s->e, dc->ec, type, fds[0], nfds > 1 ? fds[1] : -1,
				 (uintptr_t)p->addr, (size_t)p->len, p->budget, &d->o);
	if (r < 0) {
		free(d);
		return r;
	}
	if ((r = srv_uffd_check_after(dc, p->addr, "MAP")) < 0) {
		/* registered in another address space: let go of it there */
		engine_object_destroy(s->e, d->o);
		free(d);
		return r;
	}
	d->id = engine_object_id(d->o);
	d->addr = (uintptr_t)p->addr;
	d->len = (size_t)p->len;
	d->type = p->type;
	d->prot = p->prot;
	if (nfds > 1)
		d->path = fd_path(fds[1]);
	srv_dobj_link(s, dc, d);
	rep.object_id = d->id;
	log_debug("client %" PRIu64 ": object %" PRIu64 " at %#" PRIxPTR " +%zu MiB",
		  dc->id, d->id, d->addr, d->len >> 20);
	return srv_reply(c, h, 0, &rep, sizeof(rep), NULL, 0) < 0 ? -EPIPE : 1;
}

/* Apply fn to the overlap of [addr, addr + len) with each of the client's objects. */
static int for_range(struct server *s, struct dclient *dc, uint64_t addr, uint64_t len,
		     bool unmap)
{
	int r = 0, xdev = 0;

	if (addr % PAGE_SIZE || len % PAGE_SIZE || addr + len < addr)
		return -EINVAL;
	/* a raw munmap the program made just now: its pages are not ours to release */
	if (dc->ec)
		engine_client_unmaps_wait(s->e, dc->ec);
	for (struct dobj *d = dc->objs, *next; d; d = next) {
		/* where the object is now: a raw mremap may have moved it */
		uint64_t base = engine_object_addr(d->o);
		uint64_t lo = MAX(addr, base), hi = MIN(addr + len, base + d->len);

		next = d->next;
		if (lo >= hi)
			continue;
		if (unmap && lo == base && hi == base + d->len) {
			srv_dobj_unlink(s, dc, d);
			engine_object_destroy(s->e, d->o);
			srv_dobj_drop(s, dc, d);
			continue;
		}
		r = engine_object_release(s->e, d->o, lo - base, hi - lo);
		/* a raw-unmapped part: release the rest, and say so at the end */
		if (r == -EXDEV)
			xdev = r;
		else if (r < 0)
			return r;
	}
	return xdev;
}

static int do_range(struct server *s, struct conn *c, const struct uvmp_hdr *h, ssize_t n,
		    bool unmap)
{
	const struct uvmp_range *p = payload(h, n, sizeof(*p));

	if (!p || !c->client)
		return -EPROTO;
	return for_range(s, c->client, p->addr, p->len, unmap);
}

/* mlock and friends: the program's own memory only (the engine looks at its objects). */
static int do_lock(struct server *s, struct conn *c, const struct uvmp_hdr *h, ssize_t n)
{
	const struct uvmp_lock *p = payload(h, n, sizeof(*p));
	bool all;

	if (!p || !c->client || p->pad || (p->flags & ~(UVMP_LOCK_ON | UVMP_LOCK_ALL)))
		return -EPROTO;
	if (!c->client->ec)
		return -ENOTCONN;
	all = p->flags & UVMP_LOCK_ALL;
	if (!all && (!p->len || p->addr + p->len < p->addr))
		return -EINVAL;
	return engine_client_lock(s->e, c->client->ec, p->addr, p->len, p->flags & UVMP_LOCK_ON, all);
}

static int do_remap(struct server *s, struct conn *c, const struct uvmp_hdr *h, ssize_t n)
{
	const struct uvmp_remap *p = payload(h, n, sizeof(*p));

	if (!p || !c->client)
		return -EPROTO;
	for (struct dobj *d = c->client->objs; d; d = d->next) {
		if (engine_object_addr(d->o) != p->old_addr)
			continue;
		if (d->len != p->old_len || p->new_len != p->old_len)
			return -EOPNOTSUPP;   /* the shim resizes within its segments */
		if (p->new_addr % PAGE_SIZE || p->new_addr + p->new_len < p->new_addr)
			return -EINVAL;
		/* (a real mremap over another object unmapped it: UNMAP that one first) */
		if (srv_range_taken(c->client, p->new_addr, p->new_len, d))
			return -EEXIST;
		pthread_mutex_lock(&s->lock);
		d->addr = (uintptr_t)p->new_addr;
		pthread_mutex_unlock(&s->lock);
		return engine_object_move(s->e, d->o, (uintptr_t)p->new_addr);
	}
	return -ENOENT;
}

static int do_obj(struct server *s, struct conn *c, const struct uvmp_hdr *h, ssize_t n)
{
	const struct uvmp_obj *p = payload(h, n, sizeof(*p));
	struct engine_obj_stat st;
	struct uvmp_obj_stat rep;
	struct dobj *d;

	if (!p || !c->client)
		return -EPROTO;
	d = find_obj_id(s, c, p->object_id);
	if (!d)
		return -ENOENT;
	if ((h->type & ~UVMP_REPLY) == UVMP_FLUSH)
		return engine_flush(s->e, d->o);
	engine_object_stat(s->e, d->o, &st);
	rep = (struct uvmp_obj_stat){
		.object_id = st.id, .size = st.size, .resident_bytes = st.resident_bytes,
		.dirty_bytes = st.dirty_bytes, .swapped_bytes = st.swapped_bytes,
		.swapins = st.swapins, .swapouts = st.swapouts, .faults = st.faults,
		.budget = st.budget,
	};
	return srv_reply(c, h, 0, &rep, sizeof(rep), NULL, 0) < 0 ? -EPIPE : 1;
}

static int do_budget(struct server *s, struct conn *c, const struct uvmp_hdr *h, ssize_t n)
{
	const struct uvmp_budget *p = payload(h, n, sizeof(*p));
	uint64_t max = server_client_budget_max(s);
	struct dclient *dc = c->client;
	struct dobj *d;

	if (!p || !dc || !dc->ec)
		return -EPROTO;
	if (!p->object_id) {
		if (p->bytes > max)
			log_info("pid %d uid %u asked for a budget of %" PRIu64 " MiB: granted the "
				 "client-budget-max, %" PRIu64 " MiB", dc->pid, dc->uid,
				 p->bytes >> 20, max >> 20);
		pthread_mutex_lock(&s->lock);
		dc->budget = p->bytes > max ? max : p->bytes;
		pthread_mutex_unlock(&s->lock);
		return engine_client_set_budget(s->e, dc->ec, dc->budget);
	}
	d = find_obj_id(s, c, p->object_id);
	if (!d)
		return -ENOENT;
	return engine_set_budget(s->e, d->o, p->bytes);
}

/* Returns 1 when the request sent its own reply, 2 when c was handed over. */
int srv_dispatch(struct server *s, struct conn *c, const struct uvmp_hdr *h, ssize_t n,
		    int *fds, unsigned nfds)
{
	if (wire_decode(h, n) < 0)
		return -EPROTO;
	if (!c->client && h->type != UVMP_HELLO && h->type != UVMP_AGENT)
		return -EPROTO;
	switch (h->type) {
	case UVMP_HELLO: return do_hello(s, c, h, n);
	case UVMP_AGENT: return do_agent(s, c, h, n);
	case UVMP_UFFD: return do_uffd(s, c, h, n, fds, nfds);
	case UVMP_MAP: return do_map(s, c, h, n, fds, nfds);
	case UVMP_UNMAP: return do_range(s, c, h, n, true);
	case UVMP_RELEASE: return do_range(s, c, h, n, false);
	case UVMP_REMAP: return do_remap(s, c, h, n);
	case UVMP_LOCK: return do_lock(s, c, h, n);
	case UVMP_FLUSH:
	case UVMP_OBJ_STAT: return do_obj(s, c, h, n);
	case UVMP_SET_BUDGET: return do_budget(s, c, h, n);
	case UVMP_FORK_PREPARE: return do_fork_prepare(s, c, h, n);
	case UVMP_FORK_DONE: return do_fork_done(s, c, h, n);
	case UVMP_ADOPT: return do_adopt(s, c, h, n);
	case UVMP_ADOPT_DONE: return do_adopt_done(s, c, h, n);
	default: return -EPROTO;
	}
}

