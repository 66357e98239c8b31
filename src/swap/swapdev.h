/*
 * A swap device: where the pager's clusters go, below the slot allocator.
 * Slots, checksums and bad-slot marking stay in struct swap (swap.h), above
 * the device; a device only stores pages at byte offsets and says how many
 * PAGE_SIZE slots it holds (slot 0 reserved for a header on every kind).
 *
 * Kinds:
 *   - "file": today's local swap file (swapfile.h). Its I/O goes through
 *     the I/O engine (ioeng.h) on swapdev_fd(); it has no submit of its own.
 *   - "nbd" (meson feature `nbd`): a remote block device driven through
 *     libnbd's asynchronous calls; it provides ops->submit so ioeng_submit()
 *     hands requests for it over and it completes them through
 *     ioeng_req_complete() like the other engines (one submit path).
 *   - "set": several of the above as stripes with replicas; it splits a
 *     request into sub-requests for its members and sends them through
 *     ioeng_submit() again (swapdev_set.c).
 *
 * A device is created once and closed once; its fields never change while
 * it is open except the atomic counters, so no lock is needed to read them.
 */
#ifndef UVMPAGER_SWAP_SWAPDEV_H
#define UVMPAGER_SWAP_SWAPDEV_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "swap/swapfile.h"

struct swapdev;

struct ioeng;
struct io_req;

struct swapdev_ops {
	const char *kind;               /* "file", "nbd" */
	void (*close)(struct swapdev *dev);
	/*
	 * Devices with their own transport (NULL for a file): submit starts
	 * req (validated and counted in flight by ioeng_submit()) and later
	 * completes it with ioeng_req_complete(e, req) from the device's own
	 * thread, never the caller's; run does req in the calling thread,
	 * setting req->result, without calling done().
	 */
	void (*submit)(struct swapdev *dev, struct ioeng *e, struct io_req *req);
	void (*run)(struct swapdev *dev, struct ioeng *e, struct io_req *req);
};

struct swapdev {
	const struct swapdev_ops *ops;
	const char *name;               /* path or URI, for stat and the log */
	uint64_t nslots;                /* device size / PAGE_SIZE, slot 0 included */
	int fd;                         /* for the I/O engine, or -1 */
	/*
	 * Marked by the failure detector. For good unless may_reconnect: an
	 * NBD device then retries its server in the background and clears
	 * down again when it answers (epoch counts those comebacks). Set
	 * before any I/O by a set with replicas (which rebuilds a member
	 * that comes back empty or stale) and for a lone device (whose slots'
	 * checksums judge what it serves after): not for stripes without
	 * replicas, whose members' lost units have no copy to rebuild from.
	 */
	_Atomic bool down;
	_Atomic bool may_reconnect;
	_Atomic unsigned epoch;
	_Atomic uint64_t errors;        /* requests failed by the device itself */
	_Atomic unsigned connections;   /* open transport connections (NBD; 0 while down, or a file) */
	/* bytes moved by requests for this device (ioeng_req_complete() counts them) */
	_Atomic uint64_t read_bytes, write_bytes;
	/*
	 * Requests for this device that completed, and their submit-to-
	 * complete time (queueing in the engine or the device's transport
	 * included), summed and the largest, in ns; index IO_READ/IO_WRITE.
	 * ioeng_req_complete() counts them, failed requests too.
	 */
	struct swapdev_latency {
		_Atomic uint64_t ops, sum_ns, max_ns;
	} lat[2];
};

/* What a device name means: a path is a file, "nbd[s]://" / "nbd[s]+unix://" an NBD URI. */
bool swapdev_name_is_nbd(const char *name);

/*
 * Opens the local swap file cfg->path as a device (see swapfile_open() for
 * creation, locking and header checks). On error a message naming the path
 * is written to err (if non-NULL) and *out is untouched.
 */
int swapdev_file_open(const struct swapfile_config *cfg, struct swapdev **out,
		      char *err, size_t errlen);

/* The swap file behind a "file" device, or NULL for any other kind. */
const struct swapfile *swapdev_swapfile(const struct swapdev *dev);

/* Closes and frees dev; NULL is ignored. No I/O may be in flight on it. */
void swapdev_close(struct swapdev *dev);

static inline bool swapdev_has_transport(const struct swapdev *dev)
{
	return dev && dev->ops->submit;
}

static inline void swapdev_submit(struct swapdev *dev, struct ioeng *e, struct io_req *req)
{
	dev->ops->submit(dev, e, req);
}

static inline void swapdev_run(struct swapdev *dev, struct ioeng *e, struct io_req *req)
{
	dev->ops->run(dev, e, req);
}

struct swapdev_nbd_config {
	/*
	 * nbd://host[:port]/export, nbd+unix:///export?socket=PATH, or nbds://
	 * and nbds+unix:// (TLS required; tls-psk-file=PATH and
	 * tls-certificates=DIR in the query are honoured).
	 */
	const char *uri;
	unsigned timeout_ms;    /* no progress for this long with commands out: down (default 5000) */
	/*
	 * Connections to open when the server allows multi-conn (requests
	 * then go round-robin); 0 means the default, 4 (also the most).
	 */
	unsigned connections;
};

/*
 * Connects to an NBD server (blocking, at startup) and starts the device's
 * completion thread. -EOPNOTSUPP when built without libnbd. On error a
 * message naming the URI is written to err (if non-NULL).
 */
int swapdev_nbd_open(const struct swapdev_nbd_config *cfg, struct swapdev **out,
		     char *err, size_t errlen);

/*
 * The "set" device: several member devices as stripes, each stripe unit
 * written to `replicas` members (see swapdev_set.c for the layout and the
 * failure rules). It takes the members over: closing the set closes them,
 * and so does a failed open.
 */
#define SWAPDEV_SET_UNIT_SLOTS 64       /* slots per stripe unit */
#define SWAPDEV_SET_MAX 16              /* most members */

int swapdev_set_open(struct swapdev **members, unsigned n, unsigned replicas,
		     struct swapdev **out, char *err, size_t errlen);

/* Members of a set device (0 for any other kind), the i-th of them, its replicas. */
unsigned swapdev_nmembers(const struct swapdev *dev);
struct swapdev *swapdev_member(const struct swapdev *dev, unsigned i);
unsigned swapdev_replicas(const struct swapdev *dev);
/*
 * "up", or for a set "degraded" (a member is down, every stripe unit still
 * has a replica up) or "down" (some unit has none); "down" for a single
 * device that is down.
 */
const char *swapdev_state(const struct swapdev *dev);
/*
 * Member i of a set as the set uses it: "up" (read and written), "down"
 * (its device is down, or came back and waits to be rebuilt),
 * "rebuilding" (answers again, written, not read until its replicas are
 * copied back), "none" for no such member.
 */
const char *swapdev_member_state(const struct swapdev *dev, unsigned i);
/* Units copied so far and to copy by member i's last or current rebuild. */
void swapdev_member_rebuild(const struct swapdev *dev, unsigned i, uint64_t *done,
			    uint64_t *total);

/*
 * For tests: fn(ctx, unit) runs in the rebuild thread between reading a
 * unit from its source and writing it to the member being rebuilt (a
 * write there makes the copy stale). Set before the rebuild starts.
 */
void swapdev_set_rebuild_hook(struct swapdev *set, void (*fn)(void *ctx, uint64_t unit),
			      void *ctx);

static inline const char *swapdev_kind(const struct swapdev *dev)
{
	return dev->ops->kind;
}

#endif
