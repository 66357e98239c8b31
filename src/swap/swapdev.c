#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "build-config.h"
#include "common/util.h"
#include "swap/swapdev.h"

struct swapdev_file {
	struct swapdev base;
	struct swapfile *sf;
};

static const struct swapdev_ops file_ops;

bool swapdev_name_is_nbd(const char *name)
{
	return name && (!strncmp(name, "nbd://", 6) || !strncmp(name, "nbds://", 7) ||
			!strncmp(name, "nbd+unix://", 11) || !strncmp(name, "nbds+unix://", 12));
}

static void file_close(struct swapdev *dev)
{
	struct swapdev_file *f = container_of(dev, struct swapdev_file, base);

	swapfile_close(f->sf);
	free(f);
}

static const struct swapdev_ops file_ops = {
	.kind = "file",
	.close = file_close,
};

int swapdev_file_open(const struct swapfile_config *cfg, struct swapdev **out,
		      char *err, size_t errlen)
{
	struct swapdev_file *f;
	int r;

	f = calloc(1, sizeof(*f));
	if (!f) {
		if (err && errlen)
			snprintf(err, errlen, "%s: out of memory", cfg->path);
		return -ENOMEM;
	}
	r = swapfile_open(cfg, &f->sf, err, errlen);
	if (r < 0) {
		free(f);
		return r;
	}
	f->base.ops = &file_ops;
	f->base.name = f->sf->path;
	f->base.nslots = f->sf->nslots;
	f->base.fd = f->sf->fd;
	*out = &f->base;
	return 0;
}

const struct swapfile *swapdev_swapfile(const struct swapdev *dev)
{
	if (dev->ops != &file_ops)
		return NULL;
	return ((const struct swapdev_file *)dev)->sf;      /* base is first */
}

void swapdev_close(struct swapdev *dev)
{
	if (dev)
		dev->ops->close(dev);
}

#ifndef HAVE_LIBNBD
int swapdev_nbd_open(const struct swapdev_nbd_config *cfg, struct swapdev **out,
		     char *err, size_t errlen)
{
	if (err && errlen)
		snprintf(err, errlen, "%s: built without libnbd (meson -Dnbd=enabled, libnbd-dev)",
			 cfg->uri);
	return -EOPNOTSUPP;
}
#endif
