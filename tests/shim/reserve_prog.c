#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
/*
 * Reserve, then commit, as JVMs, V8 and Go do: RESERVE_PROG_MB (default
 * 192) MiB of data in a reservation twice that size made PROT_NONE and
 * MAP_NORESERVE, committed 4 MiB at a time, half the pieces with
 * mprotect, half with mmap(MAP_FIXED) over the reservation; filled,
 * checked in a scattered order; a quarter decommitted (mmap(MAP_FIXED,
 * PROT_NONE)) and committed again, which must read as zeros; a read of
 * the uncommitted rest must fault. Prints a checksum.
 *
 * RESERVE_PROG_EXEC=1: committed read-write-executable, as a JIT's code
 * cache is (HotSpot, V8); each page of the pieces never decommitted
 * gets a little function at its end (x86-64: mov eax, page; ret), called
 * at the very end, after the data checks paged it out: an instruction
 * fetch must fault it back in, whole.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define MiB (1UL << 20)
#define PG 4096UL
#define STEP (4 * MiB)

static int failures;

#define CHECK(cond, ...) \
	do { \
		if (!(cond)) { \
			printf("FAIL %s:%d: ", __FILE__, __LINE__); \
			printf(__VA_ARGS__); \
			printf("\n"); \
			failures++; \
		} \
	} while (0)

static uint64_t mark(size_t page, unsigned gen)
{
	return (page + 1) * 0x9e3779b97f4a7c15ULL ^ (uint64_t)gen << 56;
}

static void fill(char *p, size_t len, size_t first, unsigned gen)
{
	for (size_t off = 0; off < len; off += PG) {
		uint64_t v = mark(first + off / PG, gen);

		for (size_t i = 0; i < PG; i += 512)
			memcpy(p + off + i, &v, sizeof(v));
	}
}

static size_t bad(const char *p, size_t len, size_t first, unsigned gen)
{
	size_t n = 0;

	for (size_t off = 0; off < len; off += PG) {
		uint64_t v = mark(first + off / PG, gen), a;

		for (size_t i = 0; i < PG; i += 512) {
			memcpy(&a, p + off + i, sizeof(a));
			if (a != v) {
				n++;
				break;
			}
		}
	}
	return n;
}

static size_t nonzero(const char *p, size_t len)
{
	size_t n = 0;

	for (size_t off = 0; off < len; off += PG)
		for (size_t i = 0; i < PG; i += 256)
			if (p[off + i]) {
				n++;
				break;
			}
	return n;
}

static sigjmp_buf jmp;

static void on_segv(int sig)
{
	(void)sig;
	siglongjmp(jmp, 1);
}

static int faults(volatile char *p)
{
	struct sigaction sa = { .sa_handler = on_segv }, old;
	int hit = 0;

	sigemptyset(&sa.sa_mask);
	sigaction(SIGSEGV, &sa, &old);
	if (sigsetjmp(jmp, 1))
		hit = 1;
	else
		(void)*p;
	sigaction(SIGSEGV, &old, NULL);
	return hit;
}

static int commit_prot = PROT_READ | PROT_WRITE;

static int commit(char *p, size_t len, int how)
{
	if (how)
		return mprotect(p, len, commit_prot);
	return mmap(p, len, commit_prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) ==
	       p ? 0 : -1;
}

/* past the marks fill() writes (every 512 bytes, 8 bytes each) */
#define CODE_AT (PG - 16)

static void put_code(char *page, uint32_t v)
{
#if defined(__x86_64__) || defined(__i386__)
	unsigned char code[6] = { 0xb8, (unsigned char)v, (unsigned char)(v >> 8),
				  (unsigned char)(v >> 16), (unsigned char)(v >> 24), 0xc3 };

	memcpy(page + CODE_AT, code, sizeof(code));
#else
	(void)page;
	(void)v;
#endif
}

/* Pages whose function does not answer its number. */
static size_t bad_code(char *p, size_t len, size_t first)
{
	size_t n = 0;

#if defined(__x86_64__) || defined(__i386__)
	for (size_t off = 0; off < len; off += PG) {
		uint32_t (*fn)(void) = (uint32_t (*)(void))(void *)(p + off + CODE_AT);

		n += fn() != (uint32_t)(first + off / PG);
	}
#else
	(void)p;
	(void)len;
	(void)first;
#endif
	return n;
}

int main(void)
{
	const char *mb = getenv("RESERVE_PROG_MB"), *ex = getenv("RESERVE_PROG_EXEC");
	int exec = ex && *ex == '1';
	size_t data = (size_t)(mb ? atol(mb) : 192) * MiB, steps = data / STEP;
	unsigned *gen = calloc(steps, sizeof(*gen));
	uint64_t sum = 0;
	char *r;

	r = mmap(NULL, 2 * data, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (r == MAP_FAILED || !gen) {
		perror("reserve");
		return 2;
	}
	CHECK(faults(r), "a reserved page is readable");
	if (exec)
		commit_prot |= PROT_EXEC;
	for (size_t s = 0; s < steps; s++) {
		CHECK(commit(r + s * STEP, STEP, s & 1) == 0, "commit %zu", s);
		CHECK(nonzero(r + s * STEP, STEP) == 0, "committed piece %zu not zero", s);
		fill(r + s * STEP, STEP, s * (STEP / PG), 0);
		for (size_t off = 0; exec && s % 4 && off < STEP; off += PG)
			put_code(r + s * STEP + off, (uint32_t)(s * (STEP / PG) + off / PG));
	}
	CHECK(faults(r + data), "the uncommitted rest is readable");
	for (size_t k = 0, s = 0; k < steps; k++, s = (s + 7) % steps)
		CHECK(bad(r + s * STEP, STEP, s * (STEP / PG), 0) == 0, "piece %zu lost data", s);
	/* decommit a quarter the JVM way, commit again: zeros, then new data */
	for (size_t s = 0; s < steps; s += 4) {
		CHECK(mmap(r + s * STEP, STEP, PROT_NONE,
			   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0) == r + s * STEP,
		      "decommit %zu", s);
		CHECK(faults(r + s * STEP + PG), "decommitted piece %zu readable", s);
		CHECK(commit(r + s * STEP, STEP, (s / 4) & 1) == 0, "commit again %zu", s);
		CHECK(nonzero(r + s * STEP, STEP) == 0, "recommitted piece %zu not zero", s);
		fill(r + s * STEP, STEP, s * (STEP / PG), 1);
		gen[s] = 1;
	}
	for (size_t k = 0, s = 0; k < steps; k++, s = (s + 5) % steps) {
		CHECK(bad(r + s * STEP, STEP, s * (STEP / PG), gen[s]) == 0, "piece %zu lost data at the end", s);
		for (size_t off = 0; off < STEP; off += 64 * PG)
			sum = sum * 31 + (unsigned char)r[s * STEP + off + 3];
	}
	for (size_t s = 1; exec && s < steps; s += (s % 4 == 3) ? 2 : 1)
		CHECK(bad_code(r + s * STEP, STEP, s * (STEP / PG)) == 0, "piece %zu: code lost", s);
	CHECK(munmap(r, 2 * data) == 0, "munmap");
	printf("%zu MiB committed%s in %zu pieces, sum %016llx, %s\n", data / MiB,
	       exec ? " executable, code run from 3/4 of the pages" : "", steps,
	       (unsigned long long)sum, failures ? "FAILED" : "ok");
	return failures ? 1 : 0;
}
