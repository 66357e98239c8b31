/*
 * libFuzzer target: every request's payload decoding and checks, past the
 * header (src/daemon/requests.c, forks.c, through srv_dispatch), with the
 * daemon's own server code (server.c: replies, limits, object lists) and
 * an engine stub that checks what the daemon must have checked before it
 * calls the engine (stub_engine.c). Per input:
 *
 *   byte 0   the attacker's state before the messages: bit 0 HELLO done,
 *            bit 1 then UFFD, bit 2 then one object of its own mapped;
 *            bit 3: the userfaultfd it sent is another process's (its
 *            registrations never show in its own address space: every
 *            MAP and adoption must be refused, and undone)
 *   then     up to 16 messages, each [fds][len lo][len hi][len bytes]:
 *            fds & 7 picks what rides along (none, a sealable memfd of a
 *            size from fds >> 3 & 3, memfd + file, a pipe, an unsealable
 *            memfd, two pipes, three fds, a memfd too small); fds & 0x80
 *            on a HELLO puts our own pid in it (the daemon wants the
 *            sender's); fds & 0x40 on FORK_DONE, ADOPT, ADOPT_DONE puts
 *            the latest fork token in, fds & 0x20 on FORK_DONE our pid as
 *            the child's (what a real client learns from the replies),
 *            fds & 0x20 on ADOPT, ADOPT_DONE makes us the child of the
 *            latest fork's parent (the harness has no second process)
 *
 * The attacker is uid 1001; a victim client of uid 1000 holds two objects
 * all along. Invariants: no crash or sanitizer report; the stub engine
 * never sees the victim's objects touched, an unsealed memfd attached,
 * two objects of one client over one range, a release outside its
 * object; every request gets exactly one reply (or a handed-over
 * connection), with its seq; the victim's objects are all still there
 * and unchanged afterwards; nothing leaks (LeakSanitizer, fds).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "daemon/config.h"
#include "daemon/log.h"
#include "daemon/server_impl.h"
#include "daemon/uffdowner.h"
#include "daemon/wire.h"
#include "stub_engine.h"

#define VICTIM_UID 1000
#define ATTACKER_UID 1001
#define VICTIM_ADDR 0x7f0000000000ULL
#define OWN_ADDR 0x600000000000ULL
#define MAX_MSGS 16

static struct daemon_config cfg;
static struct server srv;

/* server.c's calls into config.c and notify.c: never reached here */
int config_reload(const char *path, struct daemon_config *out)
{
	(void)path, (void)out;
	return -ENOSYS;
}

int config_apply_live(const struct daemon_config *cfg_, struct engine *e, struct server *s,
		      const char **what)
{
	(void)cfg_, (void)s, (void)e, (void)what;
	return 0;
}

void config_free(struct daemon_config *c)
{
	(void)c;
}

void notify_send(const char *msg)
{
	(void)msg;
}

int vma_uffd_registered(pid_t pid, uint64_t addr)
{
	return stub_vma_registered(pid, addr);
}

static void setup(void)
{
	if (srv.cfg)
		return;
	cfg.client_budget = 64 << 20;
	cfg.min_size = 1 << 20;
	srv.cfg = &cfg;
	srv.client_budget_max = 1ULL << 30;
	srv.max_clients_per_user = 4;
	srv.max_objects_per_user = 8;
	srv.listen_fd = srv.sig_fd = -1;
	srv.epfd = epoll_create1(EPOLL_CLOEXEC);
	if (srv.epfd < 0 || pthread_mutex_init(&srv.lock, NULL))
		abort();
	/* a warning per refused request would be most of the time spent */
	log_set_level(LOG_ERR);
}

/* The victim: uid 1000, two objects, as if it had mapped them itself. */
static struct dclient *victim_new(void)
{
	struct dclient *dc = calloc(1, sizeof(*dc));

	if (!dc)
		abort();
	dc->id = ++srv.next_client_id;
	dc->pid = 1;
	dc->uid = dc->gid = VICTIM_UID;
	dc->pidfd = dc->agent_fd = -1;
	dc->token = 0x1234;
	dc->ec = stub_client_new(1);
	dc->uffd_owned = true;
	for (int i = 0; i < 2; i++) {
		struct dobj *d = calloc(1, sizeof(*d));

		if (!d)
			abort();
		d->len = 1 << 20;
		d->addr = VICTIM_ADDR + (uint64_t)i * (4 << 20);
		d->o = stub_object_new(dc->ec, d->addr, d->len);
		d->id = engine_object_id(d->o);
		srv_dobj_link(&srv, dc, d);
	}
	dc->next = srv.clients;
	srv.clients = dc;
	srv.nclients++;
	return dc;
}

static void victim_check(const struct dclient *dc)
{
	unsigned n = 0;

	for (const struct dobj *d = dc->objs; d; d = d->next, n++)
		if (engine_object_addr(d->o) != d->addr || engine_object_size(d->o) != d->len)
			abort();
	if (n != 2 || dc->nobjs != 2)
		abort();
}

static int sealable_memfd(off_t size)
{
	int fd = memfd_create("fuzz", MFD_CLOEXEC | MFD_ALLOW_SEALING);

	if (fd < 0 || ftruncate(fd, size) < 0)
		abort();
	return fd;
}

/* The fds a message carries, by spec; returns how many. */
static unsigned make_fds(uint8_t spec, int *fds)
{
	static const off_t sizes[4] = { 4096, 65536, 1 << 20, 1LL << 32 };
	off_t size = sizes[(spec >> 3) & 3];
	int p[2];

	switch (spec & 7) {
	case 1:
		fds[0] = sealable_memfd(size);
		return 1;
	case 2:
		fds[0] = sealable_memfd(size);
		fds[1] = sealable_memfd(size);
		return 2;
	case 3:
		if (pipe2(p, O_CLOEXEC) < 0)
			abort();
		close(p[1]);
		fds[0] = p[0];
		return 1;
	case 4:
		fds[0] = memfd_create("unsealable", MFD_CLOEXEC);
		if (fds[0] < 0 || ftruncate(fds[0], size) < 0)
			abort();
		return 1;
	case 5:
		if (pipe2(p, O_CLOEXEC) < 0)
			abort();
		fds[0] = p[0];
		fds[1] = p[1];
		return 2;
	case 6:
		fds[0] = sealable_memfd(size);
		fds[1] = sealable_memfd(size);
		fds[2] = sealable_memfd(size);
		return 3;
	case 7:
		fds[0] = sealable_memfd(4096);
		return 1;
	default:
		return 0;
	}
}

/* Every reply waiting: each a whole header, a reply, of this seq; how many. */
static unsigned drain_replies(int fd, uint32_t seq)
{
	unsigned n = 0;

	for (;;) {
		char buf[UVMP_MAX_MSG];
		int fds[UVMP_MAX_FDS];
		unsigned nfds;
		ssize_t len = wire_recv(fd, buf, sizeof(buf), fds, &nfds);
		struct uvmp_hdr h;

		for (unsigned i = 0; i < nfds; i++)
			close(fds[i]);
		if (len == -EAGAIN)
			return n;
		if (len < (ssize_t)sizeof(h))
			abort();
		memcpy(&h, buf, sizeof(h));
		if (!(h.type & UVMP_REPLY) || h.len != (uint32_t)len || h.seq != seq ||
		    h.status > 0)
			abort();
		n++;
	}
}

/* The daemon's request loop (server.c conn_readable) for one datagram. */
static int one_request(struct conn *c, int peer, const uint8_t *msg, size_t len, uint8_t spec)
{
	char buf[UVMP_MAX_MSG];
	struct uvmp_hdr *h = (struct uvmp_hdr *)buf;
	int fds[UVMP_MAX_FDS];
	unsigned nfds;
	uint32_t seq = 0;
	int r;

	memset(buf, 0, sizeof(struct uvmp_hdr));
	memcpy(buf, msg, len);
	if (len >= sizeof(*h) + sizeof(struct uvmp_hello) && h->type == UVMP_HELLO &&
	    (spec & 0x80)) {
		uint32_t pid = (uint32_t)getpid();

		memcpy(buf + sizeof(*h), &pid, sizeof(pid));
	}
	/*
	 * What the fuzzer cannot guess: the fork token the daemon drew at
	 * random (a real client reads it in the reply), and our pid as a
	 * fork's child.
	 */
	if ((spec & 0x40) && srv.forks && len >= sizeof(*h) + sizeof(uint64_t) &&
	    (h->type == UVMP_FORK_DONE || h->type == UVMP_ADOPT || h->type == UVMP_ADOPT_DONE))
		memcpy(buf + sizeof(*h), &srv.forks->token, sizeof(uint64_t));
	if ((spec & 0x20) && h->type == UVMP_FORK_DONE &&
	    len >= sizeof(*h) + sizeof(struct uvmp_fork_done)) {
		int32_t pid = getpid();

		memcpy(buf + sizeof(*h) + offsetof(struct uvmp_fork_done, child_pid), &pid,
		       sizeof(pid));
	}
	/* fds & 0x20 on ADOPT, ADOPT_DONE: we act as the forking process's child */
	if ((spec & 0x20) && srv.forks && len >= sizeof(*h) &&
	    (h->type == UVMP_ADOPT || h->type == UVMP_ADOPT_DONE) && !srv.forks->child)
		srv.forks->parent = getppid();
	if (len >= sizeof(*h))
		seq = h->seq;
	nfds = make_fds(spec, fds);
	fuzz_actor = c->client ? c->client->ec : NULL;
	r = srv_dispatch(&srv, c, h, (ssize_t)len, fds, nfds);
	fuzz_actor = NULL;
	for (unsigned i = 0; i < nfds; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	if (r == 2)
		return r;   /* the agent connection: handed over, no reply */
	if (r != 1 && r > 0)
		abort();
	/* as server.c: a datagram too short for a header gets no reply, just a hang-up */
	if (r <= 0 && len >= sizeof(*h) && srv_reply(c, h, r, NULL, 0, NULL, 0) < 0)
		abort();
	if (drain_replies(peer, seq) != (r == 1 || len >= sizeof(*h)))
		abort();
	return r;
}

static void request(struct conn *c, int peer, uint16_t type, const void *p, size_t plen,
		    uint8_t spec, int want)
{
	char buf[UVMP_MAX_MSG];
	struct uvmp_hdr h = { .len = (uint32_t)(sizeof(h) + plen), .type = type,
			      .version = UVMP_PROTO_VERSION, .seq = 99 };

	memcpy(buf, &h, sizeof(h));
	if (plen)
		memcpy(buf + sizeof(h), p, plen);
	if (one_request(c, peer, (const uint8_t *)buf, sizeof(h) + plen, spec) != want)
		abort();
}

/* The attacker's state before the fuzzed messages, by bits of mode. */
static void attacker_prepare(struct conn *c, int peer, uint8_t mode)
{
	struct uvmp_hello hello = { .pid = (uint32_t)getpid() };
	struct uvmp_map map = { .addr = OWN_ADDR, .len = 65536, .type = UVMP_OBJ_ANON };

	if (!(mode & 1))
		return;
	request(c, peer, UVMP_HELLO, &hello, sizeof(hello), 0, 1);
	if (!(mode & 2))
		return;
	request(c, peer, UVMP_UFFD, NULL, 0, 3, 1);   /* a pipe stands for the uffd */
	if (mode & 4)
		request(c, peer, UVMP_MAP, &map, sizeof(map), 1 | 1 << 3,
			stub_foreign_uffd ? -EBADF : 1);
}

/* The daemon's end of things: every client and fork record goes. */
static void teardown(struct conn *c)
{
	while (srv.forks)
		forks_destroy(&srv, srv.forks);
	while (srv.clients) {
		struct dclient *dc = srv.clients;

		srv.clients = dc->next;
		while (dc->objs)
			srv_dobj_drop(&srv, dc, dc->objs);
		if (dc->pidfd >= 0) {
			epoll_ctl(srv.epfd, EPOLL_CTL_DEL, dc->pidfd, NULL);
			close(dc->pidfd);
		}
		if (dc->agent_fd >= 0 && dc->agent_fd != c->fd)
			close(dc->agent_fd);
		free(dc);
	}
	srv.nclients = 0;
	stub_engine_reset();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct conn c = { .fd = -1 };
	struct dclient *victim;
	int sp[2];
	size_t at = 1;

	if (size < 1)
		return 0;
	setup();
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sp) < 0)
		abort();
	c.fd = sp[0];
	c.cred = (struct ucred){ .pid = getpid(), .uid = ATTACKER_UID, .gid = ATTACKER_UID };
	victim = victim_new();
	stub_foreign_uffd = data[0] & 8;
	attacker_prepare(&c, sp[1], data[0]);
	for (int m = 0; m < MAX_MSGS && at + 3 <= size; m++) {
		uint8_t spec = data[at];
		size_t len = (size_t)data[at + 1] | (size_t)data[at + 2] << 8;
		int r;

		at += 3;
		if (len > size - at)
			len = size - at;
		if (len > UVMP_MAX_MSG)
			len = UVMP_MAX_MSG;
		if (len == 0)
			break;   /* an empty datagram: the daemon hangs up */
		r = one_request(&c, sp[1], data + at, len, spec);
		at += len;
		if (r == 2) {
			c.fd = -1;   /* now the client's agent_fd: teardown closes it */
			break;
		}
		if (r == -EPROTO)
			break;   /* the daemon closes the connection */
	}
	victim_check(victim);
	if (stub_foreign_uffd)
		for (struct dclient *dc = srv.clients; dc; dc = dc->next)
			if (dc != victim && dc->objs)
				abort();   /* registered through another process's uffd */
	teardown(&c);
	if (c.fd >= 0)
		close(c.fd);
	close(sp[1]);
	return 0;
}
