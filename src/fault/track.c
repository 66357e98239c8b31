/*
 * Dirty tracking backends.
 *
 * What the kernel does (measured on 6.18 with a memfd mapped MAP_SHARED,
 * registered MISSING|MINOR|WP; the probe programs are not kept):
 *
 * - Pages installed with UFFDIO_COPY/CONTINUE in WP mode read as present
 *   and not written. With WP_ASYNC a write clears the pte's uffd-wp bit
 *   with no message. PAGEMAP_SCAN with PM_SCAN_WP_MATCHING reports
 *   exactly the written pages, plus pages installed writable, plus every
 *   pte_none page in the range (no pte reads as written on a uffd-wp
 *   VMA, and so does a range with no page table at all), and
 *   write-protects what it reported, pte_none pages included (they get a
 *   uffd-wp marker): a second scan reports nothing.
 * - MADV_DONTNEED on the client view keeps the page cache and leaves, per
 *   pte, a uffd-wp marker if the pte was still write-protected (scan
 *   category SWAPPED, not WRITTEN) and pte_none if it had been written
 *   (scan category WRITTEN; the same when CONFIG_PT_RECLAIM frees the
 *   emptied page table and the scan sees a hole). A page written, then
 *   collected, then zapped leaves a marker. A page only in the page cache
 *   (filled through the engine view, never mapped in the client view)
 *   reads as written until a collect puts a marker on it. Same with sync
 *   write-protect: markers for protected ptes, nothing for pages the
 *   fault handler had unprotected.
 * - fallocate(PUNCH_HOLE) keeps the markers. A touch on a punched page is
 *   then a MISSING fault (a marker over a page still in the cache is a
 *   MINOR one); UFFDIO_COPY and engine-view write + UFFDIO_CONTINUE both
 *   resolve it. CONTINUE on a page not in the cache fails with EFAULT.
 * - Cost of a collect over 1 GiB of 4 KiB pages, all installed: about
 *   0.7 ms when clean, 0.9 ms with 1% of pages written at random
 *   (~2600 regions). A fenced scan over 1 GiB of markers: about 3 ms.
 *
 * Why a fence plus markers is race-free: a write and a zap of the same
 * pte serialise on the page-table lock. Either the write fault unprotected
 * the pte first (the zap then leaves nothing: written), or the zap came
 * first and the writer faults on the marker, which the engine holds. A
 * write-protected pte has no writable TLB entry left anywhere because the
 * collect that protected it flushed before returning.
 *
 * Soft-dirty (CONFIG_MEM_SOFT_DIRTY; off on these machines) cannot prove
 * any page clean while the target runs, so this backend reports every
 * page written:
 * - No atomic get-and-clear exists: pagemap bit 55 (or
 *   PAGE_IS_SOFT_DIRTY) is read, and clear_refs "4" clears the whole
 *   process later. A write landing between the read and the clear sets
 *   the bit and has it cleared without ever being seen. Reading again
 *   after the clear shows only later writes. Any present pte could take
 *   such a write, so every present page has to be reported written.
 * - A zap drops the bit with the pte (no marker keeps it), and the kernel
 *   zaps ptes on its own: reclaim of a shmem page unmaps it from every
 *   view. A page written and then reclaimed reads exactly like an
 *   untouched one, so non-present pages cannot be reported clean either.
 *   After the engine's own fence the same holds, which is why
 *   tracker_fenced_written sets every bit.
 * Making it sound would take freezing the target around read-and-clear
 * and pinning its pages against reclaim; neither belongs in a tracker.
 * The engine still gets the one guarantee it needs from its fence: a page
 * the engine wrote out while fenced stays clean until its next fault.
 *
 * AUTO order is therefore wp-async (exact, no fault per write), wp-sync
 * (exact, a fault per first write after a collect), soft-dirty last:
 * picking it is how the engine learns it has no cleanliness tracking.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "common/util.h"
#include "fault/track.h"

/* Regions per PAGEMAP_SCAN call; the walk resumes at walk_end when full. */
#define SCAN_VEC 256
/* Pagemap entries per pread in the fallback path. */
#define PAGEMAP_CHUNK 512

struct tracker {
	enum track_mode mode;
	int pagemap;			/* /proc/<pid>/pagemap */
	bool have_scan;			/* PAGEMAP_SCAN on that fd */
};

static const char *const mode_names[] = {
	[TRACK_AUTO] = "auto",
	[TRACK_WP_ASYNC] = "wp-async",
	[TRACK_SOFT_DIRTY] = "soft-dirty",
	[TRACK_WP_SYNC] = "wp-sync",
};

const char *track_mode_name(enum track_mode m)
{
	if ((unsigned)m >= ARRAY_SIZE(mode_names))
		return NULL;
	return mode_names[m];
}

int track_mode_parse(const char *s, enum track_mode *out)
{
	if (!s)
		return -EINVAL;
	for (size_t i = 0; i < ARRAY_SIZE(mode_names); i++) {
		if (!strcmp(s, mode_names[i])) {
			*out = (enum track_mode)i;
			return 0;
		}
	}
	return -EINVAL;
}

bool track_mode_offered(const struct uffd_caps *caps, enum track_mode m)
{
	switch (m) {
	case TRACK_WP_ASYNC:
		return caps->wp_shmem && caps->wp_async && caps->pagemap_scan;
	case TRACK_WP_SYNC:
		return caps->wp_shmem;
	case TRACK_SOFT_DIRTY:
		return caps->soft_dirty;
	case TRACK_AUTO:
		return track_mode_offered(caps, TRACK_WP_ASYNC) ||
		       track_mode_offered(caps, TRACK_WP_SYNC) ||
		       track_mode_offered(caps, TRACK_SOFT_DIRTY);
	}
	return false;
}

int track_mode_pick(const struct uffd_caps *caps, enum track_mode want, enum track_mode *out)
{
	static const enum track_mode order[] = {
		TRACK_WP_ASYNC, TRACK_WP_SYNC, TRACK_SOFT_DIRTY,
	};

	if (!track_mode_name(want))
		return -EINVAL;
	if (want != TRACK_AUTO) {
		if (!track_mode_offered(caps, want))
			return -EOPNOTSUPP;
		*out = want;
		return 0;
	}
	for (size_t i = 0; i < ARRAY_SIZE(order); i++) {
		if (track_mode_offered(caps, order[i])) {
			*out = order[i];
			return 0;
		}
	}
	return -EOPNOTSUPP;
}

uint64_t track_uffd_features(enum track_mode m)
{
	switch (m) {
	case TRACK_WP_ASYNC:
		/* The kernel implies WP_UNPOPULATED; ask for it so a refusal names it. */
		return UFFD_FEATURE_WP_HUGETLBFS_SHMEM | UFFD_FEATURE_WP_ASYNC |
		       UFFD_FEATURE_WP_UNPOPULATED;
	case TRACK_WP_SYNC:
		return UFFD_FEATURE_WP_HUGETLBFS_SHMEM;
	case TRACK_SOFT_DIRTY:
	case TRACK_AUTO:
		break;
	}
	return 0;
}

bool track_install_wp(enum track_mode m)
{
	return m == TRACK_WP_ASYNC || m == TRACK_WP_SYNC;
}

static bool scan_supported(int pagemap)
{
	struct page_region region;
	struct pm_scan_arg arg = {
		.size = sizeof(arg),
		.start = 0,
		.end = PAGE_SIZE,		/* never mapped: an empty answer */
		.vec = (uintptr_t)&region,
		.vec_len = 1,
		.category_anyof_mask = PAGE_IS_PRESENT,
		.return_mask = PAGE_IS_PRESENT,
	};

	return ioctl(pagemap, PAGEMAP_SCAN, &arg) >= 0;
}

int tracker_create(enum track_mode m, pid_t pid, struct tracker **out)
{
	char path[64];
	struct tracker *t;
	int r;

	if (m == TRACK_AUTO || !track_mode_name(m) || pid < 0)
		return -EINVAL;
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->mode = m;
	if (pid)
		snprintf(path, sizeof(path), "/proc/%d/pagemap", (int)pid);
	else
		snprintf(path, sizeof(path), "/proc/self/pagemap");
	/* Opened for every mode: it checks access to the target up front. */
	t->pagemap = open(path, O_RDONLY | O_CLOEXEC);
	if (t->pagemap < 0) {
		r = -errno;
		goto err;
	}
	t->have_scan = scan_supported(t->pagemap);
	if (m == TRACK_WP_ASYNC && !t->have_scan) {
		r = -EOPNOTSUPP;
		goto err_pagemap;
	}
	*out = t;
	return 0;

err_pagemap:
	close(t->pagemap);
err:
	free(t);
	return r;
}

void tracker_destroy(struct tracker *t)
{
	if (!t)
		return;
	close(t->pagemap);
	free(t);
}

enum track_mode tracker_mode(const struct tracker *t)
{
	return t->mode;
}

/* Sets (value) or clears bits [from, to). */
static void bits_fill(uint64_t *map, size_t from, size_t to, bool value)
{
	while (from < to && from % 64) {
		value ? bitmap_set(map, from) : bitmap_clear(map, from);
		from++;
	}
	for (; from + 64 <= to; from += 64)
		map[from / 64] = value ? ~0ULL : 0;
	for (; from < to; from++)
		value ? bitmap_set(map, from) : bitmap_clear(map, from);
}

/*
 * Runs PAGEMAP_SCAN over [addr, addr + npages pages) with the given
 * selection, resuming where a full output buffer stopped it, and sets
 * (value) or clears the bits of every reported page.
 */
static int scan_mark(struct tracker *t, uintptr_t addr, size_t npages, uint64_t flags,
		     uint64_t inverted, uint64_t mask, uint64_t anyof, uint64_t ret_mask,
		     uint64_t *bits, bool value)
{
	struct page_region vec[SCAN_VEC];
	uintptr_t end = addr + npages * PAGE_SIZE, at = addr;

	while (at < end) {
		struct pm_scan_arg arg = {
			.size = sizeof(arg),
			.flags = flags,
			.start = at,
			.end = end,
			.vec = (uintptr_t)vec,
			.vec_len = SCAN_VEC,
			.category_inverted = inverted,
			.category_mask = mask,
			.category_anyof_mask = anyof,
			.return_mask = ret_mask,
		};
		/*
		 * No retry on error: with WP_MATCHING the failed call may have
		 * protected pages whose report is lost. The caller reports the
		 * whole range written instead.
		 */
		long n = ioctl(t->pagemap, PAGEMAP_SCAN, &arg);

		if (n < 0)
			return -errno;
		for (long i = 0; i < n; i++) {
			uintptr_t s = MAX((uintptr_t)vec[i].start, at);
			uintptr_t e = MIN((uintptr_t)vec[i].end, end);

			if (s < e)
				bits_fill(bits, (s - addr) / PAGE_SIZE, (e - addr) / PAGE_SIZE, value);
		}
		if (arg.walk_end <= at || arg.walk_end > end)
			return -EIO;
		at = arg.walk_end;
	}
	return 0;
}

static int collect_wp_async(struct tracker *t, uintptr_t addr, size_t npages, uint64_t *written)
{
	/*
	 * Asking for WRITTEN alone takes the kernel's fast path, where a
	 * pte_none page counts as written and gets a marker; CHECK_WPASYNC
	 * refuses a range that is not async-protected instead of reporting
	 * it clean.
	 */
	return scan_mark(t, addr, npages, PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC,
			 0, 0, PAGE_IS_WRITTEN, PAGE_IS_WRITTEN, written, true);
}

int tracker_collect(struct tracker *t, int ufd, uintptr_t addr, size_t npages, uint64_t *written)
{
	int r = 0;

	if (!t || !written || (addr & (PAGE_SIZE - 1)))
		return -EINVAL;
	if (!npages)
		return 0;
	bits_fill(written, 0, npages, false);
	switch (t->mode) {
	case TRACK_WP_ASYNC:
		r = collect_wp_async(t, addr, npages, written);
		break;
	case TRACK_WP_SYNC:
		r = uffd_writeprotect(ufd, (void *)addr, npages * PAGE_SIZE, true, 0);
		break;
	case TRACK_SOFT_DIRTY:
	case TRACK_AUTO:
		bits_fill(written, 0, npages, true);
		break;
	}
	if (r < 0)
		bits_fill(written, 0, npages, true);
	return r;
}

/*
 * Clears bit i of bits for every page of [addr, addr + npages pages)
 * whose /proc/pid/pagemap entry passes clear(); stops at the first
 * failed read and returns its error (the caller then sets every bit).
 */
static int pagemap_clear_if(struct tracker *t, uintptr_t addr, size_t npages, uint64_t *bits,
			    bool (*clear)(uint64_t entry))
{
	uint64_t entries[PAGEMAP_CHUNK];

	for (size_t done = 0; done < npages;) {
		size_t n = MIN(npages - done, (size_t)PAGEMAP_CHUNK);
		off_t off = (off_t)((addr / PAGE_SIZE + done) * sizeof(uint64_t));
		ssize_t got = pread(t->pagemap, entries, n * sizeof(uint64_t), off);

		if (got < 0)
			return -errno;
		if ((size_t)got < n * sizeof(uint64_t))
			return -EIO;
		for (size_t i = 0; i < n; i++)
			if (clear(entries[i]))
				bitmap_clear(bits, done + i);
		done += n;
	}
	return 0;
}

/* A uffd-wp marker: zapped while still write-protected (kernels before PAGEMAP_SCAN). */
static bool is_marker(uint64_t v)
{
	return (v & PM_ENTRY_UFFD_WP) && !(v & PM_ENTRY_PRESENT);
}

/* Present or a marker, the bit is the pte's own uffd-wp. */
static bool is_protected(uint64_t v)
{
	return v & PM_ENTRY_UFFD_WP;
}

/* No pte, or only the marker a zap left. */
static bool is_zapped(uint64_t v)
{
	return !(v & PM_ENTRY_PRESENT) && (!(v & PM_ENTRY_SWAPPED) || (v & PM_ENTRY_UFFD_WP));
}

int tracker_fenced_written(struct tracker *t, int ufd, uintptr_t addr, size_t npages,
			   uint64_t *written)
{
	int r = 0;

	if (!t || !written || (addr & (PAGE_SIZE - 1)))
		return -EINVAL;
	if (!npages)
		return 0;
	/* Written until proven otherwise. */
	bits_fill(written, 0, npages, true);
	switch (t->mode) {
	case TRACK_WP_ASYNC:
	case TRACK_WP_SYNC:
		if (!t->have_scan) {
			r = pagemap_clear_if(t, addr, npages, written, is_marker);
			break;
		}
		/* Proven clean: a swap-type entry (the marker) still write-protected. */
		r = scan_mark(t, addr, npages, 0, PAGE_IS_WRITTEN,
			      PAGE_IS_SWAPPED | PAGE_IS_WRITTEN, 0,
			      PAGE_IS_SWAPPED | PAGE_IS_WRITTEN, written, false);
		break;
	case TRACK_SOFT_DIRTY:
	case TRACK_AUTO:
		break;
	}
	if (r < 0)
		bits_fill(written, 0, npages, true);
	return r;
}

int tracker_unprotected(struct tracker *t, uintptr_t addr, size_t npages, uint64_t *written)
{
	int r;

	if (!t || !written || (addr & (PAGE_SIZE - 1)))
		return -EINVAL;
	/* Written until proven otherwise. */
	bits_fill(written, 0, npages, true);
	if (t->mode != TRACK_WP_ASYNC && t->mode != TRACK_WP_SYNC)
		return 0;
	r = pagemap_clear_if(t, addr, npages, written, is_protected);
	if (r < 0)
		bits_fill(written, 0, npages, true);
	return r;
}

int tracker_mapped(struct tracker *t, uintptr_t addr, size_t npages, uint64_t *mapped)
{
	int r;

	if (!t || !mapped || (addr & (PAGE_SIZE - 1)))
		return -EINVAL;
	bits_fill(mapped, 0, npages, true);
	r = pagemap_clear_if(t, addr, npages, mapped, is_zapped);
	if (r < 0)
		bits_fill(mapped, 0, npages, true);
	return r;
}

bool tracker_mm_alive(struct tracker *t)
{
	uint64_t entry;

	/* the pagemap file holds the mm it was opened on: empty once it died */
	return !t || pread(t->pagemap, &entry, sizeof(entry), 0) != 0;
}
