/*
 * The regions registered through a connection, sorted by address: what
 * uvmpager_anon_destroy needs to know the length, what the fail-closed
 * agent wakes, and what uvmpager_object_at answers from.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "client/client_impl.h"
#include "fault/uffd.h"

/* Index of the first region ending after addr. */
static size_t first_after(const struct uvmpager *c, uintptr_t addr)
{
	size_t lo = 0, hi = c->nregions;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (c->regions[mid].addr + c->regions[mid].len <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static int reserve(struct uvmpager *c, size_t n)
{
	struct region *nr;
	size_t cap;

	if (n <= c->cap)
		return 0;
	cap = c->cap ? c->cap * 2 : 16;
	while (cap < n)
		cap *= 2;
	nr = realloc(c->regions, cap * sizeof(*nr));
	if (!nr)
		return -ENOMEM;
	c->regions = nr;
	c->cap = cap;
	return 0;
}

int regions_add(struct uvmpager *c, const struct region *r)
{
	size_t i;
	int err;

	pthread_mutex_lock(&c->regions_lock);
	err = reserve(c, c->nregions + 1);
	if (err == 0) {
		i = first_after(c, r->addr);
		memmove(&c->regions[i + 1], &c->regions[i], (c->nregions - i) * sizeof(*r));
		c->regions[i] = *r;
		c->nregions++;
	}
	pthread_mutex_unlock(&c->regions_lock);
	return err;
}

void regions_remove(struct uvmpager *c, uintptr_t addr, size_t len)
{
	uintptr_t end = addr + len;
	size_t i;

	pthread_mutex_lock(&c->regions_lock);
	i = first_after(c, addr);
	while (i < c->nregions && c->regions[i].addr < end) {
		struct region *r = &c->regions[i];
		uintptr_t rend = r->addr + r->len;

		if (r->addr >= addr && rend <= end) {
			memmove(r, r + 1, (c->nregions - i - 1) * sizeof(*r));
			c->nregions--;
			continue;
		}
		if (r->addr < addr && rend > end && reserve(c, c->nregions + 1) == 0) {
			/* a hole in the middle: the tail becomes a region of its own */
			r = &c->regions[i];
			memmove(r + 2, r + 1, (c->nregions - i - 1) * sizeof(*r));
			r[1] = r[0];
			r[1].addr = end;
			r[1].len = rend - end;
			r->len = addr - r->addr;
			c->nregions++;
			break;
		}
		if (r->addr < addr)
			r->len = addr - r->addr;
		else {
			r->len = rend - end;
			r->addr = end;
		}
		i++;
	}
	pthread_mutex_unlock(&c->regions_lock);
}

bool regions_find(struct uvmpager *c, uintptr_t addr, struct region *out)
{
	bool found = false;
	size_t i;

	pthread_mutex_lock(&c->regions_lock);
	i = first_after(c, addr);
	if (i < c->nregions && c->regions[i].addr <= addr) {
		*out = c->regions[i];
		found = true;
	}
	pthread_mutex_unlock(&c->regions_lock);
	return found;
}

int regions_move(struct uvmpager *c, uintptr_t old_addr, uintptr_t new_addr, size_t new_len)
{
	struct region r;

	if (!regions_find(c, old_addr, &r) || r.addr != old_addr)
		return -ENOENT;
	regions_remove(c, r.addr, r.len);
	r.addr = new_addr;
	r.len = new_len;
	return regions_add(c, &r);
}

void regions_wake_all(struct uvmpager *c)
{
	pthread_mutex_lock(&c->regions_lock);
	for (size_t i = 0; i < c->nregions; i++)
		uffd_wake(c->uffd, (void *)c->regions[i].addr, c->regions[i].len);
	pthread_mutex_unlock(&c->regions_lock);
}

void regions_clear(struct uvmpager *c)
{
	free(c->regions);
	c->regions = NULL;
	c->nregions = c->cap = 0;
}
