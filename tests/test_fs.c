/*
 * The filesystem at the mount point, against a real uvmpagerd and real
 * clients (the client library in forked workloads): every file reads
 * whole and agrees with the others and with the workload; an object's
 * data reads back the client's bytes with its holes and leaves the client
 * as it was; other users are kept out of what is not theirs; every
 * tunable refuses bad input and applies good input; a stale mount from a
 * killed daemon is cleared by the next one.
 */
#include <check.h>
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdint.h>
#include <sys/wait.h>

#include "check_run.h"
#include "daemon_helpers.h"
#include "uvmpager/uvmpager.h"

#define PAGE 4096UL
#define NOBODY 65534
#define OTHER 65533

/* a failed assertion _exits past td_stop: the daemon then stops itself */
static struct test_daemon d = { .stop_with_parent = true };

/* --- the workload: a client process with one object -------------------- */

struct workload {
	pid_t pid;
	uint64_t id;
	uint64_t hash;            /* FNV-1a of the object's whole contents, the client's own */
	size_t pages;
	int cmd, rep;
};

/* Pages [0, written) are written, except a hole in the middle; the rest never. */
#define HOLE_FIRST(pages) ((pages) / 2)
#define HOLE_PAGES 16

static bool page_written(size_t p, size_t pages)
{
	size_t written = pages * 3 / 4;

	return p < written && !(p >= HOLE_FIRST(pages) && p < HOLE_FIRST(pages) + HOLE_PAGES);
}

static void pattern(uint64_t *pg, size_t p, unsigned gen)
{
	for (size_t w = 0; w < PAGE / 8; w++)
		pg[w] = ((uint64_t)p << 20 | w) ^ ((uint64_t)gen << 56) ^ 0x5a5a000000000000ULL;
}

static uint64_t fnv(uint64_t h, const void *buf, size_t len)
{
	const uint8_t *b = buf;

	for (size_t i = 0; i < len; i++)
		h = (h ^ b[i]) * 0x100000001b3ULL;
	return h;
}

#define FNV_INIT 0xcbf29ce484222325ULL

static void put64(int fd, uint64_t v)
{
	if (write(fd, &v, sizeof(v)) != sizeof(v))
		_exit(93);
}

static uint64_t get64(int fd)
{
	uint64_t v = UINT64_MAX;

	if (read(fd, &v, sizeof(v)) != sizeof(v))
		return UINT64_MAX;
	return v;
}

/*
 * The child: connect as uid, map `pages` with an object budget, write
 * the pattern (hashing what it writes, not reading its memory back, so
 * the hash costs no faults), report id and hash, then obey: 'c' churns
 * (rewrites random written pages with the same bytes for ~1 s), 'q' quits.
 */
static void workload_run(uid_t uid, size_t pages, uint64_t budget, int cmd, int rep)
{
	static uint64_t pg[PAGE / 8], zero[PAGE / 8];
	struct uvmpager *c;
	uint64_t id, h = FNV_INIT;
	uint8_t *m;
	char op;

	if (uid && (setresgid(uid, uid, uid) || setresuid(uid, uid, uid)))
		_exit(90);
	if (uvmpager_connect(d.sock, 0, &c) < 0)
		_exit(91);
	if (uvmpager_anon_create(c, pages * PAGE, budget, (void **)&m, &id) < 0)
		_exit(92);
	for (size_t p = 0; p < pages; p++) {
		if (page_written(p, pages)) {
			pattern(pg, p, 1);
			memcpy(m + p * PAGE, pg, PAGE);
			h = fnv(h, pg, PAGE);
		} else {
			h = fnv(h, zero, PAGE);
		}
	}
	put64(rep, id);
	put64(rep, h);
	while (read(cmd, &op, 1) == 1) {
		if (op == 'q')
			break;
		if (op == 'c') {
			uint64_t end = (uint64_t)time(NULL) + 1;
			unsigned seed = 1;

			while ((uint64_t)time(NULL) <= end) {
				size_t p = (size_t)rand_r(&seed) % pages;

				if (!page_written(p, pages))
					continue;
				pattern(pg, p, 1);
				memcpy(m + p * PAGE, pg, PAGE);
			}
		}
		put64(rep, 0);
	}
	uvmpager_disconnect(c);
	_exit(0);
}

static void workload_start(struct workload *w, uid_t uid, size_t pages, uint64_t budget)
{
	int c[2], r[2];

	ck_assert_int_eq(pipe(c), 0);
	ck_assert_int_eq(pipe(r), 0);
	w->pages = pages;
	w->pid = fork();
	ck_assert_int_ge(w->pid, 0);
	if (w->pid == 0) {
		close(c[1]);
		close(r[0]);
		workload_run(uid, pages, budget, c[0], r[1]);
	}
	close(c[0]);
	close(r[1]);
	w->cmd = c[1];
	w->rep = r[0];
	w->id = get64(w->rep);
	w->hash = get64(w->rep);
	ck_assert_uint_ne(w->id, UINT64_MAX);
}

static void workload_do(struct workload *w, char op)
{
	ck_assert_int_eq(write(w->cmd, &op, 1), 1);
	if (op != 'q')
		ck_assert_uint_eq(get64(w->rep), 0);
}

static void workload_stop(struct workload *w)
{
	int st;

	workload_do(w, 'q');
	waitpid(w->pid, &st, 0);
	ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	close(w->cmd);
	close(w->rep);
}

/* --- reading the filesystem --------------------------------------------- */

/* The whole file into a NUL-terminated buffer (caller frees); NULL and errno. */
static char *slurp(const char *path, size_t *len)
{
	size_t cap = 4096, n = 0;
	char *buf = malloc(cap + 1);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t k;

	if (fd < 0) {
		int e = errno;

		free(buf);
		errno = e;
		return NULL;
	}
	while ((k = read(fd, buf + n, cap - n)) > 0) {
		n += (size_t)k;
		if (n == cap)
			buf = realloc(buf, (cap *= 2) + 1);
	}
	close(fd);
	if (k < 0) {
		free(buf);
		return NULL;
	}
	buf[n] = '\0';
	if (len)
		*len = n;
	return buf;
}

static char *mnt_file(char *out, size_t size, const char *fmt, ...)
{
	va_list ap;
	int n = snprintf(out, size, "%s/", d.mnt);

	va_start(ap, fmt);
	vsnprintf(out + n, size - (size_t)n, fmt, ap);
	va_end(ap);
	return out;
}

/* A key's value in a flat-keyed file; -1 if missing. */
static long long key_of(const char *text, const char *key)
{
	size_t kl = strlen(key);

	for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
		if (strncmp(l, key, kl) == 0 && l[kl] == ' ')
			return strtoll(l + kl + 1, NULL, 0);
	return -1;
}

static long long file_key(const char *rel, const char *key)
{
	char path[256];
	char *t = slurp(mnt_file(path, sizeof(path), "%s", rel), NULL);
	long long v;

	if (!t)
		return -1;
	v = key_of(t, key);
	free(t);
	return v;
}

static long long obj_key(uint64_t id, const char *key)
{
	char rel[64];

	snprintf(rel, sizeof(rel), "objects/%" PRIu64 "/stat", id);
	return file_key(rel, key);
}

/* Every key present, each line "key value" with one space and an integer. */
static void check_flat(const char *text, const char *const *keys)
{
	for (const char *const *k = keys; *k; k++)
		ck_assert_msg(key_of(text, *k) >= 0, "key %s missing in:\n%s", *k, text);
}

/*
 * Run-length lines "first-last state..." covering [0, n) in order, none
 * empty; returns the pages of lines whose state begins with `count`.
 */
static size_t check_runs(const char *text, size_t first, size_t n, const char *count)
{
	size_t next = first, counted = 0;

	for (const char *l = text; *l; l = strchr(l, '\n') + 1) {
		unsigned long long a, b;
		char state[64];

		ck_assert_msg(sscanf(l, "%llu-%llu %63s", &a, &b, state) == 3, "bad line: %.60s", l);
		ck_assert_uint_eq(a, next);
		ck_assert_uint_ge(b, a);
		if (count && strncmp(l + strcspn(l, " ") + 1, count, strlen(count)) == 0)
			counted += b - a + 1;
		next = b + 1;
		ck_assert_ptr_nonnull(strchr(l, '\n'));
	}
	ck_assert_uint_eq(next, first + n);
	return counted;
}

/* Wait until the object's counters stop moving (the page daemon is done). */
static void settle(uint64_t id)
{
	long long last = -1;

	for (int i = 0; i < 100; i++) {
		long long now = obj_key(id, "resident_bytes") * 3 + obj_key(id, "swapouts");

		if (now == last)
			return;
		last = now;
		usleep(100000);
	}
}

static const char *const stat_keys[] = {
	"resident_bytes", "swapped_bytes", "dirty_bytes", "bad_bytes", "budget_bytes",
	"swap_slots_total", "swap_slots_used", "swap_slots_bad", "objects", "clients",
	"meta_bytes", NULL,
};
static const char *const event_keys[] = {
	"faults", "faults_zero_fill", "faults_throttled", "faults_minor", "faults_major",
	"faults_wait", "faults_first_touch", "faults_wp", "swapins", "swapouts", "evictions",
	"read_ops", "read_bytes", "write_ops", "write_bytes", "clusters_written",
	"cluster_avg_bytes", "readahead_pages", "readahead_hits", "readahead_misses", "budget_overruns", "swap_full", "io_errors",
	"clean_mismatches", NULL,
};
static const char *const obj_keys[] = {
	"size_bytes", "resident_bytes", "swapped_bytes", "dirty_bytes", "bad_bytes",
	"budget_bytes", "faults", "swapins", "swapouts", NULL,
};

static unsigned files_read;

static int read_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	char *t;

	if (flag != FTW_F)
		return 0;
	t = slurp(path, NULL);
	ck_assert_msg(t != NULL, "%s: %s", path, strerror(errno));
	free(t);
	files_read++;
	return 0;
}

static int write_file(const char *rel, const char *buf, size_t len);

/* --- tests ---------------------------------------------------------------- */

START_TEST(test_layout)
{
	struct workload w;
	char path[256], *t, *map;
	size_t pages = 2048;
	long long res, swp, size;
	struct stat st;

	ck_assert_int_eq(td_start(&d, "64M", NULL), 0);
	workload_start(&w, 0, pages, 2 << 20);
	settle(w.id);

	/* every file reads whole, the way find -exec cat would */
	files_read = 0;
	ck_assert_int_eq(nftw(d.mnt, read_one, 16, FTW_PHYS), 0);
	ck_assert_uint_ge(files_read, 20);
	{
		char cmd[512];

		snprintf(cmd, sizeof(cmd), "ls -lR %s >/dev/null && grep -rq resident_bytes %s && "
			 "find %s -type f -exec cat {} + >/dev/null", d.mnt, d.mnt, d.mnt);
		ck_assert_int_eq(system(cmd), 0);
	}

	t = slurp(mnt_file(path, sizeof(path), "stat"), NULL);
	check_flat(t, stat_keys);
	ck_assert_ptr_nonnull(strstr(t, "\ndirty_tracking "));
	ck_assert_ptr_nonnull(strstr(t, "\nio_engine "));
	ck_assert_int_eq(key_of(t, "clients"), 1);
	ck_assert_int_eq(key_of(t, "objects"), 1);
	free(t);
	t = slurp(mnt_file(path, sizeof(path), "events"), NULL);
	check_flat(t, event_keys);
	ck_assert_int_gt(key_of(t, "swapouts"), 0);
	/* the kinds split the faults (only lost or unmapped pages are in neither) */
	ck_assert_int_gt(key_of(t, "faults_first_touch"), 0);
	ck_assert_int_le(key_of(t, "faults_minor") + key_of(t, "faults_major") +
			 key_of(t, "faults_wait") + key_of(t, "faults_first_touch"), key_of(t, "faults"));
	free(t);

	/* the object: its numbers agree with the workload and with the totals */
	t = slurp(mnt_file(path, sizeof(path), "objects/%" PRIu64 "/stat", w.id), NULL);
	check_flat(t, obj_keys);
	size = key_of(t, "size_bytes");
	res = key_of(t, "resident_bytes");
	swp = key_of(t, "swapped_bytes");
	ck_assert_int_eq(size, (long long)(pages * PAGE));
	ck_assert_int_le(res + swp, size);
	ck_assert_int_le(res, 2 << 20);
	/*
	 * every written page is somewhere, in memory or in swap; zero-fill
	 * windows may have mapped a few never-written pages beside them
	 */
	ck_assert_int_ge(res + swp, (long long)((pages * 3 / 4 - HOLE_PAGES) * PAGE));
	ck_assert_int_le(res + swp, (long long)((pages * 3 / 4 + 64) * PAGE));
	ck_assert_int_ge(key_of(t, "faults"), 1);
	ck_assert_int_gt(key_of(t, "swapouts"), 0);
	free(t);
	ck_assert_int_eq(file_key("stat", "resident_bytes"), res);
	ck_assert_int_eq(file_key("stat", "swapped_bytes"), swp);

	map = slurp(mnt_file(path, sizeof(path), "objects/%" PRIu64 "/pagemap", w.id), NULL);
	ck_assert_uint_eq(check_runs(map, 0, pages, "resident") * PAGE, (size_t)res);
	ck_assert_uint_eq(check_runs(map, 0, pages, "swapped") * PAGE, (size_t)swp);
	ck_assert_uint_eq(check_runs(map, 0, pages, "untouched"),
			  pages - (size_t)(res + swp) / PAGE);
	free(map);

	t = slurp(mnt_file(path, sizeof(path), "objects/%" PRIu64 "/type", w.id), NULL);
	ck_assert_str_eq(t, "aobj\n");
	free(t);
	t = slurp(mnt_file(path, sizeof(path), "objects/%" PRIu64 "/pid", w.id), NULL);
	ck_assert_int_eq(atoi(t), w.pid);
	free(t);
	t = slurp(mnt_file(path, sizeof(path), "objects/%" PRIu64 "/range", w.id), NULL);
	ck_assert_int_eq(key_of(t, "length"), size);
	ck_assert_int_gt(key_of(t, "address"), 0);
	free(t);
	t = slurp(mnt_file(path, sizeof(path), "objects/%" PRIu64 "/budget", w.id), NULL);
	ck_assert_str_eq(t, "2097152\n");
	free(t);
	/* an anonymous object has no backing file */
	ck_assert_int_ne(stat(mnt_file(path, sizeof(path), "objects/%" PRIu64 "/backing", w.id),
			      &st), 0);

	/* the client, and its object as a link into objects/ */
	t = slurp(mnt_file(path, sizeof(path), "clients/%d/stat", w.pid), NULL);
	ck_assert_int_eq(key_of(t, "objects"), 1);
	ck_assert_int_eq(key_of(t, "resident_bytes") + key_of(t, "swapped_bytes"), res + swp);
	/* its stack and glibc's heap at least; its object is not in it */
	ck_assert_int_gt(key_of(t, "outside_bytes"), 0);
	ck_assert_int_lt(key_of(t, "outside_bytes"), 1LL << 30);
	free(t);
	t = slurp(mnt_file(path, sizeof(path), "clients/%d/cmdline", w.pid), NULL);
	ck_assert_int_gt(strlen(t), 1);
	free(t);
	ck_assert_int_eq(stat(mnt_file(path, sizeof(path), "clients/%d/objects/%" PRIu64 "/type",
				       w.pid, w.id), &st), 0);
	ck_assert(S_ISREG(st.st_mode));

	/* the swap: its map agrees with its counts and with the object */
	t = slurp(mnt_file(path, sizeof(path), "swap/stat"), NULL);
	ck_assert_int_eq(key_of(t, "slots_used"), file_key("stat", "swap_slots_used"));
	ck_assert_int_ge(key_of(t, "slots_used") * (long long)PAGE, swp);
	ck_assert_int_eq(key_of(t, "size_bytes"), 1LL << 30);
	ck_assert_ptr_nonnull(strstr(t, "path /"));
	map = slurp(mnt_file(path, sizeof(path), "swap/map"), NULL);
	ck_assert_uint_eq(check_runs(map, 1, (size_t)key_of(t, "slots_total"), "used"),
			  (size_t)key_of(t, "slots_used"));
	free(map);
	free(t);

	/* real times, and the owner's */
	ck_assert_int_eq(stat(mnt_file(path, sizeof(path), "objects/%" PRIu64, w.id), &st), 0);
	ck_assert_int_gt(st.st_mtime, time(NULL) - 600);
	ck_assert_int_eq(stat(mnt_file(path, sizeof(path), "stat"), &st), 0);
	ck_assert_int_gt(st.st_mtime, time(NULL) - 600);

	workload_stop(&w);
	/* gone with its client (the daemon hears of the exit through a pidfd) */
	for (int i = 0; i < 100 && stat(mnt_file(path, sizeof(path), "clients/%d", w.pid), &st) == 0; i++)
		usleep(20000);
	ck_assert_int_ne(stat(mnt_file(path, sizeof(path), "objects/%" PRIu64, w.id), &st), 0);
	ck_assert_int_ne(stat(mnt_file(path, sizeof(path), "clients/%d", w.pid), &st), 0);
	ck_assert_int_eq(td_stop(&d), 0);
}
END_TEST

START_TEST(test_data)
{
	struct workload w;
	char path[256], cmd[600], *before, *after, *map_before, *map_after, *data;
	size_t pages = 2048, len = 0;
	uint64_t expect_hash;
	off_t hole, next;
	int fd;

	ck_assert_int_eq(td_start(&d, "64M", NULL), 0);
	/* idle laundering would write pages out while we compare */
	ck_assert_int_eq(write_file("launder_percent", "0\n", 2), 0);
	workload_start(&w, 0, pages, 2 << 20);
	settle(w.id);
	before = slurp(mnt_file(path, sizeof(path), "objects/%" PRIu64 "/stat", w.id), NULL);
	map_before = slurp(mnt_file(path, sizeof(path), "objects/%" PRIu64 "/pagemap", w.id), NULL);
	/* resident, swapped and never-touched pages, all three */
	ck_assert_ptr_nonnull(strstr(map_before, "resident"));
	ck_assert_ptr_nonnull(strstr(map_before, "swapped"));
	ck_assert_ptr_nonnull(strstr(map_before, "untouched"));

	data = slurp(mnt_file(path, sizeof(path), "objects/%" PRIu64 "/data", w.id), &len);
	ck_assert_ptr_nonnull(data);
	ck_assert_uint_eq(len, pages * PAGE);
	expect_hash = fnv(FNV_INIT, data, len);
	ck_assert_uint_eq(expect_hash, w.hash);
	for (size_t p = 0; p < pages; p++) {
		uint64_t pg[PAGE / 8];

		if (page_written(p, pages))
			pattern(pg, p, 1);
		else
			memset(pg, 0, sizeof(pg));
		ck_assert_msg(memcmp(data + p * PAGE, pg, PAGE) == 0, "page %zu differs", p);
	}
	free(data);

	/* the holes: SEEK_HOLE / SEEK_DATA see the never-touched ranges */
	fd = open(mnt_file(path, sizeof(path), "objects/%" PRIu64 "/data", w.id), O_RDONLY);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(lseek(fd, 0, SEEK_DATA), 0);
	hole = lseek(fd, 0, SEEK_HOLE);
	ck_assert_int_eq(hole, (off_t)(HOLE_FIRST(pages) * PAGE));
	next = lseek(fd, hole, SEEK_DATA);
	ck_assert_int_eq(next, (off_t)((HOLE_FIRST(pages) + HOLE_PAGES) * PAGE));
	/* the never-written tail (zero-fill may have mapped a window into it) */
	hole = lseek(fd, next, SEEK_HOLE);
	ck_assert_int_ge(hole, (off_t)(pages * 3 / 4 * PAGE));
	ck_assert_int_le(hole, (off_t)((pages * 3 / 4 + 64) * PAGE));
	ck_assert_int_eq(lseek(fd, hole, SEEK_DATA), -1);
	ck_assert_int_eq(errno, ENXIO);
	ck_assert_int_eq(lseek(fd, (off_t)(pages * PAGE), SEEK_HOLE), -1);
	close(fd);

	/* cp --sparse makes a checkpoint with the client's checksum and holes */
	snprintf(cmd, sizeof(cmd), "cp --sparse=always %s/objects/%" PRIu64 "/data %s/snap",
		 d.mnt, w.id, d.dir);
	ck_assert_int_eq(system(cmd), 0);
	snprintf(path, sizeof(path), "%s/snap", d.dir);
	data = slurp(path, &len);
	ck_assert_uint_eq(len, pages * PAGE);
	ck_assert_uint_eq(fnv(FNV_INIT, data, len), w.hash);
	free(data);
	{
		struct stat st;

		ck_assert_int_eq(stat(path, &st), 0);
		ck_assert_int_lt((long long)st.st_blocks * 512, (long long)(pages * PAGE));
	}

	/* and the client is as it was: residency, counters, page states */
	after = slurp(mnt_file(path, sizeof(path), "objects/%" PRIu64 "/stat", w.id), NULL);
	map_after = slurp(mnt_file(path, sizeof(path), "objects/%" PRIu64 "/pagemap", w.id), NULL);
	ck_assert_str_eq(after, before);
	ck_assert_str_eq(map_after, map_before);
	free(before);
	free(after);
	free(map_before);
	free(map_after);
	workload_stop(&w);
	ck_assert_int_eq(td_stop(&d), 0);
}
END_TEST

/*
 * A file object: its type, backing path, and data that reads back the
 * file's bytes whether its pages are in memory or only in the file.
 */
START_TEST(test_file_object)
{
	char file[160], path[256], *t, *data;
	size_t pages = 512, len;
	int fd, rep[2], cmd[2];
	uint64_t id;
	pid_t c;

	ck_assert_int_eq(td_start(&d, "64M", NULL), 0);
	snprintf(file, sizeof(file), "%s/file", d.dir);
	fd = open(file, O_RDWR | O_CREAT | O_TRUNC, 0600);
	ck_assert_int_ge(fd, 0);
	for (size_t p = 0; p < pages; p++) {
		uint64_t pg[PAGE / 8];

		pattern(pg, p, 3);
		ck_assert_int_eq(pwrite(fd, pg, PAGE, (off_t)(p * PAGE)), (ssize_t)PAGE);
	}
	ck_assert_int_eq(pipe(rep), 0);
	ck_assert_int_eq(pipe(cmd), 0);
	c = fork();
	if (c == 0) {
		struct uvmpager *u;
		volatile uint8_t *m;
		uint8_t sum = 0;
		char op;

		if (uvmpager_connect(d.sock, 0, &u) < 0 ||
		    uvmpager_file_map(u, fd, pages * PAGE, 256 << 10, false, (void **)&m, &id) < 0)
			_exit(91);
		/* read every page: a few stay in memory, the rest go back to the file */
		for (size_t p = 0; p < pages; p++)
			sum += m[p * PAGE];
		(void)sum;
		put64(rep[1], id);
		if (read(cmd[0], &op, 1) != 1)
			_exit(92);
		uvmpager_file_unmap(u, (void *)m);
		uvmpager_disconnect(u);
		_exit(0);
	}
	id = get64(rep[0]);
	ck_assert_uint_ne(id, UINT64_MAX);
	settle(id);
	t = slurp(mnt_file(path, sizeof(path), "objects/%" PRIu64 "/type", id), NULL);
	ck_assert_str_eq(t, "vnode\n");
	free(t);
	t = slurp(mnt_file(path, sizeof(path), "objects/%" PRIu64 "/backing", id), NULL);
	ck_assert_msg(strncmp(t, file, strlen(file)) == 0 && t[strlen(file)] == '\n', "%s", t);
	free(t);
	ck_assert_int_le(obj_key(id, "resident_bytes"), 256 << 10);
	/* pages not in memory are in the file: data, not holes */
	t = slurp(mnt_file(path, sizeof(path), "objects/%" PRIu64 "/pagemap", id), NULL);
	ck_assert_ptr_nonnull(strstr(t, " file\n"));
	ck_assert_ptr_null(strstr(t, "untouched"));
	free(t);
	data = slurp(mnt_file(path, sizeof(path), "objects/%" PRIu64 "/data", id), &len);
	ck_assert_uint_eq(len, pages * PAGE);
	for (size_t p = 0; p < pages; p++) {
		uint64_t pg[PAGE / 8];

		pattern(pg, p, 3);
		ck_assert_msg(memcmp(data + p * PAGE, pg, PAGE) == 0, "page %zu differs", p);
	}
	free(data);
	ck_assert_int_eq(write(cmd[1], "q", 1), 1);
	waitpid(c, NULL, 0);
	close(fd);
	ck_assert_int_eq(td_stop(&d), 0);
}
END_TEST

/* As uid, in a child: 0 if every expectation held, else the step that failed. */
static int as_user(uid_t uid, uint64_t id, pid_t pid, bool owner)
{
	pid_t c = fork();
	int st;

	if (c == 0) {
		char path[256];
		int fd;

		if (setresgid(uid, uid, uid) || setresuid(uid, uid, uid))
			_exit(1);
		/* world-readable */
		if (access(mnt_file(path, sizeof(path), "stat"), R_OK) ||
		    access(mnt_file(path, sizeof(path), "events"), R_OK) ||
		    access(mnt_file(path, sizeof(path), "swap/map"), R_OK) ||
		    access(mnt_file(path, sizeof(path), "objects/%" PRIu64 "/stat", id), R_OK))
			_exit(2);
		fd = open(mnt_file(path, sizeof(path), "objects/%" PRIu64 "/pagemap", id), O_RDONLY);
		if ((fd >= 0) != owner || (!owner && errno != EACCES))
			_exit(3);
		if (fd >= 0)
			close(fd);
		fd = open(mnt_file(path, sizeof(path), "objects/%" PRIu64 "/data", id), O_RDONLY);
		if ((fd >= 0) != owner || (!owner && errno != EACCES))
			_exit(4);
		if (fd >= 0) {
			char b[PAGE];

			if (read(fd, b, sizeof(b)) != (ssize_t)sizeof(b))
				_exit(5);
			close(fd);
		}
		fd = open(mnt_file(path, sizeof(path), "objects/%" PRIu64 "/budget", id), O_WRONLY);
		if ((fd >= 0) != owner || (!owner && errno != EACCES))
			_exit(6);
		if (fd >= 0) {
			if (write(fd, "8388608\n", 8) != 8)
				_exit(7);
			close(fd);
		}
		fd = open(mnt_file(path, sizeof(path), "clients/%d/budget", pid), O_WRONLY);
		if ((fd >= 0) != owner || (!owner && errno != EACCES))
			_exit(8);
		if (fd >= 0)
			close(fd);
		/* nobody but root changes the daemon's own settings */
		fd = open(mnt_file(path, sizeof(path), "budget"), O_WRONLY);
		if (fd >= 0 || errno != EACCES)
			_exit(9);
		_exit(0);
	}
	waitpid(c, &st, 0);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 100;
}

START_TEST(test_permissions)
{
	struct workload mine, theirs;
	char path[256];
	struct stat st;

	ck_assert_int_eq(td_start(&d, "64M", NULL), 0);
	workload_start(&mine, 0, 256, 0);
	workload_start(&theirs, NOBODY, 256, 0);
	ck_assert_int_eq(stat(mnt_file(path, sizeof(path), "objects/%" PRIu64 "/data", theirs.id),
			      &st), 0);
	ck_assert_uint_eq(st.st_uid, NOBODY);
	/* a root-owned object: closed to others */
	ck_assert_int_eq(as_user(OTHER, mine.id, mine.pid, false), 0);
	/* a user's object: open to that user, closed to another */
	ck_assert_int_eq(as_user(NOBODY, theirs.id, theirs.pid, true), 0);
	ck_assert_int_eq(as_user(OTHER, theirs.id, theirs.pid, false), 0);
	/* the owner's write took effect */
	ck_assert_int_eq(obj_key(theirs.id, "budget_bytes"), 8 << 20);
	/* two objects, at rest: the totals are their sums */
	settle(mine.id);
	settle(theirs.id);
	ck_assert_int_eq(obj_key(mine.id, "resident_bytes") + obj_key(theirs.id, "resident_bytes"),
			 file_key("stat", "resident_bytes"));
	ck_assert_int_eq(obj_key(mine.id, "swapped_bytes") + obj_key(theirs.id, "swapped_bytes"),
			 file_key("stat", "swapped_bytes"));
	ck_assert_int_eq(file_key("stat", "objects"), 2);
	ck_assert_int_eq(file_key("stat", "clients"), 2);
	workload_stop(&mine);
	workload_stop(&theirs);
	ck_assert_int_eq(td_stop(&d), 0);
}
END_TEST

/* write() of exactly buf; returns 0 or -errno. */
static int write_file(const char *rel, const char *buf, size_t len)
{
	char path[256];
	int fd = open(mnt_file(path, sizeof(path), "%s", rel), O_WRONLY | O_TRUNC);
	ssize_t n;
	int e;

	if (fd < 0)
		return -errno;
	n = write(fd, buf, len);
	e = errno;
	close(fd);
	return n == (ssize_t)len ? 0 : n < 0 ? -e : -EIO;
}

static char *read_rel(const char *rel)
{
	char path[256];

	return slurp(mnt_file(path, sizeof(path), "%s", rel), NULL);
}

static void refuses_bad_input(const char *rel)
{
	static const char *const bad[] = {
		"\n", "abc\n", "-1\n", "+5\n", " 4096\n", "4096 \n", "40 96\n", "4096x\n",
		"0x1000\n", "99999999999999999999999\n", "18446744073709551616\n", "4096\n\n",
		"1e6\n",
	};
	char *before = read_rel(rel), *after;

	ck_assert_ptr_nonnull(before);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(write_file(rel, bad[i], strlen(bad[i])) == -EINVAL,
			      "%s accepted '%s'", rel, bad[i]);
	after = read_rel(rel);
	ck_assert_str_eq(after, before);
	free(before);
	free(after);
}

static void takes(const char *rel, const char *value)
{
	char *now;

	ck_assert_int_eq(write_file(rel, value, strlen(value)), 0);
	now = read_rel(rel);
	ck_assert_str_eq(now, value);
	free(now);
}

START_TEST(test_tunables)
{
	char rel[64], val[32];
	struct workload w;
	long long high;
	int i;

	ck_assert_int_eq(td_start(&d, "64M", NULL), 0);
	workload_start(&w, 0, 4096, 0);
	settle(w.id);
	/* all in memory (zero-fill-around may have mapped the hole's pages too) */
	ck_assert_int_ge(obj_key(w.id, "resident_bytes"), (long long)(4096 * 3 / 4 - HOLE_PAGES) * (long long)PAGE);
	ck_assert_int_eq(obj_key(w.id, "swapped_bytes"), 0);

	refuses_bad_input("budget");
	refuses_bad_input("watermark_high");
	refuses_bad_input("watermark_low");
	refuses_bad_input("launder_percent");
	refuses_bad_input("read_around_max");
	refuses_bad_input("client_budget_max");
	snprintf(rel, sizeof(rel), "objects/%" PRIu64 "/budget", w.id);
	refuses_bad_input(rel);
	snprintf(rel, sizeof(rel), "clients/%d/budget", w.pid);
	refuses_bad_input(rel);

	/* values each rule refuses */
	ck_assert_int_eq(write_file("launder_percent", "101\n", 4), -EINVAL);
	ck_assert_int_eq(write_file("read_around_max", "4097\n", 5), -EINVAL);
	ck_assert_int_eq(write_file("read_around_max", "0\n", 2), -EINVAL);
	ck_assert_int_eq(write_file("budget", "100\n", 4), -EINVAL);
	high = file_key("stat", "budget_bytes") + (long long)PAGE;
	snprintf(val, sizeof(val), "%lld\n", high);
	ck_assert_int_eq(write_file("watermark_high", val, strlen(val)), -EINVAL);
	ck_assert_int_eq(write_file("watermark_low", val, strlen(val)), -EINVAL);
	/* good ones, read back */
	takes("launder_percent", "30\n");
	takes("read_around_max", "32768\n");
	takes("client_budget_max", "8388608\n");
	snprintf(rel, sizeof(rel), "clients/%d/budget", w.pid);
	ck_assert_int_eq(write_file(rel, "16777216\n", 9), -EINVAL);   /* over the maximum */
	takes(rel, "4194304\n");
	takes("client_budget_max", "0\n");
	takes(rel, "0\n");
	takes("watermark_low", "33554432\n");
	takes("watermark_high", "50331648\n");
	ck_assert_int_eq(write_file("watermark_low", "50335744\n", 9), -EINVAL);   /* above high */

	/* a lowered budget makes the resident set shrink, at once */
	takes("budget", "4194304\n");
	for (i = 0; i < 100 && obj_key(w.id, "resident_bytes") > 4 << 20; i++)
		usleep(50000);
	ck_assert_int_le(obj_key(w.id, "resident_bytes"), 4 << 20);
	ck_assert_int_eq(file_key("stat", "budget_bytes"), 4 << 20);
	/* the budget put the watermarks back under it */
	{
		char *v = read_rel("watermark_high");

		ck_assert_int_le(strtoll(v, NULL, 10), 4 << 20);
		free(v);
	}
	/* an object budget, likewise */
	takes("budget", "67108864\n");
	snprintf(rel, sizeof(rel), "objects/%" PRIu64 "/budget", w.id);
	takes(rel, "1048576\n");
	for (i = 0; i < 100 && obj_key(w.id, "resident_bytes") > 1 << 20; i++)
		usleep(50000);
	ck_assert_int_le(obj_key(w.id, "resident_bytes"), 1 << 20);
	workload_stop(&w);
	ck_assert_int_eq(td_stop(&d), 0);
}
END_TEST

/* Readers while pages move: every snapshot whole and self-consistent. */
START_TEST(test_readers_while_paging)
{
	struct workload w;
	char path[256];
	size_t pages = 2048;
	unsigned rounds = 0;
	pid_t reader;
	int st;

	ck_assert_int_eq(td_start(&d, "64M", NULL), 0);
	workload_start(&w, 0, pages, 1 << 20);
	reader = fork();
	if (reader == 0) {
		uint64_t end = (uint64_t)time(NULL) + 2;

		while ((uint64_t)time(NULL) < end) {
			char *s = slurp(mnt_file(path, sizeof(path), "objects/%" PRIu64 "/stat", w.id), NULL);
			char *m = slurp(mnt_file(path, sizeof(path), "objects/%" PRIu64 "/pagemap", w.id), NULL);
			char *t = slurp(mnt_file(path, sizeof(path), "stat"), NULL);
			char *e = slurp(mnt_file(path, sizeof(path), "events"), NULL);

			if (!s || !m || !t || !e)
				_exit(1);
			check_flat(s, obj_keys);
			check_flat(t, stat_keys);
			check_flat(e, event_keys);
			if (key_of(s, "resident_bytes") + key_of(s, "swapped_bytes") >
			    key_of(s, "size_bytes"))
				_exit(2);
			/* every written page is somewhere; the map covers the object */
			if ((size_t)(key_of(s, "resident_bytes") + key_of(s, "swapped_bytes")) !=
			    (pages * 3 / 4 - HOLE_PAGES) * PAGE)
				_exit(3);
			check_runs(m, 0, pages, NULL);
			free(s);
			free(m);
			free(t);
			free(e);
			rounds++;
		}
		_exit(rounds > 10 ? 0 : 4);
	}
	workload_do(&w, 'c');
	workload_do(&w, 'c');
	waitpid(reader, &st, 0);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "reader: %d", st);
	ck_assert_int_gt(obj_key(w.id, "swapins"), 0);
	workload_stop(&w);
	ck_assert_int_eq(td_stop(&d), 0);
}
END_TEST

static void write_conf(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
}

/* A one-value file of the mount's top level, as a number. */
static long long file_key_rel(const char *name)
{
	char *v = read_rel(name);
	long long n = atoll(v);

	free(v);
	return n;
}

/* SIGHUP re-reads the file by the same rules: a bad one changes nothing. */
START_TEST(test_sighup)
{
	char conf[128];
	int i;

	snprintf(conf, sizeof(conf), "/var/tmp/uvmpagerd-test-conf-%d", getpid());
	write_conf(conf, "budget = 64M\n");
	ck_assert_int_eq(td_start(&d, "64M", "--config", conf, NULL), 0);
	write_conf(conf, "budget = 32M\nclient-budget-max = 16M\n");
	kill(d.pid, SIGHUP);
	for (i = 0; i < 100 && file_key("stat", "budget_bytes") != 32 << 20; i++)
		usleep(20000);
	ck_assert_int_eq(file_key("stat", "budget_bytes"), 32 << 20);
	{
		char *v = read_rel("client_budget_max");

		ck_assert_str_eq(v, "16777216\n");
		free(v);
	}
	write_conf(conf, "budget = 16Mx\n");
	kill(d.pid, SIGHUP);
	usleep(200000);
	write_conf(conf, "budget = 100\n");   /* parses, but is under a page */
	kill(d.pid, SIGHUP);
	usleep(200000);
	/* all or nothing: a refused value puts back the budget applied before it */
	write_conf(conf, "budget = 16M\nlaunder-percent = 20\nread-around-max = 4097\n");
	kill(d.pid, SIGHUP);
	usleep(300000);
	ck_assert_int_eq(file_key("stat", "budget_bytes"), 32 << 20);
	{
		char *v = read_rel("launder_percent");

		ck_assert_str_eq(v, "50\n");
		free(v);
	}
	write_conf(conf, "budget = 16M\nlaunder-percent = 20\nread-around-max = 64K\n");
	kill(d.pid, SIGHUP);
	for (i = 0; i < 100 && file_key("stat", "budget_bytes") != 16 << 20; i++)
		usleep(20000);
	{
		char *v = read_rel("read_around_max"), *l = read_rel("launder_percent");

		ck_assert_str_eq(v, "65536\n");
		ck_assert_str_eq(l, "20\n");
		free(v);
		free(l);
	}
	/* the watermarks: a high one above the budget is refused, good ones apply */
	write_conf(conf, "budget = 16M\nwatermark-high = 20M\n");
	kill(d.pid, SIGHUP);
	usleep(300000);
	ck_assert_int_lt(file_key_rel("watermark_high"), 16 << 20);
	write_conf(conf, "budget = 16M\nwatermark-high = 12M\nwatermark-low = 8M\n");
	kill(d.pid, SIGHUP);
	for (i = 0; i < 100 && file_key_rel("watermark_high") != 12 << 20; i++)
		usleep(20000);
	ck_assert_int_eq(file_key_rel("watermark_high"), 12 << 20);
	ck_assert_int_eq(file_key_rel("watermark_low"), 8 << 20);
	unlink(conf);
	ck_assert_int_eq(td_stop(&d), 0);
}
END_TEST

START_TEST(test_stale_mount)
{
	struct stat st;
	int status;

	ck_assert_int_eq(td_start(&d, "64M", NULL), 0);
	kill(d.pid, SIGKILL);
	waitpid(d.pid, &status, 0);
	ck_assert_int_ne(stat(d.mnt, &st), 0);
	ck_assert_int_eq(errno, ENOTCONN);
	/* the next daemon on the same mount point clears it and mounts its own */
	d.reuse_dir = true;
	ck_assert_int_eq(td_start(&d, "64M", NULL), 0);
	ck_assert_int_eq(file_key("stat", "clients"), 0);
	ck_assert_int_eq(td_stop(&d), 0);
	ck_assert_int_ne(lstat(d.mnt, &st), 0);   /* stopped: unmounted, dir removed */
}
END_TEST

/*
 * A reader still inside the mount (a file open, a shell's cwd) must not
 * keep the daemon from exiting: the lazy unmount leaves the connection up
 * while the mount is held, and the FUSE thread's read never ended (the
 * daemon hung after SIGTERM until the reader let go).
 */
START_TEST(test_stop_while_held)
{
	char path[256];
	int fd, status = 0;
	pid_t r = 0;

	ck_assert_int_eq(td_start(&d, "64M", NULL), 0);
	fd = open(mnt_file(path, sizeof(path), "stat"), O_RDONLY);
	ck_assert_int_ge(fd, 0);
	kill(d.pid, SIGTERM);
	for (int i = 0; i < 500 && r == 0; i++) {
		r = waitpid(d.pid, &status, WNOHANG);
		if (r == 0)
			usleep(10000);
	}
	if (r == 0) {
		kill(d.pid, SIGKILL);
		waitpid(d.pid, &status, 0);
	}
	close(fd);
	d.pid = 0;
	ck_assert_msg(r > 0, "the daemon did not exit within 5 s of SIGTERM with a file of its mount open");
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	ck_assert_int_eq(td_stop(&d), 0);
}
END_TEST

/* --- uvmpagerctl ------------------------------------------------------------ */

/* Run a shell command; its output (stdout and stderr) in *out, its exit status returned. */
static int run(char **out, const char *fmt, ...)
{
	char cmd[1024], buf[4096];
	size_t n = 0;
	va_list ap;
	FILE *p;
	int st;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	p = popen(cmd, "r");
	ck_assert_ptr_nonnull(p);
	n = fread(buf, 1, sizeof(buf) - 1, p);
	buf[n] = '\0';
	st = pclose(p);
	if (out)
		*out = strdup(buf);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static const char *ctl(void)
{
	const char *c = getenv("UVMPAGERCTL");

	ck_assert_msg(c != NULL, "UVMPAGERCTL not set");
	return c;
}

START_TEST(test_ctl)
{
	static const char *const cmds[] = { "status", "objects", "clients", "top", "set budget 1G" };
	struct workload w;
	char *out;

	/* no daemon: one clear message, exit status 3, whatever the command */
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		ck_assert_int_eq(run(&out, "%s -m /var/tmp/no-uvmpagerd-here %s 2>&1", ctl(), cmds[i]), 3);
		ck_assert_msg(strstr(out, "no uvmpagerd answers at /var/tmp/no-uvmpagerd-here"), "%s", out);
		free(out);
	}
	ck_assert_int_eq(run(&out, "%s -m /var/tmp/x frobnicate 2>&1", ctl()), 2);
	free(out);

	ck_assert_int_eq(td_start(&d, "64M", NULL), 0);
	workload_start(&w, 0, 1024, 1 << 20);
	settle(w.id);
	ck_assert_int_eq(run(&out, "%s -m %s -i 0.2 status", ctl(), d.mnt), 0);
	ck_assert_msg(strstr(out, ": 1 clients, 1 objects") && strstr(out, "budget     64.0 MiB") &&
		      strstr(out, "swap-ins/s"), "%s", out);
	free(out);
	ck_assert_int_eq(run(&out, "%s -m %s -i 0 --json status", ctl(), d.mnt), 0);
	ck_assert_msg(strncmp(out, "{\"stat\":{\"resident_bytes\":", 25) == 0 &&
		      strstr(out, "\"rates\":{\"faults_per_s\":") && strstr(out, "}}\n"), "%s", out);
	free(out);
	ck_assert_int_eq(run(&out, "%s -m %s objects", ctl(), d.mnt), 0);
	{
		char row[64];

		snprintf(row, sizeof(row), "%8" PRIu64 " %8d %6u aobj", w.id, w.pid, 0);
		ck_assert_msg(strstr(out, row), "%s", out);
	}
	free(out);
	ck_assert_int_eq(run(&out, "%s -m %s --json objects", ctl(), d.mnt), 0);
	{
		char key[64];

		snprintf(key, sizeof(key), "[{\"id\":%" PRIu64 ",\"pid\":%d,", w.id, w.pid);
		ck_assert_msg(strncmp(out, key, strlen(key)) == 0, "%s", out);
	}
	free(out);
	ck_assert_int_eq(run(&out, "%s -m %s clients", ctl(), d.mnt), 0);
	ck_assert_msg(strstr(out, "COMMAND") && strstr(out, "test_fs"), "%s", out);
	free(out);
	ck_assert_int_eq(run(&out, "%s -m %s --json clients", ctl(), d.mnt), 0);
	ck_assert_msg(strstr(out, "\"cmdline\":\"") && strstr(out, "\"objects\":1"), "%s", out);
	free(out);

	ck_assert_int_eq(run(NULL, "%s -m %s set budget 32M", ctl(), d.mnt), 0);
	ck_assert_int_eq(file_key("stat", "budget_bytes"), 32 << 20);
	ck_assert_int_eq(run(&out, "%s -m %s set objects/%" PRIu64 "/budget 512K", ctl(), d.mnt, w.id), 0);
	free(out);
	ck_assert_int_eq(obj_key(w.id, "budget_bytes"), 512 << 10);
	ck_assert_int_eq(run(&out, "%s -m %s set budget lots 2>&1", ctl(), d.mnt), 2);
	free(out);
	ck_assert_int_eq(run(&out, "%s -m %s set launder_percent 200 2>&1", ctl(), d.mnt), 1);
	ck_assert_msg(strstr(out, "refused"), "%s", out);
	free(out);
	ck_assert_int_eq(run(&out, "%s -m %s set nosuchkey 1 2>&1", ctl(), d.mnt), 2);
	free(out);
	ck_assert_int_eq(file_key("stat", "budget_bytes"), 32 << 20);
	workload_stop(&w);
	ck_assert_int_eq(td_stop(&d), 0);
}
END_TEST

/*
 * The tmux pane's screen once it shows both needles (b may be NULL), or
 * the last screen after 5 s; the caller frees it.
 */
static char *screen_with(const char *sock, const char *a, const char *b)
{
	char *out = NULL;

	for (int i = 0; i < 50; i++) {
		free(out);
		run(&out, "tmux -L %s capture-pane -p", sock);
		if (strstr(out, a) && (!b || strstr(out, b)))
			break;
		usleep(100000);
	}
	return out;
}

/* top under a real terminal: tmux runs it, its screen is captured and read. */
START_TEST(test_ctl_top)
{
	struct workload w;
	char *out, sock[64], row[64];

	if (run(NULL, "tmux -V >/dev/null 2>&1") != 0) {
		printf("test_ctl_top: no tmux, not run\n");
		return;
	}
	if (run(&out, "%s --version | grep -q 'top: not built'", ctl()) == 0) {
		printf("test_ctl_top: built without ncurses, not run\n");
		free(out);
		return;
	}
	free(out);
	snprintf(sock, sizeof(sock), "uvmpager-test-%d", getpid());
	ck_assert_int_eq(td_start(&d, "64M", NULL), 0);
	workload_start(&w, 0, 1024, 1 << 20);
	ck_assert_int_eq(run(NULL, "tmux -L %s new-session -d -x 160 -y 24 "
			     "'%s -m %s -i 0.3 top; echo EXIT=$?; sleep 60'", sock, ctl(), d.mnt), 0);
	snprintf(row, sizeof(row), "%8" PRIu64 " %8d aobj", w.id, w.pid);
	out = screen_with(sock, row, "SWAPIN/s");
	ck_assert_msg(strstr(out, "clients 1  objects 1") && strstr(out, "SWAPIN/s") &&
		      strstr(out, row), "screen:\n%s", out);
	free(out);
	/* the clients view, then quit */
	run(NULL, "tmux -L %s send-keys c", sock);
	snprintf(row, sizeof(row), "%8d %6u ", w.pid, 0);
	out = screen_with(sock, "COMMAND", row);
	ck_assert_msg(strstr(out, "COMMAND") && strstr(out, row) && strstr(out, "test_fs"),
		      "screen:\n%s", out);
	free(out);
	run(NULL, "tmux -L %s send-keys q", sock);
	out = screen_with(sock, "EXIT=", NULL);
	ck_assert_msg(strstr(out, "EXIT=0"), "top did not quit cleanly:\n%s", out);
	free(out);
	run(NULL, "tmux -L %s kill-server", sock);
	workload_stop(&w);
	ck_assert_int_eq(td_stop(&d), 0);
}
END_TEST

static Suite *fs_suite(void)
{
	Suite *s = suite_create("fs");
	TCase *tc = tcase_create("fs");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_layout);
	tcase_add_test(tc, test_data);
	tcase_add_test(tc, test_file_object);
	tcase_add_test(tc, test_permissions);
	tcase_add_test(tc, test_tunables);
	tcase_add_test(tc, test_readers_while_paging);
	tcase_add_test(tc, test_sighup);
	tcase_add_test(tc, test_stale_mount);
	tcase_add_test(tc, test_stop_while_held);
	tcase_add_test(tc, test_ctl);
	tcase_add_test(tc, test_ctl_top);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	require_daemon_env();

	if (access("/dev/fuse", R_OK | W_OK) != 0) {
		printf("SKIP: no /dev/fuse\n");
		return 77;
	}
	return check_run(fs_suite(), CK_NORMAL);
}
