/* Every Check test program ends the same way. */
#ifndef UVMPAGER_TEST_CHECK_RUN_H
#define UVMPAGER_TEST_CHECK_RUN_H

#include <check.h>

/* Runs the suite; the exit status: 0 when every test passed. */
static inline int check_run(Suite *s, enum print_output mode)
{
	SRunner *sr = srunner_create(s);
	int failed;

	srunner_run_all(sr, mode);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}

#endif
