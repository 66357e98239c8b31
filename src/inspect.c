/*
 * Looking at the engine from outside: tunables, the swap device's map, an
 * object's page states and its bytes. The filesystem (uvmpagerd) is the
 * caller. Nothing here runs on a fault or pageout path; all of it reads
 * what those paths already keep, under the engine lock, and lets go of
 * the lock before any I/O.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"
#include "engine_impl.h"
#include "swap/csum.h"
#include "swap/swapfile.h"

/* Lock held. */
static void get_tunables_locked(struct engine *e, struct engine_tunables *t)
{
	t->budget = (uint64_t)e->budget << PAGE_SHIFT;
	t->high = (uint64_t)e->high << PAGE_SHIFT;
	t->low = (uint64_t)e->low << PAGE_SHIFT;
	t->read_around_max = (uint64_t)e->ra_max << PAGE_SHIFT;
	t->launder_percent = e->launder_pct;
}

/* Takes the engine lock. */
void engine_get_tunables(struct engine *e, struct engine_tunables *t)
{
	pthread_mutex_lock(&e->lock);
	get_tunables_locked(e, t);
	pthread_mutex_unlock(&e->lock);
}

/*
 * Checks and applies one value under the lock, so that two writers of
 * related tunables (a high and a low mark) cannot both pass their checks
 * against the other's old value. -EINVAL leaves everything as it was.
 */
int engine_set_tunable(struct engine *e, enum engine_tunable which, uint64_t v)
{
	size_t pages = (size_t)(v >> PAGE_SHIFT);
	int r = 0;

	if (which != ENGINE_TUNE_LAUNDER_PERCENT && v >> PAGE_SHIFT > PG_SLOT_MAX)
		return -EINVAL;
	pthread_mutex_lock(&e->lock);
	switch (which) {
	case ENGINE_TUNE_BUDGET:
		/*
		 * 0 is "no budget"; a nonzero one under a page would mean the
		 * same, and one over the machine's memory nothing at all
		 */
		if ((v && !pages) ||
		    (sysconf(_SC_PHYS_PAGES) > 0 && pages > (size_t)sysconf(_SC_PHYS_PAGES))) {
			r = -EINVAL;
			break;
		}
		e->budget = pages;
		e->high = pdaemon_mark_high(e, pages);
		e->low = pdaemon_mark_low(e, pages);
		break;
	case ENGINE_TUNE_HIGH:
		if (!e->budget || pages > e->budget || pages < e->low) {
			r = -EINVAL;
			break;
		}
		e->high = pages;
		break;
	case ENGINE_TUNE_LOW:
		if (!e->budget || pages > e->high) {
			r = -EINVAL;
			break;
		}
		e->low = pages;
		break;
	case ENGINE_TUNE_READ_AROUND_MAX:
		if (v % PAGE_SIZE || !pages || pages > e->cfg.cluster_pages) {
			r = -EINVAL;
			break;
		}
		e->ra_max = pages;
		break;
	case ENGINE_TUNE_LAUNDER_PERCENT:
		if (v > 100) {
			r = -EINVAL;
			break;
		}
		e->launder_pct = (unsigned)v;
		break;
	default:
		r = -EINVAL;
	}
	if (!r)
		engine_wake_pdaemon(e);
	pthread_mutex_unlock(&e->lock);
	return r;
}

static void read_done(struct io_req *req)
{
	(void)req;
}

/*
 * A swap device without a descriptor (NBD): one page through the I/O
 * engine, in the calling thread. Called without the engine lock.
 */
static ssize_t device_read_page(struct engine *e, void *buf, uint64_t off)
{
	struct io_req req = {
		.op = IO_READ, .fd = -1, .dev = swap_device(e->swap), .offset = off,
		.iovcnt = 1, .iov = { { .iov_base = buf, .iov_len = PAGE_SIZE } },
		.done = read_done,
	};
	int r = ioeng_run(e->io, &req);

	return r < 0 ? r : req.result;
}

/* No lock: a swap device's name and size never change while it is open. */
/*
 * "<prefix>reads", "<prefix>read_latency_us_mean", "..._max", and the same
 * for writes: a lock-free snapshot, so ops and sum may be a request apart.
 */
static void print_latency(FILE *f, const char *prefix, const struct swapdev *dev)
{
	static const char *const op[2] = { [IO_READ] = "read", [IO_WRITE] = "write" };

	for (int i = IO_READ; i <= IO_WRITE; i++) {
		uint64_t n = atomic_load(&dev->lat[i].ops), sum = atomic_load(&dev->lat[i].sum_ns);

		fprintf(f, "%s%ss %" PRIu64 "\n", prefix, op[i], n);
		fprintf(f, "%s%s_latency_us_mean %" PRIu64 "\n", prefix, op[i],
			n ? sum / n / 1000 : 0);
		fprintf(f, "%s%s_latency_us_max %" PRIu64 "\n", prefix, op[i],
			atomic_load(&dev->lat[i].max_ns) / 1000);
	}
}

void engine_print_swap(struct engine *e, FILE *f)
{
	const struct swapdev *dev = swap_device(e->swap);
	struct swap_stats ss;

	swap_get_stats(e->swap, &ss);
	fprintf(f, "path %s\n", dev->name);
	fprintf(f, "size_bytes %" PRIu64 "\n", dev->nslots << PAGE_SHIFT);
	fprintf(f, "slots_total %" PRIu64 "\n", ss.slots_total);
	fprintf(f, "slots_used %" PRIu64 "\n", ss.slots_used);
	fprintf(f, "slots_bad %" PRIu64 "\n", ss.slots_bad);
	fprintf(f, "slots_free %" PRIu64 "\n", ss.slots_total - ss.slots_used -
		MIN(ss.slots_bad, ss.slots_total - ss.slots_used));
	fprintf(f, "device_kind %s\n", swapdev_kind(dev));
	fprintf(f, "device_state %s\n", swapdev_state(dev));
	fprintf(f, "device_errors %" PRIu64 "\n", atomic_load(&dev->errors));
	if (!strcmp(swapdev_kind(dev), "nbd"))
		fprintf(f, "device_connections %u\n", atomic_load(&dev->connections));
	fprintf(f, "device_read_bytes %" PRIu64 "\n", atomic_load(&dev->read_bytes));
	fprintf(f, "device_write_bytes %" PRIu64 "\n", atomic_load(&dev->write_bytes));
	print_latency(f, "device_", dev);
	if (!swapdev_nmembers(dev))
		return;
	fprintf(f, "members %u\n", swapdev_nmembers(dev));
	fprintf(f, "replicas %u\n", swapdev_replicas(dev));
	fprintf(f, "stripe_unit_slots %u\n", SWAPDEV_SET_UNIT_SLOTS);
	for (unsigned i = 0; i < swapdev_nmembers(dev); i++) {
		const struct swapdev *m = swapdev_member(dev, i);
		uint64_t rdone, rtotal;
		char prefix[32];

		swapdev_member_rebuild(dev, i, &rdone, &rtotal);
		fprintf(f, "member%u_name %s\n", i, m->name);
		fprintf(f, "member%u_kind %s\n", i, swapdev_kind(m));
		fprintf(f, "member%u_state %s\n", i, swapdev_member_state(dev, i));
		fprintf(f, "member%u_rebuild_units %" PRIu64 " %" PRIu64 "\n", i, rdone, rtotal);
		fprintf(f, "member%u_errors %" PRIu64 "\n", i, atomic_load(&m->errors));
		if (!strcmp(swapdev_kind(m), "nbd"))
			fprintf(f, "member%u_connections %u\n", i, atomic_load(&m->connections));
		fprintf(f, "member%u_read_bytes %" PRIu64 "\n", i, atomic_load(&m->read_bytes));
		fprintf(f, "member%u_write_bytes %" PRIu64 "\n", i, atomic_load(&m->write_bytes));
		snprintf(prefix, sizeof(prefix), "member%u_", i);
		print_latency(f, prefix, m);
	}
}

/* The swap module takes its own lock, a window at a time. */
void engine_print_swap_map(struct engine *e, FILE *f)
{
	swap_print_map(e->swap, f);
}

/*
 * An empty page of a file (vnode, device) object is not a hole: its data
 * is in the file, not yet brought in or dropped clean. So class FILE_PAGE
 * (past the page states) names it, and only objects that zero-fill
 * (aobj) have holes.
 */
#define FILE_PAGE 15

static const char *page_class(int state)
{
	if (state == FILE_PAGE)
		return "file";
	switch ((enum pg_state)state) {
	case PG_EMPTY: return "untouched";
	case PG_DIRTY: return "resident dirty";
	case PG_CLEAN: return "resident clean";
	case PG_BUSY_OUT: return "resident writeback";
	case PG_SWAPPED: return "swapped";
	case PG_BUSY_IN: return "resident reading";   /* its memory is taken: counted resident */
	case PG_BAD: return "bad";
	case PG_GONE: return "gone";
	}
	return "unknown";
}

/*
 * The states are copied a window at a time under the engine lock (a word
 * read per page: a 32768-page window is tens of microseconds) and
 * printed after it is let go, so a large object or a fragmented map never
 * holds up faults for long. A run that changes between windows shows as
 * it was when its window was read.
 */
#define PAGEMAP_WINDOW 32768

int engine_object_pagemap(struct engine *e, struct uobj *o, FILE *f)
{
	uint8_t *cls = malloc(PAGEMAP_WINDOW);
	size_t run_start = 0, n = o->npages;
	int run_class = -1;

	if (!cls)
		return -ENOMEM;
	for (size_t base = 0; base < n; base += PAGEMAP_WINDOW) {
		size_t end = MIN(base + PAGEMAP_WINDOW, n);

		pthread_mutex_lock(&e->lock);
		for (size_t i = base; i < end; i++) {
			enum pg_state st = pg_state(uobj_get(o, i));

			cls[i - base] = st == PG_EMPTY && !o->ops->zero_fill ? FILE_PAGE : (uint8_t)st;
		}
		pthread_mutex_unlock(&e->lock);
		for (size_t i = base; i < end; i++) {
			int c = cls[i - base];

			if (c != run_class) {
				if (run_class >= 0)
					fprintf(f, "%zu-%zu %s\n", run_start, i - 1,
						page_class(run_class));
				run_class = c;
				run_start = i;
			}
		}
	}
	if (run_class >= 0)
		fprintf(f, "%zu-%zu %s\n", run_start, n - 1, page_class(run_class));
	free(cls);
	return 0;
}

/* Pages that read back as nothing but zeros without having been written. */
static bool page_is_hole(const struct uobj *o, pgword_t w)
{
	return pg_state(w) == PG_GONE || (pg_state(w) == PG_EMPTY && o->ops->zero_fill);
}

/*
 * One page's bytes into buf (PAGE_SIZE, page aligned for O_DIRECT). Lock
 * held on entry, and again on return, but dropped around a read from
 * swap or the backing file: the slot is held by a reference of ours
 * meanwhile, so it can be neither freed nor reused by a pageout (which
 * always writes into fresh slots). Resident pages are read with pread on
 * the memfd, never through a mapping: a read of a hole does not
 * instantiate a page, so the client's next fault still finds what it
 * would have.
 */
static int peek_page(struct engine *e, struct uobj *o, size_t idx, char *buf)
{
	pgword_t w = uobj_get(o, idx);
	uint64_t slot = pg_slot(w), off;
	uint32_t crc = 0;
	ssize_t n;
	int fd, err;

	if (page_is_hole(o, w)) {
		memset(buf, 0, PAGE_SIZE);
		return 0;
	}
	if (pg_state(w) == PG_BAD)
		return -EIO;
	if (pg_resident(w)) {
		n = pread(o->memfd, buf, PAGE_SIZE, uobj_memoff(o, idx));
		if (n < 0)
			return -errno;
		if (n < (ssize_t)PAGE_SIZE)
			memset(buf + n, 0, PAGE_SIZE - (size_t)n);
		return 0;
	}
	/* SWAPPED or BUSY_IN, or a file's EMPTY page: the copy on disk is the page's data */
	if (o->ops->swap_backed) {
		if (!slot) {
			memset(buf, 0, PAGE_SIZE);   /* a clean zero page */
			return 0;
		}
		if (swap_ref(e->swap, slot) < 0)
			return -EIO;
		crc = swap_csum_get(e->swap, slot);
		fd = swap_fd(e->swap);
		off = swap_slot_offset(slot);
	} else {
		fd = o->backing_fd;
		off = (uint64_t)uobj_memoff(o, idx);
	}
	pthread_mutex_unlock(&e->lock);
	if (o->ops->swap_backed && fd < 0) {
		n = device_read_page(e, buf, off);
		err = n < 0 ? (int)-n : 0;
	} else {
		n = pread(fd, buf, PAGE_SIZE, (off_t)off);
		err = errno;
	}
	pthread_mutex_lock(&e->lock);
	if (o->ops->swap_backed) {
		swap_free(e->swap, slot, 1);
		if (n == (ssize_t)PAGE_SIZE && crc32c(0, buf, PAGE_SIZE) != crc)
			return -EIO;
	}
	if (n < 0)
		return -err;
	if (n < (ssize_t)PAGE_SIZE) {
		if (o->ops->swap_backed)
			return -EIO;
		memset(buf + n, 0, PAGE_SIZE - (size_t)n);   /* the file's tail */
	}
	return 0;
}

/*
 * A page at a time, each taken at its own instant (as a read of
 * /proc/PID/mem would): the client keeps running. The caller keeps o
 * alive (the daemon holds its server lock).
 */
ssize_t engine_object_peek(struct engine *e, struct uobj *o, void *buf, size_t len,
			   uint64_t off)
{
	size_t size = o->npages << PAGE_SHIFT, done = 0;
	char *page = NULL;
	int r = 0;

	if (off >= size)
		return 0;
	len = MIN(len, size - off);
	if (posix_memalign((void **)&page, PAGE_SIZE, PAGE_SIZE))
		return -ENOMEM;
	pthread_mutex_lock(&e->lock);
	while (done < len) {
		size_t idx = (off + done) >> PAGE_SHIFT, in = (off + done) & (PAGE_SIZE - 1);
		size_t k = MIN(PAGE_SIZE - in, len - done);

		if (o->dying) {
			r = -ENOENT;
			break;
		}
		r = peek_page(e, o, idx, page);
		if (r < 0)
			break;
		memcpy((char *)buf + done, page + in, k);
		done += k;
	}
	pthread_mutex_unlock(&e->lock);
	free(page);
	return done ? (ssize_t)done : r;
}

/*
 * lseek's SEEK_DATA (data) or SEEK_HOLE: the first offset at or after
 * off in a page that holds data (anything ever written), or in a hole;
 * the end of the object is a hole. -ENXIO past the end, as lseek.
 */
int64_t engine_object_seek(struct engine *e, struct uobj *o, uint64_t off, bool data)
{
	size_t size = o->npages << PAGE_SHIFT;
	int64_t r = data ? -ENXIO : (int64_t)size;

	if (off >= size)
		return -ENXIO;
	pthread_mutex_lock(&e->lock);
	for (size_t i = off >> PAGE_SHIFT; i < o->npages; i++) {
		if (page_is_hole(o, uobj_get(o, i)) != data) {
			r = (int64_t)MAX(off, (uint64_t)i << PAGE_SHIFT);
			break;
		}
	}
	pthread_mutex_unlock(&e->lock);
	return r;
}

/* Fixed at creation: no lock. */
enum engine_obj_type engine_object_type(const struct uobj *o)
{
	return o->type == UOBJ_VNODE ? ENGINE_OBJ_FILE :
	       o->type == UOBJ_DEVICE ? ENGINE_OBJ_DEVICE : ENGINE_OBJ_ANON;
}
