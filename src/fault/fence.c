/*
 * A program's REMOVE events against the page daemon's fences.
 *
 * The fence (pager/zap.c) punches pages from the memfd and puts their
 * data back: no event comes of it, so every REMOVE is the program's own
 * MADV_DONTNEED or MADV_REMOVE by raw syscall, meaning "these pages read
 * zeros from now on". One exception keeps data: a REMOVE read before a
 * fence and handled after it. The program's madvise returned when the
 * event was read, and if it was a refused MADV_FREE (these shared views
 * refuse it after sending the event) the program wrote on through its
 * ptes until our zap: the page holds those writes and no pte, and a
 * discard carried out then would throw them away. So every message is
 * stamped with the fence count when read, and the pieces of a REMOVE
 * that a fence begun after its stamp named keep their data (old data at
 * worst, never lost data); the last FENCE_LOG fences' ranges are kept to
 * tell.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "engine_impl.h"
#include "fault/uffd_compat.h"

/*
 * Did a fence begun after stamp name addr? *end: where that answer may
 * change. A stamp older than the log may have had any page zapped since.
 */
static bool zapped_since(const struct client *c, uint32_t stamp, uintptr_t addr, uintptr_t *end)
{
	uintptr_t next = UINTPTR_MAX;
	bool found = false;

	if (!stamp || stamp == c->fence_seq)
		return false;
	if (c->fence_seq - stamp >= FENCE_LOG)
		return true;
	for (unsigned k = 0; k < FENCE_LOG; k++) {
		const struct fence_logged *f = &c->fence_log[k];

		if ((int32_t)(f->seq - stamp) <= 0)
			continue;
		for (unsigned i = 0; i < f->n; i++) {
			const struct engine_range *r = &f->r[i];

			if (addr >= r->addr && addr < r->addr + r->len) {
				found = true;
				next = MIN(next, r->addr + r->len);
			} else if (r->addr > addr) {
				next = MIN(next, r->addr);
			}
		}
	}
	*end = MIN(*end, next);
	return found;
}

void fence_remove_user_parts(struct client *c, const struct uffd_msg *m,
			     void (*fn)(void *arg, uintptr_t s, uintptr_t e), void *arg)
{
	uintptr_t start = m->arg.remove.start, end = m->arg.remove.end;

	while (start < end) {
		uintptr_t next = end;

		if (!zapped_since(c, m->reserved3, start, &next))
			fn(arg, start, next);
		start = next;
	}
}

void fence_stamp(struct client *c, struct uffd_msg *msgs, int n)
{
	for (int i = 0; i < n; i++) {
		msgs[i].reserved3 = c->fence_seq;
		/* a part of a view may become an object the shim does not know */
		if (msgs[i].event == UFFD_EVENT_UNMAP)
			c->unmaps_pending++;
		if (msgs[i].event == UFFD_EVENT_REMAP) {
			c->remaps_pending++;
			pinned_moved_parts(c, 0);
		}
	}
}

void fence_log_note(struct client *c, const struct engine_range *r, unsigned n)
{
	struct fence_logged *f;

	n = MIN(n, (unsigned)ENGINE_FENCE_MAX);
	/* 0 is "no stamp" (a message not read through the fault service) */
	if (++c->fence_seq == 0)
		c->fence_seq = 1;
	f = &c->fence_log[c->fence_seq % FENCE_LOG];
	f->seq = c->fence_seq;
	f->n = n;
	memcpy(f->r, r, n * sizeof(*r));
}
