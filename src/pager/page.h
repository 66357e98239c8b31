/*
 * The page word: one 64-bit word per page of every object, the whole of the
 * engine's per-page metadata (DESIGN.md §2). Object types share it, and so
 * share one state machine.
 *
 *   bits  0..3   state (enum pg_state)
 *   bits  4..16  flags (PGF_*)
 *   bits 17..23  reserved (age)
 *   bits 24..63  swap slot (0 = none)
 *
 * All access happens under the engine lock.
 */
#ifndef UVMPAGER_PAGE_H
#define UVMPAGER_PAGE_H

#include <stdbool.h>
#include <stdint.h>

typedef uint64_t pgword_t;

enum pg_state {
	PG_EMPTY = 0,   /* never touched (or released): no data anywhere */
	PG_DIRTY,       /* resident, no valid copy in backing store */
	PG_CLEAN,       /* resident, identical copy in its slot or file (slot 0 in an aobj: all zeros) */
	PG_BUSY_OUT,    /* write I/O in flight (still resident) */
	PG_SWAPPED,     /* not resident, valid copy in its slot or file */
	PG_BUSY_IN,     /* read I/O in flight */
	PG_BAD,         /* the only copy is unreadable */
	PG_GONE,        /* the client unmapped it behind our back: never filled again */
};

enum pg_flags {
	PGF_INACTIVE = 1u << 4,  /* fenced: the client view has no PTE for it */
	PGF_REF      = 1u << 5,  /* referenced since the hand last passed */
	PGF_WANTED   = 1u << 6,  /* faults wait for the I/O to end */
	PGF_RELEASED = 1u << 7,  /* released during I/O: completion frees it */
	PGF_WRITTEN  = 1u << 8,  /* written while BUSY_OUT: the copy is stale */
	PGF_EVICT    = 1u << 9,  /* this pageout drops the page when done */
	PGF_QUEUED   = 1u << 10, /* in its object's clock queue */
	PGF_WASDIRTY = 1u << 11, /* BUSY_OUT page was dirty (vs. clean re-evict) */
	PGF_FRESH    = 1u << 12, /* cleaned while fenced: its missing marker is old news */
	PGF_RAMARK   = 1u << 13, /* read ahead, left unmapped: its touch reads the next window */
	PGF_GONE     = 1u << 14, /* busy when unmapped: completion makes it PG_GONE */
	PGF_PINNED   = 1u << 15, /* the kernel held it pinned at the last pin scan (pinned.c) */
	PGF_DISCARD  = 1u << 16, /* a program's discard (REMOVE) waits for proof of its zap */
};

/*
 * PGF_FRESH, the rule: a CLEAN page carries it only while it is fenced
 * (PGF_INACTIVE) and was made clean while fenced, by the engine, from data
 * nothing could have written since: the fence held every write to it as a
 * fault. It tells pager_sync_dirty and map_resident that the missing
 * uffd-wp marker is old news (the zap came before the cleaning), not a
 * write. Set by: pager_dropcluster (a fenced page written out and kept),
 * engine_object_clone (the copy no one maps yet, if no write raced the
 * copy: clone_recheck). Cleared whenever the page is mapped (map_resident,
 * the fills in resolve.c), read in (get_done) or deactivated. Never set
 * on a page that may have a PTE: a write through it would be taken as
 * old news and lost.
 */

/*
 * PGF_DISCARD, the rule: a UFFD_EVENT_REMOVE names the page while it may
 * still be mapped in the client (resident, not fenced). The kernel sends
 * REMOVE before it acts, and lets the madvise go as soon as the event is
 * read: MADV_DONTNEED then zaps the PTEs, but MADV_FREE on these shared
 * views is refused (EINVAL) after the event, and nothing is zapped. The
 * program writes on through its PTEs either way; punching at the event
 * would throw those writes away. So the page keeps its data and the flag
 * until its zap is proven or disproven (pager_discard_settle: no pte
 * left -> the program's zap came, the page is released and reads zeros;
 * still mapped -> kept, the flag goes): on its next fault (a fault means
 * no pte), before the engine's own fence zaps it (after which the two
 * could not be told apart), and before a clone copies it. Dropped with
 * the rest of the word when the page is released.
 */

#define PG_STATE_MASK 0xfULL
#define PG_FLAGS_MASK 0x1fff0ULL
#define PG_SLOT_SHIFT 24
#define PG_SLOT_MAX ((1ULL << 40) - 1)

static inline enum pg_state pg_state(pgword_t w)
{
	return (enum pg_state)(w & PG_STATE_MASK);
}

static inline uint64_t pg_slot(pgword_t w)
{
	return w >> PG_SLOT_SHIFT;
}

static inline bool pg_has(pgword_t w, unsigned flag)
{
	return (w & flag) != 0;
}

static inline pgword_t pg_make(enum pg_state st, unsigned flags, uint64_t slot)
{
	return (pgword_t)st | (flags & PG_FLAGS_MASK) | (slot << PG_SLOT_SHIFT);
}

static inline pgword_t pg_set_state(pgword_t w, enum pg_state st)
{
	return (w & ~PG_STATE_MASK) | st;
}

static inline pgword_t pg_set_slot(pgword_t w, uint64_t slot)
{
	return (w & ((1ULL << PG_SLOT_SHIFT) - 1)) | (slot << PG_SLOT_SHIFT);
}

static inline bool pg_resident(pgword_t w)
{
	enum pg_state st = pg_state(w);

	return st == PG_DIRTY || st == PG_CLEAN || st == PG_BUSY_OUT;
}

static inline bool pg_busy(pgword_t w)
{
	enum pg_state st = pg_state(w);

	return st == PG_BUSY_OUT || st == PG_BUSY_IN;
}

/*
 * Gone from its object's view: unmapped (PG_GONE), or unmapped with its
 * I/O still in flight (PGF_GONE; PG_GONE when the I/O ends). Either way
 * its address may be anyone's now, another object's view among them: no
 * longer the object's to serve, register, scan or write-protect. Only
 * its I/O is still the object's.
 */
static inline bool pg_gone(pgword_t w)
{
	return pg_state(w) == PG_GONE || pg_has(w, PGF_GONE);
}

const char *pg_state_name(enum pg_state st);

#endif
