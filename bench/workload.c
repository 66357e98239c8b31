/*
 * bench-workload: the workload program of uvmpager's benchmark (bench/run
 * drives it three ways: plain RAM, kernel swap in a memory cgroup, and
 * under the uvmpager shim).
 *
 * It maps its region with plain mmap(MAP_PRIVATE | MAP_ANONYMOUS), so
 * whatever manages anonymous memory (the kernel, or the shim) manages it,
 * runs the workload's phases and times every page access with
 * clock_gettime. Each access of a page is one sample; a sample slower than
 * --miss-ns (2 µs) counts as a miss (a fault that had to wait). Output is
 * flat "key value" lines on stdout:
 *
 *   <phase>.seconds .pages .ops .mib_s .ops_s .bad_pages
 *   <phase>.lat_all_p50_us .lat_all_p99_us .lat_miss_p50_us .lat_miss_p99_us .misses
 *   <phase>.majflt .minflt .utime_s .stime_s         (the workload process(es))
 *   <phase>.cpu.<name>_s                             (--cpu NAME=PID)
 *   <phase>.<src>.<key> <delta>                      (--counters SRC=FILE, non-zero)
 *   end.<src>.<key> <value>                          (after the last phase)
 *
 * Every page written carries a pattern derived from its index and a
 * generation number; every read checks all 512 words of the page.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifdef HAVE_ENGINE
#include "engine.h"
#endif

#define PAGE 4096UL
#define WORDS (PAGE / 8)

/* ---------------------------------------------------------------------- */
/* latency histogram: 32 sub-buckets per power of two (about ±1.6 %)      */

#define HSUB 32
#define HBUCKETS (61 * HSUB)

struct hist {
	uint64_t n;
	uint64_t b[HBUCKETS];
};

static unsigned hidx(uint64_t v)
{
	unsigned e;

	if (v < HSUB)
		return (unsigned)v;
	e = 63 - (unsigned)__builtin_clzll(v);
	return (e - 4) * HSUB + (unsigned)((v >> (e - 5)) & (HSUB - 1));
}

static double hval(unsigned i)
{
	unsigned e, sub;

	if (i < HSUB)
		return i;
	e = i / HSUB + 4;
	sub = i % HSUB;
	return (double)((uint64_t)(HSUB + sub) << (e - 5)) + (double)(1ULL << (e - 5)) / 2;
}

static inline void hadd(struct hist *h, uint64_t v)
{
	h->n++;
	h->b[hidx(v)]++;
}

/* q in (0,1]; returns ns, NAN when empty */
static double hpct(const struct hist *h, double q)
{
	uint64_t rank, seen = 0;

	if (!h->n)
		return NAN;
	rank = (uint64_t)ceil(q * (double)h->n);
	if (rank < 1)
		rank = 1;
	for (unsigned i = 0; i < HBUCKETS; i++) {
		seen += h->b[i];
		if (seen >= rank)
			return hval(i);
	}
	return hval(HBUCKETS - 1);
}

/* ---------------------------------------------------------------------- */

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static int parse_size(const char *s, uint64_t *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || v < 0)
		return -1;
	switch (*end) {
	case 'k': case 'K': v *= 1024; end++; break;
	case 'm': case 'M': v *= 1024 * 1024; end++; break;
	case 'g': case 'G': v *= 1024.0 * 1024 * 1024; end++; break;
	case 't': case 'T': v *= 1024.0 * 1024 * 1024 * 1024; end++; break;
	}
	if (*end == 'i' && end[1] == 'B')
		end += 2;
	else if (*end == 'B')
		end++;
	if (*end)
		return -1;
	*out = (uint64_t)v;
	return 0;
}

struct rng {
	uint64_t s;
};

static inline uint64_t rnd(struct rng *r)
{
	r->s ^= r->s >> 12;
	r->s ^= r->s << 25;
	r->s ^= r->s >> 27;
	return r->s * 0x2545F4914F6CDD1DULL;
}

static inline double rnd01(struct rng *r)
{
	return (double)(rnd(r) >> 11) * (1.0 / 9007199254740992.0);
}

static inline uint64_t page_base(uint64_t p, unsigned gen)
{
	return (((p + 1) * 0x9E3779B97F4A7C15ULL) ^ ((uint64_t)gen << 48) ^ gen) | 1;
}

static inline void write_page(uint8_t *pg, uint64_t p, unsigned gen)
{
	uint64_t *q = (uint64_t *)pg, b = page_base(p, gen);

	for (unsigned w = 0; w < WORDS; w++)
		q[w] = b + w;
}

static void report_bad(const uint8_t *pg, uint64_t p, unsigned gen);

static inline bool check_page(const uint8_t *pg, uint64_t p, unsigned gen)
{
	const volatile uint64_t *q = (const volatile uint64_t *)pg;
	uint64_t b = page_base(p, gen), bad = 0;

	for (unsigned w = 0; w < WORDS; w++)
		bad |= q[w] ^ (b + w);
	if (bad)
		report_bad(pg, p, gen);
	return bad == 0;
}

/* The first few bad pages, described on stderr: what the page held instead. */
static void report_bad(const uint8_t *pg, uint64_t p, unsigned gen)
{
	static unsigned reported;
	const uint64_t *q = (const uint64_t *)pg;
	unsigned wrong = 0, first = WORDS, zeros = 0;
	char what[96] = "unknown content";

	if (reported >= 8)
		return;
	reported++;
	for (unsigned w = 0; w < WORDS; w++) {
		if (q[w] != page_base(p, gen) + w) {
			wrong++;
			if (first == WORDS)
				first = w;
		}
		zeros += q[w] == 0;
	}
	if (zeros == WORDS)
		snprintf(what, sizeof(what), "all zeros");
	else
		for (unsigned g = 0; g < 256; g++)
			if (g != gen && q[first] == page_base(p, g) + first) {
				snprintf(what, sizeof(what), "generation %u of the same page (stale)", g);
				break;
			}
	fprintf(stderr, "bench-workload[%d]: bad page %" PRIu64 " (generation %u): %u of %u words wrong "
		"from word %u; holds %s\n", (int)getpid(), p, gen, wrong, (unsigned)WORDS, first, what);
}

/* ---------------------------------------------------------------------- */
/* options                                                                 */

enum wl { WL_SEQ, WL_RANDREAD, WL_RANDWRITE, WL_SKEWED, WL_REEVICT, WL_FIRSTTOUCH, WL_SPARSE, WL_THREADS };

static const char *const wl_names[] = {
	"seq", "randread", "randwrite", "skewed", "reevict", "firsttouch", "sparse", "threads",
};

#define MAX_SRC 8

static struct {
	enum wl wl;
	uint64_t size;
	uint64_t ops;
	double max_seconds;
	unsigned procs;
	unsigned threads;
	double hot_frac, hot_prob, write_frac;
	uint64_t miss_ns;
	uint64_t touch, chunk;
	unsigned rounds;
	uint64_t seed;
	const char *marker;
	const char *tag;
	int nsrc;
	struct { char name[32]; char path[512]; } src[MAX_SRC];
	int ncpu;
	struct { char name[32]; pid_t pid; bool engine; } cpu[MAX_SRC];
	/* child of a multi-process run */
	int child_rfd, child_wfd, child_index;
	/* in-process engine instead of plain mmap */
	const char *engine_swap;
	uint64_t engine_budget, engine_swap_size;
} opt = {
	.size = 1ULL << 30,
	.ops = 50000,
	.max_seconds = 60,
	.procs = 1,
	.threads = 4,
	.hot_frac = 0.10,
	.hot_prob = 0.90,
	.write_frac = 0.30,
	.miss_ns = 2000,
	.touch = 3ULL << 30,
	.chunk = 64 << 10,
	.rounds = 5,
	.seed = 0x5DEECE66DULL,
	.tag = "run",
	.child_rfd = -1,
	.child_wfd = -1,
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: bench-workload WORKLOAD [options]\n"
		"workloads:\n"
		"  seq         sequential fill, then sequential re-read with content check\n"
		"  randread    fill, then uniform random 4 KiB reads (checked)\n"
		"  randwrite   fill, then uniform random 4 KiB writes\n"
		"  skewed      fill, then a mix: --hot-prob of accesses to a hot set of\n"
		"              --hot-frac of the pages, --write-frac of them writes\n"
		"  reevict     fill, read pass, then a measured read-only pass (clean re-eviction)\n"
		"  firsttouch  one write to every page of fresh memory, --rounds times (5)\n"
		"              on a new mapping each time; the fastest round counts\n"
		"  sparse      --touch bytes in --chunk pieces spread over a --size region,\n"
		"              then re-read them\n"
		"  threads     fill, then --threads threads at once, each doing uniform random\n"
		"              4 KiB accesses (--write-frac of them writes) over its own\n"
		"              share of the pages (every k-th); --ops is their sum\n"
		"options:\n"
		"  --size SIZE           region (per run; split between --procs) (1G)\n"
		"  --ops N               accesses of the random phases (50000, per process)\n"
		"  --max-seconds S       cap of a random phase (60)\n"
		"  --procs N             N processes at once, each with size/N (1)\n"
		"  --threads N           threads of the threads workload (4)\n"
		"  --hot-frac F --hot-prob F --write-frac F   skewed mix (0.1 0.9 0.3)\n"
		"  --miss-ns NS          an access slower than this is a miss (2000)\n"
		"  --touch SIZE --chunk SIZE                  sparse (3G, 64K)\n"
		"  --seed N\n"
		"  --counters SRC=FILE   'name value' file to snapshot around each phase\n"
		"  --cpu NAME=PID        a process whose CPU time to report per phase\n"
		"  --marker FILE         a trace_marker to write phase boundaries to:\n"
		"                        'uvmbench TAG PHASE begin|end'\n"
		"  --tag TAG             (run)\n"
#ifdef HAVE_ENGINE
		"  --engine-swap FILE --engine-budget SIZE [--engine-swap-size SIZE]\n"
		"                        page the region through uvmpager's engine in-process\n"
		"                        (counters source 'uvm', CPU 'daemon' = its threads)\n"
#endif
		);
}

/* ---------------------------------------------------------------------- */
/* counters and CPU                                                         */

struct kv {
	char key[64];
	char val[64];
};

struct snap {
	int n;
	struct kv *kv;
};

#ifdef HAVE_ENGINE
static struct engine *eng;
#endif

static char *read_whole(const char *path)
{
	size_t cap = 65536, len = 0;
	char *buf = malloc(cap + 1);
	int fd;

	if (!buf)
		return NULL;
#ifdef HAVE_ENGINE
	if (strcmp(path, "@engine") == 0) {
		FILE *f = fmemopen(buf, cap, "w");

		if (!f || !eng) {
			free(buf);
			if (f)
				fclose(f);
			return NULL;
		}
		engine_print_stats(eng, f);
		fflush(f);
		len = (size_t)ftell(f);
		fclose(f);
		buf[len] = 0;
		return buf;
	}
#endif
	fd = open(path, O_RDONLY);
	if (fd < 0) {
		free(buf);
		return NULL;
	}
	for (;;) {
		ssize_t n;

		if (len == cap) {
			char *nb = realloc(buf, cap * 2 + 1);

			if (!nb)
				break;
			buf = nb;
			cap *= 2;
		}
		n = read(fd, buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	buf[len] = 0;
	return buf;
}

static void snap_take(struct snap *s, const char *path)
{
	char *buf = read_whole(path), *line, *save = NULL;
	int cap = 0;

	s->n = 0;
	if (!buf)
		return;
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char k[64], v[64];

		if (sscanf(line, "%63s %63s", k, v) != 2)
			continue;
		if (s->n == cap) {
			struct kv *nk;

			cap = cap ? cap * 2 : 256;
			nk = realloc(s->kv, (size_t)cap * sizeof(*nk));
			if (!nk)
				break;
			s->kv = nk;
		}
		strcpy(s->kv[s->n].key, k);
		strcpy(s->kv[s->n].val, v);
		s->n++;
	}
	free(buf);
}

static bool as_int(const char *s, long long *v)
{
	char *end;

	errno = 0;
	*v = strtoll(s, &end, 10);
	return !errno && end != s && !*end;
}

static void snap_diff(const char *phase, const char *src, const struct snap *a, const struct snap *b)
{
	for (int i = 0; i < b->n; i++) {
		long long x = 0, y;
		const struct kv *old = NULL;

		if (i < a->n && strcmp(a->kv[i].key, b->kv[i].key) == 0)
			old = &a->kv[i];
		else
			for (int j = 0; j < a->n && !old; j++)
				if (strcmp(a->kv[j].key, b->kv[i].key) == 0)
					old = &a->kv[j];
		if (!as_int(b->kv[i].val, &y))
			continue;
		if (old && !as_int(old->val, &x))
			continue;
		if (y != x)
			printf("%s.%s.%s %lld\n", phase, src, b->kv[i].key, y - x);
	}
}

static double proc_cpu_s(pid_t pid)
{
	char path[64], *buf, *p;
	unsigned long long ut = 0, st = 0;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	buf = read_whole(path);
	if (!buf)
		return NAN;
	p = strrchr(buf, ')');
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
			 &ut, &st) != 2) {
		free(buf);
		return NAN;
	}
	free(buf);
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* CPU of this process's threads other than the main one (the engine's) */
static double engine_cpu_s(void)
{
	char path[64];
	double all = proc_cpu_s(getpid()), mine;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/stat", (int)getpid(), (int)getpid());
	{
		char *buf = read_whole(path), *p;
		unsigned long long ut = 0, st = 0;

		if (!buf)
			return NAN;
		p = strrchr(buf, ')');
		if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
				 &ut, &st) != 2) {
			free(buf);
			return NAN;
		}
		free(buf);
		mine = (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
	}
	return all - mine;
}

static double cpu_of(int i)
{
	return opt.cpu[i].engine ? engine_cpu_s() : proc_cpu_s(opt.cpu[i].pid);
}

static int marker_fd = -1;

static void mark(const char *phase, const char *what)
{
	char buf[128];
	int n;

	if (marker_fd < 0)
		return;
	n = snprintf(buf, sizeof(buf), "uvmbench %s %s %s\n", opt.tag, phase, what);
	if (write(marker_fd, buf, (size_t)n) < 0) {
		/* tracing went away: the figures just lack I/O counts */
	}
}

/* ---------------------------------------------------------------------- */
/* phases                                                                   */

struct res {
	char name[32];
	uint64_t pages, ops, ns, bad;
	uint64_t majflt, minflt, utime_us, stime_us;
	uint64_t ns_override, rounds;  /* first touch: the fastest round */
	struct hist all, miss;
};

struct ctx {
	uint8_t *mem;
	uint64_t npages;
	uint8_t *gen;            /* generation per page, for the writing mixes */
	uint64_t perm_mul;       /* odd multiplier coprime with npages: a scatter permutation */
	uint64_t hot_n;
	uint64_t nchunks, chunk_pages, stride_pages;  /* sparse */
	struct rng r;
};

static inline unsigned gen_of(const struct ctx *c, uint64_t p)
{
	return c->gen ? c->gen[p] : 1;
}

static inline void sample(struct res *r, uint64_t *t, uint64_t miss_ns)
{
	uint64_t t1 = now_ns(), d = t1 - *t;

	hadd(&r->all, d);
	if (d > miss_ns)
		hadd(&r->miss, d);
	*t = t1;
}

static void ph_fill(struct ctx *c, struct res *r)
{
	uint64_t t = now_ns();

	for (uint64_t p = 0; p < c->npages; p++) {
		write_page(c->mem + p * PAGE, p, 1);
		sample(r, &t, opt.miss_ns);
	}
	if (c->gen)
		memset(c->gen, 1, c->npages);
	r->pages = r->ops = c->npages;
}

static void ph_read(struct ctx *c, struct res *r)
{
	uint64_t t = now_ns();

	for (uint64_t p = 0; p < c->npages; p++) {
		if (!check_page(c->mem + p * PAGE, p, gen_of(c, p)))
			r->bad++;
		sample(r, &t, opt.miss_ns);
	}
	r->pages = r->ops = c->npages;
}

#define CAPPED(i, t0) (((i) & 63) == 0 && now_ns() - (t0) > (uint64_t)(opt.max_seconds * 1e9))

static void ph_randread(struct ctx *c, struct res *r)
{
	uint64_t t = now_ns(), t0 = t, i;

	for (i = 0; i < opt.ops && !CAPPED(i, t0); i++) {
		uint64_t p = rnd(&c->r) % c->npages;

		if (!check_page(c->mem + p * PAGE, p, gen_of(c, p)))
			r->bad++;
		sample(r, &t, opt.miss_ns);
	}
	r->pages = r->ops = i;
}

static void ph_randwrite(struct ctx *c, struct res *r)
{
	uint64_t t = now_ns(), t0 = t, i;

	for (i = 0; i < opt.ops && !CAPPED(i, t0); i++) {
		uint64_t p = rnd(&c->r) % c->npages;
		unsigned g = c->gen[p] = (uint8_t)(c->gen[p] % 250 + 1);

		write_page(c->mem + p * PAGE, p, g);
		sample(r, &t, opt.miss_ns);
	}
	r->pages = r->ops = i;
}

static inline uint64_t scatter(const struct ctx *c, uint64_t k)
{
	return (uint64_t)(((unsigned __int128)k * c->perm_mul) % c->npages);
}

static void ph_mix(struct ctx *c, struct res *r)
{
	uint64_t t = now_ns(), t0 = t, i, cold = c->npages - c->hot_n;

	for (i = 0; i < opt.ops && !CAPPED(i, t0); i++) {
		uint64_t k, p;

		if (!cold || (c->hot_n && rnd01(&c->r) < opt.hot_prob))
			k = rnd(&c->r) % c->hot_n;
		else
			k = c->hot_n + rnd(&c->r) % cold;
		p = scatter(c, k);
		if (rnd01(&c->r) < opt.write_frac) {
			unsigned g = c->gen[p] = (uint8_t)(c->gen[p] % 250 + 1);

			write_page(c->mem + p * PAGE, p, g);
		} else if (!check_page(c->mem + p * PAGE, p, c->gen[p])) {
			r->bad++;
		}
		sample(r, &t, opt.miss_ns);
	}
	r->pages = r->ops = i;
}

/*
 * Several threads faulting at once: one thread of a workload per share of
 * the pages (page p belongs to thread p % n), so that the generations
 * need no lock. What a pager does with concurrent faults of one process
 * (serve them one at a time, or several reads in flight) shows here.
 */
struct mt_arg {
	struct ctx *c;
	unsigned k, n;
	uint64_t ops, t0;
	struct rng r;
	struct res res;
};

static void *mt_thread(void *p)
{
	struct mt_arg *a = p;
	struct ctx *c = a->c;
	uint64_t share = (c->npages - a->k + a->n - 1) / a->n, t = now_ns(), i;

	for (i = 0; i < a->ops && share && !CAPPED(i, a->t0); i++) {
		uint64_t pg = (rnd(&a->r) % share) * a->n + a->k;

		if (rnd01(&a->r) < opt.write_frac) {
			unsigned g = c->gen[pg] = (uint8_t)(c->gen[pg] % 250 + 1);

			write_page(c->mem + pg * PAGE, pg, g);
		} else if (!check_page(c->mem + pg * PAGE, pg, c->gen[pg])) {
			a->res.bad++;
		}
		sample(&a->res, &t, opt.miss_ns);
	}
	a->res.ops = i;
	return NULL;
}

static void hist_merge(struct hist *to, const struct hist *from)
{
	to->n += from->n;
	for (unsigned i = 0; i < HBUCKETS; i++)
		to->b[i] += from->b[i];
}

static void ph_threads(struct ctx *c, struct res *r)
{
	unsigned n = opt.threads ? opt.threads : 1;
	struct mt_arg *a = calloc(n, sizeof(*a));
	pthread_t *tid = calloc(n, sizeof(*tid));
	uint64_t t0 = now_ns();

	if (!a || !tid) {
		fprintf(stderr, "bench-workload: out of memory\n");
		exit(1);
	}
	for (unsigned k = 0; k < n; k++) {
		a[k] = (struct mt_arg){ .c = c, .k = k, .n = n, .t0 = t0,
					.ops = opt.ops / n + (k < opt.ops % n) };
		a[k].r.s = c->r.s * 0x9E3779B97F4A7C15ULL + k + 1;
		if (pthread_create(&tid[k], NULL, mt_thread, &a[k])) {
			fprintf(stderr, "bench-workload: pthread_create failed\n");
			exit(1);
		}
	}
	for (unsigned k = 0; k < n; k++) {
		pthread_join(tid[k], NULL);
		r->ops += a[k].res.ops;
		r->bad += a[k].res.bad;
		hist_merge(&r->all, &a[k].res.all);
		hist_merge(&r->miss, &a[k].res.miss);
	}
	r->pages = r->ops;
	free(a);
	free(tid);
}

static int region_map(struct ctx *c);
static void region_unmap(struct ctx *c);

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/*
 * First touch of fresh memory, --rounds times on a new mapping each time:
 * the phase's time is the fastest round's (first touch is short and the
 * machine is shared: noise only adds); latencies cover all rounds, CPU
 * and fault counts are per round.
 */
static void ph_firsttouch(struct ctx *c, struct res *r)
{
	uint64_t t[16];
	unsigned n = opt.rounds < 1 ? 1 : opt.rounds > 16 ? 16 : opt.rounds;

	for (unsigned i = 0; i < n; i++) {
		uint64_t t0;

		if (i > 0) {
			region_unmap(c);
			if (region_map(c) < 0) {
				r->bad++;
				n = i;
				break;
			}
		}
		t0 = now_ns();
		ph_fill(c, r);
		t[i] = now_ns() - t0;
		printf("main.round%u_seconds %.6f\n", i, (double)t[i] / 1e9);
	}
	qsort(t, n, sizeof(t[0]), cmp_u64);
	r->ns_override = n ? t[0] : 0;
	r->rounds = n;
}

static void ph_sparse(struct ctx *c, struct res *r, bool writing)
{
	uint64_t t = now_ns();

	for (uint64_t k = 0; k < c->nchunks; k++) {
		for (uint64_t j = 0; j < c->chunk_pages; j++) {
			uint64_t p = k * c->stride_pages + j;

			if (writing)
				write_page(c->mem + p * PAGE, p, 1);
			else if (!check_page(c->mem + p * PAGE, p, 1))
				r->bad++;
			sample(r, &t, opt.miss_ns);
		}
	}
	r->pages = r->ops = c->nchunks * c->chunk_pages;
}

static void ph_sparse_fill(struct ctx *c, struct res *r) { ph_sparse(c, r, true); }
static void ph_sparse_read(struct ctx *c, struct res *r) { ph_sparse(c, r, false); }

struct phase {
	const char *name;
	void (*fn)(struct ctx *, struct res *);
	bool measured;
};

#define MAXPH 4
static const struct phase phases[][MAXPH] = {
	[WL_SEQ] = { { "fill", ph_fill, true }, { "reread", ph_read, true } },
	[WL_RANDREAD] = { { "fill", ph_fill, false }, { "main", ph_randread, true } },
	[WL_RANDWRITE] = { { "fill", ph_fill, false }, { "main", ph_randwrite, true } },
	[WL_SKEWED] = { { "fill", ph_fill, true }, { "main", ph_mix, true } },
	[WL_REEVICT] = { { "fill", ph_fill, false }, { "pass1", ph_read, false },
			 { "main", ph_read, true } },
	[WL_FIRSTTOUCH] = { { "main", ph_firsttouch, true } },
	[WL_SPARSE] = { { "fill", ph_sparse_fill, true }, { "reread", ph_sparse_read, true } },
	[WL_THREADS] = { { "fill", ph_fill, false }, { "main", ph_threads, true } },
};

static int nphases(void)
{
	int n = 0;

	while (n < MAXPH && phases[opt.wl][n].name)
		n++;
	return n;
}

static void rusage_now(struct res *r, int sign)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	r->majflt += (uint64_t)(sign * ru.ru_majflt);
	r->minflt += (uint64_t)(sign * ru.ru_minflt);
	r->utime_us += (uint64_t)(sign * (ru.ru_utime.tv_sec * 1000000LL + ru.ru_utime.tv_usec));
	r->stime_us += (uint64_t)(sign * (ru.ru_stime.tv_sec * 1000000LL + ru.ru_stime.tv_usec));
}

static void run_phase(struct ctx *c, const struct phase *ph, struct res *r)
{
	uint64_t t0;

	memset(r, 0, sizeof(*r));
	snprintf(r->name, sizeof(r->name), "%s", ph->name);
	rusage_now(r, -1);
	t0 = now_ns();
	ph->fn(c, r);
	r->ns = now_ns() - t0;
	rusage_now(r, 1);
	if (r->ns_override) {
		r->ns = r->ns_override;
		r->utime_us /= r->rounds;
		r->stime_us /= r->rounds;
		r->majflt /= r->rounds;
		r->minflt /= r->rounds;
	}
}

/* ---------------------------------------------------------------------- */
/* region                                                                   */

#ifdef HAVE_ENGINE
static struct uobj *eng_obj;
#endif

/* The region: plain anonymous memory (or an engine object in-process). */
static int region_map(struct ctx *c)
{
#ifdef HAVE_ENGINE
	if (eng) {
		void *addr;
		int r = engine_aobj_create(eng, c->npages * PAGE, 0, &addr, &eng_obj);

		if (r < 0) {
			fprintf(stderr, "bench-workload: engine object: %s\n", strerror(-r));
			return -1;
		}
		c->mem = addr;
		return 0;
	}
#endif
	void *m = mmap(NULL, c->npages * PAGE, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	if (m == MAP_FAILED) {
		fprintf(stderr, "bench-workload: mmap %" PRIu64 " bytes: %s\n",
			c->npages * PAGE, strerror(errno));
		return -1;
	}
	c->mem = m;
	return 0;
}

static void region_unmap(struct ctx *c)
{
#ifdef HAVE_ENGINE
	if (eng) {
		engine_object_destroy(eng, eng_obj);
		eng_obj = NULL;
		c->mem = NULL;
		return;
	}
#endif
	munmap(c->mem, c->npages * PAGE);
	c->mem = NULL;
}

static int setup(struct ctx *c, uint64_t size, unsigned index)
{
	bool needs_gen = opt.wl == WL_RANDWRITE || opt.wl == WL_SKEWED || opt.wl == WL_THREADS;

	memset(c, 0, sizeof(*c));
	c->r.s = opt.seed * 0x9E3779B97F4A7C15ULL + index + 1;
	c->npages = size / PAGE;
	if (!c->npages) {
		fprintf(stderr, "bench-workload: region smaller than a page\n");
		return -1;
	}
#ifdef HAVE_ENGINE
	if (opt.engine_swap) {
		struct engine_config cfg;
		char err[256] = "";
		int r;

		engine_config_defaults(&cfg);
		cfg.swap_path = opt.engine_swap;
		cfg.swap_size = opt.engine_swap_size;
		cfg.swap_preallocate = true;
		cfg.budget = opt.engine_budget;
		r = engine_create(&cfg, &eng, err, sizeof(err));
		if (r < 0) {
			fprintf(stderr, "bench-workload: engine: %s\n", err[0] ? err : strerror(-r));
			return -1;
		}
	}
#endif
	if (region_map(c) < 0)
		return -1;
	if (needs_gen) {
		/* small next to the region; deliberately not part of it */
		c->gen = calloc(c->npages, 1);
		if (!c->gen)
			return -1;
	}
	c->perm_mul = 0x9E3779B97F4A7C15ULL % c->npages;
	if (c->npages > 1) {
		uint64_t a, b;

		for (;;) {
			a = c->perm_mul, b = c->npages;
			while (b) {
				uint64_t t = a % b;

				a = b;
				b = t;
			}
			if (a == 1 && c->perm_mul > 1)
				break;
			c->perm_mul++;
		}
	} else {
		c->perm_mul = 1;
	}
	c->hot_n = (uint64_t)((double)c->npages * opt.hot_frac);
	if (opt.wl == WL_SPARSE) {
		c->chunk_pages = opt.chunk / PAGE ? opt.chunk / PAGE : 1;
		c->nchunks = opt.touch / (c->chunk_pages * PAGE);
		if (c->nchunks > c->npages / c->chunk_pages)
			c->nchunks = c->npages / c->chunk_pages;
		if (!c->nchunks)
			c->nchunks = 1;
		c->stride_pages = c->npages / c->nchunks;
	}
	return 0;
}

/* ---------------------------------------------------------------------- */
/* output                                                                   */

static void print_res(const struct res *r, unsigned procs)
{
	double s = (double)r->ns / 1e9;
	const char *n = r->name;

	printf("%s.seconds %.6f\n", n, s);
	printf("%s.pages %" PRIu64 "\n", n, r->pages);
	printf("%s.ops %" PRIu64 "\n", n, r->ops);
	printf("%s.mib_s %.2f\n", n, s > 0 ? (double)r->pages * PAGE / 1048576.0 / s : 0);
	printf("%s.ops_s %.1f\n", n, s > 0 ? (double)r->ops / s : 0);
	printf("%s.bad_pages %" PRIu64 "\n", n, r->bad);
	printf("%s.misses %" PRIu64 "\n", n, r->miss.n);
	printf("%s.lat_all_p50_us %.3f\n", n, hpct(&r->all, 0.5) / 1e3);
	printf("%s.lat_all_p99_us %.3f\n", n, hpct(&r->all, 0.99) / 1e3);
	printf("%s.lat_miss_p50_us %.3f\n", n, hpct(&r->miss, 0.5) / 1e3);
	printf("%s.lat_miss_p99_us %.3f\n", n, hpct(&r->miss, 0.99) / 1e3);
	printf("%s.majflt %" PRIu64 "\n", n, r->majflt);
	printf("%s.minflt %" PRIu64 "\n", n, r->minflt);
	printf("%s.utime_s %.3f\n", n, (double)r->utime_us / 1e6);
	printf("%s.stime_s %.3f\n", n, (double)r->stime_us / 1e6);
	printf("%s.procs %u\n", n, procs);
}

/* ---------------------------------------------------------------------- */
/* several processes: the parent drives, children run phases on "go"       */

static void send_res(FILE *f, const struct res *r)
{
	fprintf(f, "R %s %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64
		" %" PRIu64 " %" PRIu64 "\n", r->name, r->pages, r->ops, r->ns, r->bad,
		r->majflt, r->minflt, r->utime_us, r->stime_us);
	for (int h = 0; h < 2; h++) {
		const struct hist *hp = h ? &r->miss : &r->all;

		fputs(h ? "M" : "A", f);
		for (unsigned i = 0; i < HBUCKETS; i++)
			if (hp->b[i])
				fprintf(f, " %u:%" PRIu64, i, hp->b[i]);
		fputc('\n', f);
	}
	fflush(f);
}

static int recv_res(FILE *f, struct res *acc)
{
	char *line = NULL;
	size_t cap = 0;
	struct res r;
	int ok = -1;

	memset(&r, 0, sizeof(r));
	if (getline(&line, &cap, f) <= 0 ||
	    sscanf(line, "R %31s %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64
		   " %" SCNu64 " %" SCNu64 " %" SCNu64, r.name, &r.pages, &r.ops, &r.ns, &r.bad,
		   &r.majflt, &r.minflt, &r.utime_us, &r.stime_us) != 9)
		goto out;
	acc->pages += r.pages;
	acc->ops += r.ops;
	acc->bad += r.bad;
	acc->majflt += r.majflt;
	acc->minflt += r.minflt;
	acc->utime_us += r.utime_us;
	acc->stime_us += r.stime_us;
	for (int h = 0; h < 2; h++) {
		struct hist *hp = h ? &acc->miss : &acc->all;
		char *p, *save = NULL;

		if (getline(&line, &cap, f) <= 0 || line[0] != (h ? 'M' : 'A'))
			goto out;
		for (p = strtok_r(line + 1, " \n", &save); p; p = strtok_r(NULL, " \n", &save)) {
			unsigned i;
			uint64_t n;

			if (sscanf(p, "%u:%" SCNu64, &i, &n) == 2 && i < HBUCKETS) {
				hp->b[i] += n;
				hp->n += n;
			}
		}
	}
	ok = 0;
out:
	free(line);
	return ok;
}

static struct snap *snaps_take(void)
{
	struct snap *s = calloc((size_t)opt.nsrc, sizeof(*s));

	for (int i = 0; s && i < opt.nsrc; i++)
		snap_take(&s[i], opt.src[i].path);
	return s;
}

static void snaps_free(struct snap *s)
{
	for (int i = 0; s && i < opt.nsrc; i++)
		free(s[i].kv);
	free(s);
}

static void report_phase(const char *name, struct snap *before, double *cpu0,
			 const struct res *r, unsigned procs)
{
	struct snap *after = snaps_take();

	print_res(r, procs);
	for (int i = 0; i < opt.ncpu; i++)
		printf("%s.cpu.%s_s %.3f\n", name, opt.cpu[i].name, cpu_of(i) - cpu0[i]);
	for (int i = 0; after && i < opt.nsrc; i++)
		snap_diff(name, opt.src[i].name, &before[i], &after[i]);
	snaps_free(after);
	fflush(stdout);
}

static void report_end(void)
{
	struct snap *s = snaps_take();

	for (int i = 0; s && i < opt.nsrc; i++)
		for (int j = 0; j < s[i].n; j++)
			printf("end.%s.%s %s\n", opt.src[i].name, s[i].kv[j].key, s[i].kv[j].val);
	snaps_free(s);
}

static int run_parent(int argc, char **argv)
{
	unsigned n = opt.procs;
	pid_t *pid = calloc(n, sizeof(*pid));
	FILE **up = calloc(n, sizeof(*up));
	int *down = calloc(n, sizeof(*down));
	int np = nphases(), status, ret = 0;
	uint64_t bad = 0;

	char self[4096];
	ssize_t sl = readlink("/proc/self/exe", self, sizeof(self) - 1);

	if (!pid || !up || !down)
		return 1;
	/* exec the real path, so that the children's comm is ours, not "exe" */
	if (sl <= 0)
		snprintf(self, sizeof(self), "/proc/self/exe");
	else
		self[sl] = 0;
	for (unsigned i = 0; i < n; i++) {
		int u[2], d[2];
		char fds[64], idx[16];
		char **av = calloc((size_t)argc + 6, sizeof(*av));

		if (!av || pipe(u) < 0 || pipe(d) < 0) {
			perror("bench-workload: pipe");
			return 1;
		}
		snprintf(fds, sizeof(fds), "%d,%d", d[0], u[1]);
		snprintf(idx, sizeof(idx), "%u", i);
		for (int a = 0; a < argc; a++)
			av[a] = argv[a];
		av[argc] = "--child";
		av[argc + 1] = fds;
		av[argc + 2] = "--child-index";
		av[argc + 3] = idx;
		fflush(stdout);
		pid[i] = fork();
		if (pid[i] < 0) {
			perror("bench-workload: fork");
			return 1;
		}
		if (pid[i] == 0) {
			close(u[0]);
			close(d[1]);
			execv(self, av);
			perror("bench-workload: exec");
			_exit(127);
		}
		free(av);
		close(u[1]);
		close(d[0]);
		up[i] = fdopen(u[0], "r");
		down[i] = d[1];
	}
	for (int ph = 0; ph < np; ph++) {
		const char *name = phases[opt.wl][ph].name;
		struct res *acc = calloc(1, sizeof(*acc));
		struct snap *before;
		double cpu0[MAX_SRC];
		uint64_t t0;
		char *line = NULL;
		size_t cap = 0;

		if (!acc)
			return 1;
		for (unsigned i = 0; i < n; i++)
			if (getline(&line, &cap, up[i]) <= 0 || strncmp(line, "ready", 5) != 0) {
				fprintf(stderr, "bench-workload: child %u failed before %s\n", i, name);
				ret = 1;
				goto wait;
			}
		free(line);
		before = snaps_take();
		for (int i = 0; i < opt.ncpu; i++)
			cpu0[i] = cpu_of(i);
		mark(name, "begin");
		t0 = now_ns();
		for (unsigned i = 0; i < n; i++)
			if (write(down[i], "g", 1) != 1)
				ret = 1;
		for (unsigned i = 0; i < n; i++)
			if (recv_res(up[i], acc) < 0) {
				fprintf(stderr, "bench-workload: child %u failed in %s\n", i, name);
				ret = 1;
				snaps_free(before);
				free(acc);
				goto wait;
			}
		acc->ns = now_ns() - t0;
		mark(name, "end");
		snprintf(acc->name, sizeof(acc->name), "%s", name);
		bad += acc->bad;
		report_phase(name, before, cpu0, acc, n);
		snaps_free(before);
		free(acc);
	}
	report_end();
wait:
	for (unsigned i = 0; i < n; i++) {
		close(down[i]);
		if (waitpid(pid[i], &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status))
			ret = 1;
	}
	printf("bad_pages %" PRIu64 "\n", bad);
	return ret || bad;
}

static int run_child(void)
{
	struct ctx c;
	FILE *up = fdopen(opt.child_wfd, "w");
	int np = nphases();
	uint64_t bad = 0;

	if (!up || setup(&c, opt.size / opt.procs, (unsigned)opt.child_index) < 0)
		return 1;
	for (int ph = 0; ph < np; ph++) {
		struct res *r = calloc(1, sizeof(*r));
		char go;

		if (!r)
			return 1;
		fprintf(up, "ready\n");
		fflush(up);
		if (read(opt.child_rfd, &go, 1) != 1)
			return 1;
		run_phase(&c, &phases[opt.wl][ph], r);
		bad += r->bad;
		send_res(up, r);
		free(r);
	}
	return bad ? 1 : 0;
}

static int run_single(void)
{
	struct ctx c;
	int np = nphases();
	uint64_t bad = 0;

	if (setup(&c, opt.size, 0) < 0)
		return 1;
	for (int ph = 0; ph < np; ph++) {
		const struct phase *p = &phases[opt.wl][ph];
		struct res *r = calloc(1, sizeof(*r));
		struct snap *before = snaps_take();
		double cpu0[MAX_SRC];

		if (!r)
			return 1;
		for (int i = 0; i < opt.ncpu; i++)
			cpu0[i] = cpu_of(i);
		mark(p->name, "begin");
		run_phase(&c, p, r);
		mark(p->name, "end");
		bad += r->bad;
		report_phase(p->name, before, cpu0, r, 1);
		snaps_free(before);
		free(r);
	}
	report_end();
	printf("bad_pages %" PRIu64 "\n", bad);
	fflush(stdout);
	if (bad)
		fprintf(stderr, "bench-workload: %" PRIu64 " pages had wrong content\n", bad);
#ifdef HAVE_ENGINE
	engine_destroy(eng);
#endif
	return bad ? 1 : 0;
}

/* ---------------------------------------------------------------------- */

static int name_eq_value(const char *arg, char *name, size_t nlen, const char **value)
{
	const char *eq = strchr(arg, '=');

	if (!eq || eq == arg || (size_t)(eq - arg) >= nlen)
		return -1;
	memcpy(name, arg, (size_t)(eq - arg));
	name[eq - arg] = 0;
	*value = eq + 1;
	return 0;
}

int main(int argc, char **argv)
{
	enum {
		O_SIZE = 256, O_OPS, O_MAXS, O_PROCS, O_HOTF, O_HOTP, O_WF, O_MISS, O_TOUCH,
		O_CHUNK, O_ROUNDS, O_SEED, O_COUNTERS, O_CPU, O_MARKER, O_CHILD, O_CHILDIDX, O_TAG, O_ESWAP,
		O_EBUDGET, O_ESWAPSIZE, O_THREADS, O_HELP,
	};
	static const struct option lo[] = {
		{ "size", required_argument, NULL, O_SIZE },
		{ "ops", required_argument, NULL, O_OPS },
		{ "max-seconds", required_argument, NULL, O_MAXS },
		{ "procs", required_argument, NULL, O_PROCS },
		{ "threads", required_argument, NULL, O_THREADS },
		{ "hot-frac", required_argument, NULL, O_HOTF },
		{ "hot-prob", required_argument, NULL, O_HOTP },
		{ "write-frac", required_argument, NULL, O_WF },
		{ "miss-ns", required_argument, NULL, O_MISS },
		{ "touch", required_argument, NULL, O_TOUCH },
		{ "chunk", required_argument, NULL, O_CHUNK },
		{ "rounds", required_argument, NULL, O_ROUNDS },
		{ "seed", required_argument, NULL, O_SEED },
		{ "counters", required_argument, NULL, O_COUNTERS },
		{ "cpu", required_argument, NULL, O_CPU },
		{ "marker", required_argument, NULL, O_MARKER },
		{ "tag", required_argument, NULL, O_TAG },
		{ "child", required_argument, NULL, O_CHILD },
		{ "child-index", required_argument, NULL, O_CHILDIDX },
		{ "engine-swap", required_argument, NULL, O_ESWAP },
		{ "engine-budget", required_argument, NULL, O_EBUDGET },
		{ "engine-swap-size", required_argument, NULL, O_ESWAPSIZE },
		{ "help", no_argument, NULL, O_HELP },
		{ 0 },
	};
	const char *wl = NULL, *v;
	int c;
	bool found = false;

	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case O_SIZE: if (parse_size(optarg, &opt.size)) goto bad; break;
		case O_OPS: if (parse_size(optarg, &opt.ops)) goto bad; break;
		case O_MAXS: opt.max_seconds = atof(optarg); break;
		case O_PROCS: opt.procs = (unsigned)atoi(optarg); if (!opt.procs) goto bad; break;
		case O_THREADS:
			opt.threads = (unsigned)atoi(optarg);
			if (!opt.threads || opt.threads > 256)
				goto bad;
			break;
		case O_HOTF: opt.hot_frac = atof(optarg); break;
		case O_HOTP: opt.hot_prob = atof(optarg); break;
		case O_WF: opt.write_frac = atof(optarg); break;
		case O_MISS: if (parse_size(optarg, &opt.miss_ns)) goto bad; break;
		case O_TOUCH: if (parse_size(optarg, &opt.touch)) goto bad; break;
		case O_CHUNK: if (parse_size(optarg, &opt.chunk)) goto bad; break;
		case O_ROUNDS: opt.rounds = (unsigned)atoi(optarg); break;
		case O_SEED: opt.seed = strtoull(optarg, NULL, 0); break;
		case O_COUNTERS:
			if (opt.nsrc == MAX_SRC ||
			    name_eq_value(optarg, opt.src[opt.nsrc].name, sizeof(opt.src[0].name), &v))
				goto bad;
			snprintf(opt.src[opt.nsrc++].path, sizeof(opt.src[0].path), "%s", v);
			break;
		case O_CPU:
			if (opt.ncpu == MAX_SRC ||
			    name_eq_value(optarg, opt.cpu[opt.ncpu].name, sizeof(opt.cpu[0].name), &v))
				goto bad;
			opt.cpu[opt.ncpu].engine = strcmp(v, "engine") == 0;
			opt.cpu[opt.ncpu++].pid = (pid_t)atoi(v);
			break;
		case O_MARKER: opt.marker = optarg; break;
		case O_TAG: opt.tag = optarg; break;
		case O_CHILD:
			if (sscanf(optarg, "%d,%d", &opt.child_rfd, &opt.child_wfd) != 2)
				goto bad;
			break;
		case O_CHILDIDX: opt.child_index = atoi(optarg); break;
		case O_ESWAP: opt.engine_swap = optarg; break;
		case O_EBUDGET: if (parse_size(optarg, &opt.engine_budget)) goto bad; break;
		case O_ESWAPSIZE: if (parse_size(optarg, &opt.engine_swap_size)) goto bad; break;
		case O_HELP: usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc - 1) {
		usage(stderr);
		return 2;
	}
	wl = argv[optind];
	for (unsigned i = 0; i < sizeof(wl_names) / sizeof(wl_names[0]); i++)
		if (strcmp(wl, wl_names[i]) == 0) {
			opt.wl = (enum wl)i;
			found = true;
		}
	if (!found) {
		fprintf(stderr, "bench-workload: unknown workload %s\n", wl);
		usage(stderr);
		return 2;
	}
#ifndef HAVE_ENGINE
	if (opt.engine_swap) {
		fprintf(stderr, "bench-workload: built without the engine\n");
		return 2;
	}
#else
	if (opt.engine_swap) {
		if (opt.procs > 1) {
			fprintf(stderr, "bench-workload: --engine-swap is in-process: one process only\n");
			return 2;
		}
		if (!opt.engine_swap_size)
			opt.engine_swap_size = 2 * opt.size + (64ULL << 20);
		if (opt.nsrc < MAX_SRC) {
			snprintf(opt.src[opt.nsrc].name, sizeof(opt.src[0].name), "uvm");
			snprintf(opt.src[opt.nsrc++].path, sizeof(opt.src[0].path), "@engine");
		}
		if (opt.ncpu < MAX_SRC) {
			snprintf(opt.cpu[opt.ncpu].name, sizeof(opt.cpu[0].name), "daemon");
			opt.cpu[opt.ncpu++].engine = true;
		}
	}
#endif
	if (opt.child_rfd >= 0)
		return run_child();
	if (opt.marker)
		marker_fd = open(opt.marker, O_WRONLY);
	printf("workload %s\n", wl);
	printf("size_bytes %" PRIu64 "\n", opt.size);
	printf("procs %u\n", opt.procs);
	printf("measured");
	for (int i = 0; i < nphases(); i++)
		if (phases[opt.wl][i].measured)
			printf(" %s", phases[opt.wl][i].name);
	printf("\n");
	fflush(stdout);
	if (opt.procs > 1)
		return run_parent(argc, argv);
	return run_single();

bad:
	fprintf(stderr, "bench-workload: bad value: %s\n", optarg);
	usage(stderr);
	return 2;
}
