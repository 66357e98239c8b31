/*
 * uvmpager-probe: what this kernel offers the engine, as "name value"
 * lines, and the dirty-tracking mode AUTO would pick.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "build-config.h"

#include "fault/track.h"
#include "fault/uffd.h"

static void flag(const char *name, bool v)
{
	printf("%s %d\n", name, v ? 1 : 0);
}

static void usage(void)
{
	printf("usage: uvmpager-probe [-h|--help] [-V|--version]\n"
	       "What this kernel's userfaultfd offers uvmpagerd, as 'name value' lines,\n"
	       "and the dirty-tracking mode 'auto' would pick.\n"
	       "exit status: 0 probed, 1 no userfaultfd, 2 bad usage\n");
}

/* Exit status: 0 probed, 1 no userfaultfd, 2 bad usage (uvmpager-probe(8)). */
int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 },
	};
	struct uffd_caps caps;
	enum track_mode mode;
	int c, r;

	while ((c = getopt_long(argc, argv, "hV", opts, NULL)) != -1) {
		if (c == 'h') {
			usage();
			return 0;
		}
		if (c == 'V') {
			printf("uvmpager-probe %s\n", UVMPAGER_VERSION);
			return 0;
		}
		fprintf(stderr, "Try 'uvmpager-probe --help' for more information.\n");
		return 2;
	}
	if (optind < argc) {
		fprintf(stderr, "uvmpager-probe: unexpected argument '%s'\n"
			"Try 'uvmpager-probe --help' for more information.\n", argv[optind]);
		return 2;
	}

	r = uffd_probe(&caps);
	if (r < 0) {
		fprintf(stderr, "uvmpager-probe: no userfaultfd: %s\n", strerror(-r));
		return 1;
	}
	printf("features 0x%" PRIx64 "\n", caps.features);
	flag("dev_userfaultfd", caps.dev_userfaultfd);
	flag("missing_shmem", caps.missing_shmem);
	flag("minor_shmem", caps.minor_shmem);
	flag("wp_shmem", caps.wp_shmem);
	flag("wp_async", caps.wp_async);
	flag("wp_unpopulated", caps.wp_unpopulated);
	flag("poison", caps.poison);
	flag("pagemap_scan", caps.pagemap_scan);
	flag("soft_dirty", caps.soft_dirty);
	flag("event_remove", caps.event_remove);
	flag("event_unmap", caps.event_unmap);
	flag("event_remap", caps.event_remap);
	flag("event_fork", caps.event_fork);
	flag("continue_wp", caps.continue_wp);
	flag("thp_shmem_forced", caps.thp_shmem_forced);
	for (enum track_mode m = TRACK_WP_ASYNC; m <= TRACK_WP_SYNC; m++)
		printf("track_offered_%s %d\n", track_mode_name(m), track_mode_offered(&caps, m) ? 1 : 0);
	if (track_mode_pick(&caps, TRACK_AUTO, &mode) == 0)
		printf("track_mode %s\n", track_mode_name(mode));
	else
		printf("track_mode none\n");
	return 0;
}
