/*
 * The agent thread. While the daemon lives it waits on its connection;
 * the daemon drops this process's page-table entries itself, through the
 * memfds it maps (pager/zap.c), and never works in our address space.
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
		/* the daemon asks nothing of us today: say so to whatever it sends */
		status = -EOPNOTSUPP;
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
