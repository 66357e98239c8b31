/*
 * The control server (see include/uvmpager/protocol.h for the protocol).
 *
 * One thread: an epoll loop over the listening socket, every control
 * connection, each client's pidfd and a signalfd. Requests are answered
 * in order; a malformed one gets -EPROTO and its connection is closed.
 * The agent connections are not polled: the page daemon's fence callback
 * talks on them directly (a request, then its reply).
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"
#include "daemon/config.h"
#include "daemon/log.h"
#include "daemon/server.h"
#include "daemon/wire.h"
#include "engine.h"
#include "uvmpager/protocol.h"

#define FORK_TTL_NS (30ULL * 1000000000ULL)
#define FENCE_TIMEOUT_MS 2000

enum watch_kind { W_LISTEN, W_CONN, W_PIDFD, W_SIGNAL };

struct watch {
	enum watch_kind kind;
	void *ptr;
};

struct dobj {
	struct uobj *o;
	uint64_t id;
	uintptr_t addr;
	size_t len;
	uint32_t type, prot;
	struct dobj *next;
};

struct dclient {
	uint64_t id, token;
	pid_t pid;
	uid_t uid;
	gid_t gid;
	uint64_t budget;
	struct client *ec;        /* engine client, once its uffd came */
	struct conn *ctl;
	int agent_fd;
	uint32_t fence_seq;
	int pidfd;
	struct watch pid_watch;
	struct dobj *objs;
	struct dclient *next;
};

struct conn {
	int fd;
	struct ucred cred;
	struct dclient *client;   /* after HELLO */
	struct watch watch;
	struct conn *next;
};

struct fork_clone {
	struct uobj *o;
	int memfd;
	struct uvmp_region region;
};

struct fork_rec {
	uint64_t token;
	pid_t parent;
	uid_t uid;
	pid_t child;              /* 0 until the parent says */
	uint64_t created;
	unsigned n;
	struct fork_clone *clones;
	struct fork_rec *next;
};

struct server {
	struct engine *e;
	const struct daemon_config *cfg;
	int listen_fd, sig_fd, epfd;
	struct watch listen_watch, sig_watch;
	struct conn *conns;
	struct dclient *clients;
	struct fork_rec *forks;
	uint64_t next_client_id;
	unsigned nclients;
	pthread_mutex_t lock;     /* the lists, for the filesystem thread */
};

static uint64_t random_u64(void)
{
	uint64_t v = 0;

	if (getrandom(&v, sizeof(v), 0) != sizeof(v))
		v = now_ns() ^ ((uint64_t)getpid() << 32);
	return v;
}

static int reply(struct conn *c, const struct uvmp_hdr *req, int32_t status,
		 const void *payload, size_t plen, const int *fds, unsigned nfds)
{
	return wire_send(c->fd, req->type | UVMP_REPLY, req->seq, status,
			status < 0 ? NULL : payload, status < 0 ? 0 : plen, fds, nfds);
}

/* --- clients ------------------------------------------------------------- */

/* The page daemon asks the client's agent to drop its PTEs of a range. */
static int fence_cb(void *priv, uintptr_t addr, size_t len)
{
	struct dclient *dc = priv;
	struct uvmp_fence f = { .n = 1, .ranges = { { addr, len } } };
	char buf[UVMP_MAX_MSG];
	uint32_t seq = ++dc->fence_seq;
	uint64_t deadline = now_ns() + FENCE_TIMEOUT_MS * 1000000ULL;
	int fds[UVMP_MAX_FDS];
	unsigned nfds;
	int r;

	if (dc->agent_fd < 0)
		return -ENOTCONN;
	r = wire_send(dc->agent_fd, UVMP_FENCE, seq, 0, &f, sizeof(f), NULL, 0);
	if (r < 0)
		return r;
	for (;;) {
		struct uvmp_hdr *h = (struct uvmp_hdr *)buf;
		struct pollfd pfd = { .fd = dc->agent_fd, .events = POLLIN };
		uint64_t now = now_ns();
		ssize_t n;

		if (now >= deadline)
			return -ETIMEDOUT;
		r = poll(&pfd, 1, (int)((deadline - now) / 1000000ULL) + 1);
		if (r < 0 && errno != EINTR)
			return -errno;
		if (r <= 0)
			continue;
		n = wire_recv(dc->agent_fd, buf, sizeof(buf), fds, &nfds);
		for (unsigned i = 0; i < nfds; i++)
			close(fds[i]);
		if (n == -EAGAIN || n == -EINTR)
			continue;
		if (n < 0)
			return (int)n;
		if (n == 0)
			return -ENOTCONN;
		if ((size_t)n < sizeof(*h) || h->type != (UVMP_FENCE | UVMP_REPLY))
			return -EPROTO;
		if (h->seq == seq)
			return h->status;
		/* a reply to a fence that timed out earlier: skip it */
	}
}

static struct dclient *find_client(struct server *s, uint64_t id)
{
	for (struct dclient *c = s->clients; c; c = c->next)
		if (c->id == id)
			return c;
	return NULL;
}

static void dobj_drop(struct dclient *dc, struct dobj *d)
{
	for (struct dobj **pp = &dc->objs; *pp; pp = &(*pp)->next) {
		if (*pp == d) {
			*pp = d->next;
			break;
		}
	}
	free(d);
}

static bool process_alive(struct dclient *dc)
{
	struct pollfd pfd = { .fd = dc->pidfd, .events = POLLIN };

	/* a pidfd turns readable when the process exits (zombie or not) */
	return dc->pidfd >= 0 && poll(&pfd, 1, 0) == 0;
}

/* The client is gone (process exited) or let go (detach first). */
static void client_destroy(struct server *s, struct dclient *dc, bool process_alive)
{
	if (dc->ec) {
		if (process_alive)
			engine_client_detach(s->e, dc->ec);
		else
			engine_client_dead(s->e, dc->ec);
		engine_client_destroy(s->e, dc->ec);
	}
	while (dc->objs)
		dobj_drop(dc, dc->objs);
	pthread_mutex_lock(&s->lock);
	for (struct dclient **pp = &s->clients; *pp; pp = &(*pp)->next) {
		if (*pp == dc) {
			*pp = dc->next;
			break;
		}
	}
	s->nclients--;
	pthread_mutex_unlock(&s->lock);
	if (dc->pidfd >= 0) {
		epoll_ctl(s->epfd, EPOLL_CTL_DEL, dc->pidfd, NULL);
		close(dc->pidfd);
	}
	if (dc->agent_fd >= 0)
		close(dc->agent_fd);
	if (dc->ctl)
		dc->ctl->client = NULL;
	log_info("client %" PRIu64 " (pid %d) %s", dc->id, dc->pid,
		 process_alive ? "disconnected" : "exited");
	free(dc);
}

static void conn_close(struct server *s, struct conn *c)
{
	epoll_ctl(s->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	for (struct conn **pp = &s->conns; *pp; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	}
	if (c->client) {
		struct dclient *dc = c->client;

		dc->ctl = NULL;
		/* the control connection is the client's lifeline */
		client_destroy(s, dc, process_alive(dc));
	}
	free(c);
}

/* --- forks --------------------------------------------------------------- */

static void fork_rec_destroy(struct server *s, struct fork_rec *f)
{
	for (struct fork_rec **pp = &s->forks; *pp; pp = &(*pp)->next) {
		if (*pp == f) {
			*pp = f->next;
			break;
		}
	}
	for (unsigned i = 0; i < f->n; i++) {
		if (f->clones[i].o)
			engine_object_destroy(s->e, f->clones[i].o);
		if (f->clones[i].memfd >= 0)
			close(f->clones[i].memfd);
	}
	free(f->clones);
	free(f);
}

static struct fork_rec *find_fork(struct server *s, uint64_t token)
{
	for (struct fork_rec *f = s->forks; f; f = f->next)
		if (f->token == token)
			return f;
	return NULL;
}

static pid_t parent_of(pid_t pid)
{
	char path[64], line[256];
	pid_t ppid = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	f = fopen(path, "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "PPid: %d", &ppid) == 1)
			break;
	fclose(f);
	return ppid;
}

static void expire_forks(struct server *s)
{
	uint64_t now = now_ns();
	struct fork_rec *f = s->forks;

	while (f) {
		struct fork_rec *next = f->next;

		if (now - f->created > FORK_TTL_NS) {
			log_warn("fork clones of pid %d never adopted: dropped", f->parent);
			fork_rec_destroy(s, f);
		}
		f = next;
	}
}

/* --- requests ------------------------------------------------------------ */

/* Payload of the expected size, or NULL. */
static const void *payload(const struct uvmp_hdr *h, ssize_t n, size_t want)
{
	if ((size_t)n != sizeof(*h) + want || h->len != (uint32_t)n)
		return NULL;
	return h + 1;
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

static int do_hello(struct server *s, struct conn *c, const struct uvmp_hdr *h, ssize_t n)
{
	const struct uvmp_hello *p = payload(h, n, sizeof(*p));
	struct uvmp_hello_reply rep = { 0 };
	struct epoll_event ev = { .events = EPOLLIN };
	struct dclient *dc;
	uint64_t max = s->cfg->client_budget_max;
	int devfd = -1, r;

	if (!p || c->client)
		return -EPROTO;
	if ((pid_t)p->pid != c->cred.pid)
		return -EPERM;
	dc = calloc(1, sizeof(*dc));
	if (!dc)
		return -ENOMEM;
	dc->pid = c->cred.pid;
	dc->uid = c->cred.uid;
	dc->gid = c->cred.gid;
	dc->agent_fd = -1;
	dc->token = random_u64();
	dc->budget = p->budget ? p->budget : s->cfg->client_budget;
	if (max && dc->budget > max)
		dc->budget = max;
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
	r = reply(c, h, 0, &rep, sizeof(rep), &devfd, devfd >= 0);
	if (devfd >= 0)
		close(devfd);
	log_info("client %" PRIu64 ": pid %d uid %u, budget %" PRIu64 " MiB", dc->id, dc->pid,
		 dc->uid, dc->budget >> 20);
	return r < 0 ? r : 1;
}

static int do_uffd(struct server *s, struct conn *c, const struct uvmp_hdr *h, ssize_t n,
		   int *fds, unsigned nfds)
{
	struct dclient *dc = c->client;
	int r;

	if (!payload(h, n, 0) || !dc || dc->ec || nfds != 1)
		return -EPROTO;
	r = engine_client_create(s->e, dc->pid, fds[0], dc->budget, fence_cb, dc, &dc->ec);
	if (r < 0)
		return r;
	fds[0] = -1;   /* the engine owns it now */
	return 0;
}

static int do_agent(struct server *s, struct conn *c, const struct uvmp_hdr *h, ssize_t n)
{
	const struct uvmp_agent *p = payload(h, n, sizeof(*p));
	struct dclient *dc;
	struct timeval tv = { .tv_sec = 0, .tv_usec = 0 };
	int r;

	if (!p || c->client)
		return -EPROTO;
	dc = find_client(s, p->client_id);
	if (!dc || dc->token != p->agent_token || dc->pid != c->cred.pid || dc->agent_fd >= 0)
		return -EPERM;
	r = reply(c, h, 0, NULL, 0, NULL, 0);
	if (r < 0)
		return r;
	/* from now on this socket belongs to the fence callback */
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
	if ((type == ENGINE_OBJ_ANON) != (nfds == 1) || p->offset)
		return -EINVAL;
	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	r = engine_object_attach(s->e, dc->ec, type, fds[0], nfds > 1 ? fds[1] : -1,
				 (uintptr_t)p->addr, (size_t)p->len, p->budget, &d->o);
	if (r < 0) {
		free(d);
		return r;
	}
	d->id = engine_object_id(d->o);
	d->addr = (uintptr_t)p->addr;
	d->len = (size_t)p->len;
	d->type = p->type;
	d->prot = p->prot;
	d->next = dc->objs;
	dc->objs = d;
	rep.object_id = d->id;
	log_debug("client %" PRIu64 ": object %" PRIu64 " at %#" PRIxPTR " +%zu MiB",
		  dc->id, d->id, d->addr, d->len >> 20);
	return reply(c, h, 0, &rep, sizeof(rep), NULL, 0) < 0 ? -EPIPE : 1;
}

/* Apply fn to the overlap of [addr, addr + len) with each of the client's objects. */
static int for_range(struct server *s, struct dclient *dc, uint64_t addr, uint64_t len,
		     bool unmap)
{
	int r = 0;

	if (addr % PAGE_SIZE || len % PAGE_SIZE || addr + len < addr)
		return -EINVAL;
	for (struct dobj *d = dc->objs, *next; d; d = next) {
		uint64_t lo = MAX(addr, d->addr), hi = MIN(addr + len, d->addr + d->len);

		next = d->next;
		if (lo >= hi)
			continue;
		if (unmap && lo == d->addr && hi == d->addr + d->len) {
			engine_object_destroy(s->e, d->o);
			dobj_drop(dc, d);
			continue;
		}
		r = engine_object_release(s->e, d->o, lo - d->addr, hi - lo);
		if (r < 0)
			break;
	}
	return r;
}

static int do_range(struct server *s, struct conn *c, const struct uvmp_hdr *h, ssize_t n,
		    bool unmap)
{
	const struct uvmp_range *p = payload(h, n, sizeof(*p));

	if (!p || !c->client)
		return -EPROTO;
	return for_range(s, c->client, p->addr, p->len, unmap);
}

static int do_remap(struct server *s, struct conn *c, const struct uvmp_hdr *h, ssize_t n)
{
	const struct uvmp_remap *p = payload(h, n, sizeof(*p));

	if (!p || !c->client)
		return -EPROTO;
	for (struct dobj *d = c->client->objs; d; d = d->next) {
		if (d->addr != p->old_addr)
			continue;
		if (d->len != p->old_len || p->new_len != p->old_len)
			return -EOPNOTSUPP;   /* the shim resizes within its segments */
		d->addr = (uintptr_t)p->new_addr;
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
	return reply(c, h, 0, &rep, sizeof(rep), NULL, 0) < 0 ? -EPIPE : 1;
}

static int do_budget(struct server *s, struct conn *c, const struct uvmp_hdr *h, ssize_t n)
{
	const struct uvmp_budget *p = payload(h, n, sizeof(*p));
	uint64_t max = s->cfg->client_budget_max;
	struct dclient *dc = c->client;
	struct dobj *d;

	if (!p || !dc || !dc->ec)
		return -EPROTO;
	if (!p->object_id) {
		dc->budget = max && p->bytes > max ? max : p->bytes;
		return engine_client_set_budget(s->e, dc->ec, dc->budget);
	}
	d = find_obj_id(s, c, p->object_id);
	if (!d)
		return -ENOENT;
	return engine_set_budget(s->e, d->o, p->bytes);
}

static int do_fork_prepare(struct server *s, struct conn *c, const struct uvmp_hdr *h,
			   ssize_t n)
{
	struct dclient *dc = c->client;
	struct uvmp_fork_reply rep = { 0 };
	struct fork_rec *f;
	unsigned count = 0, i = 0;

	if (!payload(h, n, 0) || !dc || !dc->ec)
		return -EPROTO;
	for (struct dobj *d = dc->objs; d; d = d->next)
		count++;
	f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	f->clones = calloc(count ? count : 1, sizeof(*f->clones));
	if (!f->clones) {
		free(f);
		return -ENOMEM;
	}
	f->token = random_u64();
	f->parent = dc->pid;
	f->uid = dc->uid;
	f->created = now_ns();
	f->next = s->forks;
	s->forks = f;
	for (struct dobj *d = dc->objs; d; d = d->next, i++) {
		struct fork_clone *fc = &f->clones[i];
		int r;

		fc->memfd = -1;
		f->n = i + 1;
		r = engine_object_clone(s->e, d->o, &fc->o, &fc->memfd);
		if (r < 0) {
			fork_rec_destroy(s, f);
			return r;
		}
		fc->region = (struct uvmp_region){ .addr = d->addr, .len = d->len,
						   .object_id = engine_object_id(fc->o),
						   .type = d->type, .prot = d->prot };
	}
	f->n = count;
	rep.token = f->token;
	rep.nregions = count;
	return reply(c, h, 0, &rep, sizeof(rep), NULL, 0) < 0 ? -EPIPE : 1;
}

static int do_fork_done(struct server *s, struct conn *c, const struct uvmp_hdr *h, ssize_t n)
{
	const struct uvmp_fork_done *p = payload(h, n, sizeof(*p));
	struct fork_rec *f;

	if (!p || !c->client)
		return -EPROTO;
	f = find_fork(s, p->token);
	if (!f || f->parent != c->client->pid)
		return -ENOENT;
	if (p->child_pid <= 0)
		fork_rec_destroy(s, f);
	else
		f->child = p->child_pid;
	return 0;
}

/* Only the parent's child (as the kernel sees it) may take the clones. */
static struct fork_rec *fork_for(struct server *s, struct conn *c, uint64_t token)
{
	struct fork_rec *f = find_fork(s, token);

	if (!f || f->uid != c->cred.uid)
		return NULL;
	if (f->child ? f->child != c->cred.pid : parent_of(c->cred.pid) != f->parent)
		return NULL;
	return f;
}

static int do_adopt(struct server *s, struct conn *c, const struct uvmp_hdr *h, ssize_t n)
{
	const struct uvmp_adopt *p = payload(h, n, sizeof(*p));
	struct uvmp_adopt_reply rep = { 0 };
	int fds[UVMP_MAX_FDS];
	struct fork_rec *f;

	if (!p || !c->client || !c->client->ec)
		return -EPROTO;
	f = fork_for(s, c, p->token);
	if (!f)
		return -EPERM;
	rep.total = f->n;
	for (unsigned i = p->start; i < f->n && rep.n < UVMP_MAX_FDS; i++) {
		rep.regions[rep.n] = f->clones[i].region;
		fds[rep.n++] = f->clones[i].memfd;
	}
	return reply(c, h, 0, &rep, sizeof(rep), fds, rep.n) < 0 ? -EPIPE : 1;
}

static int do_adopt_done(struct server *s, struct conn *c, const struct uvmp_hdr *h, ssize_t n)
{
	const struct uvmp_adopt_done *p = payload(h, n, sizeof(*p));
	struct dclient *dc = c->client;
	struct fork_rec *f;
	int r = 0;

	if (!p || !dc || !dc->ec)
		return -EPROTO;
	f = fork_for(s, c, p->token);
	if (!f)
		return -EPERM;
	for (unsigned i = 0; i < f->n; i++) {
		struct fork_clone *fc = &f->clones[i];
		struct dobj *d = calloc(1, sizeof(*d));

		if (!d) {
			r = -ENOMEM;
			break;
		}
		r = engine_object_adopt(s->e, fc->o, dc->ec, (uintptr_t)fc->region.addr);
		if (r < 0) {
			free(d);
			break;
		}
		d->o = fc->o;
		d->id = fc->region.object_id;
		d->addr = (uintptr_t)fc->region.addr;
		d->len = (size_t)fc->region.len;
		d->type = fc->region.type;
		d->prot = fc->region.prot;
		d->next = dc->objs;
		dc->objs = d;
		fc->o = NULL;
	}
	fork_rec_destroy(s, f);
	return r;
}

/* Returns 1 when the request sent its own reply, 2 when c was handed over. */
static int dispatch(struct server *s, struct conn *c, const struct uvmp_hdr *h, ssize_t n,
		    int *fds, unsigned nfds)
{
	if ((size_t)n < sizeof(*h) || h->len != (uint32_t)n || h->version != UVMP_PROTO_VERSION)
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

static bool conn_readable(struct server *s, struct conn *c)
{
	char buf[UVMP_MAX_MSG];
	struct uvmp_hdr *h = (struct uvmp_hdr *)buf;
	int fds[UVMP_MAX_FDS];
	unsigned nfds;
	ssize_t n;
	int r;

	n = wire_recv(c->fd, buf, sizeof(buf), fds, &nfds);
	if (n == -EAGAIN || n == -EINTR)
		return false;
	if (n <= 0) {
		for (unsigned i = 0; i < nfds; i++)
			close(fds[i]);
		if (n < 0 && n != -ECONNRESET)
			log_debug("connection of pid %d: %s", c->cred.pid, strerror((int)-n));
		conn_close(s, c);
		return true;
	}
	r = n == -EMSGSIZE ? -EPROTO : dispatch(s, c, h, n, fds, nfds);
	for (unsigned i = 0; i < nfds; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	if (r == 2) {
		/* the agent connection left the loop: forget it without closing */
		for (struct conn **pp = &s->conns; *pp; pp = &(*pp)->next) {
			if (*pp == c) {
				*pp = c->next;
				break;
			}
		}
		free(c);
		return false;
	}
	if (r == 1)
		return false;
	if ((size_t)n >= sizeof(*h))
		reply(c, h, r, NULL, 0, NULL, 0);
	if (r == -EPROTO) {
		/* malformed: say so, then hang up; everyone else goes on */
		log_warn("pid %d sent a malformed message (type %u, %zd bytes): closing",
			 c->cred.pid, (size_t)n >= sizeof(*h) ? h->type : 0, n);
		conn_close(s, c);
		return true;
	}
	return false;
}

static void accept_conn(struct server *s)
{
	struct epoll_event ev = { .events = EPOLLIN };
	socklen_t len = sizeof(struct ucred);
	struct conn *c;
	int fd;

	fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (fd < 0)
		return;
	c = calloc(1, sizeof(*c));
	if (!c || getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &c->cred, &len) < 0) {
		free(c);
		close(fd);
		return;
	}
	c->fd = fd;
	c->watch = (struct watch){ W_CONN, c };
	ev.data.ptr = &c->watch;
	if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		free(c);
		close(fd);
		return;
	}
	c->next = s->conns;
	s->conns = c;
}

/* --- setup and loop ------------------------------------------------------- */

static int make_socket(const struct daemon_config *cfg)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char dir[sizeof(sa.sun_path)];
	unsigned mode = cfg->socket_mode;
	gid_t gid = 0;
	char *slash;
	int fd;

	if (strlen(cfg->socket) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, cfg->socket);
	strcpy(dir, cfg->socket);
	slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = '\0';
		mkdir(dir, 0755);
	}
	if (cfg->socket_group) {
		struct group *g = getgrnam(cfg->socket_group);

		if (!g) {
			log_err("socket group '%s' does not exist", cfg->socket_group);
			return -EINVAL;
		}
		gid = g->gr_gid;
	} else {
		struct group *g = getgrnam("uvmpager");

		if (g)
			gid = g->gr_gid;
	}
	if (!mode)
		mode = gid ? 0660 : 0600;
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	unlink(sa.sun_path);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    chmod(sa.sun_path, mode) < 0 || (gid && chown(sa.sun_path, 0, gid) < 0) ||
	    listen(fd, 64) < 0) {
		int r = -errno;

		close(fd);
		return r;
	}
	return fd;
}

int server_create(struct engine *e, const struct daemon_config *cfg, struct server **out)
{
	struct epoll_event ev = { .events = EPOLLIN };
	struct server *s;
	sigset_t set;
	int r;

	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->e = e;
	s->cfg = cfg;
	s->listen_fd = s->sig_fd = -1;
	pthread_mutex_init(&s->lock, NULL);
	s->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (s->epfd < 0) {
		r = -errno;
		goto fail;
	}
	r = make_socket(cfg);
	if (r < 0) {
		log_err("control socket %s: %s", cfg->socket, strerror(-r));
		goto fail;
	}
	s->listen_fd = r;
	s->listen_watch = (struct watch){ W_LISTEN, s };
	ev.data.ptr = &s->listen_watch;
	epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->listen_fd, &ev);

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	/* main blocked them before the engine's threads started */
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	s->sig_fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (s->sig_fd < 0) {
		r = -errno;
		goto fail;
	}
	s->sig_watch = (struct watch){ W_SIGNAL, s };
	ev.data.ptr = &s->sig_watch;
	epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->sig_fd, &ev);
	*out = s;
	return 0;

fail:
	server_destroy(s);
	return r;
}

/*
 * Let every client go without losing a byte: their swapped pages come
 * back into memory and their ranges are unregistered, so they carry on
 * with plain shared memory.
 */
static void release_all(struct server *s)
{
	while (s->forks)
		fork_rec_destroy(s, s->forks);
	while (s->clients) {
		struct dclient *dc = s->clients;
		bool alive = process_alive(dc);

		if (dc->ctl) {
			struct conn *c = dc->ctl;

			dc->ctl = NULL;
			c->client = NULL;
			conn_close(s, c);
		}
		client_destroy(s, dc, alive);
	}
	while (s->conns)
		conn_close(s, s->conns);
}

void server_destroy(struct server *s)
{
	if (!s)
		return;
	release_all(s);
	if (s->listen_fd >= 0) {
		close(s->listen_fd);
		unlink(s->cfg->socket);
	}
	if (s->sig_fd >= 0)
		close(s->sig_fd);
	if (s->epfd >= 0)
		close(s->epfd);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

int server_run(struct server *s)
{
	struct epoll_event evs[32];

	for (;;) {
		int n = epoll_wait(s->epfd, evs, ARRAY_SIZE(evs), 1000);

		if (n < 0 && errno != EINTR)
			return -errno;
		for (int i = 0; i < n; i++) {
			struct watch *w = evs[i].data.ptr;

			switch (w->kind) {
			case W_LISTEN:
				accept_conn(s);
				break;
			case W_CONN:
				/* a closed connection may free watches later in the batch */
				if (conn_readable(s, w->ptr))
					goto next_round;
				break;
			case W_PIDFD: {
				struct dclient *dc = w->ptr;

				if (dc->ctl) {
					struct conn *c = dc->ctl;

					dc->ctl = NULL;
					c->client = NULL;
					conn_close(s, c);
				}
				client_destroy(s, dc, false);
				/* the rest of this batch may name freed watches */
				goto next_round;
			}
			case W_SIGNAL: {
				struct signalfd_siginfo si;

				if (read(s->sig_fd, &si, sizeof(si)) != sizeof(si))
					break;
				if (si.ssi_signo == SIGHUP)
					break;
				log_info("signal %u: letting %u clients go", si.ssi_signo,
					 s->nclients);
				release_all(s);
				return 0;
			}
			}
		}
next_round:
		expire_forks(s);
	}
}

unsigned server_client_count(struct server *s)
{
	unsigned n;

	pthread_mutex_lock(&s->lock);
	n = s->nclients;
	pthread_mutex_unlock(&s->lock);
	return n;
}

void server_print_clients(struct server *s, FILE *f)
{
	pthread_mutex_lock(&s->lock);
	for (struct dclient *dc = s->clients; dc; dc = dc->next)
		fprintf(f, "%" PRIu64 " pid %d uid %u budget %" PRIu64 "\n", dc->id, dc->pid,
			dc->uid, dc->budget);
	pthread_mutex_unlock(&s->lock);
}
