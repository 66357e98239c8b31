/*
 * failfs: a FUSE filesystem of the tests' own that serves the files of a
 * backing directory and fails on command, so the storage faults of
 * uvmpager(7) are injected into real I/O (O_DIRECT, io_uring, threads).
 *
 *   failfs BACKING MOUNTPOINT [fuse options]
 *
 * The file ".control" at the root takes one command per write:
 *   write-eio START END   writes touching [START, END) of any file: EIO
 *   read-eio START END    reads touching [START, END): EIO
 *   short N               each write stores at most N bytes and says so
 *   enospc SIZE           writes and fallocates ending past SIZE: ENOSPC
 *                         (statfs says about SIZE is free)
 *   stall SECS            reads and writes arriving in the next SECS
 *                         seconds wait until then
 *   nodirect              opens with O_DIRECT fail with EINVAL, as on a
 *                         filesystem without O_DIRECT
 *   clear                 no fault any more
 * Reading it gives the counters: "injected_read N", "injected_write N",
 * "injected_short N", "injected_enospc N", "stalled N".
 *
 * Every reply is direct_io so no page cache hides a fault.
 */
#define FUSE_USE_VERSION 31
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#define CONTROL "/.control"
#define MAX_RANGES 16

struct range {
	uint64_t start, end;
};

/* All the state; lock held for every read and change of the rules. */
static struct {
	pthread_mutex_t lock;
	int backing;                    /* dirfd of the backing directory */
	struct range write_eio[MAX_RANGES], read_eio[MAX_RANGES];
	int n_write_eio, n_read_eio;
	uint64_t short_max;             /* 0: whole writes */
	uint64_t enospc_at;             /* 0: no limit */
	bool no_direct;
	struct timespec stall_until;
	uint64_t injected_read, injected_write, injected_short, injected_enospc, stalled;
} st = { .lock = PTHREAD_MUTEX_INITIALIZER };

static const char *rel(const char *path)
{
	return path[1] ? path + 1 : ".";
}

static bool hits(const struct range *r, int n, uint64_t off, uint64_t len)
{
	for (int i = 0; i < n; i++)
		if (off < r[i].end && off + len > r[i].start)
			return true;
	return false;
}

/* Waits out a stall that was on when the request came. */
static void maybe_stall(void)
{
	struct timespec now, until;

	pthread_mutex_lock(&st.lock);
	until = st.stall_until;
	clock_gettime(CLOCK_MONOTONIC, &now);
	bool stall = now.tv_sec < until.tv_sec ||
		     (now.tv_sec == until.tv_sec && now.tv_nsec < until.tv_nsec);
	if (stall)
		st.stalled++;
	pthread_mutex_unlock(&st.lock);
	if (stall)
		while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &until, NULL) == EINTR)
			;
}

static int control_text(char *buf, size_t size)
{
	pthread_mutex_lock(&st.lock);
	int n = snprintf(buf, size,
			 "injected_read %" PRIu64 "\ninjected_write %" PRIu64 "\n"
			 "injected_short %" PRIu64 "\ninjected_enospc %" PRIu64 "\n"
			 "stalled %" PRIu64 "\n",
			 st.injected_read, st.injected_write, st.injected_short,
			 st.injected_enospc, st.stalled);
	pthread_mutex_unlock(&st.lock);
	return n;
}

static int control_command(const char *cmd)
{
	unsigned long long a = 0, b = 0;
	int r = 0;

	pthread_mutex_lock(&st.lock);
	if (sscanf(cmd, "write-eio %llu %llu", &a, &b) == 2 && a < b) {
		if (st.n_write_eio == MAX_RANGES)
			r = -ENOSPC;
		else
			st.write_eio[st.n_write_eio++] = (struct range){ a, b };
	} else if (sscanf(cmd, "read-eio %llu %llu", &a, &b) == 2 && a < b) {
		if (st.n_read_eio == MAX_RANGES)
			r = -ENOSPC;
		else
			st.read_eio[st.n_read_eio++] = (struct range){ a, b };
	} else if (sscanf(cmd, "short %llu", &a) == 1) {
		st.short_max = a;
	} else if (sscanf(cmd, "enospc %llu", &a) == 1) {
		st.enospc_at = a;
	} else if (sscanf(cmd, "stall %llu", &a) == 1) {
		clock_gettime(CLOCK_MONOTONIC, &st.stall_until);
		st.stall_until.tv_sec += (time_t)a;
	} else if (strncmp(cmd, "nodirect", 8) == 0) {
		st.no_direct = true;
	} else if (strncmp(cmd, "clear", 5) == 0) {
		st.no_direct = false;
		st.n_write_eio = st.n_read_eio = 0;
		st.short_max = st.enospc_at = 0;
		st.stall_until = (struct timespec){ 0 };
	} else {
		r = -EINVAL;
	}
	pthread_mutex_unlock(&st.lock);
	return r;
}

static int ff_getattr(const char *path, struct stat *s, struct fuse_file_info *fi)
{
	(void)fi;
	if (strcmp(path, CONTROL) == 0) {
		memset(s, 0, sizeof(*s));
		s->st_mode = S_IFREG | 0600;
		s->st_nlink = 1;
		s->st_size = 4096;
		return 0;
	}
	return fstatat(st.backing, rel(path), s, AT_SYMLINK_NOFOLLOW) < 0 ? -errno : 0;
}

static int ff_readdir(const char *path, void *buf, fuse_fill_dir_t fill, off_t off,
		      struct fuse_file_info *fi, enum fuse_readdir_flags flags)
{
	(void)off; (void)fi; (void)flags;
	int fd = openat(st.backing, rel(path), O_RDONLY | O_DIRECTORY);
	if (fd < 0)
		return -errno;
	DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -ENOMEM;
	}
	struct dirent *e;
	while ((e = readdir(d)))
		fill(buf, e->d_name, NULL, 0, 0);
	if (strcmp(path, "/") == 0)
		fill(buf, CONTROL + 1, NULL, 0, 0);
	closedir(d);
	return 0;
}

static bool direct_refused(void)
{
	pthread_mutex_lock(&st.lock);
	bool r = st.no_direct;
	pthread_mutex_unlock(&st.lock);
	return r;
}

static int ff_open(const char *path, struct fuse_file_info *fi)
{
	fi->direct_io = 1;
	if (strcmp(path, CONTROL) == 0) {
		fi->fh = (uint64_t)-1;
		return 0;
	}
	if ((fi->flags & O_DIRECT) && direct_refused())
		return -EINVAL;
	/* O_DIRECT is ours to honour (direct_io); the backing file need not. */
	int fd = openat(st.backing, rel(path), (fi->flags & ~(O_DIRECT | O_CREAT | O_EXCL)) | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	fi->fh = (uint64_t)fd;
	return 0;
}

static int ff_create(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	fi->direct_io = 1;
	if ((fi->flags & O_DIRECT) && direct_refused())
		return -EINVAL;
	int fd = openat(st.backing, rel(path), (fi->flags & ~O_DIRECT) | O_CREAT | O_CLOEXEC, mode);
	if (fd < 0)
		return -errno;
	fi->fh = (uint64_t)fd;
	return 0;
}

static int ff_release(const char *path, struct fuse_file_info *fi)
{
	(void)path;
	if (fi->fh != (uint64_t)-1)
		close((int)fi->fh);
	return 0;
}

static int ff_read(const char *path, char *buf, size_t size, off_t off, struct fuse_file_info *fi)
{
	(void)path;
	if (fi->fh == (uint64_t)-1) {
		char text[512];
		int n = control_text(text, sizeof(text));
		if (off >= n)
			return 0;
		if ((size_t)(n - off) < size)
			size = (size_t)(n - off);
		memcpy(buf, text + off, size);
		return (int)size;
	}
	maybe_stall();
	pthread_mutex_lock(&st.lock);
	bool eio = hits(st.read_eio, st.n_read_eio, (uint64_t)off, size);
	if (eio)
		st.injected_read++;
	pthread_mutex_unlock(&st.lock);
	if (eio)
		return -EIO;
	ssize_t n = pread((int)fi->fh, buf, size, off);
	return n < 0 ? -errno : (int)n;
}

static int ff_write(const char *path, const char *buf, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	(void)path;
	if (fi->fh == (uint64_t)-1) {
		char cmd[256];
		size_t n = size < sizeof(cmd) - 1 ? size : sizeof(cmd) - 1;
		memcpy(cmd, buf, n);
		cmd[n] = '\0';
		int r = control_command(cmd);
		return r < 0 ? r : (int)size;
	}
	maybe_stall();
	int r = 0;
	pthread_mutex_lock(&st.lock);
	if (hits(st.write_eio, st.n_write_eio, (uint64_t)off, size)) {
		st.injected_write++;
		r = -EIO;
	} else if (st.enospc_at && (uint64_t)off + size > st.enospc_at) {
		st.injected_enospc++;
		r = -ENOSPC;
	} else if (st.short_max && size > st.short_max) {
		st.injected_short++;
		size = st.short_max;
	}
	pthread_mutex_unlock(&st.lock);
	if (r)
		return r;
	ssize_t n = pwrite((int)fi->fh, buf, size, off);
	return n < 0 ? -errno : (int)n;
}

static int ff_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
	if (fi && fi->fh != (uint64_t)-1)
		return ftruncate((int)fi->fh, size) < 0 ? -errno : 0;
	if (strcmp(path, CONTROL) == 0)
		return 0;
	int fd = openat(st.backing, rel(path), O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int r = ftruncate(fd, size) < 0 ? -errno : 0;
	close(fd);
	return r;
}

static int ff_fallocate(const char *path, int mode, off_t off, off_t len,
			struct fuse_file_info *fi)
{
	(void)path;
	pthread_mutex_lock(&st.lock);
	bool full = st.enospc_at && (uint64_t)(off + len) > st.enospc_at;
	if (full)
		st.injected_enospc++;
	pthread_mutex_unlock(&st.lock);
	if (full)
		return -ENOSPC;
	return fallocate((int)fi->fh, mode, off, len) < 0 ? -errno : 0;
}

static int ff_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
	(void)path;
	if (fi->fh == (uint64_t)-1)
		return 0;
	return (datasync ? fdatasync((int)fi->fh) : fsync((int)fi->fh)) < 0 ? -errno : 0;
}

static int ff_unlink(const char *path)
{
	return unlinkat(st.backing, rel(path), 0) < 0 ? -errno : 0;
}

/* With an enospc rule, the free space is what the rule leaves (about). */
static int ff_statfs(const char *path, struct statvfs *s)
{
	(void)path;
	if (fstatvfs(st.backing, s) < 0)
		return -errno;
	pthread_mutex_lock(&st.lock);
	if (st.enospc_at && s->f_bsize) {
		fsblkcnt_t left = st.enospc_at / s->f_bsize;

		if (left < s->f_bavail)
			s->f_bavail = s->f_bfree = left;
	}
	pthread_mutex_unlock(&st.lock);
	return 0;
}

static int ff_chmod(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	(void)fi;
	return fchmodat(st.backing, rel(path), mode, 0) < 0 ? -errno : 0;
}

static int ff_utimens(const char *path, const struct timespec tv[2], struct fuse_file_info *fi)
{
	(void)fi;
	return utimensat(st.backing, rel(path), tv, AT_SYMLINK_NOFOLLOW) < 0 ? -errno : 0;
}

/*
 * hard_remove: an unlink of an open file removes it at once, as on a disk
 * (without it libfuse renames it to .fuse_hidden*, which needs a rename we
 * do not serve, and the unlink fails).
 */
static void *ff_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
	(void)conn;
	cfg->hard_remove = 1;
	cfg->direct_io = 1;
	return NULL;
}

static const struct fuse_operations ops = {
	.init = ff_init,
	.getattr = ff_getattr, .readdir = ff_readdir, .open = ff_open, .create = ff_create,
	.release = ff_release, .read = ff_read, .write = ff_write, .truncate = ff_truncate,
	.fallocate = ff_fallocate, .fsync = ff_fsync, .unlink = ff_unlink, .statfs = ff_statfs,
	.chmod = ff_chmod, .utimens = ff_utimens,
};

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: failfs BACKING MOUNTPOINT [fuse options]\n");
		return 2;
	}
	st.backing = open(argv[1], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (st.backing < 0) {
		fprintf(stderr, "failfs: %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	/* argv[1] is ours; fuse sees the rest (mountpoint, options) */
	argv[1] = argv[0];
	return fuse_main(argc - 1, argv + 1, &ops, NULL);
}
