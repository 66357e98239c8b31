/*
 * The shim's life cycle: connecting in the constructor, the arena's
 * segments as daemon objects, the daemon going away, and fork(2).
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "client/rawsys.h"
#include "common/util.h"
#include "shim/heap.h"
#include "shim/shim.h"
#include "uvmpager/uvmpager.h"

#define DEFAULT_MIN_SIZE (1UL << 20)
#define DEFAULT_SEG_SIZE (1UL << 30)
/* How often shim_watch looks at the resident memory outside the budget. */
#define WATCH_NS (1000ULL * 1000 * 1000)
/* The least of it warned about (a quarter of the budget if that is more). */
#define DEFAULT_OUTSIDE_MAX (64ULL << 20)
/* After a segment could not be made, do not ask again for a while. */
#define SEG_RETRY_NS (1000ULL * 1000 * 1000)

struct shim shim = { .min_size = SIZE_MAX, .map_min = SIZE_MAX };
__thread unsigned shim_busy __attribute__((tls_model("initial-exec")));

static uint64_t seg_retry_at;       /* under the arena's lock */

/*
 * Locking across fork(2). pthread_atfork's handlers run in the forking
 * thread, and any number of threads may fork at once, while fk below is
 * one for the process. So fork_prepare takes fork_lock before anything
 * else (before touching fk, before the arena's lock), and the fork's own
 * fork_parent or fork_child lets it go last: from prepare to parent or
 * child, one fork at a time owns fk, the arena's lock and the client's
 * locks (uvmpager_fork_prepare holds c->lock and c->regions_lock until
 * uvmpager_fork_parent). Another forking thread waits in its prepare
 * handler, holding none of them. glibc runs the parent handlers when the
 * fork failed too, so every prepare is paired. In the child the forking
 * thread is the only one: fork_lock, held by its twin in the parent, is
 * initialised anew; the arena's lock is released by this same thread.
 */
static pthread_mutex_t fork_lock = PTHREAD_MUTEX_INITIALIZER;
/*
 * The heap's arena is not locked across fork: jemalloc calls its hooks
 * (which take that lock) with its own locks held, and its fork handler,
 * registered before ours, runs after our prepare: holding the heap's
 * lock there deadlocked against a thread inside a hook (torture seed
 * 674644097). Heap segments are only ever added, each under the client's
 * lock, which uvmpager_fork_prepare holds: the child's table and the
 * daemon's clones agree. See heap_fork_child for the lock in the child.
 */

/* What the prepare handler left for the parent and child handlers; under fork_lock. */
static struct {
	bool locked;                /* the arena's lock is held across the fork */
	bool alive;                 /* the daemon was there before the fork */
	bool armed;                 /* the daemon cloned our objects */
	bool fresh;                 /* nothing to copy: the child just connects */
	int err;                    /* why not */
	uint64_t token;
	/*
	 * The child sends its pid on sv[1]; the parent answers once the
	 * daemon knows it. A socket, not a pipe: MSG_NOSIGNAL, so a peer
	 * that died costs no SIGPIPE.
	 */
	int sv[2];
} fk = { .sv = { -1, -1 } };

static void say(const char *fmt, va_list ap)
{
	char buf[512];
	int n, m;

	n = snprintf(buf, sizeof(buf), "uvmpager[%d]: ", (int)getpid());
	m = vsnprintf(buf + n, sizeof(buf) - (size_t)n - 1, fmt, ap);
	n = m < 0 ? n : MIN(n + m, (int)sizeof(buf) - 2);
	buf[n++] = '\n';
	if (write(STDERR_FILENO, buf, (size_t)n) < 0) {
		/* nowhere else to say it */
	}
}

void shim_debug(const char *fmt, ...)
{
	va_list ap;

	if (!shim.debug)
		return;
	va_start(ap, fmt);
	say(fmt, ap);
	va_end(ap);
}

static void __attribute__((format(printf, 1, 2))) warn(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	say(fmt, ap);
	va_end(ap);
}

void shim_unmanaged(const char *what_fmt, ...)
{
	static atomic_bool said;
	char what[256];
	va_list ap;

	if (atomic_load_explicit(&said, memory_order_relaxed) || atomic_exchange(&said, true))
		return;
	va_start(ap, what_fmt);
	vsnprintf(what, sizeof(what), what_fmt, ap);
	va_end(ap);
	warn("%s is not managed: it runs outside the %llu MiB budget (said once)", what,
	     (unsigned long long)(shim.budget_granted >> 20));
}

void shim_warn_once(const char *fmt, ...)
{
	static atomic_bool said;
	va_list ap;

	if (atomic_load_explicit(&said, memory_order_relaxed) || atomic_exchange(&said, true))
		return;
	va_start(ap, fmt);
	say(fmt, ap);
	va_end(ap);
}

/* glibc's end of the brk heap */
extern void *__curbrk;

/* The program's private anonymous resident memory (RssAnon), in bytes; 0 if unknown. */
static uint64_t rss_anon(void)
{
	char buf[2048], *at;
	long n;
	int fd;

	/* not read(2): ours is interposed (io.c) */
	fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = syscall(SYS_read, fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	at = strstr(buf, "RssAnon:");
	return at ? strtoull(at + 8, NULL, 10) << 10 : 0;
}

/*
 * Managed pages are shared memory, so RssAnon is what the budget does
 * not cover: glibc's heap of small blocks, memory mapped by raw system
 * calls or with flags the arena does not serve, stacks. Looked at from
 * slow paths, once a second at most; past shim.outside_max, said once.
 */
void shim_watch(void)
{
	static _Atomic uint64_t next;
	uint64_t now, at, rss;
	uintptr_t heap;

	if (shim_busy || !shim_owner())
		return;
	/* glibc's main heap, without a system call: a short program is told too */
	heap = (uintptr_t)__curbrk - shim.brk_start;
	if (shim.brk_start && heap > shim.outside_max && heap < (1ULL << 46)) {
		shim_unmanaged("glibc's heap of %llu MiB (blocks under %zu bytes)",
			       (unsigned long long)(heap >> 20), shim.min_size);
		return;
	}
	now = now_ns();
	at = atomic_load_explicit(&next, memory_order_relaxed);
	if (now < at || !atomic_compare_exchange_strong(&next, &at, now + WATCH_NS))
		return;
	rss = rss_anon();
	if (rss > shim.outside_max)
		shim_unmanaged("%llu MiB of this program's memory (glibc's heap of blocks under %zu "
			       "bytes, or memory mapped behind the shim's back)",
			       (unsigned long long)(rss >> 20), shim.min_size);
}

/* --- the arena's segments: one anonymous object each --- */

static int seg_create(void *ctx, size_t size, void **addr)
{
	uint64_t id = 0, now = now_ns();
	int r;

	if (now < seg_retry_at)
		return -EAGAIN;
	shim_busy++;
	r = uvmpager_anon_create(shim.client, size, 0, addr, &id);
	shim_busy--;
	if (r < 0) {
		seg_retry_at = now + SEG_RETRY_NS;
		if (r == -EDQUOT)
			shim_unmanaged("memory past this user's max-objects-per-user "
				       "(uvmpagerd refused a new segment)");
		shim_debug("no new segment of %zu bytes: %s", size, strerror(-r));
		return r;
	}
	shim_debug("segment %p, %zu bytes: object %llu", *addr, size, (unsigned long long)id);
	return 0;
}

static void seg_destroy(void *ctx, void *addr, size_t size)
{
	int r;

	shim_busy++;
	r = uvmpager_anon_destroy(shim.client, addr);
	shim_busy--;
	if (r == -ENOENT || r == -EINVAL)
		raw_munmap(addr, size);
	shim_debug("segment %p, %zu bytes, gone", addr, size);
}

static int seg_release(void *ctx, void *addr, size_t len)
{
	int r;

	shim_busy++;
	r = shim.client ? uvmpager_release(shim.client, addr, len) : -ENOTCONN;
	shim_busy--;
	/*
	 * With the daemon gone these pages will never be handed out again
	 * (the arena keeps them LOST); give their memory back at least.
	 */
	if (r == -ENOTCONN && shim.client)
		raw_madvise(addr, len, MADV_REMOVE);
	return r;
}

static void seg_protect(void *ctx, void *addr, size_t len)
{
	raw_mprotect(addr, len, PROT_READ | PROT_WRITE);
}

static const struct arena_ops seg_ops = {
	.seg_create = seg_create,
	.seg_destroy = seg_destroy,
	.release = seg_release,
	.protect = seg_protect,
};

/* --- allocation --- */

static void daemon_gone(void)
{
	if (atomic_exchange(&shim.gone, true))
		return;
	/*
	 * Pages of new blocks would fault on a userfaultfd nobody serves
	 * but our fail-closed agent, which cannot tell them from swapped
	 * ones. New memory comes from glibc from now on.
	 */
	arena_close(shim.arena);
	shim_debug("the daemon is gone: new memory is unmanaged");
}

bool shim_can_alloc(void)
{
	if (shim_busy || !shim_owner())
		return false;
	if (!uvmpager_alive(shim.client)) {
		daemon_gone();
		return false;
	}
	return true;
}

bool shim_heap_can_alloc(void)
{
	if (shim_busy || !atomic_load_explicit(&shim.ready, memory_order_acquire) ||
	    atomic_load_explicit(&shim.gone, memory_order_relaxed))
		return false;
	if (!uvmpager_alive(shim.client)) {
		daemon_gone();
		return false;
	}
	return true;
}

void *shim_alloc(size_t len, size_t align)
{
	void *p;

	if (!shim_can_alloc() || arena_alloc(shim.arena, len, align, &p) < 0)
		return NULL;
	return p;
}

void shim_zero(void *addr, size_t len)
{
	unsigned char vec[256];
	bool alive;

	if (arena_zero(heap_owns(addr) ? heap_arena() : shim.arena, addr, len) == 0)
		return;
	alive = uvmpager_alive(shim.client);
	if (alive) {
		memset(addr, 0, len);
		return;
	}
	/*
	 * Without a daemon, a page absent from memory lived in swap and
	 * raises SIGBUS when touched, zeroing it included: zero the others.
	 */
	for (size_t off = 0; off < len; off += sizeof(vec) * PAGE_SIZE) {
		size_t n = MIN(len - off, sizeof(vec) * PAGE_SIZE);

		if (mincore((char *)addr + off, n, vec) < 0)
			continue;
		for (size_t i = 0; i < DIV_ROUND_UP(n, PAGE_SIZE); i++)
			if (vec[i] & 1)
				memset((char *)addr + off + i * PAGE_SIZE, 0, MIN(PAGE_SIZE, n - i * PAGE_SIZE));
	}
}

/* --- fork --- */

static void close_pair(int p[2])
{
	for (int i = 0; i < 2; i++) {
		if (p[i] >= 0)
			close(p[i]);
		p[i] = -1;
	}
}

static void count(void *ctx, void *addr, size_t size)
{
	(*(size_t *)ctx)++;
}

static void fork_prepare(void)
{
	size_t segments = 0;
	int r;

	/* first: another thread's fork may be between its prepare and parent */
	pthread_mutex_lock(&fork_lock);
	fk.locked = fk.alive = fk.armed = fk.fresh = false;
	fk.err = -ENOTCONN;
	if (shim_busy || !shim_owner())
		return;
	arena_lock(shim.arena);
	fk.locked = true;
	fk.alive = uvmpager_alive(shim.client);
	if (!fk.alive)
		return;
	/* a shell forking for each command should not pay for the protocol */
	arena_for_each_segment_locked(shim.arena, count, &segments);
	segments += heap_span() != 0;
	if (!segments) {
		fk.fresh = true;
		return;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fk.sv) < 0) {
		fk.err = -errno;
		return;
	}
	shim_busy++;
	r = uvmpager_fork_prepare(shim.client, &fk.token);
	shim_busy--;
	if (r < 0) {
		shim_debug("fork: the daemon cannot copy our memory: %s", strerror(-r));
		close_pair(fk.sv);
		fk.err = r;
		return;
	}
	fk.armed = true;
}

/* The parent side of a fork fork_prepare locked the arena for. */
static void parent_done(void)
{
	pid_t child = -1;
	ssize_t n;

	if (fk.armed) {
		/*
		 * atfork handlers are not told the child's pid: the child's
		 * handler sends it. EOF instead: fork failed, no child.
		 */
		close(fk.sv[1]);
		do
			n = recv(fk.sv[0], &child, sizeof(child), MSG_WAITALL);
		while (n < 0 && errno == EINTR);
		if (n != sizeof(child))
			child = -1;
		shim_busy++;
		uvmpager_fork_parent(shim.client, fk.token, child);
		shim_busy--;
		/* only now may the child adopt: the daemon has heard from us */
		if (send(fk.sv[0], "", 1, MSG_NOSIGNAL) < 0) {
			/* the child is gone; nothing waits */
		}
		close(fk.sv[0]);
		fk.sv[0] = fk.sv[1] = -1;
		shim_debug("fork: child %d gets a copy (token %llx)", (int)child,
			   (unsigned long long)fk.token);
	}
	fk.locked = fk.armed = fk.fresh = false;
	arena_unlock(shim.arena);
}

static void fork_parent(void)
{
	if (fk.locked)
		parent_done();
	pthread_mutex_unlock(&fork_lock);
}

static void reserve(void *ctx, void *addr, size_t size)
{
	size_t *count = ctx;

	/* nothing else may land where the parent's blocks were */
	raw_mmap(addr, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE |
		 MAP_FIXED_NOREPLACE, -1, 0);
	(*count)++;
}

/* The child side of a fork fork_prepare locked the arena for. */
static void child_done(void)
{
	bool fresh = fk.fresh;
	size_t segments = 0;
	pid_t me = getpid();
	char go;
	int r;

	if (fk.armed) {
		close(fk.sv[0]);
		if (send(fk.sv[1], &me, sizeof(me), MSG_NOSIGNAL) < 0) {
			/* the parent reads EOF and drops our copies; adoption fails below */
		}
		while (recv(fk.sv[1], &go, 1, 0) < 0 && errno == EINTR)
			;
		close(fk.sv[1]);
		fk.sv[0] = fk.sv[1] = -1;
		shim_busy++;
		r = uvmpager_fork_child(&shim.client, fk.token);
		shim_busy--;
	} else {
		shim_busy++;
		uvmpager_disconnect(shim.client);
		shim.client = NULL;
		r = fk.fresh ? uvmpager_connect(NULL, shim.budget, &shim.client) : fk.err;
		shim_busy--;
	}
	shim.pid = me;
	fk.locked = fk.armed = fk.fresh = false;
	if (r < 0) {
		/*
		 * The segments are MADV_DONTFORK: holes here, never the
		 * parent's memory. Keep them holes for good; the child runs
		 * unmanaged and a touch of an inherited block is SIGSEGV.
		 */
		shim.client = NULL;
		arena_for_each_segment_locked(shim.arena, reserve, &segments);
		if (heap_span())
			reserve(&segments, (void *)heap_range.lo, heap_span());
		atomic_store(&shim.gone, true);
	}
	heap_fork_child();
	arena_unlock(shim.arena);
	if (r < 0) {
		arena_close(shim.arena);
		/* said once: when the parent lost its daemon, its children know it */
		if (segments && fk.alive)
			warn("fork: the child has no copy of the parent's managed memory (%s); "
			     "its large blocks are inaccessible in the child", strerror(-r));
		else if (fresh)
			warn("cannot reach uvmpagerd (%s); running unmanaged", strerror(-r));
	} else {
		shim_debug(fresh ? "fork: connected anew" : "fork: adopted the parent's memory");
	}
}

static void fork_child(void)
{
	if (fk.locked)
		child_done();
	/* held by the parent's thread when the child was made: start afresh */
	pthread_mutex_init(&fork_lock, NULL);
}

/* --- start --- */

static int env_size(const char *name, uint64_t *out)
{
	const char *v = secure_getenv(name);

	if (!v || !*v)
		return 0;
	if (parse_size(v, out) < 0) {
		warn("%s=%s is not a size; running unmanaged", name, v);
		return -EINVAL;
	}
	return 1;
}

__attribute__((constructor)) static void shim_init(void)
{
	uint64_t min_size = 0, seg_size = DEFAULT_SEG_SIZE, outside_max = 0;
	struct uvmpager_info info;
	const char *v, *sock;
	int have_min, have_outside, r;
	bool use_heap;

	shim_busy++;
	v = secure_getenv("UVMPAGER_DEBUG");
	shim.debug = v && *v && strcmp(v, "0");
	v = secure_getenv("UVMPAGER_HEAP");
	use_heap = !v || strcmp(v, "0");
	if (env_size("UVMPAGER_BUDGET", &shim.budget) < 0 ||
	    (have_min = env_size("UVMPAGER_MIN_SIZE", &min_size)) < 0 ||
	    (have_outside = env_size("UVMPAGER_WARN_OUTSIDE", &outside_max)) < 0 ||
	    env_size("UVMPAGER_SEGMENT_SIZE", &seg_size) < 0)
		goto out;
	r = uvmpager_connect(NULL, shim.budget, &shim.client);
	if (r < 0) {
		/*
		 * One line for the whole run: the programs this one execs
		 * inherit the mark and keep quiet (a shell script would
		 * otherwise say it once per command).
		 */
		sock = secure_getenv("UVMPAGER_SOCKET");
		if (!secure_getenv("UVMPAGER_WARNED")) {
			if (r == -EDQUOT)
				warn("uvmpagerd at %s refused: this user has as many programs "
				     "connected as it may (max-clients-per-user); running unmanaged",
				     sock && *sock ? sock : UVMP_DEFAULT_SOCKET);
			else
				warn("cannot reach uvmpagerd at %s (%s); running unmanaged",
				     sock && *sock ? sock : UVMP_DEFAULT_SOCKET, strerror(-r));
			setenv("UVMPAGER_WARNED", "1", 1);
		}
		goto out;
	}
	uvmpager_get_info(shim.client, &info);
	if (!have_min)
		min_size = MAX(DEFAULT_MIN_SIZE, info.min_size);
	shim.min_size = MAX(min_size, PAGE_SIZE);
	shim.map_min = PAGE_SIZE;
	shim.budget_granted = info.budget;
	shim.outside_max = have_outside ? outside_max : MAX(DEFAULT_OUTSIDE_MAX, info.budget / 4);
	shim.seg_size = ALIGN_UP(MAX(seg_size, 2UL << 20), PAGE_SIZE);
	r = arena_create(&seg_ops, NULL, shim.seg_size, &shim.arena);
	if (r == 0 && use_heap) {
		/* before our fork handlers: jemalloc's own go in first, and run around ours */
		r = heap_create(&seg_ops);
		if (r < 0)
			shim_debug("no heap (%s): small blocks stay in glibc's", strerror(-r));
		r = 0;
	}
	if (r == 0)
		r = -pthread_atfork(fork_prepare, fork_parent, fork_child);
	if (r < 0) {
		warn("cannot set up (%s); running unmanaged", strerror(-r));
		uvmpager_disconnect(shim.client);
		shim.client = NULL;
		shim.min_size = shim.map_min = SIZE_MAX;
		goto out;
	}
	shim.pid = getpid();
	shim.brk_start = (uintptr_t)__curbrk;
	atomic_store_explicit(&shim.ready, true, memory_order_release);
	shim_debug("client %llu, budget %llu, %s, segments of %zu",
		   (unsigned long long)info.client_id, (unsigned long long)info.budget,
		   heap_on() ? "every block from the heap" : "big blocks only", shim.seg_size);
out:
	shim_busy--;
}
