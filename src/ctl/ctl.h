/*
 * uvmpagerctl: the daemon seen through its filesystem. mount.c reads the
 * files, format.c prints sizes and JSON, cmds.c has the one-shot
 * commands, top.c the live view, main.c the command line.
 */
#ifndef UVMPAGERCTL_H
#define UVMPAGERCTL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

/* Exit statuses (documented in uvmpagerctl(1)). */
enum { EXIT_ERR = 1, EXIT_USAGE = 2, EXIT_NODAEMON = 3 };

#define KV_MAX 64

/* A flat-keyed file: "name value" lines, values kept as text. */
struct kv {
	unsigned n;
	char key[KV_MAX][48];
	char val[KV_MAX][128];
};

struct ctl_obj {
	uint64_t id;
	pid_t pid;
	unsigned uid;
	char type[16];
	struct kv stat;
};

struct ctl_client {
	pid_t pid;
	unsigned uid;
	char cmdline[128];
	struct kv stat;
};

struct ctl_snap {
	uint64_t t_ns;            /* when it was taken (CLOCK_MONOTONIC) */
	struct kv stat, events;
	struct ctl_obj *objs;
	size_t nobjs;
	struct ctl_client *clients;
	size_t nclients;
};

/* mount.c */
/* 0, or -errno when the file cannot be read. */
int kv_read(const char *mnt, const char *rel, struct kv *kv);
/* The value of key as a number, or 0 if missing. */
uint64_t kv_u64(const struct kv *kv, const char *key);
const char *kv_str(const struct kv *kv, const char *key);
/* A whole small file's first line (newline dropped). */
int line_read(const char *mnt, const char *rel, char *buf, size_t len);
/*
 * Everything the views need, at one instant (each file is a snapshot;
 * objects and clients that vanish between the listing and their files
 * are left out). -errno when the daemon's files cannot be read.
 */
int snap_take(const char *mnt, bool with_lists, struct ctl_snap *s);
void snap_free(struct ctl_snap *s);
/* 0 when a daemon answers at mnt; else prints why and returns EXIT_NODAEMON. */
int daemon_check(const char *mnt);

/* format.c */
/* "12.0 MiB" style into buf. */
const char *fmt_bytes(uint64_t v, char *buf, size_t len);
void json_str(FILE *f, const char *s);
/* A flat-keyed file as one JSON object, numbers as numbers. */
void json_kv(FILE *f, const struct kv *kv);

/* cmds.c */
struct ctl_opts {
	const char *mnt;
	bool json;
	double interval;          /* seconds, for rates */
	int iterations;           /* top: refreshes before it quits; 0 = until 'q' */
};
int cmd_status(const struct ctl_opts *o);
int cmd_objects(const struct ctl_opts *o);
int cmd_clients(const struct ctl_opts *o);
int cmd_set(const struct ctl_opts *o, const char *key, const char *value);
/* The rate per second of a counter between two snapshots' kvs. */
double rate(const struct kv *a, const struct kv *b, const char *key, double secs);

/* top.c */
int cmd_top(const struct ctl_opts *o);

#endif
