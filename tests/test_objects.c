/*
 * vnode and device objects: a file through a bounded resident set.
 * vnode pages come from the file and dirty ones go back to it (on
 * eviction, flush and destroy); device pages are read-only and evicting
 * them writes nothing.
 */
#include <check.h>

#include "check_run.h"
#include <sys/stat.h>

#include "engine_helpers.h"

#define FILE_PAGES 2048        /* 8 MiB */
#define TAIL 100               /* bytes of a last, partial page */

static int make_file(char *path, size_t len, size_t pages, unsigned gen)
{
	uint8_t *buf = calloc(1, PAGE_SIZE);
	int fd;

	snprintf(path, len, "/var/tmp/uvmpager-file-XXXXXX");
	fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	for (size_t p = 0; p < pages; p++) {
		fill(buf, p, gen);
		ck_assert_int_eq(pwrite(fd, buf, PAGE_SIZE, (off_t)p * PAGE_SIZE), PAGE_SIZE);
	}
	/* a partial last page */
	memset(buf, 0x5A, TAIL);
	ck_assert_int_eq(pwrite(fd, buf, TAIL, (off_t)pages * PAGE_SIZE), TAIL);
	free(buf);
	return fd;
}

static bool file_page_is(int fd, size_t p, unsigned gen)
{
	uint8_t buf[PAGE_SIZE];

	if (pread(fd, buf, PAGE_SIZE, (off_t)p * PAGE_SIZE) != PAGE_SIZE)
		return false;
	return check(buf, p, gen);
}

START_TEST(test_vnode)
{
	size_t len = (size_t)FILE_PAGES * PAGE_SIZE + TAIL;
	struct engine_stats a, b;
	struct test_engine t;
	char path[64];
	struct uobj *o;
	struct stat st;
	uint8_t *mem;
	int fd = make_file(path, sizeof(path), FILE_PAGES, 1);

	ck_assert_int_eq(test_engine_create(&t, IOENG_AUTO, TRACK_AUTO, 0, 16ULL << 20,
					    NULL, NULL), 0);
	ck_assert_int_eq(engine_vnode_create(t.e, fd, len, 1ULL << 20, (void **)&mem, &o), 0);
	/* pages come in from the file, under a 1 MiB budget */
	for (size_t p = 0; p < FILE_PAGES; p++)
		ck_assert_msg(check(mem + p * PAGE_SIZE, p, 1), "page %zu", p);
	ck_assert_int_eq(mem[(size_t)FILE_PAGES * PAGE_SIZE], 0x5A);
	ck_assert_int_eq(mem[(size_t)FILE_PAGES * PAGE_SIZE + TAIL], 0);   /* past EOF: zero */
	engine_get_stats(t.e, &a);
	/* reading a file writes nothing (unless pages read back cannot be mapped clean) */
	if (a.clean_mapping)
		ck_assert_uint_eq(a.write_ops, 0);
	ck_assert_uint_gt(a.evictions, 0);

	/* rewrite everything: evictions carry it back to the file */
	for (size_t p = 0; p < FILE_PAGES; p++)
		fill(mem + p * PAGE_SIZE, p, 2);
	mem[(size_t)FILE_PAGES * PAGE_SIZE] = 0x77;
	ck_assert_int_eq(engine_flush(t.e, o), 0);
	for (size_t p = 0; p < FILE_PAGES; p++)
		ck_assert_msg(file_page_is(fd, p, 2), "file page %zu not written back", p);
	ck_assert_int_eq(fstat(fd, &st), 0);
	ck_assert_int_eq(st.st_size, (off_t)len);   /* the file keeps its size */
	engine_get_stats(t.e, &b);
	ck_assert_uint_eq(b.swap_slots_used, 0);    /* files need no swap */

	/* dirty pages reach the file when the object goes away, too */
	for (size_t p = 0; p < FILE_PAGES; p += 7)
		fill(mem + p * PAGE_SIZE, p, 3);
	engine_object_destroy(t.e, o);
	for (size_t p = 0; p < FILE_PAGES; p++)
		ck_assert(file_page_is(fd, p, p % 7 ? 2 : 3));
	char tail;

	ck_assert_int_eq(pread(fd, &tail, 1, (off_t)FILE_PAGES * PAGE_SIZE), 1);
	ck_assert_int_eq((uint8_t)tail, 0x77);
	close(fd);
	unlink(path);
	test_engine_destroy(&t);
}
END_TEST

START_TEST(test_device)
{
	size_t len = (size_t)FILE_PAGES * PAGE_SIZE;
	struct engine_stats st;
	struct test_engine t;
	char path[64];
	uint8_t *mem;
	int fd = make_file(path, sizeof(path), FILE_PAGES, 4);

	ck_assert_int_eq(test_engine_create(&t, IOENG_AUTO, TRACK_AUTO, 0, 16ULL << 20,
					    NULL, NULL), 0);
	ck_assert_int_eq(engine_device_create(t.e, fd, len, 512ULL << 10, (void **)&mem, NULL), 0);
	for (int pass = 0; pass < 2; pass++)
		for (size_t p = 0; p < FILE_PAGES; p++)
			ck_assert_msg(check(mem + p * PAGE_SIZE, p, 4), "pass %d page %zu", pass, p);
	engine_get_stats(t.e, &st);
	ck_assert_uint_gt(st.evictions, FILE_PAGES);
	ck_assert_uint_eq(st.evictions, st.clean_evictions);
	ck_assert_uint_eq(st.write_ops, 0);
	ck_assert_uint_eq(st.swap_slots_used, 0);
	ck_assert_uint_le(st.resident_bytes, 512ULL << 10);
	close(fd);
	unlink(path);
	test_engine_destroy(&t);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("objects");
	TCase *tc = tcase_create("files");

	require_engine_env();
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_vnode);
	tcase_add_test(tc, test_device);
	suite_add_tcase(s, tc);
	return check_run(s, CK_VERBOSE);
}
