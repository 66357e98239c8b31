/* Shared by the engine integration tests. */
#ifndef UVMPAGER_TEST_ENGINE_HELPERS_H
#define UVMPAGER_TEST_ENGINE_HELPERS_H

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "build-config.h"
#include "common/util.h"
#include "engine.h"
#include "fault/uffd.h"
#include "swap/swapdev.h"

#ifdef HAVE_LIBNBD
#include <libnbd.h>
#endif

#define SKIP 77

/*
 * Knobs for small, slow machines (the kernel matrix in tests/kernels/ runs
 * these tests in emulated guests). Unset, nothing changes.
 *   UVMPAGER_TEST_SCALE  divisor for object sizes, budgets and rounds
 *   UVMPAGER_TEST_TRACK  wp-async|wp-sync|soft-dirty: the only tracking mode
 *                        tested, and the one used where a test says "auto"
 *   UVMPAGER_TEST_IO     io_uring|threads: the same for the I/O engine
 *   UVMPAGER_TEST_SWAP   the swap device of every engine a test creates
 *                        with test_engine_create(): an NBD URI (a server
 *                        the caller runs, tests/nbd/run-engine-nbd.sh), used
 *                        whole and never removed, instead of a fresh file
 */
static inline unsigned test_scale(void)
{
	static unsigned scale;
	const char *s;

	if (!scale) {
		s = getenv("UVMPAGER_TEST_SCALE");
		scale = s && atoi(s) > 0 ? (unsigned)atoi(s) : 1;
	}
	return scale;
}

/* tr, or the forced mode if tr is AUTO and one is forced. */
static inline enum track_mode test_track(enum track_mode tr)
{
	const char *s = getenv("UVMPAGER_TEST_TRACK");
	enum track_mode m;

	if (tr != TRACK_AUTO || !s || !*s)
		return tr;
	if (track_mode_parse(s, &m)) {
		fprintf(stderr, "UVMPAGER_TEST_TRACK=%s: not a tracking mode\n", s);
		exit(2);
	}
	return m;
}

static inline enum ioeng_kind test_io(enum ioeng_kind io)
{
	const char *s = getenv("UVMPAGER_TEST_IO");
	enum ioeng_kind k;

	if (io != IOENG_AUTO || !s || !*s)
		return io;
	if (ioeng_kind_parse(s, &k)) {
		fprintf(stderr, "UVMPAGER_TEST_IO=%s: not an I/O engine\n", s);
		exit(2);
	}
	return k;
}

/* Exit 77 with the reason when the machine cannot run the engine. */
static inline void require_engine_env(void)
{
	struct uffd_caps caps;
	int r;

	if (geteuid() != 0) {
		printf("SKIP: needs root (userfaultfd on shared memory, /dev/userfaultfd)\n");
		exit(SKIP);
	}
	r = uffd_probe(&caps);
	if (r < 0 || !caps.minor_shmem) {
		printf("SKIP: userfaultfd with MINOR faults on shmem unavailable (%s)\n",
		       r < 0 ? strerror(-r) : "kernel too old");
		exit(SKIP);
	}
}

/* UVMPAGER_TEST_SWAP, or NULL when unset or empty (a fresh file each time). */
static inline const char *test_swap_device(void)
{
	const char *s = getenv("UVMPAGER_TEST_SWAP");

	return s && *s ? s : NULL;
}

/* A fresh swap file path on a filesystem with O_DIRECT (not tmpfs /tmp). */
static inline void temp_swap_path(char *buf, size_t len)
{
	int fd;

	snprintf(buf, len, "/var/tmp/uvmpager-test-XXXXXX");
	fd = mkstemp(buf);
	if (fd >= 0)
		close(fd);
}

struct test_engine {
	struct engine *e;
	char swap_path[512];
	bool swap_given;        /* UVMPAGER_TEST_SWAP: not ours to remove */
};

/* Removes the swap file a test created; a given device stays. */
static inline void test_swap_remove(struct test_engine *t)
{
	if (!t->swap_given)
		unlink(t->swap_path);
}

/*
 * Writes len bytes at off straight to the engine's swap device, behind the
 * engine's back (a test corrupting a slot): O_DIRECT on a file, like the
 * engine, so no page cache sits in between; a connection of its own to an
 * NBD device. buf must be page-aligned. Returns 0 or -errno.
 */
static inline int test_swap_write_raw(const struct test_engine *t, const void *buf,
				      size_t len, uint64_t off)
{
	int r = 0;

	if (swapdev_name_is_nbd(t->swap_path)) {
#ifdef HAVE_LIBNBD
		struct nbd_handle *h = nbd_create();

		if (!h)
			return -ENOMEM;
		if (nbd_connect_uri(h, t->swap_path) < 0 ||
		    nbd_pwrite(h, buf, len, off, 0) < 0 ||
		    (nbd_can_flush(h) > 0 && nbd_flush(h, 0) < 0)) {
			fprintf(stderr, "%s: %s\n", t->swap_path, nbd_get_error());
			r = nbd_get_errno() ? -nbd_get_errno() : -EIO;
		}
		nbd_close(h);
		return r;
#else
		return -EOPNOTSUPP;
#endif
	}
	int fd = open(t->swap_path, O_WRONLY | O_DIRECT);

	if (fd < 0)
		return -errno;
	if (pwrite(fd, buf, len, (off_t)off) != (ssize_t)len)
		r = -EIO;
	close(fd);
	return r;
}

static inline int test_engine_create(struct test_engine *t, enum ioeng_kind io,
				     enum track_mode tr, uint64_t budget, uint64_t swap,
				     int (*inject)(void *, const struct io_req *), void *ctx)
{
	struct engine_config cfg;
	char err[256] = "";
	int r;

	engine_config_defaults(&cfg);
	t->swap_given = test_swap_device() != NULL;
	if (t->swap_given)
		snprintf(t->swap_path, sizeof(t->swap_path), "%s", test_swap_device());
	else
		temp_swap_path(t->swap_path, sizeof(t->swap_path));
	cfg.swap_path = t->swap_path;
	cfg.swap_size = swap;
	cfg.io = test_io(io);
	cfg.track = test_track(tr);
	cfg.budget = budget;
	cfg.io_inject = inject;
	cfg.io_inject_ctx = ctx;
	/* every clean eviction is checked against its copy: a tracking miss fails the test */
	cfg.verify_clean = true;
	r = engine_create(&cfg, &t->e, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "engine_create: %s (%s)\n", err, strerror(-r));
		test_swap_remove(t);
	}
	return r;
}

static inline void test_engine_destroy(struct test_engine *t)
{
	struct engine_stats st;

	engine_get_stats(t->e, &st);
	if (st.clean_mismatches) {
		fprintf(stderr, "FAIL: %llu pages dropped as clean were not\n",
			(unsigned long long)st.clean_mismatches);
		abort();
	}
	engine_destroy(t->e);
	test_swap_remove(t);
}

/* Is the page at p mapped in this process (pagemap bit 63)? false if unreadable. */
static inline bool page_present(const void *p)
{
	uint64_t entry = 0;
	int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	off_t off = (off_t)((uintptr_t)p / PAGE_SIZE * sizeof(entry));

	if (fd < 0)
		return false;
	if (pread(fd, &entry, sizeof(entry), off) != (ssize_t)sizeof(entry))
		entry = 0;
	close(fd);
	return entry >> 63;
}

static inline uint64_t pat(size_t page, size_t word, unsigned gen)
{
	return (page * 0x9E3779B97F4A7C15ULL) ^ (word * 0xBF58476D1CE4E5B9ULL) ^
	       ((uint64_t)gen << 48);
}

static inline void fill(void *p, size_t page, unsigned gen)
{
	uint64_t *w = p;

	for (size_t i = 0; i < PAGE_SIZE / 8; i += 32)
		w[i] = pat(page, i, gen);
}

static inline bool check(const void *p, size_t page, unsigned gen)
{
	const uint64_t *w = p;

	for (size_t i = 0; i < PAGE_SIZE / 8; i += 32)
		if (w[i] != pat(page, i, gen))
			return false;
	return true;
}

#endif
