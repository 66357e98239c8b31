/*
 * The generated files' contents. Each is written whole at open (ops.c
 * keeps it as the reader's snapshot), from counters the engine and the
 * server already keep: nothing here is computed on a fault path.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/fs/fs_impl.h"
#include "daemon/server.h"
#include "engine.h"
#include "uvmpager/protocol.h"

/*
 * stat keeps every key it had before events existed (the counters too,
 * as memory.stat does): scripts and tests read them from here.
 */
static void gen_stat(struct fs *fs, FILE *f)
{
	engine_print_stats(fs->e, f);
	fprintf(f, "clients %u\n", server_client_count(fs->srv));
}

/* Counters only, taken at one instant under the engine lock (engine_get_stats). */
static void gen_events(struct fs *fs, FILE *f)
{
	struct engine_stats s;

	engine_get_stats(fs->e, &s);
#define P(name, v) fprintf(f, "%s %" PRIu64 "\n", name, (uint64_t)(v))
	P("faults", s.faults);
	P("faults_zero_fill", s.zero_fills);
	P("faults_throttled", s.throttled_faults);
	P("faults_minor", s.faults_minor);
	P("faults_major", s.faults_major);
	P("faults_wait", s.faults_wait);
	P("faults_first_touch", s.faults_first);
	P("faults_wp", s.faults_wp);
	P("faults_fenced", s.faults_fenced);
	P("fenced_mapped_around", s.fenced_around);
	P("swapins", s.swapins);
	P("swapouts", s.swapouts);
	P("evictions", s.evictions);
	P("evictions_clean", s.clean_evictions);
	P("readahead_pages", s.readahead);
	P("readahead_hits", s.readahead_hits);
	P("readahead_misses", s.readahead_misses);
	P("read_ops", s.read_ops);
	P("read_bytes", s.swap_read_bytes);
	P("write_ops", s.write_ops);
	P("write_bytes", s.swap_write_bytes);
	P("clusters_written", s.write_ops);
	P("cluster_avg_bytes", s.write_ops ? s.swap_write_bytes / s.write_ops : 0);
	P("budget_overruns", s.budget_overruns);
	P("swap_full", s.swap_full_events);
	P("io_errors", s.read_errors + s.write_errors);
	P("read_errors", s.read_errors);
	P("write_errors", s.write_errors);
	P("clean_mismatches", s.clean_mismatches);
	P("pin_scans", s.pin_scans);
	P("pinned_kept", s.pinned_kept);
	P("pin_races", s.pin_races);
	P("lock_waits", s.lock_waits);
	P("lock_wait_us", s.lock_wait_us);
#undef P
}

/* A tunable's current value, one line. */
static void gen_tunable(struct fs *fs, enum gen_file g, FILE *f)
{
	struct engine_tunables t;
	uint64_t v = 0;

	engine_get_tunables(fs->e, &t);
	switch (g) {
	case G_BUDGET: v = t.budget; break;
	case G_HIGH: v = t.high; break;
	case G_LOW: v = t.low; break;
	case G_LAUNDER: v = t.launder_percent; break;
	case G_READ_AROUND_MAX: v = t.read_around_max; break;
	case G_CLIENT_BUDGET_MAX: v = server_client_budget_max_setting(fs->srv); break;
	default: break;
	}
	fprintf(f, "%" PRIu64 "\n", v);
}

/* The names of uvmpagerfs(5): the origin's object kinds. */
static const char *type_name(uint32_t type)
{
	return type == UVMP_OBJ_FILE ? "vnode" : type == UVMP_OBJ_DEVICE ? "device" : "aobj";
}

struct obj_gen {
	enum gen_file which;
	FILE *f;
};

/* Runs under the server lock (server_with_object): o stays alive. */
static int obj_gen(struct engine *e, struct uobj *o, const struct srv_obj_info *oi, void *arg)
{
	struct obj_gen *g = arg;
	struct engine_obj_stat st;
	FILE *f = g->f;

	switch (g->which) {
	case G_OBJ_STAT:
		engine_object_stat(e, o, &st);
		fprintf(f, "size_bytes %" PRIu64 "\nresident_bytes %" PRIu64 "\n"
			"swapped_bytes %" PRIu64 "\ndirty_bytes %" PRIu64 "\n"
			"bad_bytes %" PRIu64 "\nbudget_bytes %" PRIu64 "\nfaults %" PRIu64 "\n"
			"swapins %" PRIu64 "\nswapouts %" PRIu64 "\nfenced_percent %u\n",
			st.size, st.resident_bytes, st.swapped_bytes, st.dirty_bytes,
			st.bad_bytes, st.budget, st.faults, st.swapins, st.swapouts,
			st.fenced_percent);
		return 0;
	case G_OBJ_BUDGET:
		engine_object_stat(e, o, &st);
		fprintf(f, "%" PRIu64 "\n", st.budget);
		return 0;
	case G_OBJ_TYPE:
		fprintf(f, "%s\n", type_name(oi->type));
		return 0;
	case G_OBJ_PID:
		fprintf(f, "%d\n", (int)oi->pid);
		return 0;
	case G_OBJ_UID:
		fprintf(f, "%u\n", (unsigned)oi->uid);
		return 0;
	case G_OBJ_RANGE:
		fprintf(f, "address 0x%" PRIx64 "\nlength %" PRIu64 "\n", oi->addr, oi->len);
		return 0;
	case G_OBJ_BACKING:
		fprintf(f, "%s\n", oi->path);
		return 0;
	case G_OBJ_PAGEMAP:
		return engine_object_pagemap(e, o, f);
	default:
		return -EINVAL;
	}
}

struct client_sum {
	struct engine_obj_stat total;
	unsigned objects;
};

/* server_with_object's fn for a client's stat: server lock held. */
static int sum_obj(struct engine *e, struct uobj *o, const struct srv_obj_info *oi, void *arg)
{
	struct client_sum *cs = arg;
	struct engine_obj_stat st;

	engine_object_stat(e, o, &st);
	cs->total.size += st.size;
	cs->total.resident_bytes += st.resident_bytes;
	cs->total.swapped_bytes += st.swapped_bytes;
	cs->total.dirty_bytes += st.dirty_bytes;
	cs->total.bad_bytes += st.bad_bytes;
	cs->total.faults += st.faults;
	cs->total.swapins += st.swapins;
	cs->total.swapouts += st.swapouts;
	cs->objects++;
	return 0;
}

/*
 * The client's resident memory outside every object: its private
 * anonymous pages (managed pages are shared memory), from
 * /proc/PID/smaps_rollup. 0 if the process cannot be read.
 */
static uint64_t outside_bytes(pid_t pid)
{
	char path[64], line[256];
	uint64_t kib = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/smaps_rollup", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Anonymous: %" SCNu64, &kib) == 1)
			break;
	fclose(f);
	return kib << 10;
}

/* The client's figures, summed over its objects (each read at its own instant). */
static int gen_client(struct fs *fs, const struct node *n, FILE *f)
{
	struct srv_client_info *cl = NULL, *me = NULL;
	struct srv_obj_info *objs = NULL;
	struct client_sum cs = { 0 };
	size_t ncl, nobjs;
	int r = server_list(fs->srv, &cl, &ncl, &objs, &nobjs);

	if (r < 0)
		return r;
	for (size_t i = 0; i < ncl && !me; i++)
		if (cl[i].pid == n->pid)
			me = &cl[i];
	r = -ENOENT;
	if (!me)
		goto out;
	r = 0;
	if (n->which == G_CLI_BUDGET) {
		fprintf(f, "%" PRIu64 "\n", me->budget);
		goto out;
	}
	for (size_t i = 0; i < nobjs; i++)
		if (objs[i].pid == n->pid)
			server_with_object(fs->srv, objs[i].id, sum_obj, &cs);
	fprintf(f, "objects %u\nsize_bytes %" PRIu64 "\nresident_bytes %" PRIu64 "\n"
		"swapped_bytes %" PRIu64 "\ndirty_bytes %" PRIu64 "\nbad_bytes %" PRIu64 "\n"
		"budget_bytes %" PRIu64 "\nfaults %" PRIu64 "\nswapins %" PRIu64 "\n"
		"swapouts %" PRIu64 "\nuid %u\noutside_bytes %" PRIu64 "\n",
		cs.objects, cs.total.size, cs.total.resident_bytes, cs.total.swapped_bytes,
		cs.total.dirty_bytes, cs.total.bad_bytes, me->budget, cs.total.faults,
		cs.total.swapins, cs.total.swapouts, (unsigned)me->uid, outside_bytes(n->pid));
out:
	free(cl);
	free(objs);
	return r;
}

/* /proc/PID/cmdline with its NULs as spaces, one line. */
static int gen_cmdline(pid_t pid, FILE *f)
{
	char path[64], buf[4096];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0)
		return -EIO;
	while (n > 0 && buf[n - 1] == '\0')
		n--;
	for (ssize_t i = 0; i < n; i++)
		if (buf[i] == '\0')
			buf[i] = ' ';
	buf[n] = '\0';
	fprintf(f, "%s\n", buf);
	return 0;
}

/*
 * The fs thread, no lock held: each generator takes what it needs.
 * -ENOENT when the object or client went away since the lookup.
 */
int gen_write(struct fs *fs, const struct node *n, FILE *f)
{
	struct obj_gen og = { .which = (enum gen_file)n->which, .f = f };

	switch ((enum gen_file)n->which) {
	case G_STAT:
		gen_stat(fs, f);
		return 0;
	case G_EVENTS:
		gen_events(fs, f);
		return 0;
	case G_BUDGET: case G_HIGH: case G_LOW: case G_LAUNDER: case G_READ_AROUND_MAX:
	case G_CLIENT_BUDGET_MAX:
		gen_tunable(fs, (enum gen_file)n->which, f);
		return 0;
	case G_SWAP_STAT:
		engine_print_swap(fs->e, f);
		return 0;
	case G_SWAP_MAP:
		engine_print_swap_map(fs->e, f);
		return 0;
	case G_OBJ_STAT: case G_OBJ_TYPE: case G_OBJ_PID: case G_OBJ_UID: case G_OBJ_RANGE:
	case G_OBJ_BUDGET: case G_OBJ_PAGEMAP: case G_OBJ_BACKING:
		return server_with_object(fs->srv, n->id, obj_gen, &og);
	case G_CLI_STAT: case G_CLI_BUDGET:
		return gen_client(fs, n, f);
	case G_CLI_CMDLINE:
		return gen_cmdline(n->pid, f);
	default:
		return -EINVAL;
	}
}
