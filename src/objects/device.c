/*
 * device: read-only pages from a device or file. Nothing is ever written
 * back: the client maps it read-only, and eviction just drops pages.
 */
#include "common/util.h"
#include "engine_impl.h"
#include "objects/vnode.h"
#include "pager/pager.h"

static int device_init(struct engine *e)
{
	return 0;
}

const struct pagerops device_pagerops = {
	.name = "device",
	.init = device_init,
	.get = vnode_get,
	.put = NULL,
	.cluster = pager_cluster_window,
	.mk_pcluster = NULL,
	.read_only = true,
};
