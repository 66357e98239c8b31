/*
 * fork(2): a child must not share its parent's objects (they are
 * MAP_SHARED memfds). The parent has the daemon clone them before the
 * fork; the child connects anew, adopts the clones and maps each over
 * the region it replaces before the daemon serves its faults.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "client/client_impl.h"
#include "client/rawsys.h"
#include "common/util.h"

/* How long a child waits for its parent's FORK_DONE to reach the daemon. */
#define ADOPT_RETRY_MS 5000

int uvmpager_fork_prepare(struct uvmpager *c, uint64_t *token)
{
	struct uvmp_fork_reply rep = { 0 };
	struct wire_msg m;
	int r;

	if (!c || !token)
		return -EINVAL;
	*token = 0;
	pthread_mutex_lock(&c->lock);
	r = client_call_locked(c, UVMP_FORK_PREPARE, NULL, 0, NULL, 0, &m, -1);
	if (r == 0) {
		wire_close_fds(&m);
		memcpy(&rep, m.payload.bytes, MIN(m.len, sizeof(rep)));
		/* unnamed clones expire in the daemon by themselves */
		if (m.len < sizeof(rep) || !rep.token)
			r = -EPROTO;
	}
	if (r < 0) {
		pthread_mutex_unlock(&c->lock);
		return r;
	}
	/*
	 * Held until fork_parent: no request may change an object between
	 * the clone and the fork, and the child must find the region table
	 * in one piece.
	 */
	pthread_mutex_lock(&c->regions_lock);
	*token = rep.token;
	return 0;
}

void uvmpager_fork_parent(struct uvmpager *c, uint64_t token, pid_t child)
{
	struct uvmp_fork_done req = { .token = token, .child_pid = child > 0 ? child : -1 };

	if (!c)
		return;
	pthread_mutex_unlock(&c->regions_lock);
	client_call_locked(c, UVMP_FORK_DONE, &req, sizeof(req), NULL, 0, NULL, -1);
	pthread_mutex_unlock(&c->lock);
}

static bool was_owned(const struct region *old, size_t n, uintptr_t addr)
{
	for (size_t i = 0; i < n; i++)
		if (old[i].addr == addr)
			return old[i].owned;
	return false;
}

/* A managed view: 4 KiB faults, and no child of ours shares it. */
static int view_advise(void *p, size_t len)
{
	raw_madvise(p, len, MADV_NOHUGEPAGE);
	raw_madvise(p, len, MADV_DONTFORK);
	return 0;
}

/*
 * Maps a clone over the hole its region left in this child (managed views
 * are MADV_DONTFORK). Where the child has something mapped in that range
 * already, the parent had unmapped that part of the object by syscall
 * and put memory of its own there, which the child inherited: it stays,
 * and the clone is mapped around it (the daemon left those pages out).
 */
static int map_clone(const struct uvmp_region *g, int fd)
{
	uintptr_t start = (uintptr_t)g->addr, end = start + g->len, cur = start;
	char line[256];
	FILE *maps;
	void *p;

	p = raw_mmap((void *)start, g->len, (int)g->prot,
		     MAP_SHARED | MAP_FIXED_NOREPLACE | MAP_NORESERVE, fd, 0);
	if (p == (void *)start)
		return view_advise(p, g->len);
	if (p != MAP_FAILED) {
		/* a kernel without MAP_FIXED_NOREPLACE took it as a hint */
		raw_munmap(p, g->len);
		errno = EEXIST;
	}
	if (errno != EEXIST)
		return -errno;
	maps = fopen("/proc/self/maps", "re");
	if (!maps)
		return -errno;
	/* the gaps between what is mapped inside [start, end), in order */
	while (cur < end) {
		uintptr_t lo = end, hi = end;

		rewind(maps);
		while (fgets(line, sizeof(line), maps)) {
			unsigned long a, b;

			if (sscanf(line, "%lx-%lx", &a, &b) == 2 && b > cur && a < lo) {
				lo = MAX(a, cur);
				hi = b;
			}
		}
		if (lo > cur) {
			p = raw_mmap((void *)cur, MIN(lo, end) - cur, (int)g->prot,
				     MAP_SHARED | MAP_FIXED_NOREPLACE | MAP_NORESERVE, fd,
				     (off_t)(cur - start));
			if (p != (void *)cur) {
				fclose(maps);
				return p == MAP_FAILED ? -errno : -EEXIST;
			}
			view_advise(p, MIN(lo, end) - cur);
		}
		cur = MIN(hi, end);
	}
	fclose(maps);
	return 0;
}

static int map_batch(struct uvmpager *c, struct wire_msg *m, const struct region *old,
		     size_t nold, uint32_t *start, uint32_t *total)
{
	size_t head = offsetof(struct uvmp_adopt_reply, regions);
	struct uvmp_adopt_reply rep;
	int r = 0;

	memset(&rep, 0, sizeof(rep));
	memcpy(&rep, m->payload.bytes, MIN(m->len, sizeof(rep)));
	if (m->len < head || rep.n > UVMP_MAX_FDS || m->len < head + rep.n * sizeof(rep.regions[0]) ||
	    m->nfds != (int)rep.n || (!rep.n && *start < rep.total)) {
		r = -EPROTO;
		goto out;
	}
	for (uint32_t i = 0; i < rep.n; i++) {
		const struct uvmp_region *g = &rep.regions[i];
		struct region reg = {
			.addr = g->addr, .len = g->len, .id = g->object_id,
			.type = g->type, .prot = g->prot,
			.owned = was_owned(old, nold, g->addr),
		};
		void *p;

		if (!g->len || ((g->addr | g->len) & (PAGE_SIZE - 1))) {
			r = -EPROTO;
			goto out;
		}
		r = map_clone(g, m->fds[i]);
		if (r < 0)
			goto out;
		p = (void *)(uintptr_t)g->addr;
		r = regions_add(c, &reg);
		if (r < 0) {
			raw_munmap(p, g->len);
			goto out;
		}
	}
	*start += rep.n;
	*total = rep.total;
out:
	wire_close_fds(m);
	return r;
}

static int adopt(struct uvmpager *c, uint64_t token, const struct region *old, size_t nold)
{
	struct uvmp_adopt req = { .token = token };
	struct uvmp_adopt_done done = { .token = token };
	struct timespec pause = { .tv_nsec = 10 * 1000 * 1000 };
	uint32_t total = 1;
	struct wire_msg m;
	int r, waited = 0;

	while (req.start < total) {
		r = client_call(c, UVMP_ADOPT, &req, sizeof(req), NULL, 0, &m);
		if (r == -EAGAIN && waited < ADOPT_RETRY_MS) {
			nanosleep(&pause, NULL);
			waited += 10;
			continue;
		}
		if (r < 0)
			goto undo;
		r = map_batch(c, &m, old, nold, &req.start, &total);
		if (r < 0)
			goto undo;
	}
	r = client_call(c, UVMP_ADOPT_DONE, &done, sizeof(done), NULL, 0, NULL);
	if (r == 0)
		return 0;
undo:
	/* nothing the daemon does not serve may stay mapped: it would read zeros */
	for (size_t i = 0; i < c->nregions; i++)
		raw_munmap((void *)c->regions[i].addr, c->regions[i].len);
	regions_clear(c);
	return r;
}

int uvmpager_fork_child(struct uvmpager **cp, uint64_t token)
{
	struct uvmpager *old, *c = NULL;
	int r;

	if (!cp || !*cp)
		return -EINVAL;
	old = *cp;
	*cp = NULL;
	if (!token) {
		r = -EINVAL;
		goto out;
	}
	/*
	 * The agent's threads start once the parent's memory is mapped: a
	 * new thread reads glibc's state (its locale, say), which the shim
	 * may have put in that memory, holes until adopt() fills them.
	 */
	r = client_open(old->socket_path, old->budget_asked, false, &c);
	if (r < 0)
		goto out;
	/* the parent held regions_lock across the fork: the table is whole */
	r = adopt(c, token, old->regions, old->nregions);
	if (r == 0)
		r = client_map_tables(c);
	if (r == 0)
		r = agent_start(c);
	if (r < 0) {
		client_free(c);
		goto out;
	}
	*cp = c;
out:
	/* the inherited connection is the parent's: drop our copies, join nothing */
	client_free(old);
	return r;
}
