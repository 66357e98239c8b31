/*
 * aobj: anonymous memory backed by swap slots. A page's slot lives in its
 * page word, so a sparse object of many GiB costs only the page-table
 * chunks it touched.
 */
#include <errno.h>

#include "common/util.h"
#include "engine_impl.h"
#include "pager/pager.h"
#include "swap/csum.h"

static int aobj_init(struct engine *e)
{
	return e->swap ? 0 : -ENODEV;
}

/* The pages of runs not started, [from, n) of [start, start + n), wait in swap again. */
static void aobj_unstart(struct uobj *o, size_t start, size_t from, size_t n)
{
	for (size_t k = from; k < n; k++)
		uobj_set(o, start + k, pg_set_state(uobj_get(o, start + k), PG_SWAPPED));
}

/* Reads runs of contiguous slots, one request per run. */
static int aobj_get(struct uobj *o, size_t start, size_t n)
{
	struct engine *e = o->eng;
	size_t i = 0;

	while (i < n) {
		uint64_t slot = pg_slot(uobj_get(o, start + i));
		struct pager_io *pio;
		size_t j = i + 1;
		int r;

		while (j < n && j - i < PAGER_IO_MAX_PAGES &&
		       pg_slot(uobj_get(o, start + j)) == slot + (j - i))
			j++;
		pio = pager_io_get(e, true, false);
		if (!pio) {
			aobj_unstart(o, start, i, n);
			return -EAGAIN;
		}
		pio->obj = o;
		pio->start = start + i;
		pio->n = j - i;
		pio->slot = slot;
		pio->req.op = IO_READ;
		pio->req.fd = swap_fd(e->swap);
		pio->req.dev = swap_device(e->swap);
		pio->req.offset = swap_slot_offset(slot);
		pager_io_fill_iov(pio, PAGE_SIZE);
		r = pager_io_submit(e, pio);
		if (r < 0) {
			aobj_unstart(o, start, i, n);
			pio->obj->inflight--;
			e->inflight--;
			pager_io_put(e, pio);
			return r;
		}
		i = j;
	}
	return 0;
}

/* Puts the cluster into contiguous slot runs, one vectored write per run. */
static int aobj_put(struct uobj *o, size_t start, size_t n, size_t center,
		    int flags, struct pager_sync *sync)
{
	struct engine *e = o->eng;
	bool pdaemon = flags & PGO_PDAEMON;
	size_t done = 0;
	int r = 0;

	while (done < n) {
		struct pager_io *pio;
		uint64_t slot;
		int got;

		got = swap_alloc(e->swap, MIN(n - done, PAGER_IO_MAX_PAGES), 1, &slot);
		if (got < 0) {
			r = got;
			break;
		}
		pio = pager_io_get(e, !pdaemon, pdaemon);
		if (!pio) {
			swap_free(e->swap, slot, got);
			r = -EAGAIN;
			break;
		}
		for (int i = 0; i < got; i++) {
			size_t idx = start + done + i;
			pgword_t w = uobj_get(o, idx);

			uobj_set(o, idx, pg_set_slot(w, slot + i));
			swap_csum_set(e->swap, slot + i,
				      crc32c(0, uobj_eaddr(o, idx), PAGE_SIZE));
		}
		pio->obj = o;
		pio->start = start + done;
		pio->n = got;
		pio->slot = slot;
		pio->flags = flags;
		pio->sync = sync;
		if (center >= pio->start && center < pio->start + got)
			pio->center = center;
		pio->req.op = IO_WRITE;
		pio->req.fd = swap_fd(e->swap);
		pio->req.dev = swap_device(e->swap);
		pio->req.offset = swap_slot_offset(slot);
		pager_io_fill_iov(pio, PAGE_SIZE);
		r = pager_io_submit(e, pio);
		if (r < 0) {
			if (sync)
				sync->pending--;
			o->inflight--;
			e->inflight--;
			pager_io_put(e, pio);
			for (int i = 0; i < got; i++) {
				pgword_t w = uobj_get(o, pio->start + i);

				uobj_set(o, pio->start + i, pg_set_slot(w, 0));
			}
			swap_free(e->swap, slot, got);
			break;
		}
		done += got;
	}
	if (done < n) {
		/* swap full or no descriptor: the rest stays resident and dirty */
		pager_dropcluster(o, SIZE_MAX, start + done, n - done, 0);
		if (r == -ENOSPC) {
			e->swap_full_events++;
			e->last_write_error = r;
		}
	}
	return done ? 0 : r;
}

static void aobj_releasepg(struct uobj *o, size_t idx)
{
	pgword_t w = uobj_get(o, idx);

	if (pg_slot(w)) {
		swap_free(o->eng->swap, pg_slot(w), 1);
		uobj_set(o, idx, pg_set_slot(w, 0));
	}
}

const struct pagerops aobj_pagerops = {
	.name = "aobj",
	.init = aobj_init,
	.get = aobj_get,
	.put = aobj_put,
	.cluster = pager_cluster_window,
	.mk_pcluster = pager_mk_pcluster,
	.releasepg = aobj_releasepg,
	.zero_fill = true,
	.swap_backed = true,
};
