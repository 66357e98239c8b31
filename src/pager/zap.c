/*
 * The fence by the file: drop every PTE that maps some pages of an
 * object, in every process, and keep their data in the memfd.
 *
 * The fence used to be MADV_DONTNEED by the client's agent on its view:
 * by address. A program that unmaps its view by raw syscall and maps
 * memory of its own at the same place at that moment had that memory
 * zapped (the kernel lets a munmap return once its UNMAP event is read,
 * and MADV_DONTNEED looks its range up again after its own REMOVE event
 * was read: docs/design-notes.md, "Raw system calls against the fence").
 * Punching the pages from the memfd zaps the mappings of that file and of
 * nothing else, and sends no userfaultfd event; but it drops the pages.
 * So they are held first: vmsplice of the engine's view puts a reference
 * to each page into a pipe; the punch takes them out of the page cache
 * (zapping the PTEs, and leaving a uffd-wp marker for each PTE that was
 * write-protected, as MADV_DONTNEED does); a write that raced the punch
 * went into the page the pipe holds. Reading the pipe back into the view
 * puts the final data into new pages of the memfd, and the client finds
 * them there on its next touch: a minor fault, as after the old fence.
 * The dirty tracker reads the same thing it read after MADV_DONTNEED.
 *
 * What the kernel holds pinned (an io_uring registered buffer, an
 * O_DIRECT read in flight) is the page that leaves the memfd, not the new
 * one: the caller keeps pinned pages out of the ranges (pdaemon.c).
 *
 * The copy back goes through the engine's view, not write(2): its
 * MADV_NOHUGEPAGE keeps the new pages small under shmem_enabled
 * "within_size", where a write would allocate a huge page.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"
#include "engine_impl.h"
#include "pager/pager.h"

/* Pages held in the pipe at once; a longer range goes in pieces. */
#define ZAP_PIPE_BYTES (1u << 20)

int zap_init(struct engine *e)
{
	int p[2], sz;

	if (pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0)
		return -errno;
	/* more than pipe-max-size needs CAP_SYS_RESOURCE: take what we get */
	fcntl(p[1], F_SETPIPE_SZ, ZAP_PIPE_BYTES);
	sz = fcntl(p[1], F_GETPIPE_SZ);
	if (sz < (int)PAGE_SIZE) {
		close(p[0]);
		close(p[1]);
		return sz < 0 ? -errno : -EINVAL;
	}
	e->zap_pipe[0] = p[0];
	e->zap_pipe[1] = p[1];
	e->zap_chunk = (size_t)sz;
	e->zap_scratch = malloc(e->zap_chunk);
	if (!e->zap_scratch) {
		zap_fini(e);
		return -ENOMEM;
	}
	return 0;
}

void zap_fini(struct engine *e)
{
	if (e->zap_chunk) {
		close(e->zap_pipe[0]);
		close(e->zap_pipe[1]);
	}
	free(e->zap_scratch);
	e->zap_scratch = NULL;
	e->zap_chunk = 0;
}

/* Throw away what is left in the pipe (nothing was punched). */
static void zap_drain(struct engine *e)
{
	while (read(e->zap_pipe[0], e->zap_scratch, e->zap_chunk) > 0)
		;
}

/*
 * Put len bytes held in the pipe into o's memfd at byte offset off.
 * Returns the bytes put back: less than len only when memory for the new
 * pages could not be had, and then the rest is lost.
 */
static size_t zap_restore(struct uobj *o, size_t off, size_t len)
{
	struct engine *e = o->eng;
	size_t done = 0, got = 0;
	int tries = 0;
	ssize_t n;

	while (done < len) {
		n = read(e->zap_pipe[0], o->eview + off + done, len - done);
		if (n > 0)
			done += (size_t)n;
		else if (n == 0 || errno != EINTR)
			break;
	}
	if (done == len)
		return len;
	/*
	 * The view could not take it (no memory for a new page: the copy
	 * faulted): the data is only in the pipe now. Take it out into
	 * memory we have, and put it in the file by pwrite, trying for a
	 * second before giving up.
	 */
	while (got < len - done) {
		n = read(e->zap_pipe[0], e->zap_scratch + got, len - done - got);
		if (n > 0)
			got += (size_t)n;
		else if (n == 0 || errno != EINTR)
			break;
	}
	zap_drain(e);
	for (size_t w = 0; w < got;) {
		ssize_t k = pwrite(o->memfd, e->zap_scratch + w, got - w,
				   (off_t)(o->memoff + off + done + w));

		if (k > 0) {
			w += (size_t)k;
			done += (size_t)k;
			continue;
		}
		if (++tries > 200)
			break;
		nanosleep(&(struct timespec){ .tv_nsec = 5 * 1000 * 1000 }, NULL);
	}
	return done;
}

/*
 * Zap pages [start, start + n) of o in every mapping of its memfd, their
 * data kept. The pages must be resident and not under I/O (the engine's
 * view is read). Lock held: the pipe is the engine's.
 *
 * Returns 0, or < 0 with *done pages zapped from start on and the rest
 * untouched; -EIO when the data of *lost pages after those could not be
 * put back (no memory): the caller must not let anyone read them as they
 * are now, a hole.
 */
int pager_zap(struct uobj *o, size_t start, size_t n, size_t *done, size_t *lost)
{
	struct engine *e = o->eng;
	size_t off = start << PAGE_SHIFT, end = (start + n) << PAGE_SHIFT;
	int ret = 0;

	*done = *lost = 0;
	while (off < end) {
		size_t want = MIN(end - off, e->zap_chunk), held = 0, back;

		while (held < want) {
			struct iovec iov = { o->eview + off + held, want - held };
			ssize_t k = vmsplice(e->zap_pipe[1], &iov, 1, 0);

			if (k > 0) {
				held += (size_t)k;
			} else if (k == 0 || errno != EINTR) {
				/* EAGAIN: the pipe is full; go with what it holds */
				if (k < 0 && (errno != EAGAIN || !held))
					ret = -errno;
				else if (!held)
					ret = -EIO;
				break;
			}
		}
		if (ret < 0 || (held & (PAGE_SIZE - 1))) {
			zap_drain(e);
			return ret < 0 ? ret : -EIO;
		}
		if (fallocate(o->memfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			      (off_t)(o->memoff + off), (off_t)held) < 0) {
			ret = -errno;
			zap_drain(e);
			return ret;
		}
		back = zap_restore(o, off, held) & ~(size_t)(PAGE_SIZE - 1);
		*done += back >> PAGE_SHIFT;
		if (back < held) {
			*lost = (held - back) >> PAGE_SHIFT;
			return -EIO;
		}
		off += held;
	}
	return 0;
}
