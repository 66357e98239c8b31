/*
 * Fences of a client in another process (src/fault/fence.c), driven from
 * a fence callback of the test's own, so that a program's MADV_DONTNEED
 * lands at an exact point of a fence: before the fence's own discard or
 * after it, with the program's next touch of the page in between.
 *
 * The test process is its own "client": it hands the engine a userfaultfd
 * and a shared memfd mapping of its own address space, like the shim does,
 * and plays both the program (a thread doing a raw madvise, then reading
 * and writing the page) and the agent (a thread doing the fence's
 * MADV_DONTNEED). The kernel holds each madvise until its REMOVE event is
 * read; the callback reads them with engine_client_fence_pump(), as the
 * daemon does, so the order of events is the test's to choose.
 *
 * Before 983eab3 the engine carried the program's discard out where the
 * second of the two REMOVEs was; with the program's first, its write after
 * the discard could be punched away (torture seed 34676947: "zeros where
 * data was written"). This test does not catch that every time on the old
 * code: the fault threads wake a batch's faults at its end, after its
 * REMOVEs, so the program's touch must fall into an earlier batch than
 * the late discard. It checks the contract the fix gives: the discard
 * comes before any touch read after the program's REMOVE.
 */
#include <check.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>

#include "check_run.h"
#include "engine_helpers.h"

#define NPAGES 64
#define LEN (NPAGES * PAGE_SIZE)
#define VICTIM 17                /* the page the program discards */
#define NEWVAL 0x5eed5eed5eedULL  /* what it writes there after */

enum order {
	PROGRAM_FIRST,   /* its REMOVE, its touches, then the fence's REMOVE */
	FENCE_FIRST,     /* the fence's REMOVE, then the program's, then its touches */
};

static const enum track_mode modes[] = { TRACK_WP_ASYNC, TRACK_WP_SYNC };

struct fx {
	struct test_engine te;
	struct client *c;
	struct uobj *o;
	char *mem;
	enum order order;
	bool armed;
	/* the program thread */
	pthread_t prog;
	atomic_bool discarded, done;
	uint64_t read_after;     /* what it read right after its discard */
	/* the agent thread */
	const struct engine_range *r;
	unsigned n;
	atomic_bool zapped;
};

static uint64_t pattern(size_t page)
{
	return 0x1000 + page * 7;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Reads the client's events for ms milliseconds, or until *flag. */
static void pump(struct fx *x, atomic_bool *flag, unsigned ms)
{
	uint64_t end = now_ms() + ms;
	struct pollfd p = { .fd = engine_client_uffd(x->c), .events = POLLIN };

	while (now_ms() < end && !(flag && atomic_load(flag))) {
		if (poll(&p, 1, 5) > 0)
			ck_assert_int_eq(engine_client_fence_pump(x->c), 0);
	}
	if (flag)
		ck_assert_msg(atomic_load(flag), "a madvise was never let go (%u ms)", ms);
}

static void *program(void *arg)
{
	struct fx *x = arg;
	volatile uint64_t *p = (volatile uint64_t *)(x->mem + VICTIM * PAGE_SIZE);

	syscall(SYS_madvise, (void *)p, PAGE_SIZE, MADV_DONTNEED);
	atomic_store(&x->discarded, true);
	/* the page reads zeros after a discard, and keeps what is written next */
	x->read_after = *p;
	*p = NEWVAL;
	atomic_store(&x->done, true);
	return NULL;
}

static void *agent(void *arg)
{
	struct fx *x = arg;

	for (unsigned i = 0; i < x->n; i++)
		madvise((void *)x->r[i].addr, x->r[i].len, MADV_DONTNEED);
	atomic_store(&x->zapped, true);
	return NULL;
}

static void agent_zap(struct fx *x, const struct engine_range *r, unsigned n)
{
	pthread_t th;

	x->r = r;
	x->n = n;
	atomic_store(&x->zapped, false);
	pthread_create(&th, NULL, agent, x);
	pump(x, &x->zapped, 10000);
	pthread_join(th, NULL);
}

static int fence_cb(void *priv, const struct engine_range *r, unsigned n, unsigned flags,
		    int memfd, uint64_t off)
{
	struct fx *x = priv;

	(void)memfd;
	(void)off;
	if (flags)
		return -EINVAL;
	if (!x->armed) {
		agent_zap(x, r, n);
		return 0;
	}
	x->armed = false;
	if (x->order == FENCE_FIRST)
		agent_zap(x, r, n);
	pthread_create(&x->prog, NULL, program, x);
	pump(x, &x->discarded, 10000);
	/* its read after the discard faults: read here, served after the fence */
	pump(x, NULL, 100);
	ck_assert(!atomic_load(&x->done));
	if (x->order == PROGRAM_FIRST)
		agent_zap(x, r, n);
	return 0;
}

static void fx_init(struct fx *x, enum track_mode mode, enum order order)
{
	int ufd, memfd;

	memset(x, 0, sizeof(*x));
	x->order = order;
	ck_assert_int_eq(test_engine_create(&x->te, IOENG_AUTO, mode, 64 << 20, 64 << 20, NULL, NULL), 0);
	ufd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	ck_assert_int_ge(ufd, 0);
	ck_assert_int_eq(engine_client_create(x->te.e, getpid(), ufd, 0, fence_cb, x, &x->c), 0);
	memfd = memfd_create("test-fence", MFD_CLOEXEC);
	ck_assert_int_ge(memfd, 0);
	ck_assert_int_eq(ftruncate(memfd, LEN), 0);
	x->mem = mmap(NULL, LEN, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
	ck_assert_ptr_ne(x->mem, MAP_FAILED);
	ck_assert_int_eq(engine_object_attach(x->te.e, x->c, ENGINE_OBJ_ANON, memfd, -1,
					      (uintptr_t)x->mem, LEN, 0, &x->o), 0);
	close(memfd);
	for (size_t i = 0; i < NPAGES; i++)
		*(volatile uint64_t *)(x->mem + i * PAGE_SIZE) = pattern(i);
}

static void fx_fini(struct fx *x)
{
	engine_client_destroy(x->te.e, x->c);
	munmap(x->mem, LEN);
	test_engine_destroy(&x->te);
}

/*
 * The program discards a page while the page daemon fences it, then reads
 * it (zeros) and writes it: the write stays, every other page keeps its
 * data. With the program's REMOVE first, the fence's second REMOVE is
 * taken as the discard; carried out where it came, it punched the write.
 */
static void discard_during_fence(int i, enum order order)
{
	struct fx x;
	int r;

	fx_init(&x, modes[i], order);
	x.armed = true;
	r = engine_reclaim(x.te.e, x.o, 0);
	ck_assert_msg(!x.armed, "the fence callback was never called");
	pthread_join(x.prog, NULL);
	/*
	 * The program's touches race the reclaim by design: its page may be
	 * in use still when the reclaim gives up (EAGAIN). It is not, now.
	 */
	if (r == -EAGAIN)
		r = engine_reclaim(x.te.e, x.o, 0);
	ck_assert_int_eq(r, 0);
	/*
	 * The program's REMOVE first: its read faulted between the two, the
	 * proof that it had no pte after its discard, which is carried out.
	 * Ours first, nothing between: that is also what a refused MADV_FREE
	 * looks like, whose writes through its pte must stay (hostile
	 * raw-free), so the page keeps its content (libuvmpager-preload(7)).
	 */
	if (order == PROGRAM_FIRST)
		ck_assert_msg(x.read_after == 0, "%s: page read %#lx right after its discard, not zeros",
			      track_mode_name(modes[i]), (unsigned long)x.read_after);
	else
		ck_assert_msg(x.read_after == 0 || x.read_after == pattern(VICTIM),
			      "%s: page read %#lx right after its discard: neither zeros nor its content",
			      track_mode_name(modes[i]), (unsigned long)x.read_after);
	for (size_t p = 0; p < NPAGES; p++) {
		uint64_t want = p == VICTIM ? NEWVAL : pattern(p);
		uint64_t got = *(volatile uint64_t *)(x.mem + p * PAGE_SIZE);

		ck_assert_msg(got == want, "%s: page %zu reads %#lx, wrote %#lx",
			      track_mode_name(modes[i]), p, (unsigned long)got, (unsigned long)want);
	}
	/* and once more from swap */
	ck_assert_int_eq(engine_reclaim(x.te.e, x.o, 0), 0);
	ck_assert_uint_eq(*(volatile uint64_t *)(x.mem + VICTIM * PAGE_SIZE), NEWVAL);
	fx_fini(&x);
}

START_TEST(program_first)
{
	discard_during_fence(_i, PROGRAM_FIRST);
}
END_TEST

START_TEST(fence_first)
{
	discard_during_fence(_i, FENCE_FIRST);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("fence");
	TCase *tc = tcase_create("remove");

	require_engine_env();
	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, program_first, 0, ARRAY_SIZE(modes));
	tcase_add_loop_test(tc, fence_first, 0, ARRAY_SIZE(modes));
	suite_add_tcase(s, tc);
	return check_run(s, CK_VERBOSE);
}
