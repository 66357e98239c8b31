/*
 * What the filesystem thread may see of the server's clients and objects
 * (server.h): copies made under the server lock, and engine calls made
 * with it held so the object cannot be destroyed under them (struct
 * server says how the server thread keeps its side of that).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/server_impl.h"
#include "engine.h"

/* Server lock held. */
static void obj_info(const struct dclient *dc, const struct dobj *d, struct srv_obj_info *oi)
{
	memset(oi, 0, sizeof(*oi));
	oi->id = d->id;
	oi->pid = dc->pid;
	oi->uid = dc->uid;
	oi->gid = dc->gid;
	oi->type = d->type;
	oi->addr = engine_object_addr(d->o);
	oi->len = d->len;
	oi->created = d->created;
	if (d->path)
		snprintf(oi->path, sizeof(oi->path), "%s", d->path);
}

/* Any thread; takes the server lock for the copy only. */
int server_list(struct server *s, struct srv_client_info **clients, size_t *nclients,
		struct srv_obj_info **objs, size_t *nobjs)
{
	struct srv_client_info *cl = NULL;
	struct srv_obj_info *ob = NULL;
	size_t nc = 0, no = 0;
	int r = 0;

	pthread_mutex_lock(&s->lock);
	for (struct dclient *dc = s->clients; dc; dc = dc->next) {
		nc++;
		for (struct dobj *d = dc->objs; d; d = d->next)
			no++;
	}
	/* one extra each: calloc(0) may give NULL, which would read as failure */
	cl = calloc(nc + 1, sizeof(*cl));
	ob = calloc(no + 1, sizeof(*ob));
	if (!cl || !ob) {
		r = -ENOMEM;
		goto out;
	}
	nc = no = 0;
	for (struct dclient *dc = s->clients; dc; dc = dc->next) {
		cl[nc++] = (struct srv_client_info){
			.id = dc->id, .pid = dc->pid, .uid = dc->uid, .gid = dc->gid,
			.budget = dc->budget, .created = dc->created,
		};
		for (struct dobj *d = dc->objs; d; d = d->next)
			obj_info(dc, d, &ob[no++]);
	}
out:
	pthread_mutex_unlock(&s->lock);
	if (r < 0) {
		free(cl);
		free(ob);
		return r;
	}
	*clients = cl;
	*nclients = nc;
	*objs = ob;
	*nobjs = no;
	return 0;
}

/* Set once at creation: no lock. */
time_t server_started(struct server *s)
{
	return s->started;
}

/* Server lock held. */
static struct dobj *find_object(struct server *s, uint64_t id, struct dclient **owner)
{
	for (struct dclient *dc = s->clients; dc; dc = dc->next) {
		for (struct dobj *d = dc->objs; d; d = d->next) {
			if (d->id == id) {
				*owner = dc;
				return d;
			}
		}
	}
	return NULL;
}

/*
 * Any thread but the server's (which holds no lock of its own to take);
 * fn runs with the server lock held and may take the engine lock.
 */
int server_with_object(struct server *s, uint64_t id, server_obj_fn fn, void *arg)
{
	struct srv_obj_info oi;
	struct dclient *dc;
	struct dobj *d;
	int r = -ENOENT;

	pthread_mutex_lock(&s->lock);
	d = find_object(s, id, &dc);
	if (d) {
		obj_info(dc, d, &oi);
		r = fn(s->e, d->o, &oi, arg);
	}
	pthread_mutex_unlock(&s->lock);
	return r;
}

/* server_with_object's fn: server lock held. */
static int set_obj_budget(struct engine *e, struct uobj *o, const struct srv_obj_info *oi,
			  void *arg)
{
	return engine_set_budget(e, o, *(uint64_t *)arg);
}

/* Any thread; the object's budget only narrows what the global one allows. */
int server_object_set_budget(struct server *s, uint64_t id, uint64_t bytes)
{
	return server_with_object(s, id, set_obj_budget, &bytes);
}

/*
 * Any thread. The engine call is made under the server lock, so the
 * client (unlinked before it is destroyed) cannot go meanwhile.
 */
int server_client_set_budget(struct server *s, pid_t pid, uint64_t bytes)
{
	uint64_t max = server_client_budget_max(s);
	int r = -ENOENT;

	if (bytes > max)
		return -EINVAL;
	pthread_mutex_lock(&s->lock);
	for (struct dclient *dc = s->clients; dc; dc = dc->next) {
		if (dc->pid != pid)
			continue;
		dc->budget = bytes;
		/* no uffd yet: the budget is handed to the engine client when it comes */
		r = dc->ec ? engine_client_set_budget(s->e, dc->ec, bytes) : 0;
		break;
	}
	pthread_mutex_unlock(&s->lock);
	return r;
}

/* Any thread: one atomic word, read at each HELLO and SET_BUDGET. */
/*
 * Any thread. The cap in force: the one set, or else the global budget
 * (no client may be promised more than all of managed memory).
 */
uint64_t server_client_budget_max(struct server *s)
{
	uint64_t max = __atomic_load_n(&s->client_budget_max, __ATOMIC_RELAXED);
	struct engine_tunables t;

	if (max)
		return max;
	engine_get_tunables(s->e, &t);
	return t.budget;
}

/* Any thread: the value set, 0 meaning "the budget" (the filesystem's file). */
uint64_t server_client_budget_max_setting(struct server *s)
{
	return __atomic_load_n(&s->client_budget_max, __ATOMIC_RELAXED);
}

/* Any thread; budgets already given keep their value. */
void server_set_client_budget_max(struct server *s, uint64_t bytes)
{
	__atomic_store_n(&s->client_budget_max, bytes, __ATOMIC_RELAXED);
}
