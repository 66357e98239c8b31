/*
 * uvmpager-run: run a program managed by uvmpagerd, the way eatmydata
 * or faketime run one under their libraries: the shim goes into
 * LD_PRELOAD (where the build installed it), the options into the
 * environment the shim reads, then the command replaces this process.
 *
 * Exit status, as env(1) and timeout(1) have it: the command's own;
 * 125 when uvmpager-run itself fails (bad option, no shim), 126 when the
 * command cannot be run, 127 when it is not found.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "build-config.h"
#include "common/util.h"

enum { EXIT_RUN_FAILED = 125, EXIT_CANNOT_RUN = 126, EXIT_NOT_FOUND = 127 };

static void usage(void)
{
	printf("usage: uvmpager-run [options] [--] COMMAND [ARG]...\n"
	       "Runs COMMAND with its memory managed by uvmpagerd (through the shim,\n"
	       "%s).\n"
	       "  -b, --budget SIZE    the program's resident budget, K/M/G/T (the daemon's default)\n"
	       "  -s, --socket PATH    the daemon's control socket (%s)\n"
	       "  -m, --min-size SIZE  smallest allocation the shim manages (the daemon's)\n"
	       "  -d, --debug          the shim says what it does, on stderr\n"
	       "  -h, --help, -V, --version\n"
	       "Without a daemon the program runs unmanaged (one warning).\n"
	       "exit status: the command's; 125 uvmpager-run failed or bad usage,\n"
	       "126 the command cannot run, 127 it was not found\n",
	       UVMPAGER_PRELOAD_PATH, "/run/uvmpagerd/control.sock");
}

static int bad_usage(void)
{
	fprintf(stderr, "Try 'uvmpager-run --help' for more information.\n");
	return EXIT_RUN_FAILED;
}

/* The shim first, once: a program run under uvmpager-run twice loads it once. */
static int add_preload(const char *shim)
{
	const char *old = getenv("LD_PRELOAD");
	char *v;
	int r;

	if (old && *old) {
		if (strstr(old, shim))
			return 0;
		if (asprintf(&v, "%s %s", shim, old) < 0)
			return -ENOMEM;
	} else if (!(v = strdup(shim))) {
		return -ENOMEM;
	}
	r = setenv("LD_PRELOAD", v, 1);
	free(v);
	return r < 0 ? -errno : 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "budget", required_argument, NULL, 'b' },
		{ "socket", required_argument, NULL, 's' },
		{ "min-size", required_argument, NULL, 'm' },
		{ "debug", no_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 },
	};
	const char *shim = getenv("UVMPAGER_PRELOAD");
	uint64_t size;
	int c;

	/* '+': the command's own options are not ours */
	while ((c = getopt_long(argc, argv, "+b:s:m:dhV", opts, NULL)) != -1) {
		switch (c) {
		case 'b':
		case 'm':
			if (parse_size(optarg, &size) < 0) {
				fprintf(stderr, "uvmpager-run: '%s' is not a size\n", optarg);
				return bad_usage();
			}
			setenv(c == 'b' ? "UVMPAGER_BUDGET" : "UVMPAGER_MIN_SIZE", optarg, 1);
			break;
		case 's':
			if (optarg[0] != '/') {
				fprintf(stderr, "uvmpager-run: socket '%s' is not an absolute path\n",
					optarg);
				return bad_usage();
			}
			setenv("UVMPAGER_SOCKET", optarg, 1);
			break;
		case 'd':
			setenv("UVMPAGER_DEBUG", "1", 1);
			break;
		case 'h':
			usage();
			return 0;
		case 'V':
			printf("uvmpager-run %s\n", UVMPAGER_VERSION);
			return 0;
		default:
			return bad_usage();
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "uvmpager-run: no command\n");
		return bad_usage();
	}
	/* $UVMPAGER_PRELOAD: a shim elsewhere (a build tree, the tests) */
	if (!shim || !*shim)
		shim = UVMPAGER_PRELOAD_PATH;
	if (access(shim, R_OK) < 0) {
		fprintf(stderr, "uvmpager-run: the shim %s: %s\n", shim, strerror(errno));
		return EXIT_RUN_FAILED;
	}
	if (add_preload(shim) < 0) {
		fprintf(stderr, "uvmpager-run: LD_PRELOAD: %s\n", strerror(errno));
		return EXIT_RUN_FAILED;
	}
	execvp(argv[optind], argv + optind);
	fprintf(stderr, "uvmpager-run: %s: %s\n", argv[optind], strerror(errno));
	return errno == ENOENT ? EXIT_NOT_FOUND : EXIT_CANNOT_RUN;
}
