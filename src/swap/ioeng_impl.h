/* Shared between the I/O engine front end and its two back ends. */
#ifndef UVMPAGER_SWAP_IOENG_IMPL_H
#define UVMPAGER_SWAP_IOENG_IMPL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "build-config.h"

#include "swap/ioeng.h"

struct ioeng_ops {
	const char *name;
	enum ioeng_kind kind;
	/* Requests are validated and counted in flight; must not fail or call done(). */
	void (*submit)(struct ioeng *e, struct io_req **reqs, unsigned n);
	/* Called with nothing in flight: stop the threads, free everything. */
	void (*destroy)(struct ioeng *e);
};

/* Embedded first in each back end's struct. */
struct ioeng {
	const struct ioeng_ops *ops;
	struct ioeng_config cfg;
	_Atomic uint64_t reads, writes, read_bytes, write_bytes, errors;
	_Atomic uint64_t inflight;
	int fallback_err;       /* why AUTO did not get io_uring, or 0 */
	pthread_mutex_t drain_lock;
	pthread_cond_t drained;
};

#ifdef HAVE_LIBURING
int ioeng_uring_create(const struct ioeng_config *cfg, struct ioeng **out);
int ioeng_uring_fd(const struct ioeng *e);
#endif
int ioeng_threads_create(const struct ioeng_config *cfg, struct ioeng **out);

void ioeng_base_init(struct ioeng *e, const struct ioeng_ops *ops,
		     const struct ioeng_config *cfg);
void ioeng_base_fini(struct ioeng *e);

/* The test hook's verdict for req: 0 to run it, or the -errno to fail it with. */
int ioeng_req_inject(struct ioeng *e, const struct io_req *req);
/* Does req with blocking preadv/pwritev in the calling thread (test hook first). */
void ioeng_req_execute(struct ioeng *e, struct io_req *req);
/* Points iov[cur..] at the bytes after req->xfered (trimming iov[cur] in place). */
void ioeng_req_window(struct io_req *req);
/* Undoes the trim so the caller gets its iov back as it was. */
void ioeng_req_restore(struct io_req *req);
/* Counts the result, calls done(), then drops the request from inflight. */
void ioeng_req_complete(struct ioeng *e, struct io_req *req);

/* Engine threads take no signals: those belong to the daemon's main loop. */
int ioeng_thread_start(pthread_t *t, void *(*fn)(void *), void *arg, const char *name);

#endif
