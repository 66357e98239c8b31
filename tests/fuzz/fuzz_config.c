/*
 * libFuzzer target: uvmpagerd's config file parser (inih and config.c's
 * key table and value parsers). The input is the file; it is parsed over
 * the defaults, freed, and parsed once more to catch state left behind.
 * Errors go to stderr (run-fuzz.sh closes it with -close_fd_mask=2): only
 * crashes, leaks and sanitizer reports count.
 */
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

#include "daemon/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct daemon_config cfg;
	char path[64];
	int fd = memfd_create("fuzz-config", MFD_CLOEXEC);

	if (fd < 0)
		abort();
	if (size && write(fd, data, size) != (ssize_t)size)
		abort();
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	config_defaults(&cfg);
	config_parse_file(&cfg, path, true);
	config_free(&cfg);
	config_defaults(&cfg);
	config_parse_file(&cfg, path, true);
	config_free(&cfg);
	close(fd);
	return 0;
}
