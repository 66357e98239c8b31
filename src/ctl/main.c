/*
 * uvmpagerctl: what uvmpagerd is doing, for people at a terminal and for
 * scripts (--json), read from its filesystem (default /run/uvmpager).
 */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "build-config.h"
#include "ctl/ctl.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: uvmpagerctl [options] COMMAND\n"
		"commands:\n"
		"  status               budget, memory, swap and rates over --interval\n"
		"  objects              every managed object, one line each\n"
		"  clients              every client process, one line each\n"
		"  top                  live view of objects and clients, sorted by rate\n"
		"  set KEY VALUE        change a tunable (budget, watermark_high, watermark_low,\n"
		"                       launder_percent, read_around_max, client_budget_max,\n"
		"                       objects/ID/budget, clients/PID/budget); sizes take K/M/G/T\n"
		"options:\n"
		"  -m, --mount DIR      the daemon's filesystem (/run/uvmpager)\n"
		"  -j, --json           JSON output (status, objects, clients)\n"
		"  -i, --interval SECS  rate interval and top refresh (1)\n"
		"  -n, --iterations N   top: quit after N refreshes\n"
		"  -h, --help, -V, --version\n"
		"exit status: 0 done, 1 failed, 2 bad usage, 3 no daemon at the mount\n");
}

static int bad_usage(void)
{
	fprintf(stderr, "Try 'uvmpagerctl --help' for more information.\n");
	return EXIT_USAGE;
}

/* Options, then one command; its exit status is the program's (ctl.h). */
int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "mount", required_argument, NULL, 'm' },
		{ "json", no_argument, NULL, 'j' },
		{ "interval", required_argument, NULL, 'i' },
		{ "iterations", required_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 },
	};
	struct ctl_opts o = { .mnt = "/run/uvmpager", .interval = 1.0 };
	const char *cmd;
	char *end;
	int c;

	while ((c = getopt_long(argc, argv, "m:ji:n:hV", opts, NULL)) != -1) {
		switch (c) {
		case 'm':
			o.mnt = optarg;
			break;
		case 'j':
			o.json = true;
			break;
		case 'i':
			o.interval = strtod(optarg, &end);
			if (*end || o.interval < 0 || o.interval > 3600) {
				fprintf(stderr, "uvmpagerctl: bad interval '%s'\n", optarg);
				return bad_usage();
			}
			break;
		case 'n':
			o.iterations = (int)strtol(optarg, &end, 10);
			if (*end || o.iterations < 0) {
				fprintf(stderr, "uvmpagerctl: bad iteration count '%s'\n", optarg);
				return bad_usage();
			}
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
#ifdef HAVE_NCURSES
			printf("uvmpagerctl %s (top: ncurses)\n", UVMPAGER_VERSION);
#else
			printf("uvmpagerctl %s (top: not built)\n", UVMPAGER_VERSION);
#endif
			return 0;
		default:
			return bad_usage();
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "uvmpagerctl: no command\n");
		return bad_usage();
	}
	cmd = argv[optind++];
	if (strcmp(cmd, "set") == 0) {
		if (argc - optind != 2) {
			fprintf(stderr, "uvmpagerctl: usage: set KEY VALUE\n");
			return bad_usage();
		}
		return cmd_set(&o, argv[optind], argv[optind + 1]);
	}
	if (optind != argc) {
		fprintf(stderr, "uvmpagerctl: %s takes no arguments\n", cmd);
		return bad_usage();
	}
	if (strcmp(cmd, "status") == 0)
		return cmd_status(&o);
	if (strcmp(cmd, "objects") == 0)
		return cmd_objects(&o);
	if (strcmp(cmd, "clients") == 0)
		return cmd_clients(&o);
	if (strcmp(cmd, "top") == 0)
		return cmd_top(&o);
	fprintf(stderr, "uvmpagerctl: unknown command '%s'\n", cmd);
	return bad_usage();
}
