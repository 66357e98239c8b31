#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "swap/slots.h"
#include "swap/swap.h"

/*
 * Checksums live in chunks of CSUM_CHUNK slots, allocated when a run inside
 * the chunk is allocated and freed when the chunk's last slot is freed, so
 * a big, mostly idle swap file costs little memory.
 */
#define CSUM_CHUNK_SHIFT 16
#define CSUM_CHUNK (1U << CSUM_CHUNK_SHIFT)

struct csum_chunk {
	uint32_t nused;         /* allocated slots in the chunk */
	uint32_t crc[CSUM_CHUNK];
};

struct swap {
	pthread_mutex_t lock;
	struct swapdev *dev;            /* the one device, for now */
	struct slots *slots;
	struct csum_chunk **chunks;
	size_t nchunks;
	size_t chunks_live;
};

/* One device by its name: an NBD URI or a file path (with cfg's options). */
static int open_device(const struct swapfile_config *cfg, const char *name,
		       struct swapdev **out, char *err, size_t errlen)
{
	struct swapfile_config fcfg = *cfg;

	if (swapdev_name_is_nbd(name)) {
		struct swapdev_nbd_config ncfg = { .uri = name };

		return swapdev_nbd_open(&ncfg, out, err, errlen);
	}
	fcfg.path = name;
	return swapdev_file_open(&fcfg, out, err, errlen);
}

/* Slots and checksums over dev, which sw takes over (closed on error). */
static int swap_init(struct swap *sw, struct swapdev *dev)
{
	int r;

	sw->dev = dev;
	r = slots_create(sw->dev->nslots, &sw->slots);
	if (r < 0)
		goto out_dev;
	sw->nchunks = DIV_ROUND_UP(sw->dev->nslots, CSUM_CHUNK);
	sw->chunks = calloc(sw->nchunks, sizeof(*sw->chunks));
	if (!sw->chunks) {
		r = -ENOMEM;
		goto out_slots;
	}
	pthread_mutex_init(&sw->lock, NULL);
	return 0;

out_slots:
	slots_destroy(sw->slots);
out_dev:
	swapdev_close(sw->dev);
	return r;
}

int swap_create(const struct swapfile_config *cfg, struct swap **out,
		char *err, size_t errlen)
{
	const char *name = cfg->path;

	return swap_create_devices(cfg, &name, 1, 1, out, err, errlen);
}

int swap_create_devices(const struct swapfile_config *cfg, const char *const *names,
			unsigned n, unsigned replicas, struct swap **out,
			char *err, size_t errlen)
{
	struct swapdev *members[SWAPDEV_SET_MAX], *dev;
	struct swap *sw;
	unsigned opened = 0;
	int r;

	if (n < 1 || n > SWAPDEV_SET_MAX || replicas < 1 || replicas > n) {
		if (err && errlen)
			snprintf(err, errlen, "swap: %u replicas over %u devices (1 to %u devices, "
				 "replicas from 1 to their number)", replicas, n, SWAPDEV_SET_MAX);
		return -EINVAL;
	}
	sw = calloc(1, sizeof(*sw));
	if (!sw)
		return -ENOMEM;
	for (; opened < n; opened++) {
		r = open_device(cfg, names[opened], &members[opened], err, errlen);
		if (r < 0)
			goto out_members;
	}
	if (n == 1 && replicas == 1) {
		/*
		 * One device: no set around it. It may reconnect: what its
		 * server has after a comeback (nothing, or old contents) is
		 * judged by the slots' checksums, so a page it lost gives
		 * SIGBUS, never zeros or old data; new writes go there again.
		 */
		dev = members[0];
		atomic_store(&dev->may_reconnect, true);
	} else {
		/* takes the members over, even when it fails */
		opened = 0;
		r = swapdev_set_open(members, n, replicas, &dev, err, errlen);
		if (r < 0)
			goto out_free;
	}
	r = swap_init(sw, dev);
	if (r < 0)
		goto out_free;
	*out = sw;
	return 0;

out_members:
	while (opened)
		swapdev_close(members[--opened]);
out_free:
	free(sw);
	if (r == -ENOMEM && err && errlen && !err[0])
		snprintf(err, errlen, "%s: out of memory", names[0]);
	return r;
}

void swap_destroy(struct swap *sw)
{
	if (!sw)
		return;
	for (size_t i = 0; i < sw->nchunks; i++)
		free(sw->chunks[i]);
	free(sw->chunks);
	slots_destroy(sw->slots);
	swapdev_close(sw->dev);
	pthread_mutex_destroy(&sw->lock);
	free(sw);
}

int swap_fd(const struct swap *sw)
{
	return sw->dev->fd;
}

const struct swapfile *swap_file(const struct swap *sw)
{
	return swapdev_swapfile(sw->dev);
}

/* Adds n to (or removes from) the per-chunk counts over [start, start + n). */
static void chunks_account(struct swap *sw, uint64_t start, unsigned n, bool add)
{
	uint64_t end = start + n;

	while (start < end) {
		size_t c = start >> CSUM_CHUNK_SHIFT;
		uint64_t stop = MIN(end, (uint64_t)(c + 1) << CSUM_CHUNK_SHIFT);
		uint32_t k = (uint32_t)(stop - start);

		if (add) {
			sw->chunks[c]->nused += k;
		} else if (!(sw->chunks[c]->nused -= k)) {
			free(sw->chunks[c]);
			sw->chunks[c] = NULL;
			sw->chunks_live--;
		}
		start = stop;
	}
}

/* Frees the chunks in [first, last] counting no slot: those just made. */
static void chunks_drop_empty(struct swap *sw, size_t first, size_t last)
{
	for (size_t c = first; c <= last; c++) {
		if (sw->chunks[c] && !sw->chunks[c]->nused) {
			free(sw->chunks[c]);
			sw->chunks[c] = NULL;
			sw->chunks_live--;
		}
	}
}

int swap_alloc(struct swap *sw, unsigned want, unsigned min, uint64_t *start)
{
	size_t first, last;
	uint64_t at;
	int n;

	pthread_mutex_lock(&sw->lock);
	n = slots_alloc(sw->slots, want, min, &at);
	if (n < 0)
		goto out;
	first = at >> CSUM_CHUNK_SHIFT;
	last = (at + (uint64_t)n - 1) >> CSUM_CHUNK_SHIFT;
	for (size_t c = first; c <= last; c++) {
		if (sw->chunks[c])
			continue;
		sw->chunks[c] = calloc(1, sizeof(struct csum_chunk));
		if (!sw->chunks[c]) {
			chunks_drop_empty(sw, first, last);
			slots_free(sw->slots, at, (unsigned)n);
			n = -ENOMEM;
			goto out;
		}
		sw->chunks_live++;
	}
	chunks_account(sw, at, (unsigned)n, true);
	*start = at;
out:
	pthread_mutex_unlock(&sw->lock);
	return n;
}

void swap_free(struct swap *sw, uint64_t start, unsigned n)
{
	pthread_mutex_lock(&sw->lock);
	for (uint64_t s = start; s < start + n; s++) {
		/* Only a slot losing its last reference leaves its chunk. */
		bool last = slots_refcount(sw->slots, s) == 1;

		slots_free(sw->slots, s, 1);
		if (last)
			chunks_account(sw, s, 1, false);
	}
	pthread_mutex_unlock(&sw->lock);
}

int swap_ref(struct swap *sw, uint64_t slot)
{
	int r;

	pthread_mutex_lock(&sw->lock);
	r = slots_ref(sw->slots, slot);
	pthread_mutex_unlock(&sw->lock);
	return r;
}

unsigned swap_refcount(struct swap *sw, uint64_t slot)
{
	unsigned r;

	pthread_mutex_lock(&sw->lock);
	r = slots_refcount(sw->slots, slot);
	pthread_mutex_unlock(&sw->lock);
	return r;
}

void swap_mark_bad(struct swap *sw, uint64_t slot)
{
	pthread_mutex_lock(&sw->lock);
	slots_mark_bad(sw->slots, slot);
	pthread_mutex_unlock(&sw->lock);
}

bool swap_is_bad(struct swap *sw, uint64_t slot)
{
	bool r;

	pthread_mutex_lock(&sw->lock);
	r = slots_is_bad(sw->slots, slot);
	pthread_mutex_unlock(&sw->lock);
	return r;
}

void swap_csum_set(struct swap *sw, uint64_t slot, uint32_t crc)
{
	struct csum_chunk *c;

	pthread_mutex_lock(&sw->lock);
	if (slots_refcount(sw->slots, slot)) {
		c = sw->chunks[slot >> CSUM_CHUNK_SHIFT];
		c->crc[slot & (CSUM_CHUNK - 1)] = crc;
	}
	pthread_mutex_unlock(&sw->lock);
}

uint32_t swap_csum_get(struct swap *sw, uint64_t slot)
{
	uint32_t crc = 0;

	pthread_mutex_lock(&sw->lock);
	if (slots_refcount(sw->slots, slot))
		crc = sw->chunks[slot >> CSUM_CHUNK_SHIFT]->crc[slot & (CSUM_CHUNK - 1)];
	pthread_mutex_unlock(&sw->lock);
	return crc;
}

void swap_get_stats(struct swap *sw, struct swap_stats *st)
{
	pthread_mutex_lock(&sw->lock);
	st->slots_total = slots_total(sw->slots);
	st->slots_used = slots_used(sw->slots);
	st->slots_bad = slots_bad(sw->slots);
	st->meta_bytes = sizeof(*sw) + slots_memory(sw->slots) +
		sw->nchunks * sizeof(*sw->chunks) +
		sw->chunks_live * sizeof(struct csum_chunk);
	pthread_mutex_unlock(&sw->lock);
}

static const char *slot_state_name(unsigned st)
{
	return st & SLOT_BAD ? "bad" : st & SLOT_USED ? "used" : "free";
}

/*
 * Takes the swap lock a window at a time and prints after letting it go,
 * so a large or fragmented swap file does not hold up allocations
 * (pageout) for the whole walk; a run that changes between windows shows
 * as it was when its window was read.
 */
#define MAP_WINDOW 65536

void swap_print_map(struct swap *sw, FILE *f)
{
	uint64_t n = sw->dev->nslots, run_start = 1;
	uint8_t *st = malloc(MAP_WINDOW);
	int run_state = -1;

	if (!st)
		return;
	for (uint64_t base = 1; base < n; base += MAP_WINDOW) {
		uint64_t end = base + MAP_WINDOW < n ? base + MAP_WINDOW : n;

		pthread_mutex_lock(&sw->lock);
		for (uint64_t s = base; s < end; s++) {
			unsigned v = slots_state(sw->slots, s);

			st[s - base] = (uint8_t)(v & SLOT_BAD ? SLOT_BAD : v);
		}
		pthread_mutex_unlock(&sw->lock);
		for (uint64_t s = base; s < end; s++) {
			if (st[s - base] == run_state)
				continue;
			if (run_state >= 0)
				fprintf(f, "%" PRIu64 "-%" PRIu64 " %s\n", run_start, s - 1,
					slot_state_name((unsigned)run_state));
			run_start = s;
			run_state = st[s - base];
		}
	}
	if (run_state >= 0)
		fprintf(f, "%" PRIu64 "-%" PRIu64 " %s\n", run_start, n - 1,
			slot_state_name((unsigned)run_state));
	free(st);
}

struct swapdev *swap_device(const struct swap *sw)
{
	return sw->dev;
}
