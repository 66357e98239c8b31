/*
 * The paging engine's internal API: what uvmpagerd, the demo and the tests
 * drive. An engine owns one swap device, one I/O engine, a fault service
 * thread, a page daemon thread and the memory objects of its clients.
 */
#ifndef UVMPAGER_ENGINE_H
#define UVMPAGER_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "fault/track.h"
#include "swap/ioeng.h"

struct engine;
struct uobj;

struct engine_config {
	const char *swap_path;
	/*
	 * Several devices (paths or NBD URIs) as stripes, each stripe unit on
	 * swap_replicas of them (0: 1); used instead of swap_path when there
	 * is more than one or more than one replica.
	 */
	const char *const *swap_paths;
	unsigned swap_npaths;
	unsigned swap_replicas;
	uint64_t swap_size;          /* bytes; 0: the existing file's size */
	bool swap_preallocate;
	bool swap_no_direct;         /* for filesystems without O_DIRECT */
	enum ioeng_kind io;
	enum track_mode track;
	uint64_t budget;             /* global resident budget in bytes; 0 = none */
	unsigned cluster_pages;      /* largest pageout cluster, default 64 */
	unsigned readahead_pages;    /* zero-fill-around window, default 16 */
	unsigned readahead_min;      /* read-around of a scattered fault, default 1 */
	bool launder;                /* write dirty pages back while idle */
	bool verify_clean;           /* check clean pages against their copy before dropping them */
	/*
	 * What an operator must hear of (a page whose only copy cannot be
	 * read, ...), one line each; level as syslog's (3 error, 4 warning,
	 * 6 info). Called with the engine lock held: it must not call back.
	 * NULL: stderr.
	 */
	void (*log)(int level, const char *msg);
	/* test hook: passed to the I/O engine */
	int (*io_inject)(void *ctx, const struct io_req *req);
	void *io_inject_ctx;
};

void engine_config_defaults(struct engine_config *cfg);

/* `err` gets a message naming what failed when this returns < 0. */
int engine_create(const struct engine_config *cfg, struct engine **out,
		  char *err, size_t errlen);
/* Destroys every object (their memory goes away) and stops the threads. */
void engine_destroy(struct engine *e);

/*
 * In-process objects: the engine creates the memfd, maps the client view
 * (returned in *addr) registered with its userfaultfd, and its own view.
 * budget is in bytes (0: only the global budget).
 */
int engine_aobj_create(struct engine *e, size_t len, uint64_t budget,
		       void **addr, struct uobj **out);
/* A file mapped through a bounded resident set; dirty pages go back to fd. */
int engine_vnode_create(struct engine *e, int fd, size_t len, uint64_t budget,
			void **addr, struct uobj **out);
/* Read-only pages from fd; eviction drops them. */
int engine_device_create(struct engine *e, int fd, size_t len, uint64_t budget,
			 void **addr, struct uobj **out);
void engine_object_destroy(struct engine *e, struct uobj *o);

/* Write every dirty page back (vnode: to its file) and wait. */
int engine_flush(struct engine *e, struct uobj *o);
/* Evict down to `keep` resident bytes now and wait for the I/O. */
int engine_reclaim(struct engine *e, struct uobj *o, uint64_t keep);
int engine_set_budget(struct engine *e, struct uobj *o, uint64_t bytes);

struct engine_stats {
	uint64_t resident_bytes, dirty_bytes, swapped_bytes, bad_bytes;
	uint64_t budget_bytes;
	uint64_t swapins, swapouts, evictions, clean_evictions;
	uint64_t faults, zero_fills, readahead, write_errors, read_errors;
	uint64_t throttled_faults, budget_overruns, swap_full_events, clean_mismatches;
	uint64_t readahead_hits, readahead_misses;   /* read-ahead windows used / wasted */
	/*
	 * faults by what they found: the page in memory, in swap or its file,
	 * its I/O in flight, never touched (zero fill); wp-sync first writes
	 */
	uint64_t faults_minor, faults_major, faults_wait, faults_first, faults_wp;
	uint64_t faults_fenced, fenced_around;
	/* pinned pages (pinned.c): scans, their total time, unknown answers, pages kept */
	uint64_t pin_scans, pin_scan_us, pin_unknown, pinned_kept;
	uint64_t lock_waits, lock_wait_us;   /* the fault path's waits for the engine lock */
	uint64_t pin_races;        /* io_uring registrations that slipped between a pin scan and its fence */
	uint64_t clean_mapping;   /* 1: pages read back are mapped clean (re-evicting them is free) */
	uint64_t swap_read_bytes, swap_write_bytes, read_ops, write_ops;
	uint64_t swap_slots_total, swap_slots_used, swap_slots_bad;
	uint64_t objects, meta_bytes;
	const char *io_engine;
	const char *tracking;
};

void engine_get_stats(struct engine *e, struct engine_stats *st);
/* Flat "name value" lines, one per counter. */
void engine_print_stats(struct engine *e, FILE *f);

/*
 * Clients in other processes (uvmpagerd). The engine takes the client's
 * userfaultfd (and does UFFDIO_API on it) and serves its faults; it drops
 * the client's page-table entries through the memfds it maps, never by
 * address in the client.
 */
struct client;
int engine_client_create(struct engine *e, pid_t pid, int ufd, uint64_t budget,
			 struct client **out);
/* Destroys the client's objects (files get their dirty pages first). */
void engine_client_destroy(struct engine *e, struct client *c);
/*
 * Waits (5 s at most) until the UNMAP events of c read so far are handled:
 * before acting by address on what the program may have unmapped itself.
 */
void engine_client_unmaps_wait(struct engine *e, struct client *c);
int engine_client_set_budget(struct engine *e, struct client *c, uint64_t bytes);
/*
 * The client's page-in journal (uvmpager/protocol.h): made once per
 * client; *memfd (the caller's to close) is what the client maps.
 */
int engine_client_journal(struct engine *e, struct client *c, int *memfd);
/*
 * The client's pin table (uvmpager/protocol.h): made once per client;
 * the client writes it, the page daemon reads it. *memfd is the caller's.
 */
int engine_client_pintab(struct engine *e, struct client *c, int *memfd);
/*
 * The program locks (on) or unlocks [addr, addr + len) of its address
 * space, or all its objects now and later (all): locked pages are never
 * fenced, evicted nor written to swap. 0, -ENOMEM. Takes the lock.
 */
int engine_client_lock(struct engine *e, struct client *c, uintptr_t addr, size_t len, bool on,
		       bool all);
/*
 * Objects the engine made by itself for c since the last call, up to
 * max: a part of a view the program moved with a raw mremap becomes an
 * object of its own, at the address it was moved to. origin[k]: the id
 * of the object out[k] came from. Before it answers, the REMAP events
 * read so far are handled, so a fork that follows a raw mremap finds
 * the moved part. Takes the lock.
 */
size_t engine_client_new_objects(struct engine *e, struct client *c, struct uobj **out,
				 uint64_t *origin, size_t max);
/* The client's process is gone: stop touching its address space. */
void engine_client_dead(struct engine *e, struct client *c);
/* False once the client's address space is gone (exit, or exec). */
bool engine_client_mm_alive(struct engine *e, struct client *c);

enum engine_obj_type { ENGINE_OBJ_ANON, ENGINE_OBJ_FILE, ENGINE_OBJ_DEVICE };

/*
 * The client mapped memfd MAP_SHARED at [addr, addr + len); the engine
 * maps its own view and registers the range with the client's
 * userfaultfd. backing_fd: the file of FILE/DEVICE objects (duplicated).
 */
int engine_object_attach(struct engine *e, struct client *c, enum engine_obj_type type,
			 int memfd, int backing_fd, uintptr_t addr, size_t len,
			 uint64_t budget, struct uobj **out);
uint64_t engine_object_id(const struct uobj *o);
uintptr_t engine_object_addr(const struct uobj *o);
/*
 * The offset in o of its first page that is (or, for a clone not yet
 * adopted, will be) registered with the client's userfaultfd: pages a
 * clone's parent had unmapped by syscall are not. engine_object_size(o)
 * if none is. Reads page states without the engine lock: for an object
 * that serves no faults yet (just attached, or a clone).
 */
size_t engine_object_registered_offset(const struct uobj *o);
size_t engine_object_size(const struct uobj *o);
/*
 * [off, off + len) of the object reads as zeros from now on. -EXDEV when
 * part of it was unmapped behind our back (a raw munmap, MAP_FIXED over
 * it): the rest is released, but what the program mapped there is its own
 * memory and still holds whatever it wrote.
 */
int engine_object_release(struct engine *e, struct uobj *o, size_t off, size_t len);
/*
 * Whether any page of [off, off + len) of o is still its own: not gone
 * (unmapped, or moved away, by the program). Takes the lock.
 */
bool engine_object_live(struct engine *e, struct uobj *o, size_t off, size_t len);
/*
 * Whether some page is its own to both a, seen at a_addr, and b, seen at
 * b_addr: two objects may share a range where one's pages are gone.
 */
bool engine_objects_meet(struct engine *e, struct uobj *a, uintptr_t a_addr, struct uobj *b,
			 uintptr_t b_addr);
/* Whether some page is a's own, seen at a_addr, where b's, seen at b_addr, is gone. */
bool engine_object_covers(struct engine *e, struct uobj *a, uintptr_t a_addr, struct uobj *b,
			  uintptr_t b_addr);
/* The client moved the whole object to new_addr (mremap). */
int engine_object_move(struct engine *e, struct uobj *o, uintptr_t new_addr);

/*
 * fork: a private copy of o as of now, not attached to any client: its
 * resident pages are copied, its swap slots shared. *memfd gets the
 * copy's memfd (the caller owns it).
 */
int engine_object_clone(struct engine *e, struct uobj *o, struct uobj **out, int *memfd);
/* Give a clone to client c, which mapped its memfd at addr. */
int engine_object_adopt(struct engine *e, struct uobj *o, struct client *c, uintptr_t addr);
/* Destroy a clone nobody adopted (or any object): like engine_object_destroy. */

/*
 * Shutdown: bring every swapped page of c back into memory (budgets
 * ignored), then unregister its ranges so it runs on plain shared memory.
 * Pages that cannot be read back make the client die by SIGBUS first.
 */
int engine_client_detach(struct engine *e, struct client *c);

struct engine_obj_stat {
	uint64_t id, size, budget;
	uint64_t resident_bytes, dirty_bytes, swapped_bytes, bad_bytes;
	uint64_t swapins, swapouts, faults;
	unsigned fenced_percent;   /* of the resident pages the page daemon keeps fenced */
};
void engine_object_stat(struct engine *e, struct uobj *o, struct engine_obj_stat *st);

/* Per-object state of one page, for tests and the filesystem. */
int engine_page_state(struct engine *e, struct uobj *o, size_t idx,
		      unsigned *state, uint64_t *slot);

/*
 * Inspection and tuning (src/inspect.c), for the daemon's filesystem.
 * None of it is on a fault path; each takes the engine lock itself.
 */
struct engine_tunables {
	uint64_t budget;             /* bytes; 0: none */
	uint64_t high, low;          /* global watermarks, bytes */
	uint64_t read_around_max;    /* largest read-around window, bytes */
	unsigned launder_percent;    /* launder while idle above this much of a budget; 0: never */
};
enum engine_tunable {
	ENGINE_TUNE_BUDGET,          /* resets the watermarks to their defaults */
	ENGINE_TUNE_HIGH,            /* low <= high <= budget, with a budget */
	ENGINE_TUNE_LOW,             /* low <= high, with a budget */
	ENGINE_TUNE_READ_AROUND_MAX, /* whole pages, one to the pageout cluster size */
	ENGINE_TUNE_LAUNDER_PERCENT, /* 0..100 */
};
void engine_get_tunables(struct engine *e, struct engine_tunables *t);
/* -EINVAL (and nothing changes) when the value breaks the rule above. */
int engine_set_tunable(struct engine *e, enum engine_tunable which, uint64_t value);
/* Flat "name value" lines: path, size_bytes, slots_{total,used,bad,free}. */
void engine_print_swap(struct engine *e, FILE *f);
/* Run-length "first-last free|used|bad" lines over the swap slots (windowed likewise). */
void engine_print_swap_map(struct engine *e, FILE *f);
/*
 * Run-length "first-last state" lines over o's pages (a window of pages
 * at a time under the lock). The caller keeps o alive for these three.
 */
int engine_object_pagemap(struct engine *e, struct uobj *o, FILE *f);
/*
 * o's bytes [off, off + len) as the client would read them, from memory
 * or straight from swap or the file, without faulting, mapping or
 * counting anything: the client's residency and counters stay as they
 * were. Holes read as zeros. Bytes read, or < 0 (-EIO: a bad page).
 */
ssize_t engine_object_peek(struct engine *e, struct uobj *o, void *buf, size_t len,
			   uint64_t off);
/* SEEK_DATA (data) / SEEK_HOLE over o's pages; -ENXIO past the end. */
int64_t engine_object_seek(struct engine *e, struct uobj *o, uint64_t off, bool data);
enum engine_obj_type engine_object_type(const struct uobj *o);

#endif
