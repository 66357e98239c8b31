#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/util.h"
#include "fault/uffd.h"

/*
 * EAGAIN without progress means the target's layout is changing and an
 * event on this very uffd has to be read first; when the caller is the
 * reader, spinning forever would never end. Give the other side a few
 * chances, then hand EAGAIN back.
 */
#define STALL_RETRIES 64

static int open_uffd_fd(void)
{
	int fd, dev, err;

#ifdef SYS_userfaultfd
	fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (fd >= 0)
		return fd;
	err = errno;
#else
	err = ENOSYS;
#endif
	/*
	 * The syscall is refused to unprivileged callers when
	 * vm.unprivileged_userfaultfd=0; the device is governed by its file
	 * mode instead.
	 */
	dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
	if (dev < 0)
		return errno == ENOENT ? -err : -errno;
	fd = ioctl(dev, USERFAULTFD_IOC_NEW, O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		err = errno;
	close(dev);
	return fd >= 0 ? fd : -err;
}

static int api_handshake(int fd, uint64_t features, uint64_t *offered)
{
	struct uffdio_api api = { .api = UFFD_API, .features = features };

	if (ioctl(fd, UFFDIO_API, &api) < 0)
		return -errno;
	if (offered)
		*offered = api.features;
	return 0;
}

/* UFFDIO_API works once per fd, so asking what is offered costs a fd. */
static int features_offered(uint64_t *offered)
{
	int fd, r;

	fd = open_uffd_fd();
	if (fd < 0)
		return fd;
	r = api_handshake(fd, 0, offered);
	close(fd);
	return r;
}

int uffd_api(int fd, uint64_t features, uint64_t *got)
{
	uint64_t offered = 0;
	int r;

	r = api_handshake(fd, features, &offered);
	if (r == 0) {
		/* The kernel reports everything it could offer; this fd has what was asked. */
		if (features & UFFD_FEATURE_WP_ASYNC)
			features |= UFFD_FEATURE_WP_UNPOPULATED;
		if (got)
			*got = features & offered;
		return 0;
	}
	/* The kernel says EINVAL both for a bad request and an unknown feature. */
	if (r == -EINVAL && features_offered(&offered) == 0 && (features & ~offered))
		return -EOPNOTSUPP;
	return r;
}

int uffd_create(uint64_t features, uint64_t *got)
{
	int fd, r;

	fd = open_uffd_fd();
	if (fd < 0)
		return fd;
	r = uffd_api(fd, features, got);
	if (r < 0) {
		close(fd);
		return r;
	}
	return fd;
}

int uffd_register(int ufd, void *addr, size_t len, unsigned modes, uint64_t *ioctls)
{
	struct uffdio_register reg = {
		.range = { .start = (uintptr_t)addr, .len = len },
	};

	if (!modes || (modes & ~(UFFD_MISSING | UFFD_MINOR | UFFD_WP)))
		return -EINVAL;
	if (modes & UFFD_MISSING)
		reg.mode |= UFFDIO_REGISTER_MODE_MISSING;
	if (modes & UFFD_MINOR)
		reg.mode |= UFFDIO_REGISTER_MODE_MINOR;
	if (modes & UFFD_WP)
		reg.mode |= UFFDIO_REGISTER_MODE_WP;
	if (ioctl(ufd, UFFDIO_REGISTER, &reg) < 0)
		return -errno;
	if (ioctls)
		*ioctls = reg.ioctls;
	return 0;
}

int uffd_unregister(int ufd, void *addr, size_t len)
{
	struct uffdio_range range = { .start = (uintptr_t)addr, .len = len };

	return ioctl(ufd, UFFDIO_UNREGISTER, &range) < 0 ? -errno : 0;
}

int uffd_wake(int ufd, void *addr, size_t len)
{
	struct uffdio_range range = { .start = (uintptr_t)addr, .len = len };

	return ioctl(ufd, UFFDIO_WAKE, &range) < 0 ? -errno : 0;
}

int uffd_layout_settled(int ufd, void *page)
{
	struct uffdio_zeropage z = {
		.range = { .start = (uintptr_t)page, .len = PAGE_SIZE },
		.mode = UFFDIO_ZEROPAGE_MODE_DONTWAKE,
	};

	if (ioctl(ufd, UFFDIO_ZEROPAGE, &z) == 0)
		return -EIO;
	switch (errno) {
	case EEXIST:
		return 1;
	case EAGAIN:
	case ENOENT:
	case ESRCH:
		return 0;
	default:
		return -errno;
	}
}

enum resolve_op { OP_COPY, OP_CONTINUE, OP_POISON };

/*
 * One ioctl over [dst, dst+len). Returns the bytes it completed (the
 * kernel reports partial progress in the struct, or a negative errno
 * there when nothing was done) and sets *err to the errno it stopped
 * with, 0 when the whole range was done.
 */
static size_t resolve_step(int ufd, enum resolve_op op, uintptr_t dst, uintptr_t src,
			   size_t len, unsigned flags, int *err)
{
	int64_t progress = 0;
	int r = 0;

	switch (op) {
	case OP_COPY: {
		struct uffdio_copy c = { .dst = dst, .src = src, .len = len };

		if (flags & UFFD_F_DONTWAKE)
			c.mode |= UFFDIO_COPY_MODE_DONTWAKE;
		if (flags & UFFD_F_WP)
			c.mode |= UFFDIO_COPY_MODE_WP;
		r = ioctl(ufd, UFFDIO_COPY, &c);
		progress = c.copy;
		break;
	}
	case OP_CONTINUE: {
		struct uffdio_continue c = { .range = { .start = dst, .len = len } };

		if (flags & UFFD_F_DONTWAKE)
			c.mode |= UFFDIO_CONTINUE_MODE_DONTWAKE;
		if (flags & UFFD_F_WP)
			c.mode |= UFFDIO_CONTINUE_MODE_WP;
		r = ioctl(ufd, UFFDIO_CONTINUE, &c);
		progress = c.mapped;
		break;
	}
	case OP_POISON: {
		struct uffdio_poison p = { .range = { .start = dst, .len = len } };

		if (flags & UFFD_F_DONTWAKE)
			p.mode |= UFFDIO_POISON_MODE_DONTWAKE;
		r = ioctl(ufd, UFFDIO_POISON, &p);
		progress = p.updated;
		break;
	}
	}
	if (r == 0) {
		*err = 0;
		return len;
	}
	*err = errno;
	if (progress <= 0)
		return 0;
	return MIN((size_t)progress, len);
}

static int resolve(int ufd, enum resolve_op op, uintptr_t dst, uintptr_t src,
		   size_t len, unsigned flags)
{
	uintptr_t start = dst;
	size_t total = len, skipped = 0;
	int stalls = 0, err;

	if ((dst | len) & (PAGE_SIZE - 1))
		return -EINVAL;
	while (len) {
		size_t done = resolve_step(ufd, op, dst, src, len, flags, &err);

		dst += done;
		src += done;
		len -= done;
		if (done)
			stalls = 0;
		if (!err || (err == EAGAIN && done))
			continue;
		if (err == EEXIST) {
			/* Something is mapped at dst already; the rest may still need us. */
			dst += PAGE_SIZE;
			src += PAGE_SIZE;
			len -= PAGE_SIZE;
			skipped++;
			continue;
		}
		if ((err == EAGAIN || err == EINTR) && ++stalls <= STALL_RETRIES) {
			sched_yield();
			continue;
		}
		return -err;
	}
	/*
	 * The kernel wakes only the ranges it filled; a thread that faulted
	 * on a page someone else filled first would sleep on.
	 */
	if (skipped && !(flags & UFFD_F_DONTWAKE)) {
		int r = uffd_wake(ufd, (void *)start, total);

		if (r < 0)
			return r;
	}
	return skipped > INT_MAX ? INT_MAX : (int)skipped;
}

int uffd_copy(int ufd, void *dst, const void *src, size_t len, unsigned flags)
{
	return resolve(ufd, OP_COPY, (uintptr_t)dst, (uintptr_t)src, len, flags);
}

int uffd_continue(int ufd, void *addr, size_t len, unsigned flags)
{
	return resolve(ufd, OP_CONTINUE, (uintptr_t)addr, 0, len, flags);
}

int uffd_poison(int ufd, void *addr, size_t len, unsigned flags)
{
	uint64_t offered;
	int r;

	/*
	 * A zap of a write-protected pte leaves a uffd-wp marker, and POISON
	 * refuses any non-none pte, markers included (EEXIST): the toucher
	 * would fault again forever. A page being poisoned has no data whose
	 * writes need tracking, so its markers go first. Ranges registered
	 * without WP refuse the unprotect; nothing to clear there.
	 */
	uffd_writeprotect(ufd, addr, len, false, UFFD_F_DONTWAKE);
	r = resolve(ufd, OP_POISON, (uintptr_t)addr, 0, len, flags & ~UFFD_F_WP);
	/* An unknown uffd ioctl fails with EINVAL, indistinguishable from a bad range. */
	if ((r == -EINVAL || r == -ENOTTY) && features_offered(&offered) == 0 &&
	    !(offered & UFFD_FEATURE_POISON))
		return -EOPNOTSUPP;
	return r;
}

int uffd_writeprotect(int ufd, void *addr, size_t len, bool protect, unsigned flags)
{
	struct uffdio_writeprotect wp = {
		.range = { .start = (uintptr_t)addr, .len = len },
	};
	int stalls = 0;

	if (protect)
		wp.mode |= UFFDIO_WRITEPROTECT_MODE_WP;
	if (flags & UFFD_F_DONTWAKE)
		wp.mode |= UFFDIO_WRITEPROTECT_MODE_DONTWAKE;
	/* No partial progress is reported; redoing the whole range is idempotent. */
	while (ioctl(ufd, UFFDIO_WRITEPROTECT, &wp) < 0) {
		if ((errno != EAGAIN && errno != EINTR) || ++stalls > STALL_RETRIES)
			return -errno;
		sched_yield();
	}
	return 0;
}

int uffd_read_msgs(int ufd, struct uffd_msg *msgs, int max)
{
	ssize_t n;

	if (max <= 0)
		return -EINVAL;
	do
		n = read(ufd, msgs, (size_t)max * sizeof(*msgs));
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EAGAIN ? 0 : -errno;
	return (int)(n / (ssize_t)sizeof(*msgs));
}

/* --- probe --- */

static bool dev_userfaultfd_works(void)
{
	int dev, fd;

	dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
	if (dev < 0)
		return false;
	fd = ioctl(dev, USERFAULTFD_IOC_NEW, O_CLOEXEC | O_NONBLOCK);
	close(dev);
	if (fd < 0)
		return false;
	close(fd);
	return true;
}

/* Does registering a one-page memfd mapping in `modes` work with `features`? */
static bool shmem_register_works(uint64_t features, unsigned modes)
{
	bool ok = false;
	void *map;
	int ufd, mfd;

	ufd = uffd_create(features, NULL);
	if (ufd < 0)
		return false;
	mfd = memfd_create("uvmpager-probe", MFD_CLOEXEC);
	if (mfd < 0)
		goto out_uffd;
	if (ftruncate(mfd, PAGE_SIZE) < 0)
		goto out_memfd;
	map = mmap(NULL, PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
	if (map == MAP_FAILED)
		goto out_memfd;
	ok = uffd_register(ufd, map, PAGE_SIZE, modes, NULL) == 0;
	munmap(map, PAGE_SIZE);
out_memfd:
	close(mfd);
out_uffd:
	close(ufd);
	return ok;
}

/* UFFDIO_CONTINUE_MODE_WP arrived in 6.6: 6.1 answers EINVAL. */
static bool continue_wp_works(uint64_t features)
{
	bool ok = false;
	char *reg, *plain;
	int ufd, mfd;

	ufd = uffd_create(features, NULL);
	if (ufd < 0)
		return false;
	mfd = memfd_create("uvmpager-probe", MFD_CLOEXEC);
	if (mfd < 0 || ftruncate(mfd, PAGE_SIZE) < 0)
		goto out;
	reg = mmap(NULL, PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
	plain = mmap(NULL, PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
	if (reg != MAP_FAILED && plain != MAP_FAILED &&
	    uffd_register(ufd, reg, PAGE_SIZE, UFFD_MINOR | UFFD_WP, NULL) == 0) {
		plain[0] = 1;   /* in the page cache, not mapped in reg: a MINOR case */
		ok = uffd_continue(ufd, reg, PAGE_SIZE, UFFD_F_WP) >= 0;
	}
	if (reg != MAP_FAILED)
		munmap(reg, PAGE_SIZE);
	if (plain != MAP_FAILED)
		munmap(plain, PAGE_SIZE);
out:
	if (mfd >= 0)
		close(mfd);
	close(ufd);
	return ok;
}

static bool pagemap_scan_works(void)
{
	struct page_region region;
	struct pm_scan_arg arg;
	bool ok = false;
	char *page;
	int pm;

	pm = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (pm < 0)
		return false;
	page = mmap(NULL, PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (page == MAP_FAILED)
		goto out;
	*(volatile char *)page = 1;
	arg = (struct pm_scan_arg){
		.size = sizeof(arg),
		.start = (uintptr_t)page,
		.end = (uintptr_t)page + PAGE_SIZE,
		.vec = (uintptr_t)&region,
		.vec_len = 1,
		.category_anyof_mask = PAGE_IS_PRESENT,
		.return_mask = PAGE_IS_PRESENT,
	};
	ok = ioctl(pm, PAGEMAP_SCAN, &arg) == 1 && region.start == (uintptr_t)page;
	munmap(page, PAGE_SIZE);
out:
	close(pm);
	return ok;
}

static int pagemap_entry(int pm, const void *addr, uint64_t *entry)
{
	off_t off = (off_t)((uintptr_t)addr / PAGE_SIZE * sizeof(*entry));

	return pread(pm, entry, sizeof(*entry), off) == sizeof(*entry) ? 0 : -1;
}

/*
 * Without CONFIG_MEM_SOFT_DIRTY, clear_refs accepts "4" and does nothing,
 * so only the effect proves support: the bit must drop on clear and come
 * back on a write.
 */
static bool soft_dirty_works(void)
{
	uint64_t entry;
	bool ok = false;
	int pm, cr;
	char *page;

	pm = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (pm < 0)
		return false;
	cr = open("/proc/self/clear_refs", O_WRONLY | O_CLOEXEC);
	if (cr < 0)
		goto out_pm;
	page = mmap(NULL, PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (page == MAP_FAILED)
		goto out_cr;
	*(volatile char *)page = 1;
	if (write(cr, "4", 1) != 1)
		goto out_page;
	if (pagemap_entry(pm, page, &entry) < 0 || (entry & PM_ENTRY_SOFT_DIRTY))
		goto out_page;
	*(volatile char *)page = 2;
	if (pagemap_entry(pm, page, &entry) < 0)
		goto out_page;
	ok = entry & PM_ENTRY_SOFT_DIRTY;
out_page:
	munmap(page, PAGE_SIZE);
out_cr:
	close(cr);
out_pm:
	close(pm);
	return ok;
}

/* The [selected] word of a sysfs choice file, "" when unreadable. */
static void sysfs_choice(const char *path, char *out, size_t size)
{
	char buf[256], *open_b, *close_b;
	ssize_t n;
	int fd;

	out[0] = '\0';
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return;
	buf[n] = '\0';
	open_b = strchr(buf, '[');
	close_b = open_b ? strchr(open_b, ']') : NULL;
	if (!close_b || (size_t)(close_b - open_b - 1) >= size)
		return;
	memcpy(out, open_b + 1, (size_t)(close_b - open_b - 1));
	out[close_b - open_b - 1] = '\0';
}

#define THP_DIR "/sys/kernel/mm/transparent_hugepage"

/*
 * MADV_NOHUGEPAGE holds off "advise" and "within_size"; "always" and
 * "force" (globally, or per mTHP size since 6.11) give a 4 KiB touch a
 * large folio the engine cannot track or evict page by page.
 */
static bool thp_shmem_forced(void)
{
	char choice[32], path[PATH_MAX];
	struct dirent *de;
	bool forced;
	DIR *dir;

	sysfs_choice(THP_DIR "/shmem_enabled", choice, sizeof(choice));
	forced = !strcmp(choice, "always") || !strcmp(choice, "force");
	dir = opendir(THP_DIR);
	if (!dir)
		return forced;
	while (!forced && (de = readdir(dir))) {
		if (strncmp(de->d_name, "hugepages-", 10))
			continue;
		snprintf(path, sizeof(path), THP_DIR "/%s/shmem_enabled", de->d_name);
		sysfs_choice(path, choice, sizeof(choice));
		forced = !strcmp(choice, "always") || !strcmp(choice, "force");
	}
	closedir(dir);
	return forced;
}

int uffd_probe(struct uffd_caps *caps)
{
	uint64_t f;
	int r;

	memset(caps, 0, sizeof(*caps));
	r = features_offered(&caps->features);
	if (r < 0)
		return r;
	f = caps->features;
	caps->dev_userfaultfd = dev_userfaultfd_works();
	caps->missing_shmem = (f & UFFD_FEATURE_MISSING_SHMEM) &&
		shmem_register_works(UFFD_FEATURE_MISSING_SHMEM, UFFD_MISSING);
	caps->minor_shmem = (f & UFFD_FEATURE_MINOR_SHMEM) &&
		shmem_register_works(UFFD_FEATURE_MINOR_SHMEM, UFFD_MINOR);
	caps->wp_shmem = (f & UFFD_FEATURE_WP_HUGETLBFS_SHMEM) &&
		shmem_register_works(UFFD_FEATURE_WP_HUGETLBFS_SHMEM, UFFD_WP);
	caps->wp_async = (f & UFFD_FEATURE_WP_ASYNC) && caps->wp_shmem &&
		shmem_register_works(UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_HUGETLBFS_SHMEM, UFFD_WP);
	caps->continue_wp = caps->minor_shmem && caps->wp_shmem &&
		continue_wp_works(UFFD_FEATURE_MINOR_SHMEM | UFFD_FEATURE_WP_HUGETLBFS_SHMEM);
	caps->wp_unpopulated = f & UFFD_FEATURE_WP_UNPOPULATED;
	caps->poison = f & UFFD_FEATURE_POISON;
	caps->pagemap_scan = pagemap_scan_works();
	caps->soft_dirty = soft_dirty_works();
	caps->event_remove = f & UFFD_FEATURE_EVENT_REMOVE;
	caps->event_unmap = f & UFFD_FEATURE_EVENT_UNMAP;
	caps->event_remap = f & UFFD_FEATURE_EVENT_REMAP;
	caps->event_fork = f & UFFD_FEATURE_EVENT_FORK;
	caps->thp_shmem_forced = thp_shmem_forced();
	return 0;
}
