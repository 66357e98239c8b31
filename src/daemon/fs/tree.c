/*
 * The layout: which paths exist, who owns them, their modes and times.
 * Objects and clients come and go: every lookup asks the server afresh
 * (FUSE caches nothing, see mount.c), so a name is there exactly while
 * its object or client is.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "daemon/fs/fs_impl.h"
#include "daemon/server.h"
#include "engine.h"
#include "uvmpager/protocol.h"

struct entry {
	const char *name;
	int which;
	mode_t mode;
};

static const struct entry top_files[] = {
	{ "stat", G_STAT, 0444 },
	{ "events", G_EVENTS, 0444 },
	{ "budget", G_BUDGET, 0644 },
	{ "watermark_high", G_HIGH, 0644 },
	{ "watermark_low", G_LOW, 0644 },
	{ "launder_percent", G_LAUNDER, 0644 },
	{ "read_around_max", G_READ_AROUND_MAX, 0644 },
	{ "client_budget_max", G_CLIENT_BUDGET_MAX, 0644 },
};

static const struct entry swap_files[] = {
	{ "stat", G_SWAP_STAT, 0444 },
	{ "map", G_SWAP_MAP, 0444 },
};

/*
 * pagemap and data show what the program holds, range where it holds it
 * (its address-space layout, which /proc/PID/maps keeps from other users
 * so that ASLR means something) and backing the file it maps (a path
 * /proc/PID/maps keeps private too): its owner's (and root's) only.
 */
static const struct entry obj_files[] = {
	{ "stat", G_OBJ_STAT, 0444 },
	{ "type", G_OBJ_TYPE, 0444 },
	{ "pid", G_OBJ_PID, 0444 },
	{ "uid", G_OBJ_UID, 0444 },
	{ "range", G_OBJ_RANGE, 0400 },
	{ "budget", G_OBJ_BUDGET, 0644 },
	{ "pagemap", G_OBJ_PAGEMAP, 0400 },
	{ "data", G_OBJ_DATA, 0400 },
	{ "backing", G_OBJ_BACKING, 0400 },
};

static const struct entry client_files[] = {
	{ "stat", G_CLI_STAT, 0444 },
	{ "budget", G_CLI_BUDGET, 0644 },
	{ "cmdline", G_CLI_CMDLINE, 0444 },
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

bool gen_writable(enum gen_file g)
{
	switch (g) {
	case G_BUDGET: case G_HIGH: case G_LOW: case G_LAUNDER: case G_READ_AROUND_MAX:
	case G_CLIENT_BUDGET_MAX: case G_OBJ_BUDGET: case G_CLI_BUDGET:
		return true;
	default:
		return false;
	}
}

/* Linear: the tables have under ten entries. */
static const struct entry *find_entry(const struct entry *t, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(t[i].name, name) == 0)
			return &t[i];
	return NULL;
}

/* A decimal number, nothing else, no leading zeros (names are canonical). */
static bool parse_name(const char *s, uint64_t *v)
{
	char *end;

	if (!*s || *s < '0' || *s > '9' || (s[0] == '0' && s[1]))
		return false;
	errno = 0;
	*v = strtoull(s, &end, 10);
	return !*end && !errno;
}

/* Directories are 0555: nothing in the tree is created by users. */
static void set_dir(struct node *n, int which, uid_t uid, gid_t gid, time_t t)
{
	*n = (struct node){ .kind = N_DIR, .which = which, .uid = uid, .gid = gid,
			    .mode = 0555, .time = t };
}

/* A generated file of the entry's kind and mode; owner left as the directory's. */
static void set_file(struct node *n, const struct entry *e, time_t t)
{
	n->kind = N_FILE;
	n->which = e->which;
	n->mode = e->mode;
	n->time = t;
}

struct obj_found {
	struct srv_obj_info info;
	struct engine_obj_stat st;
};

/* server_with_object's fn: server lock held. */
static int copy_info(struct engine *e, struct uobj *o, const struct srv_obj_info *oi,
		     void *arg)
{
	struct obj_found *f = arg;

	f->info = *oi;
	engine_object_stat(e, o, &f->st);
	return 0;
}

/* Fills n with the object's directory; -ENOENT if it is gone. */
static int lookup_object(struct fs *fs, uint64_t id, struct node *n)
{
	struct obj_found f;
	int r = server_with_object(fs->srv, id, copy_info, &f);

	if (r < 0)
		return r;
	set_dir(n, DIR_OBJECT, f.info.uid, f.info.gid, f.info.created);
	n->id = id;
	n->pid = f.info.pid;
	n->size = f.st.size;
	n->used = f.st.resident_bytes + f.st.swapped_bytes + f.st.bad_bytes;
	n->backing = f.info.type != UVMP_OBJ_ANON;
	return 0;
}

/* Fills n with the client's directory; -ENOENT if no client has that pid. */
static int lookup_client(struct fs *fs, pid_t pid, struct node *n,
			 struct srv_obj_info **objs, size_t *nobjs)
{
	struct srv_client_info *cl;
	size_t ncl;
	int r = server_list(fs->srv, &cl, &ncl, objs, nobjs);

	if (r < 0)
		return r;
	r = -ENOENT;
	for (size_t i = 0; i < ncl; i++) {
		if (cl[i].pid == pid) {
			set_dir(n, DIR_CLIENT, cl[i].uid, cl[i].gid, cl[i].created);
			n->pid = pid;
			r = 0;
			break;
		}
	}
	free(cl);
	if (r < 0) {
		free(*objs);
		*objs = NULL;
	}
	return r;
}

/*
 * The fs thread. Paths have at most four components (clients/PID/
 * objects/ID); numbers are canonical decimal, so one object has one name.
 */
int node_lookup(struct fs *fs, const char *path, struct node *n)
{
	char buf[256], *parts[5], *save = NULL, *tok;
	time_t started = server_started(fs->srv), now = time(NULL);
	const struct entry *e;
	unsigned np = 0;
	uint64_t v;
	int r;

	if (strlen(path) >= sizeof(buf))
		return -ENOENT;
	strcpy(buf, path);
	for (tok = strtok_r(buf, "/", &save); tok; tok = strtok_r(NULL, "/", &save)) {
		if (np == COUNT(parts))
			return -ENOENT;
		parts[np++] = tok;
	}
	set_dir(n, DIR_ROOT, 0, 0, started);
	if (np == 0)
		return 0;
	if (strcmp(parts[0], "swap") == 0) {
		set_dir(n, DIR_SWAP, 0, 0, started);
		if (np == 1)
			return 0;
		if (np > 2 || !(e = find_entry(swap_files, COUNT(swap_files), parts[1])))
			return -ENOENT;
		set_file(n, e, now);
		return 0;
	}
	if (strcmp(parts[0], "objects") == 0) {
		set_dir(n, DIR_OBJECTS, 0, 0, started);
		if (np == 1)
			return 0;
		if (np > 3 || !parse_name(parts[1], &v))
			return -ENOENT;
		r = lookup_object(fs, v, n);
		if (r < 0)
			return r;
		if (np == 2)
			return 0;
		e = find_entry(obj_files, COUNT(obj_files), parts[2]);
		if (!e || (e->which == G_OBJ_BACKING && !n->backing))
			return -ENOENT;
		set_file(n, e, e->which == G_OBJ_DATA ? n->time : now);
		if (e->which != G_OBJ_DATA)
			n->size = n->used = 0;
		return 0;
	}
	if (strcmp(parts[0], "clients") == 0) {
		struct srv_obj_info *objs = NULL;
		size_t nobjs = 0;

		set_dir(n, DIR_CLIENTS, 0, 0, started);
		if (np == 1)
			return 0;
		if (np > 4 || !parse_name(parts[1], &v) || v > INT32_MAX)
			return -ENOENT;
		r = lookup_client(fs, (pid_t)v, n, &objs, &nobjs);
		if (r < 0)
			return r;
		r = 0;
		if (np == 2)
			goto out;
		if (strcmp(parts[2], "objects") == 0) {
			n->which = DIR_CLIENT_OBJECTS;
			if (np == 3)
				goto out;
			r = -ENOENT;
			if (!parse_name(parts[3], &v))
				goto out;
			for (size_t i = 0; i < nobjs; i++) {
				if (objs[i].id == v && objs[i].pid == n->pid) {
					n->kind = N_LINK;
					n->id = v;
					n->mode = 0777;
					n->time = objs[i].created;
					r = 0;
				}
			}
			goto out;
		}
		e = find_entry(client_files, COUNT(client_files), parts[2]);
		if (np > 3 || !e)
			r = -ENOENT;
		else
			set_file(n, e, now);
out:
		free(objs);
		return r;
	}
	if (np > 1 || !(e = find_entry(top_files, COUNT(top_files), parts[0])))
		return -ENOENT;
	set_file(n, e, now);
	return 0;
}

/* A fixed table's names. */
static void fill_entries(void *buf, fuse_fill_dir_t fill, const struct entry *t, size_t n)
{
	for (size_t i = 0; i < n; i++)
		fill(buf, t[i].name, NULL, 0, 0);
}

/* An object id or pid as a name. */
static void fill_number(void *buf, fuse_fill_dir_t fill, uint64_t v)
{
	char name[24];

	snprintf(name, sizeof(name), "%llu", (unsigned long long)v);
	fill(buf, name, NULL, 0, 0);
}

/* The fs thread; the lists are a copy taken under the server lock. */
int node_readdir(struct fs *fs, const struct node *dir, void *buf, fuse_fill_dir_t fill)
{
	struct srv_client_info *cl = NULL;
	struct srv_obj_info *objs = NULL;
	size_t ncl = 0, nobjs = 0;
	int r = 0;

	fill(buf, ".", NULL, 0, 0);
	fill(buf, "..", NULL, 0, 0);
	switch (dir->which) {
	case DIR_ROOT:
		fill_entries(buf, fill, top_files, COUNT(top_files));
		fill(buf, "swap", NULL, 0, 0);
		fill(buf, "objects", NULL, 0, 0);
		fill(buf, "clients", NULL, 0, 0);
		return 0;
	case DIR_SWAP:
		fill_entries(buf, fill, swap_files, COUNT(swap_files));
		return 0;
	case DIR_CLIENT:
		fill_entries(buf, fill, client_files, COUNT(client_files));
		fill(buf, "objects", NULL, 0, 0);
		return 0;
	case DIR_OBJECT:
		for (size_t i = 0; i < COUNT(obj_files); i++)
			if (obj_files[i].which != G_OBJ_BACKING || dir->backing)
				fill(buf, obj_files[i].name, NULL, 0, 0);
		return 0;
	default:
		break;
	}
	r = server_list(fs->srv, &cl, &ncl, &objs, &nobjs);
	if (r < 0)
		return r;
	if (dir->which == DIR_CLIENTS) {
		for (size_t i = 0; i < ncl; i++) {
			bool seen = false;

			/* a process may hold two connections for a moment (exec): one name */
			for (size_t j = 0; j < i && !seen; j++)
				seen = cl[j].pid == cl[i].pid;
			if (!seen)
				fill_number(buf, fill, (uint64_t)cl[i].pid);
		}
	}
	for (size_t i = 0; i < nobjs; i++)
		if (dir->which == DIR_OBJECTS ||
		    (dir->which == DIR_CLIENT_OBJECTS && objs[i].pid == dir->pid))
			fill_number(buf, fill, objs[i].id);
	free(cl);
	free(objs);
	return 0;
}
