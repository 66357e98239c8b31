/*
 * The daemon's log: levels filter, warnings and errors are rate-limited
 * (a burst, then a count of what was left out when the next window opens),
 * info lines are not. stderr goes to a file the test reads back.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/log.h"

static char *capture_path;

static void capture_start(void)
{
	static char path[] = "/tmp/uvmpager-test-log-XXXXXX";
	int fd = mkstemp(path);

	ck_assert_int_ge(fd, 0);
	fflush(stderr);
	dup2(fd, STDERR_FILENO);
	close(fd);
	capture_path = path;
}

/* lines of the capture that contain needle */
static int count_lines(const char *needle)
{
	char line[1200];
	int n = 0;
	FILE *f;

	fflush(stderr);
	f = fopen(capture_path, "r");
	ck_assert_ptr_nonnull(f);
	while (fgets(line, sizeof(line), f))
		n += strstr(line, needle) != NULL;
	fclose(f);
	return n;
}

START_TEST(test_levels)
{
	capture_start();
	log_set_level(LOG_INFO);
	log_debug("hidden debug line");
	log_info("shown info line");
	log_set_level(LOG_DEBUG);
	log_debug("shown debug line");
	ck_assert_int_eq(count_lines("hidden"), 0);
	ck_assert_int_eq(count_lines("uvmpagerd: info: shown info line"), 1);
	ck_assert_int_eq(count_lines("uvmpagerd: debug: shown debug line"), 1);
	unlink(capture_path);
}
END_TEST

START_TEST(test_ratelimit)
{
	capture_start();
	log_set_level(LOG_INFO);
	log_set_ratelimit(20, 1);
	for (int i = 0; i < 100; i++)
		log_warn("flood %d", i);
	for (int i = 0; i < 30; i++)
		log_info("info is not limited %d", i);
	/* a burst of warnings, the rest held back; info lines all through */
	ck_assert_int_eq(count_lines("flood"), 20);
	ck_assert_int_eq(count_lines("info is not limited"), 30);
	usleep(1100 * 1000);
	log_err("after the window");
	ck_assert_int_eq(count_lines("80 warnings and errors suppressed in 1 s"), 1);
	ck_assert_int_eq(count_lines("uvmpagerd: error: after the window"), 1);
	unlink(capture_path);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("log");
	TCase *tc = tcase_create("log");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, test_levels);
	tcase_add_test(tc, test_ratelimit);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
