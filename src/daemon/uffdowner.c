/* The client's VMA flags, read from /proc/PID/smaps (see uffdowner.h). */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/uffdowner.h"

/* "VmFlags: rd wr sh mr mw me ms um ..." names a userfaultfd mode. */
static bool flags_name_uffd(const char *line)
{
	char *copy = strdup(line), *save = NULL, *tok;
	bool found = false;

	if (!copy)
		return false;
	for (tok = strtok_r(copy + strlen("VmFlags:"), " \t\n", &save); tok && !found;
	     tok = strtok_r(NULL, " \t\n", &save))
		found = !strcmp(tok, "um") || !strcmp(tok, "ui") || !strcmp(tok, "uw");
	free(copy);
	return found;
}

int vma_uffd_registered(pid_t pid, uint64_t addr)
{
	char path[64], *line = NULL;
	size_t cap = 0;
	bool inside = false;
	int r = -ENOENT;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/smaps", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (getline(&line, &cap, f) > 0) {
		uint64_t start, end;
		char perms[5];

		/* a VMA's first line: "start-end perms offset dev inode [path]" */
		if (sscanf(line, "%" SCNx64 "-%" SCNx64 " %4s ", &start, &end, perms) == 3 &&
		    strchr(line, ' ') > strchr(line, '-')) {
			if (inside)
				break;   /* its VmFlags line was missing: say none */
			inside = addr >= start && addr < end;
			continue;
		}
		if (inside && strncmp(line, "VmFlags:", 8) == 0) {
			r = flags_name_uffd(line) ? 1 : 0;
			break;
		}
	}
	if (inside && r == -ENOENT)
		r = -EIO;
	free(line);
	fclose(f);
	return r;
}
