/* Engine internals shared by the fault service, pager, page daemon and objects. */
#ifndef UVMPAGER_ENGINE_IMPL_H
#define UVMPAGER_ENGINE_IMPL_H

#include <pthread.h>
#include <sys/types.h>

#include "engine.h"
#include "fault/pins.h"
#include "fault/uffd.h"
#include "fault/track.h"
#include "objects/uobj.h"
#include "pager/pager.h"
#include "swap/ioeng.h"
#include "swap/swap.h"
#include "uvmpager/protocol.h"

#define FENCE_LOG 4   /* fences whose ranges a late REMOVE can look up */

/* A range of a client's address space; a fence names at most ENGINE_FENCE_MAX. */
struct engine_range {
	uintptr_t addr;
	size_t len;
};
#define ENGINE_FENCE_MAX 64
/*
 * Parts moved by a raw mremap a client may have as objects of their own
 * (object_split): each costs a fork a clone (3000 took 12 s a fork).
 */
#define ENGINE_MOVED_PARTS_MAX 2048
#define PIN_MOVES 64  /* raw moves a registered buffer's address is followed through */

/*
 * A process whose memory the engine serves. In-process use has one, the
 * engine's own process; uvmpagerd has one per connected program.
 */
struct client {
	struct engine *eng;
	pid_t pid;
	int ufd;
	struct tracker *tr;
	struct client *next;
	size_t budget;              /* pages, 0 = none */
	size_t resident;            /* pages of all its objects */
	bool dead;
	bool external;              /* its address space is not ours */
	uint64_t fault_id;          /* its name in the fault service's epoll set */
	/*
	 * The page-in journal shared with the client's agent (protocol.h),
	 * one entry per pager_io of the pool; NULL in-process.
	 */
	struct uvmp_journal *journal;
	/*
	 * A program's REMOVE may be handled after a later fence zapped its
	 * pages (read by a fault thread that let go of the lock before it
	 * got to it): every message is stamped when read (msg.reserved3)
	 * with fence_seq, the number of the last fence begun, and the last
	 * FENCE_LOG fences' ranges are kept to look them up (fence.c).
	 */
	uint32_t fence_seq;
	struct fence_logged {
		uint32_t seq;
		unsigned n;
		struct engine_range r[ENGINE_FENCE_MAX];
	} fence_log[FENCE_LOG];
	unsigned serving;           /* the fault thread reading its messages (one at most) */
	unsigned io_users;          /* fault threads holding it unserved: reads handed on, a re-arm (service.c) */
	bool missed;                /* an epoll event came while served: arm again after */
	/*
	 * What the kernel holds pinned (src/pager/pinned.c): the /proc
	 * scanner, the pin table the client writes (protocol.h; NULL
	 * in-process), and the last answer, taken when `fences` was
	 * pins_at; pins_unknown: that answer could not be had.
	 */
	struct pins *pins;
	const struct uvmp_pin *pintab;
	struct pin_range *pinned;
	size_t npinned, cappinned;
	/* of those, what the kernel itself says (rings, after the moves): zap races */
	struct pin_range *kpinned;
	size_t nkpinned;
	/* what the program mlocked (sorted, merged), or all of it (pinned.c) */
	struct pin_range *locked;
	size_t nlocked;
	bool lock_all;
	/*
	 * The last PIN_MOVES moves by raw mremap, oldest first: the kernel
	 * prints a registered buffer at the address it had when registered,
	 * and its pages may live elsewhere since (pinned.c).
	 */
	struct pin_move {
		uintptr_t from, to;
		size_t len;
	} pin_moves[PIN_MOVES];
	unsigned npin_moves;
	uint64_t fences, pins_at;
	bool pins_unknown;
	/*
	 * REMAP events read but not yet handled: a fork must wait for them,
	 * since the part moved becomes an object only then (object_split)
	 * and the program's mremap returned as soon as the event was read.
	 */
	unsigned remaps_pending;
	/*
	 * UNMAP events read but not yet handled: the program's raw munmap has
	 * returned, and it may map memory of its own there at once. A release
	 * or unmap by address (the shim freeing arena memory) waits for them
	 * (engine_client_unmaps_wait), or it releases a range whose pages are
	 * not the object's any more and the arena hands the program's own
	 * mapping out again, old data and all (torture seed 33257058).
	 */
	unsigned unmaps_pending;
	unsigned nmoved_parts;      /* its objects made by object_split */
};

/* Frees c and what it holds (its uffd, tracker, journal, backlog, pin state). */
void client_free(struct client *c);

#define ENGINE_FAULT_THREADS 4

struct engine {
	pthread_mutex_t lock;
	pthread_cond_t io_cond;     /* I/O completions, for sync callers */
	pthread_cond_t pd_cond;     /* wakes the page daemon */

	struct engine_config cfg;
	struct swap *swap;
	struct ioeng *io;
	struct uffd_caps caps;
	enum track_mode track;
	bool install_wp;
	/*
	 * A page already in the page cache can be mapped clean (CONTINUE
	 * with MODE_WP, 6.6+). Without it such pages are mapped writable,
	 * and so count as dirty: safe, but they are written again.
	 */
	bool continue_wp;

	struct client *clients;
	struct client *self;
	struct uobj *objects;
	uint64_t next_id;
	size_t nobjects;

	size_t budget;              /* pages, 0 = none */
	size_t high, low;           /* watermarks, pages */
	/*
	 * Tunables the filesystem writes (src/inspect.c), under the lock:
	 * the largest read-around window (pages, <= cfg.cluster_pages) and
	 * how full (percent) a budget must be before idle laundering pays
	 * (0: never launder).
	 */
	size_t ra_max;
	unsigned launder_pct;

	/* totals over all objects, kept by uobj_set */
	size_t resident, dirty, swapped, bad;
	uint64_t swapins, swapouts, evictions, clean_evictions;
	uint64_t faults, zero_fills, readahead, write_errors, read_errors;

	char *zeros;                /* readahead_pages of zeros for zero-fill */

	/* the fence's pipe and its size, and memory for a copy back that failed (zap.c) */
	int zap_pipe[2];
	size_t zap_chunk;
	char *zap_scratch;

	/*
	 * Fault threads: each client is served by one at a time (its uffd is
	 * armed one-shot), different clients in parallel, so one program's
	 * swap-in does not hold up another's faults.
	 */
	pthread_t fault_threads[ENGINE_FAULT_THREADS];
	unsigned nfault_threads;
	uint64_t next_fault_id;
	int epfd, stop_fd, kick_fd;
	struct client *zombies;     /* left clients, freed once no fault thread serves them */
	pthread_t pd_thread;
	bool stopping;
	bool pd_running;
	struct uobj *pd_cursor;     /* round-robin among objects */
	unsigned inflight;          /* requests in flight, all objects */
	size_t evicting;            /* pages BUSY_OUT on their way out */

	/* the bounded I/O descriptor pool (the origin's pager_map) */
	struct pager_io *pool_mem, *pool_free, *pool_emergency;
	bool emergency_used;
	pthread_cond_t pool_cond;

	/* batched submission: requests gathered while plugged */
	struct io_req *plug[64];
	unsigned nplug;
	bool plugged;

	/* faults held back while over budget, resumed by the page daemon */
	struct throttled { struct uobj *o; size_t idx; bool write; } *throttle;
	size_t nthrottle, capthrottle;
	bool throttle_off;          /* swap full: serve faults over budget */
	uint64_t throttled_faults, budget_overruns, swap_full_events, clean_mismatches;
	/*
	 * Swap writes failing (pdaemon.c says so in the log once, and once
	 * more when they succeed again); the last write's error, under lock.
	 */
	bool swap_failing;
	int last_write_error;
	/* faults by kind (resolve.c serve): one increment each, read by engine_get_stats */
	uint64_t faults_minor, faults_major, faults_wait, faults_first, faults_wp;
	uint64_t faults_fenced;   /* faults_minor on pages the hand fenced (pdaemon.c) */
	uint64_t fenced_around;   /* fenced pages mapped with a neighbour's fault (resolve.c) */
	/* read-ahead windows whose marker page the stream reached / that were evicted first */
	uint64_t ra_hits, ra_misses;
	/* pin scans (pinned.c): how many, their time, unknown answers, pages kept for a pin */
	uint64_t pin_scans, pin_scan_ns, pin_unknown, pinned_kept, pin_races;
	/* the fault path's waits for the lock (engine_lock_fault): how many, how long */
	uint64_t lock_waits, lock_wait_ns;
	/* engine_log's rate limit, under the lock */
	uint64_t log_sec;
	unsigned log_lines, log_suppressed;
};

/*
 * The page-in journal (protocol.h): note a read into the client's pages
 * before it starts, clear it once they are checked. Lock held.
 */
void pager_journal_note(struct pager_io *pio);
void pager_journal_clear(struct pager_io *pio);
/* o moved in its client's address space: entries of reads in flight follow. */
void pager_journal_move(struct uobj *o);

void pager_plug(struct engine *e);
void pager_unplug(struct engine *e);
/*
 * A fault thread serving a batch: reads its faults wait on are gathered on
 * *list instead of being submitted (pager_get_async() still submits), and
 * done by pager_run_deferred(), without the lock, in this thread.
 */
void pager_defer_begin(struct pager_io **list);
void pager_defer_end(void);
void pager_run_deferred(struct pager_io *list);
/* The page was written: CLEAN -> DIRTY (stale slot freed), BUSY_OUT -> WRITTEN. */
void pager_page_dirtied(struct uobj *o, size_t idx);
/* Apply the tracker's view of [start, start + n) to the page states. */
int pager_sync_dirty(struct uobj *o, size_t start, size_t n, bool collect);
/* The same; the collect's "written" bits are also ORed into *written. */
int pager_sync_dirty_map(struct uobj *o, size_t start, size_t n, bool collect,
			 uint64_t *written);
/* A clean page the engine did not fence faulted: see pager.c. */
void pager_sync_unfenced(struct uobj *o, size_t idx);

/* One line to the configured log (engine_config.log). */
void engine_log(struct engine *e, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/*
 * Take the engine lock for the fault path (a fault, its read's completion,
 * a client's messages), counting a wait (lock_waits, lock_wait_us).
 */
void engine_lock_fault(struct engine *e);

/* Caller holds e->lock. */
static inline void engine_wake_pdaemon(struct engine *e)
{
	pthread_cond_signal(&e->pd_cond);
}

/* objects bookkeeping under the lock */
void engine_account(struct engine *e, struct uobj *o, pgword_t old, pgword_t nw);

/* the fence and the REMOVE events (src/fault/fence.c); lock held */
/* fn for each piece of a REMOVE event m that no fence begun after m was read may have zapped. */
void fence_remove_user_parts(struct client *c, const struct uffd_msg *m,
			     void (*fn)(void *arg, uintptr_t s, uintptr_t e), void *arg);
/*
 * A fence of the ranges begins (the agent's, or the page daemon's zap):
 * a REMOVE read before it and handled after keeps the data of the pages
 * it zapped (fence_remove_user_parts).
 */
void fence_log_note(struct client *c, const struct engine_range *r, unsigned n);
/* Stamp messages just read from c's uffd (fence_seq, see struct client). */
/*
 * Every message read from c's uffd, when read (lock held): stamped with
 * the last fence begun, and a REMAP counted in remaps_pending.
 */
void fence_stamp(struct client *c, struct uffd_msg *msgs, int n);

/* fault service (src/fault/service.c) */
int fault_service_start(struct engine *e);
void fault_service_stop(struct engine *e);
int fault_service_add_client(struct engine *e, struct client *c);
void fault_service_remove_client(struct engine *e, struct client *c);
/* A moved part of o's view becomes an object of its own (engine.c); lock held. */
int object_split(struct engine *e, struct uobj *o, size_t first, size_t n, uintptr_t to,
		 struct uobj **out);

/* resolving faults from the page states (src/fault/resolve.c) */
/* Resolve parked faults on pages whose I/O ended; lock held. */
void fault_resume(struct engine *e, struct uobj *o, struct fault_wait *w, size_t n);
/* Serve the faults held back for the budget that now fit; lock held. */
void fault_resume_throttled(struct engine *e);
/* Serve one fault on o's page idx; lock held. */
void fault_handle(struct engine *e, struct uobj *o, size_t idx, bool write, bool wp);

/* pinned pages (src/pager/pinned.c) */
/*
 * Bring c's pinned ranges up to date if a fence came since they were
 * taken (always, with force), and mark the pages: PGF_PINNED on those
 * pinned now, dirty too (the kernel writes them behind the tracker's
 * back), cleared on those no longer pinned. 0, or < 0 when the answer is
 * unknown: then no page of c may be dropped. Lock held; reads /proc.
 */
int pinned_refresh(struct engine *e, struct client *c, bool force);
/* The program moved [from, from + len) to `to` by a raw mremap. Lock held. */
void pinned_moved(struct client *c, uintptr_t from, uintptr_t to, size_t len);
/*
 * Start of a reclaim round for c: refresh its pins, and let the pages
 * fenced so far (each object's inactive queue now) be evicted this round;
 * none if the answer is unknown. Lock held.
 */
void pinned_round(struct engine *e, struct client *c);
/*
 * The page daemon zaps c's pages (on) or is done (off): the word in the
 * pin table that makes the client's O_DIRECT wait (protocol.h). Set
 * before the scan that decides what is zapped, cleared after the zap.
 */
void pinned_fencing(struct client *c, bool on);
/*
 * c has delta more objects made of parts it moved by a raw mremap
 * (object_split), or its REMAP events pending changed: the pin table's
 * moved word says whether its shim must pin and lock anywhere
 * (protocol.h). Lock held.
 */
void pinned_moved_parts(struct client *c, int delta);
/*
 * Pages of [start, start + n) of o that the last scan found in a buffer
 * the kernel holds registered (not the client's table). Lock held.
 */
size_t pinned_by_kernel(const struct client *c, struct uobj *o, size_t start, size_t n);
/*
 * Must o's page idx stay in memory and out of swap: pinned at the last
 * scan, or in a range its program mlocked (checked now, not at a scan: a
 * page may have come in since)? Lock held.
 */
bool pinned_keep(const struct uobj *o, size_t idx, pgword_t w);

/* page daemon (src/pager/pdaemon.c) */
/* Reclaim starts above the high mark and stops at the low one (pages). */
size_t pdaemon_mark_high(struct engine *e, size_t budget);
size_t pdaemon_mark_low(struct engine *e, size_t budget);
int pdaemon_start(struct engine *e);
/* A fault brought o's pages in: wake the page daemon if a high watermark is passed. */
void pdaemon_poke(struct engine *e, struct uobj *o);
void pdaemon_stop(struct engine *e);
/* Evict from o until it holds at most `target` resident pages; lock held. */
size_t pdaemon_reclaim_object(struct engine *e, struct uobj *o, size_t want);

#endif
