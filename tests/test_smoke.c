/*
 * The daemon + shim smoke test, small enough for an emulated guest (the
 * kernel matrix runs it on each kernel): uvmpagerd starts with the
 * kernel's default tracking, a real program (sort) runs under the shim
 * with a budget far below its buffer, its output equals a plain run's,
 * and the daemon's stat shows that pages went to swap and came back.
 */
#include <check.h>
#include <stdint.h>

#include "check_run.h"
#include "daemon_helpers.h"

static struct test_daemon d;

static int sh(const char *fmt, ...)
{
	char cmd[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	return system(cmd);
}

START_TEST(test_sort_under_shim)
{
	const char *shim = getenv("UVMPAGER_PRELOAD");
	long long outs, ins;

	ck_assert_ptr_nonnull(shim);
	ck_assert_int_eq(td_start(&d, "64M", NULL), 0);
	/* 1.5 MB of lines in a scrambled order: sort keeps them in its 8 MB buffer */
	ck_assert_int_eq(sh("awk 'BEGIN { for (i = 0; i < 40000; i++) "
			    "printf \"%%08d line %%d of the smoke test\\n\", (i * 7919) %% 40000, i }' "
			    "> %s/in.txt", d.dir), 0);
	ck_assert_int_eq(sh("LC_ALL=C sort -S 8M %s/in.txt > %s/plain.txt", d.dir, d.dir), 0);
	outs = td_stat(&d, "swapouts");
	ins = td_stat(&d, "swapins");
	ck_assert_int_eq(sh("LC_ALL=C LD_PRELOAD=%s UVMPAGER_SOCKET=%s UVMPAGER_BUDGET=2M "
			    "sort -S 8M %s/in.txt > %s/managed.txt", shim, d.sock, d.dir, d.dir), 0);
	ck_assert_int_eq(sh("cmp -s %s/plain.txt %s/managed.txt", d.dir, d.dir), 0);
	outs = td_stat(&d, "swapouts") - outs;
	ins = td_stat(&d, "swapins") - ins;
	printf("sort under the shim, 2 MiB budget: swapouts +%lld, swapins +%lld\n", outs, ins);
	ck_assert_int_gt(outs, 0);
	ck_assert_int_gt(ins, 0);
	ck_assert_int_eq(td_stop(&d), 0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("smoke");
	TCase *tc = tcase_create("smoke");

	require_daemon_env();
	if (!getenv("UVMPAGER_PRELOAD")) {
		printf("SKIP: UVMPAGER_PRELOAD (the shim) not set\n");
		return 77;
	}
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, test_sort_under_shim);
	suite_add_tcase(s, tc);
	return check_run(s, CK_VERBOSE);
}
