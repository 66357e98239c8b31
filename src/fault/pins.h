/*
 * Which ranges of a process's memory the kernel holds pinned, as far as
 * /proc tells: the buffers registered with its io_uring instances
 * (io_uring_register_buffers, a long-term pin that outlives any fence).
 *
 * A page the kernel holds pinned must never be evicted: the pin keeps the
 * old page, the memfd gets a new one, and whatever the kernel writes
 * through the pin lands in a page nobody will read again.
 *
 * One scan reads /proc/<pid>/fd and the fdinfo of each io_uring fd. The
 * kernel prints a ring's buffers only if a trylock of the ring's lock
 * succeeds; when it does not, the answer is unknown, never "not pinned".
 */
#ifndef UVMPAGER_FAULT_PINS_H
#define UVMPAGER_FAULT_PINS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct pin_range {
	uintptr_t addr;
	size_t len;
};

struct pins;

/*
 * The pins of process pid (0: the caller's own). Opens /proc/<pid> once,
 * so a later scan never reads a recycled pid's files. 0 or -errno.
 */
int pins_create(pid_t pid, struct pins **out);
void pins_destroy(struct pins *p);
/*
 * Leave descriptor fd out of every scan: the engine's own ring when it
 * scans its own process. It never holds a client page, and it is busy
 * submitting, so its lock would make every answer unknown.
 */
void pins_ignore_fd(struct pins *p, int fd);

/*
 * The pinned ranges now, sorted by address and merged, in *out (n of
 * them; the array is p's and valid until the next scan). Returns 0, or
 * -EAGAIN when some ring's buffers could not be read after a few tries
 * (its lock stayed busy), or another -errno (the process is gone, ...):
 * in every error case the caller must take every page as pinned.
 * Not thread-safe on one p; costs a readlink per open fd.
 */
int pins_scan(struct pins *p, const struct pin_range **out, size_t *n);

/* io_uring descriptors the last successful scan found. */
size_t pins_rings(const struct pins *p);

/* Sort r[0..n) by address and merge overlaps; returns the new count. */
size_t pin_ranges_merge(struct pin_range *r, size_t n);

/*
 * Parse one io_uring fdinfo text (exposed for the unit test): appends
 * the ring's registered buffers to *r (grown with realloc). 0, -EAGAIN
 * when the buffer list is missing or short (the kernel's trylock failed),
 * -ENOMEM.
 */
int pins_parse_fdinfo(const char *text, size_t len, struct pin_range **r, size_t *n,
		      size_t *cap);

#endif
