/*
 * Reading the daemon's filesystem. Each file is read whole in one go, so
 * it is the daemon's snapshot of one instant; a listing and the files it
 * names are read at different instants, and a name that vanished in
 * between (its client exited) is skipped, not an error.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ctl/ctl.h"

static int read_all(const char *mnt, const char *rel, char *buf, size_t len)
{
	char path[512];
	size_t n = 0;
	ssize_t k;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", mnt, rel);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	while (n < len - 1 && (k = read(fd, buf + n, len - 1 - n)) > 0)
		n += (size_t)k;
	close(fd);
	buf[n] = '\0';
	return 0;
}

/* At most KV_MAX pairs; lines without a space are skipped. */
int kv_read(const char *mnt, const char *rel, struct kv *kv)
{
	char buf[8192], *save = NULL;
	int r = read_all(mnt, rel, buf, sizeof(buf));

	kv->n = 0;
	if (r < 0)
		return r;
	for (char *l = strtok_r(buf, "\n", &save); l && kv->n < KV_MAX;
	     l = strtok_r(NULL, "\n", &save)) {
		char *sp = strchr(l, ' ');

		if (!sp)
			continue;
		*sp = '\0';
		snprintf(kv->key[kv->n], sizeof(kv->key[0]), "%s", l);
		snprintf(kv->val[kv->n], sizeof(kv->val[0]), "%s", sp + 1);
		kv->n++;
	}
	return 0;
}

/* NULL when the key is absent (an older daemon). */
const char *kv_str(const struct kv *kv, const char *key)
{
	for (unsigned i = 0; i < kv->n; i++)
		if (strcmp(kv->key[i], key) == 0)
			return kv->val[i];
	return NULL;
}

/* Missing keys read as 0, so older daemons still give a table. */
uint64_t kv_u64(const struct kv *kv, const char *key)
{
	const char *v = kv_str(kv, key);

	return v ? strtoull(v, NULL, 0) : 0;
}

/* Single-value files (pid, type, tunables). */
int line_read(const char *mnt, const char *rel, char *buf, size_t len)
{
	int r = read_all(mnt, rel, buf, len);

	if (r == 0)
		buf[strcspn(buf, "\n")] = '\0';
	return r;
}

/* Names under mnt/rel that are numbers, into a malloc'd array. */
static size_t list_numbers(const char *mnt, const char *rel, uint64_t **out)
{
	char path[512];
	size_t n = 0, cap = 16;
	uint64_t *v = malloc(cap * sizeof(*v));
	struct dirent *de;
	DIR *dir;

	snprintf(path, sizeof(path), "%s/%s", mnt, rel);
	dir = opendir(path);
	while (v && dir && (de = readdir(dir))) {
		char *end;
		uint64_t x = strtoull(de->d_name, &end, 10);

		if (de->d_name[0] < '0' || de->d_name[0] > '9' || *end)
			continue;
		if (n == cap) {
			uint64_t *nv = realloc(v, (cap *= 2) * sizeof(*v));

			if (!nv)
				break;
			v = nv;
		}
		v[n++] = x;
	}
	if (dir)
		closedir(dir);
	*out = v;
	return v ? n : 0;
}

/* objects/ID/ each read after the listing: vanished ones are skipped. */
static void take_objects(const char *mnt, struct ctl_snap *s)
{
	uint64_t *ids;
	size_t n = list_numbers(mnt, "objects", &ids);

	s->objs = calloc(n + 1, sizeof(*s->objs));
	for (size_t i = 0; s->objs && i < n; i++) {
		struct ctl_obj *o = &s->objs[s->nobjs];
		char rel[96], buf[32];

		o->id = ids[i];
		snprintf(rel, sizeof(rel), "objects/%llu/stat", (unsigned long long)ids[i]);
		if (kv_read(mnt, rel, &o->stat) < 0)
			continue;
		snprintf(rel, sizeof(rel), "objects/%llu/pid", (unsigned long long)ids[i]);
		if (line_read(mnt, rel, buf, sizeof(buf)) < 0)
			continue;
		o->pid = atoi(buf);
		snprintf(rel, sizeof(rel), "objects/%llu/uid", (unsigned long long)ids[i]);
		if (line_read(mnt, rel, buf, sizeof(buf)) < 0)
			continue;
		o->uid = (unsigned)atoi(buf);
		snprintf(rel, sizeof(rel), "objects/%llu/type", (unsigned long long)ids[i]);
		if (line_read(mnt, rel, o->type, sizeof(o->type)) < 0)
			continue;
		s->nobjs++;
	}
	free(ids);
}

/* clients/PID/ likewise. */
static void take_clients(const char *mnt, struct ctl_snap *s)
{
	uint64_t *pids;
	size_t n = list_numbers(mnt, "clients", &pids);

	s->clients = calloc(n + 1, sizeof(*s->clients));
	for (size_t i = 0; s->clients && i < n; i++) {
		struct ctl_client *c = &s->clients[s->nclients];
		char rel[96];

		c->pid = (pid_t)pids[i];
		snprintf(rel, sizeof(rel), "clients/%d/stat", c->pid);
		if (kv_read(mnt, rel, &c->stat) < 0)
			continue;
		c->uid = (unsigned)kv_u64(&c->stat, "uid");
		snprintf(rel, sizeof(rel), "clients/%d/cmdline", c->pid);
		if (line_read(mnt, rel, c->cmdline, sizeof(c->cmdline)) < 0)
			continue;
		s->nclients++;
	}
	free(pids);
}

/* stat and events first: without them there is no daemon to show. */
int snap_take(const char *mnt, bool with_lists, struct ctl_snap *s)
{
	struct timespec ts;
	int r;

	memset(s, 0, sizeof(*s));
	clock_gettime(CLOCK_MONOTONIC, &ts);
	s->t_ns = (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
	r = kv_read(mnt, "stat", &s->stat);
	if (r == 0)
		r = kv_read(mnt, "events", &s->events);
	if (r < 0)
		return r;
	if (with_lists) {
		take_objects(mnt, s);
		take_clients(mnt, s);
	}
	return 0;
}

/* Frees what snap_take allocated; s can be taken again. */
void snap_free(struct ctl_snap *s)
{
	free(s->objs);
	free(s->clients);
	memset(s, 0, sizeof(*s));
}

/* The stat file must read and carry resident_bytes: a bare directory is no daemon. */
int daemon_check(const char *mnt)
{
	struct kv kv;
	int r = kv_read(mnt, "stat", &kv);

	if (r == 0 && kv_str(&kv, "resident_bytes"))
		return 0;
	fprintf(stderr, "uvmpagerctl: no uvmpagerd answers at %s (%s/stat: %s)\n", mnt, mnt,
		r < 0 ? strerror(-r) : "not the daemon's");
	return EXIT_NODAEMON;
}
