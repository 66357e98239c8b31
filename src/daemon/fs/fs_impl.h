/*
 * Private to the filesystem's files (src/daemon/fs/): mount.c mounts it
 * and runs its thread, tree.c maps paths to nodes and their attributes,
 * gen.c writes the generated files, tunables.c parses and applies the
 * writable ones, ops.c answers FUSE.
 */
#ifndef UVMPAGERD_FS_IMPL_H
#define UVMPAGERD_FS_IMPL_H

#define FUSE_USE_VERSION 31

#include <fuse3/fuse.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>
#include <time.h>

struct engine;
struct server;

struct fs {
	struct engine *e;
	struct server *srv;
	struct fuse *fuse;
	char *mountpoint;
	pthread_t thread;
	bool running;
	/*
	 * Open files (ops.c), fs thread only: the kernel sends RELEASE after
	 * close() returns, so handles may still be open when we unmount.
	 */
	struct handle *handles;
};

/* Frees the handles no RELEASE came for; after the fs thread has ended. */
void fs_handles_free(struct fs *fs);

enum node_kind {
	N_DIR,          /* a directory: which says which (DIR_*) */
	N_FILE,         /* a generated file: which is a gen_file */
	N_LINK,         /* clients/PID/objects/ID -> ../../../objects/ID */
};

enum fs_dir { DIR_ROOT, DIR_SWAP, DIR_OBJECTS, DIR_OBJECT, DIR_CLIENTS, DIR_CLIENT,
	      DIR_CLIENT_OBJECTS };

/* Every generated file; the tables in tree.c give their names and modes. */
enum gen_file {
	/* top level */
	G_STAT, G_EVENTS, G_CLIENTS,
	G_BUDGET, G_HIGH, G_LOW, G_LAUNDER, G_READ_AROUND_MAX, G_CLIENT_BUDGET_MAX,
	/* swap/ */
	G_SWAP_STAT, G_SWAP_MAP,
	/* objects/ID/ */
	G_OBJ_STAT, G_OBJ_TYPE, G_OBJ_PID, G_OBJ_UID, G_OBJ_RANGE, G_OBJ_BUDGET,
	G_OBJ_PAGEMAP, G_OBJ_DATA, G_OBJ_BACKING,
	/* clients/PID/ */
	G_CLI_STAT, G_CLI_BUDGET, G_CLI_CMDLINE,
};

/* What a path names, with the owner, mode and times getattr reports. */
struct node {
	enum node_kind kind;
	int which;                /* enum fs_dir or enum gen_file */
	uint64_t id;              /* object id (objects/ID, links) */
	pid_t pid;                /* client pid (clients/PID) */
	uid_t uid;
	gid_t gid;
	mode_t mode;              /* permission bits */
	time_t time;
	uint64_t size;            /* data: the object's size; else 0 */
	uint64_t used;            /* data: bytes held in memory or swap (st_blocks, for du and cp) */
	bool backing;             /* an object with a file behind it (vnode, device) */
};

/* tree.c */
/* The node at path, or -ENOENT. Reads the server's lists (its lock). */
int node_lookup(struct fs *fs, const char *path, struct node *n);
/* Fill a directory's entries (name, type) through fill. */
int node_readdir(struct fs *fs, const struct node *dir, void *buf, fuse_fill_dir_t fill);
/* Writable files are the tunables and the budgets. */
bool gen_writable(enum gen_file g);

/* gen.c: the whole file at this instant into f; < 0 if its object went away. */
int gen_write(struct fs *fs, const struct node *n, FILE *f);

/* tunables.c */
/*
 * A written value: decimal digits, nothing else but one trailing
 * newline, no overflow. -EINVAL otherwise.
 */
int tunable_parse(const char *buf, size_t len, uint64_t *out);
/* Validate and apply; -EINVAL changes nothing. */
int tunable_apply(struct fs *fs, const struct node *n, uint64_t v);

/* ops.c */
extern const struct fuse_operations fs_ops;

#endif
