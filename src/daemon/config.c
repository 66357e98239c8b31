#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "build-config.h"
#include "daemon/config.h"
#include "daemon/server.h"
#include "engine.h"

enum opt {
	OPT_SWAP_FILE = 256, OPT_SWAP_SIZE, OPT_SWAP_PREALLOCATE, OPT_BUDGET,
	OPT_CLIENT_BUDGET, OPT_CLIENT_BUDGET_MAX, OPT_MIN_SIZE, OPT_MOUNT, OPT_NO_FS,
	OPT_SOCKET, OPT_SOCKET_MODE, OPT_SOCKET_GROUP, OPT_CONFIG, OPT_FOREGROUND,
	OPT_LOG_LEVEL, OPT_IO, OPT_TRACKING, OPT_VERIFY_CLEAN, OPT_LAUNDER_PERCENT,
	OPT_READ_AROUND_MAX, OPT_WATERMARK_HIGH, OPT_WATERMARK_LOW, OPT_HELP, OPT_VERSION,
};

static const struct option options[] = {
	{ "swap-file", required_argument, NULL, OPT_SWAP_FILE },
	{ "swap-size", required_argument, NULL, OPT_SWAP_SIZE },
	{ "swap-preallocate", no_argument, NULL, OPT_SWAP_PREALLOCATE },
	{ "budget", required_argument, NULL, OPT_BUDGET },
	{ "client-budget", required_argument, NULL, OPT_CLIENT_BUDGET },
	{ "client-budget-max", required_argument, NULL, OPT_CLIENT_BUDGET_MAX },
	{ "min-size", required_argument, NULL, OPT_MIN_SIZE },
	{ "mount", required_argument, NULL, OPT_MOUNT },
	{ "no-fs", no_argument, NULL, OPT_NO_FS },
	{ "socket", required_argument, NULL, OPT_SOCKET },
	{ "socket-mode", required_argument, NULL, OPT_SOCKET_MODE },
	{ "socket-group", required_argument, NULL, OPT_SOCKET_GROUP },
	{ "config", required_argument, NULL, OPT_CONFIG },
	{ "foreground", no_argument, NULL, OPT_FOREGROUND },
	{ "log-level", required_argument, NULL, OPT_LOG_LEVEL },
	{ "io", required_argument, NULL, OPT_IO },
	{ "tracking", required_argument, NULL, OPT_TRACKING },
	{ "verify-clean", no_argument, NULL, OPT_VERIFY_CLEAN },
	{ "launder-percent", required_argument, NULL, OPT_LAUNDER_PERCENT },
	{ "read-around-max", required_argument, NULL, OPT_READ_AROUND_MAX },
	{ "watermark-high", required_argument, NULL, OPT_WATERMARK_HIGH },
	{ "watermark-low", required_argument, NULL, OPT_WATERMARK_LOW },
	{ "help", no_argument, NULL, OPT_HELP },
	{ "version", no_argument, NULL, OPT_VERSION },
	{ 0 },
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: uvmpagerd [options]\n"
		"  --swap-file PATH        swap file, created if missing (/var/lib/uvmpager/swap)\n"
		"  --swap-size SIZE        its size, K/M/G/T suffixes (8G; 0: the existing file's)\n"
		"  --swap-preallocate      allocate and write the file's blocks at creation\n"
		"  --budget SIZE           resident memory of all managed regions (half of RAM)\n"
		"  --client-budget SIZE    per-process budget for clients that ask for none (none)\n"
		"  --client-budget-max SIZE  largest per-process budget a client may ask (budget)\n"
		"  --min-size SIZE         smallest region the shim manages (1M)\n"
		"  --mount DIR             FUSE filesystem mount point (/run/uvmpager)\n"
		"  --no-fs                 no filesystem\n"
		"  --socket PATH           control socket (" "/run/uvmpagerd/control.sock)\n"
		"  --socket-mode MODE      its permissions, octal (0660; 0600 with no --socket-group)\n"
		"  --socket-group GROUP    group allowed to connect (uvmpager, if it exists)\n"
		"  --config FILE           config file (" UVMPAGERD_CONFIG_FILE ")\n"
		"  --foreground            do not detach\n"
		"  --log-level LEVEL       error, warning, info, debug (info)\n"
		"  --io ENGINE             auto, io_uring, threads (auto)\n"
		"  --tracking MODE         auto, wp-async, wp-sync, soft-dirty (auto)\n"
		"  --verify-clean          check every clean page against its copy before dropping it\n"
		"  --launder-percent N     launder while idle above N%% of a budget, 0 never (50)\n"
		"  --read-around-max SIZE  largest read-around window of a fault (256K)\n"
		"  --watermark-high SIZE   reclaim starts above this much resident (budget - 1/128)\n"
		"  --watermark-low SIZE    ... and stops at this much (budget - 1/64)\n"
		"  --help, --version\n");
}

void config_defaults(struct daemon_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->swap_size = 8ULL << 30;
	cfg->min_size = 1ULL << 20;
	cfg->socket_mode = 0;
	cfg->log_level = LOG_INFO;
	cfg->io = IOENG_AUTO;
	cfg->track = TRACK_AUTO;
	cfg->launder_percent = -1;
}

void config_free(struct daemon_config *cfg)
{
	free(cfg->swap_file);
	free(cfg->mount);
	free(cfg->socket);
	free(cfg->socket_group);
	free(cfg->config);
	memset(cfg, 0, sizeof(*cfg));
}

static int set_string(char **dst, const char *v)
{
	char *s = strdup(v);

	if (!s)
		return -ENOMEM;
	free(*dst);
	*dst = s;
	return 0;
}

/* One setting, from the command line or the file; -EINVAL names nothing. */
static int apply(struct daemon_config *cfg, int opt, const char *v)
{
	char *end;

	switch (opt) {
	case OPT_SWAP_FILE: return set_string(&cfg->swap_file, v);
	case OPT_SWAP_SIZE: return parse_size(v, &cfg->swap_size);
	case OPT_SWAP_PREALLOCATE: cfg->swap_preallocate = true; return 0;
	case OPT_BUDGET: return parse_size(v, &cfg->budget);
	case OPT_CLIENT_BUDGET: return parse_size(v, &cfg->client_budget);
	case OPT_CLIENT_BUDGET_MAX: return parse_size(v, &cfg->client_budget_max);
	case OPT_MIN_SIZE: return parse_size(v, &cfg->min_size);
	case OPT_MOUNT: return set_string(&cfg->mount, v);
	case OPT_NO_FS: cfg->no_fs = true; return 0;
	case OPT_SOCKET: return set_string(&cfg->socket, v);
	case OPT_SOCKET_MODE:
		cfg->socket_mode = (unsigned)strtoul(v, &end, 8);
		return *v && !*end && cfg->socket_mode <= 0777 ? 0 : -EINVAL;
	case OPT_SOCKET_GROUP: return set_string(&cfg->socket_group, v);
	case OPT_CONFIG: return set_string(&cfg->config, v);
	case OPT_FOREGROUND: cfg->foreground = true; return 0;
	case OPT_LOG_LEVEL: return log_level_parse(v, &cfg->log_level);
	case OPT_IO: return ioeng_kind_parse(v, &cfg->io);
	case OPT_TRACKING: return track_mode_parse(v, &cfg->track);
	case OPT_VERIFY_CLEAN: cfg->verify_clean = true; return 0;
	case OPT_LAUNDER_PERCENT: {
		unsigned long p;

		if (*v < '0' || *v > '9')
			return -EINVAL;
		p = strtoul(v, &end, 10);
		if (*end || p > 100)
			return -EINVAL;
		cfg->launder_percent = (int)p;
		return 0;
	}
	case OPT_READ_AROUND_MAX: return parse_size(v, &cfg->read_around_max);
	case OPT_WATERMARK_HIGH: return parse_size(v, &cfg->watermark_high);
	case OPT_WATERMARK_LOW: return parse_size(v, &cfg->watermark_low);
	default: return -EINVAL;
	}
}

static const struct option *find_option(const char *name)
{
	for (const struct option *o = options; o->name; o++)
		if (strcmp(o->name, name) == 0)
			return o;
	return NULL;
}

static char *trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r'))
		*--e = '\0';
	return s;
}

/* "key = value" lines with the long options' names; '#' comments. */
static int load_file(struct daemon_config *cfg, const char *path, bool must_exist)
{
	char line[1024];
	unsigned lineno = 0;
	FILE *f;
	int r = 0;

	f = fopen(path, "re");
	if (!f) {
		if (errno == ENOENT && !must_exist)
			return 0;
		fprintf(stderr, "uvmpagerd: %s: %s\n", path, strerror(errno));
		return -EINVAL;
	}
	while (fgets(line, sizeof(line), f)) {
		char *s = line, *eq, *key, *val;
		const struct option *o;

		lineno++;
		if ((eq = strchr(s, '#')))
			*eq = '\0';
		s = trim(s);
		if (!*s)
			continue;
		eq = strchr(s, '=');
		key = trim(s);
		val = "";
		if (eq) {
			*eq = '\0';
			key = trim(s);
			val = trim(eq + 1);
		}
		o = find_option(key);
		if (!o || o->val == OPT_CONFIG || o->val == OPT_HELP || o->val == OPT_VERSION ||
		    (o->has_arg == required_argument && !*val) ||
		    (o->has_arg == no_argument && *val && strcmp(val, "true") && strcmp(val, "yes"))) {
			fprintf(stderr, "uvmpagerd: %s:%u: bad setting '%s'\n", path, lineno, key);
			r = -EINVAL;
			break;
		}
		if (apply(cfg, o->val, val) < 0) {
			fprintf(stderr, "uvmpagerd: %s:%u: bad value for %s: '%s'\n", path, lineno,
				key, val);
			r = -EINVAL;
			break;
		}
	}
	fclose(f);
	return r;
}

int config_load(struct daemon_config *cfg, int argc, char **argv)
{
	const char *file = UVMPAGERD_CONFIG_FILE;
	bool explicit_file = false;
	int c, r;

	/* first pass: find --config, --help and --version */
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
		if (c == OPT_CONFIG) {
			file = optarg;
			explicit_file = true;
		} else if (c == OPT_HELP) {
			usage(stdout);
			return 1;
		} else if (c == OPT_VERSION) {
			printf("uvmpagerd %s\n", UVMPAGER_VERSION);
			return 1;
		}
	}
	r = load_file(cfg, file, explicit_file);
	if (r < 0)
		return r;
	r = set_string(&cfg->config, file);
	if (r < 0)
		return r;

	/* second pass: the command line wins */
	opterr = 1;
	optind = 1;
	while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
		if (c == '?' || c == ':') {
			usage(stderr);
			return -EINVAL;
		}
		if (c == OPT_CONFIG)
			continue;
		if (apply(cfg, c, optarg) < 0) {
			fprintf(stderr, "uvmpagerd: bad value for --%s: '%s'\n",
				options[c - OPT_SWAP_FILE].name, optarg ? optarg : "");
			return -EINVAL;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "uvmpagerd: unexpected argument '%s'\n", argv[optind]);
		return -EINVAL;
	}
	if (!cfg->swap_file && set_string(&cfg->swap_file, "/var/lib/uvmpager/swap") < 0)
		return -ENOMEM;
	if (!cfg->mount && set_string(&cfg->mount, "/run/uvmpager") < 0)
		return -ENOMEM;
	if (!cfg->socket && set_string(&cfg->socket, "/run/uvmpagerd/control.sock") < 0)
		return -ENOMEM;
	return 0;
}

int config_reload(const char *path, struct daemon_config *out)
{
	config_defaults(out);
	return load_file(out, path, true);
}

int config_apply_live(const struct daemon_config *cfg, struct engine *e, struct server *srv,
		      const char **what)
{
	struct engine_tunables old;
	int r = 0;

	engine_get_tunables(e, &old);
	*what = NULL;
	if (cfg->budget && (r = engine_set_tunable(e, ENGINE_TUNE_BUDGET, cfg->budget)) < 0)
		*what = "budget";
	if (!r && cfg->launder_percent >= 0 &&
	    (r = engine_set_tunable(e, ENGINE_TUNE_LAUNDER_PERCENT,
				    (uint64_t)cfg->launder_percent)) < 0)
		*what = "launder-percent";
	if (!r && cfg->read_around_max &&
	    (r = engine_set_tunable(e, ENGINE_TUNE_READ_AROUND_MAX, cfg->read_around_max)) < 0)
		*what = "read-around-max";
	/*
	 * After the budget, which resets them; low goes to 0 first so that a
	 * high below the old low is accepted, then to its own value
	 */
	if (!r && cfg->watermark_high) {
		struct engine_tunables cur;

		engine_get_tunables(e, &cur);
		engine_set_tunable(e, ENGINE_TUNE_LOW, 0);
		if ((r = engine_set_tunable(e, ENGINE_TUNE_HIGH, cfg->watermark_high)) < 0)
			*what = "watermark-high";
		else if (!cfg->watermark_low)
			/* the low mark keeps its distance below the high one */
			r = engine_set_tunable(e, ENGINE_TUNE_LOW,
					       cfg->watermark_high - MIN(cfg->watermark_high,
									 cur.high - cur.low));
	}
	if (!r && cfg->watermark_low &&
	    (r = engine_set_tunable(e, ENGINE_TUNE_LOW, cfg->watermark_low)) < 0)
		*what = "watermark-low";
	if (r < 0) {
		/* the budget first: setting it resets the marks put back after it */
		engine_set_tunable(e, ENGINE_TUNE_BUDGET, old.budget);
		engine_set_tunable(e, ENGINE_TUNE_LOW, 0);
		engine_set_tunable(e, ENGINE_TUNE_HIGH, old.high);
		engine_set_tunable(e, ENGINE_TUNE_LOW, old.low);
		engine_set_tunable(e, ENGINE_TUNE_LAUNDER_PERCENT, old.launder_percent);
		engine_set_tunable(e, ENGINE_TUNE_READ_AROUND_MAX, old.read_around_max);
		return r;
	}
	if (srv && cfg->client_budget_max)
		server_set_client_budget_max(srv, cfg->client_budget_max);
	return 0;
}
