/*
 * uvmpager-demo: runs the paging engine in-process on a region far bigger
 * than its budget, checks every byte, and prints figures and the engine's
 * stats. Phases: sequential fill, sequential re-read with content check,
 * uniform random 4 KiB reads (latency per access), clean re-eviction.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "build-config.h"
#include "common/util.h"
#include "engine.h"

static uint64_t pattern(size_t page, size_t word, unsigned gen)
{
	return (page * 0x9E3779B97F4A7C15ULL) ^ (word * 0xBF58476D1CE4E5B9ULL) ^ gen;
}

static void fill_page(uint64_t *p, size_t page, unsigned gen)
{
	for (size_t w = 0; w < PAGE_SIZE / 8; w += 64)
		p[w] = pattern(page, w, gen);
}

static bool check_page(const uint64_t *p, size_t page, unsigned gen)
{
	for (size_t w = 0; w < PAGE_SIZE / 8; w += 64)
		if (p[w] != pattern(page, w, gen))
			return false;
	return true;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: uvmpager-demo [options]\n"
		"  --size SIZE        region size (default 1G)\n"
		"  --budget SIZE      resident budget (default 128M)\n"
		"  --swap-file PATH   swap file (default /var/tmp/uvmpager-demo.swap)\n"
		"  --swap-size SIZE   swap file size (default 2 x size)\n"
		"  --io ENGINE        auto | io_uring | threads\n"
		"  --tracking MODE    auto | wp-async | wp-sync | soft-dirty\n"
		"  --random N         random 4 KiB reads to time (default 20000)\n"
		"  --keep-swap        do not remove the swap file afterwards\n"
		"  -h, --help, -V, --version\n"
		"exit status: 0 every byte read back right, 1 failed, 2 bad usage\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "size", required_argument, NULL, 's' },
		{ "budget", required_argument, NULL, 'b' },
		{ "swap-file", required_argument, NULL, 'f' },
		{ "swap-size", required_argument, NULL, 'S' },
		{ "io", required_argument, NULL, 'i' },
		{ "tracking", required_argument, NULL, 't' },
		{ "random", required_argument, NULL, 'r' },
		{ "keep-swap", no_argument, NULL, 'k' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 },
	};
	struct engine_config cfg;
	struct engine *e = NULL;
	struct engine_stats st0, st1;
	uint64_t size = 1ULL << 30, budget = 128ULL << 20, swap_size = 0;
	const char *swap_path = "/var/tmp/uvmpager-demo.swap";
	unsigned long nrandom = 20000;
	bool keep = false;
	char err[256] = "";
	uint64_t *lat = NULL;
	uint8_t *mem;
	size_t npages, bad = 0;
	uint64_t t0, t1;
	int c, r, ret = 1;

	engine_config_defaults(&cfg);
	while ((c = getopt_long(argc, argv, "hV", opts, NULL)) != -1) {
		switch (c) {
		case 's': if (parse_size(optarg, &size)) goto badarg; break;
		case 'b': if (parse_size(optarg, &budget)) goto badarg; break;
		case 'S': if (parse_size(optarg, &swap_size)) goto badarg; break;
		case 'f': swap_path = optarg; break;
		case 'i': if (ioeng_kind_parse(optarg, &cfg.io)) goto badarg; break;
		case 't': if (track_mode_parse(optarg, &cfg.track)) goto badarg; break;
		case 'r': nrandom = strtoul(optarg, NULL, 0); break;
		case 'k': keep = true; break;
		case 'h': usage(stdout); return 0;
		case 'V': printf("uvmpager-demo %s\n", UVMPAGER_VERSION); return 0;
		default:
			fprintf(stderr, "Try 'uvmpager-demo --help' for more information.\n");
			return 2;
		}
	}
	size = ALIGN_DOWN(size, PAGE_SIZE);
	if (!size) {
		fprintf(stderr, "uvmpager-demo: size must be at least one page\n");
		return 2;
	}
	cfg.swap_path = swap_path;
	cfg.swap_size = swap_size ? swap_size : 2 * size + PAGE_SIZE * 1024;
	cfg.budget = budget;
	r = engine_create(&cfg, &e, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "uvmpager-demo: %s\n", err[0] ? err : strerror(-r));
		return 1;
	}
	r = engine_aobj_create(e, size, 0, (void **)&mem, NULL);
	if (r < 0) {
		fprintf(stderr, "uvmpager-demo: object: %s\n", strerror(-r));
		goto out;
	}
	npages = size / PAGE_SIZE;
	engine_get_stats(e, &st0);
	printf("# uvmpager-demo: %" PRIu64 " MiB region, %" PRIu64 " MiB budget, "
	       "io %s, dirty tracking %s\n", size >> 20, budget >> 20,
	       st0.io_engine, st0.tracking);

	t0 = now_ns();
	for (size_t p = 0; p < npages; p++)
		fill_page((uint64_t *)(mem + p * PAGE_SIZE), p, 1);
	t1 = now_ns();
	printf("fill_mib_s %.0f\n", (double)size / (1 << 20) / ((t1 - t0) / 1e9));

	engine_get_stats(e, &st0);
	t0 = now_ns();
	for (size_t p = 0; p < npages; p++)
		if (!check_page((uint64_t *)(mem + p * PAGE_SIZE), p, 1))
			bad++;
	t1 = now_ns();
	engine_get_stats(e, &st1);
	printf("reread_mib_s %.0f\n", (double)size / (1 << 20) / ((t1 - t0) / 1e9));
	printf("reread_swapins %" PRIu64 "\n", st1.swapins - st0.swapins);

	if (nrandom) {
		uint64_t seed = 88172645463325252ULL;

		lat = calloc(nrandom, sizeof(*lat));
		if (!lat)
			goto out;
		engine_get_stats(e, &st0);
		for (unsigned long i = 0; i < nrandom; i++) {
			size_t p;

			seed ^= seed << 13;
			seed ^= seed >> 7;
			seed ^= seed << 17;
			p = seed % npages;
			t0 = now_ns();
			if (!check_page((uint64_t *)(mem + p * PAGE_SIZE), p, 1))
				bad++;
			lat[i] = now_ns() - t0;
		}
		engine_get_stats(e, &st1);
		qsort(lat, nrandom, sizeof(*lat), cmp_u64);
		printf("random_read_median_us %.1f\n", lat[nrandom / 2] / 1e3);
		printf("random_read_p99_us %.1f\n", lat[nrandom * 99 / 100] / 1e3);
		printf("random_swapins %" PRIu64 "\n", st1.swapins - st0.swapins);
	}

	/* everything was read, nothing written since: evicting it must write nothing */
	engine_get_stats(e, &st0);
	for (size_t p = 0; p < npages; p++)
		if (!check_page((uint64_t *)(mem + p * PAGE_SIZE), p, 1))
			bad++;
	engine_get_stats(e, &st1);
	printf("clean_reevict_write_bytes %" PRIu64 "\n",
	       st1.swap_write_bytes - st0.swap_write_bytes);

	printf("bad_pages %zu\n", bad);
	printf("# engine stats\n");
	engine_print_stats(e, stdout);
	ret = bad ? 1 : 0;
	if (bad)
		fprintf(stderr, "uvmpager-demo: %zu pages had wrong content\n", bad);
out:
	free(lat);
	engine_destroy(e);
	if (!keep)
		unlink(swap_path);
	return ret;

badarg:
	fprintf(stderr, "uvmpager-demo: bad value: %s\n", optarg);
	fprintf(stderr, "Try 'uvmpager-demo --help' for more information.\n");
	return 2;
}
