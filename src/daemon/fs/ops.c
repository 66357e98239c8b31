/*
 * The FUSE operations (high-level API, one thread: mount.c). A generated
 * file is written whole into a buffer at open and the reader is served
 * from that snapshot (direct_io: the kernel caches nothing, and the size
 * getattr reports does not bound reads), so no reader ever sees a torn
 * file. An object's data is the exception: it is read from the engine at
 * each read, a page at a time.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "daemon/fs/fs_impl.h"
#include "daemon/server.h"
#include "engine.h"

struct handle {
	struct node n;
	char *buf;                /* the snapshot; NULL for data and write-only opens */
	size_t len;
	struct handle *prev, *next;   /* fs->handles */
};

static void handle_free(struct fs *fs, struct handle *h)
{
	if (h->prev)
		h->prev->next = h->next;
	else
		fs->handles = h->next;
	if (h->next)
		h->next->prev = h->prev;
	free(h->buf);
	free(h);
}

void fs_handles_free(struct fs *fs)
{
	while (fs->handles)
		handle_free(fs, fs->handles);
}

/* The fs of the request being served (fs thread only). */
static struct fs *fs_of(void)
{
	return fuse_get_context()->private_data;
}

/* Once, at mount, in the fs thread. */
static void *fs_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
	/* names come and go with objects: the kernel must ask every time */
	cfg->entry_timeout = 0;
	cfg->attr_timeout = 0;
	cfg->negative_timeout = 0;
	cfg->direct_io = 1;
	return fuse_get_context()->private_data;
}

/* Ownership and modes come from the node: the kernel checks them (default_permissions). */
static int fs_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
	struct node n;
	int r = node_lookup(fs_of(), path, &n);

	if (r < 0)
		return r;
	memset(st, 0, sizeof(*st));
	switch (n.kind) {
	case N_DIR:
		st->st_mode = S_IFDIR | n.mode;
		st->st_nlink = 2;
		break;
	case N_FILE:
		st->st_mode = S_IFREG | n.mode;
		st->st_nlink = 1;
		st->st_size = (off_t)n.size;
		st->st_blocks = (blkcnt_t)(n.used / 512);
		break;
	case N_LINK:
		st->st_mode = S_IFLNK | 0777;
		st->st_nlink = 1;
		st->st_size = snprintf(NULL, 0, "../../../objects/%llu",
				       (unsigned long long)n.id);
		break;
	}
	st->st_uid = n.uid;
	st->st_gid = n.gid;
	st->st_atime = st->st_mtime = st->st_ctime = n.time;
	return 0;
}

/* clients/PID/objects/ID: relative, so it resolves under any mount point. */
static int fs_readlink(const char *path, char *buf, size_t size)
{
	struct node n;
	int r = node_lookup(fs_of(), path, &n);

	if (r < 0)
		return r;
	if (n.kind != N_LINK)
		return -EINVAL;
	snprintf(buf, size, "../../../objects/%llu", (unsigned long long)n.id);
	return 0;
}

/* One call lists the whole directory (offset 0): FUSE pages it to the reader. */
static int fs_readdir(const char *path, void *buf, fuse_fill_dir_t fill, off_t off,
		      struct fuse_file_info *fi, enum fuse_readdir_flags flags)
{
	struct node n;
	int r = node_lookup(fs_of(), path, &n);

	if (r < 0)
		return r;
	if (n.kind != N_DIR)
		return -ENOTDIR;
	return node_readdir(fs_of(), &n, buf, fill);
}

/* The snapshot of a generated file, taken now. */
static int snapshot(struct fs *fs, struct handle *h)
{
	FILE *f = open_memstream(&h->buf, &h->len);
	int r;

	if (!f)
		return -ENOMEM;
	r = gen_write(fs, &h->n, f);
	if (fclose(f) != 0 && r == 0)
		r = -ENOMEM;
	if (r < 0) {
		free(h->buf);
		h->buf = NULL;
	}
	return r;
}

/*
 * Generated files are taken whole here; data is read at each read.
 * Write opens are allowed on tunables and budgets only, root included.
 */
static int fs_open(const char *path, struct fuse_file_info *fi)
{
	int acc = fi->flags & O_ACCMODE, r;
	struct handle *h;

	h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	r = node_lookup(fs_of(), path, &h->n);
	if (r < 0)
		goto fail;
	r = -EISDIR;
	if (h->n.kind != N_FILE)
		goto fail;
	/* root passes the kernel's mode check: the file's kind still rules */
	r = -EACCES;
	if (acc != O_RDONLY && !gen_writable((enum gen_file)h->n.which))
		goto fail;
	if (acc != O_WRONLY && h->n.which != G_OBJ_DATA) {
		r = snapshot(fs_of(), h);
		if (r < 0)
			goto fail;
	}
	fi->fh = (uintptr_t)h;
	fi->direct_io = 1;
	h->next = fs_of()->handles;
	if (h->next)
		h->next->prev = h;
	fs_of()->handles = h;
	return 0;

fail:
	free(h);
	return r;
}

struct peek {
	char *buf;
	size_t size;
	off_t off;
};

/* Under the server lock: the object lives through the read. */
static int peek_obj(struct engine *e, struct uobj *o, const struct srv_obj_info *oi,
		    void *arg)
{
	struct peek *p = arg;

	return (int)engine_object_peek(e, o, p->buf, p->size, (uint64_t)p->off);
}

/* From the snapshot of the open; data from the engine, the object kept alive by the server lock. */
static int fs_read(const char *path, char *buf, size_t size, off_t off,
		   struct fuse_file_info *fi)
{
	struct handle *h = (struct handle *)(uintptr_t)fi->fh;
	struct peek p = { buf, size, off };

	if (off < 0)
		return -EINVAL;
	if (h->n.which == G_OBJ_DATA)
		return server_with_object(fs_of()->srv, h->n.id, peek_obj, &p);
	if (!h->buf || (size_t)off >= h->len)
		return 0;
	if (size > h->len - (size_t)off)
		size = h->len - (size_t)off;
	memcpy(buf, h->buf + off, size);
	return (int)size;
}

/* One write is the whole value (see tunables.c). */
static int fs_write(const char *path, const char *buf, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct handle *h = (struct handle *)(uintptr_t)fi->fh;
	uint64_t v;
	int r;

	if (!gen_writable((enum gen_file)h->n.which))
		return -EBADF;
	if (off != 0)
		return -EINVAL;
	r = tunable_parse(buf, size, &v);
	if (r < 0)
		return r;
	r = tunable_apply(fs_of(), &h->n, v);
	return r < 0 ? r : (int)size;
}

/* O_TRUNC on a tunable (the shell's >) is not a write of nothing. */
static int fs_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
	struct node n;
	int r = node_lookup(fs_of(), path, &n);

	if (r < 0)
		return r;
	return n.kind == N_FILE && gen_writable((enum gen_file)n.which) ? 0 : -EACCES;
}

/* The last close of an open: its snapshot goes. */
static int fs_release(const char *path, struct fuse_file_info *fi)
{
	handle_free(fs_of(), (struct handle *)(uintptr_t)fi->fh);
	return 0;
}

struct seek {
	off_t off;
	bool data;
	int64_t result;
};

/* server_with_object's fn: server lock held. */
static int seek_obj(struct engine *e, struct uobj *o, const struct srv_obj_info *oi,
		    void *arg)
{
	struct seek *s = arg;

	s->result = engine_object_seek(e, o, (uint64_t)s->off, s->data);
	return 0;
}

/* Only SEEK_DATA and SEEK_HOLE come here; a snapshot is all data. */
static off_t fs_lseek(const char *path, off_t off, int whence, struct fuse_file_info *fi)
{
	struct handle *h = (struct handle *)(uintptr_t)fi->fh;
	struct seek s = { off, whence == SEEK_DATA, 0 };
	int r;

	if (whence != SEEK_DATA && whence != SEEK_HOLE)
		return -EINVAL;
	if (off < 0)
		return -ENXIO;
	if (h->n.which == G_OBJ_DATA) {
		r = server_with_object(fs_of()->srv, h->n.id, seek_obj, &s);
		return r < 0 ? r : (off_t)s.result;
	}
	if ((size_t)off >= h->len)
		return -ENXIO;
	return whence == SEEK_DATA ? off : (off_t)h->len;
}

const struct fuse_operations fs_ops = {
	.init = fs_init,
	.getattr = fs_getattr,
	.readlink = fs_readlink,
	.readdir = fs_readdir,
	.open = fs_open,
	.read = fs_read,
	.write = fs_write,
	.truncate = fs_truncate,
	.release = fs_release,
	.lseek = fs_lseek,
};
