/*
 * The filesystem's life: clear what a crashed daemon left at the mount
 * point, mount, serve in a thread of its own, unmount. The layout and
 * contents are in the other files of src/daemon/fs/.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include "daemon/fs.h"
#include "daemon/fs/fs_impl.h"
#include "daemon/log.h"

/*
 * A daemon killed with its filesystem mounted leaves a FUSE mount whose
 * every access answers ENOTCONN: nothing can be mounted over it usefully
 * and every reader errs. It is detached (lazily: a process may still be
 * inside it) before ours goes up.
 */
static void clear_stale_mount(const char *mountpoint)
{
	struct stat st;

	if (stat(mountpoint, &st) == 0 || errno != ENOTCONN)
		return;
	if (umount2(mountpoint, MNT_DETACH) == 0)
		log_warn("cleared a stale mount at %s (left by a daemon that died)", mountpoint);
	else
		log_warn("stale mount at %s could not be cleared: %s", mountpoint,
			 strerror(errno));
}

/* Runs until fs_destroy unmounts; requests are served one at a time. */
static void *fs_thread(void *arg)
{
	struct fs *fs = arg;

	/* one thread: every request is short, and the data reads are paced by the reader */
	fuse_loop(fs->fuse);
	return NULL;
}

/*
 * Called from main before clients come; on failure nothing is left
 * mounted. allow_other: every user may look (what each may see is the
 * files' modes); default_permissions: the kernel checks those modes.
 */
int fs_create(struct engine *e, struct server *srv, const char *mountpoint, struct fs **out)
{
	char *argv[] = { "uvmpagerd", "-o",
			 "allow_other,default_permissions,fsname=uvmpager,subtype=uvmpager",
			 NULL };
	struct fuse_args args = FUSE_ARGS_INIT(3, argv);
	struct fs *fs;
	int r;

	fs = calloc(1, sizeof(*fs));
	if (!fs)
		return -ENOMEM;
	fs->e = e;
	fs->srv = srv;
	fs->mountpoint = strdup(mountpoint);
	r = -ENOMEM;
	if (!fs->mountpoint)
		goto fail;
	clear_stale_mount(mountpoint);
	mkdir(mountpoint, 0755);
	fs->fuse = fuse_new(&args, &fs_ops, sizeof(fs_ops), fs);
	fuse_opt_free_args(&args);
	r = -EINVAL;
	if (!fs->fuse)
		goto fail;
	r = -EIO;
	if (fuse_mount(fs->fuse, mountpoint) != 0)
		goto fail;
	r = -pthread_create(&fs->thread, NULL, fs_thread, fs);
	if (r)
		goto fail_unmount;
	fs->running = true;
	*out = fs;
	return 0;

fail_unmount:
	fuse_unmount(fs->fuse);
fail:
	if (fs->fuse)
		fuse_destroy(fs->fuse);
	free(fs->mountpoint);
	free(fs);
	return r;
}

/* Before the server and the engine go: the thread reads both. */
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
	fs_handles_free(fs);
	fuse_destroy(fs->fuse);
	free(fs->mountpoint);
	free(fs);
}
