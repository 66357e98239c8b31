/*
 * Memory-management system calls made directly, not through libc's
 * symbols: in a process running the LD_PRELOAD shim those symbols are the
 * shim's, which would turn the agent's fence (MADV_DONTNEED) into a
 * release of the very pages being fenced, and the library's own mappings
 * into arena memory. 64-bit only, like the rest of uvmpager.
 */
#ifndef UVMPAGER_CLIENT_RAWSYS_H
#define UVMPAGER_CLIENT_RAWSYS_H

#include <stddef.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

_Static_assert(sizeof(void *) == 8, "uvmpager supports 64-bit targets only");

static inline void *raw_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	return (void *)syscall(SYS_mmap, addr, len, prot, flags, fd, off);
}

static inline int raw_munmap(void *addr, size_t len)
{
	return (int)syscall(SYS_munmap, addr, len);
}

static inline void *raw_mremap(void *old, size_t old_len, size_t new_len, int flags, void *new_addr)
{
	return (void *)syscall(SYS_mremap, old, old_len, new_len, flags, new_addr);
}

static inline int raw_madvise(void *addr, size_t len, int advice)
{
	return (int)syscall(SYS_madvise, addr, len, advice);
}

static inline int raw_mprotect(void *addr, size_t len, int prot)
{
	return (int)syscall(SYS_mprotect, addr, len, prot);
}

#endif
