/*
 * The read family, for O_DIRECT: the kernel pins the pages an O_DIRECT
 * read fills for as long as the read is in flight, and a pin older than
 * the daemon's fence survives it. Evicting such a page would orphan it:
 * the read's data would land in a page nobody reads again. So a read on
 * an O_DIRECT regular file or block device into arena memory is marked
 * in the daemon's pin table (uvmpager_pin_begin) before the syscall and
 * unmarked after it; the daemon keeps those pages meanwhile.
 *
 * Only reads: an O_DIRECT write takes its data from the page, and the
 * orphan it may keep reading from holds the same data. Reads without
 * O_DIRECT copy through the PTEs and fault like any touch.
 *
 * What is not seen here (the kernel's own entry points, libaio's stubs,
 * io_uring, other processes' pins) is listed in libuvmpager-preload(7).
 */
/* both names of each call are defined here; off_t is 64-bit anyway */
#undef _FILE_OFFSET_BITS
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "shim/shim.h"
#include "uvmpager/uvmpager.h"

#define EXPORT __attribute__((visibility("default")))

/*
 * glibc's function of that name, found once. dlsym's own allocations
 * come back through our malloc: shim_busy keeps them in glibc's heap.
 */
static void *next_fn(void **cache, const char *name)
{
	void *f = __atomic_load_n(cache, __ATOMIC_ACQUIRE);

	if (!f) {
		shim_busy++;
		f = dlsym(RTLD_NEXT, name);
		shim_busy--;
		__atomic_store_n(cache, f, __ATOMIC_RELEASE);
	}
	return f;
}

#define NEXT(type, name) ((type)next_fn(&next_##name, #name))

static void *next_read, *next_pread64, *next_readv, *next_preadv64, *next_preadv64v2;
static void *next___read_chk, *next___pread64_chk;

/* Does a read from fd pin its buffer: O_DIRECT on a file or a block device? */
static bool pins_buffer(int fd)
{
	struct stat st;
	int fl = fcntl(fd, F_GETFL);

	/* a pipe can be O_DIRECT too (packet mode), and its reads copy */
	return fl >= 0 && (fl & O_DIRECT) && fstat(fd, &st) == 0 &&
	       (S_ISREG(st.st_mode) || S_ISBLK(st.st_mode));
}

/*
 * Mark [buf, buf + len) pinned if the read may pin arena memory; the
 * slot for unpin(), or -1. The cheap test first: most reads are not
 * into arena memory at all.
 */
static int pin(int fd, uintptr_t buf, size_t len)
{
	int saved = errno, slot;

	if (!len || shim_busy ||
	    !(shim_maybe((const void *)buf, len) || shim_heap_maybe((const void *)buf, len) ||
	      uvmpager_moved_parts(shim.client)) ||
	    !shim_owner())
		return -1;
	if (!pins_buffer(fd)) {
		errno = saved;
		return -1;
	}
	slot = uvmpager_pin_begin(shim.client, (const void *)buf, len);
	errno = saved;
	return slot < 0 ? -1 : slot;
}

static void unpin(int slot)
{
	if (slot >= 0)
		uvmpager_pin_end(shim.client, slot);
}

/* One range covering every arena buffer of iov (a hull: pinning more is safe). */
static int pin_iov(int fd, const struct iovec *iov, int n)
{
	uintptr_t lo = UINTPTR_MAX, hi = 0;
	bool anywhere = uvmpager_moved_parts(shim.client);

	if (n <= 0 || shim_busy || (!shim.arena && !heap_on() && !anywhere))
		return -1;
	for (int i = 0; i < n; i++) {
		uintptr_t b = (uintptr_t)iov[i].iov_base;

		if (!iov[i].iov_len || !(anywhere || shim_maybe(iov[i].iov_base, iov[i].iov_len) ||
					 shim_heap_maybe(iov[i].iov_base, iov[i].iov_len)))
			continue;
		lo = b < lo ? b : lo;
		hi = b + iov[i].iov_len > hi ? b + iov[i].iov_len : hi;
	}
	return lo < hi ? pin(fd, lo, hi - lo) : -1;
}

EXPORT ssize_t read(int fd, void *buf, size_t n)
{
	int slot = pin(fd, (uintptr_t)buf, n);
	ssize_t r = NEXT(ssize_t (*)(int, void *, size_t), read)(fd, buf, n);

	unpin(slot);
	return r;
}

EXPORT ssize_t pread64(int fd, void *buf, size_t n, off_t off)
{
	int slot = pin(fd, (uintptr_t)buf, n);
	ssize_t r = NEXT(ssize_t (*)(int, void *, size_t, off_t), pread64)(fd, buf, n, off);

	unpin(slot);
	return r;
}

EXPORT ssize_t pread(int fd, void *buf, size_t n, off_t off)
	__attribute__((alias("pread64")));

EXPORT ssize_t readv(int fd, const struct iovec *iov, int n)
{
	int slot = pin_iov(fd, iov, n);
	ssize_t r = NEXT(ssize_t (*)(int, const struct iovec *, int), readv)(fd, iov, n);

	unpin(slot);
	return r;
}

EXPORT ssize_t preadv64(int fd, const struct iovec *iov, int n, off_t off)
{
	int slot = pin_iov(fd, iov, n);
	ssize_t r = NEXT(ssize_t (*)(int, const struct iovec *, int, off_t), preadv64)(fd, iov, n,
										  off);

	unpin(slot);
	return r;
}

EXPORT ssize_t preadv(int fd, const struct iovec *iov, int n, off_t off)
	__attribute__((alias("preadv64")));

EXPORT ssize_t preadv64v2(int fd, const struct iovec *iov, int n, off_t off, int flags)
{
	int slot = pin_iov(fd, iov, n);
	ssize_t r = NEXT(ssize_t (*)(int, const struct iovec *, int, off_t, int),
			 preadv64v2)(fd, iov, n, off, flags);

	unpin(slot);
	return r;
}

EXPORT ssize_t preadv2(int fd, const struct iovec *iov, int n, off_t off, int flags)
	__attribute__((alias("preadv64v2")));

/* _FORTIFY_SOURCE: read and pread with a known buffer size come here. */
EXPORT ssize_t __read_chk(int fd, void *buf, size_t n, size_t buflen)
{
	int slot = n <= buflen ? pin(fd, (uintptr_t)buf, n) : -1;
	ssize_t r = NEXT(ssize_t (*)(int, void *, size_t, size_t), __read_chk)(fd, buf, n, buflen);

	unpin(slot);
	return r;
}

EXPORT ssize_t __pread64_chk(int fd, void *buf, size_t n, off_t off, size_t buflen)
{
	int slot = n <= buflen ? pin(fd, (uintptr_t)buf, n) : -1;
	ssize_t r = NEXT(ssize_t (*)(int, void *, size_t, off_t, size_t), __pread64_chk)(fd, buf, n,
										       off, buflen);

	unpin(slot);
	return r;
}

EXPORT ssize_t __pread_chk(int fd, void *buf, size_t n, off_t off, size_t buflen)
	__attribute__((alias("__pread64_chk")));
