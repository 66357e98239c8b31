/* Swap file header, refusal rules, preallocation; crc32c; the swap device. */
#include <check.h>

#include "check_run.h"
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"
#include "swap/csum.h"
#include "swap/swap.h"
#include "swap/swapfile.h"

/* A scratch directory on the build filesystem (tmpfs may lack O_DIRECT). */
static char dir[256];
static char path[400];
static char err[512];

static void setup(void)
{
	snprintf(dir, sizeof(dir), "%s/swapfile-test-XXXXXX", getenv("TEST_DIR") ? getenv("TEST_DIR") : ".");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/swap", dir);
	err[0] = '\0';
}

static void teardown(void)
{
	unlink(path);
	rmdir(dir);
}

static int open_sf(uint64_t size, bool prealloc, struct swapfile **out)
{
	struct swapfile_config cfg = { .path = path, .size = size, .preallocate = prealloc };

	*out = NULL;
	return swapfile_open(&cfg, out, err, sizeof(err));
}

static void *slurp(const char *p, size_t *len)
{
	struct stat st;
	void *buf;
	int fd = open(p, O_RDONLY);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(fstat(fd, &st), 0);
	*len = (size_t)st.st_size;
	buf = malloc(*len + 1);
	ck_assert_int_eq(pread(fd, buf, *len, 0), (ssize_t)*len);
	close(fd);
	return buf;
}

/* Opens the file expecting refusal, and checks it was left byte for byte. */
static void expect_refused(uint64_t size, int expect, const char *needle)
{
	struct swapfile *sf;
	size_t before_len, after_len;
	void *before = slurp(path, &before_len), *after;
	struct stat st0, st1;

	ck_assert_int_eq(stat(path, &st0), 0);
	ck_assert_int_eq(open_sf(size, false, &sf), expect);
	ck_assert_ptr_null(sf);
	ck_assert_msg(strstr(err, path), "error does not name the file: %s", err);
	ck_assert_msg(strstr(err, needle), "error lacks \"%s\": %s", needle, err);
	after = slurp(path, &after_len);
	ck_assert_uint_eq(before_len, after_len);
	ck_assert(!memcmp(before, after, before_len));
	ck_assert_int_eq(stat(path, &st1), 0);
	ck_assert_int_eq(st0.st_mtim.tv_sec, st1.st_mtim.tv_sec);
	ck_assert_int_eq(st0.st_mtim.tv_nsec, st1.st_mtim.tv_nsec);
	free(before);
	free(after);
}

static void patch_header(void (*fn)(struct swapfile_header *h), bool fix_csum)
{
	struct swapfile_header h;
	int fd = open(path, O_RDWR);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pread(fd, &h, sizeof(h), 0), (ssize_t)sizeof(h));
	fn(&h);
	if (fix_csum)
		h.csum = htole32(crc32c(0, &h, offsetof(struct swapfile_header, csum)));
	ck_assert_int_eq(pwrite(fd, &h, sizeof(h), 0), (ssize_t)sizeof(h));
	close(fd);
}

START_TEST(test_create_sparse_and_reopen)
{
	struct swapfile *sf, *again;
	struct swapfile_header h;
	struct stat st;
	uint8_t uuid[16];
	char ustr[37];
	int fd;

	ck_assert_int_eq(open_sf(64 << 20, false, &sf), 0);
	ck_assert_str_eq(err, "");
	ck_assert_uint_eq(sf->nslots, (64 << 20) / PAGE_SIZE);
	ck_assert(sf->direct);
	ck_assert_int_ge(sf->fd, 0);
	ck_assert_str_eq(sf->path, path);
	ck_assert_int_eq(fcntl(sf->fd, F_GETFL) & O_DIRECT, O_DIRECT);
	ck_assert_int_eq(fcntl(sf->fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
	ck_assert_int_eq(fstat(sf->fd, &st), 0);
	ck_assert_int_eq(st.st_size, 64 << 20);
	ck_assert_int_lt((long long)st.st_blocks * 512, 1 << 20);
	ck_assert_int_eq(st.st_mode & 0777, 0600);
	memcpy(uuid, sf->uuid, 16);
	swapfile_uuid_str(sf, ustr, sizeof(ustr));
	ck_assert_uint_eq(strlen(ustr), 36);

	/* Locked while open. */
	ck_assert_int_eq(open_sf(0, false, &again), -EBUSY);
	ck_assert_ptr_nonnull(strstr(err, "in use"));
	swapfile_close(sf);

	/* The header as documented. */
	fd = open(path, O_RDONLY);
	ck_assert_int_eq(pread(fd, &h, sizeof(h), 0), (ssize_t)sizeof(h));
	close(fd);
	ck_assert(!memcmp(h.magic, "UVMPSWAP", 8));
	ck_assert_uint_eq(le32toh(h.version), 1);
	ck_assert_uint_eq(le32toh(h.page_size), 4096);
	ck_assert_uint_eq(le64toh(h.nslots), 16384);
	ck_assert(!memcmp(h.uuid, uuid, 16));
	ck_assert_uint_eq(le32toh(h.csum), crc32c(0, &h, 40));

	/* Reopen by size 0 (use the file's) and by the matching size. */
	ck_assert_int_eq(open_sf(0, false, &sf), 0);
	ck_assert_uint_eq(sf->nslots, 16384);
	ck_assert(!memcmp(sf->uuid, uuid, 16));
	swapfile_close(sf);
	ck_assert_int_eq(open_sf((64 << 20) + 100, false, &sf), 0);
	swapfile_close(sf);
	swapfile_close(NULL);
}
END_TEST

START_TEST(test_sizes)
{
	struct swapfile *sf;

	ck_assert_int_eq(open_sf(0, false, &sf), -ENOENT);
	ck_assert_ptr_nonnull(strstr(err, path));
	ck_assert_int_eq(open_sf(4096, false, &sf), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "too small"));
	ck_assert_int_eq(open_sf(8191, false, &sf), -EINVAL);
	ck_assert_int_eq(access(path, F_OK), -1);
	/* Rounded down to whole pages. */
	ck_assert_int_eq(open_sf(3 * 4096 + 1000, false, &sf), 0);
	ck_assert_uint_eq(sf->nslots, 3);
	swapfile_close(sf);
	unlink(path);
	ck_assert_int_eq(open_sf(8192, false, &sf), 0);
	ck_assert_uint_eq(sf->nslots, 2);
	swapfile_close(sf);

	/* An existing empty file is formatted, but only given a size. */
	ck_assert_int_eq(truncate(path, 0), 0);
	ck_assert_int_eq(open_sf(0, false, &sf), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "empty"));
	ck_assert_int_eq(open_sf(16384, false, &sf), 0);
	ck_assert_uint_eq(sf->nslots, 4);
	swapfile_close(sf);
}
END_TEST

static void set_version(struct swapfile_header *h)
{
	h->version = htole32(2);
}

static void set_pagesize(struct swapfile_header *h)
{
	h->page_size = htole32(16384);
}

static void flip_uuid(struct swapfile_header *h)
{
	h->uuid[3] ^= 0x40;
}

static void set_nslots(struct swapfile_header *h)
{
	h->nslots = htole64(le64toh(h->nslots) + 1);
}

START_TEST(test_refuse)
{
	struct swapfile *sf;
	char junk[3 * 4096];
	int fd;

	/* Someone else's file. */
	memset(junk, 'x', sizeof(junk));
	fd = open(path, O_CREAT | O_WRONLY, 0644);
	ck_assert_int_eq(write(fd, junk, sizeof(junk)), (ssize_t)sizeof(junk));
	close(fd);
	expect_refused(0, -EINVAL, "magic");
	expect_refused(sizeof(junk), -EINVAL, "magic");
	ck_assert_int_eq(truncate(path, 100), 0);
	expect_refused(0, -EINVAL, "not a uvmpager swap file");
	unlink(path);

	ck_assert_int_eq(open_sf(16 * 4096, false, &sf), 0);
	swapfile_close(sf);
	expect_refused(32 * 4096, -EINVAL, "configured");
	expect_refused(8 * 4096, -EINVAL, "configured");

	patch_header(set_version, true);
	expect_refused(0, -EINVAL, "version");
	unlink(path);

	ck_assert_int_eq(open_sf(16 * 4096, false, &sf), 0);
	swapfile_close(sf);
	patch_header(set_pagesize, true);
	expect_refused(0, -EINVAL, "pages");
	unlink(path);

	ck_assert_int_eq(open_sf(16 * 4096, false, &sf), 0);
	swapfile_close(sf);
	patch_header(flip_uuid, false);
	expect_refused(0, -EINVAL, "checksum");
	unlink(path);

	/* Header and file length disagree, either way round. */
	ck_assert_int_eq(open_sf(16 * 4096, false, &sf), 0);
	swapfile_close(sf);
	patch_header(set_nslots, true);
	expect_refused(0, -EINVAL, "slots");
	patch_header(set_nslots, true);
	ck_assert_int_eq(truncate(path, 18 * 4096), 0);
	ck_assert_int_eq(open_sf(0, false, &sf), 0);
	ck_assert_uint_eq(sf->nslots, 18);
	swapfile_close(sf);
	ck_assert_int_eq(truncate(path, 19 * 4096), 0);
	expect_refused(0, -EINVAL, "slots");
}
END_TEST

START_TEST(test_preallocate)
{
	struct swapfile *sf;
	struct stat st;

	ck_assert_int_eq(open_sf(8 << 20, true, &sf), 0);
	ck_assert_int_eq(fstat(sf->fd, &st), 0);
	ck_assert_int_eq(st.st_size, 8 << 20);
	ck_assert_int_ge((long long)st.st_blocks * 512, 8 << 20);
	swapfile_close(sf);
}
END_TEST

/* fallocate past a 1 MiB tmpfs, in a private mount namespace. */
START_TEST(test_enospc)
{
	struct swapfile_config cfg = { .size = 4 << 20, .preallocate = true, .no_direct = true };
	struct swapfile *sf = NULL;
	struct stat st;
	char mnt[300];
	int fd;

	if (geteuid() != 0 || unshare(CLONE_NEWNS) < 0) {
		fprintf(stderr, "test_enospc: skipped, needs root for a private tmpfs\n");
		return;
	}
	ck_assert_int_eq(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL), 0);
	snprintf(mnt, sizeof(mnt), "%s/mnt", dir);
	ck_assert_int_eq(mkdir(mnt, 0700), 0);
	ck_assert_int_eq(mount("tmpfs", mnt, "tmpfs", 0, "size=1m"), 0);
	snprintf(path, sizeof(path), "%s/swap", mnt);
	cfg.path = path;

	ck_assert_int_eq(swapfile_open(&cfg, &sf, err, sizeof(err)), -ENOSPC);
	ck_assert_ptr_null(sf);
	ck_assert_ptr_nonnull(strstr(err, path));
	ck_assert_ptr_nonnull(strstr(err, "space"));
	/* We created it, so it is gone again. */
	ck_assert_int_eq(access(path, F_OK), -1);

	/* Someone else's empty file stays, still empty. */
	fd = open(path, O_CREAT | O_WRONLY, 0600);
	close(fd);
	ck_assert_int_eq(swapfile_open(&cfg, &sf, err, sizeof(err)), -ENOSPC);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_eq(st.st_size, 0);
	unlink(path);

	/* A sparse file of the same size fits. */
	cfg.preallocate = false;
	ck_assert_int_eq(swapfile_open(&cfg, &sf, err, sizeof(err)), 0);
	ck_assert(!sf->direct);
	swapfile_close(sf);
	unlink(path);
	umount(mnt);
	rmdir(mnt);
}
END_TEST

START_TEST(test_crc32c_vectors)
{
	/* RFC 3720 (iSCSI) B.4 and the usual check value. */
	uint8_t buf[32];
	const struct { int fill; uint32_t crc; } v[] = {
		{ 0x00, 0x8A9136AA }, { 0xff, 0x62A8AB43 }, { -1, 0x46DD794E }, { -2, 0x113FDB5C },
	};
	uint32_t (*impls[])(uint32_t, const void *, size_t) = { crc32c, crc32c_sw, crc32c_hw };

	for (size_t k = 0; k < ARRAY_SIZE(impls); k++) {
		ck_assert_uint_eq(impls[k](0, "123456789", 9), 0xE3069283);
		ck_assert_uint_eq(impls[k](0, "", 0), 0);
		for (size_t i = 0; i < ARRAY_SIZE(v); i++) {
			for (int j = 0; j < 32; j++)
				buf[j] = (uint8_t)(v[i].fill == -1 ? j : v[i].fill == -2 ? 31 - j : v[i].fill);
			ck_assert_uint_eq(impls[k](0, buf, 32), v[i].crc);
		}
		/* Chaining. */
		ck_assert_uint_eq(impls[k](impls[k](0, "1234", 4), "56789", 5), 0xE3069283);
	}
	fprintf(stderr, "crc32c: hardware %s\n", crc32c_hw_available() ? "yes" : "no");
}
END_TEST

START_TEST(test_crc32c_hw_sw_agree)
{
	static uint8_t buf[3 * 4096 + 64];
	unsigned seed = 7;

	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)rand_r(&seed);
	/* Every alignment and tail length, then random spans. */
	for (size_t off = 0; off < 16; off++)
		for (size_t len = 0; len < 80; len++)
			if (crc32c_sw(0, buf + off, len) != crc32c_hw(0, buf + off, len) ||
			    crc32c(off, buf + off, len) != crc32c_sw(off, buf + off, len))
				ck_abort_msg("mismatch off %zu len %zu", off, len);
	for (int i = 0; i < 2000; i++) {
		size_t off = (size_t)rand_r(&seed) % 64;
		size_t len = (size_t)rand_r(&seed) % (sizeof(buf) - 64);
		uint32_t seedcrc = (uint32_t)rand_r(&seed);

		if (crc32c_sw(seedcrc, buf + off, len) != crc32c_hw(seedcrc, buf + off, len))
			ck_abort_msg("mismatch off %zu len %zu", off, len);
	}
}
END_TEST

START_TEST(test_swap_device)
{
	struct swapfile_config cfg = { .path = path, .size = 300000 * 4096ULL };
	struct swap *sw = NULL;
	struct swap_stats st, st0;
	uint64_t a, b, c;

	ck_assert_int_eq(swap_create(&cfg, &sw, err, sizeof(err)), 0);
	ck_assert_int_ge(swap_fd(sw), 0);
	ck_assert_uint_eq(swap_file(sw)->nslots, 300000);
	ck_assert_uint_eq(swap_slot_offset(3), 3 * 4096);
	swap_get_stats(sw, &st0);
	ck_assert_uint_eq(st0.slots_total, 299999);
	ck_assert_uint_eq(st0.slots_used, 0);

	ck_assert_int_eq(swap_alloc(sw, 16, 16, &a), 16);
	ck_assert_uint_eq(a, 1);
	swap_csum_set(sw, a + 3, 0xdeadbeef);
	ck_assert_uint_eq(swap_csum_get(sw, a + 3), 0xdeadbeef);
	swap_get_stats(sw, &st);
	ck_assert_uint_eq(st.slots_used, 16);
	/* The first checksum chunk now exists. */
	ck_assert_uint_gt(st.meta_bytes, st0.meta_bytes + 200000);

	/* A run across the 64K-slot chunk boundary. */
	for (int i = 0; i < 255; i++)
		ck_assert_int_eq(swap_alloc(sw, 256, 256, &b), 256);
	ck_assert_int_eq(swap_alloc(sw, 256, 256, &c), 256);
	ck_assert_uint_eq(c, 17 + 255 * 256);
	ck_assert_uint_gt(c + 256, 65536);
	swap_csum_set(sw, 65535, 1);
	swap_csum_set(sw, 65536, 2);
	ck_assert_uint_eq(swap_csum_get(sw, 65535), 1);
	ck_assert_uint_eq(swap_csum_get(sw, 65536), 2);

	/* Shared slot: the checksum stays until the last reference goes. */
	ck_assert_int_eq(swap_ref(sw, a + 3), 0);
	ck_assert_uint_eq(swap_refcount(sw, a + 3), 2);
	swap_free(sw, a, 16);
	ck_assert_uint_eq(swap_csum_get(sw, a + 3), 0xdeadbeef);
	swap_free(sw, a + 3, 1);
	ck_assert_uint_eq(swap_csum_get(sw, a + 3), 0);
	ck_assert_int_eq(swap_ref(sw, a + 3), -EINVAL);

	swap_mark_bad(sw, c);
	ck_assert(swap_is_bad(sw, c));
	swap_get_stats(sw, &st);
	ck_assert_uint_eq(st.slots_bad, 1);

	/* Free everything: the checksum chunks go back. */
	swap_free(sw, 1, 65536 + 512);
	swap_get_stats(sw, &st);
	ck_assert_uint_eq(st.slots_used, 0);
	ck_assert_uint_eq(st.meta_bytes, st0.meta_bytes);
	swap_destroy(sw);
	swap_destroy(NULL);

	/* Errors from the file come back with their message. */
	cfg.size = 4096;
	unlink(path);
	ck_assert_int_eq(swap_create(&cfg, &sw, err, sizeof(err)), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "too small"));
}
END_TEST

static Suite *suite(void)
{
	Suite *su = suite_create("swapfile");
	TCase *tc = tcase_create("file");
	TCase *tcrc = tcase_create("crc32c");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_create_sparse_and_reopen);
	tcase_add_test(tc, test_sizes);
	tcase_add_test(tc, test_refuse);
	tcase_add_test(tc, test_preallocate);
	tcase_add_test(tc, test_enospc);
	tcase_add_test(tc, test_swap_device);
	suite_add_tcase(su, tc);
	tcase_add_test(tcrc, test_crc32c_vectors);
	tcase_add_test(tcrc, test_crc32c_hw_sw_agree);
	suite_add_tcase(su, tcrc);
	return su;
}

int main(void)
{
	return check_run(suite(), CK_NORMAL);
}
