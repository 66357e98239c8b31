/*
 * fork: the parent's objects are cloned before the fork, and the child
 * adopts the clones on a connection of its own. A record per fork holds
 * the clones until then (FORK_TTL_NS at most).
 */
#include <stdio.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/util.h"
#include "daemon/config.h"
#include "daemon/log.h"
#include "daemon/server_impl.h"
#include "engine.h"

void forks_destroy(struct server *s, struct fork_rec *f)
{
	for (struct fork_rec **pp = &s->forks; *pp; pp = &(*pp)->next) {
		if (*pp == f) {
			*pp = f->next;
			break;
		}
	}
	for (unsigned i = 0; i < f->n; i++) {
		if (f->clones[i].o)
			engine_object_destroy(s->e, f->clones[i].o);
		if (f->clones[i].memfd >= 0)
			close(f->clones[i].memfd);
	}
	free(f->clones);
	free(f);
}

static struct fork_rec *find_fork(struct server *s, uint64_t token)
{
	for (struct fork_rec *f = s->forks; f; f = f->next)
		if (f->token == token)
			return f;
	return NULL;
}

static pid_t parent_of(pid_t pid)
{
	char path[64], line[256];
	pid_t ppid = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	f = fopen(path, "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "PPid: %d", &ppid) == 1)
			break;
	fclose(f);
	return ppid;
}

void forks_expire(struct server *s)
{
	uint64_t now = now_ns();
	struct fork_rec *f = s->forks;

	while (f) {
		struct fork_rec *next = f->next;

		if (now - f->created > FORK_TTL_NS) {
			log_warn("fork clones of pid %d never adopted: dropped", f->parent);
			forks_destroy(s, f);
		}
		f = next;
	}
}

/* The parent's mappings, read once per fork: address order, as the kernel lists them. */
struct maps_snap {
	struct vma_prot { uintptr_t a, b; uint32_t prot; } *v;
	size_t n;
};

static void maps_read(pid_t pid, struct maps_snap *m)
{
	char path[64], line[512];
	size_t cap = 0;
	FILE *f;

	m->v = NULL;
	m->n = 0;
	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		unsigned long a, b;
		char perm[5];

		if (sscanf(line, "%lx-%lx %4s", &a, &b, perm) != 3)
			continue;
		if (m->n == cap) {
			size_t nc = cap ? cap * 2 : 256;
			struct vma_prot *nv = realloc(m->v, nc * sizeof(*nv));

			if (!nv)
				break;
			m->v = nv;
			cap = nc;
		}
		m->v[m->n++] = (struct vma_prot){ a, b, (perm[0] == 'r' ? PROT_READ : 0) |
			(perm[1] == 'w' ? PROT_WRITE : 0) | (perm[2] == 'x' ? PROT_EXEC : 0) };
	}
	fclose(f);
}

/*
 * The protection of a moved part (the shim does not know it, so its
 * mprotect went straight to the kernel): what the parent's maps say of
 * its range, the union where it differs (a child that may do less than
 * its parent would fault where the parent did not). fallback when the
 * maps say nothing of it.
 */
static uint32_t maps_prot(const struct maps_snap *m, uintptr_t addr, size_t len, uint32_t fallback)
{
	size_t lo = 0, hi = m->n;
	uint32_t prot = 0;
	bool seen = false;

	while (lo < hi) {           /* the first mapping ending past addr */
		size_t mid = lo + (hi - lo) / 2;

		if (m->v[mid].b <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (size_t i = lo; i < m->n && m->v[i].a < addr + len; i++) {
		prot |= m->v[i].prot;
		seen = true;
	}
	return seen ? prot : fallback;
}

/*
 * The child maps the clones in this order, each where nothing is mapped
 * yet (client/fork.c, map_clone). Where two overlap (a part moved by a
 * raw mremap into another object's raw-unmapped hole), the one whose
 * pages are its own there goes first, or the other would take the range
 * with pages it no longer has.
 */
static void order_clones(struct server *s, struct fork_rec *f)
{
	/* no page is live in two objects, so the relation has no cycle; a bound all the same */
	unsigned long swaps = 0, most = (unsigned long)f->n * f->n;

	for (unsigned i = 0; i < f->n; i++) {
		for (unsigned j = i + 1; j < f->n; j++) {
			struct fork_clone *a = &f->clones[i], *b = &f->clones[j], t;

			if (b->region.addr >= a->region.addr + a->region.len ||
			    a->region.addr >= b->region.addr + b->region.len ||
			    !engine_object_covers(s->e, b->o, (uintptr_t)b->region.addr, a->o,
						  (uintptr_t)a->region.addr) || swaps++ > most)
				continue;
			t = *a;
			*a = *b;
			*b = t;
			j = i;   /* the new one at i must come after none of those before j either */
		}
	}
}

int do_fork_prepare(struct server *s, struct conn *c, const struct uvmp_hdr *h,
			   ssize_t n)
{
	struct dclient *dc = c->client;
	struct uvmp_fork_reply rep = { 0 };
	struct maps_snap maps = { 0 };
	struct fork_rec *f;
	unsigned count = 0, i = 0;

	if (!payload(h, n, 0) || !dc || !dc->ec)
		return -EPROTO;
	/* a part the program moved by a raw mremap just now is an object too */
	srv_objects_sync(s, dc);
	/*
	 * and pages it unmapped by syscall just now are not the object's:
	 * the clone must leave them out (what the child has there is its
	 * own inherited memory, which the daemon must not register)
	 */
	engine_client_unmaps_wait(s->e, dc->ec);
	for (struct dobj *d = dc->objs; d; d = d->next)
		count++;
	f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	f->clones = calloc(count ? count : 1, sizeof(*f->clones));
	if (!f->clones) {
		free(f);
		return -ENOMEM;
	}
	f->token = srv_random_u64();
	f->parent = dc->pid;
	f->uid = dc->uid;
	f->created = now_ns();
	f->next = s->forks;
	s->forks = f;
	for (struct dobj *d = dc->objs; d; d = d->next, i++) {
		struct fork_clone *fc = &f->clones[i];
		int r;

		fc->memfd = -1;
		f->n = i + 1;
		r = engine_object_clone(s->e, d->o, &fc->o, &fc->memfd);
		if (r < 0) {
			free(maps.v);
			forks_destroy(s, f);
			return r;
		}
		fc->region = (struct uvmp_region){ .addr = engine_object_addr(d->o), .len = d->len,
						   .object_id = engine_object_id(fc->o),
						   .type = d->type, .prot = d->prot };
		fc->split = d->split;
		if (d->split && !maps.v)
			maps_read(dc->pid, &maps);
		if (d->split)
			fc->region.prot = maps_prot(&maps, (uintptr_t)fc->region.addr,
						    (size_t)fc->region.len, d->prot);
	}
	free(maps.v);
	f->n = count;
	order_clones(s, f);
	rep.token = f->token;
	rep.nregions = count;
	return srv_reply(c, h, 0, &rep, sizeof(rep), NULL, 0) < 0 ? -EPIPE : 1;
}

int do_fork_done(struct server *s, struct conn *c, const struct uvmp_hdr *h, ssize_t n)
{
	const struct uvmp_fork_done *p = payload(h, n, sizeof(*p));
	struct fork_rec *f;

	if (!p || !c->client)
		return -EPROTO;
	f = find_fork(s, p->token);
	if (!f || f->parent != c->client->pid)
		return -ENOENT;
	if (p->child_pid <= 0) {
		forks_destroy(s, f);
		return 0;
	}
	/*
	 * Only a child of the parent may take the clones: the parent itself
	 * (or a process of its choosing) would map them over live objects.
	 */
	if (parent_of(p->child_pid) != f->parent)
		return -ECHILD;
	f->child = p->child_pid;
	return 0;
}

/* Only the parent's child (as the kernel sees it) may take the clones. */
static struct fork_rec *fork_for(struct server *s, struct conn *c, uint64_t token)
{
	struct fork_rec *f = find_fork(s, token);

	if (!f || f->uid != c->cred.uid)
		return NULL;
	if (f->child ? f->child != c->cred.pid : parent_of(c->cred.pid) != f->parent)
		return NULL;
	return f;
}

int do_adopt(struct server *s, struct conn *c, const struct uvmp_hdr *h, ssize_t n)
{
	const struct uvmp_adopt *p = payload(h, n, sizeof(*p));
	struct uvmp_adopt_reply rep = { 0 };
	int fds[UVMP_MAX_FDS];
	struct fork_rec *f;

	if (!p || !c->client || !c->client->ec)
		return -EPROTO;
	f = fork_for(s, c, p->token);
	if (!f)
		return -EPERM;
	rep.total = f->n;
	for (unsigned i = p->start; i < f->n && rep.n < UVMP_MAX_FDS; i++) {
		rep.regions[rep.n] = f->clones[i].region;
		fds[rep.n++] = f->clones[i].memfd;
	}
	return srv_reply(c, h, 0, &rep, sizeof(rep), fds, rep.n) < 0 ? -EPIPE : 1;
}

/*
 * Whether a clone would serve a page an object the child adopted already
 * serves. The parent's objects may overlap where the pages of one are
 * gone: a part moved by a raw mremap into another's raw-unmapped hole.
 */
static bool clone_meets(struct server *s, struct dclient *dc, const struct fork_clone *fc)
{
	for (struct dobj *d = dc->objs; d; d = d->next) {
		uintptr_t base = engine_object_addr(d->o);

		if (fc->region.addr < base + d->len && base < fc->region.addr + fc->region.len &&
		    engine_objects_meet(s->e, d->o, base, fc->o, (uintptr_t)fc->region.addr))
			return true;
	}
	return false;
}

int do_adopt_done(struct server *s, struct conn *c, const struct uvmp_hdr *h, ssize_t n)
{
	const struct uvmp_adopt_done *p = payload(h, n, sizeof(*p));
	struct dclient *dc = c->client;
	struct fork_rec *f;
	int r = 0;

	if (!p || !dc || !dc->ec)
		return -EPROTO;
	f = fork_for(s, c, p->token);
	if (!f)
		return -EPERM;
	for (unsigned i = 0; i < f->n; i++) {
		struct fork_clone *fc = &f->clones[i];
		struct dobj *d = calloc(1, sizeof(*d));
		uint64_t off, probe;

		if (!d) {
			r = -ENOMEM;
			break;
		}
		if (clone_meets(s, dc, fc)) {
			free(d);
			r = -EEXIST;
			break;
		}
		/* a registered page of it proves the uffd (none: the next clone will) */
		off = engine_object_registered_offset(fc->o);
		probe = off < fc->region.len ? fc->region.addr + off : 0;
		if (probe && (r = srv_uffd_check_before(dc, probe)) < 0) {
			free(d);
			break;
		}
		r = engine_object_adopt(s->e, fc->o, dc->ec, (uintptr_t)fc->region.addr);
		if (r < 0) {
			free(d);
			break;
		}
		if (probe && (r = srv_uffd_check_after(dc, probe, "ADOPT_DONE")) < 0) {
			/* registered in another address space: the clone goes */
			engine_object_destroy(s->e, fc->o);
			fc->o = NULL;
			free(d);
			break;
		}
		d->o = fc->o;
		d->id = fc->region.object_id;
		d->addr = (uintptr_t)fc->region.addr;
		d->len = (size_t)fc->region.len;
		d->type = fc->region.type;
		d->prot = fc->region.prot;
		d->split = fc->split;
		srv_dobj_link(s, dc, d);
		fc->o = NULL;
	}
	forks_destroy(s, f);
	return r;
}

