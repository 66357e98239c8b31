/*
 * torture: a seeded random-operation torture test for memory managed by
 * uvmpagerd through libuvmpager-preload.so (in the spirit of fsx).
 *
 * What it proves: whatever a program does to its big blocks (write, read,
 * sweep past the budget, fork, fork+exec, realloc, mremap, munmap of a
 * part, madvise, mprotect, the same calls as raw system calls, O_DIRECT
 * and io_uring fixed-buffer reads into them, signal handlers touching
 * them mid-fault), every page it reads holds exactly what the model says
 * it must: never zeros, never a stale generation, never another page.
 * With the daemon SIGKILLed mid-run (--mode sigkill) a page is either
 * correct or raises SIGBUS; with SIGTERM (--mode sigterm) nothing is lost.
 *
 * Every page of a block is self-checking: a header (magic, block, page,
 * generation, block epoch, process) and a body derived from it. The
 * expected state of every page (generation, zeros, either, hole ...) is
 * kept in memory mapped with raw system calls, which the shim never
 * manages. Each block belongs to one thread, the only one to change it;
 * other threads read it through a per-page sequence count, so even their
 * reads are checked exactly.
 *
 * It runs plain too (no LD_PRELOAD): that must pass, and is what
 * validates the model itself.
 *
 * Replay: the seed is printed first; `torture --seed N` with the same
 * --procs/--threads/--ops/--mib/--no/--only runs the same operations in
 * each thread (the interleaving of threads is up to the scheduler).
 * Narrow a failure with --only or --no (op class names: --list).
 *
 * Exit: 0 all verified, 1 a mismatch (or an unexpected signal), 2 usage or
 * setup error, 3 (only --mode sigkill|sigterm) a libc call ran into the
 * daemon's absence and the program stopped early, as documented.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <liburing.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PG 4096UL
#define KiB 1024UL
#define MiB (1024UL * KiB)
#define MAX_THREADS 16
#define MAX_PROCS 16
#define BLK_PER_THREAD 3
#define MAX_BLOCKS (MAX_THREADS * BLK_PER_THREAD)
#define BLK_CAP (64 * MiB / PG)      /* most pages a block may have */
#define MIN_BLK_PAGES 16             /* 64 KiB: UVMPAGER_MIN_SIZE in the runner */
#define SIG_PAGES 16                 /* the signal handler's own block: 64 KiB */
#define RING 20                      /* ops remembered per thread */
#define IO_PAGES 64                  /* largest O_DIRECT / io_uring read */
#define MAGIC 0x70727475u            /* "utrp" */

/* --- op classes --- */

enum op {
	OP_WRITE, OP_READ, OP_RUN, OP_SWEEP, OP_XREAD, OP_FORK, OP_FORKEXEC,
	OP_FORKC, OP_REALLOC, OP_MREMAP, OP_MUNMAP, OP_DONTNEED, OP_FREE,
	OP_MPROTECT, OP_RAW, OP_RAWMREMAP, OP_RAWUNMAP, OP_ODIRECT, OP_URING,
	OP_SIGNAL, OP_RENEW, OP_FORKX, OP_NR,
	OP_INIT = OP_NR, OP_FINAL, OP_HANDLER, OP_CHILD, /* not drawn */
};

static const struct {
	const char *name;
	unsigned weight;
	const char *what;
} ops[] = {
	[OP_WRITE] = { "write", 20, "rewrite 1-4 own pages with the next generation" },
	[OP_READ] = { "read", 20, "verify one own page" },
	[OP_RUN] = { "run", 8, "verify a run of up to 256 own pages" },
	[OP_SWEEP] = { "sweep", 2, "write and/or verify every own page (more than the budget)" },
	[OP_XREAD] = { "xread", 8, "verify a page of another thread's block (seqcount)" },
	[OP_FORK] = { "fork", 1, "fork with the other threads held between ops; the child verifies, writes, verifies" },
	[OP_FORKEXEC] = { "forkexec", 1, "fork then exec /bin/true or this program's --child-check" },
	[OP_FORKC] = { "forkc", 1, "fork while the other threads keep writing; the child checks what it got" },
	[OP_REALLOC] = { "realloc", 3, "realloc a malloc block bigger or smaller" },
	[OP_MREMAP] = { "mremap", 3, "mremap an mmap block: shrink, grow, move (MAYMOVE|FIXED)" },
	[OP_MUNMAP] = { "munmap", 2, "munmap part of an mmap block (tail or a hole)" },
	[OP_DONTNEED] = { "dontneed", 2, "madvise MADV_DONTNEED: reads zeros" },
	[OP_FREE] = { "free", 2, "madvise MADV_FREE: old content or zeros" },
	[OP_MPROTECT] = { "mprotect", 2, "PROT_READ, verify, back to read-write" },
	[OP_RAW] = { "raw", 2, "syscall(SYS_madvise/SYS_mprotect) behind the shim's back" },
	[OP_RAWMREMAP] = { "rawmremap", 1, "syscall(SYS_mremap) an mmap block elsewhere, or part of it away and back" },
	[OP_RAWUNMAP] = { "rawunmap", 1, "syscall(SYS_munmap) part of a block, raw mmap fresh memory there, fill it" },
	[OP_ODIRECT] = { "odirect", 2, "O_DIRECT pread from a file into a block" },
	[OP_URING] = { "uring", 2, "io_uring READ_FIXED into a registered block buffer" },
	[OP_SIGNAL] = { "signal", 2, "start/stop a timer whose handler checks and writes pages of its own" },
	[OP_RENEW] = { "renew", 1, "free a block and allocate a new one (malloc, calloc or mmap, 64K-64M)" },
	[OP_FORKX] = { "forkx", 1, "fork+exec from any thread while others may fork too (concurrent forks)" },
	[OP_INIT] = { "init", 0, "" },
	[OP_FINAL] = { "final", 0, "" },
	[OP_HANDLER] = { "handler", 0, "" },
	[OP_CHILD] = { "child", 0, "" },
};

/* --- the model --- */

enum pstate {
	PS_ZERO,        /* reads zeros */
	PS_EXACT,       /* holds generation gen */
	PS_EITHER,      /* zeros or generation gen (MADV_FREE, raw DONTNEED) */
	PS_UNDEF,       /* never written, not promised zero (realloc's new tail) */
	PS_HOLE,        /* not mapped: never touched */
	PS_LOST,        /* raised SIGBUS (--mode sigkill): never touched again */
	PS_WINDOW,      /* a generation in [aux, gen], zeros if zok, or torn (then stable) */
	PS_STABLE,      /* torn at a racy fork: must keep checksum aux */
};

static const char *const pstate_name[] = {
	"zero", "exact", "either", "undef", "hole", "lost", "window", "stable",
};

enum bkind { BK_NONE, BK_MALLOC, BK_CALLOC, BK_MMAP };
static const char *const bkind_name[] = { "none", "malloc", "calloc", "mmap" };

struct block {
	pthread_rwlock_t lock;      /* write: the layout changes; read: another thread looks */
	int kind;
	int owner;                  /* thread index */
	char *base;
	size_t npages;
	uint32_t epoch;             /* bumped each time the block is allocated anew */
	bool holey;                 /* parts unmapped or replaced: no mremap/realloc */
	bool rawmoved;              /* moved by raw mremap: freed by raw munmap only */
	/* per page, in raw-mmapped memory; BLK_CAP entries each */
	uint32_t *gen;              /* generation written last (never goes back) */
	uint32_t *seq;              /* odd while the owner writes the page */
	uint32_t *aux;              /* PS_WINDOW: lowest generation; PS_STABLE: checksum */
	uint8_t *state;
	uint8_t *zok;               /* PS_WINDOW: zeros allowed */
	uint8_t *lastop;            /* op class that last changed the page */
};

struct phdr {
	uint32_t magic;
	uint32_t blk;
	uint32_t idx;
	uint32_t gen;
	uint32_t epoch;
	uint32_t proc;
	uint64_t sum;               /* mix of the above: the header checks itself */
};

struct ringent {
	uint64_t opno;
	int op;
	int blk;
	size_t a, b;
	long res;
};

struct tctx {
	int tid;
	uint64_t rng;
	uint64_t opno;
	uint64_t nops;
	int cur_op;
	int nblk;
	int blk[BLK_PER_THREAD];
	size_t quota;               /* pages all own blocks may have together */
	struct ringent ring[RING];
	unsigned ringpos;
	/* the signal handler's own pages */
	char *sigbase;
	uint32_t siggen[SIG_PAGES];
	uint8_t sigstate[SIG_PAGES];
	volatile unsigned sighits;
	timer_t timer;
	bool timer_ok, timer_on;
	/* I/O */
	int fd, dfd;
	struct io_uring ring_io;
	bool ring_ok;
	char *stage;                /* IO_PAGES pages, raw-mmapped */
	char *xbuf;                 /* one page, raw-mmapped: xread copies here */
	/* forkc snapshot, raw-mmapped, MAX_BLOCKS * BLK_CAP entries */
	uint32_t *snap_gen, *snap_seq;
	uint8_t *snap_state;
};

/* totals over every process of the run, in a shared raw mapping */
struct shared {
	uint64_t ops, forks, checked, sigbus, torn, xskipped;
	int failed;
};

enum mode { MODE_NORMAL, MODE_SIGKILL, MODE_SIGTERM };

static struct {
	uint64_t seed;
	int procs, threads;
	uint64_t ops_per_thread;
	double seconds;
	size_t mib;
	int mode;
	uint32_t mask;
	int child_ops;
	const char *tmpdir;
	const char *dead_flag;     /* the runner creates it once it killed the daemon */
	bool verbose;
} cfg = {
	.procs = 1, .threads = 2, .ops_per_thread = 2000, .mib = 96,
	.mode = MODE_NORMAL, .child_ops = 60,
};

static struct block blocks[MAX_BLOCKS];
static int nblocks;
static int proc_index;
static uint64_t proc_key;
static bool single;            /* a fork child: one thread, owns everything */
static bool in_child;
static struct shared *sh;
static pthread_rwlock_t world; /* read: an op runs; write: a quiesced fork */
static pthread_barrier_t start_barrier;
static pthread_mutex_t report_lock = PTHREAD_MUTEX_INITIALIZER;
static char self_exe[4096];
static char cmdline[2048];
static struct timespec t_start;

static __thread struct tctx *tl_t;
static __thread sigjmp_buf *tl_jb;
static __thread void *volatile tl_fault_addr;
static __thread volatile int tl_fault_sig;

/* --- small helpers --- */

static uint64_t mix64(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static uint64_t next(uint64_t *s)
{
	*s += 0x9e3779b97f4a7c15ULL;
	return mix64(*s);
}

static uint64_t rnd(uint64_t *s, uint64_t n)
{
	return n ? next(s) % n : 0;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Memory the shim never sees: the model must not live in what it tests. */
static void *raw_alloc(size_t len, bool shared)
{
	void *p = (void *)syscall(SYS_mmap, NULL, len, PROT_READ | PROT_WRITE,
				  (shared ? MAP_SHARED : MAP_PRIVATE) | MAP_ANONYMOUS | MAP_NORESERVE,
				  -1, 0);

	if (p == MAP_FAILED) {
		fprintf(stderr, "torture: raw mmap of %zu bytes: %s\n", len, strerror(errno));
		exit(2);
	}
	return p;
}

static bool daemon_dead(void)
{
	return cfg.mode != MODE_NORMAL && cfg.dead_flag && access(cfg.dead_flag, F_OK) == 0;
}

/* --- the page format --- */

static uint64_t hsum(const struct phdr *h)
{
	return mix64(proc_key ^ ((uint64_t)h->blk << 48) ^ ((uint64_t)h->idx << 20) ^
		     ((uint64_t)h->gen * 0x2545f4914f6cdd1dULL) ^ ((uint64_t)h->epoch << 36) ^
		     h->proc ^ h->magic);
}

static void fill_page(char *p, unsigned blk, size_t idx, uint32_t gen, uint32_t epoch)
{
	struct phdr h = {
		.magic = MAGIC, .blk = blk, .idx = (uint32_t)idx, .gen = gen,
		.epoch = epoch, .proc = (uint32_t)proc_index,
	};
	uint64_t *w = (uint64_t *)(p + sizeof(h));
	uint64_t v;

	h.sum = hsum(&h);
	v = mix64(h.sum);
	for (size_t i = 0; i < (PG - sizeof(h)) / 8; i++)
		w[i] = v + i * 0x9e3779b97f4a7c15ULL;
	memcpy(p, &h, sizeof(h));
}

enum pclass { PC_ZERO, PC_VALID, PC_TORN };

static const char *const pclass_name[] = { "zeros", "valid", "torn/garbage" };

/* What a page holds: zeros, a self-consistent page (its header in *h), or neither. */
static int classify(const char *p, struct phdr *h)
{
	const uint64_t *w = (const uint64_t *)(p + sizeof(*h));
	uint64_t v;

	memcpy(h, p, sizeof(*h));
	if (h->magic != MAGIC || h->sum != hsum(h)) {
		const uint64_t *q = (const uint64_t *)p;

		for (size_t i = 0; i < PG / 8; i++)
			if (q[i])
				return PC_TORN;
		return PC_ZERO;
	}
	v = mix64(h->sum);
	for (size_t i = 0; i < (PG - sizeof(*h)) / 8; i++)
		if (w[i] != v + i * 0x9e3779b97f4a7c15ULL)
			return PC_TORN;
	return PC_VALID;
}

static uint32_t page_crc(const char *p)
{
	uint64_t h = 0;

	for (size_t i = 0; i < PG / 8; i++)
		h = mix64(h ^ ((const uint64_t *)p)[i]);
	return (uint32_t)h ^ 1;     /* never 0 */
}

/* --- reporting --- */

static void print_ring(struct tctx *t)
{
	fprintf(stderr, "torture: last ops of proc %d thread %d (oldest first):\n", proc_index, t->tid);
	for (unsigned k = 0; k < RING; k++) {
		struct ringent *e = &t->ring[(t->ringpos + k) % RING];

		if (!e->opno && e->op == 0 && !e->a)
			continue;
		fprintf(stderr, "  #%" PRIu64 " %-9s block %d a %zu b %zu -> %ld\n", e->opno,
			ops[e->op].name, e->blk, e->a, e->b, e->res);
	}
}

static void replay_hint(void)
{
	fprintf(stderr, "torture: replay: %s --seed %" PRIu64 "\n", cmdline, cfg.seed);
}

static void __attribute__((noreturn)) die_fail(void)
{
	if (sh)
		__atomic_store_n(&sh->failed, 1, __ATOMIC_SEQ_CST);
	fflush(stdout);
	fflush(stderr);
	pthread_mutex_unlock(&report_lock);
	_exit(1);
}

/*
 * What a torn page is made of, to tell its causes apart: a write cut short
 * (the header's pattern, then zeros or an older generation), two pages
 * mixed, or garbage. Its header as found, whatever its checksum, and how
 * the body compares with the pattern that header promises.
 */
static void describe_torn(const char *p)
{
	const uint64_t *w = (const uint64_t *)(p + sizeof(struct phdr));
	size_t nw = (PG - sizeof(struct phdr)) / 8, match = 0, zero = 0, first = SIZE_MAX, last = 0;
	struct phdr h;
	uint64_t v;

	memcpy(&h, p, sizeof(h));
	v = mix64(h.sum);
	for (size_t k = 0; k < nw; k++) {
		if (w[k] == v + k * 0x9e3779b97f4a7c15ULL) {
			match++;
			continue;
		}
		zero += !w[k];
		if (k < first)
			first = k;
		last = k;
	}
	fprintf(stderr, "\ntorture:   torn: header magic %s sum %s (block %u page %u gen %u epoch %u proc %u);"
		" body words %zu: %zu match that header, %zu zero",
		h.magic == MAGIC ? "ok" : "bad", h.sum == hsum(&h) ? "ok" : "bad", h.blk, h.idx, h.gen,
		h.epoch, h.proc, nw, match, zero);
	if (first != SIZE_MAX)
		fprintf(stderr, ", others from word %zu to %zu", first, last);
}

static void __attribute__((noreturn)) mismatch(struct tctx *t, struct block *b, size_t i,
					      const char *p, int cls, const struct phdr *h,
					      const char *why)
{
	int bn = (int)(b - blocks);

	pthread_mutex_lock(&report_lock);
	fprintf(stderr,
		"torture: FAIL seed %" PRIu64 " proc %d%s thread %d op #%" PRIu64 " (%s): %s\n"
		"torture:   block %d (%s, epoch %u, %zu pages, owner %d%s%s) page %zu addr %p\n"
		"torture:   expected %s gen %u (window low %u) found %s",
		cfg.seed, proc_index, in_child ? " (fork child)" : "", t->tid, t->opno,
		ops[t->cur_op].name, why, bn, bkind_name[b->kind], b->epoch, b->npages, b->owner,
		b->holey ? ", holey" : "", b->rawmoved ? ", raw-moved" : "", i, (void *)p,
		pstate_name[b->state[i]], b->gen[i], b->aux[i], pclass_name[cls]);
	if (cls == PC_VALID)
		fprintf(stderr, " gen %u (header: block %u page %u epoch %u proc %u)", h->gen,
			h->blk, h->idx, h->epoch, h->proc);
	if (cls == PC_TORN)
		describe_torn(p);
	fprintf(stderr, "\ntorture:   page last changed by op class '%s'\n", ops[b->lastop[i]].name);
	print_ring(t);
	replay_hint();
	die_fail();
}

static void ring_add(struct tctx *t, int op, int blk, size_t a, size_t bb, long res)
{
	t->ring[t->ringpos] = (struct ringent){ t->opno, op, blk, a, bb, res };
	t->ringpos = (t->ringpos + 1) % RING;
}

/* The last ring entry: ops fill in their result as they go. */
static void ring_res(struct tctx *t, long res)
{
	t->ring[(t->ringpos + RING - 1) % RING].res = res;
}

static void __attribute__((noreturn, format(printf, 2, 3))) op_fail(struct tctx *t, const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&report_lock);
	fprintf(stderr, "torture: FAIL seed %" PRIu64 " proc %d%s thread %d op #%" PRIu64 " (%s): ",
		cfg.seed, proc_index, in_child ? " (fork child)" : "", t->tid, t->opno,
		ops[t->cur_op].name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	print_ring(t);
	replay_hint();
	die_fail();
}

/* --- signals: SIGBUS and SIGSEGV around page accesses --- */

/*
 * After a fault nobody expected: which block the address is in (by the
 * model) and what the kernel has mapped, so that a model gone wrong can
 * be told from memory gone wrong. Called from the fault handler on the
 * way to _exit: stdio is fair game there only because nothing returns.
 */
static void dump_layout(const void *addr)
{
	char buf[4096];
	ssize_t n;
	int fd;

	fprintf(stderr, "torture: blocks as the model has them (fault at %p):\n", addr);
	for (int bn = 0; bn < nblocks; bn++) {
		struct block *b = &blocks[bn];
		const char *end = b->base + b->npages * PG;
		bool in = (const char *)addr >= b->base && (const char *)addr < end;

		fprintf(stderr, "torture:   block %d %s owner %d [%p, %p) %zu pages%s%s%s",
			bn, bkind_name[b->kind], b->owner, (void *)b->base, (const void *)end,
			b->npages, b->holey ? " holey" : "", b->rawmoved ? " raw-moved" : "",
			in ? " <- fault" : "");
		if (in) {
			size_t i = (size_t)((const char *)addr - b->base) / PG;

			fprintf(stderr, " page %zu state %s gen %u last '%s'", i,
				pstate_name[b->state[i]], b->gen[i], ops[b->lastop[i]].name);
		}
		fputc('\n', stderr);
	}
	for (int k = 0; k < (in_child ? 2 : 1); k++) {
		char path[64];

		/* a fork child's parent waits for it: its maps are as the fork left them, near enough */
		snprintf(path, sizeof(path), "/proc/%d/maps", k ? (int)getppid() : (int)getpid());
		fprintf(stderr, "torture: %s (%s):\n", path, k ? "the parent" : "this process");
		fflush(stderr);
		fd = open(path, O_RDONLY);
		if (fd < 0)
			continue;
		while ((n = read(fd, buf, sizeof(buf))) > 0)
			if (write(2, buf, (size_t)n) < 0)
				break;
		close(fd);
	}
}

static void fault_handler(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	tl_fault_addr = si->si_addr;
	tl_fault_sig = sig;
	/* SIGSEGV is expected only in a fork child whose daemon is gone */
	if (tl_jb && (sig == SIGBUS || (in_child && cfg.mode != MODE_NORMAL)))
		siglongjmp(*tl_jb, sig);
	{
		char msg[256];
		struct tctx *t = tl_t;
		int n = snprintf(msg, sizeof(msg),
				 "torture: %s seed %" PRIu64 " proc %d: %s at %p outside a checked "
				 "access (thread %d op #%" PRIu64 " %s)\n",
				 cfg.mode == MODE_NORMAL ? "FAIL" : "STOP", cfg.seed, proc_index,
				 sig == SIGBUS ? "SIGBUS" : "SIGSEGV", si->si_addr, t ? t->tid : -1,
				 t ? t->opno : 0, t ? ops[t->cur_op].name : "-");

		if (write(2, msg, n) < 0) {
			/* nothing better to do */
		}
		if (t && cfg.mode == MODE_NORMAL) {
			print_ring(t);
			dump_layout(si->si_addr);
		}
		if (cfg.mode == MODE_NORMAL) {
			replay_hint();
			if (sh)
				sh->failed = 1;
		}
		/* sigkill: a libc call (realloc's copy) met a page only the dead daemon had */
		_exit(cfg.mode == MODE_NORMAL ? 1 : 3);
	}
}

/* A page access that raised SIGBUS: fatal unless the daemon may have been killed. */
static void page_bus(struct tctx *t, struct block *b, size_t i, const char *p, int sig)
{
	struct phdr h = { 0 };

	if (sig == SIGSEGV) {
		/* a fork child without a copy of the parent's blocks (daemon gone): documented */
		fprintf(stderr, "torture: fork child: block %d inaccessible (daemon gone), stopping\n",
			(int)(b - blocks));
		_exit(3);
	}
	if (cfg.mode != MODE_SIGKILL)
		mismatch(t, b, i, p, PC_TORN, &h, "SIGBUS on a page access");
	__atomic_add_fetch(&sh->sigbus, 1, __ATOMIC_RELAXED);
	b->state[i] = PS_LOST;
}

#define GUARD_BEGIN(sigvar) \
	sigjmp_buf jb_, *saved_jb_ = tl_jb; \
	int sigvar = sigsetjmp(jb_, 0); \
	if (!sigvar) { \
		tl_jb = &jb_;
#define GUARD_END() \
	} \
	tl_jb = saved_jb_;

/* --- page operations --- */

static char *page_addr(struct block *b, size_t i)
{
	return b->base + i * PG;
}

/* Is what page i holds (p, or a copy of it) what the model says? */
static void judge(struct tctx *t, struct block *b, size_t i, const char *p, int cls,
		  const struct phdr *h, const char *addr)
{
	int bn = (int)(b - blocks);
	bool own = cls == PC_VALID && h->blk == (uint32_t)bn && h->idx == i &&
		   h->epoch == b->epoch && h->proc == (uint32_t)proc_index;

	__atomic_add_fetch(&sh->checked, 1, __ATOMIC_RELAXED);
	switch (b->state[i]) {
	case PS_ZERO:
		if (cls != PC_ZERO)
			mismatch(t, b, i, addr, cls, h, "expected zeros");
		break;
	case PS_EXACT:
		if (!own || h->gen != b->gen[i])
			mismatch(t, b, i, addr, cls, h,
				 cls == PC_ZERO ? "zeros where data was written" :
				 own && h->gen < b->gen[i] ? "stale generation" :
				 "wrong content");
		break;
	case PS_EITHER:
		if (cls != PC_ZERO && (!own || h->gen != b->gen[i]))
			mismatch(t, b, i, addr, cls, h, "neither zeros nor the last generation");
		break;
	case PS_WINDOW:
		if (cls == PC_ZERO && b->zok[i])
			break;
		if (cls == PC_TORN && single) {
			/* written while the fork copied it: keep what we got, it must not change */
			__atomic_add_fetch(&sh->torn, 1, __ATOMIC_RELAXED);
			b->aux[i] = page_crc(p);
			b->state[i] = PS_STABLE;
			break;
		}
		if (!own || h->gen < b->aux[i] || h->gen > b->gen[i])
			mismatch(t, b, i, addr, cls, h, "outside the generations possible");
		if (single) {
			b->gen[i] = h->gen;
			b->state[i] = PS_EXACT;
		}
		break;
	case PS_STABLE:
		if (page_crc(p) != b->aux[i])
			mismatch(t, b, i, addr, cls, h, "a torn page changed after the fork");
		break;
	default:
		break;
	}
}

static bool checkable(struct block *b, size_t i)
{
	int s = b->state[i];

	return i < b->npages && s != PS_HOLE && s != PS_LOST && s != PS_UNDEF;
}

/* Verifies an own page (or any page in a fork child) in place. */
static void check_page(struct tctx *t, struct block *b, size_t i)
{
	char *p = page_addr(b, i);
	struct phdr h;
	int cls = PC_TORN;

	if (!checkable(b, i))
		return;
	{
		GUARD_BEGIN(sig)
		cls = classify(p, &h);
		GUARD_END()
		if (sig) {
			page_bus(t, b, i, p, sig);
			return;
		}
	}
	judge(t, b, i, p, cls, &h, p);
}

static void seq_begin(struct block *b, size_t i)
{
	__atomic_store_n(&b->seq[i], b->seq[i] + 1, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
}

static void seq_end(struct block *b, size_t i)
{
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	__atomic_store_n(&b->seq[i], b->seq[i] + 1, __ATOMIC_RELEASE);
}

/* The owner writes page i's next generation. */
static void write_page(struct tctx *t, struct block *b, size_t i, int op)
{
	char *p = page_addr(b, i);
	uint32_t g = b->gen[i] + 1;

	if (i >= b->npages || b->state[i] == PS_HOLE || b->state[i] == PS_LOST)
		return;
	seq_begin(b, i);
	/* the generation first: a racy fork that sees the odd count knows the newest */
	b->gen[i] = g;
	b->lastop[i] = (uint8_t)op;
	{
		GUARD_BEGIN(sig)
		fill_page(p, (unsigned)(b - blocks), i, g, b->epoch);
		GUARD_END()
		if (sig) {
			page_bus(t, b, i, p, sig);
			seq_end(b, i);
			return;
		}
	}
	b->state[i] = PS_EXACT;
	seq_end(b, i);
}

/* Sets a range's state after a call that changed it wholesale. */
static void set_range(struct block *b, size_t first, size_t n, int state, int op)
{
	for (size_t i = first; i < first + n && i < BLK_CAP; i++) {
		if (b->state[i] == PS_HOLE || b->state[i] == PS_LOST)
			continue;
		seq_begin(b, i);
		/* either the old content or zeros: only an exact page has old content we know */
		if (state == PS_EITHER && b->state[i] != PS_EXACT)
			b->state[i] = b->state[i] == PS_ZERO ? PS_ZERO : PS_UNDEF;
		else
			b->state[i] = (uint8_t)state;
		b->lastop[i] = (uint8_t)op;
		seq_end(b, i);
	}
}

/* --- block allocation --- */

static void lock_w(struct block *b)
{
	if (!single)
		pthread_rwlock_wrlock(&b->lock);
}

static void lock_r(struct block *b)
{
	if (!single)
		pthread_rwlock_rdlock(&b->lock);
}

static void unlock(struct block *b)
{
	if (!single)
		pthread_rwlock_unlock(&b->lock);
}

static size_t own_pages(struct tctx *t)
{
	size_t n = 0;

	for (int k = 0; k < t->nblk; k++)
		n += blocks[t->blk[k]].npages;
	return n;
}

/* Pages a block may grow to: its cap and what the thread's quota leaves. */
static size_t room(struct tctx *t, struct block *b)
{
	size_t used = own_pages(t) - b->npages;
	size_t max = t->quota > used ? t->quota - used : MIN_BLK_PAGES;

	if (max < MIN_BLK_PAGES)
		max = MIN_BLK_PAGES;
	return max < BLK_CAP ? max : BLK_CAP;
}

/* 64 KiB to 64 MiB, log-uniform, within limit */
static size_t draw_pages(uint64_t *r, size_t limit)
{
	size_t n = (size_t)MIN_BLK_PAGES << rnd(r, 11);

	n += rnd(r, n);
	if (n > limit)
		n = limit;
	if (n < MIN_BLK_PAGES)
		n = MIN_BLK_PAGES;
	return n > BLK_CAP ? BLK_CAP : n;
}

/*
 * A block of up to limit pages (full: exactly limit, every page but about
 * one in four written, so that the run starts well over the budget).
 */
static void block_alloc(struct tctx *t, struct block *b, uint64_t *r, size_t limit, bool full)
{
	size_t n = draw_pages(r, limit);
	int kind = BK_MALLOC + (int)rnd(r, 3);
	void *p;

	if (full)
		n = limit > BLK_CAP ? BLK_CAP : limit < MIN_BLK_PAGES ? MIN_BLK_PAGES : limit;

	switch (kind) {
	case BK_MALLOC:
		p = malloc(n * PG);
		break;
	case BK_CALLOC:
		p = calloc(n, PG);
		break;
	default:
		p = mmap(NULL, n * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			p = NULL;
		break;
	}
	if (!p)
		op_fail(t, "cannot allocate %zu bytes (%s): %s", n * PG, bkind_name[kind], strerror(errno));
	b->kind = kind;
	b->base = p;
	b->npages = n;
	b->epoch++;
	b->holey = b->rawmoved = false;
	/* malloc's memory is not promised zero: write it all before anyone reads */
	memset(b->state, kind == BK_MALLOC ? PS_UNDEF : PS_ZERO, BLK_CAP);
	memset(b->lastop, t->cur_op, BLK_CAP);
	if (kind == BK_MALLOC)
		for (size_t i = 0; i < n; i++)
			write_page(t, b, i, t->cur_op);
	else if (full)
		for (size_t i = 0; i < n; i++)
			if (mix64(cfg.seed ^ ((uint64_t)(b - blocks) << 32 | i)) % 4)
				write_page(t, b, i, t->cur_op);
}

/*
 * Unmaps [f, f + n) but not its holes: the kernel may have put something
 * else there since (our own model, say).
 */
static void unmap_runs(struct block *b, size_t f, size_t n, bool rawcall)
{
	for (size_t i = f; i < f + n;) {
		size_t j = i;

		if (b->state[i] == PS_HOLE) {
			i++;
			continue;
		}
		while (j < f + n && b->state[j] != PS_HOLE)
			j++;
		if (rawcall)
			syscall(SYS_munmap, page_addr(b, i), (j - i) * PG);
		else
			munmap(page_addr(b, i), (j - i) * PG);
		i = j;
	}
}

static void block_release(struct block *b)
{
	if (b->kind == BK_MMAP)
		unmap_runs(b, 0, b->npages, b->rawmoved);
	else
		free(b->base);
	b->base = NULL;
	b->npages = 0;
}

static void block_model_init(struct block *b, int owner)
{
	pthread_rwlockattr_t a;

	pthread_rwlockattr_init(&a);
	/* writers (layout changes) must not starve behind cross-readers */
	pthread_rwlockattr_setkind_np(&a, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&b->lock, &a);
	pthread_rwlockattr_destroy(&a);
	b->owner = owner;
	b->gen = raw_alloc(BLK_CAP * 4, false);
	b->seq = raw_alloc(BLK_CAP * 4, false);
	b->aux = raw_alloc(BLK_CAP * 4, false);
	b->state = raw_alloc(BLK_CAP, false);
	b->zok = raw_alloc(BLK_CAP, false);
	b->lastop = raw_alloc(BLK_CAP, false);
	memset(b->lastop, OP_INIT, BLK_CAP);
}

/* --- picking --- */

static struct block *own_block(struct tctx *t, uint64_t *r)
{
	return &blocks[t->blk[rnd(r, (uint64_t)t->nblk)]];
}

/* An own mmap block whose layout the op may change, or NULL. */
static struct block *own_mmap_block(struct tctx *t, uint64_t *r, bool whole)
{
	int k0 = (int)rnd(r, (uint64_t)t->nblk);

	for (int k = 0; k < t->nblk; k++) {
		struct block *b = &blocks[t->blk[(k0 + k) % t->nblk]];

		if (b->kind == BK_MMAP && b->npages && (!whole || (!b->holey && !b->rawmoved)))
			return b;
	}
	return NULL;
}

/* A sub-range [*first, *first + *n) with no holes or lost pages, or false. */
static bool pick_range(struct block *b, uint64_t *r, size_t maxn, size_t *first, size_t *n)
{
	size_t f, len;

	if (!b->npages)
		return false;
	f = rnd(r, b->npages);
	len = 1 + rnd(r, maxn);
	if (f + len > b->npages)
		len = b->npages - f;
	for (size_t i = f; i < f + len; i++)
		if (b->state[i] == PS_HOLE || b->state[i] == PS_LOST)
			return false;
	*first = f;
	*n = len;
	return true;
}

/* --- ops --- */

static void op_write(struct tctx *t, uint64_t *r)
{
	struct block *b = own_block(t, r);
	size_t i = rnd(r, b->npages), n = 1 + rnd(r, 4);

	ring_add(t, OP_WRITE, (int)(b - blocks), i, n, 0);
	for (size_t k = i; k < i + n && k < b->npages; k++)
		write_page(t, b, k, OP_WRITE);
}

static void op_read(struct tctx *t, uint64_t *r)
{
	struct block *b = own_block(t, r);
	size_t i = rnd(r, b->npages);

	ring_add(t, OP_READ, (int)(b - blocks), i, 1, 0);
	check_page(t, b, i);
}

static void op_run(struct tctx *t, uint64_t *r)
{
	struct block *b = own_block(t, r);
	size_t i = rnd(r, b->npages), n = 1 + rnd(r, 256);

	ring_add(t, OP_RUN, (int)(b - blocks), i, n, 0);
	for (size_t k = i; k < i + n && k < b->npages; k++)
		check_page(t, b, k);
}

static void verify_block(struct tctx *t, struct block *b)
{
	for (size_t i = 0; i < b->npages; i++)
		check_page(t, b, i);
}

/* Every own page, in order: together the threads' sweeps are well over the budget. */
static void op_sweep(struct tctx *t, uint64_t *r)
{
	int how = (int)rnd(r, 3);   /* 0 verify, 1 write, 2 write then verify */

	ring_add(t, OP_SWEEP, -1, (size_t)how, own_pages(t), 0);
	for (int k = 0; k < t->nblk; k++) {
		struct block *b = &blocks[t->blk[k]];

		for (size_t i = 0; i < b->npages; i++) {
			if (how)
				write_page(t, b, i, OP_SWEEP);
			else
				check_page(t, b, i);
		}
	}
	if (how == 2)
		for (int k = 0; k < t->nblk; k++)
			verify_block(t, &blocks[t->blk[k]]);
}

/* Another thread's page, copied between two equal even sequence counts. */
static void op_xread(struct tctx *t, uint64_t *r)
{
	int bn = (int)rnd(r, (uint64_t)nblocks);
	uint64_t pick = next(r);
	struct block *b = &blocks[bn];
	struct phdr h;
	size_t i;

	ring_add(t, OP_XREAD, bn, 0, 0, 0);
	if (single || b->owner == t->tid) {
		if (b->npages)
			check_page(t, b, pick % b->npages);
		return;
	}
	lock_r(b);
	if (!b->npages) {
		unlock(b);
		return;
	}
	i = pick % b->npages;
	ring_res(t, (long)i);
	for (int tries = 0; tries < 4; tries++) {
		uint32_t s1 = __atomic_load_n(&b->seq[i], __ATOMIC_ACQUIRE), s2;
		int cls = PC_TORN, sig;
		uint8_t st;

		if (s1 & 1)
			continue;
		st = b->state[i];
		if (st == PS_HOLE || st == PS_LOST || st == PS_UNDEF)
			break;
		{
			GUARD_BEGIN(sg)
			memcpy(t->xbuf, page_addr(b, i), PG);
			GUARD_END()
			sig = sg;
		}
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		s2 = __atomic_load_n(&b->seq[i], __ATOMIC_ACQUIRE);
		if (s1 != s2)
			continue;           /* the owner wrote meanwhile: try again */
		if (sig) {
			/* not our page to mark lost; the owner will meet it */
			if (cfg.mode != MODE_SIGKILL)
				mismatch(t, b, i, page_addr(b, i), PC_TORN, &h, "SIGBUS reading another thread's page");
			__atomic_add_fetch(&sh->sigbus, 1, __ATOMIC_RELAXED);
			break;
		}
		cls = classify(t->xbuf, &h);
		judge(t, b, i, t->xbuf, cls, &h, page_addr(b, i));
		unlock(b);
		return;
	}
	__atomic_add_fetch(&sh->xskipped, 1, __ATOMIC_RELAXED);
	unlock(b);
}

static int wait_status(pid_t pid)
{
	int st;

	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -1;
	if (WIFSIGNALED(st))
		return 128 + WTERMSIG(st);
	return WEXITSTATUS(st);
}

static void run_ops(struct tctx *t, uint64_t nops, double deadline);
static void timer_set(struct tctx *t, bool on, long usec);
static void verify_signal_pages(struct tctx *t);

/* A fork child: the process's only thread, owner of every page. */
static void __attribute__((noreturn)) child_main(struct tctx *t, uint64_t seed)
{
	single = true;
	in_child = true;
	t->timer_on = false;        /* timers do not survive fork */
	t->timer_ok = false;
	t->ring_ok = false;         /* the ring is the parent's */
	for (int bn = 0; bn < nblocks; bn++)
		for (size_t i = 0; i < blocks[bn].npages; i++)
			blocks[bn].seq[i] &= ~1u;
	t->rng = seed;
	for (int bn = 0; bn < nblocks; bn++)
		verify_block(t, &blocks[bn]);
	verify_signal_pages(t);
	run_ops(t, (uint64_t)cfg.child_ops, 0);
	for (int bn = 0; bn < nblocks; bn++)
		verify_block(t, &blocks[bn]);
	fflush(stdout);
	_exit(0);
}

/*
 * fork with this thread's timer signal held: under the shim the copy is
 * taken in the prepare handler, and a handler writing its page between
 * that copy and the fork proper would leave the child a model newer than
 * its memory (documented, not a bug).
 */
static pid_t fork_quiet(void)
{
	sigset_t set, old;
	pid_t pid;

	sigemptyset(&set);
	sigaddset(&set, SIGRTMIN + 1);
	pthread_sigmask(SIG_BLOCK, &set, &old);
	fflush(stdout);
	pid = fork();
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return pid;
}

static void child_result(struct tctx *t, pid_t pid, const char *what)
{
	int st = wait_status(pid);

	__atomic_add_fetch(&sh->forks, 1, __ATOMIC_RELAXED);
	ring_res(t, st);
	if (st == 0 || (st == 3 && cfg.mode != MODE_NORMAL))
		return;
	op_fail(t, "%s child %d exited with status %d%s", what, (int)pid, st,
		st == 1 ? " (its report is above)" : "");
}

static void op_fork(struct tctx *t, uint64_t *r)
{
	uint64_t cseed = next(r);
	pid_t pid;

	ring_add(t, OP_FORK, -1, 0, 0, 0);
	if (single)
		return;
	/* every other thread between two ops: the child's copy is exact */
	pthread_rwlock_unlock(&world);
	pthread_rwlock_wrlock(&world);
	pid = fork_quiet();
	if (pid < 0)
		op_fail(t, "fork: %s", strerror(errno));
	if (pid == 0)
		child_main(t, cseed);
	pthread_rwlock_unlock(&world);
	pthread_rwlock_rdlock(&world);
	child_result(t, pid, "fork");
}

/* Fork while the other threads write: their pages may be of any generation in the window. */
static void op_forkc(struct tctx *t, uint64_t *r)
{
	uint64_t cseed = next(r);
	pid_t pid;

	ring_add(t, OP_FORKC, -1, 0, 0, 0);
	if (single)
		return;
	if (!t->snap_gen) {
		t->snap_gen = raw_alloc((size_t)MAX_BLOCKS * BLK_CAP * 4, false);
		t->snap_seq = raw_alloc((size_t)MAX_BLOCKS * BLK_CAP * 4, false);
		t->snap_state = raw_alloc((size_t)MAX_BLOCKS * BLK_CAP, false);
	}
	/* no layout changes in flight (their owners wait), but page writes go on */
	for (int bn = 0; bn < nblocks; bn++)
		if (blocks[bn].owner != t->tid)
			lock_r(&blocks[bn]);
	for (int bn = 0; bn < nblocks; bn++) {
		struct block *b = &blocks[bn];
		size_t o = (size_t)bn * BLK_CAP;

		for (size_t i = 0; i < b->npages; i++) {
			uint32_t s1, s2;
			int tries = 0;

			/* generation and state as of one even count, if the owner lets us */
			do {
				s1 = __atomic_load_n(&b->seq[i], __ATOMIC_ACQUIRE);
				t->snap_gen[o + i] = __atomic_load_n(&b->gen[i], __ATOMIC_RELAXED);
				t->snap_state[o + i] = __atomic_load_n(&b->state[i], __ATOMIC_RELAXED);
				__atomic_thread_fence(__ATOMIC_SEQ_CST);
				s2 = __atomic_load_n(&b->seq[i], __ATOMIC_ACQUIRE);
			} while ((s1 != s2 || (s1 & 1)) && ++tries < 100);
			t->snap_seq[o + i] = s1 == s2 ? s1 : s1 | 1;
		}
	}
	pid = fork_quiet();
	if (pid < 0)
		op_fail(t, "fork: %s", strerror(errno));
	if (pid == 0) {
		for (int bn = 0; bn < nblocks; bn++) {
			struct block *b = &blocks[bn];
			size_t o = (size_t)bn * BLK_CAP;

			if (b->owner == t->tid)
				continue;
			for (size_t i = 0; i < b->npages; i++) {
				uint32_t s0 = t->snap_seq[o + i], g0 = t->snap_gen[o + i];
				int st0 = t->snap_state[o + i];

				if (s0 == b->seq[i] && !(s0 & 1))
					continue;   /* not written in the window: exact */
				if (b->state[i] == PS_HOLE || b->state[i] == PS_LOST)
					continue;
				b->lastop[i] = OP_FORKC;
				if (s0 & 1) {
					/* caught mid-write: the generation before it, or anything torn */
					b->aux[i] = g0 ? g0 - 1 : 0;
					b->zok[i] = 1;
				} else if (st0 == PS_UNDEF) {
					b->state[i] = PS_UNDEF;
					continue;
				} else {
					b->aux[i] = st0 == PS_ZERO ? g0 + 1 : g0;
					b->zok[i] = st0 == PS_ZERO || st0 == PS_EITHER;
				}
				b->state[i] = PS_WINDOW;
			}
		}
		child_main(t, cseed);
	}
	for (int bn = 0; bn < nblocks; bn++)
		if (blocks[bn].owner != t->tid)
			unlock(&blocks[bn]);
	child_result(t, pid, "forkc");
}

/* forkexec: the other threads held between ops; forkx: no such care, forks may race */
static void op_forkexec(struct tctx *t, uint64_t *r, int op)
{
	bool self = rnd(r, 2);
	uint64_t cseed = next(r);
	char arg[32];
	pid_t pid;

	ring_add(t, op, -1, self, 0, 0);
	if (single)
		return;
	snprintf(arg, sizeof(arg), "%" PRIu64, cseed);
	if (op == OP_FORKEXEC) {
		pthread_rwlock_unlock(&world);
		pthread_rwlock_wrlock(&world);
	}
	pid = fork_quiet();
	if (pid > 0 && op == OP_FORKEXEC) {
		pthread_rwlock_unlock(&world);
		pthread_rwlock_rdlock(&world);
	}
	if (pid < 0)
		op_fail(t, "fork: %s", strerror(errno));
	if (pid == 0) {
		if (self)
			execl(self_exe, self_exe, "--child-check", arg, (char *)NULL);
		else
			execl("/bin/true", "true", (char *)NULL);
		_exit(127);
	}
	child_result(t, pid, self ? "fork+exec --child-check" : "fork+exec /bin/true");
}

static void op_realloc(struct tctx *t, uint64_t *r)
{
	int k0 = (int)rnd(r, (uint64_t)t->nblk);
	uint64_t pick = next(r);
	struct block *b = NULL;
	size_t n, keep;
	char *p;

	for (int k = 0; k < t->nblk && !b; k++) {
		struct block *c = &blocks[t->blk[(k0 + k) % t->nblk]];

		if (c->kind == BK_MALLOC || c->kind == BK_CALLOC)
			b = c;
	}
	if (!b)
		return;
	n = draw_pages(&pick, room(t, b));
	ring_add(t, OP_REALLOC, (int)(b - blocks), b->npages, n, 0);
	lock_w(b);
	p = realloc(b->base, n * PG);
	if (!p)
		op_fail(t, "realloc to %zu bytes: %s", n * PG, strerror(errno));
	keep = n < b->npages ? n : b->npages;
	b->base = p;
	/* realloc's new tail is indeterminate (plain glibc may hand back old bytes) */
	for (size_t i = keep; i < n; i++) {
		b->state[i] = PS_UNDEF;
		b->lastop[i] = OP_REALLOC;
	}
	b->npages = n;
	unlock(b);
	/* what was kept must have come along: its first and last pages */
	for (size_t i = 0; i < keep && i < 8; i++)
		check_page(t, b, i);
	for (size_t i = keep > 8 ? keep - 8 : 0; i < keep; i++)
		check_page(t, b, i);
	for (size_t i = keep; i < n; i++)
		if (!rnd(&pick, 4))
			write_page(t, b, i, OP_REALLOC);
}

static void op_mremap(struct tctx *t, uint64_t *r)
{
	struct block *b = own_mmap_block(t, r, true);
	int how = (int)rnd(r, 4);   /* 0 shrink, 1 grow may move, 2 grow in place, 3 move */
	uint64_t pick = next(r);
	size_t old, n;
	void *p, *target = NULL;

	if (!b)
		return;
	old = b->npages;
	n = draw_pages(&pick, room(t, b));
	if (how == 0 && n >= old)
		n = old > MIN_BLK_PAGES ? MIN_BLK_PAGES + rnd(&pick, old - MIN_BLK_PAGES) : old;
	if ((how == 1 || how == 2) && n <= old) {
		size_t g = old + 1 + rnd(&pick, 64);

		n = g <= room(t, b) ? g : old;
	}
	ring_add(t, OP_MREMAP, (int)(b - blocks), old, n, how);
	lock_w(b);
	if (how == 3) {
		/* somewhere to move to: a reservation the shim does not manage */
		target = mmap(NULL, n * PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (target == MAP_FAILED)
			op_fail(t, "mmap PROT_NONE %zu: %s", n * PG, strerror(errno));
		p = mremap(b->base, old * PG, n * PG, MREMAP_MAYMOVE | MREMAP_FIXED, target);
	} else {
		p = mremap(b->base, old * PG, n * PG, how == 2 ? 0 : MREMAP_MAYMOVE);
	}
	if (p == MAP_FAILED) {
		if (how == 2 && errno == ENOMEM) {      /* no room in place: unchanged */
			unlock(b);
			ring_res(t, -ENOMEM);
			return;
		}
		op_fail(t, "mremap(%p, %zu, %zu, how %d): %s", (void *)b->base, old * PG, n * PG, how,
			strerror(errno));
	}
	b->base = p;
	b->npages = n;
	/* grown: fresh anonymous memory */
	for (size_t i = old; i < n; i++) {
		b->state[i] = PS_ZERO;
		b->lastop[i] = OP_MREMAP;
	}
	unlock(b);
	for (size_t i = 0; i < n && i < 8; i++)
		check_page(t, b, i);
	for (size_t i = (n < old ? n : old) > 8 ? (n < old ? n : old) - 8 : 0; i < n; i++)
		check_page(t, b, i);
}

static void op_munmap(struct tctx *t, uint64_t *r)
{
	struct block *b = own_mmap_block(t, r, false);
	bool tail = rnd(r, 2);
	size_t f, n;

	if (!b || b->npages <= MIN_BLK_PAGES || !pick_range(b, r, 64, &f, &n))
		return;
	if (tail) {
		f = f > MIN_BLK_PAGES ? f : MIN_BLK_PAGES;
		n = b->npages - f;
		if (!n)
			return;
	}
	ring_add(t, OP_MUNMAP, (int)(b - blocks), f, n, tail);
	lock_w(b);
	if (b->holey) {
		unmap_runs(b, f, n, b->rawmoved);
	} else if ((b->rawmoved ? syscall(SYS_munmap, page_addr(b, f), n * PG) :
				  munmap(page_addr(b, f), n * PG)) < 0) {
		op_fail(t, "munmap(%p, %zu): %s", (void *)page_addr(b, f), n * PG, strerror(errno));
	}
	if (tail && !b->holey) {
		b->npages = f;
	} else {
		b->holey = true;
		for (size_t i = f; i < f + n; i++) {
			b->state[i] = PS_HOLE;
			b->lastop[i] = OP_MUNMAP;
		}
	}
	unlock(b);
	if (f)
		check_page(t, b, f - 1);
	if (f + n < b->npages)
		check_page(t, b, f + n);
}

static void op_madvise(struct tctx *t, uint64_t *r, int op)
{
	struct block *b = own_mmap_block(t, r, false);
	bool rawcall = op == OP_RAW;
	int advice = op == OP_DONTNEED ? MADV_DONTNEED : op == OP_FREE ? MADV_FREE :
		     rnd(r, 2) ? MADV_DONTNEED : MADV_FREE;
	size_t f, n;
	int rc;

	if (!b || !pick_range(b, r, 512, &f, &n))
		return;
	ring_add(t, op, (int)(b - blocks), f, n, advice);
	lock_w(b);
	rc = rawcall ? (int)syscall(SYS_madvise, page_addr(b, f), n * PG, advice) :
		       madvise(page_addr(b, f), n * PG, advice);
	if (rc < 0 && (rawcall || b->rawmoved) && advice == MADV_FREE && errno == EINVAL) {
		/*
		 * Under the shim the block is shared memory, where the kernel
		 * refuses MADV_FREE: the content stays, which PS_EITHER allows.
		 * So is a block moved by raw mremap, whatever the call: the
		 * shim never saw the move (libuvmpager-preload(7), CAVEATS).
		 */
		static bool said;

		if (!said)
			fprintf(stderr, "torture: note: raw MADV_FREE refused (EINVAL): the block is not "
				"private anonymous memory (under the shim: a shared memfd)\n");
		said = true;
		rc = 0;
	}
	if (rc < 0)
		op_fail(t, "%smadvise(%p, %zu, %d): %s", rawcall ? "raw " : "", (void *)page_addr(b, f),
			n * PG, advice, strerror(errno));
	/*
	 * MADV_FREE: the old content until the kernel takes the page, zeros
	 * after. A raw MADV_DONTNEED behind the shim's back drops only page
	 * table entries of its shared memory: the content may stay.
	 */
	/*
	 * The shim never saw a block moved by raw mremap: libc's
	 * MADV_DONTNEED there is the raw call, racing the daemon's fences
	 * as above (libuvmpager-preload(7)).
	 */
	set_range(b, f, n, advice == MADV_DONTNEED && !rawcall && !b->rawmoved ? PS_ZERO : PS_EITHER,
		  op);
	unlock(b);
	for (size_t i = f; i < f + n; i++)
		check_page(t, b, i);
	/* written again after: the page is exact once more */
	for (size_t i = f; i < f + n; i += 1 + rnd(r, 8))
		write_page(t, b, i, op);
	for (size_t i = f; i < f + n; i++)
		check_page(t, b, i);
}

static void op_mprotect(struct tctx *t, uint64_t *r, bool rawcall)
{
	struct block *b = own_mmap_block(t, r, false);
	size_t f, n;
	int rc;

	if (!b || !pick_range(b, r, 256, &f, &n))
		return;
	ring_add(t, rawcall ? OP_RAW : OP_MPROTECT, (int)(b - blocks), f, n, PROT_READ);
	lock_w(b);
	rc = rawcall ? (int)syscall(SYS_mprotect, page_addr(b, f), n * PG, PROT_READ) :
		       mprotect(page_addr(b, f), n * PG, PROT_READ);
	if (rc < 0)
		op_fail(t, "mprotect(%p, %zu, PROT_READ): %s", (void *)page_addr(b, f), n * PG, strerror(errno));
	/* faults on read-only memory, swapped-out pages among them */
	for (size_t i = f; i < f + n; i++)
		check_page(t, b, i);
	rc = rawcall ? (int)syscall(SYS_mprotect, page_addr(b, f), n * PG, PROT_READ | PROT_WRITE) :
		       mprotect(page_addr(b, f), n * PG, PROT_READ | PROT_WRITE);
	if (rc < 0)
		op_fail(t, "mprotect(%p, %zu, RW): %s", (void *)page_addr(b, f), n * PG, strerror(errno));
	unlock(b);
	write_page(t, b, f, rawcall ? OP_RAW : OP_MPROTECT);
	write_page(t, b, f + n - 1, rawcall ? OP_RAW : OP_MPROTECT);
	for (size_t i = f; i < f + n; i++)
		check_page(t, b, i);
}

static void op_raw(struct tctx *t, uint64_t *r)
{
	if (rnd(r, 3))
		op_madvise(t, r, OP_RAW);
	else
		op_mprotect(t, r, true);
}

/*
 * Part of a block moved elsewhere by raw mremap, checked and written
 * there, and moved back: the daemon makes the part an object of its own,
 * which follows it back into its old object's hole (the two VMAs may
 * merge again). The block is one range still, but of two objects.
 */
static void op_rawmovepart(struct tctx *t, uint64_t *r, struct block *b)
{
	size_t f, n;
	char *tmp, *p, *base = b->base;

	if (!pick_range(b, r, 256, &f, &n))
		return;
	ring_add(t, OP_RAWMREMAP, (int)(b - blocks), f, n, 1);
	lock_w(b);
	tmp = (char *)syscall(SYS_mmap, NULL, n * PG, PROT_NONE,
			      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (tmp == MAP_FAILED)
		op_fail(t, "raw mmap PROT_NONE: %s", strerror(errno));
	p = (char *)syscall(SYS_mremap, page_addr(b, f), n * PG, n * PG,
			    MREMAP_MAYMOVE | MREMAP_FIXED, tmp);
	if (p == MAP_FAILED)
		op_fail(t, "raw mremap(%p, %zu) to %p: %s", (void *)page_addr(b, f), n * PG,
			(void *)tmp, strerror(errno));
	/* away: pages f.. live at p (the lock keeps every other reader off) */
	b->base = p - f * PG;
	for (size_t i = f; i < f + n; i += 1 + rnd(r, 4))
		check_page(t, b, i);
	for (size_t i = f; i < f + n; i += 1 + rnd(r, 4))
		write_page(t, b, i, OP_RAWMREMAP);
	b->base = base;
	if ((char *)syscall(SYS_mremap, p, n * PG, n * PG, MREMAP_MAYMOVE | MREMAP_FIXED,
			    page_addr(b, f)) != page_addr(b, f))
		op_fail(t, "raw mremap(%p, %zu) back to %p: %s", (void *)p, n * PG,
			(void *)page_addr(b, f), strerror(errno));
	b->holey = true;            /* maybe two mappings now: mremap would fail plain */
	unlock(b);
	for (size_t i = f; i < f + n; i++)
		check_page(t, b, i);
	for (size_t i = f; i < f + n; i += 1 + rnd(r, 8))
		write_page(t, b, i, OP_RAWMREMAP);
}

/* The block moved where the shim does not know; from now on freed with raw munmap. */
static void op_rawmremap(struct tctx *t, uint64_t *r)
{
	struct block *b = own_mmap_block(t, r, true);
	size_t old;
	void *p, *target;

	if (!b)
		return;
	if (rnd(r, 2)) {
		op_rawmovepart(t, r, b);
		return;
	}
	old = b->npages;
	ring_add(t, OP_RAWMREMAP, (int)(b - blocks), old, old, 0);
	lock_w(b);
	/* a move for sure: onto a raw reservation of the same size */
	target = (void *)syscall(SYS_mmap, NULL, old * PG, PROT_NONE,
				 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (target == MAP_FAILED)
		op_fail(t, "raw mmap PROT_NONE: %s", strerror(errno));
	p = (void *)syscall(SYS_mremap, b->base, old * PG, old * PG, MREMAP_MAYMOVE | MREMAP_FIXED, target);
	if (p == MAP_FAILED)
		op_fail(t, "raw mremap(%p, %zu) to %p: %s", (void *)b->base, old * PG, target, strerror(errno));
	b->base = p;
	b->rawmoved = true;
	unlock(b);
	for (size_t i = 0; i < b->npages; i += 1 + rnd(r, 16))
		check_page(t, b, i);
	check_page(t, b, b->npages - 1);
}

/* Raw munmap of part of a block, fresh raw private memory in its place: the daemon must leave it alone. */
static void op_rawunmap(struct tctx *t, uint64_t *r)
{
	struct block *b = own_mmap_block(t, r, false);
	size_t f, n;
	void *p;

	if (!b || !pick_range(b, r, 64, &f, &n))
		return;
	ring_add(t, OP_RAWUNMAP, (int)(b - blocks), f, n, 0);
	lock_w(b);
	if (syscall(SYS_munmap, page_addr(b, f), n * PG) < 0)
		op_fail(t, "raw munmap: %s", strerror(errno));
	p = (void *)syscall(SYS_mmap, page_addr(b, f), n * PG, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	if (p != page_addr(b, f))
		op_fail(t, "raw mmap at %p: %s", (void *)page_addr(b, f), p == MAP_FAILED ? strerror(errno) : "elsewhere");
	b->holey = true;            /* several mappings now: mremap would fail plain */
	set_range(b, f, n, PS_ZERO, OP_RAWUNMAP);
	unlock(b);
	for (size_t i = f; i < f + n; i++)
		check_page(t, b, i);
	for (size_t i = f; i < f + n; i++)
		write_page(t, b, i, OP_RAWUNMAP);
}

/* The file holds the next generation of [f, f + n); the op reads it into the block. */
static bool stage_file(struct tctx *t, struct block *b, size_t f, size_t n)
{
	for (size_t i = 0; i < n; i++)
		fill_page(t->stage + i * PG, (unsigned)(b - blocks), f + i, b->gen[f + i] + 1, b->epoch);
	if (pwrite(t->fd, t->stage, n * PG, 0) != (ssize_t)(n * PG))
		op_fail(t, "pwrite of the staging file: %s", strerror(errno));
	return true;
}

/* The kernel wrote [f, f + n) (res bytes of it) behind our back: set the model. */
static void io_done(struct tctx *t, struct block *b, size_t f, size_t n, long res, int op, const char *what)
{
	if (res != (long)(n * PG)) {
		if (cfg.mode == MODE_SIGKILL && (res == -EFAULT || res >= 0)) {
			/* the daemon is gone: any part of it may have landed, or not */
			for (size_t i = f; i < f + n; i++) {
				seq_begin(b, i);
				b->aux[i] = b->state[i] == PS_EXACT ? b->gen[i] : b->gen[i] + 1;
				b->zok[i] = b->state[i] != PS_EXACT;
				b->gen[i]++;
				b->state[i] = PS_WINDOW;
				b->lastop[i] = (uint8_t)op;
				seq_end(b, i);
			}
			return;
		}
		op_fail(t, "%s of %zu bytes into block %d page %zu (%p) returned %ld (%s)", what, n * PG,
			(int)(b - blocks), f, (void *)page_addr(b, f), res, res < 0 ? strerror((int)-res) : "short");
	}
	for (size_t i = f; i < f + n; i++) {
		seq_begin(b, i);
		b->gen[i]++;
		b->state[i] = PS_EXACT;
		b->lastop[i] = (uint8_t)op;
		seq_end(b, i);
	}
}

static void op_odirect(struct tctx *t, uint64_t *r)
{
	struct block *b = own_mmap_block(t, r, false);
	size_t f, n;
	ssize_t got;

	if (!b || t->dfd < 0 || !pick_range(b, r, IO_PAGES, &f, &n))
		return;
	ring_add(t, OP_ODIRECT, (int)(b - blocks), f, n, 0);
	stage_file(t, b, f, n);
	lock_w(b);                  /* the kernel writes these pages: readers keep off */
	do
		got = pread(t->dfd, page_addr(b, f), n * PG, 0);
	while (got < 0 && errno == EINTR);
	io_done(t, b, f, n, got < 0 ? -errno : got, OP_ODIRECT, "O_DIRECT pread");
	unlock(b);
	ring_res(t, got);
	for (size_t i = f; i < f + n; i++)
		check_page(t, b, i);
}

static void op_uring(struct tctx *t, uint64_t *r)
{
	struct block *b = own_mmap_block(t, r, false);
	struct io_uring_sqe *sqe;
	struct io_uring_cqe *cqe;
	struct iovec iov;
	size_t f, n;
	long res;
	int rc;

	if (!b || !t->ring_ok || t->dfd < 0 || !pick_range(b, r, IO_PAGES, &f, &n))
		return;
	ring_add(t, OP_URING, (int)(b - blocks), f, n, 0);
	stage_file(t, b, f, n);
	lock_w(b);
	iov.iov_base = page_addr(b, f);
	iov.iov_len = n * PG;
	rc = io_uring_register_buffers(&t->ring_io, &iov, 1);
	if (rc < 0) {
		unlock(b);
		if (cfg.mode == MODE_SIGKILL && rc == -EFAULT)
			return;
		op_fail(t, "io_uring_register_buffers(%p, %zu): %s", iov.iov_base, iov.iov_len, strerror(-rc));
	}
	/* pinned: now let the budget push other pages (and perhaps these) out */
	for (int k = 0; k < t->nblk; k++) {
		struct block *o = &blocks[t->blk[k]];

		if (o != b)
			for (size_t i = 0; i < o->npages && i < 2048; i++)
				check_page(t, o, i);
	}
	sqe = io_uring_get_sqe(&t->ring_io);
	io_uring_prep_read_fixed(sqe, t->dfd, iov.iov_base, (unsigned)iov.iov_len, 0, 0);
	rc = io_uring_submit(&t->ring_io);
	if (rc != 1)
		op_fail(t, "io_uring_submit: %d", rc);
	do
		rc = io_uring_wait_cqe(&t->ring_io, &cqe);
	while (rc == -EINTR);
	if (rc < 0)
		op_fail(t, "io_uring_wait_cqe: %s", strerror(-rc));
	res = cqe->res;
	io_uring_cqe_seen(&t->ring_io, cqe);
	io_uring_unregister_buffers(&t->ring_io);
	io_done(t, b, f, n, res, OP_URING, "io_uring READ_FIXED");
	unlock(b);
	ring_res(t, res);
	for (size_t i = f; i < f + n; i++)
		check_page(t, b, i);
}

/* --- the timer signal: its handler checks and writes pages of its own --- */

static void sig_page(struct tctx *t, unsigned k, bool wr)
{
	char *p = t->sigbase + k * PG;
	struct phdr h;
	int cls = PC_TORN;

	if (t->sigstate[k] == PS_LOST)
		return;
	{
		GUARD_BEGIN(sig)
		cls = classify(p, &h);
		if (wr && cls == PC_VALID && h.gen == t->siggen[k])
			fill_page(p, 1000u + (unsigned)t->tid, k, t->siggen[k] + 1, 0);
		GUARD_END()
		if (sig) {
			if (cfg.mode != MODE_SIGKILL) {
				char msg[160];
				int n = snprintf(msg, sizeof(msg),
						 "torture: FAIL seed %" PRIu64 ": SIGBUS on signal page %u of thread %d\n",
						 cfg.seed, k, t->tid);

				if (write(2, msg, n) < 0) {
					/* nothing */
				}
				sh->failed = 1;
				_exit(1);
			}
			__atomic_add_fetch(&sh->sigbus, 1, __ATOMIC_RELAXED);
			t->sigstate[k] = PS_LOST;
			return;
		}
	}
	__atomic_add_fetch(&sh->checked, 1, __ATOMIC_RELAXED);
	if (cls != PC_VALID || h.gen != t->siggen[k] || h.idx != k || h.blk != 1000u + (unsigned)t->tid) {
		char msg[256];
		int n = snprintf(msg, sizeof(msg),
				 "torture: FAIL seed %" PRIu64 " proc %d thread %d: signal page %u at %p: "
				 "expected gen %u found %s gen %u (op #%" PRIu64 " %s was interrupted)\n",
				 cfg.seed, proc_index, t->tid, k, (void *)p, t->siggen[k], pclass_name[cls],
				 cls == PC_VALID ? h.gen : 0, t->opno, ops[t->cur_op].name);

		if (write(2, msg, n) < 0) {
			/* nothing */
		}
		sh->failed = 1;
		_exit(1);
	}
	if (wr)
		t->siggen[k]++;
}

static void timer_handler(int sig, siginfo_t *si, void *uc)
{
	struct tctx *t = tl_t;
	int saved = errno;

	(void)sig, (void)si, (void)uc;
	if (t && t->sigbase && t->timer_on) {
		t->sighits++;
		sig_page(t, t->sighits % SIG_PAGES, true);
	}
	errno = saved;
}

static void timer_set(struct tctx *t, bool on, long usec)
{
	struct itimerspec its = { 0 };

	if (!t->timer_ok)
		return;
	if (on) {
		its.it_value.tv_nsec = usec * 1000;
		its.it_interval.tv_nsec = usec * 1000;
	}
	t->timer_on = on;
	timer_settime(t->timer, 0, &its, NULL);
}

static void verify_signal_pages(struct tctx *t)
{
	if (!t->sigbase)
		return;
	for (unsigned k = 0; k < SIG_PAGES; k++)
		sig_page(t, k, false);
}

static void op_signal(struct tctx *t, uint64_t *r)
{
	long usec = 500 + (long)rnd(r, 4500);
	bool on = !t->timer_on;

	ring_add(t, OP_SIGNAL, -1, on, (size_t)usec, 0);
	if (!t->timer_ok)
		return;
	if (!on) {
		timer_set(t, false, 0);
		verify_signal_pages(t);
	} else {
		timer_set(t, true, usec);
	}
}

static void op_renew(struct tctx *t, uint64_t *r)
{
	struct block *b = own_block(t, r);
	uint64_t pick = next(r);

	ring_add(t, OP_RENEW, (int)(b - blocks), b->npages, 0, 0);
	lock_w(b);
	block_release(b);
	block_alloc(t, b, &pick, room(t, b), false);
	unlock(b);
	ring_res(t, (long)b->npages);
	check_page(t, b, 0);
	check_page(t, b, b->npages - 1);
}

/* --- the op loop --- */

static bool op_allowed(int op)
{
	if (!(cfg.mask & (1u << op)))
		return false;
	/* a fork child: no threads to race, no timer, and the parent's files and ring */
	if (single && (op == OP_FORK || op == OP_FORKC || op == OP_FORKEXEC || op == OP_FORKX || op == OP_SIGNAL ||
		       op == OP_URING || op == OP_ODIRECT))
		return false;
	/* once the daemon is gone, calls that copy managed memory would meet SIGBUS inside libc */
	if ((op == OP_REALLOC || op == OP_MREMAP || op == OP_FORK || op == OP_FORKC) && daemon_dead())
		return false;
	return true;
}

static int draw_op(struct tctx *t)
{
	unsigned total = 0, x;

	for (int op = 0; op < OP_NR; op++)
		if (op_allowed(op))
			total += ops[op].weight;
	if (!total)
		return -1;
	x = (unsigned)rnd(&t->rng, total);
	for (int op = 0; op < OP_NR; op++) {
		if (!op_allowed(op))
			continue;
		if (x < ops[op].weight)
			return op;
		x -= ops[op].weight;
	}
	return -1;
}

static void do_op(struct tctx *t, int op, uint64_t *r)
{
	switch (op) {
	case OP_WRITE: op_write(t, r); break;
	case OP_READ: op_read(t, r); break;
	case OP_RUN: op_run(t, r); break;
	case OP_SWEEP: op_sweep(t, r); break;
	case OP_XREAD: op_xread(t, r); break;
	case OP_FORK: op_fork(t, r); break;
	case OP_FORKC: op_forkc(t, r); break;
	case OP_FORKEXEC: case OP_FORKX: op_forkexec(t, r, op); break;
	case OP_REALLOC: op_realloc(t, r); break;
	case OP_MREMAP: op_mremap(t, r); break;
	case OP_MUNMAP: op_munmap(t, r); break;
	case OP_DONTNEED: case OP_FREE: op_madvise(t, r, op); break;
	case OP_MPROTECT: op_mprotect(t, r, false); break;
	case OP_RAW: op_raw(t, r); break;
	case OP_RAWMREMAP: op_rawmremap(t, r); break;
	case OP_RAWUNMAP: op_rawunmap(t, r); break;
	case OP_ODIRECT: op_odirect(t, r); break;
	case OP_URING: op_uring(t, r); break;
	case OP_SIGNAL: op_signal(t, r); break;
	case OP_RENEW: op_renew(t, r); break;
	}
}

static void run_ops(struct tctx *t, uint64_t nops, double deadline)
{
	for (uint64_t n = 0; n < nops && !(deadline && now() > deadline); n++) {
		/* each op draws from a stream of its own: what it does never shifts the next */
		uint64_t r = next(&t->rng);
		int op = draw_op(t);

		if (op < 0)
			break;
		t->opno++;
		t->cur_op = op;
		if (cfg.verbose)
			fprintf(stderr, "torture: proc %d thread %d op #%" PRIu64 " %s\n", proc_index,
				t->tid, t->opno, ops[op].name);
		if (!single)
			pthread_rwlock_rdlock(&world);
		do_op(t, op, &r);
		if (!single)
			pthread_rwlock_unlock(&world);
		__atomic_add_fetch(&sh->ops, 1, __ATOMIC_RELAXED);
	}
}

static void thread_io_setup(struct tctx *t)
{
	char path[4200];
	int rc;

	t->fd = t->dfd = -1;
	snprintf(path, sizeof(path), "%s/torture-%d-%d-%d.XXXXXX", cfg.tmpdir, (int)getpid(),
		 proc_index, t->tid);
	t->fd = mkstemp(path);
	if (t->fd < 0) {
		fprintf(stderr, "torture: cannot create %s: %s\n", path, strerror(errno));
		exit(2);
	}
	/*
	 * Its blocks reserved now: a disk filling up later (the daemon's
	 * swap shares it) must not fail an op as if data were wrong.
	 */
	rc = posix_fallocate(t->fd, 0, IO_PAGES * PG);
	if (rc) {
		fprintf(stderr, "torture: cannot reserve %zu KiB for %s: %s\n", (size_t)IO_PAGES * PG / 1024,
			path, strerror(rc));
		exit(2);
	}
	t->dfd = open(path, O_RDONLY | O_DIRECT);
	if (t->dfd < 0 && (cfg.mask & ((1u << OP_ODIRECT) | (1u << OP_URING))))
		fprintf(stderr, "torture: no O_DIRECT on %s (%s): odirect/uring ops do nothing\n",
			cfg.tmpdir, strerror(errno));
	unlink(path);
	t->stage = raw_alloc(IO_PAGES * PG, false);
	t->xbuf = raw_alloc(PG, false);
	if (cfg.mask & (1u << OP_URING)) {
		rc = io_uring_queue_init(4, &t->ring_io, 0);
		t->ring_ok = rc == 0;
		if (rc < 0)
			fprintf(stderr, "torture: io_uring_queue_init: %s: uring ops do nothing\n", strerror(-rc));
	}
}

static void thread_timer_setup(struct tctx *t)
{
	struct sigevent sev = { 0 };

	t->sigbase = malloc(SIG_PAGES * PG);
	if (!t->sigbase) {
		fprintf(stderr, "torture: malloc of the signal pages failed\n");
		exit(2);
	}
	for (unsigned k = 0; k < SIG_PAGES; k++) {
		fill_page(t->sigbase + k * PG, 1000u + (unsigned)t->tid, k, 1, 0);
		t->siggen[k] = 1;
	}
	sev.sigev_notify = SIGEV_THREAD_ID;
	sev.sigev_signo = SIGRTMIN + 1;
	sev._sigev_un._tid = (pid_t)syscall(SYS_gettid);
	t->timer_ok = timer_create(CLOCK_MONOTONIC, &sev, &t->timer) == 0;
}

static struct tctx *tctxs;

static void *thread_main(void *arg)
{
	struct tctx *t = arg;
	double deadline = cfg.seconds > 0 ? now() + cfg.seconds : 0;

	tl_t = t;
	t->rng = mix64(cfg.seed ^ mix64(((uint64_t)proc_index << 32) | (uint64_t)t->tid));
	thread_io_setup(t);
	thread_timer_setup(t);
	/* own blocks, sized within the thread's share of --mib */
	t->cur_op = OP_INIT;
	for (int k = 0; k < t->nblk; k++) {
		uint64_t r = next(&t->rng);
		struct block *b = &blocks[t->blk[k]];

		block_alloc(t, b, &r, t->quota / (size_t)t->nblk, true);
	}
	pthread_barrier_wait(&start_barrier);
	run_ops(t, cfg.ops_per_thread, deadline);
	timer_set(t, false, 0);
	t->cur_op = OP_FINAL;
	for (int k = 0; k < t->nblk; k++)
		verify_block(t, &blocks[t->blk[k]]);
	verify_signal_pages(t);
	return NULL;
}

/* One process of the run: its threads, then everything verified once more. */
static int proc_main(void)
{
	pthread_t th[MAX_THREADS];
	pthread_rwlockattr_t a;

	proc_key = mix64(cfg.seed * 31 + (uint64_t)proc_index);
	pthread_rwlockattr_init(&a);
	/* a quiesced fork must get the world between two ops of everyone */
	pthread_rwlockattr_setkind_np(&a, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&world, &a);
	pthread_barrier_init(&start_barrier, NULL, (unsigned)cfg.threads);
	tctxs = raw_alloc(sizeof(*tctxs) * MAX_THREADS, false);
	nblocks = cfg.threads * BLK_PER_THREAD;
	for (int bn = 0; bn < nblocks; bn++)
		block_model_init(&blocks[bn], bn % cfg.threads);
	for (int i = 0; i < cfg.threads; i++) {
		struct tctx *t = &tctxs[i];

		t->tid = i;
		t->quota = cfg.mib * MiB / PG / (size_t)cfg.threads;
		for (int bn = 0; bn < nblocks; bn++)
			if (blocks[bn].owner == i)
				t->blk[t->nblk++] = bn;
		if (pthread_create(&th[i], NULL, thread_main, t)) {
			fprintf(stderr, "torture: pthread_create failed\n");
			return 2;
		}
	}
	for (int i = 0; i < cfg.threads; i++)
		pthread_join(th[i], NULL);
	/* everything, once more, with every thread gone */
	single = true;
	tl_t = &tctxs[0];
	tctxs[0].cur_op = OP_FINAL;
	for (int bn = 0; bn < nblocks; bn++)
		verify_block(&tctxs[0], &blocks[bn]);
	return 0;
}

/* --- the exec'd child: a fresh process under the shim, on its own memory --- */

static int child_check(uint64_t seed)
{
	size_t n = 256 + seed % 512;
	char *a = malloc(n * PG);
	char *m = mmap(NULL, n * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct phdr h;

	proc_key = mix64(seed);
	if (!a || m == MAP_FAILED)
		return 2;
	for (int round = 0; round < 3; round++) {
		for (size_t i = 0; i < n; i++) {
			fill_page(a + i * PG, 1, i, (uint32_t)round + 1, 0);
			fill_page(m + i * PG, 2, i, (uint32_t)round + 1, 0);
		}
		for (size_t i = 0; i < n; i++) {
			if (classify(a + i * PG, &h) != PC_VALID || h.gen != (uint32_t)round + 1 || h.idx != i ||
			    classify(m + i * PG, &h) != PC_VALID || h.gen != (uint32_t)round + 1 || h.idx != i) {
				fprintf(stderr, "torture --child-check %" PRIu64 ": page %zu wrong in round %d\n",
					seed, i, round);
				return 1;
			}
		}
	}
	free(a);
	munmap(m, n * PG);
	return 0;
}

/* --- main --- */

static void list_ops(FILE *f)
{
	for (int op = 0; op < OP_NR; op++)
		fprintf(f, "  %-10s %s\n", ops[op].name, ops[op].what);
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: torture [--seed N] [--ops N] [--seconds S] [--procs P] [--threads T]\n"
		"               [--mib M] [--mode normal|sigkill|sigterm] [--only LIST] [--no LIST]\n"
		"               [--child-ops N] [--tmpdir DIR] [--dead-flag FILE] [--verbose] [--list]\n"
		"  --ops N      ops per thread (2000); --seconds bounds it by time too\n"
		"  --mib M      memory under test per process, all threads (96)\n"
		"  LIST         comma-separated op classes (--list)\n"
		"  --dead-flag  a file the runner creates once the daemon is killed\n"
		"op classes:\n");
	list_ops(f);
}

static uint32_t parse_list(const char *s)
{
	uint32_t m = 0;
	char *copy = strdup(s), *save = NULL;

	for (char *w = strtok_r(copy, ",", &save); w; w = strtok_r(NULL, ",", &save)) {
		int op;

		for (op = 0; op < OP_NR; op++)
			if (!strcmp(w, ops[op].name))
				break;
		if (op == OP_NR) {
			fprintf(stderr, "torture: unknown op class '%s'\n", w);
			usage(stderr);
			exit(2);
		}
		m |= 1u << op;
	}
	free(copy);
	return m;
}

static bool arg_u64(const char *s, uint64_t *out)
{
	char *end;

	errno = 0;
	*out = strtoull(s, &end, 0);
	return !errno && *s && !*end;
}

static void parse_args(int argc, char **argv, bool *have_seed)
{
	size_t len = 0;

	for (int i = 0; i < argc; i++) {
		/* the replay line: everything but the seed, which it prints itself */
		if (!strcmp(argv[i], "--seed")) {
			i++;
			continue;
		}
		len += (size_t)snprintf(cmdline + len, len < sizeof(cmdline) ? sizeof(cmdline) - len : 0,
					"%s%s", i ? " " : "", argv[i]);
		if (len >= sizeof(cmdline))
			len = sizeof(cmdline) - 1;
	}
	cfg.mask = (1u << OP_NR) - 1;
	for (int i = 1; i < argc; i++) {
		const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		uint64_t n;

#define NEED() do { if (!v) { fprintf(stderr, "torture: %s needs a value\n", o); exit(2); } i++; } while (0)
		if (!strcmp(o, "--seed")) {
			NEED();
			if (!arg_u64(v, &cfg.seed))
				goto bad;
			*have_seed = true;
		} else if (!strcmp(o, "--ops")) {
			NEED();
			if (!arg_u64(v, &cfg.ops_per_thread))
				goto bad;
		} else if (!strcmp(o, "--seconds")) {
			NEED();
			cfg.seconds = atof(v);
			if (cfg.seconds <= 0)
				goto bad;
			if (cfg.ops_per_thread == 2000)
				cfg.ops_per_thread = UINT64_MAX;
		} else if (!strcmp(o, "--procs")) {
			NEED();
			if (!arg_u64(v, &n) || n < 1 || n > MAX_PROCS)
				goto bad;
			cfg.procs = (int)n;
		} else if (!strcmp(o, "--threads")) {
			NEED();
			if (!arg_u64(v, &n) || n < 1 || n > MAX_THREADS)
				goto bad;
			cfg.threads = (int)n;
		} else if (!strcmp(o, "--mib")) {
			NEED();
			if (!arg_u64(v, &n) || n < 1 || n > 4096)
				goto bad;
			cfg.mib = n;
		} else if (!strcmp(o, "--child-ops")) {
			NEED();
			if (!arg_u64(v, &n))
				goto bad;
			cfg.child_ops = (int)n;
		} else if (!strcmp(o, "--mode")) {
			NEED();
			if (!strcmp(v, "normal"))
				cfg.mode = MODE_NORMAL;
			else if (!strcmp(v, "sigkill"))
				cfg.mode = MODE_SIGKILL;
			else if (!strcmp(v, "sigterm"))
				cfg.mode = MODE_SIGTERM;
			else
				goto bad;
		} else if (!strcmp(o, "--only")) {
			NEED();
			cfg.mask = parse_list(v);
		} else if (!strcmp(o, "--no")) {
			NEED();
			cfg.mask &= ~parse_list(v);
		} else if (!strcmp(o, "--tmpdir")) {
			NEED();
			cfg.tmpdir = v;
		} else if (!strcmp(o, "--dead-flag")) {
			NEED();
			cfg.dead_flag = v;
		} else if (!strcmp(o, "--verbose")) {
			cfg.verbose = true;
		} else if (!strcmp(o, "--list")) {
			list_ops(stdout);
			exit(0);
		} else if (!strcmp(o, "--help")) {
			usage(stdout);
			exit(0);
		} else {
			goto bad;
		}
		continue;
bad:
		fprintf(stderr, "torture: bad argument %s%s%s\n", o, v ? " " : "", v ? v : "");
		usage(stderr);
		exit(2);
	}
#undef NEED
}

static void install_handlers(void)
{
	struct sigaction sa = { 0 };

	/* SA_NODEFER: the handler siglongjmps out; the signal must not stay blocked */
	sa.sa_sigaction = fault_handler;
	sa.sa_flags = SA_SIGINFO | SA_NODEFER;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGBUS, &sa, NULL);
	sigaction(SIGSEGV, &sa, NULL);
	sa.sa_sigaction = timer_handler;
	sa.sa_flags = SA_SIGINFO | SA_RESTART;
	sigaction(SIGRTMIN + 1, &sa, NULL);
}

int main(int argc, char **argv)
{
	bool have_seed = false;
	int status = 0;
	pid_t pids[MAX_PROCS];
	ssize_t n;

	if (argc == 3 && !strcmp(argv[1], "--child-check")) {
		uint64_t s;

		if (!arg_u64(argv[2], &s))
			return 2;
		return child_check(s);
	}
	parse_args(argc, argv, &have_seed);
	if (!have_seed) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		cfg.seed = mix64((uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 32)) % 1000000000ULL;
	}
	if (!cfg.tmpdir)
		cfg.tmpdir = getenv("TORTURE_TMPDIR") ? getenv("TORTURE_TMPDIR") : "/var/tmp";
	printf("torture: seed %" PRIu64 "\n", cfg.seed);
	fflush(stdout);
	n = readlink("/proc/self/exe", self_exe, sizeof(self_exe) - 1);
	if (n <= 0) {
		fprintf(stderr, "torture: readlink /proc/self/exe: %s\n", strerror(errno));
		return 2;
	}
	self_exe[n] = '\0';
	clock_gettime(CLOCK_MONOTONIC, &t_start);
	sh = raw_alloc(sizeof(*sh), true);
	install_handlers();
	/* worker processes first, before anything is allocated: each connects on its own */
	for (int p = 0; p < cfg.procs; p++) {
		if (cfg.procs == 1) {
			pids[p] = 0;
			break;
		}
		pids[p] = fork();
		if (pids[p] < 0) {
			fprintf(stderr, "torture: fork: %s\n", strerror(errno));
			return 2;
		}
		if (pids[p] == 0) {
			proc_index = p;
			_exit(proc_main());
		}
	}
	if (cfg.procs == 1) {
		status = proc_main();
	} else {
		for (int p = 0; p < cfg.procs; p++) {
			int st = wait_status(pids[p]);

			if (st && st > status)
				status = st;
			if (st)
				fprintf(stderr, "torture: process %d exited with status %d\n", p, st);
		}
	}
	if (sh->failed && !status)
		status = 1;
	printf("torture: seed %" PRIu64 " ops %" PRIu64 " forks %" PRIu64 " pages_checked %" PRIu64
	       " sigbus %" PRIu64 " result %s\n",
	       cfg.seed, sh->ops, sh->forks, sh->checked, sh->sigbus,
	       status == 0 ? "ok" : status == 3 ? "stopped" : "FAIL");
	if (sh->torn || sh->xskipped)
		printf("torture: (torn pages at racy forks %" PRIu64 ", cross reads skipped %" PRIu64 ")\n",
		       sh->torn, sh->xskipped);
	return status;
}
