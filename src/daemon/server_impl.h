/* Private to the control server's files: server.c, requests.c, forks.c. */
#ifndef UVMPAGERD_SERVER_IMPL_H
#define UVMPAGERD_SERVER_IMPL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>

#include "daemon/server.h"
#include "engine.h"
#include "uvmpager/protocol.h"

#define FORK_TTL_NS (30ULL * 1000000000ULL)

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
	time_t created;
	char *path;               /* the backing file of FILE/DEVICE objects, or NULL */
	bool split;               /* made by the engine of a part moved by a raw mremap */
	struct dobj *next;
};

struct dclient {
	uint64_t id, token;
	pid_t pid;
	uid_t uid;
	gid_t gid;
	uint64_t budget;
	time_t created;
	struct client *ec;        /* engine client, once its uffd came */
	bool uffd_owned;          /* its uffd proved its own (uffdowner.h) by a first MAP */
	struct conn *ctl;
	int agent_fd;             /* its agent's connection: held, never read, closed at the end */
	unsigned nobjs;           /* in objs: changed under the server lock */
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
	bool split;               /* of a dobj made of a part moved by a raw mremap */
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
	/*
	 * The filesystem thread reads the client list and each client's
	 * object list under `lock`, and uses their engine objects while it
	 * holds it; so the server thread changes those lists under it and
	 * takes an object or client out of them before destroying it. Lock
	 * order: this lock, then the engine's.
	 */
	pthread_mutex_t lock;
	uint64_t client_budget_max;   /* tunable: atomic loads and stores */
	unsigned max_clients_per_user, max_objects_per_user;   /* server thread only; 0: none */
	time_t started;
	uint64_t objects_synced;      /* srv_objects_sync's last pass over every client (ns) */
};


/* Payload of the expected size, or NULL. */
static inline const void *payload(const struct uvmp_hdr *h, ssize_t n, size_t want)
{
	if ((size_t)n != sizeof(*h) + want || h->len != (uint32_t)n)
		return NULL;
	return h + 1;
}


/* server.c */
uint64_t srv_random_u64(void);
int srv_reply(struct conn *c, const struct uvmp_hdr *req, int32_t status,
	      const void *payload, size_t plen, const int *fds, unsigned nfds);
int srv_user_room(struct server *s, uid_t uid, pid_t pid, bool objects);
struct dclient *srv_find_client(struct server *s, uint64_t id);
/* Into / out of dc's object list, under the server lock (see struct server). */
void srv_dobj_link(struct server *s, struct dclient *dc, struct dobj *d);
void srv_dobj_unlink(struct server *s, struct dclient *dc, struct dobj *d);
/* Unlink and free (the engine object is the caller's business). */
void srv_dobj_drop(struct server *s, struct dclient *dc, struct dobj *d);
/*
 * The client's list catches up with its engine objects: objects the
 * engine made of parts the program moved by a raw mremap join it, and
 * such objects the program has since unmapped whole leave it. Server
 * thread.
 */
void srv_objects_sync(struct server *s, struct dclient *dc);

/* requests.c: whether [addr, addr + len) meets one of dc's objects (but skip) */
bool srv_range_taken(struct dclient *dc, uint64_t addr, uint64_t len, const struct dobj *skip);
/* requests.c: the proof that a client's userfaultfd is its own (uffdowner.h) */
int srv_uffd_check_before(struct dclient *dc, uint64_t addr);
int srv_uffd_check_after(struct dclient *dc, uint64_t addr, const char *what);

/*
 * requests.c: one request. Returns 1 when it sent its own reply, 2 when
 * the connection was handed over (agent), else the status to reply with.
 */
int srv_dispatch(struct server *s, struct conn *c, const struct uvmp_hdr *h, ssize_t n,
		 int *fds, unsigned nfds);

/* forks.c */
void forks_destroy(struct server *s, struct fork_rec *f);
void forks_expire(struct server *s);
int do_fork_prepare(struct server *s, struct conn *c, const struct uvmp_hdr *h, ssize_t n);
int do_fork_done(struct server *s, struct conn *c, const struct uvmp_hdr *h, ssize_t n);
int do_adopt(struct server *s, struct conn *c, const struct uvmp_hdr *h, ssize_t n);
int do_adopt_done(struct server *s, struct conn *c, const struct uvmp_hdr *h, ssize_t n);

#endif
