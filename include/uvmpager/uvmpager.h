/*
 * libuvmpager: the client side of uvmpagerd.
 *
 * A process connects once (uvmpager_connect), then hands regions of its
 * memory to the daemon as memory objects: a memfd mapped MAP_SHARED where
 * the program wants the memory, whose page faults the daemon serves
 * through the process's userfaultfd, within a resident budget, paging to
 * its swap file. The library runs one thread of its own, the agent: it
 * carries out the daemon's fences (dropping page-table entries before an
 * eviction) and, should the daemon die, serves the userfaultfd itself and
 * fails closed: pages still in memory keep working, pages that lived only
 * in swap raise SIGBUS when touched. Nothing ever reads as zeros or stale.
 *
 * Every function returns 0 (or a count) on success and a negative errno on
 * failure; -ENOTCONN once the daemon is gone, -ECHILD when called in a
 * child process that did not adopt the connection (see fork below).
 * Functions taking a struct uvmpager are thread-safe; requests to the
 * daemon are serialised, one in flight at a time.
 */
#ifndef UVMPAGER_H
#define UVMPAGER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <uvmpager/protocol.h>

#ifdef __cplusplus
extern "C" {
#endif

#define UVMPAGER_VERSION_MAJOR 0
#define UVMPAGER_VERSION_MINOR 1

struct uvmpager;

/*
 * Connects to the daemon at socket_path (NULL: $UVMPAGER_SOCKET, else
 * UVMP_DEFAULT_SOCKET), asks for a resident budget of `budget` bytes for
 * the whole process (0: the daemon's default), hands it this process's
 * userfaultfd and starts the agent thread. A daemon running as another
 * user than root or the caller is refused (-EPERM): it would get this
 * process's memory.
 */
int uvmpager_connect(const char *socket_path, uint64_t budget, struct uvmpager **out);

/*
 * Closes the connection; unmap the objects first (uvmpagerd pages those
 * left back in and lets go of them: they become plain shared memory,
 * and the wait is long). If the daemon is already gone and
 * regions are still registered, the fail-closed server keeps running
 * (its thread and userfaultfd are kept) so that they never read zeros.
 * Accepts NULL.
 */
void uvmpager_disconnect(struct uvmpager *c);

struct uvmpager_info {
	uint64_t client_id;
	uint64_t budget;            /* bytes granted for the process */
	uint64_t min_size;          /* smallest region the daemon thinks worth managing */
	bool uffd_from_device;      /* the userfaultfd came from /dev/userfaultfd */
	bool alive;                 /* false once the daemon's connection ended */
	/* the fail-closed server, after the daemon died: */
	uint64_t fc_continued;      /* faults served from memory */
	uint64_t fc_poisoned;       /* faults on pages only swap had: SIGBUS */
};

void uvmpager_get_info(struct uvmpager *c, struct uvmpager_info *info);
/* Cheap: false once the daemon is gone (requests fail with -ENOTCONN). */
bool uvmpager_alive(struct uvmpager *c);

/*
 * Registers [addr, addr + len) as a memory object. The caller has mapped
 * memfd there MAP_SHARED (prot), page-aligned, and not touched the pages
 * it wants the daemon to own (what is in the memfd already is kept). The
 * daemon maps its own view of memfd and registers the range with the
 * userfaultfd. backing_fd: the file of UVMP_OBJ_FILE (pages written back
 * to it) and UVMP_OBJ_DEVICE (read-only) objects, -1 for UVMP_OBJ_ANON.
 * budget: bytes resident for this object, 0 for the process's budget.
 * The caller keeps its memfd and backing_fd (the daemon has its own).
 */
int uvmpager_map_fd(struct uvmpager *c, int memfd, void *addr, size_t len,
		    enum uvmp_obj_type type, int prot, int backing_fd,
		    uint64_t budget, uint64_t *object_id);

/* The daemon forgets the objects in [addr, addr + len); call before munmap. */
int uvmpager_unmap(struct uvmpager *c, void *addr, size_t len);

/*
 * [addr, addr + len) reads as zeros from now on; its memory and swap are
 * freed. The range stays mapped and registered. -EXDEV: part of the range
 * was unmapped or mapped over behind the library's back (a raw syscall);
 * the rest is released, but that part is the program's own memory now and
 * was left as it is.
 */
int uvmpager_release(struct uvmpager *c, void *addr, size_t len);

/*
 * The program locks [addr, addr + len) in memory (on), or unlocks it; with
 * all, every managed page, now and later (addr and len unused). Locked
 * pages are never evicted nor written to swap. Call before mlock(2) and
 * after munlock(2): the daemon must know before the pages come in.
 */
int uvmpager_lock(struct uvmpager *c, const void *addr, size_t len, bool on, bool all);

/*
 * A whole object moved with mremap(2); call after it. (uvmpagerd 0.1
 * moves objects but does not resize them: -EOPNOTSUPP.)
 */
int uvmpager_remap(struct uvmpager *c, void *old_addr, size_t old_len,
		   void *new_addr, size_t new_len);

/* Writes the object's dirty pages out (a FILE object: to its file) and waits. */
int uvmpager_flush(struct uvmpager *c, uint64_t object_id);

/* object_id 0: the process as a whole. */
int uvmpager_set_budget(struct uvmpager *c, uint64_t object_id, uint64_t bytes);

int uvmpager_stat(struct uvmpager *c, uint64_t object_id, struct uvmp_obj_stat *st);

/* The object that contains addr, from the library's own table. -ENOENT if none. */
int uvmpager_object_at(struct uvmpager *c, const void *addr, uint64_t *object_id);

/*
 * Convenience: len bytes of anonymous, swap-backed memory (a memfd mapped
 * MAP_SHARED | MAP_NORESERVE, read-write, without transparent huge pages,
 * MADV_DONTFORK), zero-filled. Free with uvmpager_anon_destroy.
 */
int uvmpager_anon_create(struct uvmpager *c, size_t len, uint64_t budget,
			 void **addr, uint64_t *object_id);
int uvmpager_anon_destroy(struct uvmpager *c, void *addr);
/*
 * The same at a place of the caller's choosing: [addr, addr + len),
 * page-aligned, must be a reservation of the caller's own (PROT_NONE,
 * say), which the object replaces (MAP_FIXED); on failure the range is
 * left PROT_NONE. uvmpager_anon_destroy unmaps it.
 */
int uvmpager_anon_create_at(struct uvmpager *c, void *addr, size_t len, uint64_t budget,
			    uint64_t *object_id);

/*
 * Convenience: the first len bytes of the file fd seen through a bounded
 * resident set. read_only: a DEVICE object (pages are never written back,
 * the mapping is PROT_READ); otherwise a FILE object whose dirty pages go
 * back to fd on eviction, flush and unmap. Undo with uvmpager_file_unmap.
 */
int uvmpager_file_map(struct uvmpager *c, int fd, size_t len, uint64_t budget,
		      bool read_only, void **addr, uint64_t *object_id);
int uvmpager_file_unmap(struct uvmpager *c, void *addr);

/*
 * The kernel is about to hold [addr, addr + len) of managed memory pinned
 * for the length of one system call: an O_DIRECT read (or readv, preadv,
 * ...) into it. Until uvmpager_pin_end(c, slot) with the slot returned
 * (>= 0), the daemon keeps the pages the range touches in memory: evicted
 * under the pin, they would be replaced and the read's data lost. Call it
 * before the syscall and end it once the syscall returned. Lock-free and
 * async-signal-safe; waits while UVMP_PIN_ENTRIES ranges are in flight.
 * -ENOTCONN once the daemon is gone (nothing is evicted any more).
 * The LD_PRELOAD shim does this for the read family of libc's calls.
 */
int uvmpager_pin_begin(struct uvmpager *c, const void *addr, size_t len);
void uvmpager_pin_end(struct uvmpager *c, int slot);
/*
 * Whether the daemon serves memory of this process outside the regions
 * the caller made: part of a region the program moved with a raw
 * mremap(2) is an object of its own at its new place, which only the
 * daemon knows. Pins and locks (uvmpager_lock) must then cover any
 * address, not only the caller's regions. Lock-free; false for NULL.
 */
bool uvmpager_moved_parts(const struct uvmpager *c);

/*
 * fork(2). A child must not share its parent's objects, so around fork:
 *
 *   uvmpager_fork_prepare(c, &token)    parent, just before fork: the
 *       daemon clones every object (a private copy as of now). On success
 *       the connection stays locked (no other request) until
 *   uvmpager_fork_parent(c, token, pid)  parent, after fork (pid <= 0:
 *       fork failed, the clones are dropped). Call it exactly when
 *       prepare returned 0.
 *   uvmpager_fork_child(&c, token)       child, after fork: *c (the
 *       parent's connection, inherited) is replaced by a connection of
 *       the child's own, and the clones are mapped over the regions
 *       (MAP_FIXED | MAP_SHARED) before the daemon serves them. On
 *       failure *c is NULL and the regions the child inherited are not
 *       usable: regions created by uvmpager_anon_create and
 *       uvmpager_file_map are MADV_DONTFORK, so they are simply absent.
 *
 * The child's ADOPT may reach the daemon before the parent's FORK_DONE;
 * the child retries for a few seconds while the daemon answers -EAGAIN.
 * Object ids change in the child (uvmpager_object_at gives the new ones).
 */
int uvmpager_fork_prepare(struct uvmpager *c, uint64_t *token);
void uvmpager_fork_parent(struct uvmpager *c, uint64_t token, pid_t child);
int uvmpager_fork_child(struct uvmpager **c, uint64_t token);

#ifdef __cplusplus
}
#endif

#endif
