/*
 * The engine: wires the swap device, the I/O engine, the fault service and
 * the page daemon together, and creates and destroys objects.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <signal.h>
#include <stdarg.h>
#include <unistd.h>
#include <linux/fs.h>

#include "common/util.h"
#include "engine_impl.h"
#include "fault/uffd_compat.h"
#include "pager/pager.h"

void engine_config_defaults(struct engine_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->io = IOENG_AUTO;
	cfg->track = TRACK_AUTO;
	cfg->cluster_pages = 64;
	cfg->readahead_pages = 16;
	cfg->launder = true;
}

void engine_log(struct engine *e, int level, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	uint64_t sec = now_ns() / 1000000000ULL;

	/* a dying disk must not bury the log: ten lines a second at most */
	if (sec != e->log_sec) {
		if (e->log_suppressed) {
			snprintf(msg, sizeof(msg), "%u more such messages suppressed",
				 e->log_suppressed);
			if (e->cfg.log)
				e->cfg.log(level, msg);
			else
				fprintf(stderr, "uvmpager: %s\n", msg);
		}
		e->log_sec = sec;
		e->log_lines = 0;
		e->log_suppressed = 0;
	}
	if (++e->log_lines > 10) {
		e->log_suppressed++;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (e->cfg.log)
		e->cfg.log(level, msg);
	else
		fprintf(stderr, "uvmpager: %s\n", msg);
}

static void set_budget(struct engine *e, uint64_t bytes)
{
	e->budget = bytes >> PAGE_SHIFT;
	/* reclaim starts a little below the budget, so faults rarely meet it */
	e->high = pdaemon_mark_high(e, e->budget);
	e->low = pdaemon_mark_low(e, e->budget);
}

static int client_self_create(struct engine *e, char *err, size_t errlen)
{
	struct client *c = calloc(1, sizeof(*c));
	uint64_t got;
	int r;

	if (!c)
		return -ENOMEM;
	c->eng = e;
	c->pid = getpid();
	/*
	 * MISSING/MINOR on shmem are implied on new kernels but must be
	 * asked for on older ones. No events in-process: the program is
	 * ours, it unmaps and discards through the library.
	 */
	r = uffd_create(track_uffd_features(e->track) | UFFD_FEATURE_MISSING_SHMEM |
			UFFD_FEATURE_MINOR_SHMEM | (e->caps.poison ? UFFD_FEATURE_POISON : 0),
			&got);
	if (r < 0) {
		snprintf(err, errlen, "userfaultfd: %s", strerror(-r));
		free(c);
		return r;
	}
	c->ufd = r;
	r = tracker_create(e->track, 0, &c->tr);
	if (r < 0) {
		snprintf(err, errlen, "dirty tracker %s: %s", track_mode_name(e->track),
			 strerror(-r));
		close(c->ufd);
		free(c);
		return r;
	}
	c->pins_at = UINT64_MAX;   /* no answer yet */
	r = pins_create(0, &c->pins);
	if (r < 0) {
		snprintf(err, errlen, "/proc/self: %s", strerror(-r));
		client_free(c);
		return r;
	}
	pins_ignore_fd(c->pins, ioeng_ring_fd(e->io));
	e->self = c;
	c->next = e->clients;
	e->clients = c;
	return 0;
}

void client_free(struct client *c)
{
	if (!c)
		return;
	if (c->journal)
		munmap(c->journal, UVMP_JOURNAL_ENTRIES * sizeof(*c->journal));
	if (c->pintab)
		munmap((void *)c->pintab, UVMP_PIN_TABLE_SIZE);
	pins_destroy(c->pins);
	free(c->pinned);
	free(c->kpinned);
	free(c->locked);
	tracker_destroy(c->tr);
	if (c->ufd >= 0)
		close(c->ufd);
	free(c);
}

int engine_create(const struct engine_config *cfg, struct engine **out,
		  char *err, size_t errlen)
{
	struct swapfile_config scfg = {
		.path = cfg->swap_path, .size = cfg->swap_size,
		.preallocate = cfg->swap_preallocate, .no_direct = cfg->swap_no_direct,
	};
	struct ioeng_config icfg = {
		.kind = cfg->io, .inject = cfg->io_inject, .inject_ctx = cfg->io_inject_ctx,
	};
	struct engine *e;
	int r;

	e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->cfg = *cfg;
	if (!e->cfg.cluster_pages)
		e->cfg.cluster_pages = 64;
	if (!e->cfg.readahead_pages)
		e->cfg.readahead_pages = 16;
	e->cfg.cluster_pages = MIN(e->cfg.cluster_pages, IO_MAX_IOV * 4);
	e->cfg.readahead_pages = MIN(e->cfg.readahead_pages, IO_MAX_IOV * 4);
	if (!e->cfg.readahead_min)
		e->cfg.readahead_min = 1;
	e->cfg.readahead_min = MIN(e->cfg.readahead_min, e->cfg.cluster_pages);
	e->ra_max = e->cfg.cluster_pages;
	e->launder_pct = e->cfg.launder ? 50 : 0;
	e->epfd = e->stop_fd = e->kick_fd = -1;
	e->next_id = 1;
	pthread_mutex_init(&e->lock, NULL);
	pthread_cond_init(&e->io_cond, NULL);
	pthread_cond_init(&e->pd_cond, NULL);
	set_budget(e, cfg->budget);

	r = uffd_probe(&e->caps);
	if (r < 0) {
		snprintf(err, errlen, "userfaultfd unusable: %s", strerror(-r));
		goto fail;
	}
	if (e->caps.thp_shmem_forced) {
		r = -EOPNOTSUPP;
		snprintf(err, errlen, "shmem transparent huge pages are forced "
			 "(shmem_enabled always/force): a 4 KiB write would populate 2 MiB; "
			 "set /sys/kernel/mm/transparent_hugepage/shmem_enabled to advise or never");
		goto fail;
	}
	r = track_mode_pick(&e->caps, cfg->track, &e->track);
	if (r < 0) {
		snprintf(err, errlen, "dirty tracking '%s' is not offered by this kernel",
			 track_mode_name(cfg->track));
		goto fail;
	}
	e->install_wp = track_install_wp(e->track);
	e->continue_wp = e->install_wp && e->caps.continue_wp;
	if (cfg->swap_npaths > 1 || cfg->swap_replicas > 1)
		r = swap_create_devices(&scfg, cfg->swap_paths, cfg->swap_npaths,
					cfg->swap_replicas ? cfg->swap_replicas : 1, &e->swap,
					err, errlen);
	else
		r = swap_create(&scfg, &e->swap, err, errlen);
	if (r < 0)
		goto fail;
	r = ioeng_create(&icfg, &e->io);
	if (r < 0) {
		snprintf(err, errlen, "I/O engine: %s", strerror(-r));
		goto fail;
	}
	r = pager_pool_init(e);
	if (r < 0)
		goto fail;
	r = zap_init(e);
	if (r < 0) {
		snprintf(err, errlen, "the fence's pipe: %s", strerror(-r));
		goto fail;
	}
	e->zeros = aligned_alloc(PAGE_SIZE, (size_t)e->cfg.readahead_pages << PAGE_SHIFT);
	if (!e->zeros) {
		r = -ENOMEM;
		goto fail;
	}
	memset(e->zeros, 0, (size_t)e->cfg.readahead_pages << PAGE_SHIFT);
	for (size_t i = 0; i < ARRAY_SIZE(uvm_pagerops); i++) {
		r = uvm_pagerops[i]->init ? uvm_pagerops[i]->init(e) : 0;
		if (r < 0) {
			snprintf(err, errlen, "%s pager: %s", uvm_pagerops[i]->name, strerror(-r));
			goto fail;
		}
	}
	r = client_self_create(e, err, errlen);
	if (r < 0)
		goto fail;
	r = fault_service_start(e);
	if (r < 0) {
		snprintf(err, errlen, "fault service: %s", strerror(-r));
		goto fail;
	}
	r = fault_service_add_client(e, e->self);
	if (r < 0) {
		snprintf(err, errlen, "fault service: %s", strerror(-r));
		goto fail;
	}
	r = pdaemon_start(e);
	if (r < 0) {
		snprintf(err, errlen, "page daemon: %s", strerror(-r));
		goto fail;
	}
	*out = e;
	return 0;

fail:
	engine_destroy(e);
	return r;
}

void engine_destroy(struct engine *e)
{
	if (!e)
		return;
	while (e->objects)
		engine_object_destroy(e, e->objects);
	pdaemon_stop(e);
	fault_service_stop(e);
	/* completes whatever is still in flight */
	ioeng_destroy(e->io);
	while (e->clients) {
		struct client *c = e->clients;

		e->clients = c->next;
		client_free(c);
	}
	if (e->pool_mem)
		pager_pool_fini(e);
	swap_destroy(e->swap);
	zap_fini(e);
	free(e->zeros);
	free(e->throttle);
	pthread_cond_destroy(&e->pd_cond);
	pthread_cond_destroy(&e->io_cond);
	pthread_mutex_destroy(&e->lock);
	free(e);
}

static int map_views(struct engine *e, struct uobj *o, bool writable)
{
	size_t len = o->npages << PAGE_SHIFT;
	unsigned modes = UFFD_MISSING | UFFD_MINOR;
	void *v;
	int r;

	o->memfd = memfd_create(o->ops->name, MFD_CLOEXEC);
	if (o->memfd < 0)
		return -errno;
	if (ftruncate(o->memfd, (off_t)len) < 0)
		return -errno;
	v = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, o->memfd, 0);
	if (v == MAP_FAILED)
		return -errno;
	o->eview = v;
	v = mmap(NULL, len, writable ? PROT_READ | PROT_WRITE : PROT_READ,
		 MAP_SHARED, o->memfd, 0);
	if (v == MAP_FAILED)
		return -errno;
	o->caddr = (uintptr_t)v;
	/* a 4 KiB touch must not populate 2 MiB */
	madvise(o->eview, len, MADV_NOHUGEPAGE);
	madvise(v, len, MADV_NOHUGEPAGE);
	if (writable && e->install_wp)
		modes |= UFFD_WP;
	r = uffd_register(e->self->ufd, v, len, modes, NULL);
	if (r < 0)
		return r;
	return 0;
}

/*
 * Calls fn on each run of o's client view that is still the object's: a
 * page gone from it (unmapped or moved away by the program) may be
 * anyone's memory now, another object's view among them.
 */
static void each_view_run(struct uobj *o, void (*fn)(struct uobj *o, void *a, size_t len))
{
	size_t from = 0, start, n;

	if (!o->caddr || !o->client)
		return;
	while ((n = uobj_next_live_run(o, &from, o->npages, &start)))
		fn(o, (void *)uobj_caddr(o, start), n << PAGE_SHIFT);
}

static void unregister_run(struct uobj *o, void *a, size_t len)
{
	if (!o->client->dead)
		uffd_unregister(o->client->ufd, a, len);
}

/* another process's view is its own to unmap */
static void unmap_run(struct uobj *o, void *a, size_t len)
{
	if (!o->client->external)
		munmap(a, len);
}

/* unregister: false when the caller did it already (engine_object_destroy) */
static void unmap_views(struct uobj *o, bool unregister)
{
	size_t len = o->npages << PAGE_SHIFT;

	if (unregister)
		each_view_run(o, unregister_run);
	each_view_run(o, unmap_run);
	if (o->memfile) {
		struct uobj_memfile *mf = o->memfile;

		if (__atomic_sub_fetch(&mf->refs, 1, __ATOMIC_ACQ_REL) == 0) {
			munmap(mf->view, mf->len);
			close(mf->fd);
			free(mf);
		}
	} else {
		if (o->eview)
			munmap(o->eview, len);
		if (o->memfd >= 0)
			close(o->memfd);
	}
	if (o->backing_fd >= 0)
		close(o->backing_fd);
}

static int object_create(struct engine *e, enum uobj_type type, int fd, size_t len,
			 uint64_t budget, void **addr, struct uobj **out)
{
	struct uobj *o;
	int r;

	if (!len)
		return -EINVAL;
	r = uobj_create(e, type, DIV_ROUND_UP(len, PAGE_SIZE), &o);
	if (r < 0)
		return r;
	o->client = e->self;
	o->budget = budget >> PAGE_SHIFT;
	if (fd >= 0) {
		struct stat st;
		uint64_t size;

		o->backing_fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
		if (o->backing_fd < 0 || fstat(fd, &st) < 0) {
			r = -errno;
			goto fail;
		}
		size = (uint64_t)st.st_size;
		if (S_ISBLK(st.st_mode) && ioctl(fd, BLKGETSIZE64, &size) < 0) {
			r = -errno;
			goto fail;
		}
		if (type == UOBJ_VNODE && size < len) {
			/* the object's bytes all have a home in the file */
			if (ftruncate(fd, (off_t)len) < 0) {
				r = -errno;
				goto fail;
			}
			size = len;
		}
		if (type == UOBJ_DEVICE && size < len) {
			r = -EINVAL;
			goto fail;
		}
		o->backing_size = size;
	}
	r = map_views(e, o, type != UOBJ_DEVICE);
	if (r < 0)
		goto fail;
	pthread_mutex_lock(&e->lock);
	o->id = e->next_id++;
	o->next = e->objects;
	e->objects = o;
	e->nobjects++;
	pthread_mutex_unlock(&e->lock);
	*addr = (void *)o->caddr;
	if (out)
		*out = o;
	return 0;

fail:
	unmap_views(o, true);
	uobj_destroy(o);
	return r;
}

int engine_aobj_create(struct engine *e, size_t len, uint64_t budget,
		       void **addr, struct uobj **out)
{
	return object_create(e, UOBJ_AOBJ, -1, len, budget, addr, out);
}

int engine_vnode_create(struct engine *e, int fd, size_t len, uint64_t budget,
			void **addr, struct uobj **out)
{
	return object_create(e, UOBJ_VNODE, fd, len, budget, addr, out);
}

int engine_device_create(struct engine *e, int fd, size_t len, uint64_t budget,
			 void **addr, struct uobj **out)
{
	return object_create(e, UOBJ_DEVICE, fd, len, budget, addr, out);
}

/* One pass: start a write for every dirty page of o and wait for them. */
static int flush_pass(struct engine *e, struct uobj *o)
{
	struct pager_sync sync = { 0 };
	size_t win = e->cfg.cluster_pages;

	pager_plug(e);
	for (size_t lo = 0; lo < o->npages; lo += win) {
		size_t hi = MIN(lo + win, o->npages);
		bool any = false;

		/* skip windows with nothing resident */
		for (size_t i = lo; i < hi && !any; i++)
			any = pg_resident(uobj_get(o, i));
		if (!any)
			continue;
		pager_sync_dirty(o, lo, hi - lo, true);
		for (size_t i = lo; i < hi; i++) {
			pgword_t w = uobj_get(o, i);

			if (pg_state(w) != PG_DIRTY)
				continue;
			uobj_set(o, i, pg_set_state(w, PG_BUSY_OUT) | PGF_WASDIRTY);
			pager_put(o, i, PGO_DOACTCLUST, lo, hi, &sync);
		}
	}
	pager_unplug(e);
	/* pages BUSY_OUT for the page daemon count too: wait for all I/O */
	while (sync.pending || o->inflight)
		pthread_cond_wait(&e->io_cond, &e->lock);
	return sync.error;
}

/*
 * Write back every dirty page of o; lock held. A failed cluster leaves its
 * pages dirty (only its centre is retried at once), so go round again
 * while passes make progress.
 */
static int flush_locked(struct engine *e, struct uobj *o)
{
	size_t before;
	int r = 0;

	if (!o->ops->put)
		return 0;
	for (int pass = 0; pass < 8; pass++) {
		before = o->cnt.swapouts;
		r = flush_pass(e, o);
		if (!o->cnt.dirty)
			return 0;
		if (o->cnt.swapouts == before)
			break;   /* no page went out: give up */
	}
	return r ? r : -EIO;
}

int engine_flush(struct engine *e, struct uobj *o)
{
	int r;

	pthread_mutex_lock(&e->lock);
	r = flush_locked(e, o);
	pthread_mutex_unlock(&e->lock);
	if (!r && o->backing_fd >= 0 && o->ops->put && fdatasync(o->backing_fd) < 0)
		r = -errno;
	return r;
}

int engine_reclaim(struct engine *e, struct uobj *o, uint64_t keep)
{
	size_t target = keep >> PAGE_SHIFT;
	int stuck = 0;

	pthread_mutex_lock(&e->lock);
	while (o->cnt.resident > target && stuck < 4) {
		size_t want = o->cnt.resident - MIN(o->cnt.resident, o->evicting) - target;
		size_t freed = 0;

		if (want) {
			if (o->client)
				pinned_round(e, o->client);
			pager_plug(e);
			freed = pdaemon_reclaim_object(e, o, want);
			pager_unplug(e);
		}
		while (o->inflight)
			pthread_cond_wait(&e->io_cond, &e->lock);
		/* the first pass may only fence; the next ones evict */
		stuck = freed ? 0 : stuck + 1;
	}
	pthread_mutex_unlock(&e->lock);
	return o->cnt.resident > target ? -EAGAIN : 0;
}

void engine_lock_fault(struct engine *e)
{
	uint64_t t;

	if (pthread_mutex_trylock(&e->lock) == 0)
		return;
	t = now_ns();
	pthread_mutex_lock(&e->lock);
	e->lock_waits++;
	e->lock_wait_ns += now_ns() - t;
}

int engine_set_budget(struct engine *e, struct uobj *o, uint64_t bytes)
{
	pthread_mutex_lock(&e->lock);
	if (o)
		o->budget = bytes >> PAGE_SHIFT;
	else
		set_budget(e, bytes);
	engine_wake_pdaemon(e);
	pthread_mutex_unlock(&e->lock);
	return 0;
}

void engine_object_destroy(struct engine *e, struct uobj *o)
{
	pthread_mutex_lock(&e->lock);
	/* a file gets its dirty pages back before it is let go */
	if (o->type == UOBJ_VNODE) {
		if (!o->client || o->client->dead) {
			/*
			 * The written bits died with the process: every page
			 * still in memory may hold writes, so all go back.
			 */
			for (size_t i = 0; i < o->npages; i++)
				if (pg_state(uobj_get(o, i)) == PG_CLEAN)
					pager_page_dirtied(o, i);
		}
		flush_locked(e, o);
	}
	o->dying = true;
	if (o->split_from && o->client)
		pinned_moved_parts(o->client, -1);
	/* a raw mremap's part being split off lets go of the lock meanwhile: o must stay */
	while (o->inflight || o->remapping)
		pthread_cond_wait(&e->io_cond, &e->lock);
	/*
	 * Unregistered while still listed: a fault that finds no object is
	 * poisoned (service.c, unserved_fault), and one on a view being let
	 * go (the daemon stopping hands the memory back) must be woken to the
	 * kernel's own fault instead.
	 */
	each_view_run(o, unregister_run);
	for (struct uobj **pp = &e->objects; *pp; pp = &(*pp)->next) {
		if (*pp == o) {
			*pp = o->next;
			break;
		}
	}
	if (e->pd_cursor == o)
		e->pd_cursor = NULL;
	e->nobjects--;
	fault_resume_throttled(e);   /* wakes the dying object's held faults */
	for (size_t i = 0; i < o->npages; i++) {
		pgword_t w = uobj_get(o, i);

		if (pg_slot(w) && o->ops->releasepg)
			o->ops->releasepg(o, i);
		/* gone pages stay so: unmap_views leaves their range alone */
		uobj_set(o, i, pg_state(w) == PG_GONE ? pg_make(PG_GONE, 0, 0) : 0);
	}
	pthread_mutex_unlock(&e->lock);
	if (o->backing_fd >= 0 && o->ops->put)
		fdatasync(o->backing_fd);
	unmap_views(o, false);
	uobj_destroy(o);
}

int engine_page_state(struct engine *e, struct uobj *o, size_t idx,
		      unsigned *state, uint64_t *slot)
{
	pgword_t w;

	if (idx >= o->npages)
		return -EINVAL;
	pthread_mutex_lock(&e->lock);
	w = uobj_get(o, idx);
	pthread_mutex_unlock(&e->lock);
	*state = pg_state(w);
	if (slot)
		*slot = pg_slot(w);
	return 0;
}

void engine_get_stats(struct engine *e, struct engine_stats *st)
{
	struct ioeng_stats io;
	struct swap_stats ss;
	size_t meta = 0;

	memset(st, 0, sizeof(*st));
	ioeng_get_stats(e->io, &io);
	swap_get_stats(e->swap, &ss);
	pthread_mutex_lock(&e->lock);
	st->resident_bytes = (uint64_t)e->resident << PAGE_SHIFT;
	st->dirty_bytes = (uint64_t)e->dirty << PAGE_SHIFT;
	st->swapped_bytes = (uint64_t)e->swapped << PAGE_SHIFT;
	st->bad_bytes = (uint64_t)e->bad << PAGE_SHIFT;
	st->budget_bytes = (uint64_t)e->budget << PAGE_SHIFT;
	st->swapins = e->swapins;
	st->swapouts = e->swapouts;
	st->evictions = e->evictions;
	st->clean_evictions = e->clean_evictions;
	st->faults = e->faults;
	st->zero_fills = e->zero_fills;
	st->readahead = e->readahead;
	st->write_errors = e->write_errors;
	st->read_errors = e->read_errors;
	st->throttled_faults = e->throttled_faults;
	st->faults_minor = e->faults_minor;
	st->faults_major = e->faults_major;
	st->faults_wait = e->faults_wait;
	st->faults_first = e->faults_first;
	st->faults_wp = e->faults_wp;
	st->faults_fenced = e->faults_fenced;
	st->fenced_around = e->fenced_around;
	st->budget_overruns = e->budget_overruns;
	st->swap_full_events = e->swap_full_events;
	st->clean_mismatches = e->clean_mismatches;
	st->readahead_hits = e->ra_hits;
	st->readahead_misses = e->ra_misses;
	st->pin_scans = e->pin_scans;
	st->pin_scan_us = e->pin_scan_ns / 1000;
	st->pin_unknown = e->pin_unknown;
	st->pinned_kept = e->pinned_kept;
	st->pin_races = e->pin_races;
	st->lock_waits = e->lock_waits;
	st->lock_wait_us = e->lock_wait_ns / 1000;
	st->clean_mapping = e->continue_wp;
	st->objects = e->nobjects;
	for (struct uobj *o = e->objects; o; o = o->next) {
		meta += sizeof(*o) + o->ndir * sizeof(pgword_t *) +
			(o->active.cap + o->inactive.cap) * sizeof(uint32_t);
		for (size_t i = 0; i < o->ndir; i++)
			if (o->dir[i])
				meta += UOBJ_CHUNK * sizeof(pgword_t);
	}
	pthread_mutex_unlock(&e->lock);
	st->meta_bytes = meta + ss.meta_bytes;
	st->swap_read_bytes = io.read_bytes;
	st->swap_write_bytes = io.write_bytes;
	st->read_ops = io.reads;
	st->write_ops = io.writes;
	st->swap_slots_total = ss.slots_total;
	st->swap_slots_used = ss.slots_used;
	st->swap_slots_bad = ss.slots_bad;
	st->io_engine = ioeng_name(e->io);
	st->tracking = track_mode_name(e->track);
}

void engine_print_stats(struct engine *e, FILE *f)
{
	struct engine_stats s;

	engine_get_stats(e, &s);
#define P(name) fprintf(f, "%s %" PRIu64 "\n", #name, (uint64_t)s.name)
	P(resident_bytes);
	P(dirty_bytes);
	P(swapped_bytes);
	P(bad_bytes);
	P(budget_bytes);
	P(faults);
	P(zero_fills);
	P(readahead);
	P(swapins);
	P(swapouts);
	P(evictions);
	P(clean_evictions);
	P(swap_read_bytes);
	P(swap_write_bytes);
	P(read_ops);
	P(write_ops);
	P(write_errors);
	P(read_errors);
	P(throttled_faults);
	P(budget_overruns);
	P(swap_full_events);
	P(clean_mismatches);
	P(pin_scans);
	P(pin_scan_us);
	P(pin_unknown);
	P(pinned_kept);
	P(pin_races);
	P(lock_waits);
	P(lock_wait_us);
	P(swap_slots_total);
	P(swap_slots_used);
	P(swap_slots_bad);
	P(objects);
	P(meta_bytes);
#undef P
	fprintf(f, "io_engine %s\n", s.io_engine);
	fprintf(f, "dirty_tracking %s\n", s.tracking);
}

/* --- clients in other processes --------------------------------------- */

int engine_client_create(struct engine *e, pid_t pid, int ufd, uint64_t budget,
			 struct client **out)
{
	struct client *c;
	uint64_t got;
	int r;

	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->eng = e;
	c->pid = pid;
	c->ufd = -1;
	c->external = true;
	c->budget = budget >> PAGE_SHIFT;
	/*
	 * UNMAP, REMAP and REMOVE tell us of a munmap, mremap or discard the
	 * shim never saw (raw syscalls: Go, sanitizers, allocators with
	 * their own syscall layer): discarded pages read zeros, and pages
	 * unmapped are let go. (The fence is by the memfd, not by address:
	 * it never lands on memory that is no longer the object's.)
	 */
	r = uffd_api(ufd, track_uffd_features(e->track) | UFFD_FEATURE_MISSING_SHMEM |
		     UFFD_FEATURE_MINOR_SHMEM | (e->caps.poison ? UFFD_FEATURE_POISON : 0) |
		     (e->caps.event_remove ? UFFD_FEATURE_EVENT_REMOVE : 0) |
		     (e->caps.event_unmap ? UFFD_FEATURE_EVENT_UNMAP : 0) |
		     (e->caps.event_remap ? UFFD_FEATURE_EVENT_REMAP : 0),
		     &got);
	if (r < 0)
		goto fail;
	r = tracker_create(e->track, pid, &c->tr);
	if (r < 0)
		goto fail;
	c->pins_at = UINT64_MAX;   /* no answer yet */
	r = pins_create(pid, &c->pins);
	if (r < 0)
		goto fail;
	c->ufd = ufd;
	pthread_mutex_lock(&e->lock);
	c->next = e->clients;
	e->clients = c;
	pthread_mutex_unlock(&e->lock);
	r = fault_service_add_client(e, c);
	if (r < 0) {
		c->ufd = -1;
		engine_client_destroy(e, c);
		return r;
	}
	*out = c;
	return 0;

fail:
	client_free(c);
	return r;
}

/* A sealed memfd of len bytes mapped read-write here; the caller sends *fd. */
static int shared_table(const char *name, size_t len, void **map, int *fd)
{
	void *p;
	int r;

	*fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (*fd < 0)
		return -errno;
	/* the client maps it too: it must not be able to pull it from under us */
	if (ftruncate(*fd, (off_t)len) < 0 ||
	    fcntl(*fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) {
		r = -errno;
		goto fail;
	}
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, *fd, 0);
	if (p == MAP_FAILED) {
		r = -errno;
		goto fail;
	}
	*map = p;
	return 0;

fail:
	close(*fd);
	*fd = -1;
	return r;
}

int engine_client_pintab(struct engine *e, struct client *c, int *memfd)
{
	size_t len = UVMP_PIN_TABLE_SIZE;
	void *p;
	int r;

	r = shared_table("uvmpager-pins", len, &p, memfd);
	if (r < 0)
		return r;
	pthread_mutex_lock(&e->lock);
	if (c->pintab) {
		pthread_mutex_unlock(&e->lock);
		munmap(p, len);
		close(*memfd);
		*memfd = -1;
		return -EBUSY;
	}
	c->pintab = p;
	pinned_moved_parts(c, 0);   /* a child may have adopted moved parts first */
	pthread_mutex_unlock(&e->lock);
	return 0;
}

int engine_client_journal(struct engine *e, struct client *c, int *memfd)
{
	size_t len = UVMP_JOURNAL_ENTRIES * sizeof(struct uvmp_journal);
	void *p;
	int r;

	r = shared_table("uvmpager-journal", len, &p, memfd);
	if (r < 0)
		return r;
	pthread_mutex_lock(&e->lock);
	if (c->journal) {
		pthread_mutex_unlock(&e->lock);
		munmap(p, len);
		close(*memfd);
		*memfd = -1;
		return -EBUSY;
	}
	c->journal = p;
	pthread_mutex_unlock(&e->lock);
	return 0;
}

void engine_client_dead(struct engine *e, struct client *c)
{
	pthread_mutex_lock(&e->lock);
	c->dead = true;
	pthread_mutex_unlock(&e->lock);
}

bool engine_client_mm_alive(struct engine *e, struct client *c)
{
	return !c->dead && tracker_mm_alive(c->tr);
}

void engine_client_destroy(struct engine *e, struct client *c)
{
	struct uobj *o;

	if (!c)
		return;
	for (;;) {
		pthread_mutex_lock(&e->lock);
		for (o = e->objects; o && o->client != c; o = o->next)
			;
		pthread_mutex_unlock(&e->lock);
		if (!o)
			break;
		engine_object_destroy(e, o);
	}
	pthread_mutex_lock(&e->lock);
	for (struct client **pp = &e->clients; *pp; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	}
	pthread_mutex_unlock(&e->lock);
	if (c->ufd >= 0 && e->epfd >= 0) {
		/* the fault thread frees it once no event can name it */
		fault_service_remove_client(e, c);
		return;
	}
	client_free(c);
}

int engine_client_set_budget(struct engine *e, struct client *c, uint64_t bytes)
{
	pthread_mutex_lock(&e->lock);
	c->budget = bytes >> PAGE_SHIFT;
	engine_wake_pdaemon(e);
	pthread_mutex_unlock(&e->lock);
	return 0;
}

static enum uobj_type obj_type(enum engine_obj_type t)
{
	return t == ENGINE_OBJ_FILE ? UOBJ_VNODE : t == ENGINE_OBJ_DEVICE ? UOBJ_DEVICE : UOBJ_AOBJ;
}

/* The engine's own view of a memfd it was handed. */
static int map_engine_view(struct uobj *o, int memfd)
{
	size_t len = o->npages << PAGE_SHIFT;
	struct stat st;
	void *v;

	if (fstat(memfd, &st) < 0)
		return -errno;
	if ((uint64_t)st.st_size < len)
		return -EINVAL;
	o->memfd = fcntl(memfd, F_DUPFD_CLOEXEC, 3);
	if (o->memfd < 0)
		return -errno;
	v = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, o->memfd, 0);
	if (v == MAP_FAILED)
		return -errno;
	o->eview = v;
	madvise(v, len, MADV_NOHUGEPAGE);
	/*
	 * The view stays locked (the daemon's mlockall, MCL_FUTURE), though
	 * every page touched through it pays mlock_folio: a locked page is
	 * one the kernel's reclaim never unmaps. Unlocked, reclaim (or a
	 * DAMON pageout scheme, which this machine runs) could unmap a
	 * client's pte behind our back, and "no pte" means the program's
	 * own zap to pager_discard_settle, fill_settle and the fence's
	 * bookkeeping: a discard settled that way throws data away.
	 */
	return 0;
}

/*
 * Registers the client's view of o, but for pages gone from it (a clone
 * of an object whose parent unmapped part of it by syscall: what the
 * child has there is its own memory, inherited, not ours).
 */
static int register_client_view(struct engine *e, struct uobj *o)
{
	unsigned modes = UFFD_MISSING | UFFD_MINOR;
	size_t from = 0, start, n;

	if (!o->ops->read_only && e->install_wp)
		modes |= UFFD_WP;
	while ((n = uobj_next_live_run(o, &from, o->npages, &start))) {
		int r = uffd_register(o->client->ufd, (void *)uobj_caddr(o, start),
				      n << PAGE_SHIFT, modes, NULL);

		if (r < 0)
			return r;
	}
	return 0;
}

static void link_object(struct engine *e, struct uobj *o)
{
	o->id = e->next_id++;
	o->next = e->objects;
	e->objects = o;
	e->nobjects++;
}

int engine_object_attach(struct engine *e, struct client *c, enum engine_obj_type type,
			 int memfd, int backing_fd, uintptr_t addr, size_t len,
			 uint64_t budget, struct uobj **out)
{
	struct uobj *o;
	struct stat st;
	int r;

	if (!len || addr % PAGE_SIZE || len % PAGE_SIZE)
		return -EINVAL;
	if (type != ENGINE_OBJ_ANON && backing_fd < 0)
		return -EBADF;
	r = uobj_create(e, obj_type(type), len >> PAGE_SHIFT, &o);
	if (r < 0)
		return r;
	o->budget = budget >> PAGE_SHIFT;
	if (type != ENGINE_OBJ_ANON) {
		uint64_t size;

		o->backing_fd = fcntl(backing_fd, F_DUPFD_CLOEXEC, 3);
		if (o->backing_fd < 0 || fstat(o->backing_fd, &st) < 0) {
			r = -errno;
			goto fail;
		}
		size = (uint64_t)st.st_size;
		if (S_ISBLK(st.st_mode) && ioctl(o->backing_fd, BLKGETSIZE64, &size) < 0) {
			r = -errno;
			goto fail;
		}
		if (type == ENGINE_OBJ_FILE && size < len) {
			if (ftruncate(o->backing_fd, (off_t)len) < 0) {
				r = -errno;
				goto fail;
			}
			size = len;
		}
		/* a device page wholly past its end would have nothing to read */
		if (type == ENGINE_OBJ_DEVICE && DIV_ROUND_UP(size, PAGE_SIZE) < o->npages) {
			r = -EINVAL;
			goto fail;
		}
		o->backing_size = size;
	}
	r = map_engine_view(o, memfd);
	if (r < 0)
		goto fail;
	o->caddr = addr;
	pthread_mutex_lock(&e->lock);
	o->client = c;
	r = c->dead ? -ESRCH : register_client_view(e, o);
	if (r < 0) {
		o->client = NULL;
		pthread_mutex_unlock(&e->lock);
		goto fail;
	}
	link_object(e, o);
	pthread_mutex_unlock(&e->lock);
	*out = o;
	return 0;

fail:
	o->caddr = 0;
	unmap_views(o, true);
	uobj_destroy(o);
	return r;
}

uint64_t engine_object_id(const struct uobj *o)
{
	return o->id;
}

uintptr_t engine_object_addr(const struct uobj *o)
{
	return o->caddr;
}

size_t engine_object_registered_offset(const struct uobj *o)
{
	size_t i = 0;

	while (i < o->npages && pg_gone(uobj_get(o, i)))
		i++;
	return i << PAGE_SHIFT;
}

size_t engine_object_size(const struct uobj *o)
{
	return o->npages << PAGE_SHIFT;
}

/*
 * Lock held: waits until *pending (events of c read but not yet handled)
 * is 0. A fault thread is at them (it may wait for I/O): 5 s at most.
 */
static void events_wait(struct engine *e, struct client *c, const unsigned *pending)
{
	for (int t = 0; *pending && !c->dead && t < 500; t++) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 10 * 1000 * 1000;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&e->io_cond, &e->lock, &ts);
	}
}

void engine_client_unmaps_wait(struct engine *e, struct client *c)
{
	pthread_mutex_lock(&e->lock);
	events_wait(e, c, &c->unmaps_pending);
	pthread_mutex_unlock(&e->lock);
}

int engine_object_release(struct engine *e, struct uobj *o, size_t off, size_t len)
{
	if (off % PAGE_SIZE || len % PAGE_SIZE || off + len > (o->npages << PAGE_SHIFT) ||
	    off + len < off)
		return -EINVAL;
	size_t gone;

	pthread_mutex_lock(&e->lock);
	gone = pager_release_range(o, off >> PAGE_SHIFT, len >> PAGE_SHIFT);
	pthread_mutex_unlock(&e->lock);
	return gone ? -EXDEV : 0;
}

int engine_object_move(struct engine *e, struct uobj *o, uintptr_t new_addr)
{
	int r;

	if (new_addr % PAGE_SIZE)
		return -EINVAL;
	pthread_mutex_lock(&e->lock);
	/*
	 * mremap carried the registration and the PTEs along; only fenced
	 * pages stay fenced, as before.
	 */
	o->caddr = new_addr;
	pager_journal_move(o);
	r = 0;
	pthread_mutex_unlock(&e->lock);
	return r;
}

/*
 * The parent's other threads run on while its objects are cloned, and
 * under wp-async a write to a mapped page does not fault: a page written
 * between the collect before the copy and the copy itself was copied new
 * but would be marked CLEAN with the older slot, and the child would read
 * the stale slot back after its first eviction. A second collect after
 * the copy names every such page: its copy is DIRTY (the slot reference
 * goes), as the parent's page is. Its copy holds some write between the
 * two collects, which is what a fork racing with that write may show.
 * Lock held; o has no I/O in flight.
 */
static void clone_recheck(struct engine *e, struct uobj *o, struct uobj *n)
{
	uint64_t map[DIV_ROUND_UP(IO_MAX_IOV * 4, 64)];
	size_t win = MIN((size_t)e->cfg.cluster_pages, ARRAY_SIZE(map) * 64);

	for (size_t lo = 0; lo < o->npages; lo += win) {
		size_t cnt = MIN(win, o->npages - lo);

		memset(map, 0, sizeof(map));
		pager_sync_dirty_map(o, lo, cnt, true, map);
		for (size_t i = 0; i < cnt; i++)
			if (bitmap_test(map, i) && pg_state(uobj_get(n, lo + i)) == PG_CLEAN)
				pager_page_dirtied(n, lo + i);
	}
}

int engine_object_clone(struct engine *e, struct uobj *o, struct uobj **out, int *memfd)
{
	size_t len = o->npages << PAGE_SHIFT;
	struct uobj *n;
	int fd, r;

	r = uobj_create(e, o->type, o->npages, &n);
	if (r < 0)
		return r;
	fd = memfd_create(o->ops->name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0) {
		r = -errno;
		goto fail;
	}
	/* the child gets this fd: it must not shrink it under our view (SIGBUS) */
	if (ftruncate(fd, (off_t)len) < 0 || fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK) < 0) {
		r = -errno;
		close(fd);
		goto fail;
	}
	r = map_engine_view(n, fd);
	close(fd);
	if (r < 0)
		goto fail;
	if (o->backing_fd >= 0) {
		n->backing_fd = fcntl(o->backing_fd, F_DUPFD_CLOEXEC, 3);
		n->backing_size = o->backing_size;
	}
	n->budget = o->budget;
	/* the child's shim does not know it either; the server lists it at adoption */
	n->split_from = o->split_from;
	n->announced = true;

	pthread_mutex_lock(&e->lock);
	/* a stable picture: no I/O in flight, the written bits in the page states */
	while (o->inflight)
		pthread_cond_wait(&e->io_cond, &e->lock);
	for (size_t lo = 0; lo < o->npages; lo += e->cfg.cluster_pages)
		pager_sync_dirty(o, lo, MIN((size_t)e->cfg.cluster_pages, o->npages - lo), true);
	for (size_t i = 0; i < o->npages; i++) {
		pgword_t w = uobj_get(o, i);
		uint64_t slot;
		enum pg_state st;

		/* discarded by the parent and zapped: the child gets zeros, not the old data */
		if (pg_has(w, PGF_DISCARD)) {
			pager_discard_settle(o, i);
			w = uobj_get(o, i);
		}
		slot = pg_slot(w);
		st = pg_state(w);

		if (st == PG_BUSY_IN || st == PG_BUSY_OUT)
			st = PG_DIRTY;   /* cannot happen: nothing in flight */
		if (slot && o->ops->swap_backed && (st == PG_CLEAN || st == PG_SWAPPED ||
						     st == PG_BAD))
			swap_ref(e->swap, slot);
		else
			slot = 0;
		if (st == PG_DIRTY || st == PG_CLEAN) {
			memcpy(uobj_eaddr(n, i), uobj_eaddr(o, i), PAGE_SIZE);
			/* nobody maps the copy yet: it is fenced */
			uobj_set(n, i, pg_make(st, PGF_INACTIVE | PGF_FRESH, slot));
		} else if (st != PG_EMPTY) {
			uobj_set(n, i, pg_make(st, 0, slot));
		}
	}
	clone_recheck(e, o, n);
	link_object(e, n);
	engine_wake_pdaemon(e);
	pthread_mutex_unlock(&e->lock);
	*memfd = fcntl(n->memfd, F_DUPFD_CLOEXEC, 3);
	*out = n;
	return 0;

fail:
	unmap_views(n, true);
	uobj_destroy(n);
	return r;
}

/*
 * Pages [first, first + n) of o, moved to `to` by the program's own
 * mremap, become an object of their own: the moved mapping still maps
 * o's memfd at their offset and keeps its userfaultfd registration, so
 * nothing in the client's address space is touched. The pages go with
 * their state, slots and queue place; o keeps them as PG_GONE, memory
 * and slots no longer its own. The new object is o's type, budget and
 * client; the server learns of it by engine_client_new_objects.
 *
 * Lock held; the pages are not busy. A PGF_DISCARD goes along: its
 * proof (page.h) is read at the new view, where the PTEs went. -ENOMEM,
 * or -EMFILE past ENGINE_MOVED_PARTS_MAX of the client's, with nothing
 * changed.
 */
int object_split(struct engine *e, struct uobj *o, size_t first, size_t n, uintptr_t to,
		 struct uobj **out)
{
	struct uobj *p;
	int r;

	if (o->client && o->client->nmoved_parts >= ENGINE_MOVED_PARTS_MAX)
		return -EMFILE;
	r = uobj_create(e, o->type, n, &p);
	if (r < 0)
		return r;
	if (!o->memfile) {
		/* o's own view covers its whole memfd (memoff 0): the one to share */
		o->memfile = calloc(1, sizeof(*o->memfile));
		if (!o->memfile) {
			r = -ENOMEM;
			goto fail;
		}
		*o->memfile = (struct uobj_memfile){ o->memfd, o->eview, o->npages << PAGE_SHIFT, 1 };
	}
	__atomic_add_fetch(&o->memfile->refs, 1, __ATOMIC_ACQ_REL);
	p->memfile = o->memfile;
	p->memfd = o->memfd;
	p->memoff = (uint64_t)uobj_memoff(o, first);
	p->eview = o->memfile->view + p->memoff;
	if (o->backing_fd >= 0) {
		p->backing_fd = fcntl(o->backing_fd, F_DUPFD_CLOEXEC, 3);
		if (p->backing_fd < 0) {
			r = -errno;
			goto fail;
		}
		p->backing_size = o->backing_size;
	}
	/* every word it will hold: uobj_set must not fail halfway */
	for (size_t c = 0; c < p->ndir; c++) {
		p->dir[c] = calloc(UOBJ_CHUNK, sizeof(pgword_t));
		if (!p->dir[c]) {
			r = -ENOMEM;
			goto fail;
		}
	}
	p->budget = o->budget ? MAX(1, o->budget * n / o->npages) : 0;
	p->fenced_share = o->fenced_share;
	p->is_modified = o->is_modified;
	p->client = o->client;
	p->pinned = o->pinned;      /* being handed back (engine_client_detach): so is the part */
	p->caddr = to;
	p->split_from = o->id;
	for (size_t i = 0; i < n; i++) {
		pgword_t w = uobj_get(o, first + i) & ~(pgword_t)PGF_QUEUED;

		/*
		 * A fenced page keeps its place in the clock: it is evicted
		 * unless touched first (pin_safe holds it back until the next
		 * pin scan covers it).
		 */
		if (pg_resident(w) && pg_has(w, PGF_INACTIVE) &&
		    pgqueue_push(&p->inactive, i) == 0)
			w |= PGF_QUEUED;
		uobj_set(p, i, w);
		/* the queues skip it; no slot to free, no memory to punch: p has them */
		uobj_set(o, first + i, pg_make(PG_GONE, uobj_get(o, first + i) & PGF_QUEUED, 0));
	}
	link_object(e, p);
	pinned_moved_parts(p->client, 1);
	engine_wake_pdaemon(e);
	*out = p;
	return 0;

fail:
	p->client = NULL;
	unmap_views(p, true);
	uobj_destroy(p);
	return r;
}

size_t engine_client_new_objects(struct engine *e, struct client *c, struct uobj **out,
				 uint64_t *origin, size_t max)
{
	size_t k = 0;

	pthread_mutex_lock(&e->lock);
	events_wait(e, c, &c->remaps_pending);
	for (struct uobj *o = e->objects; o && k < max; o = o->next) {
		if (o->client != c || !o->split_from || o->announced)
			continue;
		o->announced = true;
		origin[k] = o->split_from;
		out[k++] = o;
	}
	pthread_mutex_unlock(&e->lock);
	return k;
}

/* Some page of the overlap live in a (and in b too, or gone from b: `gone_in_b`). */
static bool overlap_test(struct engine *e, struct uobj *a, uintptr_t a_addr, struct uobj *b,
			 uintptr_t b_addr, bool gone_in_b)
{
	uintptr_t lo = MAX(a_addr, b_addr);
	uintptr_t hi = MIN(a_addr + (a->npages << PAGE_SHIFT), b_addr + (b->npages << PAGE_SHIFT));
	bool hit = false;

	pthread_mutex_lock(&e->lock);
	for (uintptr_t p = lo; p < hi && !hit; p += PAGE_SIZE)
		hit = !pg_gone(uobj_get(a, (p - a_addr) >> PAGE_SHIFT)) &&
		      pg_gone(uobj_get(b, (p - b_addr) >> PAGE_SHIFT)) == gone_in_b;
	pthread_mutex_unlock(&e->lock);
	return hit;
}

bool engine_objects_meet(struct engine *e, struct uobj *a, uintptr_t a_addr, struct uobj *b,
			 uintptr_t b_addr)
{
	return overlap_test(e, a, a_addr, b, b_addr, false);
}

bool engine_object_covers(struct engine *e, struct uobj *a, uintptr_t a_addr, struct uobj *b,
			  uintptr_t b_addr)
{
	return overlap_test(e, a, a_addr, b, b_addr, true);
}

bool engine_object_live(struct engine *e, struct uobj *o, size_t off, size_t len)
{
	bool live = false;

	pthread_mutex_lock(&e->lock);
	for (size_t i = off >> PAGE_SHIFT; i < MIN(o->npages, (off + len) >> PAGE_SHIFT) && !live;
	     i++)
		live = !pg_gone(uobj_get(o, i));
	pthread_mutex_unlock(&e->lock);
	return live;
}

int engine_object_adopt(struct engine *e, struct uobj *o, struct client *c, uintptr_t addr)
{
	int r;

	pthread_mutex_lock(&e->lock);
	if (o->client) {
		pthread_mutex_unlock(&e->lock);
		return -EBUSY;
	}
	o->caddr = addr;
	o->client = c;
	r = register_client_view(e, o);
	if (r < 0) {
		o->client = NULL;
		o->caddr = 0;
	} else {
		c->resident += o->cnt.resident;
		if (o->split_from)
			pinned_moved_parts(c, 1);
	}
	pthread_mutex_unlock(&e->lock);
	return r;
}

int engine_client_detach(struct engine *e, struct client *c)
{
	int r = 0;

	pthread_mutex_lock(&e->lock);
	c->budget = 0;
	/* what comes back must stay: the page daemon leaves it alone */
	for (struct uobj *o = e->objects; o; o = o->next)
		if (o->client == c)
			o->pinned = true;
	/* pageouts already started end first: their pages may leave memory */
	while (e->inflight)
		pthread_cond_wait(&e->io_cond, &e->lock);
	for (struct uobj *o = e->objects; o; o = o->next) {
		if (o->client != c)
			continue;
		/* bring back every page that lives only in swap or its file */
		for (size_t i = 0; i < o->npages; i++) {
			pgword_t w = uobj_get(o, i);
			size_t t = i + 1;

			/* a discard zapped (page.h): zeros from now on, not the old data */
			if (pg_has(w, PGF_DISCARD)) {
				pager_discard_settle(o, i);
				w = uobj_get(o, i);
			}

			if (pg_state(w) != PG_SWAPPED &&
			    !(pg_state(w) == PG_EMPTY && !o->ops->zero_fill))
				continue;
			while (t < o->npages && t - i < (size_t)e->cfg.cluster_pages &&
			       pg_state(uobj_get(o, t)) == pg_state(w))
				t++;
			for (size_t k = i; k < t; k++)
				uobj_set(o, k, pg_set_state(uobj_get(o, k) | PGF_INACTIVE, PG_BUSY_IN));
			if (pager_get(o, i, t - i) < 0)
				r = -EIO;
			i = t - 1;
		}
	}
	while (e->inflight)
		pthread_cond_wait(&e->io_cond, &e->lock);
	for (struct uobj *o = e->objects; o; o = o->next) {
		if (o->client != c)
			continue;
		for (size_t i = 0; i < o->npages; i++)
			if (pg_state(uobj_get(o, i)) == PG_BAD || pg_state(uobj_get(o, i)) == PG_SWAPPED)
				r = -EIO;
	}
	if (r < 0 && !c->dead) {
		/* some data cannot be given back: never let it read zeros */
		kill(c->pid, SIGBUS);
	}
	pthread_mutex_unlock(&e->lock);
	return r;
}

void engine_object_stat(struct engine *e, struct uobj *o, struct engine_obj_stat *st)
{
	pthread_mutex_lock(&e->lock);
	st->id = o->id;
	st->size = o->npages << PAGE_SHIFT;
	st->budget = (uint64_t)o->budget << PAGE_SHIFT;
	st->resident_bytes = (uint64_t)o->cnt.resident << PAGE_SHIFT;
	st->dirty_bytes = (uint64_t)o->cnt.dirty << PAGE_SHIFT;
	st->swapped_bytes = (uint64_t)o->cnt.swapped << PAGE_SHIFT;
	st->bad_bytes = (uint64_t)o->cnt.bad << PAGE_SHIFT;
	st->swapins = o->cnt.swapins;
	st->swapouts = o->cnt.swapouts;
	st->faults = o->cnt.faults;
	st->fenced_percent = o->fenced_share * 100 / 16;
	pthread_mutex_unlock(&e->lock);
}
