/*
 * The agent thread. While the daemon lives it carries out fences: the
 * daemon cannot drop this process's page-table entries itself, and must
 * before it evicts a page (a write racing the pageout would be lost).
 *
 * When the daemon's end of the agent connection closes, the daemon is
 * gone and nobody reads the userfaultfd any more: faulting threads would
 * hang, and had we closed our copy they would read zeros. So the agent
 * serves it from then on and fails closed: a page still in the memfd's
 * page cache holds the latest data (a fenced page's writes were all held
 * by the daemon) and is mapped back with UFFDIO_CONTINUE; a page the
 * page cache lacks lived only in swap and is poisoned, so the thread
 * that touches it gets SIGBUS instead of zeros.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "client/client_impl.h"
#include "client/rawsys.h"
#include "common/util.h"
#include "fault/uffd.h"

/* One line of /proc/self/maps, clipped to the range asked for. */
struct mapping {
	uintptr_t s, t;
	int prot;
	uint64_t off;         /* file offset of s */
	unsigned long ino;    /* 0: anonymous */
};

/*
 * Calls fn for each mapping of /proc/self/maps that overlaps [lo, hi),
 * clipped to it. No stdio: a program thread may hold libc's (or the
 * shim's) allocator lock while it waits on a fault that waits on us.
 */
static int each_mapping(uintptr_t lo, uintptr_t hi,
			int (*fn)(const struct mapping *m, void *arg), void *arg)
{
	char buf[4096];
	size_t have = 0;
	int fd = (int)syscall(SYS_openat, AT_FDCWD, "/proc/self/maps", O_RDONLY | O_CLOEXEC);
	int r = 0;

	if (fd < 0)
		return -errno;
	for (;;) {
		ssize_t got = read(fd, buf + have, sizeof(buf) - 1 - have);
		char *line = buf, *nl;

		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			break;
		have += (size_t)got;
		buf[have] = 0;
		while ((nl = strchr(line, '\n'))) {
			unsigned long a, b, off, ino;
			unsigned dmaj, dmin;
			char perm[5];

			*nl = 0;
			if (sscanf(line, "%lx-%lx %4s %lx %x:%x %lu", &a, &b, perm, &off, &dmaj, &dmin,
				   &ino) == 7 && b > lo && a < hi) {
				struct mapping m = {
					.s = MAX(a, lo), .t = MIN(b, hi),
					.prot = (perm[0] == 'r' ? PROT_READ : 0) |
						(perm[1] == 'w' ? PROT_WRITE : 0) |
						(perm[2] == 'x' ? PROT_EXEC : 0),
					.off = off + (MAX(a, lo) - a), .ino = ino,
				};

				r = fn(&m, arg);
				if (r < 0)
					goto out;
			}
			line = nl + 1;
		}
		have -= (size_t)(line - buf);
		memmove(buf, line, have);
	}
out:
	close(fd);
	return r;
}

/* At most this many pieces of a range are looked at per read of the maps. */
#define VIEW_PIECES 32

struct view_pieces {
	uintptr_t start;      /* of the range asked about */
	uint64_t off;         /* the memfd offset of start */
	unsigned long ino;
	size_t n;
	bool more;            /* pieces past the VIEW_PIECES kept */
	struct mapping p[VIEW_PIECES];
};

static int keep_piece(const struct mapping *m, void *arg)
{
	struct view_pieces *v = arg;

	if (m->ino != v->ino || m->off != v->off + (m->s - v->start))
		return 0;   /* the program's own memory by now (or another object's) */
	if (v->n == VIEW_PIECES) {
		v->more = true;
		return 0;
	}
	v->p[v->n++] = *m;
	return 0;
}

/*
 * Calls fn for each piece of [r->addr, + r->len) that still maps fd at the
 * offset it had at off (the range moved whole): what the program unmapped
 * since, or replaced with memory of its own, is left alone. The maps are
 * read before fn acts, a batch at a time. -ESTALE if no piece is left.
 */
static int each_view_piece(const struct uvmp_range *r, int fd, uint64_t off,
			   int (*fn)(const struct mapping *m, int fd, uint64_t off), bool *any)
{
	struct view_pieces v = { .start = r->addr, .off = off };
	uintptr_t from = r->addr, end = r->addr + r->len;
	struct stat st;
	int ret;

	*any = false;
	if (fd < 0)
		return -EBADF;
	if (fstat(fd, &st) < 0)
		return -errno;
	v.ino = (unsigned long)st.st_ino;
	do {
		v.n = 0;
		v.more = false;
		ret = each_mapping(from, end, keep_piece, &v);
		if (ret < 0)
			return ret;
		for (size_t i = 0; i < v.n; i++) {
			ret = fn(&v.p[i], fd, off + (v.p[i].s - r->addr));
			if (ret < 0)
				return ret;
			*any = true;
		}
		if (v.n)
			from = v.p[v.n - 1].t;
	} while (v.more && v.n);
	return *any ? 0 : -ESTALE;
}

/*
 * One piece, still mapping fd at off, becomes private anonymous memory
 * with its bytes and protections: its PTEs are dropped first (the range
 * is still registered): from then on every touch by the program waits in
 * the daemon, which is busy with this hand-over, so no write can slip
 * past the copy; the bytes are read from the memfd (where every page is:
 * the daemon paged the range in), holes reading zeros as they should;
 * the copy is moved over the piece in one mremap. The waiting touches
 * are woken and retry on the copy.
 */
static int hand_over_piece(const struct mapping *m, int fd, uint64_t off)
{
	size_t len = m->t - m->s, done = 0;
	char *copy;
	int ret;

	copy = raw_mmap(NULL, len, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (copy == MAP_FAILED)
		return -errno;
	if (raw_madvise((void *)m->s, len, MADV_DONTNEED) < 0) {
		ret = -errno;
		goto fail;
	}
	while (done < len) {
		ssize_t got = pread(fd, copy + done, len - done, (off_t)(off + done));

		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0) {
			ret = got < 0 ? -errno : -EIO;
			goto fail;
		}
		done += (size_t)got;
	}
	if (raw_mprotect(copy, len, m->prot) < 0 ||
	    raw_mremap(copy, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, (void *)m->s) == MAP_FAILED) {
		ret = -errno;
		goto fail;
	}
	return 0;
fail:
	raw_munmap(copy, len);
	return ret;
}

/*
 * A range moved out of its object by a raw mremap is the program's own
 * memory from now on, and must behave as the private anonymous memory it
 * was: a forked child gets a copy, MADV_DONTNEED reads zeros. So what of
 * it still maps the memfd where the move left it is replaced, piece by
 * piece, by anonymous memory holding the same bytes (hand_over_piece).
 * The program may have unmapped part of it since, or put memory of its
 * own there (the daemon hands over when it reads the move, which the
 * kernel let the program's mremap return before): those parts are not
 * touched. -ESTALE if nothing of the view is left (the daemon retries a
 * pinned part later, when it may be gone). Other attributes of the range
 * (mlock, madvise hints) are not carried.
 */
static int hand_over(const struct uvmp_range *r, int fd, uint64_t off)
{
	bool any;

	return each_view_piece(r, fd, off, hand_over_piece, &any);
}

static int fence(const struct wire_msg *m)
{
	const struct uvmp_fence *f = (const void *)m->payload.bytes;
	size_t head = offsetof(struct uvmp_fence, ranges);
	int status = 0;

	if (m->len < head || f->n > UVMP_FENCE_MAX ||
	    m->len < head + f->n * sizeof(f->ranges[0]))
		return -EPROTO;
	if (f->flags & UVMP_FENCE_PRIVATE)
		return f->n == 1 && m->nfds == 1 ? hand_over(&f->ranges[0], m->fds[0], f->offset)
						 : -EPROTO;
	for (uint32_t i = 0; i < f->n; i++) {
		const struct uvmp_range *r = &f->ranges[i];

		if ((r->addr | r->len) & (PAGE_SIZE - 1)) {
			status = status ? status : -EINVAL;
			continue;
		}
		/* PTEs go, the page cache stays: the next touch is a MINOR fault */
		if (raw_madvise((void *)(uintptr_t)r->addr, r->len, MADV_DONTNEED) < 0 &&
		    !status)
			status = -errno;
	}
	return status;
}

/* Returns when the daemon's side ended (or we are stopping). */
static void serve_daemon(struct uvmpager *c)
{
	struct pollfd p[2] = {
		{ .fd = c->agent_sock, .events = POLLIN },
		{ .fd = c->stop_efd, .events = POLLIN },
	};
	struct wire_msg m;
	int r, status;

	for (;;) {
		r = poll(p, 2, -1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 || p[1].revents || (p[0].revents & POLLNVAL))
			return;
		r = wire_recv(c->agent_sock, &m, 0);
		if (r == -EPROTO || r == -ETIMEDOUT)
			continue;
		if (r < 0)
			return;
		status = m.hdr.type & UVMP_REPLY ? 0 :
			 m.hdr.type == UVMP_FENCE ? fence(&m) : -EOPNOTSUPP;
		wire_close_fds(&m);
		if (m.hdr.type & UVMP_REPLY)
			continue;
		if (wire_send(c->agent_sock, m.hdr.type | UVMP_REPLY, m.hdr.seq, status,
			      NULL, 0, NULL, 0) < 0)
			return;
	}
}

static void kill_toucher(const struct uffd_msg *msg)
{
	pid_t tid = (pid_t)msg->arg.pagefault.feat.ptid;

	/* without UFFD_FEATURE_THREAD_ID the thread is unknown: the process */
	if (tid)
		syscall(SYS_tgkill, getpid(), tid, SIGBUS);
	else
		kill(getpid(), SIGBUS);
}

/*
 * Was the daemon reading this page back when it died? Then the page cache
 * may hold zeros or data never checked against its checksum.
 */
static bool journaled(const struct uvmpager *c, uintptr_t page)
{
	if (!c->journal)
		return false;
	for (size_t i = 0; i < UVMP_JOURNAL_ENTRIES; i++) {
		uint64_t len = __atomic_load_n(&c->journal[i].len, __ATOMIC_ACQUIRE);

		if (len && page - c->journal[i].addr < len)
			return true;
	}
	return false;
}

static void fault(struct uvmpager *c, const struct uffd_msg *msg)
{
	void *page = (void *)(uintptr_t)ALIGN_DOWN(msg->arg.pagefault.address, PAGE_SIZE);
	int r;

	if (msg->arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_WP) {
		/* only sync write-protect tracking asks; nobody tracks any more */
		if (uffd_writeprotect(c->uffd, page, PAGE_SIZE, false, 0) < 0)
			uffd_wake(c->uffd, page, PAGE_SIZE);
		return;
	}
	r = journaled(c, (uintptr_t)page) ? -EFAULT : uffd_continue(c->uffd, page, PAGE_SIZE, 0);
	if (r >= 0) {
		atomic_fetch_add(&c->fc_continued, 1);
		return;
	}
	/*
	 * Layout changing (an event to read first) or the range gone: let
	 * the thread retry; it faults again if it still has to.
	 */
	if (r == -EAGAIN || r == -ENOENT || r == -ESRCH) {
		uffd_wake(c->uffd, page, PAGE_SIZE);
		return;
	}
	/* not in the page cache: its only copy was in swap */
	atomic_fetch_add(&c->fc_poisoned, 1);
	r = uffd_poison(c->uffd, page, PAGE_SIZE, 0);
	if (r == -EAGAIN) {
		uffd_wake(c->uffd, page, PAGE_SIZE);
		return;
	}
	if (r < 0)
		kill_toucher(msg);
}

static void serve_uffd(struct uvmpager *c)
{
	struct pollfd p[2] = {
		{ .fd = c->uffd, .events = POLLIN },
		{ .fd = c->stop_efd, .events = POLLIN },
	};
	struct uffd_msg msgs[64];
	int n;

	/* faults the daemon read but never answered: their threads sleep on */
	regions_wake_all(c);
	for (;;) {
		n = poll(p, 2, -1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 || p[1].revents || (p[0].revents & (POLLERR | POLLNVAL)))
			return;
		n = uffd_read_msgs(c->uffd, msgs, (int)ARRAY_SIZE(msgs));
		if (n < 0)
			return;
		for (int i = 0; i < n; i++) {
			switch (msgs[i].event) {
			case UFFD_EVENT_PAGEFAULT:
				fault(c, &msgs[i]);
				break;
			case UFFD_EVENT_FORK:
				close((int)msgs[i].arg.fork.ufd);
				break;
			default:
				/* remap/remove/unmap: reading them let their callers go on */
				break;
			}
		}
	}
}

static void *agent_main(void *arg)
{
	serve_daemon(arg);
	return NULL;
}

/*
 * A thread of its own, not the fence thread: a fence's MADV_DONTNEED waits
 * until its REMOVE event is read from the uffd, so if the daemon dies in
 * the middle of one, the fence thread sleeps until someone reads it. This
 * thread only watches the agent connection for its end (it reads nothing
 * from it), then serves the uffd, which lets that madvise go too.
 */
static void *failover_main(void *arg)
{
	struct uvmpager *c = arg;
	struct pollfd p[2] = {
		{ .fd = c->agent_sock, .events = 0 },   /* POLLHUP/POLLERR only */
		{ .fd = c->stop_efd, .events = POLLIN },
	};

	for (;;) {
		int n = poll(p, 2, -1);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 || p[1].revents || (p[0].revents & POLLNVAL))
			return NULL;
		if (p[0].revents & (POLLHUP | POLLERR))
			break;
	}
	if (atomic_load(&c->stopping))
		return NULL;
	atomic_store(&c->agent_dead, true);
	serve_uffd(c);
	return NULL;
}

int agent_start(struct uvmpager *c)
{
	sigset_t all, old;
	int r;

	/* The program's signals are for the program's threads. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	r = -pthread_create(&c->agent, NULL, agent_main, c);
	if (r == 0) {
		r = -pthread_create(&c->failover, NULL, failover_main, c);
		if (r < 0) {
			uint64_t one = 1;

			atomic_store(&c->stopping, true);
			if (write(c->stop_efd, &one, sizeof(one)) < 0) {
				/* only on overflow: the thread is woken already */
			}
			pthread_join(c->agent, NULL);
		}
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r == 0)
		c->agent_running = true;
	return r;
}

void agent_stop(struct uvmpager *c)
{
	uint64_t one = 1;

	if (!c->agent_running)
		return;
	atomic_store(&c->stopping, true);
	if (write(c->stop_efd, &one, sizeof(one)) < 0) {
		/* an eventfd write fails only on overflow; the thread is woken already */
	}
	pthread_join(c->agent, NULL);
	pthread_join(c->failover, NULL);
	c->agent_running = false;
}
