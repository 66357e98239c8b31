/*
 * The swap file: a regular file of PAGE_SIZE slots whose slot 0 holds a
 * header identifying it. Contents do not survive a restart; the header only
 * guards against pointing the daemon at the wrong file.
 */
#ifndef UVMPAGER_SWAP_SWAPFILE_H
#define UVMPAGER_SWAP_SWAPFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SWAPFILE_MAGIC "UVMPSWAP"
#define SWAPFILE_VERSION 1

/* On-disk header at offset 0; all integers little endian; rest of page 0 is zero. */
struct swapfile_header {
	char magic[8];          /* SWAPFILE_MAGIC, no terminator */
	uint32_t version;       /* SWAPFILE_VERSION */
	uint32_t page_size;     /* PAGE_SIZE */
	uint64_t nslots;        /* file size / page size, header page included */
	uint8_t uuid[16];       /* random, identifies this file in stats */
	uint32_t csum;          /* crc32c(0, header, offsetof(csum)) */
	uint32_t reserved;      /* zero */
};
_Static_assert(sizeof(struct swapfile_header) == 48, "on-disk layout");

struct swapfile_config {
	const char *path;
	uint64_t size;          /* bytes wanted; 0 = use the existing file's size */
	bool preallocate;       /* fallocate and write every block, instead of a sparse file */
	bool no_direct;         /* tests on filesystems without O_DIRECT */
};

struct swapfile {
	int fd;                 /* O_DIRECT (unless no_direct), O_CLOEXEC */
	char *path;
	uint64_t nslots;        /* file size / PAGE_SIZE, slot 0 is the header */
	uint8_t uuid[16];
	bool direct;
};

/*
 * Opens cfg->path, creating it when missing or empty (cfg->size is then
 * required). An existing file is used only if its header is valid and its
 * size agrees with the header and with cfg->size (when non-zero); otherwise
 * it is left untouched and -EINVAL returned. The file is locked (flock)
 * while open: a second opener gets -EBUSY.
 * On error, a message naming the path is written to err (if non-NULL).
 */
int swapfile_open(const struct swapfile_config *cfg, struct swapfile **out,
		  char *err, size_t errlen);
void swapfile_close(struct swapfile *sf);

/* Formats the UUID as 36 characters plus NUL into buf (at least 37 bytes). */
void swapfile_uuid_str(const struct swapfile *sf, char *buf, size_t len);

#endif
