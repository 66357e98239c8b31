/*
 * uvmpager-probe: what this kernel offers the engine, as "name value"
 * lines, and the dirty-tracking mode AUTO would pick.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "fault/track.h"
#include "fault/uffd.h"

static void flag(const char *name, bool v)
{
	printf("%s %d\n", name, v ? 1 : 0);
}

int main(void)
{
	struct uffd_caps caps;
	enum track_mode mode;
	int r;

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
