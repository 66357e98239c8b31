/*
 * UAPI definitions newer than the oldest headers we build against
 * (Debian 12 ships 6.1). Values are the kernel's ABI and never change;
 * each is defined only when the system headers lack it, so building on
 * newer headers uses theirs. Whether the running kernel supports a
 * feature is a separate question: see uffd_probe().
 */
#ifndef UVMPAGER_UFFD_COMPAT_H
#define UVMPAGER_UFFD_COMPAT_H

#include <linux/fs.h>
#include <linux/types.h>
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>

/* --- linux/userfaultfd.h --- */

#ifndef USERFAULTFD_IOC
#define USERFAULTFD_IOC 0xAA
#endif
#ifndef USERFAULTFD_IOC_NEW
#define USERFAULTFD_IOC_NEW _IO(USERFAULTFD_IOC, 0x00)
#endif

#ifndef UFFD_FEATURE_WP_UNPOPULATED		/* 6.4 */
#define UFFD_FEATURE_WP_UNPOPULATED (1 << 13)
#endif
#ifndef UFFD_FEATURE_POISON			/* 6.6 */
#define UFFD_FEATURE_POISON (1 << 14)
#endif
#ifndef UFFD_FEATURE_WP_ASYNC			/* 6.7 */
#define UFFD_FEATURE_WP_ASYNC (1 << 15)
#endif
#ifndef UFFD_FEATURE_MOVE			/* 6.8 */
#define UFFD_FEATURE_MOVE (1 << 16)
#endif

#ifndef UFFDIO_CONTINUE_MODE_WP			/* 6.6 */
#define UFFDIO_CONTINUE_MODE_WP ((__u64)1 << 1)
#endif

/*
 * The struct and the ioctl number arrived together, so the ioctl macro
 * is the guard for both; UFFD_COMPAT_OWN_UFFDIO_POISON tells a reader
 * (or a test) which definition is in use.
 */
#ifndef UFFDIO_POISON				/* 6.6 */
#define UFFD_COMPAT_OWN_UFFDIO_POISON 1
#ifndef _UFFDIO_POISON
#define _UFFDIO_POISON (0x08)
#endif
struct uffdio_poison {
	struct uffdio_range range;
	__u64 mode;
	__s64 updated;
};
#define UFFDIO_POISON_MODE_DONTWAKE ((__u64)1 << 0)
#define UFFDIO_POISON _IOWR(UFFDIO, _UFFDIO_POISON, struct uffdio_poison)
#endif

/* --- linux/fs.h: PAGEMAP_SCAN (6.7) --- */

#ifndef PAGEMAP_SCAN
#define UFFD_COMPAT_OWN_PAGEMAP_SCAN 1
struct page_region {
	__u64 start;
	__u64 end;				/* exclusive */
	__u64 categories;
};

struct pm_scan_arg {
	__u64 size;				/* sizeof(struct pm_scan_arg) */
	__u64 flags;				/* PM_SCAN_* */
	__u64 start;
	__u64 end;
	__u64 walk_end;				/* out: where the walk stopped */
	__u64 vec;				/* struct page_region array */
	__u64 vec_len;
	__u64 max_pages;			/* 0 = no limit */
	__u64 category_inverted;
	__u64 category_mask;
	__u64 category_anyof_mask;
	__u64 return_mask;
};

#ifndef PAGEMAP_IOCTL_MAGIC
#define PAGEMAP_IOCTL_MAGIC 'f'
#endif
#define PAGEMAP_SCAN _IOWR(PAGEMAP_IOCTL_MAGIC, 16, struct pm_scan_arg)
#endif

#ifndef PAGE_IS_WPALLOWED
#define PAGE_IS_WPALLOWED (1 << 0)
#endif
#ifndef PAGE_IS_WRITTEN
#define PAGE_IS_WRITTEN (1 << 1)
#endif
#ifndef PAGE_IS_FILE
#define PAGE_IS_FILE (1 << 2)
#endif
#ifndef PAGE_IS_PRESENT
#define PAGE_IS_PRESENT (1 << 3)
#endif
#ifndef PAGE_IS_SWAPPED
#define PAGE_IS_SWAPPED (1 << 4)
#endif
#ifndef PAGE_IS_PFNZERO
#define PAGE_IS_PFNZERO (1 << 5)
#endif
#ifndef PAGE_IS_HUGE
#define PAGE_IS_HUGE (1 << 6)
#endif
#ifndef PAGE_IS_SOFT_DIRTY			/* 6.8 */
#define PAGE_IS_SOFT_DIRTY (1 << 7)
#endif
#ifndef PAGE_IS_GUARD				/* 6.14 */
#define PAGE_IS_GUARD (1 << 8)
#endif

#ifndef PM_SCAN_WP_MATCHING
#define PM_SCAN_WP_MATCHING (1 << 0)
#endif
#ifndef PM_SCAN_CHECK_WPASYNC
#define PM_SCAN_CHECK_WPASYNC (1 << 1)
#endif

/* --- /proc/<pid>/pagemap entry bits (Documentation/admin-guide/mm/pagemap.rst) --- */
#define PM_ENTRY_SOFT_DIRTY (1ULL << 55)
#define PM_ENTRY_UFFD_WP (1ULL << 57)
#define PM_ENTRY_SWAPPED (1ULL << 62)
#define PM_ENTRY_PRESENT (1ULL << 63)

#endif
