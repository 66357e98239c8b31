/* libuvmpager internals shared by its modules. */
#ifndef UVMPAGER_CLIENT_IMPL_H
#define UVMPAGER_CLIENT_IMPL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "client/wire.h"
#include "uvmpager/protocol.h"
#include "uvmpager/uvmpager.h"

/* The handshake must not hang a program's start on a wedged daemon. */
#define CLIENT_HANDSHAKE_TIMEOUT_MS 10000

struct region {
	uintptr_t addr;
	size_t len;
	uint64_t id;
	uint32_t type, prot;
	bool owned;                 /* the library made the mapping (anon_create, file_map) */
};

struct uvmpager {
	pthread_mutex_t lock;       /* one request in flight on ctl */
	int ctl, agent_sock, uffd, stop_efd;
	uint32_t seq;
	pid_t pid;                  /* requests from any other process are refused */
	char *socket_path;
	uint64_t budget_asked;
	uint64_t client_id, budget, min_size;
	bool uffd_from_device;

	atomic_bool ctl_dead;       /* the control connection ended */
	atomic_bool agent_dead;     /* the daemon is gone: the agent serves the uffd */
	atomic_bool stopping;
	atomic_uint_fast64_t fc_continued, fc_poisoned;
	/* the daemon's page-in journal (protocol.h), mapped read-only */
	const struct uvmp_journal *journal;
	/* the pin table (protocol.h) this process writes, the daemon reads */
	struct uvmp_pin *pintab;
	int table_fds[2];           /* journal, pin table: until mapped (client_map_tables) */
	bool agent_running;
	pthread_t agent, failover;  /* fences; the uffd once the daemon is gone */

	/* regions registered through this connection; never held across I/O */
	pthread_mutex_t regions_lock;
	struct region *regions;     /* sorted by addr */
	size_t nregions, cap;
};

/* client.c */
/*
 * start_agent false: the caller maps the daemon's tables
 * (client_map_tables) and starts the agent (agent_start) once the memory
 * a new thread may touch is in place (a forked child, after adopting):
 * mapped before, the tables could take the place of a clone.
 */
int client_open(const char *socket_path, uint64_t budget, bool start_agent,
		struct uvmpager **out);
/* Maps the page-in journal and the pin table the handshake brought. */
int client_map_tables(struct uvmpager *c);
/* Stops the agent and closes everything; frees c. */
void client_free(struct uvmpager *c);
/*
 * One request and its reply; c->lock held. Returns the reply's status or
 * -errno (-ENOTCONN once the connection ended). With reply NULL the reply's
 * payload and descriptors are dropped; otherwise they are the caller's
 * when the status is 0 (descriptors of a failed reply are closed).
 */
int client_call_locked(struct uvmpager *c, uint16_t type, const void *req, size_t reqlen,
		       const int *fds, int nfds, struct wire_msg *reply, int timeout_ms);
int client_call(struct uvmpager *c, uint16_t type, const void *req, size_t reqlen,
		const int *fds, int nfds, struct wire_msg *reply);

/* agent.c */
int agent_start(struct uvmpager *c);
void agent_stop(struct uvmpager *c);

/* regions.c */
int regions_add(struct uvmpager *c, const struct region *r);
/* Forgets regions inside [addr, addr + len); trims those that straddle it. */
void regions_remove(struct uvmpager *c, uintptr_t addr, size_t len);
/* The region containing addr, copied into *out. */
bool regions_find(struct uvmpager *c, uintptr_t addr, struct region *out);
int regions_move(struct uvmpager *c, uintptr_t old_addr, uintptr_t new_addr, size_t new_len);
/* Wakes every thread waiting on a fault in any region (the daemon died). */
void regions_wake_all(struct uvmpager *c);
void regions_clear(struct uvmpager *c);

#endif
