/*
 * Asynchronous swap I/O: io_uring when the kernel allows it, a pool of
 * threads doing preadv/pwritev otherwise. Both complete requests in their
 * own threads (the "aiodone" context of the origin), never in the caller's;
 * ioeng_run() is the one synchronous exception.
 */
#ifndef UVMPAGER_SWAP_IOENG_H
#define UVMPAGER_SWAP_IOENG_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#define IO_MAX_IOV 64

enum io_op { IO_READ, IO_WRITE };

struct swapdev;

struct io_req {
	enum io_op op;
	int fd;
	/*
	 * The swap device the request is for, or NULL for plain fd I/O. A
	 * device with its own asynchronous transport (NBD) takes the request
	 * over from ioeng_submit() and completes it in its own thread through
	 * the same completion as the engines; a file device uses fd.
	 */
	struct swapdev *dev;
	uint64_t offset;
	int iovcnt;                     /* 1..IO_MAX_IOV */
	struct iovec iov[IO_MAX_IOV];
	ssize_t result;                 /* total bytes transferred, or -errno */
	void (*done)(struct io_req *req); /* called once, in an engine thread */
	void *priv;                     /* caller's */

	/* engine-private below */
	struct io_req *next;
	size_t xfered;
	size_t total;
	int cur;                        /* first iov of what is left to do */
	struct iovec cur_orig;          /* iov[cur] before it was trimmed */
	unsigned dev_pending;           /* device: commands not yet completed */
	bool dev_sync;                  /* device: ioeng_run() waits for it */
	unsigned char dev_conn;         /* device: the connection its commands went on */
	uint64_t submit_ns;             /* device: CLOCK_MONOTONIC at submit, for its latency */
	/*
	 * Set by a set device on its sub-requests before submitting them:
	 * the engine's stats count the parent request only, once.
	 */
	bool sub;
};

enum ioeng_kind { IOENG_AUTO, IOENG_URING, IOENG_THREADS };

struct ioeng_config {
	enum ioeng_kind kind;
	unsigned depth;         /* ring entries / max in flight, default 256 */
	unsigned threads;       /* thread-pool size, default 4 */
	/*
	 * Fault injection for tests: called once per request before it is
	 * executed, from any thread; a non-zero return (-errno) fails the
	 * request with that result without doing it.
	 */
	int (*inject)(void *ctx, const struct io_req *req);
	void *inject_ctx;
};

struct ioeng_stats {
	uint64_t reads;
	uint64_t writes;
	uint64_t read_bytes;
	uint64_t write_bytes;
	uint64_t errors;
	uint64_t inflight;      /* submitted, done() not yet returned */
};

struct ioeng;

/*
 * AUTO tries io_uring and falls back to threads when the ring cannot be set
 * up (kernel.io_uring_disabled, seccomp, ENOSYS, or built without
 * liburing); URING fails with that error instead; THREADS never tries.
 * cfg may be NULL for all defaults.
 *
 * Note for callers: with io_uring, a completion is delivered as task work
 * to the thread that submitted it, which can make that thread's
 * epoll_wait() (and other non-restartable waits) return EINTR.
 */
int ioeng_create(const struct ioeng_config *cfg, struct ioeng **out);
/*
 * Waits for every request in flight, including ones submitted by done(),
 * then stops the engine's threads. Not from inside done().
 */
void ioeng_destroy(struct ioeng *e);

const char *ioeng_name(const struct ioeng *e);          /* "io_uring" or "threads" */
enum ioeng_kind ioeng_kind_of(const struct ioeng *e);
/* The io_uring engine's ring descriptor, or -1. */
int ioeng_ring_fd(const struct ioeng *e);
/* Why AUTO fell back to threads: io_uring's setup error (-errno), or 0. */
int ioeng_fallback_error(const struct ioeng *e);

/*
 * Queues a batch. Safe from any thread, including inside done(); never
 * calls done() itself. Each request's done() runs exactly once, with
 * result the full length (short transfers are continued) or -errno
 * (-EIO for a read past the end of the file).
 * Returns 0, or -EINVAL (and queues nothing) if a request is malformed:
 * no done(), iovcnt out of range, unknown op, or zero length.
 */
int ioeng_submit(struct ioeng *e, struct io_req **reqs, unsigned n);

/*
 * Does one request in the calling thread, blocking, and calls its done()
 * there before returning: no hand-off to another thread, for a fault that
 * waits on a single read (the kernel's own swap-in does the same). The
 * caller must be able to run done(). Returns 0, or -EINVAL as
 * ioeng_submit() (done() is then not called).
 */
int ioeng_run(struct ioeng *e, struct io_req *req);

void ioeng_get_stats(struct ioeng *e, struct ioeng_stats *st);

/* "auto", "io_uring" (or "uring"), "threads". Returns 0 or -EINVAL. */
int ioeng_kind_parse(const char *s, enum ioeng_kind *out);
const char *ioeng_kind_name(enum ioeng_kind kind);

#endif
