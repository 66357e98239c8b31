/*
 * The engine as the request handlers (src/daemon/requests.c, forks.c)
 * see it, for fuzz_requests.c: objects and clients as plain records, no
 * userfaultfd, no swap. Each call checks what the daemon must have
 * checked before making it, and abort()s (a finding) when it did not:
 *
 *  - an object is acted on only by its own client (fuzz_actor), never
 *    by another user's request;
 *  - a memfd is sealed against shrinking before it is attached;
 *  - a client's objects never overlap (one range, one object);
 *  - a release stays inside its object.
 *
 * What the real engine refuses itself (a memfd smaller than the range,
 * unaligned or empty ranges, addresses the kernel would not register)
 * gets the real engine's error instead.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine.h"
#include "stub_engine.h"

#define PAGE 4096ULL
#define USER_TOP (1ULL << 47)

struct client {
	pid_t pid;
	uint64_t budget;
	bool dead;
	struct client *next;
};

struct uobj {
	uint64_t id, budget;
	struct client *c;          /* NULL: a clone not adopted yet */
	struct client *origin;     /* a clone's parent's client */
	uintptr_t addr;
	size_t len;
	struct uobj *next;
};

struct client *fuzz_actor;
bool stub_foreign_uffd;
static struct client *clients;
static struct uobj *objects;
static uint64_t next_id = 1;

static void finding(const char *what)
{
	fprintf(stderr, "stub engine: %s\n", what);
	abort();
}

/* Whoever asks for o must own it (a clone: its parent's client). */
static void owner_check(const struct uobj *o, const char *op)
{
	if (!fuzz_actor)
		return;   /* the harness itself, tearing down */
	if (o->c ? o->c != fuzz_actor : o->origin != fuzz_actor) {
		fprintf(stderr, "stub engine: %s of object %llu by a client not its owner\n", op,
			(unsigned long long)o->id);
		abort();
	}
}

static bool overlaps(const struct client *c, uintptr_t addr, size_t len, const struct uobj *skip)
{
	for (const struct uobj *o = objects; o; o = o->next)
		if (o != skip && o->c == c && addr < o->addr + o->len && o->addr < addr + len)
			return true;
	return false;
}

int stub_vma_registered(pid_t pid, uint64_t addr)
{
	if (stub_foreign_uffd)
		return 0;
	for (const struct uobj *o = objects; o; o = o->next)
		if (o->c && o->c->pid == pid && addr >= o->addr && addr < o->addr + o->len)
			return 1;
	return 0;
}

struct client *stub_client_new(pid_t pid)
{
	struct client *c = calloc(1, sizeof(*c));

	if (!c)
		abort();
	c->pid = pid;
	c->next = clients;
	clients = c;
	return c;
}

struct uobj *stub_object_new(struct client *c, uintptr_t addr, size_t len)
{
	struct uobj *o = calloc(1, sizeof(*o));

	if (!o)
		abort();
	o->id = next_id++;
	o->c = c;
	o->addr = addr;
	o->len = len;
	o->next = objects;
	objects = o;
	return o;
}

/* Everything left (the harness has let go of its records): freed. */
void stub_engine_reset(void)
{
	while (objects) {
		struct uobj *o = objects;

		objects = o->next;
		free(o);
	}
	while (clients) {
		struct client *c = clients;

		clients = c->next;
		free(c);
	}
	fuzz_actor = NULL;
	stub_foreign_uffd = false;
	next_id = 1;
}

int engine_client_create(struct engine *e, pid_t pid, int ufd, uint64_t budget,
			 struct client **out)
{
	(void)e;
	if (ufd < 0)
		finding("a client without a userfaultfd");
	close(ufd);   /* the engine owns it */
	*out = stub_client_new(pid);
	(*out)->budget = budget;
	return 0;
}

void engine_client_destroy(struct engine *e, struct client *c)
{
	(void)e;
	for (struct uobj **pp = &objects; *pp;) {
		struct uobj *o = *pp;

		if (o->c == c) {
			*pp = o->next;
			free(o);
		} else {
			pp = &o->next;
		}
	}
	for (struct client **pp = &clients; *pp; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			free(c);
			return;
		}
}

void engine_client_unmaps_wait(struct engine *e, struct client *c)
{
	/* The stub reads no uffd events: nothing is ever pending. */
	(void)e, (void)c;
}

int engine_client_set_budget(struct engine *e, struct client *c, uint64_t bytes)
{
	(void)e;
	if (fuzz_actor && c != fuzz_actor)
		finding("a client's budget set by another client");
	c->budget = bytes;
	return 0;
}

static int small_memfd(int *memfd)
{
	*memfd = memfd_create("stub", MFD_CLOEXEC);
	return *memfd < 0 ? -errno : 0;
}

int engine_client_journal(struct engine *e, struct client *c, int *memfd)
{
	(void)e, (void)c;
	return small_memfd(memfd);
}

int engine_client_pintab(struct engine *e, struct client *c, int *memfd)
{
	(void)e, (void)c;
	return small_memfd(memfd);
}

int engine_client_lock(struct engine *e, struct client *c, uintptr_t addr, size_t len, bool on,
		       bool all)
{
	(void)e, (void)addr, (void)len, (void)on, (void)all;
	if (fuzz_actor && c != fuzz_actor)
		finding("a client's memory locked or unlocked by another client");
	return 0;
}

size_t engine_client_new_objects(struct engine *e, struct client *c, struct uobj **out,
				 uint64_t *origin, size_t max)
{
	(void)e, (void)out, (void)origin, (void)max;
	if (fuzz_actor && c != fuzz_actor)
		finding("new objects of another client taken");
	return 0;
}

bool engine_objects_meet(struct engine *e, struct uobj *a, uintptr_t a_addr, struct uobj *b,
			 uintptr_t b_addr)
{
	(void)e, (void)a, (void)a_addr, (void)b, (void)b_addr;
	return true;
}

bool engine_object_covers(struct engine *e, struct uobj *a, uintptr_t a_addr, struct uobj *b,
			  uintptr_t b_addr)
{
	(void)e, (void)a, (void)a_addr, (void)b, (void)b_addr;
	return false;
}

bool engine_object_live(struct engine *e, struct uobj *o, size_t off, size_t len)
{
	(void)e, (void)o, (void)off, (void)len;
	return true;
}

void engine_client_dead(struct engine *e, struct client *c)
{
	(void)e;
	c->dead = true;
}

bool engine_client_mm_alive(struct engine *e, struct client *c)
{
	(void)e;
	return !c->dead;
}

int engine_client_detach(struct engine *e, struct client *c)
{
	(void)e, (void)c;
	return 0;
}

int engine_object_attach(struct engine *e, struct client *c, enum engine_obj_type type,
			 int memfd, int backing_fd, uintptr_t addr, size_t len,
			 uint64_t budget, struct uobj **out)
{
	struct stat st;
	int seals;

	(void)e;
	if (fuzz_actor && c != fuzz_actor)
		finding("an object attached to another client");
	seals = fcntl(memfd, F_GET_SEALS);
	if (seals < 0 || !(seals & F_SEAL_SHRINK))
		finding("a memfd attached without F_SEAL_SHRINK");
	/* the real engine's own checks */
	if (!len || addr % PAGE || len % PAGE)
		return -EINVAL;
	if (type != ENGINE_OBJ_ANON && backing_fd < 0)
		return -EBADF;
	if (fstat(memfd, &st) < 0 || (uint64_t)st.st_size < len)
		return -EINVAL;
	/* the kernel's: UFFDIO_REGISTER of no user memory */
	if (addr + len < addr || addr + len > USER_TOP || addr < PAGE)
		return -EINVAL;
	if (overlaps(c, addr, len, NULL))
		finding("two objects of one client over the same range");
	*out = stub_object_new(c, addr, len);
	(*out)->budget = budget;
	return 0;
}

uint64_t engine_object_id(const struct uobj *o)
{
	return o->id;
}

uintptr_t engine_object_addr(const struct uobj *o)
{
	return o->addr;
}

size_t engine_object_size(const struct uobj *o)
{
	return o->len;
}

size_t engine_object_registered_offset(const struct uobj *o)
{
	(void)o;
	return 0;
}

int engine_object_release(struct engine *e, struct uobj *o, size_t off, size_t len)
{
	(void)e;
	owner_check(o, "release");
	if (off % PAGE || len % PAGE || off + len < off || off + len > o->len || !len)
		finding("a release outside its object");
	return 0;
}

int engine_object_move(struct engine *e, struct uobj *o, uintptr_t new_addr)
{
	(void)e;
	owner_check(o, "move");
	if (new_addr % PAGE || new_addr + o->len < new_addr || new_addr + o->len > USER_TOP)
		return -EINVAL;
	if (overlaps(o->c, new_addr, o->len, o))
		finding("an object moved over another object of its client");
	o->addr = new_addr;
	return 0;
}

void engine_object_destroy(struct engine *e, struct uobj *o)
{
	(void)e;
	owner_check(o, "destroy");
	for (struct uobj **pp = &objects; *pp; pp = &(*pp)->next)
		if (*pp == o) {
			*pp = o->next;
			free(o);
			return;
		}
	finding("destroy of an object that is not there");
}

int engine_flush(struct engine *e, struct uobj *o)
{
	(void)e;
	owner_check(o, "flush");
	return 0;
}

int engine_set_budget(struct engine *e, struct uobj *o, uint64_t bytes)
{
	(void)e;
	owner_check(o, "set_budget");
	o->budget = bytes;
	return 0;
}

void engine_object_stat(struct engine *e, struct uobj *o, struct engine_obj_stat *st)
{
	(void)e;
	owner_check(o, "stat");
	memset(st, 0, sizeof(*st));
	st->id = o->id;
	st->size = o->len;
	st->budget = o->budget;
}

int engine_object_clone(struct engine *e, struct uobj *o, struct uobj **out, int *memfd)
{
	struct uobj *n;
	int r;

	(void)e;
	owner_check(o, "clone");
	r = small_memfd(memfd);
	if (r < 0)
		return r;
	n = stub_object_new(NULL, 0, o->len);
	n->origin = o->c;
	*out = n;
	return 0;
}

int engine_object_adopt(struct engine *e, struct uobj *o, struct client *c, uintptr_t addr)
{
	(void)e;
	if (fuzz_actor && c != fuzz_actor)
		finding("a clone adopted for another client");
	if (o->c)
		finding("adopt of an object that is not a clone");
	if (overlaps(c, addr, o->len, o))
		finding("a clone adopted over another object of its client");
	o->c = c;
	o->addr = addr;
	return 0;
}

void engine_get_tunables(struct engine *e, struct engine_tunables *t)
{
	(void)e;
	memset(t, 0, sizeof(*t));
}
