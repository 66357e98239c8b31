/*
 * The mmap family. Private anonymous mappings of any size from one page
 * (shim.map_min) and without a fixed address come from the arena,
 * read-write or PROT_NONE: an allocator mapping small pieces is managed
 * like one mapping big blocks, and a runtime reserving its heap with
 * PROT_NONE finds it managed when it commits it, with mprotect or with
 * mmap(MAP_FIXED) over the reservation (commit below). munmap, mremap,
 * madvise and mprotect of arena memory act on the arena instead of the
 * kernel. A range is handled piece by piece: what is not arena memory
 * (or was mapped over, FOREIGN) goes to the kernel as asked.
 */
/*
 * Built with _FILE_OFFSET_BITS=64 the header would rename our mmap to
 * mmap64; both names are defined here, and off_t is 64-bit anyway.
 */
#undef _FILE_OFFSET_BITS
#include <errno.h>
#include <stdarg.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "client/rawsys.h"
#include "common/util.h"
#include "shim/shim.h"
#include "uvmpager/uvmpager.h"

#ifndef MADV_DONTNEED_LOCKED
#define MADV_DONTNEED_LOCKED 24
#endif
#ifndef MREMAP_DONTUNMAP
#define MREMAP_DONTUNMAP 4
#endif

#define EXPORT __attribute__((visibility("default")))

extern void *__sbrk(intptr_t inc);

/*
 * The largest mapping served: beyond it the daemon's per-object work
 * (walks over every page of an object at fork or stat) would cost more
 * than the memory is worth. Reservations of address space this big
 * (sanitizer shadows, sandboxes) pass through, and the program is told.
 */
#define MAP_MAX (64ULL << 30)

/*
 * Private anonymous memory the arena can stand in for, wherever the
 * address comes from: read-write, or PROT_NONE (a reservation).
 */
/*
 * Read-write (executable too: a JIT's code cache) or no access (a
 * reservation). Executable managed memory needs memfds that may be
 * mapped executable (not under vm.memfd_noexec = 2): where the kernel
 * refuses, the mapping is the kernel's, and said once (exec_refused).
 */
static bool anon_private(int prot, int flags)
{
	return ((prot & ~PROT_EXEC) == (PROT_READ | PROT_WRITE) || prot == PROT_NONE) &&
	       (flags & ~(MAP_NORESERVE | MAP_FIXED)) == (MAP_PRIVATE | MAP_ANONYMOUS);
}

/* Should a call on [addr, addr + len) look at the arena at all? */
static bool involved(const void *addr, size_t len)
{
	/* an empty range: the kernel's answer is the right one */
	return len && !shim_busy && shim_maybe(addr, len) && shim_owner();
}

static bool page_range(const void *addr, size_t len, uintptr_t *end)
{
	uintptr_t s = (uintptr_t)addr;

	if ((s & (PAGE_SIZE - 1)) || !len || len > UINTPTR_MAX - s - PAGE_SIZE)
		return false;
	*end = ALIGN_UP(s + len, PAGE_SIZE);
	return true;
}

/* Keeps a range inside a segment out of the kernel's hands once the program let it go. */
static void hold(uintptr_t start, uintptr_t end)
{
	raw_mmap((void *)start, end - start, PROT_NONE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0);
}

/* Managed memory may not be made executable here: the kernel's mapping serves, said once. */
static void exec_refused(size_t len, int err)
{
	shim_unmanaged("executable memory (%zu KiB at first: memfds may not be mapped "
		       "executable here, %s; see vm.memfd_noexec)", len >> 10, strerror(err));
}

/*
 * A new mapping from the arena, or NULL: the kernel's then. An address
 * hint is not kept, as the kernel need not keep it: callers that want
 * their hint check the answer (jemalloc, HotSpot) and try again.
 */
static void *serve(size_t len, int prot)
{
	void *p;

	if (len < shim.map_min || !shim_owner())
		return NULL;
	if (len > MAP_MAX) {
		shim_unmanaged("a mapping of %zu MiB (more than the %llu GiB managed at once)",
			       len >> 20, MAP_MAX >> 30);
		return NULL;
	}
	p = shim_alloc(len, 0);
	if (p && prot != (PROT_READ | PROT_WRITE)) {
		/* marked first: once freed, the pages are made read-write again */
		arena_mark_protect(shim.arena, p, ALIGN_UP(len, PAGE_SIZE));
		if (raw_mprotect(p, len, prot) < 0) {
			exec_refused(len, errno);
			arena_free(shim.arena, p, ALIGN_UP(len, PAGE_SIZE));
			return NULL;
		}
	}
	return p;
}

/*
 * mmap(MAP_FIXED) of private anonymous memory over [addr, end), where the
 * program has arena blocks: the reserve-then-commit pattern (and its
 * reverse, decommitting with PROT_NONE). The pages stay managed: they
 * read as zeros, as a fresh mapping would, and take the new protection.
 * -ENOENT when some of the range is not a block (the kernel maps it).
 */
static int commit(uintptr_t addr, uintptr_t end, int prot)
{
	uintptr_t cur, piece;

	for (cur = addr; cur < end; cur = piece)
		if (arena_lookup(shim.arena, (void *)cur, &piece) != ARENA_USED)
			return -ENOENT;
	/* writable while zeroed: without the daemon, shim_zero writes */
	raw_mprotect((void *)addr, end - addr, PROT_READ | PROT_WRITE);
	shim_zero((void *)addr, end - addr);
	if (prot != (PROT_READ | PROT_WRITE)) {
		arena_mark_protect(shim.arena, (void *)addr, end - addr);
		if (raw_mprotect((void *)addr, end - addr, prot) < 0) {
			exec_refused(end - addr, errno);
			return -EACCES;
		}
	}
	return 0;
}

EXPORT void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	uintptr_t end;
	void *p;

	if (!(flags & MAP_FIXED)) {
		/* MAP_FIXED_NOREPLACE is not among anon_private's flags */
		if (!shim_busy && anon_private(prot, flags) && (p = serve(len, prot)))
			return p;
	} else if (involved(addr, len) && page_range(addr, len, &end)) {
		if (anon_private(prot, flags) && commit((uintptr_t)addr, end, prot) == 0)
			return addr;
		arena_take_over(shim.arena, addr, end - (uintptr_t)addr);
	}
	if ((flags & MAP_ANONYMOUS) && !shim_busy)
		shim_watch();
	return raw_mmap(addr, len, prot, flags, fd, off);
}

EXPORT void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off)
	__attribute__((alias("mmap")));

EXPORT int munmap(void *addr, size_t len)
{
	uintptr_t cur = (uintptr_t)addr, end, piece;
	int r, err = 0;

	if (!involved(addr, len))
		return raw_munmap(addr, len);
	if (!page_range(addr, len, &end)) {
		errno = EINVAL;
		return -1;
	}
	for (; cur < end; cur = piece) {
		enum arena_kind kind = arena_lookup(shim.arena, (void *)cur, &piece);

		piece = MIN(piece, end);
		switch (kind) {
		case ARENA_NONE:
			if (raw_munmap((void *)cur, piece - cur) < 0 && !err)
				err = errno;
			break;
		case ARENA_USED:
			r = arena_free(shim.arena, (void *)cur, piece - cur);
			if (r < 0 && !err)
				err = -r;
			break;
		case ARENA_FOREIGN:
			hold(cur, piece);
			break;
		default:
			break;
		}
	}
	if (err) {
		errno = err;
		return -1;
	}
	return 0;
}

static bool zeroing(int advice)
{
	return advice == MADV_DONTNEED || advice == MADV_FREE || advice == MADV_REMOVE ||
	       advice == MADV_DONTNEED_LOCKED;
}

EXPORT int madvise(void *addr, size_t len, int advice)
{
	uintptr_t cur = (uintptr_t)addr, end, piece;
	int err = 0;

	/*
	 * The program's advice on its own heap blocks: zeroing advice makes
	 * them read zeros (on the shared segment the kernel would only drop
	 * PTEs and bring the data back); the rest is the daemon's business.
	 */
	if (len && !shim_busy && heap_owns(addr) && heap_owns((char *)addr + len - 1) &&
	    page_range(addr, len, &end)) {
		if (zeroing(advice))
			shim_zero(addr, end - (uintptr_t)addr);
		return 0;
	}
	if (!involved(addr, len))
		return raw_madvise(addr, len, advice);
	if (!page_range(addr, len, &end)) {
		errno = EINVAL;
		return -1;
	}
	for (; cur < end; cur = piece) {
		enum arena_kind kind = arena_lookup(shim.arena, (void *)cur, &piece);

		piece = MIN(piece, end);
		if (kind == ARENA_NONE || kind == ARENA_FOREIGN) {
			if (raw_madvise((void *)cur, piece - cur, advice) < 0 && !err)
				err = errno;
		} else if (kind == ARENA_USED && zeroing(advice)) {
			/*
			 * On a shared mapping DONTNEED would only drop PTEs and
			 * bring the old data back: the daemon releases the pages.
			 */
			shim_zero((void *)cur, piece - cur);
		}
		/* any other advice on arena memory: the daemon decides, not the kernel */
	}
	if (err) {
		errno = err;
		return -1;
	}
	return 0;
}

EXPORT int mprotect(void *addr, size_t len, int prot)
{
	uintptr_t end;

	/* remembered, so the pages are made read-write again before reuse */
	if (involved(addr, len) && page_range(addr, len, &end))
		arena_mark_protect(shim.arena, addr, end - (uintptr_t)addr);
	return raw_mprotect(addr, len, prot);
}

static void *fail(int err)
{
	errno = err;
	return MAP_FAILED;
}

/* MREMAP_FIXED / MREMAP_DONTUNMAP of an arena block: a copy in plain memory. */
static void *move_out(void *old, size_t old_len, size_t new_len, int flags, void *target)
{
	uintptr_t tend;
	void *q;

	if (flags & MREMAP_FIXED) {
		if (!page_range(target, new_len, &tend))
			return fail(EINVAL);
		if ((uintptr_t)target < (uintptr_t)old + old_len && tend > (uintptr_t)old)
			return fail(EINVAL);
		if (shim_maybe(target, new_len))
			arena_take_over(shim.arena, target, new_len);
	}
	q = raw_mmap((flags & MREMAP_FIXED) ? target : NULL, new_len, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS | ((flags & MREMAP_FIXED) ? MAP_FIXED : 0), -1, 0);
	if (q == MAP_FAILED)
		return q;
	memcpy(q, old, MIN(old_len, new_len));
	if (flags & MREMAP_DONTUNMAP)
		shim_zero(old, old_len);
	else
		arena_free(shim.arena, old, old_len);
	return q;
}

static void *remap_block(void *old, size_t old_len, size_t new_len, int flags, void *target,
			 uintptr_t extent_end)
{
	size_t oldl, newl;
	void *q;

	if (!old_len || !new_len || new_len > SIZE_MAX - PAGE_SIZE ||
	    (flags & ~(MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP)) ||
	    ((flags & (MREMAP_FIXED | MREMAP_DONTUNMAP)) && !(flags & MREMAP_MAYMOVE)))
		return fail(EINVAL);
	oldl = ALIGN_UP(old_len, PAGE_SIZE);
	newl = ALIGN_UP(new_len, PAGE_SIZE);
	/* the old range must be one mapping, as the kernel sees it */
	if ((uintptr_t)old + oldl > extent_end)
		return fail(EFAULT);
	if (flags & (MREMAP_FIXED | MREMAP_DONTUNMAP))
		return move_out(old, oldl, newl, flags, target);
	if (newl <= oldl) {
		if (newl < oldl)
			arena_free(shim.arena, (char *)old + newl, oldl - newl);
		return old;
	}
	if (arena_grow(shim.arena, old, oldl, newl) == 0)
		return old;
	if (!(flags & MREMAP_MAYMOVE))
		return fail(ENOMEM);
	q = shim_alloc(newl, 0);
	if (!q)
		q = raw_mmap(NULL, newl, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (q == MAP_FAILED)
		return q;
	memcpy(q, old, oldl);
	arena_free(shim.arena, old, oldl);
	return q;
}

EXPORT void *mremap(void *old, size_t old_len, size_t new_len, int flags, ...)
{
	void *target = NULL, *q;
	enum arena_kind kind;
	uintptr_t end;
	va_list ap;

	if (flags & MREMAP_FIXED) {
		va_start(ap, flags);
		target = va_arg(ap, void *);
		va_end(ap);
	}
	if (!involved(old, old_len ? old_len : 1) &&
	    !((flags & MREMAP_FIXED) && involved(target, new_len)))
		return raw_mremap(old, old_len, new_len, flags, target);
	if ((uintptr_t)old & (PAGE_SIZE - 1))
		return fail(EINVAL);
	kind = arena_lookup(shim.arena, old, &end);
	if (kind == ARENA_USED)
		return remap_block(old, old_len, new_len, flags, target, end);
	if (kind == ARENA_FREE || kind == ARENA_LOST)
		return fail(EFAULT);
	if ((flags & MREMAP_FIXED) && page_range(target, new_len, &end) && shim_maybe(target, new_len))
		arena_take_over(shim.arena, target, end - (uintptr_t)target);
	q = raw_mremap(old, old_len, new_len, flags, target);
	/* a foreign mapping left (part of) a segment: keep the hole ours */
	if (kind == ARENA_FOREIGN && q != MAP_FAILED && old_len && page_range(old, old_len, &end)) {
		if (q != old && !(flags & MREMAP_DONTUNMAP))
			hold((uintptr_t)old, end);
		else if (q == old && new_len < old_len)
			hold((uintptr_t)old + ALIGN_UP(new_len, PAGE_SIZE), end);
	}
	return q;
}

/*
 * The program's own brk heap: glibc's malloc grows its heap through
 * internal calls that never come here, so these are the program's (or its
 * own allocator's). A heap cannot be a segment of the arena: not managed,
 * and said.
 */
extern void *__curbrk;

EXPORT void *sbrk(intptr_t inc)
{
	if (inc > 0 && !shim_busy && shim_owner())
		shim_unmanaged("the heap grown with sbrk(2)");
	return __sbrk(inc);
}

EXPORT int brk(void *addr)
{
	void *now;

	if (!shim_busy && shim_owner())
		shim_unmanaged("the heap grown with brk(2)");
	/* glibc exports no other name for it: what its brk does */
	now = (void *)syscall(SYS_brk, addr);
	__curbrk = now;
	if (now < addr) {
		errno = ENOMEM;
		return -1;
	}
	return 0;
}

/*
 * mlock and friends. The kernel keeps a locked page mapped, but the
 * daemon would still evict managed memory and write it to swap (its fence
 * is the memfd's, which mlock does not stop): a program locking a key
 * must find it neither swapped nor on disk. So the daemon is told first,
 * before the kernel faults the range in, and told of an unlock last.
 * Memory the shim does not manage costs a message the daemon ignores.
 */
static bool lock_told(const void *addr, size_t len, bool on, bool all)
{
	int r;

	if (shim_busy || !shim.client || !shim_owner())
		return false;
	if (!all && !shim_maybe(addr, len) && !shim_heap_maybe(addr, len) &&
	    !uvmpager_moved_parts(shim.client))
		return false;
	r = uvmpager_lock(shim.client, addr, len, on, all);
	if (r < 0 && on && r != -ENOTCONN)
		shim_warn_once("could not tell the daemon of an mlock (%s): "
			       "locked memory may be written to its swap", strerror(-r));
	return r == 0;
}

EXPORT int mlock(const void *addr, size_t len)
{
	bool told = lock_told(addr, len, true, false);
	int r = (int)syscall(SYS_mlock, addr, len);

	if (r < 0 && told) {
		int err = errno;

		lock_told(addr, len, false, false);
		errno = err;
	}
	return r;
}

EXPORT int mlock2(const void *addr, size_t len, unsigned int flags)
{
	bool told = lock_told(addr, len, true, false);
	int r = (int)syscall(SYS_mlock2, addr, len, flags);

	if (r < 0 && told) {
		int err = errno;

		lock_told(addr, len, false, false);
		errno = err;
	}
	return r;
}

EXPORT int munlock(const void *addr, size_t len)
{
	int r = (int)syscall(SYS_munlock, addr, len);

	if (r == 0)
		lock_told(addr, len, false, false);
	return r;
}

/* MCL_CURRENT, MCL_FUTURE or both: every managed page, now and later. */
EXPORT int mlockall(int flags)
{
	bool told = lock_told(NULL, 0, true, true);
	int r = (int)syscall(SYS_mlockall, flags);

	if (r < 0 && told) {
		int err = errno;

		lock_told(NULL, 0, false, true);
		errno = err;
	}
	return r;
}

EXPORT int munlockall(void)
{
	int r = (int)syscall(SYS_munlockall);

	if (r == 0)
		lock_told(NULL, 0, false, true);
	return r;
}
