/*
 * The filesystem's life: clear what a crashed daemon left at the mount
 * point, mount, serve in a thread of its own, unmount. The layout and
 * contents are in the other files of src/daemon/fs/.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>

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

/*
 * The signal fs_destroy wakes the thread with. Only its thread takes it:
 * a read of /dev/fuse it interrupts returns EINTR (no SA_RESTART), and the
 * loop then sees it was told to exit.
 */
#define FS_WAKE_SIGNAL SIGUSR2

static void fs_wake_handler(int sig)
{
	(void)sig;
}

/* Runs until fs_destroy unmounts; requests are served one at a time. */
static void *fs_thread(void *arg)
{
	struct fs *fs = arg;
	sigset_t wake;

	sigemptyset(&wake);
	sigaddset(&wake, FS_WAKE_SIGNAL);
	pthread_sigmask(SIG_UNBLOCK, &wake, NULL);

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
	{
		struct sigaction sa = { .sa_handler = fs_wake_handler };
		sigset_t wake, old;

		sigemptyset(&sa.sa_mask);
		sigaction(FS_WAKE_SIGNAL, &sa, NULL);
		/* the other threads never take it; the fs thread unblocks it */
		sigemptyset(&wake);
		sigaddset(&wake, FS_WAKE_SIGNAL);
		pthread_sigmask(SIG_BLOCK, &wake, &old);
		r = -pthread_create(&fs->thread, NULL, fs_thread, fs);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		if (!r)
			pthread_setname_np(fs->thread, "uvmp-fs");
	}
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
		/*
		 * The unmount ends the loop's blocking read, but only once
		 * nothing holds the (lazily detached) mount any more: a
		 * reader still inside kept the daemon from exiting after
		 * SIGTERM (hostile corrupt, once in CI's run). The signal
		 * ends the read at once; sent until the thread is gone, since
		 * one sent before it entered the read is lost.
		 */
		fuse_unmount(fs->fuse);
		for (;;) {
			struct timespec t;

			pthread_kill(fs->thread, FS_WAKE_SIGNAL);
			clock_gettime(CLOCK_REALTIME, &t);
			t.tv_nsec += 50 * 1000 * 1000;
			if (t.tv_nsec >= 1000000000L) {
				t.tv_sec++;
				t.tv_nsec -= 1000000000L;
			}
			if (pthread_timedjoin_np(fs->thread, NULL, &t) != ETIMEDOUT)
				break;
		}
	}
	fs_handles_free(fs);
	fuse_destroy(fs->fuse);
	free(fs->mountpoint);
	free(fs);
}
