/*
 * The swap area: a swap device (swapdev.h, today the local swap file), its
 * slot allocator and a checksum per slot. Internally locked: every function is safe from any thread.
 */
#ifndef UVMPAGER_SWAP_SWAP_H
#define UVMPAGER_SWAP_SWAP_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/util.h"
#include "swap/swapdev.h"
#include "swap/swapfile.h"

struct swap;

/* One device, cfg->path: a file (created per cfg) or an NBD URI. */
int swap_create(const struct swapfile_config *cfg, struct swap **out,
		char *err, size_t errlen);
/*
 * n devices (files with cfg's size and options, its path ignored, or NBD
 * URIs) as one set device with `replicas` copies of each stripe unit (see
 * swapdev_set_open()); n == 1 with one replica is swap_create() of it.
 */
int swap_create_devices(const struct swapfile_config *cfg, const char *const *names,
			unsigned n, unsigned replicas, struct swap **out,
			char *err, size_t errlen);
void swap_destroy(struct swap *sw);

/* The device's descriptor for the I/O engine (-1 for a device without one). */
int swap_fd(const struct swap *sw);

static inline uint64_t swap_slot_offset(uint64_t slot)
{
	return slot << PAGE_SHIFT;
}

/* See slots_alloc(); also -ENOMEM if the run's checksum chunk cannot be had. */
int swap_alloc(struct swap *sw, unsigned want, unsigned min, uint64_t *start);
void swap_free(struct swap *sw, uint64_t start, unsigned n);
/* 0, -EINVAL (slot not allocated) or -ENOMEM; see slots_ref(). */
int swap_ref(struct swap *sw, uint64_t slot);
unsigned swap_refcount(struct swap *sw, uint64_t slot);
void swap_mark_bad(struct swap *sw, uint64_t slot);
bool swap_is_bad(struct swap *sw, uint64_t slot);

/*
 * Checksum (crc32c) of the page stored in an allocated slot. Setting on a
 * slot that is not allocated is ignored; getting one returns 0.
 */
void swap_csum_set(struct swap *sw, uint64_t slot, uint32_t crc);
uint32_t swap_csum_get(struct swap *sw, uint64_t slot);

struct swap_stats {
	uint64_t slots_total;
	uint64_t slots_used;
	uint64_t slots_bad;
	size_t meta_bytes;      /* allocator + checksums */
};
void swap_get_stats(struct swap *sw, struct swap_stats *st);

/* The swap file behind the device, or NULL when the device is not a file. */
const struct swapfile *swap_file(const struct swap *sw);
/* The device under the slots; it lives as long as sw. */
struct swapdev *swap_device(const struct swap *sw);

/*
 * The slot map as run-length lines, "first-last state" with state free,
 * used or bad (slot 0, the header, is left out). Takes the swap lock.
 */
void swap_print_map(struct swap *sw, FILE *f);

#endif
