#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
/*
 * Allocation speed of whatever malloc the process has (glibc, a preloaded
 * jemalloc, the shim's heap): THREADS threads (default 1), each keeping
 * LIVE (default 100000) blocks of 16 to 4096 bytes, replacing one at
 * random OPS (default 20 million) times, writing the first bytes of each
 * new block. Prints ns per malloc+free pair in that loop (each thread's
 * time, averaged) and the peak resident set.
 * Run it within the budget: it measures the allocator, not paging.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

static long live = 100000, ops = 20000000;
static _Atomic uint64_t loop_ns;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static uint64_t next(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void *worker(void *arg)
{
	uint64_t s = 0x9e3779b97f4a7c15ULL ^ (uintptr_t)arg;
	char **blk = calloc((size_t)live, sizeof(*blk));

	for (long i = 0; i < live; i++)
		blk[i] = malloc(16 + next(&s) % 4081);
	uint64_t t0 = now_ns();

	for (long i = 0; i < ops; i++) {
		long k = (long)(next(&s) % (uint64_t)live);
		size_t n = 16 + next(&s) % 4081;

		free(blk[k]);
		blk[k] = malloc(n);
		memset(blk[k], (int)i, 16);
	}
	loop_ns += now_ns() - t0;
	for (long i = 0; i < live; i++)
		free(blk[i]);
	free(blk);
	return NULL;
}

int main(void)
{
	const char *v;
	int threads = (v = getenv("THREADS")) ? atoi(v) : 1;
	pthread_t t[64];
	struct rusage ru;
	double ns;

	if ((v = getenv("LIVE")))
		live = atol(v);
	if ((v = getenv("OPS")))
		ops = atol(v);
	if (threads < 1 || threads > 64)
		return 2;
	for (int i = 0; i < threads; i++)
		pthread_create(&t[i], NULL, worker, (void *)(uintptr_t)(i + 1));
	for (int i = 0; i < threads; i++)
		pthread_join(t[i], NULL);
	getrusage(RUSAGE_SELF, &ru);
	/* the replacement loop only: not the first touch of the live set */
	ns = (double)loop_ns / ((double)ops * threads);
	printf("threads %d live %ld ops %ld: %.1f ns per malloc+free, peak RSS %ld MiB\n", threads,
	       live, ops, ns, ru.ru_maxrss / 1024);
	return 0;
}
