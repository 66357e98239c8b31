#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
/*
 * Direct mmap/mremap/munmap/madvise/mprotect on big private anonymous
 * mappings, checking the kernel's semantics (zero fill, data kept across
 * mremap, MADV_DONTNEED reads zeros, MAP_FIXED over a mapping, mprotect
 * read-only or PROT_NONE of part of a block and back). Run
 * plain and under the shim: the output must be the same, the exit 0.
 */
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define MiB (1UL << 20)
#define PG 4096UL

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

static void *map(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED) {
		perror("mmap");
		exit(2);
	}
	return p;
}

static void fill(char *p, size_t len, uint64_t seed)
{
	for (size_t off = 0; off < len; off += PG) {
		uint64_t v = off / PG * 0x9e3779b97f4a7c15ULL ^ seed;

		memcpy(p + off, &v, sizeof(v));
		memcpy(p + off + PG - sizeof(v), &v, sizeof(v));
	}
}

/* Pages whose marks are wrong, from page `first` of the pattern. */
static size_t bad(const char *p, size_t len, uint64_t seed, size_t first)
{
	size_t n = 0;

	for (size_t off = 0; off < len; off += PG) {
		uint64_t v = (first + off / PG) * 0x9e3779b97f4a7c15ULL ^ seed, a, b;

		memcpy(&a, p + off, sizeof(a));
		memcpy(&b, p + off + PG - sizeof(b), sizeof(b));
		n += a != v || b != v;
	}
	return n;
}

static size_t nonzero(const char *p, size_t len)
{
	size_t n = 0;

	for (size_t off = 0; off < len; off += PG)
		for (size_t i = 0; i < PG; i += 64)
			if (p[off + i]) {
				n++;
				break;
			}
	return n;
}

static uint64_t checksum(const char *p, size_t len)
{
	uint64_t h = 1469598103934665603ULL;

	for (size_t i = 0; i < len; i += 8) {
		uint64_t v;

		memcpy(&v, p + i, sizeof(v));
		h = (h ^ v) * 1099511628211ULL;
	}
	return h;
}

static sigjmp_buf segv_jmp;

static void on_segv(int sig)
{
	siglongjmp(segv_jmp, 1);
}

/* Does writing (or, !write, reading) *p raise SIGSEGV? */
static int segv(volatile char *p, int write)
{
	struct sigaction sa = { .sa_handler = on_segv }, old;
	int hit = 0;

	sigemptyset(&sa.sa_mask);
	sigaction(SIGSEGV, &sa, &old);
	if (sigsetjmp(segv_jmp, 1))
		hit = 1;
	else if (write)
		*p = 1;
	else
		(void)*p;
	sigaction(SIGSEGV, &old, NULL);
	return hit;
}

/*
 * Part of a block made read-only splits its mapping in three: pages on
 * either side of a boundary are filled (first touch) or read back
 * (swapped) by one fault each, read-only pages read, writes to them
 * SIGSEGV; then PROT_NONE, and read-write again. p: 16 MiB of pattern
 * `seed` from page `first`, swapped out by now.
 */
static void protect_checks(char *p, uint64_t seed, size_t first)
{
	char *f = map(MiB), *ro = f + 5 * PG;

	/* untouched pages around the boundaries: the fault windows span them */
	CHECK(mprotect(ro, 3 * PG, PROT_READ) == 0, "mprotect fresh");
	CHECK(nonzero(ro, 3 * PG) == 0, "fresh read-only not zero");
	CHECK(nonzero(f, MiB) == 0, "fresh around read-only not zero");
	CHECK(segv(ro + PG, 1), "write to read-only did not SIGSEGV");
	f[0] = f[8 * PG] = 2;
	CHECK(mprotect(ro, 3 * PG, PROT_READ | PROT_WRITE) == 0, "mprotect fresh back");
	memset(ro, 3, 3 * PG);
	CHECK(f[0] == 2 && f[8 * PG] == 2 && ro[2 * PG] == 3, "fresh after read-write lost data");
	CHECK(munmap(f, MiB) == 0, "munmap fresh");

	/* data paged out meanwhile, an unaligned piece of it */
	ro = p + 3 * MiB + 3 * PG;
	CHECK(mprotect(ro, 37 * PG, PROT_READ) == 0, "mprotect");
	CHECK(bad(p, 16 * MiB, seed, first) == 0, "read-only lost data");
	CHECK(segv(ro + 36 * PG, 1), "write to read-only data did not SIGSEGV");
	CHECK(mprotect(ro, 37 * PG, PROT_NONE) == 0, "PROT_NONE");
	CHECK(segv(ro, 0), "read of PROT_NONE did not SIGSEGV");
	CHECK(bad(p, 3 * MiB, seed, first) == 0, "PROT_NONE neighbours lost data");
	CHECK(mprotect(ro, 37 * PG, PROT_READ | PROT_WRITE) == 0, "mprotect back");
	CHECK(bad(p, 16 * MiB, seed, first) == 0, "PROT_NONE lost data");
	fill(ro, 37 * PG, seed ^ 77);
	CHECK(bad(ro, 37 * PG, seed ^ 77, 0) == 0, "written after read-write lost");
}

int main(void)
{
	size_t big = 256 * MiB;
	char *p, *q, *r;

	/* zero fill, and more data than the budget */
	p = map(big);
	CHECK(nonzero(p, big) == 0, "fresh mapping not zero");
	fill(p, big, 1);
	CHECK(bad(p, big, 1, 0) == 0, "pattern lost");
	printf("fill %zu MiB checksum %016llx\n", big / MiB, (unsigned long long)checksum(p, big));

	/* MADV_DONTNEED: private anonymous memory reads as zeros after it */
	CHECK(madvise(p + 8 * MiB, 8 * MiB, MADV_DONTNEED) == 0, "madvise");
	CHECK(nonzero(p + 8 * MiB, 8 * MiB) == 0, "DONTNEED did not zero");
	CHECK(bad(p, 8 * MiB, 1, 0) == 0 && bad(p + 16 * MiB, 16 * MiB, 1, 4096) == 0,
	      "DONTNEED touched its neighbours");
	fill(p + 8 * MiB, 8 * MiB, 1 ^ 2048 * 0x9e3779b97f4a7c15ULL);

	/* MADV_FREE: either the old data or zeros, never anything else */
	CHECK(madvise(p + 32 * MiB, 4 * MiB, MADV_FREE) == 0, "MADV_FREE");
	for (size_t off = 32 * MiB; off < 36 * MiB; off += PG)
		CHECK(bad(p + off, PG, 1, off / PG) == 0 || nonzero(p + off, PG) == 0,
		      "MADV_FREE page %zu is garbage", off / PG);
	/* other advice is accepted */
	CHECK(madvise(p, 4 * MiB, MADV_WILLNEED) == 0, "MADV_WILLNEED");
	CHECK(madvise(p, 4 * MiB, MADV_SEQUENTIAL) == 0, "MADV_SEQUENTIAL");

	/* munmap a hole in the middle, map again: zeros */
	CHECK(munmap(p + 64 * MiB, 4 * MiB) == 0, "munmap middle");
	q = map(4 * MiB);
	CHECK(nonzero(q, 4 * MiB) == 0, "reused memory not zero");
	CHECK(bad(p + 68 * MiB, 4 * MiB, 1, 68 * 256) == 0, "munmap touched its neighbours");
	CHECK(munmap(q, 4 * MiB) == 0, "munmap");

	/* mremap: shrink keeps the head, grow keeps the data and adds zeros */
	r = mremap(p + 128 * MiB, 128 * MiB, 64 * MiB, 0);
	CHECK(r == p + 128 * MiB, "shrink in place");
	CHECK(bad(r, 64 * MiB, 1, 128 * 256) == 0, "shrink lost data");
	r = mremap(r, 64 * MiB, 160 * MiB, MREMAP_MAYMOVE);
	CHECK(r != MAP_FAILED, "grow");
	CHECK(bad(r, 64 * MiB, 1, 128 * 256) == 0, "grow lost data");
	CHECK(nonzero(r + 64 * MiB, 96 * MiB) == 0, "grown part not zero");
	printf("mremap grow checksum %016llx\n", (unsigned long long)checksum(r, 160 * MiB));
	/* without MREMAP_MAYMOVE it grows in place or fails, never moves */
	q = mremap(r, 160 * MiB, 161 * MiB, 0);
	CHECK(q == MAP_FAILED || q == r, "moved without MAYMOVE");
	if (q == r)
		CHECK(nonzero(r + 160 * MiB, MiB) == 0, "grown in place, not zero");
	CHECK(munmap(r, q == r ? 161 * MiB : 160 * MiB) == 0, "munmap grown");

	protect_checks(p + 96 * MiB, 1, 96 * 256);
	/* mprotect, then the pages are handed out read-write again */
	CHECK(mprotect(p + 72 * MiB, 4 * MiB, PROT_READ) == 0, "mprotect");
	CHECK(bad(p + 72 * MiB, 4 * MiB, 1, 72 * 256) == 0, "mprotect lost data");
	CHECK(munmap(p + 72 * MiB, 4 * MiB) == 0, "munmap protected");
	q = map(4 * MiB);
	memset(q, 0x11, 4 * MiB);
	CHECK(munmap(q, 4 * MiB) == 0, "munmap");

	/* MAP_FIXED over part of the mapping: a file shows through */
	{
		char path[] = "/tmp/mmap_prog-XXXXXX", buf[PG];
		int fd = mkstemp(path);

		CHECK(fd >= 0, "mkstemp");
		unlink(path);
		memset(buf, 'F', sizeof(buf));
		CHECK(write(fd, buf, sizeof(buf)) == (ssize_t)sizeof(buf), "write");
		q = mmap(p + 80 * MiB, PG, PROT_READ, MAP_SHARED | MAP_FIXED, fd, 0);
		CHECK(q == p + 80 * MiB, "MAP_FIXED");
		CHECK(q[0] == 'F' && q[PG - 1] == 'F', "file not visible");
		CHECK(bad(p + 80 * MiB + PG, MiB, 1, 80 * 256 + 1) == 0, "MAP_FIXED touched neighbours");
		CHECK(munmap(q, PG) == 0, "munmap file");
		close(fd);
	}

	/* many mappings at once */
	{
		enum { N = 600 };
		static char *m[N];
		uint64_t sum = 0;

		for (int i = 0; i < N; i++) {
			m[i] = map(2 * MiB);
			memset(m[i] + (size_t)i * PG % (2 * MiB), (i & 0xff) | 1, PG);
		}
		for (int i = 0; i < N; i++) {
			sum += (unsigned char)m[i][(size_t)i * PG % (2 * MiB)];
			CHECK(nonzero(m[i], 2 * MiB) == 1, "mapping %d", i);
			CHECK(munmap(m[i], 2 * MiB) == 0, "munmap %d", i);
		}
		printf("many mappings sum %llu\n", (unsigned long long)sum);
	}

	CHECK(bad(p, 8 * MiB, 1, 0) == 0, "head lost");
	CHECK(munmap(p, 128 * MiB) == 0, "munmap the rest");
	printf("%s\n", failures ? "FAILED" : "ok");
	return failures ? 1 : 0;
}
