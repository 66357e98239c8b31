/*
 * mk_pcluster, table-driven from the origin's rules (uvm_pager.c,
 * uvm_mk_pcluster): bounds from the object's cluster op clamped to the
 * caller's range unless PGO_ALLPAGES; a too-small array gives a one-page
 * cluster; backward scan then forward; stop at a page that is missing,
 * busy or clean, or active without PGO_DOACTCLUST (re-checking an active
 * clean page's dirty bit once); enrolled pages become busy.
 */
#include <check.h>

#include "check_run.h"
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "engine_impl.h"
#include "objects/uobj.h"
#include "pager/pager.h"

/*
 * Page map letters:
 *   D dirty, fenced (inactive)     d dirty, mapped (active)
 *   C clean, fenced                c clean, mapped
 *   m clean, mapped, but its dirty bit says modified
 *   B busy (write in flight)       I busy (read in flight)
 *   S swapped                      E empty
 */
struct pc_case {
	const char *name;
	const char *map;
	size_t center;
	int flags;
	size_t mlo, mhi;
	size_t maxpages;
	unsigned window;      /* cluster op bounds: aligned windows of this size */
	size_t want_start, want_n;
};

static const struct pc_case cases[] = {
	{ "all dirty fenced, window 8", "DDDDDDDD", 3, 0, 0, 8, 64, 8, 0, 8 },
	{ "stop at clean behind", "DCDDDDDD", 4, 0, 0, 8, 64, 8, 2, 6 },
	{ "stop at clean ahead", "DDDDDCDD", 2, 0, 0, 8, 64, 8, 0, 5 },
	{ "stop at busy", "DDBDDDID", 4, 0, 0, 8, 64, 8, 3, 3 },
	{ "stop at swapped and empty", "DSDDDEDD", 3, 0, 0, 8, 64, 8, 2, 3 },
	{ "active pages not wanted", "DdDDDdDD", 3, 0, 0, 8, 64, 8, 2, 3 },
	{ "active pages wanted with DOACTCLUST", "DdDDDdDD", 3, PGO_DOACTCLUST, 0, 8, 64, 8, 0, 8 },
	{ "active clean stops even with DOACTCLUST", "DcDDDDDD", 3, PGO_DOACTCLUST, 0, 8, 64, 8, 2, 6 },
	{ "active clean but modified joins with DOACTCLUST", "DmDDDDDD", 3, PGO_DOACTCLUST, 0, 8, 64, 8, 0, 8 },
	{ "modified mapped page stops without DOACTCLUST", "DmDDDDDD", 3, 0, 0, 8, 64, 8, 2, 6 },
	{ "clamped to caller range", "DDDDDDDD", 3, 0, 2, 6, 64, 8, 2, 4 },
	{ "ALLPAGES ignores caller range", "DDDDDDDD", 3, PGO_ALLPAGES, 2, 6, 64, 8, 0, 8 },
	{ "cluster op window bounds", "DDDDDDDD", 5, 0, 0, 8, 64, 4, 4, 4 },
	{ "array too small: one page", "DDDDDDDD", 3, 0, 0, 8, 4, 8, 3, 1 },
	{ "array exactly big enough", "DDDDDDDD", 3, 0, 0, 8, 8, 8, 0, 8 },
	{ "centre at object start", "DDDDCCCC", 0, 0, 0, 8, 64, 8, 0, 4 },
	{ "centre at object end", "CCCCDDDD", 7, 0, 0, 8, 64, 8, 4, 4 },
	{ "lone centre", "CDC", 1, 0, 0, 3, 64, 8, 1, 1 },
};

static struct engine *fake_engine(unsigned window)
{
	struct engine *e = calloc(1, sizeof(*e));

	e->cfg.cluster_pages = window;
	return e;
}

static bool modified_hook(struct uobj *o, size_t idx)
{
	const char *map = o->eview;   /* the test keeps its map there */

	return map[idx] == 'm';
}

static pgword_t word_of(char ch)
{
	switch (ch) {
	case 'D': return pg_make(PG_DIRTY, PGF_INACTIVE, 0);
	case 'd': return pg_make(PG_DIRTY, 0, 0);
	case 'C': return pg_make(PG_CLEAN, PGF_INACTIVE, 7);
	case 'c': return pg_make(PG_CLEAN, 0, 7);
	case 'm': return pg_make(PG_CLEAN, 0, 0);
	case 'B': return pg_make(PG_BUSY_OUT, PGF_INACTIVE, 0);
	case 'I': return pg_make(PG_BUSY_IN, 0, 3);
	case 'S': return pg_make(PG_SWAPPED, 0, 9);
	default: return 0;
	}
}

START_TEST(test_case)
{
	const struct pc_case *tc = &cases[_i];
	size_t n = strlen(tc->map), start = 12345, got;
	struct engine *e = fake_engine(tc->window);
	struct uobj *o;
	pgword_t center;

	ck_assert_int_eq(uobj_create(e, UOBJ_AOBJ, n, &o), 0);
	o->eview = (char *)tc->map;
	o->is_modified = modified_hook;
	for (size_t i = 0; i < n; i++)
		ck_assert_int_eq(uobj_set(o, i, word_of(tc->map[i])), 0);
	/* the caller makes the centre busy */
	center = uobj_get(o, tc->center);
	uobj_set(o, tc->center, pg_set_state(center, PG_BUSY_OUT));

	got = pager_mk_pcluster(o, tc->center, tc->maxpages, tc->flags,
				tc->mlo, tc->mhi, &start);
	ck_assert_msg(start == tc->want_start && got == tc->want_n,
		      "%s: got [%zu,+%zu) want [%zu,+%zu)", tc->name, start, got,
		      tc->want_start, tc->want_n);
	/* enrolled pages are busy; the rest are untouched */
	for (size_t i = 0; i < n; i++) {
		pgword_t w = uobj_get(o, i);

		if (i >= start && i < start + got)
			ck_assert_msg(pg_state(w) == PG_BUSY_OUT, "%s: page %zu not busy",
				      tc->name, i);
		else
			ck_assert_msg(pg_state(w) == pg_state(word_of(tc->map[i])),
				      "%s: page %zu changed", tc->name, i);
	}
	o->eview = NULL;
	uobj_destroy(o);
	free(e);
}
END_TEST

/* A modified mapped page that joins the cluster is dirty, then busy. */
START_TEST(test_modified_joins_busy)
{
	struct engine *e = fake_engine(8);
	struct uobj *o;
	size_t start;

	ck_assert_int_eq(uobj_create(e, UOBJ_AOBJ, 4, &o), 0);
	o->eview = (char *)"DmDD";
	o->is_modified = modified_hook;
	uobj_set(o, 0, word_of('D'));
	uobj_set(o, 1, word_of('m'));
	uobj_set(o, 2, pg_make(PG_BUSY_OUT, PGF_INACTIVE, 0));
	uobj_set(o, 3, word_of('D'));
	ck_assert_uint_eq(pager_mk_pcluster(o, 2, 8, PGO_DOACTCLUST, 0, 4, &start), 4);
	ck_assert_uint_eq(pg_slot(uobj_get(o, 1)), 0);
	ck_assert_uint_eq(e->dirty, 0);   /* all four are busy now */
	ck_assert_uint_eq(e->resident, 4);
	o->eview = NULL;
	uobj_destroy(o);
	free(e);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("mk_pcluster");
	TCase *tc = tcase_create("origin rules");

	tcase_add_loop_test(tc, test_case, 0, ARRAY_SIZE(cases));
	tcase_add_test(tc, test_modified_joins_busy);
	suite_add_tcase(s, tc);
	return check_run(s, CK_NORMAL);
}
