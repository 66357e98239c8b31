/*
 * The pin table (protocol.h): this process tells the daemon which of its
 * managed pages the kernel may hold pinned for a while (an O_DIRECT read
 * in flight into them), so that it keeps them in memory meanwhile.
 *
 * Lock-free and async-signal-safe: a read in a signal handler gets an
 * entry of its own. Entries are claimed by compare-and-swap on len.
 */
#include <errno.h>
#include <sched.h>
#include <time.h>

#include "client/client_impl.h"

/* After this many full scans of the table, sleep between tries. */
#define PIN_SPINS 16

/*
 * The daemon is taking pages out of the memfd: a pin taken now could
 * hold a page that is on its way out. Its fences are short; a daemon
 * that is gone leaves the word set, and then nothing is fenced any more.
 */
static void wait_fence(struct uvmpager *c, struct uvmp_pin *t)
{
	struct timespec pause = { .tv_nsec = 20 * 1000 };

	for (unsigned round = 0; __atomic_load_n(UVMP_PIN_FENCING(t), __ATOMIC_SEQ_CST); round++) {
		if (round >= PIN_SPINS && !uvmpager_alive(c))
			return;
		if (round < PIN_SPINS)
			sched_yield();
		else
			nanosleep(&pause, NULL);
	}
}

int uvmpager_pin_begin(struct uvmpager *c, const void *addr, size_t len)
{
	struct timespec pause = { .tv_nsec = 50 * 1000 };
	struct uvmp_pin *t;

	if (!c || !len)
		return -EINVAL;
	t = c->pintab;
	if (!t)
		return -ENOTCONN;
	for (unsigned round = 0;; round++) {
		for (int i = 0; i < UVMP_PIN_ENTRIES; i++) {
			uint64_t zero = 0;

			if (__atomic_load_n(&t[i].len, __ATOMIC_RELAXED) ||
			    !__atomic_compare_exchange_n(&t[i].len, &zero, UVMP_PIN_CLAIMED, false,
							 __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
				continue;
			__atomic_store_n(&t[i].addr, (uint64_t)(uintptr_t)addr, __ATOMIC_RELAXED);
			/*
			 * Before the syscall that pins, and before the look at
			 * the fencing word (protocol.h): the daemon sees this
			 * entry, or we see its fence and wait for its end.
			 */
			__atomic_store_n(&t[i].len, (uint64_t)len, __ATOMIC_SEQ_CST);
			wait_fence(c, t);
			return i;
		}
		/*
		 * Full: every entry is a syscall in flight, which ends. Never
		 * go ahead unmarked: the read could lose its data.
		 */
		if (!uvmpager_alive(c))
			return -ENOTCONN;
		if (round < PIN_SPINS)
			sched_yield();
		else
			nanosleep(&pause, NULL);
	}
}

void uvmpager_pin_end(struct uvmpager *c, int slot)
{
	if (!c || !c->pintab || slot < 0 || slot >= UVMP_PIN_ENTRIES)
		return;
	__atomic_store_n(&c->pintab[slot].len, 0, __ATOMIC_RELEASE);
}

bool uvmpager_moved_parts(const struct uvmpager *c)
{
	return c && c->pintab && __atomic_load_n(UVMP_PIN_MOVED(c->pintab), __ATOMIC_ACQUIRE);
}
