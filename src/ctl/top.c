/*
 * uvmpagerctl top: a live view of objects or clients, sorted by a rate
 * (swap-ins/s, swap-outs/s or faults/s) taken between two refreshes, the
 * way top and systemd-cgtop do. Keys: o/c objects or clients, i/O/f sort
 * by swap-ins, swap-outs, faults, q quits.
 */
#include <stdlib.h>
#include <string.h>

#include "build-config.h"
#include "ctl/ctl.h"

#ifdef HAVE_NCURSES
#include <curses.h>
#include <signal.h>

static volatile sig_atomic_t stop;

/* Ctrl-C and SIGTERM end the loop, so endwin gives the terminal back. */
static void on_signal(int sig)
{
	stop = 1;
}

enum sort_key { SORT_IN, SORT_OUT, SORT_FAULTS };

struct row {
	uint64_t key;             /* object id or client pid */
	char label[160];
	double in, out, faults;
	uint64_t resident, swapped;
};

/* The same object or client in the previous refresh, for its rates. */
static const struct kv *prev_stat(const struct ctl_snap *p, bool clients, uint64_t key)
{
	if (!p)
		return NULL;
	if (clients) {
		for (size_t i = 0; i < p->nclients; i++)
			if ((uint64_t)p->clients[i].pid == key)
				return &p->clients[i].stat;
	} else {
		for (size_t i = 0; i < p->nobjs; i++)
			if (p->objs[i].id == key)
				return &p->objs[i].stat;
	}
	return NULL;
}

static enum sort_key sort_by;

/* Highest rate first; ties by id, so rows do not jump between refreshes. */
static int row_cmp(const void *a, const void *b)
{
	const struct row *x = a, *y = b;
	double u = sort_by == SORT_IN ? x->in : sort_by == SORT_OUT ? x->out : x->faults;
	double v = sort_by == SORT_IN ? y->in : sort_by == SORT_OUT ? y->out : y->faults;

	if (u != v)
		return u < v ? 1 : -1;
	return x->key < y->key ? -1 : x->key > y->key;
}

/* The rows of this refresh; a row new since the last one has no rates yet. */
static size_t make_rows(const struct ctl_snap *p, const struct ctl_snap *s, bool clients,
			struct row **out)
{
	size_t n = clients ? s->nclients : s->nobjs;
	double secs = p ? (double)(s->t_ns - p->t_ns) / 1e9 : 0;
	struct row *rows = calloc(n + 1, sizeof(*rows));

	for (size_t i = 0; rows && i < n; i++) {
		const struct kv *st = clients ? &s->clients[i].stat : &s->objs[i].stat;
		const struct kv *ps;
		struct row *r = &rows[i];

		if (clients) {
			r->key = (uint64_t)s->clients[i].pid;
			snprintf(r->label, sizeof(r->label), "%8d %6u %s", (int)s->clients[i].pid,
				 s->clients[i].uid, s->clients[i].cmdline);
		} else {
			r->key = s->objs[i].id;
			snprintf(r->label, sizeof(r->label), "%8llu %8d %-6s",
				 (unsigned long long)s->objs[i].id, (int)s->objs[i].pid,
				 s->objs[i].type);
		}
		ps = prev_stat(p, clients, r->key);
		if (ps) {
			r->in = rate(ps, st, "swapins", secs);
			r->out = rate(ps, st, "swapouts", secs);
			r->faults = rate(ps, st, "faults", secs);
		}
		r->resident = kv_u64(st, "resident_bytes");
		r->swapped = kv_u64(st, "swapped_bytes");
	}
	qsort(rows, rows ? n : 0, sizeof(*rows), row_cmp);
	*out = rows;
	return rows ? n : 0;
}

/* One screen: totals, rates, then as many rows as fit. */
static void draw(const struct ctl_opts *o, const struct ctl_snap *p, const struct ctl_snap *s,
		 bool clients)
{
	double secs = p ? (double)(s->t_ns - p->t_ns) / 1e9 : 0;
	char b1[32], b2[32], b3[32];
	struct row *rows;
	size_t n = make_rows(p, s, clients, &rows);
	int y = 0;

	erase();
	mvprintw(y++, 0, "uvmpagerd %s  clients %llu  objects %llu  (sorted by %s; o/c view, i/O/f sort, q quit)",
		 o->mnt, (unsigned long long)kv_u64(&s->stat, "clients"),
		 (unsigned long long)kv_u64(&s->stat, "objects"),
		 sort_by == SORT_IN ? "swap-ins/s" : sort_by == SORT_OUT ? "swap-outs/s" : "faults/s");
	mvprintw(y++, 0, "budget %s  resident %s  swapped %s",
		 fmt_bytes(kv_u64(&s->stat, "budget_bytes"), b1, sizeof(b1)),
		 fmt_bytes(kv_u64(&s->stat, "resident_bytes"), b2, sizeof(b2)),
		 fmt_bytes(kv_u64(&s->stat, "swapped_bytes"), b3, sizeof(b3)));
	mvprintw(y++, 0, "faults/s %.0f  swap-ins/s %.0f  swap-outs/s %.0f",
		 p ? rate(&p->events, &s->events, "faults", secs) : 0.0,
		 p ? rate(&p->events, &s->events, "swapins", secs) : 0.0,
		 p ? rate(&p->events, &s->events, "swapouts", secs) : 0.0);
	y++;
	attron(A_REVERSE);
	if (clients)
		mvprintw(y++, 0, "%10s %11s %11s %11s %11s  %8s %6s %s", "SWAPIN/s", "SWAPOUT/s",
			 "FAULTS/s", "RESIDENT", "SWAPPED", "PID", "UID", "COMMAND");
	else
		mvprintw(y++, 0, "%10s %11s %11s %11s %11s  %8s %8s %-6s", "SWAPIN/s", "SWAPOUT/s",
			 "FAULTS/s", "RESIDENT", "SWAPPED", "ID", "PID", "TYPE");
	attroff(A_REVERSE);
	for (size_t i = 0; i < n && y < LINES; i++, y++)
		mvprintw(y, 0, "%10.0f %11.0f %11.0f %11s %11s  %s", rows[i].in, rows[i].out,
			 rows[i].faults, fmt_bytes(rows[i].resident, b1, sizeof(b1)),
			 fmt_bytes(rows[i].swapped, b2, sizeof(b2)), rows[i].label);
	free(rows);
	refresh();
}

/* Until 'q' (or --iterations); the terminal is restored on every way out. */
int cmd_top(const struct ctl_opts *o)
{
	struct ctl_snap prev, cur;
	bool have_prev = false, clients = false;
	int r = daemon_check(o->mnt), ms, iter = 0;

	if (r)
		return r;
	if (o->json) {
		fprintf(stderr, "uvmpagerctl: top has no --json (use status, objects, clients)\n");
		return EXIT_USAGE;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	initscr();
	cbreak();
	noecho();
	keypad(stdscr, TRUE);
	curs_set(0);
	ms = (int)(o->interval * 1000);
	timeout(ms > 0 ? ms : 1000);
	for (;;) {
		int ch;

		if (snap_take(o->mnt, true, &cur) < 0) {
			r = EXIT_NODAEMON;
			break;
		}
		draw(o, have_prev ? &prev : NULL, &cur, clients);
		if (have_prev)
			snap_free(&prev);
		prev = cur;
		have_prev = true;
		if (o->iterations && ++iter >= o->iterations)
			break;
		ch = getch();
		if (ch == 'q' || stop)
			break;
		if (ch == 'c')
			clients = true;
		else if (ch == 'o')
			clients = false;
		else if (ch == 'i')
			sort_by = SORT_IN;
		else if (ch == 'O')
			sort_by = SORT_OUT;
		else if (ch == 'f')
			sort_by = SORT_FAULTS;
	}
	endwin();
	if (have_prev)
		snap_free(&prev);
	if (r == EXIT_NODAEMON)
		daemon_check(o->mnt);
	return r;
}

#else

int cmd_top(const struct ctl_opts *o)
{
	int r = daemon_check(o->mnt);

	if (r)
		return r;
	fprintf(stderr, "uvmpagerctl: top is not available: this build has no ncurses "
		"(configure with -Dncurses=enabled and libncurses-dev installed); "
		"status, objects and clients work without it\n");
	return EXIT_ERR;
}

#endif
