#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
/*
 * Many small blocks, as a server's heap has: ALLOC_PROG_MB (default 192)
 * MiB of blocks of 100 to 2000 bytes, each filled with a pattern of its
 * own, checked twice in a scattered order, some grown with realloc across
 * the shim's threshold and sized with malloc_usable_size, half freed and
 * allocated again. Prints a checksum (the same plain and under the shim).
 */
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures;

static uint64_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	return x;
}

static size_t size_of(size_t i, unsigned gen)
{
	return 100 + mix(i * 2 + gen) % 1901;
}

static void fill(unsigned char *p, size_t len, size_t i, unsigned gen)
{
	uint64_t v = mix(i ^ (uint64_t)gen << 40);

	for (size_t k = 0; k < len; k++)
		p[k] = (unsigned char)(v >> (k % 8 * 8)) + (unsigned char)k;
}

static int ok(const unsigned char *p, size_t len, size_t i, unsigned gen)
{
	uint64_t v = mix(i ^ (uint64_t)gen << 40);

	for (size_t k = 0; k < len; k++)
		if (p[k] != (unsigned char)((unsigned char)(v >> (k % 8 * 8)) + (unsigned char)k))
			return 0;
	return 1;
}

int main(void)
{
	const char *mb = getenv("ALLOC_PROG_MB");
	size_t total = (size_t)(mb ? atol(mb) : 192) << 20, n = 0, bytes = 0, grown = 0;
	unsigned char **blk;
	unsigned *gen;
	uint64_t sum = 0;

	for (n = 0; bytes < total; n++)
		bytes += size_of(n, 0);
	blk = malloc(n * sizeof(*blk));
	gen = calloc(n, sizeof(*gen));
	if (!blk || !gen)
		return 2;
	for (size_t i = 0; i < n; i++) {
		blk[i] = malloc(size_of(i, 0));
		if (!blk[i])
			return 2;
		fill(blk[i], size_of(i, 0), i, 0);
	}
	/* scattered: a prime stride over the blocks */
	for (size_t k = 0, i = 0; k < n; k++, i = (i + 7919) % n)
		if (!ok(blk[i], size_of(i, 0), i, 0) || malloc_usable_size(blk[i]) < size_of(i, 0))
			failures++;
	/* half freed and made again, a few grown past 1 MiB by realloc */
	for (size_t i = 0; i < n; i += 2) {
		free(blk[i]);
		blk[i] = malloc(size_of(i, 1));
		if (!blk[i])
			return 2;
		gen[i] = 1;
		fill(blk[i], size_of(i, 1), i, 1);
	}
	for (size_t i = 1; i < n; i += n / 8 + 1) {
		unsigned char *q = realloc(blk[i], 3 << 20);

		if (!q || !ok(q, size_of(i, gen[i]), i, gen[i]) || malloc_usable_size(q) < (3 << 20))
			failures++;
		blk[i] = q;
		grown++;
	}
	for (size_t k = 0, i = 0; k < n; k++, i = (i + 7919) % n) {
		size_t len = size_of(i, gen[i]);

		if (!ok(blk[i], len, i, gen[i]))
			failures++;
		for (size_t j = 0; j < len; j += 61)
			sum = sum * 31 + blk[i][j];
	}
	for (size_t i = 0; i < n; i++)
		free(blk[i]);
	free(blk);
	free(gen);
	printf("%zu blocks, %zu MiB, %zu grown, sum %016llx, %s\n", n, bytes >> 20, grown,
	       (unsigned long long)sum, failures ? "FAILED" : "ok");
	return failures ? 1 : 0;
}
