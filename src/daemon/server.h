/*
 * The control server: accepts client processes on the control socket,
 * speaks include/uvmpager/protocol.h with them, and turns their requests
 * into engine objects. Runs in the daemon's main thread.
 */
#ifndef UVMPAGERD_SERVER_H
#define UVMPAGERD_SERVER_H

#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>
#include <time.h>

struct engine;
struct daemon_config;
struct server;
struct uobj;

int server_create(struct engine *e, const struct daemon_config *cfg, struct server **out);
void server_destroy(struct server *s);

/*
 * The main loop: returns when a SIGTERM/SIGINT came (after letting
 * clients go). tick (may be NULL) runs in the loop's thread after every
 * round, at least once a second.
 */
int server_run(struct server *s, void (*tick)(void *arg), void *arg);

/* Figures the filesystem shows; safe from any thread. */
unsigned server_client_count(struct server *s);

/*
 * The filesystem's view of clients and objects (server_view.c). Every
 * function is safe from any thread: each takes the server lock.
 */
struct srv_client_info {
	uint64_t id;
	pid_t pid;
	uid_t uid;
	gid_t gid;
	uint64_t budget;
	time_t created;
};
struct srv_obj_info {
	uint64_t id;
	pid_t pid;                /* its client's */
	uid_t uid;
	gid_t gid;
	uint32_t type;            /* UVMP_OBJ_* */
	uint64_t addr, len;
	time_t created;
	char path[256];           /* backing file of FILE/DEVICE objects, or "" */
};
/* Copies of the lists as of one instant; the caller frees both arrays. */
int server_list(struct server *s, struct srv_client_info **clients, size_t *nclients,
		struct srv_obj_info **objs, size_t *nobjs);
time_t server_started(struct server *s);
/*
 * fn with the object and its details, the server lock held, so the
 * object stays alive through fn (which must not call back into the
 * server). fn's result, or -ENOENT.
 */
typedef int (*server_obj_fn)(struct engine *e, struct uobj *o,
			     const struct srv_obj_info *info, void *arg);
int server_with_object(struct server *s, uint64_t id, server_obj_fn fn, void *arg);
/* Set a live object's budget (bytes; 0: none). -ENOENT once it is gone. */
int server_object_set_budget(struct server *s, uint64_t id, uint64_t bytes);
/*
 * Set the client's budget (bytes; 0: none); -EINVAL above the client
 * budget maximum, -ENOENT if no client has that pid.
 */
int server_client_set_budget(struct server *s, pid_t pid, uint64_t bytes);
/* The cap in force: the one set, or else the global budget. */
uint64_t server_client_budget_max(struct server *s);
/* The cap as set: 0 means "the global budget". */
uint64_t server_client_budget_max_setting(struct server *s);
void server_set_client_budget_max(struct server *s, uint64_t bytes);
/* Per-user limits on connected programs and their objects (0: none); server thread. */
void server_set_user_limits(struct server *s, unsigned clients, unsigned objects);

#endif
