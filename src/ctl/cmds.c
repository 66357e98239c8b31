/*
 * The one-shot commands: status, objects, clients, set. Each checks that
 * a daemon answers first, so "no daemon" is one clear message and one
 * exit status (EXIT_NODAEMON) whatever the command.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"
#include "ctl/ctl.h"

double rate(const struct kv *a, const struct kv *b, const char *key, double secs)
{
	uint64_t x = kv_u64(a, key), y = kv_u64(b, key);

	return secs > 0 && y >= x ? (double)(y - x) / secs : 0;
}

/* The rate interval; a signal cutting it short only shortens the window measured. */
static void sleep_secs(double s)
{
	struct timespec ts = { (time_t)s, (long)((s - (double)(time_t)s) * 1e9) };

	nanosleep(&ts, NULL);
}

static const char *const rate_keys[] = { "faults", "swapins", "swapouts", "read_bytes",
					 "write_bytes" };

/* Two snapshots --interval apart: gauges from the second, rates from the difference. */
int cmd_status(const struct ctl_opts *o)
{
	struct ctl_snap a, b;
	char b1[32], b2[32], b3[32], b4[32];
	uint64_t hi = 0, lo = 0, slot_total, slot_used;
	double secs = 0;
	int r = daemon_check(o->mnt);

	if (r)
		return r;
	if (snap_take(o->mnt, false, &a) < 0)
		return daemon_check(o->mnt);
	if (o->interval > 0)
		sleep_secs(o->interval);
	if (snap_take(o->mnt, false, &b) < 0)
		return daemon_check(o->mnt);
	secs = (double)(b.t_ns - a.t_ns) / 1e9;
	if (line_read(o->mnt, "watermark_high", b1, sizeof(b1)) == 0)
		hi = strtoull(b1, NULL, 10);
	if (line_read(o->mnt, "watermark_low", b1, sizeof(b1)) == 0)
		lo = strtoull(b1, NULL, 10);
	slot_total = kv_u64(&b.stat, "swap_slots_total");
	slot_used = kv_u64(&b.stat, "swap_slots_used");
	if (o->json) {
		printf("{\"stat\":");
		json_kv(stdout, &b.stat);
		printf(",\"events\":");
		json_kv(stdout, &b.events);
		printf(",\"watermark_high\":%llu,\"watermark_low\":%llu,\"interval_s\":%.3f,\"rates\":{",
		       (unsigned long long)hi, (unsigned long long)lo, secs);
		for (size_t i = 0; i < sizeof(rate_keys) / sizeof(rate_keys[0]); i++)
			printf("%s\"%s_per_s\":%.1f", i ? "," : "", rate_keys[i],
			       rate(&a.events, &b.events, rate_keys[i], secs));
		printf("}}\n");
		return 0;
	}
	printf("uvmpagerd at %s: %llu clients, %llu objects; io %s, dirty tracking %s\n",
	       o->mnt, (unsigned long long)kv_u64(&b.stat, "clients"),
	       (unsigned long long)kv_u64(&b.stat, "objects"),
	       kv_str(&b.stat, "io_engine") ? kv_str(&b.stat, "io_engine") : "?",
	       kv_str(&b.stat, "dirty_tracking") ? kv_str(&b.stat, "dirty_tracking") : "?");
	printf("  budget     %-12s (reclaim from %s down to %s)\n",
	       kv_u64(&b.stat, "budget_bytes") ? fmt_bytes(kv_u64(&b.stat, "budget_bytes"), b1, sizeof(b1)) : "none",
	       fmt_bytes(hi, b2, sizeof(b2)), fmt_bytes(lo, b3, sizeof(b3)));
	printf("  resident   %-12s (dirty %s)\n", fmt_bytes(kv_u64(&b.stat, "resident_bytes"), b1, sizeof(b1)),
	       fmt_bytes(kv_u64(&b.stat, "dirty_bytes"), b2, sizeof(b2)));
	printf("  swapped    %-12s (bad %s)\n", fmt_bytes(kv_u64(&b.stat, "swapped_bytes"), b1, sizeof(b1)),
	       fmt_bytes(kv_u64(&b.stat, "bad_bytes"), b2, sizeof(b2)));
	printf("  swap used  %-12s of %s (%.1f%%), %llu bad slots\n",
	       fmt_bytes(slot_used * 4096, b1, sizeof(b1)), fmt_bytes(slot_total * 4096, b4, sizeof(b4)),
	       slot_total ? 100.0 * (double)slot_used / (double)slot_total : 0.0,
	       (unsigned long long)kv_u64(&b.stat, "swap_slots_bad"));
	printf("  rates      %.0f faults/s, %.0f swap-ins/s, %.0f swap-outs/s, read %s/s, written %s/s (last %.1f s)\n",
	       rate(&a.events, &b.events, "faults", secs), rate(&a.events, &b.events, "swapins", secs),
	       rate(&a.events, &b.events, "swapouts", secs),
	       fmt_bytes((uint64_t)rate(&a.events, &b.events, "read_bytes", secs), b1, sizeof(b1)),
	       fmt_bytes((uint64_t)rate(&a.events, &b.events, "write_bytes", secs), b2, sizeof(b2)),
	       secs);
	return 0;
}

static const char *const obj_cols[] = { "size_bytes", "resident_bytes", "swapped_bytes",
					"dirty_bytes", "faults", "swapins", "swapouts" };

/* One snapshot of every object; a vanished object is left out, not an error. */
int cmd_objects(const struct ctl_opts *o)
{
	struct ctl_snap s;
	char b[4][32];
	int r = daemon_check(o->mnt);

	if (r)
		return r;
	if (snap_take(o->mnt, true, &s) < 0)
		return daemon_check(o->mnt);
	if (o->json) {
		printf("[");
		for (size_t i = 0; i < s.nobjs; i++) {
			const struct ctl_obj *ob = &s.objs[i];

			printf("%s{\"id\":%llu,\"pid\":%d,\"uid\":%u,\"type\":", i ? "," : "",
			       (unsigned long long)ob->id, (int)ob->pid, ob->uid);
			json_str(stdout, ob->type);
			printf(",\"stat\":");
			json_kv(stdout, &ob->stat);
			printf("}");
		}
		printf("]\n");
		snap_free(&s);
		return 0;
	}
	printf("%8s %8s %6s %-6s %11s %11s %11s %11s %10s %10s %10s\n", "ID", "PID", "UID",
	       "TYPE", "SIZE", "RESIDENT", "SWAPPED", "DIRTY", "FAULTS", "SWAPINS", "SWAPOUTS");
	for (size_t i = 0; i < s.nobjs; i++) {
		const struct ctl_obj *ob = &s.objs[i];

		printf("%8llu %8d %6u %-6s %11s %11s %11s %11s %10llu %10llu %10llu\n",
		       (unsigned long long)ob->id, (int)ob->pid, ob->uid, ob->type,
		       fmt_bytes(kv_u64(&ob->stat, obj_cols[0]), b[0], 32),
		       fmt_bytes(kv_u64(&ob->stat, obj_cols[1]), b[1], 32),
		       fmt_bytes(kv_u64(&ob->stat, obj_cols[2]), b[2], 32),
		       fmt_bytes(kv_u64(&ob->stat, obj_cols[3]), b[3], 32),
		       (unsigned long long)kv_u64(&ob->stat, "faults"),
		       (unsigned long long)kv_u64(&ob->stat, "swapins"),
		       (unsigned long long)kv_u64(&ob->stat, "swapouts"));
	}
	snap_free(&s);
	return 0;
}

/* As cmd_objects, for clients. */
int cmd_clients(const struct ctl_opts *o)
{
	struct ctl_snap s;
	char b[5][32];
	int r = daemon_check(o->mnt);

	if (r)
		return r;
	if (snap_take(o->mnt, true, &s) < 0)
		return daemon_check(o->mnt);
	if (o->json) {
		printf("[");
		for (size_t i = 0; i < s.nclients; i++) {
			const struct ctl_client *c = &s.clients[i];

			printf("%s{\"pid\":%d,\"uid\":%u,\"cmdline\":", i ? "," : "", (int)c->pid,
			       c->uid);
			json_str(stdout, c->cmdline);
			printf(",\"stat\":");
			json_kv(stdout, &c->stat);
			printf("}");
		}
		printf("]\n");
		snap_free(&s);
		return 0;
	}
	/* OUTSIDE: resident memory outside every object, which the budget does not cover */
	printf("%8s %6s %7s %11s %11s %11s %11s %11s %10s %10s %10s  %s\n", "PID", "UID", "OBJECTS",
	       "SIZE", "RESIDENT", "SWAPPED", "BUDGET", "OUTSIDE", "FAULTS", "SWAPINS", "SWAPOUTS",
	       "COMMAND");
	for (size_t i = 0; i < s.nclients; i++) {
		const struct ctl_client *c = &s.clients[i];
		uint64_t budget = kv_u64(&c->stat, "budget_bytes");

		printf("%8d %6u %7llu %11s %11s %11s %11s %11s %10llu %10llu %10llu  %s\n", (int)c->pid,
		       c->uid, (unsigned long long)kv_u64(&c->stat, "objects"),
		       fmt_bytes(kv_u64(&c->stat, "size_bytes"), b[0], 32),
		       fmt_bytes(kv_u64(&c->stat, "resident_bytes"), b[1], 32),
		       fmt_bytes(kv_u64(&c->stat, "swapped_bytes"), b[2], 32),
		       budget ? fmt_bytes(budget, b[3], 32) : "none",
		       fmt_bytes(kv_u64(&c->stat, "outside_bytes"), b[4], 32),
		       (unsigned long long)kv_u64(&c->stat, "faults"),
		       (unsigned long long)kv_u64(&c->stat, "swapins"),
		       (unsigned long long)kv_u64(&c->stat, "swapouts"), c->cmdline);
	}
	snap_free(&s);
	return 0;
}

/* The keys `set` knows, and the file each one writes. */
static const struct {
	const char *key;
	const char *file;
	bool size;                /* takes K/M/G suffixes */
} settable[] = {
	{ "budget", "budget", true },
	{ "watermark_high", "watermark_high", true },
	{ "watermark_low", "watermark_low", true },
	{ "launder_percent", "launder_percent", false },
	{ "read_around_max", "read_around_max", true },
	{ "client_budget_max", "client_budget_max", true },
};

/*
 * KEY is a top-level tunable, objects/ID/budget or clients/PID/budget;
 * sizes may carry K/M/G/T suffixes (the file itself takes only bytes).
 */
int cmd_set(const struct ctl_opts *o, const char *key, const char *value)
{
	char path[512], num[32];
	bool size = true, known = false;
	const char *file = key;
	uint64_t v;
	ssize_t n;
	int fd, r = daemon_check(o->mnt);
	unsigned long long id;
	char tail[16];

	if (r)
		return r;
	for (size_t i = 0; i < sizeof(settable) / sizeof(settable[0]); i++) {
		if (strcmp(settable[i].key, key) == 0) {
			file = settable[i].file;
			size = settable[i].size;
			known = true;
		}
	}
	if (!known && (sscanf(key, "objects/%llu/%15s", &id, tail) == 2 ||
		       sscanf(key, "clients/%llu/%15s", &id, tail) == 2) && strcmp(tail, "budget") == 0)
		known = true;
	if (!known) {
		fprintf(stderr, "uvmpagerctl: set: unknown key '%s' (see uvmpagerctl(1))\n", key);
		return EXIT_USAGE;
	}
	if (size ? parse_size(value, &v) < 0 : (strspn(value, "0123456789") != strlen(value) || !*value)) {
		fprintf(stderr, "uvmpagerctl: set %s: '%s' is not a %s\n", key, value,
			size ? "size" : "number");
		return EXIT_USAGE;
	}
	if (!size)
		v = strtoull(value, NULL, 10);
	snprintf(num, sizeof(num), "%llu\n", (unsigned long long)v);
	snprintf(path, sizeof(path), "%s/%s", o->mnt, file);
	fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "uvmpagerctl: set %s: %s: %s\n", key, path, strerror(errno));
		return EXIT_ERR;
	}
	n = write(fd, num, strlen(num));
	r = errno;
	close(fd);
	if (n != (ssize_t)strlen(num)) {
		fprintf(stderr, "uvmpagerctl: set %s %s: %s\n", key, value,
			n < 0 && r == EINVAL ? "refused by the daemon (out of range)" : strerror(r));
		return EXIT_ERR;
	}
	return 0;
}
