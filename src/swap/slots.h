/*
 * Swap slot allocator: which PAGE_SIZE slots of the swap file hold data,
 * how many owners share each one, and which are bad.
 *
 * Not thread-safe: the caller serialises (struct swap holds a mutex).
 *
 * Slot 0 holds the file header and doubles as "no slot"; it is never handed
 * out. Memory: two bits per slot (used, bad) plus one bit per 64 slots, and
 * a hash table entry per slot shared by more than one owner.
 */
#ifndef UVMPAGER_SWAP_SLOTS_H
#define UVMPAGER_SWAP_SLOTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Largest run slots_alloc() hands out. */
#define SLOTS_MAX_RUN 256

struct slots;

/* nslots counts slot 0, so at least 2. Returns 0, -EINVAL or -ENOMEM. */
int slots_create(uint64_t nslots, struct slots **out);
void slots_destroy(struct slots *s);

/*
 * Allocates a contiguous run of up to `want` slots and at least `min`
 * (1 <= min <= want <= SLOTS_MAX_RUN), each with one reference. Runs are
 * handed out next-fit, so back-to-back allocations are adjacent. A full run
 * of `want` is preferred; when none exists the longest available run is
 * returned if it holds at least `min`.
 * Returns the length (> 0) and sets *start, -ENOSPC, or -EINVAL.
 */
int slots_alloc(struct slots *s, unsigned want, unsigned min, uint64_t *start);

/*
 * Drops one reference from each slot in [start, start + n). A slot without
 * references becomes free, unless it is bad. Freeing a free slot, slot 0 or
 * a slot past the end is a caller bug and is ignored.
 */
void slots_free(struct slots *s, uint64_t start, unsigned n);

/*
 * Adds a reference to an allocated slot (fork clones share slots).
 * Returns 0, -EINVAL if the slot is not allocated, or -ENOMEM.
 */
int slots_ref(struct slots *s, uint64_t slot);
unsigned slots_refcount(const struct slots *s, uint64_t slot);

/*
 * A permanent write error: the slot is never handed out again, whether it
 * is allocated now (it stays with its owners until freed) or free.
 */
void slots_mark_bad(struct slots *s, uint64_t slot);
bool slots_is_bad(const struct slots *s, uint64_t slot);

/* SLOT_USED and/or SLOT_BAD of one slot (0: free); for the slot map. */
#define SLOT_USED 0x1u
#define SLOT_BAD  0x2u
unsigned slots_state(const struct slots *s, uint64_t slot);

uint64_t slots_total(const struct slots *s);   /* usable: nslots - 1 */
uint64_t slots_used(const struct slots *s);    /* refcount > 0, bad or not */
uint64_t slots_bad(const struct slots *s);
uint64_t slots_free_count(const struct slots *s); /* allocatable now */
size_t slots_memory(const struct slots *s);    /* bytes of metadata */

#endif
