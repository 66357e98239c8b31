/*
 * A block moved by raw mremap onto pages whose write-out is held in
 * flight (nbdkit's pause filter stands for a slow disk or network): the
 * pages under it left their object while busy. Until their write ends
 * they are still that object's I/O, but their addresses are the moved
 * block's: nothing done there by address (the collect of written bits,
 * the routing of a fault) may be the old object's. Before 2026-12-07
 * both were: the moved block's writes were re-protected and dropped
 * (wp-async) or recorded on the old object (wp-sync), and the block read
 * zeros after the next eviction.
 *
 *   held_io PAUSE_SOCKET MOUNT
 *
 * Run under the shim with a small budget (run-nbd.sh). Exit 0: every
 * page of the moved block as written; 1: wrong pages (listed); 2: the
 * set-up failed (no write-out was held in flight, a call failed).
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define PG 4096UL
#define MOVED_PAGES 1024UL       /* the block moved: 4 MiB */
#define UNDER_PAGES 4096UL       /* the block it lands in: 16 MiB */
#define HELD_FIRST 32UL          /* written, so written out, then moved onto */
#define HELD_PAGES 32UL
#define PRESSURE_FIRST 1200UL    /* dirty pages that push the write-out */
#define PRESSURE_PAGES 2560UL

static int pausefd = -1;

static void die(const char *what)
{
	perror(what);
	exit(2);
}

/* The pause filter's control socket: 'p' holds new requests, 'r' lets them go. */
static void nbd_control(char cmd)
{
	char reply;

	if (write(pausefd, &cmd, 1) != 1 || read(pausefd, &reply, 1) != 1)
		die("pause control");
}

static uint64_t word(size_t page, size_t i, unsigned tag)
{
	return ((uint64_t)tag << 56) ^ ((uint64_t)page << 24) ^ (i * 0x9e3779b97f4a7c15ULL);
}

static void stamp(char *p, size_t page, unsigned tag)
{
	uint64_t *w = (uint64_t *)p;

	for (size_t i = 0; i < PG / 8; i++)
		w[i] = word(page, i, tag);
}

static int stamped(const char *p, size_t page, unsigned tag)
{
	const uint64_t *w = (const uint64_t *)p;

	for (size_t i = 0; i < PG / 8; i++)
		if (w[i] != word(page, i, tag))
			return 0;
	return 1;
}

/* Does some object of ours show pages in write-out (the daemon's pagemap files)? */
static int writeback_seen(const char *mnt)
{
	char path[512], line[256];
	struct dirent *d;
	DIR *dir;
	int seen = 0;

	snprintf(path, sizeof(path), "%s/objects", mnt);
	dir = opendir(path);
	if (!dir)
		die(path);
	while (!seen && (d = readdir(dir))) {
		FILE *f;

		if (d->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/objects/%s/pagemap", mnt, d->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		while (!seen && fgets(line, sizeof(line), f))
			seen = strstr(line, "writeback") != NULL;
		fclose(f);
	}
	closedir(dir);
	return seen;
}

static void set_budget(const char *mnt, unsigned long bytes)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/clients/%d/budget", mnt, (int)getpid());
	f = fopen(path, "w");
	if (!f || fprintf(f, "%lu\n", bytes) < 0 || fclose(f))
		die(path);
}

int main(int argc, char **argv)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	volatile char sink;
	char *moved, *under, *at;
	size_t bad = 0, zeros = 0;
	int tries;

	if (argc != 3) {
		fprintf(stderr, "usage: held_io PAUSE_SOCKET MOUNT\n");
		return 2;
	}
	strncpy(sa.sun_path, argv[1], sizeof(sa.sun_path) - 1);
	pausefd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (pausefd < 0 || connect(pausefd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		die("connect to the pause filter");
	/* the older object first: the newer one is found first by address */
	moved = mmap(NULL, MOVED_PAGES * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	under = mmap(NULL, UNDER_PAGES * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (moved == MAP_FAILED || under == MAP_FAILED)
		die("mmap");
	nbd_control('p');
	for (size_t i = 0; i < MOVED_PAGES; i++)
		sink = moved[i * PG];
	for (size_t i = 0; i < HELD_FIRST; i++)
		sink = under[i * PG];
	for (size_t i = HELD_FIRST; i < HELD_FIRST + HELD_PAGES; i++)
		stamp(under + i * PG, i, 1);
	for (size_t i = PRESSURE_FIRST; i < PRESSURE_FIRST + PRESSURE_PAGES; i++)
		stamp(under + i * PG, i, 1);
	(void)sink;
	/* the page daemon's write-out starts, and the server holds it */
	for (tries = 0; tries < 100 && !writeback_seen(argv[2]); tries++)
		usleep(100 * 1000);
	if (tries == 100) {
		fprintf(stderr, "held_io: no write-out in flight after 10 s\n");
		return 2;
	}
	at = under + HELD_FIRST * PG;
	if ((char *)syscall(SYS_mremap, moved, MOVED_PAGES * PG, MOVED_PAGES * PG,
			    MREMAP_MAYMOVE | MREMAP_FIXED, at) != at)
		die("raw mremap");
	for (size_t i = 0; i < MOVED_PAGES; i++)
		stamp(at + i * PG, i, 7);
	/* the page daemon's rounds pass over both objects while the writes are held */
	usleep(1300 * 1000);
	printf("write-out held %s after the move\n", writeback_seen(argv[2]) ? "still" : "no longer");
	nbd_control('r');
	sleep(1);
	/* every page of ours out: what was taken for clean is dropped, not written */
	set_budget(argv[2], 1 << 20);
	sleep(3);
	for (size_t i = 0; i < MOVED_PAGES; i++) {
		int z = 1;

		if (stamped(at + i * PG, i, 7))
			continue;
		for (size_t k = 0; k < PG && z; k++)
			z = at[i * PG + k] == 0;
		if (bad < 16)
			printf("page %zu of the moved block: %s\n", i, z ? "zeros" : "wrong data");
		bad++;
		zeros += z;
	}
	printf("moved block: %zu of %lu pages wrong (%zu zeros)\n", bad, MOVED_PAGES, zeros);
	return bad ? 1 : 0;
}
