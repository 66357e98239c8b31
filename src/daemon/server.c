/*
 * The control server (see include/uvmpager/protocol.h for the protocol).
 *
 * One thread: an epoll loop over the listening socket, every control
 * connection, each client's pidfd and a signalfd. Requests are answered
 * in order; a malformed one gets -EPROTO and its connection is closed.
 * The agent connections are not polled: the daemon says nothing on them,
 * and a client's agent learns of the daemon's end by theirs.
 */
#include <errno.h>
#include <fcntl.h>
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
#include "daemon/notify.h"
#include "daemon/server_impl.h"
#include "daemon/wire.h"
#include "engine.h"
#include "uvmpager/protocol.h"


uint64_t srv_random_u64(void)
{
	uint64_t v = 0;

	if (getrandom(&v, sizeof(v), 0) != sizeof(v))
		v = now_ns() ^ ((uint64_t)getpid() << 32);
	return v;
}

int srv_reply(struct conn *c, const struct uvmp_hdr *req, int32_t status,
		 const void *payload, size_t plen, const int *fds, unsigned nfds)
{
	return wire_send(c->fd, req->type | UVMP_REPLY, req->seq, status,
			status < 0 ? NULL : payload, status < 0 ? 0 : plen, fds, nfds);
}

/* --- clients ------------------------------------------------------------- */

void server_set_user_limits(struct server *s, unsigned clients, unsigned objects)
{
	s->max_clients_per_user = clients;
	s->max_objects_per_user = objects;
}

/*
 * Whether uid may have one more client (objects false) or object (true):
 * -EDQUOT, logged, when its limit is reached. Root has none: it is the
 * administrator, and the daemon's own user. Server thread.
 */
int srv_user_room(struct server *s, uid_t uid, pid_t pid, bool objects)
{
	unsigned max = objects ? s->max_objects_per_user : s->max_clients_per_user, n = 0;

	if (!uid || !max)
		return 0;
	pthread_mutex_lock(&s->lock);
	for (const struct dclient *dc = s->clients; dc; dc = dc->next)
		if (dc->uid == uid)
			n += objects ? dc->nobjs : 1;
	pthread_mutex_unlock(&s->lock);
	if (n < max)
		return 0;
	log_warn("uid %u has %u %s, its max-%s-per-user: pid %d refused one more", (unsigned)uid, n,
		 objects ? "objects" : "programs connected", objects ? "objects" : "clients", (int)pid);
	return -EDQUOT;
}

struct dclient *srv_find_client(struct server *s, uint64_t id)
{
	for (struct dclient *c = s->clients; c; c = c->next)
		if (c->id == id)
			return c;
	return NULL;
}

void srv_dobj_link(struct server *s, struct dclient *dc, struct dobj *d)
{
	d->created = time(NULL);
	pthread_mutex_lock(&s->lock);
	d->next = dc->objs;
	dc->objs = d;
	dc->nobjs++;
	pthread_mutex_unlock(&s->lock);
}

void srv_dobj_unlink(struct server *s, struct dclient *dc, struct dobj *d)
{
	pthread_mutex_lock(&s->lock);
	for (struct dobj **pp = &dc->objs; *pp; pp = &(*pp)->next) {
		if (*pp == d) {
			*pp = d->next;
			dc->nobjs--;
			break;
		}
	}
	pthread_mutex_unlock(&s->lock);
}

void srv_dobj_drop(struct server *s, struct dclient *dc, struct dobj *d)
{
	srv_dobj_unlink(s, dc, d);
	free(d->path);
	free(d);
}

/* The client's object the engine's object `id` was part of, or NULL. Server thread. */
static struct dobj *dobj_by_engine_id(struct dclient *dc, uint64_t id)
{
	for (struct dobj *d = dc->objs; d; d = d->next)
		if (engine_object_id(d->o) == id)
			return d;
	return NULL;
}

void srv_objects_sync(struct server *s, struct dclient *dc)
{
	struct uobj *made[16];
	uint64_t origin[16];
	size_t n;

	if (!dc->ec)
		return;
	for (struct dobj *d = dc->objs, *next; d; d = next) {
		next = d->next;
		if (!d->split || engine_object_live(s->e, d->o, 0, d->len))
			continue;
		srv_dobj_unlink(s, dc, d);
		engine_object_destroy(s->e, d->o);
		srv_dobj_drop(s, dc, d);
	}
	while ((n = engine_client_new_objects(s->e, dc->ec, made, origin, ARRAY_SIZE(made)))) {
		for (size_t i = 0; i < n; i++) {
			const struct dobj *from = dobj_by_engine_id(dc, origin[i]);
			struct dobj *d = calloc(1, sizeof(*d));

			/* the engine destroys it with its client */
			if (!d) {
				log_warn("pid %d: no memory to list object %" PRIu64 " (moved by a raw "
					 "mremap): fork children will not have it", dc->pid,
					 engine_object_id(made[i]));
				continue;
			}
			d->o = made[i];
			d->id = engine_object_id(made[i]);
			d->addr = engine_object_addr(made[i]);
			d->len = engine_object_size(made[i]);
			d->type = from ? from->type : UVMP_OBJ_ANON;
			d->prot = from ? from->prot : PROT_READ | PROT_WRITE;
			d->path = from && from->path ? strdup(from->path) : NULL;
			d->split = true;
			srv_dobj_link(s, dc, d);
			log_debug("client %" PRIu64 ": object %" PRIu64 " at %#" PRIxPTR " +%zu KiB, "
				  "moved out of object %" PRIu64 " by a raw mremap", dc->id, d->id,
				  d->addr, d->len >> 10, origin[i]);
		}
	}
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
	/*
	 * Out of the list first: the filesystem reaches a client's engine
	 * objects only through it, under the lock, so none of them is in
	 * its hands once this returns.
	 */
	pthread_mutex_lock(&s->lock);
	for (struct dclient **pp = &s->clients; *pp; pp = &(*pp)->next) {
		if (*pp == dc) {
			*pp = dc->next;
			break;
		}
	}
	s->nclients--;
	pthread_mutex_unlock(&s->lock);
	if (dc->ec) {
		if (process_alive)
			engine_client_detach(s->e, dc->ec);
		else
			engine_client_dead(s->e, dc->ec);
		engine_client_destroy(s->e, dc->ec);
	}
	while (dc->objs)
		srv_dobj_drop(s, dc, dc->objs);
	if (dc->pidfd >= 0) {
		epoll_ctl(s->epfd, EPOLL_CTL_DEL, dc->pidfd, NULL);
		close(dc->pidfd);
	}
	if (dc->agent_fd >= 0)
		close(dc->agent_fd);
	if (dc->ctl)
		dc->ctl->client = NULL;
	log_debug("client %" PRIu64 " (pid %d) %s", dc->id, dc->pid,
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
		/*
		 * The control connection is the client's lifeline. An exiting
		 * or exec'ing process closes it with its address space already
		 * gone: then there is nothing to hand back.
		 */
		client_destroy(s, dc, process_alive(dc) &&
			       (!dc->ec || engine_client_mm_alive(s->e, dc->ec)));
	}
	free(c);
}

static bool conn_readable(struct server *s, struct conn *c)
{
	char buf[UVMP_MAX_MSG];
	struct uvmp_hdr *h = (struct uvmp_hdr *)buf;
	int fds[UVMP_MAX_FDS];
	unsigned nfds;
	ssize_t n;
	int r;

	h->len = 0;
	h->seq = 0;
	n = wire_recv(c->fd, buf, sizeof(buf), fds, &nfds);
	if (n == -EAGAIN || n == -EINTR)
		return false;
	if (n == -EMSGSIZE) {
		/* too long, or too many fds: say so (with its seq if it had one), then hang up */
		for (unsigned i = 0; i < nfds; i++)
			close(fds[i]);
		log_warn("pid %d sent an oversized message (or more than %d fds): closing",
			 c->cred.pid, UVMP_MAX_FDS);
		srv_reply(c, h, -EMSGSIZE, NULL, 0, NULL, 0);
		conn_close(s, c);
		return true;
	}
	if (n <= 0) {
		for (unsigned i = 0; i < nfds; i++)
			close(fds[i]);
		if (n < 0 && n != -ECONNRESET)
			log_debug("connection of pid %d: %s", c->cred.pid, strerror((int)-n));
		conn_close(s, c);
		return true;
	}
	r = srv_dispatch(s, c, h, n, fds, nfds);
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
		srv_reply(c, h, r, NULL, 0, NULL, 0);
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

/*
 * The socket's directory exists (instance_lock made it) and the group was
 * resolved with the rest of the settings; the lock makes the unlink of a
 * leftover socket safe: no live daemon owns it.
 */
static int make_socket(const struct daemon_config *cfg)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	unsigned mode = cfg->socket_mode;
	gid_t gid = cfg->socket_gid;
	int fd;

	if (strlen(cfg->socket) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, cfg->socket);
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
	s->client_budget_max = cfg->client_budget_max;
	s->max_clients_per_user = cfg->max_clients_per_user;
	s->max_objects_per_user = cfg->max_objects_per_user;
	s->started = time(NULL);
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
		forks_destroy(s, s->forks);
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

/*
 * SIGHUP: the config file's live settings (config_apply_live) are
 * applied by the rules their files in the mount follow: a file that does
 * not parse, or a value the engine refuses, changes nothing. Settings the file leaves out keep their values; the
 * others (swap file, socket, ...) take a restart.
 */
static void reload(struct server *s)
{
	struct daemon_config nc;
	const char *what;
	int r;

	notify_send("RELOADING=1");
	r = config_reload(s->cfg->config, &nc);
	if (r < 0) {
		log_err("SIGHUP: %s not reloaded: nothing changed", s->cfg->config);
		goto out;
	}
	if (config_apply_live(&nc, s->e, s, &what) < 0) {
		log_err("SIGHUP: %s: %s refused: nothing changed", s->cfg->config, what);
		goto out;
	}
	log_info("SIGHUP: %s reloaded", s->cfg->config);
out:
	/* a refused file leaves the daemon as it was: ready, with the old settings */
	notify_send("READY=1");
	config_free(&nc);
}

int server_run(struct server *s, void (*tick)(void *arg), void *arg)
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
				if (si.ssi_signo == SIGHUP) {
					reload(s);
					break;
				}
				log_info("signal %u: letting %u clients go", si.ssi_signo,
					 s->nclients);
				/* handing every page back can take a while: say why */
				notify_send("STOPPING=1\nSTATUS=stopping: handing every page back to its client");
				release_all(s);
				return 0;
			}
			}
		}
next_round:
		forks_expire(s);
		if (now_ns() - s->objects_synced > 250 * 1000000ULL) {
			for (struct dclient *dc = s->clients; dc; dc = dc->next)
				srv_objects_sync(s, dc);
			s->objects_synced = now_ns();
		}
		if (tick)
			tick(arg);
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
