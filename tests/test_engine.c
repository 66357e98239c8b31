/*
 * Engine integration tests (root, userfaultfd): objects far bigger than
 * their budget with every byte checked, clean re-eviction writing nothing,
 * writers hammering pages while they are evicted, in every dirty-tracking
 * mode this kernel offers and with both I/O engines.
 */
#include <check.h>
#include <pthread.h>
#include <inttypes.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/wait.h>

#include "engine_helpers.h"
#include "fault/track.h"
#include "pager/page.h"

struct combo {
	enum ioeng_kind io;
	enum track_mode track;
};

static const struct combo combos[] = {
	{ IOENG_URING, TRACK_WP_ASYNC },
	{ IOENG_THREADS, TRACK_WP_ASYNC },
	{ IOENG_URING, TRACK_WP_SYNC },
	{ IOENG_THREADS, TRACK_WP_SYNC },
	{ IOENG_URING, TRACK_SOFT_DIRTY },
	{ IOENG_THREADS, TRACK_SOFT_DIRTY },
};

/* The combinations tested: all, or those UVMPAGER_TEST_TRACK / _IO force. */
static struct combo active[ARRAY_SIZE(combos)];
static int nactive;

static void pick_combos(void)
{
	enum track_mode tr = test_track(TRACK_AUTO);
	enum ioeng_kind io = test_io(IOENG_AUTO);

	for (size_t i = 0; i < ARRAY_SIZE(combos); i++)
		if ((tr == TRACK_AUTO || combos[i].track == tr) &&
		    (io == IOENG_AUTO || combos[i].io == io))
			active[nactive++] = combos[i];
}

/* False (and says so) when this kernel does not offer the combination's mode. */
static bool combo_offered(const struct combo *c)
{
	struct uffd_caps caps;

	ck_assert_int_ge(uffd_probe(&caps), 0);
	if (!track_mode_offered(&caps, c->track)) {
		printf("%s: not offered by this kernel\n", track_mode_name(c->track));
		return false;
	}
	return true;
}

struct sampler {
	struct engine *e;
	atomic_bool stop;
	uint64_t max_resident;
	pthread_t th;
};

static void *sample(void *arg)
{
	struct sampler *s = arg;

	while (!atomic_load(&s->stop)) {
		struct engine_stats st;

		engine_get_stats(s->e, &st);
		if (st.resident_bytes > s->max_resident)
			s->max_resident = st.resident_bytes;
		usleep(500);
	}
	return NULL;
}

/* 1 GiB under 128 MiB: every page written, read back; then a clean pass writes nothing. */
START_TEST(test_big_object)
{
	const struct combo *c = &active[_i];
	const uint64_t size = (1ULL << 30) / test_scale(), budget = (128ULL << 20) / test_scale();
	struct engine_stats a, b;
	struct test_engine t;
	struct sampler smp = { 0 };
	size_t npages = size >> PAGE_SHIFT, bad = 0;
	uint8_t *mem;

	if (!combo_offered(c))
		return;
	ck_assert_int_eq(test_engine_create(&t, c->io, c->track, budget, 2 * size, NULL, NULL), 0);
	ck_assert_int_eq(engine_aobj_create(t.e, size, 0, (void **)&mem, NULL), 0);
	smp.e = t.e;
	pthread_create(&smp.th, NULL, sample, &smp);

	for (size_t p = 0; p < npages; p++)
		fill(mem + (p << PAGE_SHIFT), p, 1);
	for (size_t p = 0; p < npages; p++)
		bad += !check(mem + (p << PAGE_SHIFT), p, 1);
	ck_assert_uint_eq(bad, 0);

	engine_get_stats(t.e, &a);
	ck_assert_uint_gt(a.swapouts, (size - budget) >> PAGE_SHIFT);
	ck_assert_uint_ge(a.swapins, (size - budget) >> PAGE_SHIFT);
	/* the sequential pass was seen as a stream and read ahead of */
	ck_assert_uint_gt(a.readahead, 0);
	/* everything is clean now: another full pass evicts with no writes */
	for (size_t p = 0; p < npages; p++)
		bad += !check(mem + (p << PAGE_SHIFT), p, 1);
	engine_get_stats(t.e, &b);
	ck_assert_uint_eq(bad, 0);
	/*
	 * Unless pages read back cannot be mapped clean: soft-dirty cannot
	 * prove a page clean (track.h), and kernels before 6.6 lack
	 * CONTINUE_MODE_WP; then everything is written again.
	 */
	if (b.clean_mapping) {
		ck_assert_uint_eq(b.swap_write_bytes - a.swap_write_bytes, 0);
		ck_assert_uint_gt(b.clean_evictions, a.clean_evictions);
	}

	atomic_store(&smp.stop, true);
	pthread_join(smp.th, NULL);
	/*
	 * Over the budget only through the engine's one way past it: nothing
	 * left memory for STALL_NS while faults waited (a disk stalling that
	 * long on a shared machine), and it said so (budget_overruns).
	 */
	ck_assert_msg(smp.max_resident <= budget || b.budget_overruns > 0,
		      "resident peaked at %" PRIu64 " > budget, with no overrun declared",
		      smp.max_resident);
	if (smp.max_resident > budget)
		printf("%s/%s: over the budget (peak %" PRIu64 " MiB) after %" PRIu64
		       " declared stall(s) of the page daemon\n", ioeng_kind_name(c->io),
		       track_mode_name(c->track), smp.max_resident >> 20, b.budget_overruns);
	printf("%s/%s: swapouts %" PRIu64 " swapins %" PRIu64 " write ops %" PRIu64
	       " (%.1f pages/op) peak resident %" PRIu64 " MiB\n",
	       ioeng_kind_name(c->io), track_mode_name(c->track), b.swapouts, b.swapins,
	       b.write_ops, b.write_ops ? (double)b.swapouts / b.write_ops : 0.0,
	       smp.max_resident >> 20);
	test_engine_destroy(&t);
}
END_TEST

/*
 * Writers hammer their own pages while the page daemon (and a thread
 * forcing reclaim) evicts them; every write must survive.
 */
#define HAMMER_THREADS 4
#define HAMMER_PAGES (8192 / test_scale())   /* 32 MiB */
#define HAMMER_ROUNDS 12

struct hammer {
	uint8_t *mem;
	unsigned id;
	unsigned *gen;             /* last generation written, per page */
	atomic_size_t errors;
	uint64_t seed;
};

static void *hammer_thread(void *arg)
{
	struct hammer *h = arg;

	for (unsigned round = 1; round <= HAMMER_ROUNDS; round++) {
		for (size_t k = 0; k < HAMMER_PAGES / HAMMER_THREADS; k++) {
			size_t p;

			h->seed ^= h->seed << 13;
			h->seed ^= h->seed >> 7;
			h->seed ^= h->seed << 17;
			p = (h->seed % (HAMMER_PAGES / HAMMER_THREADS)) * HAMMER_THREADS + h->id;
			/* read-check what we wrote last, then write the next generation */
			if (h->gen[p] && !check(h->mem + (p << PAGE_SHIFT), p, h->gen[p]))
				atomic_fetch_add(&h->errors, 1);
			h->gen[p]++;
			fill(h->mem + (p << PAGE_SHIFT), p, h->gen[p]);
		}
	}
	return NULL;
}

struct reclaimer {
	struct engine *e;
	struct uobj *o;
	atomic_bool stop;
};

static void *reclaim_thread(void *arg)
{
	struct reclaimer *r = arg;

	while (!atomic_load(&r->stop)) {
		engine_reclaim(r->e, r->o, 2ULL << 20);
		usleep(200);
	}
	return NULL;
}

START_TEST(test_hammer)
{
	const struct combo *c = &active[_i];
	struct hammer h[HAMMER_THREADS];
	pthread_t th[HAMMER_THREADS], rth;
	struct reclaimer rc = { 0 };
	unsigned *gen = calloc(HAMMER_PAGES, sizeof(unsigned));
	struct engine_stats st;
	struct test_engine t;
	struct uobj *o;
	uint8_t *mem;
	size_t lost = 0;

	if (!combo_offered(c))
		return;
	ck_assert_int_eq(test_engine_create(&t, c->io, c->track, (8ULL << 20) / test_scale(),
					    (256ULL << 20) / test_scale(), NULL, NULL), 0);
	ck_assert_int_eq(engine_aobj_create(t.e, (size_t)HAMMER_PAGES << PAGE_SHIFT, 0,
					    (void **)&mem, &o), 0);
	rc.e = t.e;
	rc.o = o;
	pthread_create(&rth, NULL, reclaim_thread, &rc);
	for (unsigned i = 0; i < HAMMER_THREADS; i++) {
		h[i] = (struct hammer){ .mem = mem, .id = i, .gen = gen,
					.seed = 0x1234567ULL * (i + 1) };
		pthread_create(&th[i], NULL, hammer_thread, &h[i]);
	}
	for (unsigned i = 0; i < HAMMER_THREADS; i++)
		pthread_join(th[i], NULL);
	atomic_store(&rc.stop, true);
	pthread_join(rth, NULL);

	for (unsigned i = 0; i < HAMMER_THREADS; i++)
		ck_assert_uint_eq(atomic_load(&h[i].errors), 0);
	/* push everything out and read it all back */
	engine_reclaim(t.e, o, 0);
	for (size_t p = 0; p < HAMMER_PAGES; p++)
		if (gen[p] && !check(mem + (p << PAGE_SHIFT), p, gen[p]))
			lost++;
	engine_get_stats(t.e, &st);
	printf("%s/%s hammer: swapouts %" PRIu64 " swapins %" PRIu64 " evictions %" PRIu64 "\n",
	       ioeng_kind_name(c->io), track_mode_name(c->track), st.swapouts, st.swapins,
	       st.evictions);
	ck_assert_msg(lost == 0, "%zu pages lost writes", lost);
	ck_assert_uint_gt(st.swapouts, 0);
	ck_assert_uint_gt(st.swapins, 0);
	test_engine_destroy(&t);
	free(gen);
}
END_TEST

/* Swap a few pages out, then overwrite page `victim`'s slot on disk. */
static void corrupt_setup(struct test_engine *t, uint8_t **mem, struct uobj **o, size_t victim)
{
	unsigned state;
	uint64_t slot;
	void *junk;

	ck_assert_int_eq(test_engine_create(t, IOENG_AUTO, TRACK_AUTO, 0, 64ULL << 20,
					    NULL, NULL), 0);
	ck_assert_int_eq(engine_aobj_create(t->e, 64 * PAGE_SIZE, 0, (void **)mem, o), 0);
	for (size_t p = 0; p < 64; p++)
		fill(*mem + (p << PAGE_SHIFT), p, 7);
	ck_assert_int_eq(engine_reclaim(t->e, *o, 0), 0);
	ck_assert_int_eq(engine_page_state(t->e, *o, victim, &state, &slot), 0);
	ck_assert_uint_eq(state, PG_SWAPPED);
	ck_assert_uint_ne(slot, 0);

	ck_assert_int_eq(posix_memalign(&junk, PAGE_SIZE, PAGE_SIZE), 0);
	memset(junk, 0xA5, PAGE_SIZE);
	ck_assert_int_eq(test_swap_write_raw(t, junk, PAGE_SIZE, slot << PAGE_SHIFT), 0);
	free(junk);
}

static sigjmp_buf bus_jmp;

static void on_sigbus(int sig)
{
	siglongjmp(bus_jmp, 1);
}

/* A corrupted slot is caught by its checksum: SIGBUS, never the garbage. */
START_TEST(test_corrupt_slot)
{
	struct sigaction sa = { .sa_handler = on_sigbus }, old;
	struct engine_stats st;
	struct test_engine t;
	volatile uint64_t sink = 0;
	volatile int buses = 0;
	struct uobj *o;
	uint8_t *mem;
	unsigned state;

	corrupt_setup(&t, &mem, &o, 10);
	ck_assert(check(mem + (40UL << PAGE_SHIFT), 40, 7));

	sigaction(SIGBUS, &sa, &old);
	for (int i = 0; i < 2; i++) {
		if (sigsetjmp(bus_jmp, 1) == 0)
			sink += *(volatile uint64_t *)(mem + (10UL << PAGE_SHIFT));
		else
			buses++;
	}
	sigaction(SIGBUS, &old, NULL);
	ck_assert_int_eq(buses, 2);   /* and again on the second touch */
	ck_assert_int_eq(engine_page_state(t.e, o, 10, &state, NULL), 0);
	ck_assert_uint_eq(state, PG_BAD);
	engine_get_stats(t.e, &st);
	ck_assert_uint_eq(st.read_errors, 1);
	ck_assert_uint_ge(st.swap_slots_bad, 1);
	/* every other page is intact */
	for (size_t p = 0; p < 64; p++)
		if (p != 10)
			ck_assert(check(mem + (p << PAGE_SHIFT), p, 7));
	test_engine_destroy(&t);
	(void)sink;
}
END_TEST

/* Without a handler the toucher dies by SIGBUS. */
START_TEST(test_corrupt_slot_kills)
{
	pid_t pid = fork();
	int status;

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct test_engine t;
		struct uobj *o;
		uint8_t *mem;

		corrupt_setup(&t, &mem, &o, 20);
		test_swap_remove(&t);
		printf("%lx\n", (unsigned long)*(volatile uint64_t *)(mem + (20UL << PAGE_SHIFT)));
		_exit(0);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGBUS,
		      "child status %#x, wanted death by SIGBUS", status);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("engine");
	TCase *big = tcase_create("big");
	TCase *ham = tcase_create("hammer");
	TCase *err = tcase_create("errors");
	SRunner *sr;
	int failed;

	require_engine_env();
	pick_combos();
	tcase_set_timeout(big, 300);
	tcase_set_timeout(ham, 300);
	tcase_add_loop_test(big, test_big_object, 0, nactive);
	tcase_add_loop_test(ham, test_hammer, 0, nactive);
	tcase_add_test(err, test_corrupt_slot);
	tcase_add_test(err, test_corrupt_slot_kills);
	suite_add_tcase(s, big);
	suite_add_tcase(s, ham);
	suite_add_tcase(s, err);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_VERBOSE);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
