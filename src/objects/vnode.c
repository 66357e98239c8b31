/*
 * vnode: a file seen through a bounded resident set. Pages come in from
 * the file; dirty pages are clustered and written back to the same
 * offsets, so the file's layout is the cluster's layout.
 */
#include <errno.h>

#include "common/util.h"
#include "engine_impl.h"
#include "objects/vnode.h"
#include "pager/pager.h"

static int vnode_init(struct engine *e)
{
	return 0;
}

/* Bytes of page idx that exist in the file. */
static size_t file_bytes(const struct uobj *o, size_t idx)
{
	uint64_t off = (uint64_t)uobj_memoff(o, idx);

	if (off >= o->backing_size)
		return 0;
	return MIN(PAGE_SIZE, o->backing_size - off);
}

static struct pager_io *file_io(struct uobj *o, size_t start, size_t n,
				enum io_op op, bool may_wait, bool pdaemon)
{
	struct pager_io *pio = pager_io_get(o->eng, may_wait, pdaemon);

	if (!pio)
		return NULL;
	pio->obj = o;
	pio->start = start;
	pio->n = n;
	pio->req.op = op;
	pio->req.fd = o->backing_fd;
	pio->req.offset = (uint64_t)uobj_memoff(o, start);
	pager_io_fill_iov(pio, file_bytes(o, start + n - 1));
	return pio;
}

int vnode_get(struct uobj *o, size_t start, size_t n)
{
	struct pager_io *pio;
	int r;

	/* every page has bytes in the file: objects never reach past its end */
	pio = file_io(o, start, n, IO_READ, true, false);
	r = pio ? pager_io_submit(o->eng, pio) : -EAGAIN;
	if (r < 0) {
		if (pio) {
			o->inflight--;
			o->eng->inflight--;
			pager_io_put(o->eng, pio);
		}
		/* not started: the pages wait in the file again */
		for (size_t i = start; i < start + n; i++)
			uobj_set(o, i, pg_set_state(uobj_get(o, i), PG_EMPTY));
	}
	return r;
}

static int vnode_put(struct uobj *o, size_t start, size_t n, size_t center,
		     int flags, struct pager_sync *sync)
{
	bool pdaemon = flags & PGO_PDAEMON;
	struct pager_io *pio = file_io(o, start, n, IO_WRITE, !pdaemon, pdaemon);
	int r;

	if (!pio) {
		pager_dropcluster(o, SIZE_MAX, start, n, 0);
		return -EAGAIN;
	}
	pio->flags = flags;
	pio->sync = sync;
	if (center >= start && center < start + n)
		pio->center = center;
	r = pager_io_submit(o->eng, pio);
	if (r < 0) {
		if (sync)
			sync->pending--;
		o->inflight--;
		o->eng->inflight--;
		pager_io_put(o->eng, pio);
		pager_dropcluster(o, SIZE_MAX, start, n, 0);
	}
	return r;
}

const struct pagerops vnode_pagerops = {
	.name = "vnode",
	.init = vnode_init,
	.get = vnode_get,
	.put = vnode_put,
	.cluster = pager_cluster_window,
	.mk_pcluster = pager_mk_pcluster,
};
