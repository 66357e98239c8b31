/*
 * fork(2) with big malloc()ed blocks: parent and child each see the
 * memory as of the fork and never each other's writes afterwards; a
 * child reads its snapshot while the parent overwrites everything; fork
 * then exec (the new program allocates for itself); nested forks;
 * threads forking at the same time, allocating in between. Run
 * plain and under the shim: the same output, exit 0.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define MiB (1UL << 20)
#define PG 4096UL
#define LEN (96 * MiB)

static int failures;

#define CHECK(cond, ...) \
	do { \
		if (!(cond)) { \
			printf("FAIL %s:%d: ", __FILE__, __LINE__); \
			printf(__VA_ARGS__); \
			printf("\n"); \
			fflush(stdout); \
			failures++; \
		} \
	} while (0)

static void fill(char *p, size_t len, uint64_t seed)
{
	for (size_t off = 0; off < len; off += PG) {
		uint64_t v = off / PG * 0x9e3779b97f4a7c15ULL ^ seed;

		for (size_t w = 0; w < PG; w += 1024)
			memcpy(p + off + w, &v, sizeof(v));
	}
}

static size_t bad(const char *p, size_t len, uint64_t seed)
{
	size_t n = 0;

	for (size_t off = 0; off < len; off += PG) {
		uint64_t v = off / PG * 0x9e3779b97f4a7c15ULL ^ seed, got;

		for (size_t w = 0; w < PG; w += 1024) {
			memcpy(&got, p + off + w, sizeof(got));
			if (got != v) {
				n++;
				break;
			}
		}
	}
	return n;
}

static int wait_child(pid_t pid)
{
	int status;

	if (waitpid(pid, &status, 0) != pid)
		return -1;
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return WEXITSTATUS(status);
}

/* Parent and child write after the fork; neither sees the other. */
static void isolation(char *p)
{
	pid_t pid;

	fill(p, LEN, 1);
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		if (bad(p, LEN, 1))
			_exit(3);
		fill(p, LEN, 3);
		usleep(200 * 1000);
		_exit(bad(p, LEN, 3) ? 4 : 0);
	}
	CHECK(pid > 0, "fork");
	fill(p, LEN, 2);
	CHECK(wait_child(pid) == 0, "child saw the wrong data");
	CHECK(bad(p, LEN, 2) == 0, "parent's data changed by the child");
	printf("isolation ok\n");
}

struct writer {
	char *p;
	volatile int stop;
};

static void *overwrite(void *arg)
{
	struct writer *w = arg;

	for (uint64_t seed = 100; !w->stop; seed++)
		fill(w->p, LEN, seed);
	return NULL;
}

/* The child reads its snapshot while a parent thread keeps overwriting. */
static void snapshot(char *p)
{
	struct writer w = { .p = p };
	pthread_t t;
	pid_t pid;

	fill(p, LEN, 5);
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		for (int pass = 0; pass < 3; pass++)
			if (bad(p, LEN, 5))
				_exit(5);
		_exit(0);
	}
	CHECK(pid > 0, "fork");
	pthread_create(&t, NULL, overwrite, &w);
	CHECK(wait_child(pid) == 0, "the child's snapshot changed under it");
	w.stop = 1;
	pthread_join(t, NULL);
	printf("snapshot ok\n");
}

/* fork + exec: the new image allocates for itself (under the shim: a new client). */
static void fork_exec(const char *self)
{
	pid_t pid;

	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		execl(self, self, "--exec-child", (char *)NULL);
		_exit(127);
	}
	CHECK(wait_child(pid) == 42, "exec child failed");
	printf("fork+exec ok\n");
}

static int exec_child(void)
{
	char *q = malloc(LEN);

	if (!q)
		return 1;
	fill(q, LEN, 9);
	if (bad(q, LEN, 9))
		return 2;
	free(q);
	return 42;
}

/* A child forks a grandchild; each generation has its own copy. */
static void nested(char *p)
{
	pid_t pid;

	fill(p, LEN, 6);
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		pid_t gc;

		if (bad(p, LEN, 6))
			_exit(6);
		fill(p, LEN, 7);
		gc = fork();
		if (gc == 0) {
			if (bad(p, LEN, 7))
				_exit(7);
			fill(p, LEN, 8);
			_exit(bad(p, LEN, 8) ? 8 : 0);
		}
		if (wait_child(gc) != 0)
			_exit(9);
		_exit(bad(p, LEN, 7) ? 10 : 0);
	}
	CHECK(wait_child(pid) == 0, "nested fork");
	CHECK(bad(p, LEN, 6) == 0, "parent changed by nested children");
	printf("nested ok\n");
}

/* Several children in a row, each with a fresh block allocated after the last fork. */
static void serial(void)
{
	for (int i = 0; i < 4; i++) {
		char *q = malloc(8 * MiB);
		pid_t pid;

		fill(q, 8 * MiB, 50 + (uint64_t)i);
		fflush(stdout);
		pid = fork();
		if (pid == 0)
			_exit(bad(q, 8 * MiB, 50 + (uint64_t)i) ? 1 : 0);
		CHECK(wait_child(pid) == 0, "serial child %d", i);
		free(q);
	}
	printf("serial ok\n");
}

#define FORKERS 4
#define FORKS_EACH 10

/* One thread's forks: its own block, grown between forks; each child checks its copy. */
static void *forker(void *arg)
{
	uint64_t seed = 200 + (uintptr_t)arg * 16;
	size_t len = MiB;
	char *q = malloc(len);
	intptr_t fails = 0;

	for (int i = 0; i < FORKS_EACH && q; i++, seed++) {
		pid_t pid;
		char *g;

		fill(q, len, seed);
		pid = fork();
		if (pid == 0)
			_exit(bad(q, len, seed) ? 1 : 0);
		fails += pid < 0 || wait_child(pid) != 0;
		/* the arena must be free again: a fork that left it locked hangs here */
		g = realloc(q, len + PG * 64);
		if (!g)
			break;
		q = g;
		len += PG * 64;
	}
	free(q);
	return (void *)(fails + !q);
}

/* Several threads fork at once (the shim once lost its arena lock to this: a hang). */
static void concurrent(void)
{
	pthread_t t[FORKERS];
	intptr_t fails = 0;
	void *rv;

	fflush(stdout);
	alarm(120);   /* a hang is a failure, not a stuck test */
	for (intptr_t i = 0; i < FORKERS; i++)
		pthread_create(&t[i], NULL, forker, (void *)i);
	for (int i = 0; i < FORKERS; i++) {
		pthread_join(t[i], &rv);
		fails += (intptr_t)rv;
	}
	alarm(0);
	CHECK(fails == 0, "%ld concurrent forks failed", (long)fails);
	printf("concurrent forks ok\n");
}

int main(int argc, char **argv)
{
	char *p;

	if (argc > 1 && !strcmp(argv[1], "--exec-child"))
		return exec_child();
	if (argc > 1 && !strcmp(argv[1], "--concurrent")) {
		/* that section alone, to replay it */
		concurrent();
		return failures ? 1 : 0;
	}
	p = malloc(LEN);
	if (!p)
		return 2;
	isolation(p);
	snapshot(p);
	fork_exec("/proc/self/exe");
	nested(p);
	serial();
	free(p);
	concurrent();
	printf("%s\n", failures ? "FAILED" : "ok");
	return failures ? 1 : 0;
}
