/*
 * Pinned ranges of a process, from /proc (see pins.h).
 *
 * The format, the same on 6.1 and 6.18 (io_uring/fdinfo.c):
 *
 *   UserBufs:\t<n>
 *   <index, %5u>: 0x<addr>/<len>       one line per registered buffer
 *   <index, %5u>: <none>               an empty slot of a sparse table
 *
 * 6.1 prints the header always and the lines only when its trylock of
 * ctx->uring_lock succeeded; 6.18 prints neither without the lock. So a
 * ring whose header is missing, or whose list is shorter than the header
 * says, is unknown.
 *
 * Why a successful read is enough: registration pins the pages and
 * publishes the buffer under that same uring_lock (io_uring_register
 * holds it throughout), so a read that got the lock sees either the
 * finished registration or one that has not pinned anything yet.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fault/pins.h"

/* A ring's lock is held only while it submits: a few tries nearly always do. */
#define PINS_TRIES 4

struct pins {
	int procfd;                 /* /proc/<pid> */
	int ignore_fd;              /* not scanned, or -1 */
	struct pin_range *r;
	size_t n, cap;
	size_t nrings;              /* io_uring descriptors at the last scan */
	char *buf;                  /* one fdinfo text */
	size_t bufcap;
};

int pins_create(pid_t pid, struct pins **out)
{
	char path[64];
	struct pins *p;

	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->ignore_fd = -1;
	if (pid)
		snprintf(path, sizeof(path), "/proc/%d", (int)pid);
	else
		snprintf(path, sizeof(path), "/proc/self");
	p->procfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (p->procfd < 0) {
		int r = -errno;

		free(p);
		return r;
	}
	*out = p;
	return 0;
}

void pins_ignore_fd(struct pins *p, int fd)
{
	p->ignore_fd = fd;
}

void pins_destroy(struct pins *p)
{
	if (!p)
		return;
	close(p->procfd);
	free(p->r);
	free(p->buf);
	free(p);
}

static int add_range(struct pin_range **r, size_t *n, size_t *cap, uintptr_t addr, size_t len)
{
	if (*n == *cap) {
		size_t nc = *cap ? *cap * 2 : 16;
		struct pin_range *nr = realloc(*r, nc * sizeof(*nr));

		if (!nr)
			return -ENOMEM;
		*r = nr;
		*cap = nc;
	}
	(*r)[(*n)++] = (struct pin_range){ addr, len };
	return 0;
}

/* The line starting at s (up to end or '\n'); *next is past it. */
static const char *line_end(const char *s, const char *end)
{
	const char *nl = memchr(s, '\n', (size_t)(end - s));

	return nl ? nl : end;
}

int pins_parse_fdinfo(const char *text, size_t len, struct pin_range **r, size_t *n,
		      size_t *cap)
{
	const char *s = text, *end = text + len, *e;
	unsigned long want = 0, seen = 0;
	bool header = false;

	for (; s < end; s = e + 1) {
		char line[128];
		unsigned long long addr;
		unsigned idx, blen;
		size_t l;

		e = line_end(s, end);
		l = (size_t)(e - s);
		if (!header) {
			if (l > 9 && memcmp(s, "UserBufs:", 9) == 0) {
				header = true;
				want = strtoul(s + 9, NULL, 10);
			}
			continue;
		}
		if (l >= sizeof(line))
			break;
		memcpy(line, s, l);
		line[l] = '\0';
		if (sscanf(line, " %u: 0x%llx/%u", &idx, &addr, &blen) == 3) {
			if (blen && add_range(r, n, cap, (uintptr_t)addr, blen) < 0)
				return -ENOMEM;
			seen++;
		} else if (sscanf(line, " %u: <none>", &idx) == 1 && strstr(line, "<none>")) {
			seen++;
		} else {
			break;   /* the next section */
		}
	}
	if (!header || seen < want)
		return -EAGAIN;
	return 0;
}

/* Read the whole of fdinfo/<name> into p->buf; its length, or -errno. */
static ssize_t read_fdinfo(struct pins *p, const char *name)
{
	char path[sizeof("fdinfo/") + 256];
	size_t len = 0;
	ssize_t got;
	int fd;

	snprintf(path, sizeof(path), "fdinfo/%s", name);
	fd = openat(p->procfd, path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	for (;;) {
		if (p->bufcap - len < 4096) {
			size_t nc = p->bufcap ? p->bufcap * 2 : 16384;
			char *nb = realloc(p->buf, nc);

			if (!nb) {
				close(fd);
				return -ENOMEM;
			}
			p->buf = nb;
			p->bufcap = nc;
		}
		got = read(fd, p->buf + len, p->bufcap - len);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			got = -errno;
			close(fd);
			return got;
		}
		if (!got)
			break;
		len += (size_t)got;
	}
	close(fd);
	return (ssize_t)len;
}

/* One ring's buffers onto p->r, retrying while its lock is busy. */
static int scan_ring(struct pins *p, const char *name)
{
	size_t n0 = p->n;
	int r = -EAGAIN;

	for (int t = 0; t < PINS_TRIES && r == -EAGAIN; t++) {
		ssize_t len;

		if (t)
			sched_yield();
		p->n = n0;
		len = read_fdinfo(p, name);
		if (len == -ENOENT)
			return 0;   /* closed since the readlink: no ring there now */
		if (len < 0)
			return (int)len;
		r = pins_parse_fdinfo(p->buf, (size_t)len, &p->r, &p->n, &p->cap);
	}
	return r;
}

static int cmp_range(const void *a, const void *b)
{
	const struct pin_range *x = a, *y = b;

	return x->addr < y->addr ? -1 : x->addr > y->addr;
}

size_t pin_ranges_merge(struct pin_range *r, size_t n)
{
	size_t k = 0;

	if (!n)
		return 0;
	qsort(r, n, sizeof(*r), cmp_range);
	for (size_t i = 1; i < n; i++) {
		struct pin_range *last = &r[k];

		if (r[i].addr <= last->addr + last->len) {
			uintptr_t end = r[i].addr + r[i].len;

			if (end > last->addr + last->len)
				last->len = end - last->addr;
		} else {
			r[++k] = r[i];
		}
	}
	return k + 1;
}

size_t pins_rings(const struct pins *p)
{
	return p->nrings;
}

int pins_scan(struct pins *p, const struct pin_range **out, size_t *n)
{
	static const char ring[] = "anon_inode:[io_uring]";
	struct dirent *d;
	DIR *dir;
	int fd, r = 0;

	p->n = 0;
	p->nrings = 0;
	fd = openat(p->procfd, "fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	dir = fdopendir(fd);
	if (!dir) {
		r = -errno;
		close(fd);
		return r;
	}
	for (;;) {
		char link[sizeof(ring) + 1];
		ssize_t l;

		errno = 0;
		d = readdir(dir);
		if (!d) {
			/* a listing cut short (the process exiting) proves nothing */
			r = errno ? -errno : 0;
			break;
		}

		if (d->d_name[0] == '.' ||
		    (p->ignore_fd >= 0 && atoi(d->d_name) == p->ignore_fd))
			continue;
		l = readlinkat(dirfd(dir), d->d_name, link, sizeof(link));
		if (l != (ssize_t)sizeof(ring) - 1 || memcmp(link, ring, sizeof(ring) - 1))
			continue;
		p->nrings++;
		r = scan_ring(p, d->d_name);
		if (r < 0)
			break;
	}
	closedir(dir);
	if (r < 0)
		return r;
	p->n = pin_ranges_merge(p->r, p->n);
	*out = p->r;
	*n = p->n;
	return 0;
}
