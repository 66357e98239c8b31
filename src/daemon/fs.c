/*
 * FUSE filesystem. Files are generated whole when opened (direct_io, so
 * the size stat() reports does not matter), and a reader sees the
 * snapshot of its open.
 */
#define FUSE_USE_VERSION 31

#include <errno.h>
#include <fuse3/fuse.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/fs.h"
#include "daemon/log.h"
#include "daemon/server.h"
#include "engine.h"

struct fs {
	struct engine *e;
	struct server *srv;
	struct fuse *fuse;
	char *mountpoint;
	pthread_t thread;
	bool running;
};

struct snapshot {
	char *buf;
	size_t len;
};

typedef void (*gen_fn)(struct fs *fs, FILE *f);

static void gen_stat(struct fs *fs, FILE *f)
{
	engine_print_stats(fs->e, f);
	fprintf(f, "clients %u\n", server_client_count(fs->srv));
}

static void gen_clients(struct fs *fs, FILE *f)
{
	server_print_clients(fs->srv, f);
}

static const struct {
	const char *name;
	gen_fn gen;
} files[] = {
	{ "stat", gen_stat },
	{ "clients", gen_clients },
};

static struct fs *fs_of(void)
{
	return fuse_get_context()->private_data;
}

static int file_index(const char *path)
{
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
		if (path[0] == '/' && strcmp(path + 1, files[i].name) == 0)
			return (int)i;
	return -1;
}

static int fs_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
	memset(st, 0, sizeof(*st));
	if (strcmp(path, "/") == 0) {
		st->st_mode = S_IFDIR | 0755;
		st->st_nlink = 2;
		return 0;
	}
	if (file_index(path) < 0)
		return -ENOENT;
	st->st_mode = S_IFREG | 0444;
	st->st_nlink = 1;
	st->st_size = 0;   /* generated on open; read with direct_io */
	return 0;
}

static int fs_readdir(const char *path, void *buf, fuse_fill_dir_t fill, off_t off,
		      struct fuse_file_info *fi, enum fuse_readdir_flags flags)
{
	if (strcmp(path, "/") != 0)
		return -ENOENT;
	fill(buf, ".", NULL, 0, 0);
	fill(buf, "..", NULL, 0, 0);
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
		fill(buf, files[i].name, NULL, 0, 0);
	return 0;
}

static int fs_open(const char *path, struct fuse_file_info *fi)
{
	int idx = file_index(path);
	struct snapshot *snap;
	FILE *f;

	if (idx < 0)
		return -ENOENT;
	if ((fi->flags & O_ACCMODE) != O_RDONLY)
		return -EACCES;
	snap = calloc(1, sizeof(*snap));
	if (!snap)
		return -ENOMEM;
	f = open_memstream(&snap->buf, &snap->len);
	if (!f) {
		free(snap);
		return -ENOMEM;
	}
	files[idx].gen(fs_of(), f);
	fclose(f);
	fi->fh = (uintptr_t)snap;
	fi->direct_io = 1;
	return 0;
}

static int fs_read(const char *path, char *buf, size_t size, off_t off,
		   struct fuse_file_info *fi)
{
	struct snapshot *snap = (struct snapshot *)(uintptr_t)fi->fh;

	if ((size_t)off >= snap->len)
		return 0;
	if (size > snap->len - (size_t)off)
		size = snap->len - (size_t)off;
	memcpy(buf, snap->buf + off, size);
	return (int)size;
}

static int fs_release(const char *path, struct fuse_file_info *fi)
{
	struct snapshot *snap = (struct snapshot *)(uintptr_t)fi->fh;

	free(snap->buf);
	free(snap);
	return 0;
}

static const struct fuse_operations ops = {
	.getattr = fs_getattr,
	.readdir = fs_readdir,
	.open = fs_open,
	.read = fs_read,
	.release = fs_release,
};

static void *fs_thread(void *arg)
{
	struct fs *fs = arg;

	fuse_loop(fs->fuse);
	return NULL;
}

int fs_create(struct engine *e, struct server *srv, const char *mountpoint, struct fs **out)
{
	char *argv[] = { "uvmpagerd", "-o", "allow_other,fsname=uvmpager,subtype=uvmpager", NULL };
	struct fuse_args args = FUSE_ARGS_INIT(3, argv);
	struct stat st;
	struct fs *fs;
	int r;

	fs = calloc(1, sizeof(*fs));
	if (!fs)
		return -ENOMEM;
	fs->e = e;
	fs->srv = srv;
	fs->mountpoint = strdup(mountpoint);
	/* a mount left by a daemon that died answers ENOTCONN: clear it */
	if (stat(mountpoint, &st) < 0 && errno == ENOTCONN)
		umount2(mountpoint, MNT_DETACH);
	mkdir(mountpoint, 0755);
	fs->fuse = fuse_new(&args, &ops, sizeof(ops), fs);
	fuse_opt_free_args(&args);
	if (!fs->fuse) {
		r = -EINVAL;
		goto fail;
	}
	if (fuse_mount(fs->fuse, mountpoint) != 0) {
		r = -EIO;
		goto fail;
	}
	r = -pthread_create(&fs->thread, NULL, fs_thread, fs);
	if (r) {
		fuse_unmount(fs->fuse);
		goto fail;
	}
	fs->running = true;
	*out = fs;
	return 0;

fail:
	if (fs->fuse)
		fuse_destroy(fs->fuse);
	free(fs->mountpoint);
	free(fs);
	return r;
}

void fs_destroy(struct fs *fs)
{
	if (!fs)
		return;
	if (fs->running) {
		fuse_exit(fs->fuse);
		/* the unmount ends the loop's blocking read */
		fuse_unmount(fs->fuse);
		pthread_join(fs->thread, NULL);
	}
	fuse_destroy(fs->fuse);
	free(fs->mountpoint);
	free(fs);
}
