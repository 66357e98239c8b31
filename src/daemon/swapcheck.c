/* Start-time warnings about the swap file's filesystem (swapcheck.h). */
#include <errno.h>
#include <inttypes.h>
#include <linux/magic.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include "daemon/log.h"
#include "daemon/swapcheck.h"

/*
 * Called once the swap file is open and sized, from the main thread, before
 * any client: no lock, no state. A failing stat or statfs says nothing: the
 * swap module already checked what it needs.
 */
void swapcheck_warn(const char *path)
{
	struct statfs fs;
	struct stat st;
	uint64_t allocated, missing, avail;

	if (stat(path, &st) < 0 || statfs(path, &fs) < 0)
		return;
	if (fs.f_type == TMPFS_MAGIC || fs.f_type == RAMFS_MAGIC)
		log_warn("swap file %s is on %s: the pages sent there stay in memory "
			 "(or in the kernel's swap), nothing is saved", path,
			 fs.f_type == TMPFS_MAGIC ? "tmpfs" : "ramfs");
	allocated = (uint64_t)st.st_blocks * 512;
	if (allocated >= (uint64_t)st.st_size)
		return;
	missing = (uint64_t)st.st_size - allocated;
	avail = (uint64_t)fs.f_bavail * (uint64_t)fs.f_bsize;
	if (avail < missing)
		log_warn("swap file %s is sparse and its filesystem has %" PRIu64 " MiB free "
			 "of the %" PRIu64 " MiB it may need: writes past that fail (no space "
			 "left on device) and pages then stay in memory over budget; "
			 "--swap-preallocate reserves the space at creation", path,
			 avail >> 20, missing >> 20);
}
