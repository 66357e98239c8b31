/*
 * Programs a hostile, or merely unusual, user runs under the shim: each
 * one reproduced a way to lose data or hang a client (issue 9), and each
 * must now end with every byte checked. run-hostile.sh starts a daemon of
 * its own, runs them with a small budget and does the killing and the
 * corrupting from outside.
 *
 *   fork-writer   a thread keeps writing every page while the main thread
 *                 forks; each child's copy must stay as it first read it
 *                 (a page written between the daemon's dirty check and its
 *                 copy came back stale from swap in the child)
 *   reread SECS   fill 64 MiB, then re-read and check it until SECS pass;
 *                 the runner kills the daemon (-9) or flips bytes in its
 *                 swap file meanwhile. A page reads its data or raises
 *                 SIGBUS; never zeros, never other data, never a hang.
 *                 With HOSTILE_PROGRESS set, each pass prints its
 *                 CLOCK_MONOTONIC time
 *   raw-munmap    munmap managed memory by syscall, map fresh private
 *                 memory there and fill it: the daemon must not fence
 *                 (wipe) the range it no longer owns; then madvise
 *                 (DONTNEED) through the shim makes it read zeros, and
 *                 once freed the range is never handed out again
 *   raw-dontneed  discard managed memory by syscall while the daemon fences
 *                 the same pages: discarded pages read zeros (or, rarely,
 *                 the content they had: a discard racing our fence of that
 *                 very page), others keep their data (the fence zaps them
 *                 too, by the memfd)
 *   raw-free      MADV_FREE by syscall, which the kernel refuses on managed
 *                 memory (shared) after telling the daemon of a discard,
 *                 then write the pages again: no write may be punched
 *                 away by the daemon's late discard
 *   raw-mremap-race SECS  part of a managed block moved by raw mremap, half of
 *                 the moved part replaced at once by memory of the program's
 *                 own: the moved data stays, the new memory is never zapped
 *   move-under-fault SECS  a thread faults on cold pages of a moved part
 *                 while the main thread moves that whole part again: the
 *                 reader ends (SIGSEGV at the old address), never hangs,
 *                 and the data arrives whole
 *   raw-mremap-odd  moved parts against a refused MADV_FREE, a fork after a
 *                 one-page move, MREMAP_DONTUNMAP and a read-only part (below)
 *   raw-unmap-race SECS  cold managed pages unmapped by syscall, private
 *                 memory mapped and filled there at once, again and again,
 *                 while the daemon fences: no fence may zap the new memory
 *   raw-mremap    move part of a managed segment by syscall after some of
 *                 it went to swap: it arrives whole, its neighbours stay
 *   uring-fixed   a managed buffer registered with io_uring (a long-term
 *                 pin), evicted by pressure, then READ_FIXED into: the
 *                 program must see what was read, not the old contents
 *   mremap-pinned part of a block moved by syscall and registered with
 *                 io_uring at once, before the daemon took in the move:
 *                 READ_FIXED must land in the program's memory, and a
 *                 fork, pinned or not, must give the child a copy
 *   mremap-pinned-before  the same with the buffer registered before the
 *                 move (the kernel prints it at its old address)
 *   churn SECS    for run-clientfail.sh, which SIGKILLs it at random
 *                 points: in a loop, a fresh block mapped (a new segment:
 *                 a registration) and filled, grown by mremap through the
 *                 shim, half of it moved by a raw mremap (a REMAP event),
 *                 a fork whose child checks and rewrites its copy, the
 *                 block checked and unmapped, while a 12 MiB block is swept
 *                 for pressure (faults, evictions, with a budget under
 *                 16 MiB). Its checks hold when it
 *                 runs to the end
 *   mlock SWAPFILE  a buffer mlocked, then filled with a secret, under
 *                 pressure: it stays in memory and the swap file never
 *                 holds the secret; unlocked, it may go and comes back whole
 *   odirect SECS  O_DIRECT preads into a managed buffer, alternating two
 *                 file regions of different generations and checking each
 *                 read, while another thread sweeps a large block: a page
 *                 evicted under a read in flight would read back the
 *                 generation before (the read filled an orphaned page)
 *   odirect-moved SECS  the same into the back half of a managed block
 *                 moved by raw mremap, where the shim has no segment
 *
 * Output: one "result" line of counters; exit 0 when every check passed.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#ifdef HAVE_LIBURING
#include <liburing.h>
#endif
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MiB (1UL << 20)
#define PG 4096UL

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint64_t pattern(uint64_t page, uint64_t seed)
{
	uint64_t x = page * 0x9e3779b97f4a7c15ULL ^ seed;

	x ^= x >> 31;
	return x ? x : 1;   /* never zero: zeros must read as wrong */
}

/* Every 512th word of the page, so a torn or zeroed page shows. */
static void fill_page(char *p, uint64_t page, uint64_t seed)
{
	uint64_t v = pattern(page, seed);

	for (size_t w = 0; w < PG; w += 512)
		memcpy(p + w, &v, sizeof(v));
}

/* The words fill_page wrote, from byte `from` on. */
static bool page_ok_from(const char *p, uint64_t page, uint64_t seed, size_t from)
{
	uint64_t v = pattern(page, seed), got;

	for (size_t w = from; w < PG; w += 512) {
		memcpy(&got, p + w, sizeof(got));
		if (got != v)
			return false;
	}
	return true;
}

static bool page_ok(const char *p, uint64_t page, uint64_t seed)
{
	return page_ok_from(p, page, seed, 0);
}

/* Touch every page of [p, p + len) for reading: pressure on the budget. */
static uint64_t sweep(const char *p, size_t len)
{
	uint64_t sum = 0;

	for (size_t off = 0; off < len; off += PG)
		sum += *(const volatile uint64_t *)(p + off);
	return sum;
}

/* --- fork-writer --------------------------------------------------------- */

#define FW_LEN (32 * MiB)
#define FW_FORKS 12

static _Atomic bool fw_stop;

static void *fw_writer(void *arg)
{
	uint64_t *base = arg;

	while (!atomic_load_explicit(&fw_stop, memory_order_relaxed))
		for (size_t pg = 0; pg < FW_LEN / PG; pg++)
			base[pg * (PG / 8)]++;
	return NULL;
}

/* The child: what it read first must stay, through evictions and back. */
static int fw_child(const uint64_t *base, const char *other, size_t other_len)
{
	size_t n = FW_LEN / PG, bad = 0;
	uint64_t *seen = mmap(NULL, n * 8, PROT_READ | PROT_WRITE,
			      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (seen == MAP_FAILED)
		return 2;
	for (size_t pg = 0; pg < n; pg++)
		seen[pg] = base[pg * (PG / 8)];
	for (int round = 0; round < 2; round++) {
		sweep(other, other_len);
		for (size_t pg = 0; pg < n; pg++) {
			uint64_t v = base[pg * (PG / 8)];

			if (v != seen[pg]) {
				if (bad < 5)
					printf("fork-writer: child %d page %zu read %llu, then %llu\n",
					       getpid(), pg, (unsigned long long)seen[pg],
					       (unsigned long long)v);
				bad++;
			}
		}
	}
	fflush(stdout);
	return bad ? 1 : 0;
}

static int fork_writer(void)
{
	uint64_t *base = malloc(FW_LEN);
	size_t other_len = 48 * MiB;
	char *other = malloc(other_len);
	pthread_t th;
	int failed = 0;

	if (!base || !other)
		return 2;
	memset(other, 1, other_len);
	for (size_t pg = 0; pg < FW_LEN / PG; pg++)
		base[pg * (PG / 8)] = 1;
	pthread_create(&th, NULL, fw_writer, base);
	for (int i = 0; i < FW_FORKS; i++) {
		struct timespec pause = { .tv_nsec = 200 * 1000 * 1000 };
		int status;
		pid_t pid;

		nanosleep(&pause, NULL);
		pid = fork();
		if (pid < 0)
			return 2;
		if (pid == 0)
			_exit(fw_child(base, other, other_len));
		if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
		    WEXITSTATUS(status) != 0) {
			printf("fork-writer: fork %d: child %s %d\n", i,
			       WIFEXITED(status) ? "exited" : "killed by signal",
			       WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
			failed++;
		}
	}
	atomic_store(&fw_stop, true);
	pthread_join(th, NULL);
	printf("result fork-writer forks %d failed %d\n", FW_FORKS, failed);
	return failed ? 1 : 0;
}

/* --- reread -------------------------------------------------------------- */

static sigjmp_buf rr_jmp;
static volatile sig_atomic_t rr_armed;

static void rr_sigbus(int sig, siginfo_t *si, void *uc)
{
	(void)sig, (void)si, (void)uc;
	if (rr_armed)
		siglongjmp(rr_jmp, 1);
	abort();
}

/* Read one byte of the page; true if that raised SIGBUS. */
static __attribute__((noinline)) bool touch_raises_sigbus(volatile char *q)
{
	rr_armed = 1;
	if (sigsetjmp(rr_jmp, 1)) {
		rr_armed = 0;
		return true;
	}
	(void)q[0];
	rr_armed = 0;
	return false;
}

static int reread(double secs)
{
	size_t len = 64 * MiB, n = len / PG;
	/* page by page: a page's SIGBUS must come from that page's touch */
	char *p = aligned_alloc(PG, len);
	/*
	 * which pages raised SIGBUS, in memory the shim does not manage (a
	 * raw mapping: the shim manages every anonymous mmap it sees)
	 */
	uint8_t *lost = (uint8_t *)syscall(SYS_mmap, NULL, n, PROT_READ | PROT_WRITE,
					   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct sigaction sa = { .sa_sigaction = rr_sigbus, .sa_flags = SA_SIGINFO | SA_NODEFER };
	size_t wrong = 0, zeros = 0, sigbus = 0, checked = 0;
	unsigned passes = 0;
	/* HOSTILE_PROGRESS: one line a pass with its time, for run-faults.sh's stall case */
	bool progress = getenv("HOSTILE_PROGRESS") != NULL;
	double end;

	if (!p || lost == MAP_FAILED)
		return 2;
	/*
	 * stdout's buffer would be a heap block, managed: after the daemon's
	 * death it may be in swap only, and raise SIGBUS in printf
	 */
	setvbuf(stdout, NULL, _IONBF, 0);
	sigaction(SIGBUS, &sa, NULL);
	for (size_t pg = 0; pg < n; pg++)
		fill_page(p + pg * PG, pg, 7);
	if (progress)
		printf("filled at %.3f\n", now());
	else
		printf("filled\n");
	fflush(stdout);
	end = now() + secs;
	while (now() < end) {
		for (size_t pg = 0; pg < n; pg++) {
			volatile char *q = p + pg * PG;

			if (lost[pg])
				continue;
			if (touch_raises_sigbus(q)) {
				lost[pg] = 1;
				sigbus++;
				continue;
			}
			checked++;
			if (!page_ok((const char *)q, pg, 7)) {
				if (*(const uint64_t *)q == 0)
					zeros++;
				if (wrong < 5)
					printf("reread: page %zu wrong (%#llx)\n", pg,
					       (unsigned long long)*(const uint64_t *)q);
				wrong++;
				/* count it once */
				fill_page((char *)q, pg, 7);
			}
		}
		passes++;
		if (progress)
			printf("pass %u at %.3f\n", passes, now());
	}
	printf("result reread passes %u checked %zu sigbus %zu wrong %zu zeros %zu\n",
	       passes, checked, sigbus, wrong, zeros);
	return wrong ? 1 : 0;
}

/* --- raw-munmap ---------------------------------------------------------- */

static int raw_munmap_case(void)
{
	size_t len = 8 * MiB, big = 64 * MiB, bad = 0, nonzero = 0, reused = 0;
	char *p = malloc(len), *q, *other, *orig = p;

	if (!p)
		return 2;
	for (size_t off = 0; off < len; off += PG)
		fill_page(p + off, off / PG, 1);
	/* the shim is not told: the daemon still thinks it owns the range */
	p = (char *)(((uintptr_t)p + PG - 1) & ~(PG - 1));
	len -= PG;
	if (syscall(SYS_munmap, p, len) < 0)
		return 2;
	q = (char *)syscall(SYS_mmap, p, len, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	if (q != p)
		return 2;
	for (size_t off = 0; off < len; off += PG)
		fill_page(q + off, off / PG, 2);
	other = malloc(big);
	if (!other)
		return 2;
	for (int round = 0; round < 3; round++) {
		memset(other, round + 1, big);
		sweep(other, big);
	}
	for (size_t off = 0; off < len; off += PG)
		if (!page_ok(q + off, off / PG, 2))
			bad++;
	/*
	 * MADV_DONTNEED through the shim over the program's own mapping: it
	 * reads zeros, like any private memory (the daemon's release skipped
	 * the part it no longer owns, and the shim zeroed it by hand)
	 */
	if (madvise(q, len / 2, MADV_DONTNEED) < 0)
		return 2;
	for (size_t off = 0; off < len / 2; off++)
		if (q[off])
			nonzero++;
	/* freed, that range is never handed out again as managed memory */
	free(orig);
	for (int i = 0; i < 4; i++) {
		char *n = malloc(len);

		if (!n)
			return 2;
		if (n < q + len && n + len > q)
			reused++;
		memset(n, 0x5a, len);
	}
	printf("result raw-munmap pages %zu wrong %zu nonzero_after_dontneed %zu reused %zu\n",
	       len / PG, bad, nonzero, reused);
	return bad || nonzero || reused ? 1 : 0;
}

/*
 * raw-mremap: a managed block moved by syscall to a place of our choosing,
 * after pressure sent part of it to swap: every page must arrive, and
 * the block next to it (same segment) must not be disturbed.
 */
static int raw_mremap_case(void)
{
	size_t len = 8 * MiB, big = 64 * MiB, bad = 0;
	char *a = malloc(len), *b = malloc(len), *other = malloc(big), *dst, *q;

	if (!a || !b || !other)
		return 2;
	a = (char *)(((uintptr_t)a + PG - 1) & ~(PG - 1));
	len -= PG;
	for (size_t off = 0; off < len; off += PG) {
		fill_page(a + off, off / PG, 5);
		fill_page(b + off, off / PG, 6);
	}
	memset(other, 1, big);
	sweep(other, big);
	/* somewhere free to go: reserve, then move over the reservation */
	dst = (char *)syscall(SYS_mmap, NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (dst == MAP_FAILED)
		return 2;
	q = (char *)syscall(SYS_mremap, a, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, dst);
	if (q != dst) {
		printf("raw-mremap: mremap: %s\n", strerror(errno));
		return 2;
	}
	for (int round = 0; round < 2; round++) {
		memset(other, round + 2, big);
		sweep(other, big);
	}
	for (size_t off = 0; off < len; off += PG) {
		if (!page_ok(q + off, off / PG, 5))
			bad++;
		if (!page_ok(b + off, off / PG, 6))
			bad++;
	}
	/* the moved memory is the program's own now: it writes and reads it back */
	for (size_t off = 0; off < len; off += PG)
		fill_page(q + off, off / PG, 8);
	memset(other, 9, big);
	sweep(other, big);
	for (size_t off = 0; off < len; off += PG)
		if (!page_ok(q + off, off / PG, 8))
			bad++;
	/*
	 * It is still private memory: a child gets a copy. The child writes
	 * all of it; the parent's pages must not change (they did when the
	 * moved part stayed shared memory of the object's memfd).
	 */
	pid_t kid = fork();
	size_t leaked = 0;

	if (kid == 0) {
		size_t cbad = 0;

		for (size_t off = 0; off < len; off += PG) {
			if (!page_ok(q + off, off / PG, 8))
				cbad++;
			fill_page(q + off, off / PG, 10);
		}
		_exit(cbad ? 1 : 0);
	}
	if (kid < 0)
		return 2;
	int st;

	if (waitpid(kid, &st, 0) != kid || !WIFEXITED(st) || WEXITSTATUS(st)) {
		printf("raw-mremap: the child found wrong pages (status %#x)\n", st);
		bad++;
	}
	for (size_t off = 0; off < len; off += PG)
		if (!page_ok(q + off, off / PG, 8))
			leaked++;
	/* and private anonymous memory discarded reads zeros, not older data */
	size_t not_zero = 0;

	syscall(SYS_madvise, q, 16 * PG, MADV_DONTNEED);
	for (size_t off = 0; off < 16 * PG; off++)
		if (q[off])
			not_zero++;
	if (not_zero)
		bad++;
	printf("result raw-mremap pages %zu wrong %zu changed_by_child %zu not_zero_after_dontneed %zu\n",
	       3 * len / PG, bad, leaked, not_zero);
	return bad || leaked ? 1 : 0;
}

/*
 * raw-dontneed: a thread discards chunks of managed memory by syscall
 * (MADV_DONTNEED: they must read zeros) and refills them, while another
 * keeps the budget under pressure, so the daemon fences the same pages
 * (its fence is an MADV_DONTNEED too) all the while.
 */
#define DN_LEN (16 * MiB)
#define DN_CHUNK (16 * PG)

static _Atomic bool dn_stop;

static void *dn_sweeper(void *arg)
{
	char *other = arg;

	for (unsigned round = 0; !atomic_load(&dn_stop); round++) {
		for (size_t off = 0; off < 48 * MiB; off += PG)
			other[off] = (char)round;
	}
	return NULL;
}

static int raw_dontneed_case(double secs)
{
	char *p = malloc(DN_LEN), *other = malloc(48 * MiB);
	size_t nchunks = DN_LEN / DN_CHUNK, old = 0, wrong = 0, rounds = 0;
	uint64_t *gen = mmap(NULL, nchunks * 8, PROT_READ | PROT_WRITE,
			     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint64_t rng = 88172645463325252ULL;
	pthread_t th;
	double end;

	if (!p || !other || gen == MAP_FAILED)
		return 2;
	p = (char *)(((uintptr_t)p + PG - 1) & ~(PG - 1));
	nchunks--;
	for (size_t c = 0; c < nchunks; c++) {
		gen[c] = 1;
		for (size_t k = 0; k < DN_CHUNK; k += PG)
			fill_page(p + c * DN_CHUNK + k, c * 16 + k / PG, gen[c]);
	}
	memset(other, 1, 48 * MiB);
	pthread_create(&th, NULL, dn_sweeper, other);
	end = now() + secs;
	while (now() < end) {
		size_t c;
		char *q;

		rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
		c = rng % nchunks;
		q = p + c * DN_CHUNK;
		for (size_t k = 0; k < DN_CHUNK; k += PG)
			if (!page_ok(q + k, c * 16 + k / PG, gen[c]))
				wrong++;
		if (syscall(SYS_madvise, q, DN_CHUNK, MADV_DONTNEED) < 0)
			return 2;
		/*
		 * Zeros; or, for a page our fence zapped at that very moment,
		 * its content before the discard (libuvmpager-preload(7): the
		 * two cannot be told apart from a refused MADV_FREE, whose
		 * writes must stay). Never other data.
		 */
		bool kept = false;

		for (size_t k = 0; k < DN_CHUNK; k += PG) {
			bool zero = true;

			for (size_t w = 0; w < PG && zero; w += 8)
				zero = *(uint64_t *)(q + k + w) == 0;
			if (zero)
				continue;
			if (page_ok(q + k, c * 16 + k / PG, gen[c]))
				kept = true;
			else
				wrong++;
		}
		old += kept;
		gen[c]++;
		for (size_t k = 0; k < DN_CHUNK; k += PG)
			fill_page(q + k, c * 16 + k / PG, gen[c]);
		rounds++;
	}
	atomic_store(&dn_stop, true);
	pthread_join(th, NULL);
	for (size_t c = 0; c < nchunks; c++)
		for (size_t k = 0; k < DN_CHUNK; k += PG)
			if (!page_ok(p + c * DN_CHUNK + k, c * 16 + k / PG, gen[c]))
				wrong++;
	printf("result raw-dontneed discards %zu old_data %zu wrong %zu\n", rounds, old, wrong);
	/* the race is narrow: old data after more than 1 discard in 100 is a broken common path */
	return wrong || old * 100 > rounds ? 1 : 0;
}

/* --- raw-free ------------------------------------------------------------ */

/*
 * MADV_FREE by syscall on managed memory: the kernel sends the daemon a
 * REMOVE event for the range, then refuses the call (EINVAL: the view
 * is a shared memfd) and discards nothing, and the call returns as soon
 * as the event is read, before the daemon handles it. The program writes
 * the chunk again at once; the daemon punched the pages when it got to
 * the REMOVE, after some of those writes (torture seed 2: "zeros where
 * data was written"). Every page must read the generation written last.
 * A page may read zeros between the madvise and the rewrite (one the
 * daemon had fenced goes), never after.
 */
/* The sweeper of raw-dontneed keeps the page daemon fencing here too. */
static int raw_free_case(double secs)
{
	char *p = malloc(DN_LEN), *other = malloc(48 * MiB);
	size_t nchunks = DN_LEN / DN_CHUNK, wrong = 0, rounds = 0, zeros = 0;
	uint64_t *gen = mmap(NULL, nchunks * 8, PROT_READ | PROT_WRITE,
			     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint64_t rng = 88172645463325252ULL;
	pthread_t th;
	double end;

	if (!p || !other || gen == MAP_FAILED)
		return 2;
	p = (char *)(((uintptr_t)p + PG - 1) & ~(PG - 1));
	nchunks--;
	for (size_t c = 0; c < nchunks; c++) {
		gen[c] = 1;
		for (size_t k = 0; k < DN_CHUNK; k += PG)
			fill_page(p + c * DN_CHUNK + k, c * 16 + k / PG, gen[c]);
	}
	memset(other, 1, 48 * MiB);
	atomic_store(&dn_stop, false);
	pthread_create(&th, NULL, dn_sweeper, other);
	end = now() + secs;
	while (now() < end) {
		size_t c;
		char *q;

		rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
		c = rng % nchunks;
		q = p + c * DN_CHUNK;
		for (size_t k = 0; k < DN_CHUNK; k += PG)
			if (!page_ok(q + k, c * 16 + k / PG, gen[c]))
				wrong++;
		if (syscall(SYS_madvise, q, DN_CHUNK, MADV_FREE) == 0 || errno != EINVAL)
			return 2;   /* not a shared mapping: not under the shim */
		for (size_t k = 0; k < DN_CHUNK; k += PG)
			if (*(uint64_t *)(q + k) == 0)
				zeros++;
		gen[c]++;
		for (size_t k = 0; k < DN_CHUNK; k += PG)
			fill_page(q + k, c * 16 + k / PG, gen[c]);
		for (size_t k = 0; k < DN_CHUNK; k += PG)
			if (!page_ok(q + k, c * 16 + k / PG, gen[c]))
				wrong++;
		rounds++;
	}
	atomic_store(&dn_stop, true);
	pthread_join(th, NULL);
	for (size_t c = 0; c < nchunks; c++)
		for (size_t k = 0; k < DN_CHUNK; k += PG)
			if (!page_ok(p + c * DN_CHUNK + k, c * 16 + k / PG, gen[c]))
				wrong++;
	printf("result raw-free refused %zu zeros_before_rewrite %zu wrong %zu\n", rounds, zeros, wrong);
	return wrong ? 1 : 0;
}

/*
 * raw-unmap-race SECS: again and again, cold managed pages are unmapped
 * by syscall and private memory of the program's own is mapped and
 * filled there at once, while a thread keeps the daemon fencing. The
 * munmap returns once its UNMAP event is read, not handled: a fence of
 * the old range sent in between zapped the program's new memory (zeros).
 */
static int raw_unmap_race(double secs)
{
	size_t len = 256 * 1024, rounds = 0, wrong = 0, bad_rounds = 0;
	char *other = malloc(48 * MiB);
	pthread_t th;
	double end;

	if (!other)
		return 2;
	memset(other, 1, 48 * MiB);
	pthread_create(&th, NULL, dn_sweeper, other);
	end = now() + secs;
	while (now() < end) {
		char *p = aligned_alloc(PG, len), *q;

		if (!p)
			return 2;
		for (size_t off = 0; off < len; off += PG)
			fill_page(p + off, off / PG, 1);
		/* cold enough to be fenced soon */
		usleep(20 * 1000);
		if (syscall(SYS_munmap, p, len) < 0)
			return 2;
		q = (char *)syscall(SYS_mmap, p, len, PROT_READ | PROT_WRITE,
				    MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
		if (q != p)
			return 2;
		for (size_t off = 0; off < len; off += PG)
			fill_page(q + off, off / PG, 2);
		size_t before = wrong;

		for (int look = 0; look < 3; look++) {
			usleep(2000);
			for (size_t off = 0; off < len; off += PG)
				if (!page_ok(q + off, off / PG, 2)) {
					uint64_t w0;

					memcpy(&w0, q + off, sizeof(w0));
					if (wrong++ < 5)
						printf("raw-unmap-race: round %zu page %zu look %d reads %s\n",
						       rounds, off / PG, look,
						       !w0 ? "zeros" : page_ok(q + off, off / PG, 1)
								   ? "the unmapped data" : "other data");
					fill_page(q + off, off / PG, 2);
				}
		}
		bad_rounds += wrong > before;
		rounds++;
	}
	atomic_store(&dn_stop, true);
	pthread_join(th, NULL);
	printf("result raw-unmap-race rounds %zu pages %zu wrong %zu (in %zu rounds)\n", rounds,
	       rounds * len / PG, wrong, bad_rounds);
	return wrong ? 1 : 0;
}

/*
 * raw-mremap-race SECS: again and again, part of a managed block, cold
 * enough to be partly in swap, is moved by raw mremap; at once the
 * program unmaps the back half of the moved part by raw munmap, maps
 * private memory of its own there and fills it. The program's mremap
 * returns when the daemon has read the move, before it took it in.
 * The daemon's former hand-over to private memory, by address in the
 * client, zapped the new memory (zeros, 2 of the first rounds); the
 * moved part then becoming an object of its own, the destruction of a
 * vacant one unregistered its range by address, where the next round's
 * moved part was (its swapped pages read zeros). The moved data must
 * stay, and the new memory must never be touched.
 */
static int raw_mremap_race(double secs)
{
	size_t len = 512 * 1024, half = len / 2, rounds = 0, wrong = 0, bad_rounds = 0;
	char *other = malloc(48 * MiB);
	pthread_t th;
	double end;

	if (!other)
		return 2;
	memset(other, 1, 48 * MiB);
	pthread_create(&th, NULL, dn_sweeper, other);
	end = now() + secs;
	while (now() < end) {
		char *p = aligned_alloc(PG, 2 * len), *dst, *q;
		size_t before = wrong;

		if (!p)
			return 2;
		for (size_t off = 0; off < 2 * len; off += PG)
			fill_page(p + off, off / PG, 1);
		/* cold enough to be fenced and partly evicted */
		usleep(30 * 1000);
		dst = (char *)syscall(SYS_mmap, NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS,
				      -1, 0);
		if (dst == MAP_FAILED)
			return 2;
		q = (char *)syscall(SYS_mremap, p + len, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, dst);
		if (q != dst) {
			printf("raw-mremap-race: mremap: %s\n", strerror(errno));
			return 2;
		}
		if (syscall(SYS_munmap, q + half, half) < 0 ||
		    (char *)syscall(SYS_mmap, q + half, half, PROT_READ | PROT_WRITE,
				    MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) != q + half)
			return 2;
		for (size_t off = half; off < len; off += PG)
			fill_page(q + off, off / PG, 2);
		for (int look = 0; look < 3; look++) {
			usleep(3000);
			for (size_t off = 0; off < len; off += PG) {
				unsigned gen = off < half ? 1 : 2;
				size_t pg = (off < half ? len + off : off) / PG;

				if (off >= half)
					pg = off / PG;
				if (page_ok(q + off, pg, gen))
					continue;
				uint64_t w0;

				memcpy(&w0, q + off, sizeof(w0));
				if (wrong++ < 5)
					printf("raw-mremap-race: round %zu page %zu (%s) look %d reads %s\n",
					       rounds, off / PG, off < half ? "moved" : "the program's own",
					       look, !w0 ? "zeros" : "other data");
				fill_page(q + off, pg, gen);
			}
		}
		bad_rounds += wrong > before;
		/* the moved part and the new memory are the program's; the block's front stays ours */
		syscall(SYS_munmap, q, len);
		for (size_t off = 0; off < len; off += PG)
			if (!page_ok(p + off, off / PG, 1) && wrong++ < 5)
				printf("raw-mremap-race: round %zu: the block's front page %zu changed\n",
				       rounds, off / PG);
		/* the back of the block is a hole now: map it again before the heap reuses it */
		if ((char *)syscall(SYS_mmap, p + len, len, PROT_READ | PROT_WRITE,
				    MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) != p + len)
			return 2;
		rounds++;
	}
	atomic_store(&dn_stop, true);
	pthread_join(th, NULL);
	printf("result raw-mremap-race rounds %zu pages %zu wrong %zu (in %zu rounds)\n", rounds,
	       rounds * len / PG, wrong, bad_rounds);
	return wrong ? 1 : 0;
}

/* Raw PROT_NONE reservation, then len of src moved over it by raw mremap. */
static char *raw_move(char *src, size_t len, int flags)
{
	char *dst = (char *)syscall(SYS_mmap, NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS,
				    -1, 0);

	if (dst == MAP_FAILED)
		return MAP_FAILED;
	return (char *)syscall(SYS_mremap, src, len, len, MREMAP_MAYMOVE | MREMAP_FIXED | flags,
			       dst);
}

/* Which signal a read (or write) of p raised, 0 for none. */
static __attribute__((noinline)) int touch_signal(volatile char *p, bool write)
{
	struct sigaction sa = { .sa_sigaction = rr_sigbus, .sa_flags = SA_SIGINFO | SA_NODEFER };
	int sig = 0;

	sigaction(SIGBUS, &sa, NULL);
	sigaction(SIGSEGV, &sa, NULL);
	rr_armed = 1;
	if (sigsetjmp(rr_jmp, 1)) {
		sig = -1;
	} else {
		if (write)
			p[0] = 1;
		else
			(void)p[0];
	}
	rr_armed = 0;
	signal(SIGSEGV, SIG_DFL);
	return sig;
}

/*
 * move-under-fault SECS: a thread reads cold pages of a part the program
 * moved by raw mremap (an object of its own), and the main thread moves
 * that whole part again meanwhile. A read in flight for a fault at the
 * old address, finishing after the daemon took in the move, mapped the
 * page at the new address and woke only that: the reader slept on the
 * old one for good (an adversarial review of the fault hand-over found
 * it, 2026-12-07). The reader must get what any program racing its own
 * mremap gets (SIGSEGV at the old address, or its data), never a hang;
 * the moved data must arrive whole.
 */
struct mf_reader {
	char *base;
	size_t npages, first;       /* first: the page index of base in the block */
	size_t reads, wrong;
	_Atomic bool done;
};

static __thread sigjmp_buf *mf_jmp;

static void mf_signal(int sig, siginfo_t *si, void *uc)
{
	(void)si, (void)uc;
	if (mf_jmp)
		siglongjmp(*mf_jmp, 1);
	signal(sig, SIG_DFL);
}

static void *mf_read(void *arg)
{
	struct mf_reader *m = arg;
	uint64_t rng = 0x2545F4914F6CDD1DULL ^ (uintptr_t)m->base;
	sigjmp_buf jb;

	mf_jmp = &jb;
	if (sigsetjmp(jb, 1) == 0) {
		for (;;) {
			size_t pg;

			rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
			pg = rng % m->npages;
			if (!page_ok(m->base + pg * PG, m->first + pg, 1) && m->wrong++ < 5)
				printf("move-under-fault: page %zu read wrong before the move\n", pg);
			m->reads++;
		}
	}
	/* the part moved away under it: SIGSEGV at the old address */
	mf_jmp = NULL;
	atomic_store(&m->done, true);
	return NULL;
}

static int move_under_fault(double secs)
{
	size_t len = 8 * MiB, rounds = 0, wrong = 0, reads = 0;
	struct sigaction sa = { .sa_sigaction = mf_signal, .sa_flags = SA_SIGINFO | SA_NODEFER };
	char *other = malloc(48 * MiB);
	uint64_t rng = 88172645463325252ULL;
	pthread_t sweeper;
	double end;

	if (!other)
		return 2;
	sigaction(SIGSEGV, &sa, NULL);
	memset(other, 1, 48 * MiB);
	pthread_create(&sweeper, NULL, dn_sweeper, other);
	end = now() + secs;
	while (now() < end) {
		struct mf_reader m = { .npages = len / PG, .first = len / PG };
		char *p = mmap(NULL, 2 * len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		struct timespec dl;
		pthread_t th;
		char *q, *r;

		if (p == MAP_FAILED)
			return 2;
		for (size_t off = 0; off < 2 * len; off += PG)
			fill_page(p + off, off / PG, 1);
		/* the back half becomes an object of its own, then goes cold */
		q = raw_move(p + len, len, 0);
		if (q == MAP_FAILED) {
			printf("move-under-fault: mremap: %s\n", strerror(errno));
			return 2;
		}
		usleep(40 * 1000);
		m.base = q;
		pthread_create(&th, NULL, mf_read, &m);
		rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
		usleep(2000 + rng % 20000);
		/* the whole of that object moves while the reader faults on it */
		r = raw_move(q, len, 0);
		if (r == MAP_FAILED) {
			printf("move-under-fault: second mremap: %s\n", strerror(errno));
			return 2;
		}
		clock_gettime(CLOCK_REALTIME, &dl);
		dl.tv_sec += 10;
		if (pthread_timedjoin_np(th, NULL, &dl) != 0) {
			printf("move-under-fault: round %zu: the reader hangs in a fault at the old "
			       "address (10 s after the move)\n", rounds);
			printf("result move-under-fault rounds %zu reads %zu wrong %zu hang 1\n",
			       rounds, reads + m.reads, wrong + m.wrong);
			fflush(stdout);
			_exit(1);
		}
		reads += m.reads;
		wrong += m.wrong;
		for (size_t off = 0; off < len; off += PG)
			if (!page_ok(r + off, (len + off) / PG, 1) && wrong++ < 5)
				printf("move-under-fault: round %zu: moved page %zu wrong\n", rounds, off / PG);
		for (size_t off = 0; off < len; off += PG)
			if (!page_ok(p + off, off / PG, 1) && wrong++ < 5)
				printf("move-under-fault: round %zu: front page %zu wrong\n", rounds, off / PG);
		syscall(SYS_munmap, r, len);
		munmap(p, 2 * len);
		rounds++;
	}
	atomic_store(&dn_stop, true);
	pthread_join(sweeper, NULL);
	signal(SIGSEGV, SIG_DFL);
	printf("result move-under-fault rounds %zu reads %zu wrong %zu hang 0\n", rounds, reads, wrong);
	return wrong ? 1 : 0;
}

/*
 * raw-mremap-odd: what an adversarial review of the moved-part objects
 * found (2026-12-07), each on a block of its own under pressure:
 * - a refused MADV_FREE (these views refuse it after sending REMOVE),
 *   pages written, then moved: the discard was settled at the old
 *   address, found no PTE there and punched the new writes (zeros);
 * - one page moved, then fork: the child's new connection mapped its
 *   tables in the hole the part left (MADV_DONTFORK), and the clone was
 *   registered over them (the child hung);
 * - MREMAP_DONTUNMAP: the old range stays registered and no object
 *   serves it: its touch must raise SIGBUS, not fault forever;
 * - the moved part made read-only: a fork child must not write it.
 */
static int raw_mremap_odd(void)
{
	size_t len = 2 * MiB, big = 64 * MiB, wrong = 0, n = 0;
	char *other = malloc(big), *p, *q;
	int st, sig;
	pid_t kid;

	if (!other)
		return 2;
	memset(other, 1, big);
	/* 1: MADV_FREE refused, written, moved */
	p = aligned_alloc(PG, len);
	for (size_t off = 0; off < len; off += PG)
		fill_page(p + off, off / PG, 1);
	syscall(SYS_madvise, p + len / 2, len / 2, MADV_FREE);
	for (size_t off = len / 2; off < len; off += PG)
		fill_page(p + off, off / PG, 2);
	q = raw_move(p + len / 2, len / 2, 0);
	if (q == MAP_FAILED)
		return 2;
	sweep(other, big);
	for (size_t off = 0; off < len / 2; off += PG, n++)
		if (!page_ok(q + off, (len / 2 + off) / PG, 2) && wrong++ < 3)
			printf("raw-mremap-odd: free-move page %zu wrong\n", off / PG);
	/* 2: one page moved, then fork */
	p = aligned_alloc(PG, len);
	for (size_t off = 0; off < len; off += PG)
		fill_page(p + off, off / PG, 3);
	q = raw_move(p + len - PG, PG, 0);
	if (q == MAP_FAILED)
		return 2;
	kid = fork();
	if (kid == 0)
		_exit(touch_signal(q, false) ? 3 : page_ok(q, len / PG - 1, 3) ? 0 : 4);
	if (kid < 0 || waitpid(kid, &st, 0) != kid || !WIFEXITED(st) || WEXITSTATUS(st)) {
		printf("raw-mremap-odd: one page moved, fork: child status %#x\n", st);
		wrong++;
	}
	n++;
	/* 3: MREMAP_DONTUNMAP: the old range is nobody's */
	p = aligned_alloc(PG, len);
	for (size_t off = 0; off < len; off += PG)
		fill_page(p + off, off / PG, 5);
	q = raw_move(p + len / 2, len / 2, MREMAP_DONTUNMAP);
	if (q == MAP_FAILED) {
		printf("raw-mremap-odd: MREMAP_DONTUNMAP: %s (not tried)\n", strerror(errno));
	} else {
		sweep(other, big);
		for (size_t off = 0; off < len / 2; off += PG, n++)
			if (!page_ok(q + off, (len / 2 + off) / PG, 5))
				wrong++;
		sig = touch_signal(p + len / 2, false);
		if (!sig) {
			printf("raw-mremap-odd: the range MREMAP_DONTUNMAP left reads without SIGBUS\n");
			wrong++;
		}
	}
	/* 4: the moved part read-only, then fork: the child cannot write it */
	p = aligned_alloc(PG, len);
	for (size_t off = 0; off < len; off += PG)
		fill_page(p + off, off / PG, 6);
	q = raw_move(p + len / 2, len / 2, 0);
	if (q == MAP_FAILED || syscall(SYS_mprotect, q, len / 2, PROT_READ) < 0)
		return 2;
	kid = fork();
	if (kid == 0)
		_exit(!page_ok(q, len / 2 / PG, 6) ? 3 : touch_signal(q, true) ? 0 : 4);
	if (kid < 0 || waitpid(kid, &st, 0) != kid || !WIFEXITED(st) || WEXITSTATUS(st)) {
		printf("raw-mremap-odd: read-only moved part, fork: child status %#x\n", st);
		wrong++;
	}
	n++;
	printf("result raw-mremap-odd checks %zu wrong %zu\n", n, wrong);
	return wrong ? 1 : 0;
}

/* --- mlock ------------------------------------------------------------- */

#define ML_LOCKED (4 * MiB)
#define ML_OTHER (44 * MiB)

/* Is the page at p mapped (pagemap bit 63)? */
static bool present(const void *p)
{
	uint64_t e = 0;
	int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return false;
	if (pread(fd, &e, sizeof(e), (off_t)((uintptr_t)p / PG * sizeof(e))) != sizeof(e))
		e = 0;
	close(fd);
	return e >> 63;
}

/* How many copies of the secret's 16 bytes does the file hold? */
static long in_file(const char *path, const unsigned char *secret)
{
	static char buf[1 << 20];
	long found = 0;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -1;
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		for (const char *p = buf; (p = memmem(p, (size_t)(buf + n - p), secret, 16)); p += 16)
			found++;
	close(fd);
	return found;
}

/*
 * mlock SWAPFILE: a buffer locked with mlock(2) and then filled with a
 * secret (as gpg or ssh-agent do) must stay in memory under pressure and
 * never reach the daemon's swap file; once unlocked it may go, and
 * comes back whole. Every page begins with the same 16 random bytes.
 */
static int mlock_case(const char *swapfile)
{
	char *locked = aligned_alloc(PG, ML_LOCKED), *other = aligned_alloc(PG, ML_OTHER);
	size_t npages = ML_LOCKED / PG, absent = 0, wrong = 0;
	unsigned char secret[16];
	long leaked, leaked_after;
	int fd;

	fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
	if (!locked || !other || fd < 0 || read(fd, secret, sizeof(secret)) != sizeof(secret))
		return 2;
	close(fd);
	if (mlock(locked, ML_LOCKED) < 0) {
		perror("mlock");
		return 2;
	}
	for (size_t i = 0; i < npages; i++) {
		fill_page(locked + i * PG, i, 7);
		memcpy(locked + i * PG, secret, sizeof(secret));
	}
	/* pressure: twice through 44 MiB with a 16 MiB budget */
	for (int pass = 0; pass < 2; pass++)
		for (size_t off = 0; off < ML_OTHER; off += PG)
			fill_page(other + off, off / PG, (uint64_t)pass + 1);
	for (size_t i = 0; i < npages; i++)
		absent += !present(locked + i * PG);
	leaked = in_file(swapfile, secret);
	for (size_t i = 0; i < npages; i++)
		wrong += memcmp(locked + i * PG, secret, sizeof(secret)) != 0 ||
			 !page_ok_from(locked + i * PG, i, 7, 512);
	/* unlocked, it may go to swap, and must come back whole */
	if (munlock(locked, ML_LOCKED) < 0)
		return 2;
	for (int pass = 0; pass < 2; pass++)
		sweep(other, ML_OTHER);
	leaked_after = in_file(swapfile, secret);
	for (size_t i = 0; i < npages; i++)
		wrong += memcmp(locked + i * PG, secret, sizeof(secret)) != 0 ||
			 !page_ok_from(locked + i * PG, i, 7, 512);
	printf("result mlock pages %zu absent_while_locked %zu secret_pages_in_swap %ld "
	       "after_munlock %ld wrong %zu\n", npages, absent, leaked, leaked_after, wrong);
	return absent || leaked || wrong ? 1 : 0;
}

/* --- uring-fixed --------------------------------------------------------- */

#ifdef HAVE_LIBURING
static int uring_fixed(void)
{
	size_t len = 4 * MiB, big = 64 * MiB, bad = 0;
	char path[] = "/var/tmp/uvmpager-hostile-XXXXXX";
	struct io_uring ring;
	struct io_uring_sqe *sqe;
	struct io_uring_cqe *cqe;
	struct iovec iov;
	char *buf, *other, *src;
	int fd, r;

	if (posix_memalign((void **)&buf, PG, len) || !(other = malloc(big)))
		return 2;
	for (size_t off = 0; off < len; off += PG)
		fill_page(buf + off, off / PG, 3);
	/* what the file holds: a different pattern */
	fd = mkstemp(path);
	src = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (fd < 0 || src == MAP_FAILED)
		return 2;
	unlink(path);
	for (size_t off = 0; off < len; off += PG)
		fill_page(src + off, off / PG, 4);
	if (pwrite(fd, src, len, 0) != (ssize_t)len)
		return 2;
	r = io_uring_queue_init(8, &ring, 0);
	if (r < 0)
		return 2;
	iov = (struct iovec){ buf, len };
	r = io_uring_register_buffers(&ring, &iov, 1);
	if (r < 0) {
		printf("result uring-fixed refused %s\n", strerror(-r));
		/* refusing the pin with an error is an acceptable answer */
		return 0;
	}
	/* pressure: the registered buffer's pages are the coldest */
	for (int round = 0; round < 3; round++) {
		memset(other, round + 1, big);
		sweep(other, big);
	}
	sqe = io_uring_get_sqe(&ring);
	io_uring_prep_read_fixed(sqe, fd, buf, len, 0, 0);
	io_uring_submit(&ring);
	r = io_uring_wait_cqe(&ring, &cqe);
	if (r < 0 || cqe->res != (int)len) {
		printf("uring-fixed: read %d\n", r < 0 ? r : cqe->res);
		return 2;
	}
	io_uring_cqe_seen(&ring, cqe);
	for (size_t off = 0; off < len; off += PG)
		if (!page_ok(buf + off, off / PG, 4))
			bad++;
	printf("result uring-fixed pages %zu stale %zu\n", len / PG, bad);
	io_uring_unregister_buffers(&ring);
	io_uring_queue_exit(&ring);
	return bad ? 1 : 0;
}

/*
 * mremap-pinned: part of a managed block moved by syscall, its resident
 * tail registered with io_uring at once, before the daemon took in the
 * move, then READ_FIXED into: the program must read what the kernel
 * wrote. The daemon's former hand-over to private memory copied the
 * pages away from under the pin, which kept the memfd's: the read landed
 * there, the program read the old data. A fork child, pinned or not,
 * must get a copy of its own.
 */
static int mremap_pinned(void)
{
	size_t len = 8 * MiB, tail = MiB, big = 64 * MiB, bad = 0, stale = 0, leaked = 0;
	char path[] = "/var/tmp/uvmpager-hostile-XXXXXX";
	char *a = malloc(len + PG), *other = malloc(big), *dst, *q, *src;
	struct io_uring ring;
	struct io_uring_sqe *sqe;
	struct io_uring_cqe *cqe;
	struct iovec iov;
	int fd, r, st;
	pid_t kid;

	if (!a || !other)
		return 2;
	a = (char *)(((uintptr_t)a + PG - 1) & ~(PG - 1));
	fd = mkstemp(path);
	src = mmap(NULL, tail, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (fd < 0 || src == MAP_FAILED)
		return 2;
	unlink(path);
	for (size_t off = 0; off < tail; off += PG)
		fill_page(src + off, (len - tail + off) / PG, 7);
	if (pwrite(fd, src, tail, 0) != (ssize_t)tail)
		return 2;
	if (io_uring_queue_init(8, &ring, 0) < 0)
		return 2;
	for (size_t off = 0; off < len; off += PG)
		fill_page(a + off, off / PG, 5);
	memset(other, 1, big);
	sweep(other, big);
	/* the head in swap, the tail written again: present, writable PTEs to pin */
	for (size_t off = len - tail; off < len; off += PG)
		fill_page(a + off, off / PG, 6);
	dst = (char *)syscall(SYS_mmap, NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (dst == MAP_FAILED)
		return 2;
	q = (char *)syscall(SYS_mremap, a, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, dst);
	if (q != dst) {
		printf("mremap-pinned: mremap: %s\n", strerror(errno));
		return 2;
	}
	iov = (struct iovec){ q + len - tail, tail };
	r = io_uring_register_buffers(&ring, &iov, 1);
	if (r < 0) {
		printf("mremap-pinned: io_uring_register_buffers: %s\n", strerror(-r));
		return 2;
	}
	/*
	 * The moved part is an object of its own from the moment the daemon
	 * read the move, pinned or not: a child forked at once gets a copy
	 * of all of it (the fork waits for the daemon to take in the move).
	 */
	kid = fork();
	if (kid == 0) {
		for (size_t off = 0; off < len; off += PG)
			if (!page_ok(q + off, off / PG, off < len - tail ? 5 : 6))
				_exit(1);
		_exit(0);
	}
	if (kid < 0 || waitpid(kid, &st, 0) != kid || !WIFEXITED(st) || WEXITSTATUS(st)) {
		printf("mremap-pinned: a child forked while pinned read wrong data (status %#x)\n", st);
		bad++;
	}
	/* pressure goes on: the pinned pages must stay */
	for (int round = 0; round < 2; round++) {
		memset(other, round + 2, big);
		sweep(other, big);
	}
	sqe = io_uring_get_sqe(&ring);
	io_uring_prep_read_fixed(sqe, fd, q + len - tail, tail, 0, 0);
	io_uring_submit(&ring);
	r = io_uring_wait_cqe(&ring, &cqe);
	if (r < 0 || cqe->res != (int)tail) {
		printf("mremap-pinned: read %d\n", r < 0 ? r : cqe->res);
		return 2;
	}
	io_uring_cqe_seen(&ring, cqe);
	for (size_t off = 0; off < len; off += PG) {
		bool ok = page_ok(q + off, off / PG, off < len - tail ? 5 : 7);

		if (!ok && off >= len - tail && page_ok(q + off, off / PG, 6))
			stale++;
		else if (!ok)
			bad++;
	}
	io_uring_unregister_buffers(&ring);
	io_uring_queue_exit(&ring);
	/* the pin is gone: a child still gets a copy, the parent's pages do not change */
	kid = fork();
	if (kid == 0) {
		size_t cbad = 0;

		for (size_t off = 0; off < len; off += PG) {
			if (!page_ok(q + off, off / PG, off < len - tail ? 5 : 7))
				cbad++;
			fill_page(q + off, off / PG, 10);
		}
		_exit(cbad ? 1 : 0);
	}
	if (kid < 0)
		return 2;
	if (waitpid(kid, &st, 0) != kid || !WIFEXITED(st) || WEXITSTATUS(st)) {
		printf("mremap-pinned: the child found wrong pages (status %#x)\n", st);
		bad++;
	}
	for (size_t off = 0; off < len; off += PG)
		if (!page_ok(q + off, off / PG, off < len - tail ? 5 : 7))
			leaked++;
	printf("result mremap-pinned pages %zu wrong %zu stale %zu changed_by_child %zu\n",
	       len / PG, bad, stale, leaked);
	return bad || stale || leaked ? 1 : 0;
}
/*
 * mremap-pinned-before: a buffer registered with io_uring first, its
 * block moved by syscall after: the kernel still prints the buffer at the
 * address it was registered at, and keeps writing the pages (now at the
 * new place) through READ_FIXED at that address. The daemon must take the
 * part as pinned there (it handed it over, and the read was lost).
 */
static int mremap_pinned_before(void)
{
	size_t len = 8 * MiB, tail = MiB, bad = 0, stale = 0;
	char path[] = "/var/tmp/uvmpager-hostile-XXXXXX";
	char *a = malloc(len + PG), *dst, *q, *src;
	struct io_uring ring;
	struct io_uring_sqe *sqe;
	struct io_uring_cqe *cqe;
	struct iovec iov;
	int fd, r;

	if (!a)
		return 2;
	a = (char *)(((uintptr_t)a + PG - 1) & ~(PG - 1));
	fd = mkstemp(path);
	src = mmap(NULL, tail, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (fd < 0 || src == MAP_FAILED)
		return 2;
	unlink(path);
	for (size_t off = 0; off < tail; off += PG)
		fill_page(src + off, (len - tail + off) / PG, 7);
	if (pwrite(fd, src, tail, 0) != (ssize_t)tail)
		return 2;
	if (io_uring_queue_init(8, &ring, 0) < 0)
		return 2;
	for (size_t off = 0; off < len; off += PG)
		fill_page(a + off, off / PG, 6);
	iov = (struct iovec){ a + len - tail, tail };
	r = io_uring_register_buffers(&ring, &iov, 1);
	if (r < 0) {
		printf("mremap-pinned-before: io_uring_register_buffers: %s\n", strerror(-r));
		return 2;
	}
	sleep(1);
	dst = (char *)syscall(SYS_mmap, NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (dst == MAP_FAILED)
		return 2;
	q = (char *)syscall(SYS_mremap, a, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, dst);
	if (q != dst) {
		printf("mremap-pinned-before: mremap: %s\n", strerror(errno));
		return 2;
	}
	sleep(1);   /* the daemon takes in the move */
	sqe = io_uring_get_sqe(&ring);
	/* the registered address: io_uring checks against the ubuf it recorded */
	io_uring_prep_read_fixed(sqe, fd, a + len - tail, tail, 0, 0);
	io_uring_submit(&ring);
	r = io_uring_wait_cqe(&ring, &cqe);
	if (r < 0 || cqe->res != (int)tail) {
		printf("mremap-pinned-before: read %d\n", r < 0 ? r : cqe->res);
		return 2;
	}
	io_uring_cqe_seen(&ring, cqe);
	for (size_t off = 0; off < len; off += PG) {
		bool ok = page_ok(q + off, off / PG, off < len - tail ? 6 : 7);

		if (!ok && off >= len - tail && page_ok(q + off, off / PG, 6))
			stale++;
		else if (!ok)
			bad++;
	}
	printf("result mremap-pinned-before pages %zu wrong %zu stale %zu\n", len / PG, bad, stale);
	io_uring_unregister_buffers(&ring);
	io_uring_queue_exit(&ring);
	return bad || stale ? 1 : 0;
}

#else
static int uring_fixed(void)
{
	printf("result uring-fixed skipped: built without liburing\n");
	return 0;
}

static int mremap_pinned(void)
{
	printf("result mremap-pinned skipped: built without liburing\n");
	return 0;
}

static int mremap_pinned_before(void)
{
	printf("result mremap-pinned-before skipped: built without liburing\n");
	return 0;
}
#endif

/* --- odirect ------------------------------------------------------------- */

#define OD_LEN (4 * MiB)
#define OD_BIG (64 * MiB)

static _Atomic bool od_stop;

static void *od_sweeper(void *arg)
{
	char *p = arg;
	uint64_t n = 0;

	while (!atomic_load_explicit(&od_stop, memory_order_relaxed)) {
		/* write, so evictions need pageouts too, then read it all */
		for (size_t off = 0; off < OD_BIG; off += PG)
			p[off] = (char)n;
		sweep(p, OD_BIG);
		n++;
	}
	return NULL;
}

/*
 * moved: the buffer is the back half of a managed block moved by raw
 * mremap, an object the shim does not know: it must bracket the reads
 * there too (the pin table's moved word, protocol.h).
 */
static int odirect(double secs, bool moved)
{
	char path[] = "/var/tmp/uvmpager-hostile-XXXXXX";
	size_t stale = 0, older = 0, reads = 0;
	char *buf, *src, *big;
	const char *name = moved ? "odirect-moved" : "odirect";
	pthread_t th;
	double end;
	int fd, dfd;

	if (posix_memalign((void **)&buf, PG, moved ? 2 * OD_LEN : OD_LEN) || !(big = malloc(OD_BIG)))
		return 2;
	if (moved) {
		char *dst = (char *)syscall(SYS_mmap, NULL, OD_LEN, PROT_NONE,
					    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		memset(buf, 3, 2 * OD_LEN);
		if (dst == MAP_FAILED)
			return 2;
		buf = (char *)syscall(SYS_mremap, buf + OD_LEN, OD_LEN, OD_LEN,
				      MREMAP_MAYMOVE | MREMAP_FIXED, dst);
		if (buf != dst) {
			printf("%s: mremap: %s\n", name, strerror(errno));
			return 2;
		}
	}
	memset(big, 1, OD_BIG);
	fd = mkstemp(path);
	src = mmap(NULL, OD_LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (fd < 0 || src == MAP_FAILED)
		return 2;
	/* generation g lives at g * OD_LEN, its pages tagged with seed 10 + g */
	for (int g = 0; g < 2; g++) {
		for (size_t off = 0; off < OD_LEN; off += PG)
			fill_page(src + off, off / PG, 10 + g);
		if (pwrite(fd, src, OD_LEN, (off_t)g * OD_LEN) != (ssize_t)OD_LEN)
			return 2;
	}
	fsync(fd);
	dfd = open(path, O_RDONLY | O_DIRECT);
	unlink(path);
	close(fd);
	if (dfd < 0) {
		printf("%s: O_DIRECT open of %s: %s\n", name, path, strerror(errno));
		return 2;
	}
	pthread_create(&th, NULL, od_sweeper, big);
	end = now() + secs;
	while (now() < end) {
		int g = reads & 1;
		ssize_t got = pread(dfd, buf, OD_LEN, (off_t)g * OD_LEN);

		if (got != (ssize_t)OD_LEN) {
			printf("%s: read %zd: %s\n", name, got, strerror(errno));
			return 2;
		}
		reads++;
		for (size_t off = 0; off < OD_LEN; off += PG) {
			if (page_ok(buf + off, off / PG, 10 + g))
				continue;
			/* the generation before: the read went to an orphaned page */
			if (page_ok(buf + off, off / PG, 10 + !g))
				older++;
			if (stale < 5)
				printf("%s: read %zu (generation %d) page %zu wrong\n", name,
				       reads, g, off / PG);
			stale++;
		}
	}
	atomic_store(&od_stop, true);
	pthread_join(th, NULL);
	close(dfd);
	printf("result %s reads %zu pages %zu stale %zu older_generation %zu\n", name,
	       reads, reads * (OD_LEN / PG), stale, older);
	return stale ? 1 : 0;
}

/* --- churn --------------------------------------------------------------- */

static size_t churn_check(const char *p, size_t len, uint64_t seed)
{
	size_t bad = 0;

	for (size_t off = 0; off < len; off += PG)
		if (!page_ok(p + off, off / PG, seed))
			bad++;
	return bad;
}

static int churn(double secs)
{
	size_t big = 12 * MiB, len = 2 * MiB, bad = 0, pages = 0;
	char *pressure = malloc(big);
	unsigned rounds = 0, forks = 0;
	double end = now() + secs;

	if (!pressure)
		return 2;
	memset(pressure, 3, big);
	printf("started\n");
	while (now() < end) {
		uint64_t seed = 100 + rounds;
		char *a = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		char *dst, *moved, *g;
		size_t half = len / 2;
		int status;
		pid_t pid;

		if (a == MAP_FAILED)
			return 2;
		for (size_t off = 0; off < len; off += PG)
			fill_page(a + off, off / PG, seed);
		sweep(pressure, big);
		/* grown through the shim: the arena moves it, or grows it in place */
		g = mremap(a, len, 2 * len, MREMAP_MAYMOVE);
		if (g == MAP_FAILED)
			return 2;
		for (size_t off = len; off < 2 * len; off += PG)
			fill_page(g + off, off / PG, seed);
		bad += churn_check(g, 2 * len, seed);
		pages += 2 * len / PG;
		/* the upper half moved by syscall behind the shim's back */
		dst = (char *)syscall(SYS_mmap, NULL, half, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (dst == MAP_FAILED)
			return 2;
		moved = (char *)syscall(SYS_mremap, g + 2 * len - half, half, half,
					MREMAP_MAYMOVE | MREMAP_FIXED, dst);
		if (moved != dst)
			return 2;
		for (size_t off = 0; off < half; off += PG)
			if (!page_ok(moved + off, (2 * len - half + off) / PG, seed))
				bad++;
		pid = fork();
		if (pid < 0)
			return 2;
		if (pid == 0) {
			size_t cbad = churn_check(g, 2 * len - half, seed);

			for (size_t off = 0; off < 2 * len - half; off += PG)
				fill_page(g + off, off / PG, seed + 1000);
			sweep(pressure, big);
			cbad += churn_check(g, 2 * len - half, seed + 1000);
			_exit(cbad ? 1 : 0);
		}
		forks++;
		if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status)) {
			printf("churn: round %u: child failed\n", rounds);
			bad++;
		}
		/* the child's writes are its own */
		bad += churn_check(g, 2 * len - half, seed);
		pages += 2 * len / PG;
		syscall(SYS_munmap, moved, half);
		munmap(g, 2 * len - half);
		rounds++;
	}
	printf("result churn rounds %u forks %u pages %zu bad %zu\n", rounds, forks, pages, bad);
	return bad ? 1 : 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc >= 2 && strcmp(argv[1], "fork-writer") == 0)
		return fork_writer();
	if (argc >= 3 && strcmp(argv[1], "reread") == 0)
		return reread(atof(argv[2]));
	if (argc >= 2 && strcmp(argv[1], "raw-munmap") == 0)
		return raw_munmap_case();
	if (argc >= 2 && strcmp(argv[1], "raw-dontneed") == 0)
		return raw_dontneed_case(argc >= 3 ? atof(argv[2]) : 10);
	if (argc >= 2 && strcmp(argv[1], "raw-free") == 0)
		return raw_free_case(argc >= 3 ? atof(argv[2]) : 10);
	if (argc >= 2 && strcmp(argv[1], "raw-mremap") == 0)
		return raw_mremap_case();
	if (argc >= 2 && strcmp(argv[1], "raw-mremap-odd") == 0)
		return raw_mremap_odd();
	if (argc >= 2 && strcmp(argv[1], "move-under-fault") == 0)
		return move_under_fault(argc >= 3 ? atof(argv[2]) : 10);
	if (argc >= 2 && strcmp(argv[1], "raw-mremap-race") == 0)
		return raw_mremap_race(argc >= 3 ? atof(argv[2]) : 10);
	if (argc >= 2 && strcmp(argv[1], "raw-unmap-race") == 0)
		return raw_unmap_race(argc >= 3 ? atof(argv[2]) : 10);
	if (argc >= 2 && strcmp(argv[1], "uring-fixed") == 0)
		return uring_fixed();
	if (argc >= 2 && strcmp(argv[1], "mremap-pinned") == 0)
		return mremap_pinned();
	if (argc >= 2 && strcmp(argv[1], "mremap-pinned-before") == 0)
		return mremap_pinned_before();
	if (argc >= 3 && strcmp(argv[1], "odirect") == 0)
		return odirect(atof(argv[2]), false);
	if (argc >= 3 && strcmp(argv[1], "odirect-moved") == 0)
		return odirect(atof(argv[2]), true);
	if (argc >= 3 && strcmp(argv[1], "churn") == 0)
		return churn(atof(argv[2]));
	if (argc >= 3 && strcmp(argv[1], "mlock") == 0)
		return mlock_case(argv[2]);
	fprintf(stderr, "usage: hostile fork-writer | reread SECS | raw-munmap | raw-mremap | raw-dontneed [SECS] |\n"
		"       raw-free [SECS] | raw-unmap-race [SECS] | raw-mremap-race [SECS] | move-under-fault [SECS] | raw-mremap-odd | uring-fixed | mremap-pinned[-before] | odirect[-moved] SECS |\n"
		"       churn SECS | mlock SWAPFILE\n");
	return 2;
}
