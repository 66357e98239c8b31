/* Shared by the engine integration tests. */
#ifndef UVMPAGER_TEST_ENGINE_HELPERS_H
#define UVMPAGER_TEST_ENGINE_HELPERS_H

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"
#include "engine.h"
#include "fault/uffd.h"

#define SKIP 77

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
	char swap_path[64];
};

static inline int test_engine_create(struct test_engine *t, enum ioeng_kind io,
				     enum track_mode tr, uint64_t budget, uint64_t swap,
				     int (*inject)(void *, const struct io_req *), void *ctx)
{
	struct engine_config cfg;
	char err[256] = "";
	int r;

	engine_config_defaults(&cfg);
	temp_swap_path(t->swap_path, sizeof(t->swap_path));
	cfg.swap_path = t->swap_path;
	cfg.swap_size = swap;
	cfg.io = io;
	cfg.track = tr;
	cfg.budget = budget;
	cfg.io_inject = inject;
	cfg.io_inject_ctx = ctx;
	r = engine_create(&cfg, &t->e, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "engine_create: %s (%s)\n", err, strerror(-r));
		unlink(t->swap_path);
	}
	return r;
}

static inline void test_engine_destroy(struct test_engine *t)
{
	engine_destroy(t->e);
	unlink(t->swap_path);
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
