/*
 * rwx_commit.c: the reserve-then-commit pattern of a JIT code cache
 * (HotSpot's CodeCache, V8's code space): reserve PROT_NONE, commit with
 * mmap(MAP_FIXED, PROT_READ|PROT_WRITE|PROT_EXEC) and, for comparison, a
 * second reservation committed read-write. Touches 32 MiB of each and
 * prints RssAnon (private memory, outside the budget) after each.
 * Under the shim the read-write commit is managed (RssAnon stays), the
 * rwx one is not (RssAnon grows by 32 MiB): anon_private() in
 * src/shim/mm.c takes PROT_READ|PROT_WRITE or PROT_NONE only.
 */
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

static long rss_anon(void)
{
	char line[256];
	long kb = -1;
	FILE *f = fopen("/proc/self/status", "r");

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "RssAnon: %ld", &kb) == 1)
			break;
	if (f)
		fclose(f);
	return kb;
}

static int commit_and_touch(int prot, const char *what)
{
	size_t len = 64 << 20, used = 32 << 20;
	char *r = mmap(NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	if (r == MAP_FAILED || mmap(r, used, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) != r) {
		perror("mmap");
		return 1;
	}
	memset(r, 0x5a, used);
	printf("%-24s RssAnon %ld KiB\n", what, rss_anon());
	return 0;
}

int main(void)
{
	printf("%-24s RssAnon %ld KiB\n", "start", rss_anon());
	return commit_and_touch(PROT_READ | PROT_WRITE, "commit rw 32 MiB") ||
	       commit_and_touch(PROT_READ | PROT_WRITE | PROT_EXEC, "commit rwx 32 MiB");
}
