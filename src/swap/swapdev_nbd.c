/*
 * The NBD swap device: libnbd handles driven asynchronously by one thread
 * of its own ("uvmp-nbd"), which polls their sockets, lets libnbd run the
 * command callbacks, and then completes finished requests through
 * ioeng_req_complete(), the same completion the I/O engines use.
 *
 * Connections: one, or up to NBD_MAX_CONNECTIONS to the same URI when the
 * server advertises multi-conn (its cache is shared by all connections, so
 * a write completed on one is what a read on another sees; swap issues no
 * flush). Requests go round-robin, all of a request's commands on one
 * connection. The device is one: any connection lost (or one with
 * commands out and no progress) is the device down, and a reconnect
 * reopens them all.
 *
 * TLS: nbds:// and nbds+unix:// URIs; the handles may read the files the
 * URI names (tls-psk-file, tls-certificates).
 *
 * A request of k iovecs is k NBD commands on consecutive offsets (no bounce
 * buffer: the pages are read and written in place); it completes when the
 * last one does, with the first error.
 *
 * Failure: a dead connection (the poll or libnbd says so) or no progress
 * for timeout_ms on a connection while it has commands out marks the
 * device down; every
 * request out and every later one then fails with -EIO, in the device
 * thread. Late libnbd callbacks after that are ignored: the handle is never
 * driven again, and the callbacks check `down` under the lock.
 *
 * Reconnect (only when base.may_reconnect, which a set with replicas sets):
 * while down, the device thread tries the same URI again every
 * RECONNECT_EVERY_MS, with a connect that gives up after
 * RECONNECT_TIMEOUT_MS, never blocking the I/O paths (they see `down` and
 * fail at once). The old handle is closed first, while `down` is still
 * set, once no thread is inside a libnbd call on it (h_users); nbd_close()
 * drops the commands it still has without calling their callbacks
 * (libnbd: "the final status ... is lost"), and any it calls see `down`. When the server answers with an export
 * at least as large, the new handle is installed, epoch is bumped and down
 * cleared: the device is up again, but its contents are whatever that
 * server has (nbdkit memory restarted is empty): the set rebuilds it before
 * it reads from it.
 */
#include <errno.h>
#include <libnbd.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"
#include "swap/ioeng_impl.h"
#include "swap/swapdev.h"

#define NBD_MAX_CONNECTIONS 4

struct swapdev_nbd {
	struct swapdev base;
	/*
	 * h[0..nconn): one handle per connection to the same export; more
	 * than one only when the server advertises multi-conn. Replaced only
	 * by the device thread (reconnect), read by start() under lock.
	 */
	struct nbd_handle *h[NBD_MAX_CONNECTIONS];
	unsigned nconn;
	unsigned max_conn;              /* connections to open when multi-conn is allowed */
	_Atomic unsigned rr;            /* round-robin: the next request's connection */
	char *uri;
	unsigned timeout_ms;
	int wake_efd;
	pthread_t thread;
	struct ioeng *eng;              /* set by the first submit; one engine per daemon */

	pthread_mutex_t lock;           /* everything below */
	pthread_cond_t sync_done;
	struct io_req *out;             /* requests with commands at the server */
	struct io_req *done;            /* finished, to complete in the device thread */
	/*
	 * Per connection, so that one that stops answering while the others
	 * go on is caught too: commands out, and its last completion or
	 * first command out.
	 */
	unsigned cmds_out[NBD_MAX_CONNECTIONS];
	struct timespec progress[NBD_MAX_CONNECTIONS];
	unsigned h_users;               /* threads inside a libnbd call on h */
	pthread_cond_t h_idle;          /* h_users dropped to 0 */
	bool stopping;
};

#define RECONNECT_EVERY_MS 1000
#define RECONNECT_TIMEOUT_MS 2000

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void wake(struct swapdev_nbd *d)
{
	uint64_t one = 1;

	if (write(d->wake_efd, &one, sizeof(one)) < 0) {
		/* The counter is saturated: the thread is awake already. */
	}
}

static void list_remove(struct io_req **head, struct io_req *req)
{
	for (struct io_req **p = head; *p; p = &(*p)->next)
		if (*p == req) {
			*p = req->next;
			return;
		}
}

/* Lock held: req has no command left; hand it to its completer. */
static void req_finished(struct swapdev_nbd *d, struct io_req *req)
{
	list_remove(&d->out, req);
	if (req->result == 0)
		req->result = (ssize_t)req->total;
	if (req->dev_sync) {
		req->dev_sync = false;
		pthread_cond_broadcast(&d->sync_done);
		return;
	}
	req->next = d->done;
	d->done = req;
}

static int cmd_done(void *user_data, int *error)
{
	struct io_req *req = user_data;
	struct swapdev_nbd *d = (struct swapdev_nbd *)req->dev;

	pthread_mutex_lock(&d->lock);
	if (atomic_load(&d->base.down)) {
		/* Already failed and completed: req may be someone else's now. */
		pthread_mutex_unlock(&d->lock);
		return 1;
	}
	d->cmds_out[req->dev_conn]--;
	clock_gettime(CLOCK_MONOTONIC, &d->progress[req->dev_conn]);
	if (*error && req->result == 0)
		req->result = -(*error > 0 ? *error : EIO);
	if (--req->dev_pending == 0)
		req_finished(d, req);
	pthread_mutex_unlock(&d->lock);
	return 1;
}

/* While start() is issuing a request's commands, its count carries this. */
#define STARTING (1u << 31)

/*
 * Lock held: the device goes down; everything out fails with -EIO. A
 * request still being started is left to start() to finish, so it is not
 * completed (and reused) under start()'s feet.
 */
static void mark_down(struct swapdev_nbd *d, const char *why)
{
	struct io_req *req;

	if (atomic_load(&d->base.down))
		return;
	fprintf(stderr, "uvmpagerd: swap device %s down: %s\n", d->uri, why);
	atomic_store(&d->base.down, true);
	while ((req = d->out)) {
		req->result = -EIO;
		if (req->dev_pending & STARTING) {
			req->dev_pending = STARTING;
			list_remove(&d->out, req);
		} else {
			req->dev_pending = 0;
			req_finished(d, req);
		}
	}
	memset(d->cmds_out, 0, sizeof(d->cmds_out));
}

/*
 * Starts req's commands. Not under d->lock around libnbd calls: libnbd's
 * handle lock may be held by the device thread running cmd_done(), which
 * takes d->lock. STARTING keeps req from finishing before every command
 * is out.
 */
static void start(struct swapdev_nbd *d, struct io_req *req)
{
	uint64_t off = req->offset;
	unsigned rr = atomic_fetch_add(&d->rr, 1);

	pthread_mutex_lock(&d->lock);
	req->result = 0;
	req->dev_pending = STARTING;
	req->next = d->out;
	d->out = req;
	pthread_mutex_unlock(&d->lock);

	for (int i = 0; i < req->iovcnt; i++) {
		nbd_completion_callback cb = { .callback = cmd_done, .user_data = req };
		struct iovec *v = &req->iov[i];
		bool down;
		int64_t c;

		if (!v->iov_len)
			continue;
		struct nbd_handle *h = NULL;

		pthread_mutex_lock(&d->lock);
		down = atomic_load(&d->base.down);
		if (!down) {
			/* A request's commands all go to one connection. */
			unsigned c = rr % d->nconn;

			req->dev_conn = (unsigned char)c;
			req->dev_pending++;
			if (d->cmds_out[c]++ == 0)
				clock_gettime(CLOCK_MONOTONIC, &d->progress[c]);
			d->h_users++;
			h = d->h[c];
		} else {
			req->result = -EIO;
		}
		pthread_mutex_unlock(&d->lock);
		if (down)
			break;
		c = req->op == IO_READ ? nbd_aio_pread(h, v->iov_base, v->iov_len, off, cb, 0)
				       : nbd_aio_pwrite(h, v->iov_base, v->iov_len, off, cb, 0);
		pthread_mutex_lock(&d->lock);
		if (--d->h_users == 0)
			pthread_cond_broadcast(&d->h_idle);
		if (c < 0) {
			/* Not started: its callback will never run. */
			if (!atomic_load(&d->base.down)) {
				req->dev_pending--;
				d->cmds_out[req->dev_conn]--;
			}
			req->result = -EIO;
			pthread_mutex_unlock(&d->lock);
			break;
		}
		pthread_mutex_unlock(&d->lock);
		off += v->iov_len;
	}

	pthread_mutex_lock(&d->lock);
	req->dev_pending &= ~STARTING;
	if (atomic_load(&d->base.down)) {
		req->result = -EIO;
		req->dev_pending = 0;
	}
	if (req->dev_pending == 0)
		req_finished(d, req);
	pthread_mutex_unlock(&d->lock);
	wake(d);
}

/*
 * The engine's test injection hook applies here as in the engines (and in
 * ioeng_run() for the synchronous path): a failed request is not sent and
 * completes with the hook's error in the device thread, never inline.
 */
static void nbd_submit(struct swapdev *dev, struct ioeng *e, struct io_req *req)
{
	struct swapdev_nbd *d = (struct swapdev_nbd *)dev;
	int r;

	d->eng = e;
	r = ioeng_req_inject(e, req);
	if (r) {
		pthread_mutex_lock(&d->lock);
		req->result = r;
		req->dev_pending = 0;
		req_finished(d, req);
		pthread_mutex_unlock(&d->lock);
		wake(d);
		return;
	}
	start(d, req);
}

static void nbd_run(struct swapdev *dev, struct ioeng *e, struct io_req *req)
{
	struct swapdev_nbd *d = (struct swapdev_nbd *)dev;

	(void)e;
	req->dev_sync = true;
	start(d, req);
	pthread_mutex_lock(&d->lock);
	while (req->dev_sync)
		pthread_cond_wait(&d->sync_done, &d->lock);
	pthread_mutex_unlock(&d->lock);
}

/* A handle that may read tls-psk-file / tls-certificates named in the URI. */
static struct nbd_handle *new_handle(void)
{
	struct nbd_handle *h = nbd_create();

	if (h && nbd_set_uri_allow_local_file(h, true) < 0) {
		nbd_close(h);
		return NULL;
	}
	return h;
}

/*
 * Device thread: one connection to d->uri, polled so that it gives up at
 * deadline (ms, now_ms() clock) or at close. NULL on failure.
 */
static struct nbd_handle *connect_polled(struct swapdev_nbd *d, uint64_t deadline)
{
	struct nbd_handle *h = new_handle();

	if (!h)
		return NULL;
	if (nbd_aio_connect_uri(h, d->uri) < 0)
		goto fail;
	while (!nbd_aio_is_ready(h)) {
		struct pollfd pfd = { .fd = nbd_aio_get_fd(h) };
		unsigned dir = nbd_aio_get_direction(h);
		bool stopping;
		int r = 0;

		pthread_mutex_lock(&d->lock);
		stopping = d->stopping;
		pthread_mutex_unlock(&d->lock);
		if (stopping || now_ms() > deadline || pfd.fd < 0 ||
		    nbd_aio_is_dead(h) || nbd_aio_is_closed(h))
			goto fail;
		if (dir & LIBNBD_AIO_DIRECTION_READ)
			pfd.events |= POLLIN;
		if (dir & LIBNBD_AIO_DIRECTION_WRITE)
			pfd.events |= POLLOUT;
		if (poll(&pfd, 1, 100) < 0 && errno != EINTR)
			goto fail;
		if (pfd.revents & (POLLIN | POLLHUP | POLLERR))
			r = nbd_aio_notify_read(h);
		else if (pfd.revents & POLLOUT)
			r = nbd_aio_notify_write(h);
		if (r < 0)
			goto fail;
	}
	return h;
fail:
	nbd_close(h);
	return NULL;
}

/*
 * Device thread, device down: closes the old handles (no thread is in a
 * libnbd call on them any more, and their late callbacks see `down`), then
 * tries the URI once, giving up after RECONNECT_TIMEOUT_MS or at close. The
 * device is one: it comes back only with as many connections as it had at
 * open (the server must still allow multi-conn for more than one).
 */
static void try_reconnect(struct swapdev_nbd *d)
{
	struct nbd_handle *old[NBD_MAX_CONNECTIONS], *h[NBD_MAX_CONNECTIONS] = { 0 };
	uint64_t deadline = now_ms() + RECONNECT_TIMEOUT_MS;
	unsigned nold, n = 0;
	int64_t size;

	pthread_mutex_lock(&d->lock);
	while (d->h_users)
		pthread_cond_wait(&d->h_idle, &d->lock);
	nold = d->nconn;
	memcpy(old, d->h, sizeof(old));
	memset(d->h, 0, sizeof(d->h));
	atomic_store(&d->base.connections, 0);
	pthread_mutex_unlock(&d->lock);
	for (unsigned i = 0; i < nold; i++)
		if (old[i])
			nbd_close(old[i]);

	h[0] = connect_polled(d, deadline);
	if (!h[0])
		goto fail;
	n = 1;
	size = nbd_get_size(h[0]);
	if (size < 0 || (uint64_t)size >> PAGE_SHIFT < d->base.nslots) {
		fprintf(stderr, "uvmpagerd: swap device %s answers again but its export is "
			"smaller (%lld bytes) than before; left down\n", d->uri, (long long)size);
		goto fail;
	}
	if (d->max_conn > 1 && nbd_can_multi_conn(h[0]) != 1) {
		fprintf(stderr, "uvmpagerd: swap device %s answers again but no longer allows "
			"multi-conn; left down\n", d->uri);
		goto fail;
	}
	for (; n < d->max_conn; n++)
		if (!(h[n] = connect_polled(d, deadline)))
			goto fail;
	pthread_mutex_lock(&d->lock);
	memcpy(d->h, h, sizeof(h));
	d->nconn = n;
	memset(d->cmds_out, 0, sizeof(d->cmds_out));
	atomic_store(&d->base.connections, n);
	atomic_fetch_add(&d->base.epoch, 1);
	atomic_store(&d->base.down, false);
	pthread_mutex_unlock(&d->lock);
	fprintf(stderr, "uvmpagerd: swap device %s reconnected (what it held before may be "
		"lost: a set rebuilds it from a replica; alone, its pages are judged by their "
		"checksums)\n", d->uri);
	return;
fail:
	for (unsigned i = 0; i < n; i++)
		nbd_close(h[i]);
}

static void *device_thread(void *arg)
{
	uint64_t next_try = 0;
	struct swapdev_nbd *d = arg;

	for (;;) {
		struct pollfd pfd[1 + NBD_MAX_CONNECTIONS] = {
			{ .fd = d->wake_efd, .events = POLLIN },
		};
		unsigned n = 0;
		struct io_req *done;
		bool stop;

		if (atomic_load(&d->base.down) && atomic_load(&d->base.may_reconnect) &&
		    now_ms() >= next_try) {
			bool stopping;

			pthread_mutex_lock(&d->lock);
			stopping = d->stopping;
			pthread_mutex_unlock(&d->lock);
			if (!stopping)
				try_reconnect(d);
			next_try = now_ms() + RECONNECT_EVERY_MS;
		}
		/* Only this thread replaces the handles: no lock needed to read them. */
		if (!atomic_load(&d->base.down))
			n = d->nconn;
		for (unsigned i = 0; i < n; i++) {
			unsigned dir = nbd_aio_get_direction(d->h[i]);

			pfd[1 + i].fd = nbd_aio_get_fd(d->h[i]);
			pfd[1 + i].events = 0;
			if (dir & LIBNBD_AIO_DIRECTION_READ)
				pfd[1 + i].events |= POLLIN;
			if (dir & LIBNBD_AIO_DIRECTION_WRITE)
				pfd[1 + i].events |= POLLOUT;
		}
		if (poll(pfd, 1 + n, 100) < 0 && errno != EINTR)
			break;
		if (pfd[0].revents & POLLIN) {
			uint64_t v;

			if (read(d->wake_efd, &v, sizeof(v)) < 0) {
				/* nothing to drain */
			}
		}
		/* Any connection lost: the device (all of them) is down. */
		for (unsigned i = 0; i < n && !atomic_load(&d->base.down); i++) {
			struct nbd_handle *h = d->h[i];
			int r = 0;

			if (pfd[1 + i].fd < 0)
				continue;
			if (pfd[1 + i].revents & (POLLIN | POLLHUP | POLLERR))
				r = nbd_aio_notify_read(h);
			else if (pfd[1 + i].revents & POLLOUT)
				r = nbd_aio_notify_write(h);
			if (r < 0 || nbd_aio_is_dead(h) || nbd_aio_is_closed(h)) {
				pthread_mutex_lock(&d->lock);
				mark_down(d, nbd_get_error() ? nbd_get_error() : "connection lost");
				pthread_mutex_unlock(&d->lock);
			}
		}

		pthread_mutex_lock(&d->lock);
		for (unsigned c = 0; c < d->nconn && !atomic_load(&d->base.down); c++) {
			uint64_t since = (uint64_t)d->progress[c].tv_sec * 1000 +
					 (uint64_t)d->progress[c].tv_nsec / 1000000;

			if (d->cmds_out[c] && now_ms() - since > d->timeout_ms)
				mark_down(d, d->nconn > 1 ? "no reply within the timeout on one of "
					  "its connections" : "no reply within the timeout");
		}
		done = d->done;
		d->done = NULL;
		stop = d->stopping && !d->out && !done;
		pthread_mutex_unlock(&d->lock);

		while (done) {
			struct io_req *next = done->next;

			if (done->result < 0)
				atomic_fetch_add(&d->base.errors, 1);
			ioeng_req_complete(d->eng, done);
			done = next;
		}
		if (stop)
			break;
	}
	return NULL;
}

static void nbd_close_dev(struct swapdev *dev)
{
	struct swapdev_nbd *d = (struct swapdev_nbd *)dev;

	pthread_mutex_lock(&d->lock);
	d->stopping = true;
	pthread_mutex_unlock(&d->lock);
	wake(d);
	pthread_join(d->thread, NULL);
	for (unsigned i = 0; i < d->nconn; i++) {
		if (!d->h[i])
			continue;
		if (!atomic_load(&d->base.down))
			nbd_shutdown(d->h[i], 0);
		nbd_close(d->h[i]);
	}
	close(d->wake_efd);
	pthread_cond_destroy(&d->h_idle);
	pthread_cond_destroy(&d->sync_done);
	pthread_mutex_destroy(&d->lock);
	free(d->uri);
	free(d);
}

static const struct swapdev_ops nbd_ops = {
	.kind = "nbd",
	.close = nbd_close_dev,
	.submit = nbd_submit,
	.run = nbd_run,
};

int swapdev_nbd_open(const struct swapdev_nbd_config *cfg, struct swapdev **out,
		     char *err, size_t errlen)
{
	struct swapdev_nbd *d;
	unsigned want;
	int64_t size;
	int r = -ENOMEM;

	d = calloc(1, sizeof(*d));
	if (!d || !(d->uri = strdup(cfg->uri)))
		goto fail_msg;
	d->timeout_ms = cfg->timeout_ms ? cfg->timeout_ms : 5000;
	d->wake_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (d->wake_efd < 0) {
		r = -errno;
		goto fail_msg;
	}
	d->h[0] = new_handle();
	if (!d->h[0])
		goto fail_nbd;
	d->nconn = 1;
	if (nbd_connect_uri(d->h[0], cfg->uri) < 0)
		goto fail_nbd;
	size = nbd_get_size(d->h[0]);
	if (size < 0)
		goto fail_nbd;
	if ((uint64_t)size >> PAGE_SHIFT < 2) {
		r = -EINVAL;
		if (err && errlen)
			snprintf(err, errlen, "%s: export too small (%lld bytes)", cfg->uri,
				 (long long)size);
		goto fail;
	}
	/*
	 * More connections only where the server says a flush or a write on
	 * one is seen by all (multi-conn). A further one that fails to
	 * connect is not fatal: the device keeps the ones it has.
	 */
	want = cfg->connections ? MIN(cfg->connections, NBD_MAX_CONNECTIONS) : NBD_MAX_CONNECTIONS;
	if (want > 1 && nbd_can_multi_conn(d->h[0]) == 1) {
		while (d->nconn < want) {
			struct nbd_handle *h = new_handle();

			if (!h || nbd_connect_uri(h, cfg->uri) < 0 || nbd_get_size(h) != size) {
				fprintf(stderr, "uvmpagerd: swap device %s: connection %u of %u "
					"failed (%s); going on with %u\n", cfg->uri, d->nconn + 1,
					want, nbd_get_error() ? nbd_get_error() : "size differs",
					d->nconn);
				if (h)
					nbd_close(h);
				break;
			}
			d->h[d->nconn++] = h;
		}
	}
	d->max_conn = d->nconn;
	atomic_store(&d->base.connections, d->nconn);
	pthread_mutex_init(&d->lock, NULL);
	pthread_cond_init(&d->sync_done, NULL);
	pthread_cond_init(&d->h_idle, NULL);
	d->base.ops = &nbd_ops;
	d->base.name = d->uri;
	d->base.nslots = (uint64_t)size >> PAGE_SHIFT;
	d->base.fd = -1;
	r = ioeng_thread_start(&d->thread, device_thread, d, "uvmp-nbd");
	if (r < 0) {
		pthread_cond_destroy(&d->h_idle);
		pthread_cond_destroy(&d->sync_done);
		pthread_mutex_destroy(&d->lock);
		goto fail_msg;
	}
	*out = &d->base;
	return 0;

fail_nbd:
	r = -EIO;
	if (err && errlen)
		snprintf(err, errlen, "%s: %s", cfg->uri, nbd_get_error() ? nbd_get_error() : "cannot connect");
	goto fail;
fail_msg:
	if (err && errlen)
		snprintf(err, errlen, "%s: %s", cfg->uri, strerror(-r));
fail:
	if (d) {
		for (unsigned i = 0; i < d->nconn; i++)
			nbd_close(d->h[i]);
		if (d->wake_efd > 0)
			close(d->wake_efd);
		free(d->uri);
		free(d);
	}
	return r;
}
