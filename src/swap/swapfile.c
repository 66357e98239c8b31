#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"
#include "swap/csum.h"
#include "swap/swapfile.h"

__attribute__((format(printf, 4, 5)))
static int fail(char *err, size_t errlen, int r, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return r;
}

static uint32_t header_csum(const struct swapfile_header *h)
{
	return crc32c(0, h, offsetof(struct swapfile_header, csum));
}

static int fill_random(uint8_t *buf, size_t len)
{
	while (len) {
		ssize_t n = getrandom(buf, len, 0);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/*
 * Writes zeros over [PAGE_SIZE, size): fallocate leaves unwritten extents,
 * and the first write to each then converts it in the filesystem's
 * journal, under a lock O_DIRECT reads of the same file wait for (random
 * swap-in through the daemon: 101 us median on a fresh file, 75 on one
 * written before). About a second per 3 GiB here, once, at creation.
 */
static int write_blocks(int fd, uint64_t size)
{
	const size_t chunk = 4u << 20;
	void *zeros = aligned_alloc(PAGE_SIZE, chunk);
	uint64_t off = PAGE_SIZE;
	int r = 0;

	if (!zeros)
		return -ENOMEM;
	memset(zeros, 0, chunk);
	while (off < size) {
		size_t len = (size_t)MIN((uint64_t)chunk, size - off);
		ssize_t n = pwrite(fd, zeros, len, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			r = n < 0 ? -errno : -EIO;
			break;
		}
		off += (uint64_t)n;
	}
	free(zeros);
	return r;
}

/* Sizes the empty file and writes the header; the caller undoes on error. */
static int format(int fd, const struct swapfile_config *cfg, uint64_t size,
		  void *page, uint8_t uuid[16], char *err, size_t errlen)
{
	struct swapfile_header *h = page;
	ssize_t n;
	int r;

	if (cfg->preallocate) {
		if (fallocate(fd, 0, 0, (off_t)size) < 0) {
			r = -errno;
			if (r == -ENOSPC)
				return fail(err, errlen, r,
					    "%s: not enough space to preallocate %llu bytes",
					    cfg->path, (unsigned long long)size);
			if (r == -EOPNOTSUPP)
				return fail(err, errlen, r,
					    "%s: the filesystem cannot preallocate (try a sparse file)",
					    cfg->path);
			return fail(err, errlen, r, "%s: fallocate: %s",
				    cfg->path, strerror(-r));
		}
		r = write_blocks(fd, size);
		if (r < 0)
			return fail(err, errlen, r, "%s: writing the preallocated blocks: %s",
				    cfg->path, strerror(-r));
	} else if (ftruncate(fd, (off_t)size) < 0) {
		r = -errno;
		return fail(err, errlen, r, "%s: ftruncate to %llu bytes: %s",
			    cfg->path, (unsigned long long)size, strerror(-r));
	}

	r = fill_random(uuid, 16);
	if (r < 0)
		return fail(err, errlen, r, "%s: getrandom: %s", cfg->path, strerror(-r));

	memset(page, 0, PAGE_SIZE);
	memcpy(h->magic, SWAPFILE_MAGIC, sizeof(h->magic));
	h->version = htole32(SWAPFILE_VERSION);
	h->page_size = htole32(PAGE_SIZE);
	h->nslots = htole64(size / PAGE_SIZE);
	memcpy(h->uuid, uuid, 16);
	h->csum = htole32(header_csum(h));

	do
		n = pwrite(fd, page, PAGE_SIZE, 0);
	while (n < 0 && errno == EINTR);
	if (n != (ssize_t)PAGE_SIZE) {
		r = n < 0 ? -errno : -EIO;
		return fail(err, errlen, r, "%s: writing the header: %s",
			    cfg->path, strerror(-r));
	}
	if (fsync(fd) < 0) {
		r = -errno;
		return fail(err, errlen, r, "%s: fsync: %s", cfg->path, strerror(-r));
	}
	return 0;
}

/* Validates an existing file. Reads only: a refused file is never modified. */
static int check(int fd, const struct swapfile_config *cfg, uint64_t size,
		 const struct stat *st, void *page, uint64_t *nslots,
		 uint8_t uuid[16], char *err, size_t errlen)
{
	const struct swapfile_header *h = page;
	uint64_t n, len = (uint64_t)st->st_size;
	ssize_t got;
	uint32_t v;

	if (len < PAGE_SIZE)
		return fail(err, errlen, -EINVAL,
			    "%s: not a uvmpager swap file (%llu bytes, shorter than a header)",
			    cfg->path, (unsigned long long)len);
	do
		got = pread(fd, page, PAGE_SIZE, 0);
	while (got < 0 && errno == EINTR);
	if (got != (ssize_t)PAGE_SIZE) {
		int r = got < 0 ? -errno : -EIO;

		return fail(err, errlen, r, "%s: reading the header: %s",
			    cfg->path, strerror(-r));
	}
	if (memcmp(h->magic, SWAPFILE_MAGIC, sizeof(h->magic)))
		return fail(err, errlen, -EINVAL,
			    "%s: not a uvmpager swap file (bad magic); refusing to overwrite it",
			    cfg->path);
	/* Version before checksum: another version may checksum other fields. */
	v = le32toh(h->version);
	if (v != SWAPFILE_VERSION)
		return fail(err, errlen, -EINVAL,
			    "%s: swap file format version %u, this build supports %u",
			    cfg->path, v, SWAPFILE_VERSION);
	v = le32toh(h->page_size);
	if (v != PAGE_SIZE)
		return fail(err, errlen, -EINVAL,
			    "%s: swap file made for %u-byte pages, this build uses %lu",
			    cfg->path, v, PAGE_SIZE);
	if (le32toh(h->csum) != header_csum(h))
		return fail(err, errlen, -EINVAL,
			    "%s: swap file header checksum mismatch (corrupt header)",
			    cfg->path);
	n = le64toh(h->nslots);
	if (n < 2 || n > (UINT64_MAX >> PAGE_SHIFT) || n << PAGE_SHIFT != len)
		return fail(err, errlen, -EINVAL,
			    "%s: header says %llu slots but the file is %llu bytes (%llu slots)",
			    cfg->path, (unsigned long long)n, (unsigned long long)len,
			    (unsigned long long)(len >> PAGE_SHIFT));
	if (size && n << PAGE_SHIFT != size)
		return fail(err, errlen, -EINVAL,
			    "%s: holds %llu bytes of slots but %llu bytes were configured",
			    cfg->path, (unsigned long long)len, (unsigned long long)size);
	*nslots = n;
	memcpy(uuid, h->uuid, 16);
	return 0;
}

int swapfile_open(const struct swapfile_config *cfg, struct swapfile **out,
		  char *err, size_t errlen)
{
	struct swapfile *sf = NULL;
	void *page = NULL;
	uint64_t size = 0, nslots = 0;
	uint8_t uuid[16];
	bool created = false, formatting = false;
	struct stat st;
	int flags, fd = -1, r;

	if (err && errlen)
		err[0] = '\0';
	if (!cfg || !cfg->path || !cfg->path[0])
		return fail(err, errlen, -EINVAL, "no swap file path given");
	if (cfg->size) {
		size = ALIGN_DOWN(cfg->size, (uint64_t)PAGE_SIZE);
		if (size < 2 * PAGE_SIZE)
			return fail(err, errlen, -EINVAL,
				    "%s: swap size %llu bytes is too small (at least %lu)",
				    cfg->path, (unsigned long long)cfg->size, 2 * PAGE_SIZE);
	}

	flags = O_RDWR | O_CLOEXEC | (cfg->no_direct ? 0 : O_DIRECT);
	fd = open(cfg->path, flags);
	if (fd < 0 && errno == ENOENT) {
		if (!size)
			return fail(err, errlen, -ENOENT,
				    "%s: does not exist and no swap size was given", cfg->path);
		fd = open(cfg->path, flags | O_CREAT | O_EXCL, 0600);
		if (fd >= 0)
			created = true;
		else if (errno == EEXIST)
			fd = open(cfg->path, flags);
	}
	if (fd < 0) {
		r = -errno;
		if (r == -EINVAL && !cfg->no_direct)
			return fail(err, errlen, r,
				    "%s: the filesystem does not support O_DIRECT", cfg->path);
		return fail(err, errlen, r, "%s: %s", cfg->path, strerror(-r));
	}

	/* Two daemons sharing a swap file would overwrite each other's pages. */
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		r = errno == EWOULDBLOCK ? -EBUSY : -errno;
		fail(err, errlen, r, "%s: in use by another process", cfg->path);
		goto out_close;
	}
	if (fstat(fd, &st) < 0) {
		r = -errno;
		fail(err, errlen, r, "%s: fstat: %s", cfg->path, strerror(-r));
		goto out_close;
	}
	if (!S_ISREG(st.st_mode)) {
		r = fail(err, errlen, -EINVAL, "%s: not a regular file", cfg->path);
		goto out_close;
	}
	r = posix_memalign(&page, PAGE_SIZE, PAGE_SIZE);
	if (r) {
		page = NULL;
		r = fail(err, errlen, -r, "%s: out of memory", cfg->path);
		goto out_close;
	}

	if (st.st_size == 0) {
		if (!size) {
			r = fail(err, errlen, -EINVAL,
				 "%s: is empty and no swap size was given", cfg->path);
			goto out_close;
		}
		formatting = true;
		r = format(fd, cfg, size, page, uuid, err, errlen);
		nslots = size / PAGE_SIZE;
	} else {
		r = check(fd, cfg, size, &st, page, &nslots, uuid, err, errlen);
	}
	if (r < 0)
		goto out_undo;

	sf = calloc(1, sizeof(*sf));
	if (sf)
		sf->path = strdup(cfg->path);
	if (!sf || !sf->path) {
		r = fail(err, errlen, -ENOMEM, "%s: out of memory", cfg->path);
		goto out_undo;
	}
	sf->fd = fd;
	sf->nslots = nslots;
	memcpy(sf->uuid, uuid, 16);
	sf->direct = !cfg->no_direct;
	free(page);
	*out = sf;
	return 0;

out_undo:
	/* Leave nothing half-made: remove what we created, re-empty what was empty. */
	if (created) {
		unlink(cfg->path);
	} else if (formatting) {
		/* Best effort: the error already in err is the one that matters. */
		if (ftruncate(fd, 0) < 0) {
		}
	}
out_close:
	if (sf)
		free(sf->path);
	free(sf);
	free(page);
	close(fd);
	return r;
}

void swapfile_close(struct swapfile *sf)
{
	if (!sf)
		return;
	if (sf->fd >= 0)
		close(sf->fd);
	free(sf->path);
	free(sf);
}

void swapfile_uuid_str(const struct swapfile *sf, char *buf, size_t len)
{
	const uint8_t *u = sf->uuid;

	snprintf(buf, len,
		 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9],
		 u[10], u[11], u[12], u[13], u[14], u[15]);
}
