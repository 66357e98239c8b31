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
	const char *scale = getenv("UVMPAGER_TEST_SCALE");
	/*
	 * 1.5 MB of lines in a scrambled order, which sort keeps in its 8 MB
	 * buffer, under a 2 MiB budget. In an emulated guest
	 * (UVMPAGER_TEST_SCALE set), where each fault costs far more, a
	 * quarter of the lines in a 4 MB buffer under 1 MiB: about 450
	 * swap-ins instead of 6500 (a smaller budget thrashes: 512K took 80000)
	 */
	bool small = scale && atoi(scale) > 1;
	unsigned lines = small ? 10000 : 40000;
	const char *buf = small ? "4M" : "8M", *budget = small ? "1M" : "2M";
	long long outs, ins;

	ck_assert_ptr_nonnull(shim);
	ck_assert_int_eq(td_start(&d, "64M", NULL), 0);
	ck_assert_int_eq(sh("awk 'BEGIN { for (i = 0; i < %u; i++) "
			    "printf \"%%08d line %%d of the smoke test\\n\", (i * 7919) %% %u, i }' "
			    "> %s/in.txt", lines, lines, d.dir), 0);
	ck_assert_int_eq(sh("LC_ALL=C sort -S %s %s/in.txt > %s/plain.txt", buf, d.dir, d.dir), 0);
	outs = td_stat(&d, "swapouts");
	ins = td_stat(&d, "swapins");
	ck_assert_int_eq(sh("LC_ALL=C LD_PRELOAD=%s UVMPAGER_SOCKET=%s UVMPAGER_BUDGET=%s "
			    "sort -S %s %s/in.txt > %s/managed.txt", shim, d.sock, budget, buf, d.dir,
			    d.dir), 0);
	ck_assert_int_eq(sh("cmp -s %s/plain.txt %s/managed.txt", d.dir, d.dir), 0);
	outs = td_stat(&d, "swapouts") - outs;
	ins = td_stat(&d, "swapins") - ins;
	printf("sort under the shim, %s budget: swapouts +%lld, swapins +%lld\n", budget, outs, ins);
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
