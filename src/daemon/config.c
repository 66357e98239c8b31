/*
 * The settings table: each row is a long option and the config key of the
 * same name, with its kind (which says how a value parses and why one is
 * refused), its place in struct daemon_config and its line of --help. The
 * file is read with inih through a line-counting reader, so that every
 * refusal names its file and line.
 */
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <ini.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/util.h"
#include "build-config.h"
#include "daemon/config.h"
#include "daemon/server.h"
#include "engine.h"
#include "swap/swapdev.h"

enum kind {
	K_PATH, K_SWAPPATH, K_DEVICE, K_REPLICAS, K_NAME, K_SIZE, K_BUDGET, K_BOOL, K_MODE, K_PERCENT, K_SECONDS,
	K_LEVEL, K_IO, K_TRACK, K_COUNT,
};

struct setting {
	const char *name;
	enum kind kind;
	size_t off;
	const char *arg;        /* NULL for booleans */
	const char *help;       /* with the default in parentheses */
};

#define F(field) offsetof(struct daemon_config, field)

static const struct setting settings[] = {
	{ "swap-file", K_SWAPPATH, F(swap_devices), "PATH", "swap file, created if missing (/var/lib/uvmpager/swap)" },
	{ "swap", K_DEVICE, F(swap_devices), "DEVICE", "swap device: a file as --swap-file, or nbd[s]://HOST[:PORT]/EXPORT, nbd[s]+unix:///EXPORT?socket=PATH[&tls-psk-file=KEY]; several: stripes" },
	{ "replicas", K_REPLICAS, F(replicas), "N", "copies of each stripe over the swap devices, at most their number (1)" },
	{ "swap-size", K_SIZE, F(swap_size), "SIZE", "its size; 0: the existing file's (8G)" },
	{ "swap-preallocate", K_BOOL, F(swap_preallocate), NULL, "write the file's blocks at creation (no)" },
	{ "budget", K_BUDGET, F(budget), "SIZE", "resident memory of all managed regions; auto: half of RAM (auto)" },
	{ "client-budget", K_SIZE, F(client_budget), "SIZE", "budget of a client that asks for none; 0: none (0)" },
	{ "client-budget-max", K_SIZE, F(client_budget_max), "SIZE", "most a client may ask; 0: the budget (0)" },
	{ "max-clients-per-user", K_COUNT, F(max_clients_per_user), "N", "programs one user (not root) may have connected at once; 0: no limit (256)" },
	{ "max-objects-per-user", K_COUNT, F(max_objects_per_user), "N", "memory objects of one user's programs (not root's) at once; 0: no limit (4096)" },
	{ "min-size", K_SIZE, F(min_size), "SIZE", "smallest region the shim manages (1M)" },
	{ "mount", K_PATH, F(mount), "DIR", "filesystem mount point, created if missing (/run/uvmpager)" },
	{ "filesystem", K_BOOL, F(filesystem), NULL, "mount the filesystem (yes)" },
	{ "socket", K_PATH, F(socket), "PATH", "control socket (/run/uvmpagerd/control.sock)" },
	{ "socket-mode", K_MODE, F(socket_mode), "MODE", "its permissions, octal; 0: 0660 with a group, else 0600 (0)" },
	{ "socket-group", K_NAME, F(socket_group), "GROUP", "group allowed to connect (uvmpager, if it exists)" },
	{ "foreground", K_BOOL, F(foreground), NULL, "do not detach (no)" },
	{ "log-level", K_LEVEL, F(log_level), "LEVEL", "error, warning, info, debug (info)" },
	{ "io", K_IO, F(io), "ENGINE", "auto, io_uring, threads (auto)" },
	{ "tracking", K_TRACK, F(track), "MODE", "auto, wp-async, wp-sync, soft-dirty (auto)" },
	{ "verify-clean", K_BOOL, F(verify_clean), NULL, "compare clean pages with their copy before dropping them (no)" },
	{ "launder-percent", K_PERCENT, F(launder_percent), "N", "launder while idle above N% of a budget; 0: never (50)" },
	{ "read-around-max", K_SIZE, F(read_around_max), "SIZE", "largest read-around window of a fault; 0: default (256K)" },
	{ "watermark-high", K_SIZE, F(watermark_high), "SIZE", "reclaim starts above this; 0: budget - 1/128 (0)" },
	{ "watermark-low", K_SIZE, F(watermark_low), "SIZE", "... and stops at this; 0: budget - 1/64 (0)" },
	{ "status-interval", K_SECONDS, F(status_interval), "SECS", "seconds between status lines to systemd (5)" },
};

/* getopt values: a setting is 256 + its index, its --no- form 512 + it */
enum { OPT_SET = 256, OPT_NEG = 512, OPT_CONFIG = 1024, OPT_NO_FS, OPT_CHECK };

static const char *const kind_reason[] = {
	[K_PATH] = "not an absolute path",
	[K_SWAPPATH] = "not an absolute path",
	[K_REPLICAS] = "not a number of replicas from 1 to 16",
	[K_DEVICE] = "neither an absolute path nor an nbd://, nbds://, nbd+unix:// or nbds+unix:// URI",
	[K_NAME] = "needs a value",
	[K_SIZE] = "not a size (a number, optionally with K, M, G or T)",
	[K_BUDGET] = "not 'auto' or a size above 0 (a number, optionally with K, M, G or T)",
	[K_BOOL] = "not a boolean (yes/no, true/false, on/off, 1/0)",
	[K_MODE] = "not an octal mode from 0 to 0777",
	[K_PERCENT] = "not a percentage from 0 to 100",
	[K_SECONDS] = "not a number of seconds from 1 to 3600",
	[K_COUNT] = "not a whole number from 0 to 1000000",
	[K_LEVEL] = "not one of error, warning, info, debug",
	[K_IO] = "not one of auto, io_uring, threads",
	[K_TRACK] = "not one of auto, wp-async, wp-sync, soft-dirty",
};

static void usage(FILE *f)
{
	fprintf(f, "usage: uvmpagerd [options]\n"
		"Serves memory of programs that opt in, under a budget, with a swap file.\n\n");
	for (size_t i = 0; i < ARRAY_SIZE(settings); i++) {
		const struct setting *s = &settings[i];
		char left[64];

		snprintf(left, sizeof(left), "--%s%s%s", s->name,
			 s->arg ? " " : "[=BOOL]", s->arg ? s->arg : "");
		fprintf(f, "  %-28s %s\n", left, s->help);
	}
	fprintf(f, "  %-28s %s\n", "-c, --config FILE", "config file (" UVMPAGERD_CONFIG_FILE ")");
	fprintf(f, "  %-28s %s\n", "--check-config", "check the settings, start nothing (exit 0 or 2)");
	fprintf(f, "  %-28s %s\n", "-h, --help", "this text");
	fprintf(f, "  %-28s %s\n", "-V, --version", "the version");
	fprintf(f, "A boolean option's --no-NAME turns it off. Every option but --config,\n"
		"--help and --version is also a key of the config file; the command line\n"
		"wins. Exit status: 0 done, 1 failed, 2 bad option or setting.\n"
		"See uvmpagerd(8) and uvmpager.conf(5).\n");
}

static void try_help(void)
{
	fprintf(stderr, "Try 'uvmpagerd --help' for more information.\n");
}

void config_defaults(struct daemon_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->swap_size = 8ULL << 30;
	cfg->min_size = 1ULL << 20;
	cfg->filesystem = true;
	cfg->log_level = LOG_INFO;
	cfg->io = IOENG_AUTO;
	cfg->track = TRACK_AUTO;
	cfg->launder_percent = -1;
	cfg->status_interval = 5;
	cfg->replicas = 1;
	cfg->max_clients_per_user = 256;
	cfg->max_objects_per_user = 4096;
}

void config_free(struct daemon_config *cfg)
{
	for (unsigned i = 0; i < cfg->nswap_devices; i++)
		free(cfg->swap_devices[i]);
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

static int parse_bool(const char *v, bool *out)
{
	static const char *const yes[] = { "yes", "true", "on", "1" };
	static const char *const no[] = { "no", "false", "off", "0" };

	for (size_t i = 0; i < ARRAY_SIZE(yes); i++) {
		if (strcasecmp(v, yes[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcasecmp(v, no[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	return -EINVAL;
}

static int parse_uint(const char *v, int base, unsigned long max, unsigned long *out)
{
	char *end;

	if (*v < '0' || *v > '9')
		return -EINVAL;
	errno = 0;
	*out = strtoul(v, &end, base);
	return errno || *end || *out > max ? -EINVAL : 0;
}

/* One setting's value into cfg: 0, -EINVAL (the kind's reason), -ENOMEM. */
static int apply(struct daemon_config *cfg, const struct setting *s, const char *v)
{
	void *p = (char *)cfg + s->off;
	unsigned long n;
	uint64_t size;

	switch (s->kind) {
	case K_PATH:
		if (v[0] != '/')
			return -EINVAL;
		return set_string(p, v);
	case K_SWAPPATH:
	case K_DEVICE:
		if (v[0] != '/' && (s->kind == K_SWAPPATH || !swapdev_name_is_nbd(v)))
			return -EINVAL;
		if (cfg->nswap_devices == CONFIG_SWAP_MAX)
			return -E2BIG;
		if (set_string(&cfg->swap_devices[cfg->nswap_devices], v) < 0)
			return -ENOMEM;
		cfg->nswap_devices++;
		return 0;
	case K_REPLICAS:
		if (parse_uint(v, 10, CONFIG_SWAP_MAX, &n) < 0 || n == 0)
			return -EINVAL;
		*(unsigned *)p = (unsigned)n;
		return 0;
	case K_NAME:
		if (!*v)
			return -EINVAL;
		return set_string(p, v);
	case K_SIZE:
		return parse_size(v, p);
	case K_BUDGET:
		/* 0 used to mean "half of RAM" silently: now that is spelled "auto" */
		if (strcmp(v, "auto") == 0) {
			*(uint64_t *)p = 0;
			return 0;
		}
		if (parse_size(v, &size) < 0 || size == 0)
			return -EINVAL;
		*(uint64_t *)p = size;
		return 0;
	case K_BOOL:
		return parse_bool(v, p);
	case K_MODE:
		if (parse_uint(v, 8, 0777, &n) < 0)
			return -EINVAL;
		*(unsigned *)p = (unsigned)n;
		return 0;
	case K_PERCENT:
		if (parse_uint(v, 10, 100, &n) < 0)
			return -EINVAL;
		*(int *)p = (int)n;
		return 0;
	case K_SECONDS:
		if (parse_uint(v, 10, 3600, &n) < 0 || n == 0)
			return -EINVAL;
		*(unsigned *)p = (unsigned)n;
		return 0;
	case K_COUNT:
		if (parse_uint(v, 10, 1000000, &n) < 0)
			return -EINVAL;
		*(unsigned *)p = (unsigned)n;
		return 0;
	case K_LEVEL:
		return log_level_parse(v, p);
	case K_IO:
		return ioeng_kind_parse(v, p);
	case K_TRACK:
		return track_mode_parse(v, p);
	}
	return -EINVAL;
}

static const struct setting *find_setting(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(settings); i++)
		if (strcmp(settings[i].name, name) == 0)
			return &settings[i];
	return NULL;
}

/* --- the file ------------------------------------------------------------- */

struct file_state {
	struct daemon_config *cfg;
	FILE *f;
	const char *path;
	int line;                          /* of the line inih is working on */
	int seen[ARRAY_SIZE(settings)];    /* line each key was set on, 0: not yet */
	int err_line;                      /* the first refusal's, 0: none */
	char err[256];
};

static void refuse(struct file_state *st, const char *key, const char *reason)
{
	if (st->err_line)
		return;
	st->err_line = st->line;
	snprintf(st->err, sizeof(st->err), "%s: %s", key, reason);
}

/*
 * inih's fgets: counting lines is how a refusal knows where it is. A
 * line longer than inih's buffer would reach it in pieces (the tail
 * read as a line of its own): refused here, whole, and skipped.
 */
static char *read_line(char *buf, int size, void *stream)
{
	struct file_state *st = stream;
	char *r = fgets(buf, size, st->f);
	size_t len;
	int c;

	if (!r)
		return NULL;
	st->line++;
	len = strlen(buf);
	if (len == (size_t)size - 1 && buf[len - 1] != '\n' && !feof(st->f)) {
		char why[64];

		snprintf(why, sizeof(why), "longer than %d characters", size - 2);
		refuse(st, "line", why);
		while ((c = fgetc(st->f)) != EOF && c != '\n')
			;
		snprintf(buf, (size_t)size, "#\n");
	}
	return r;
}

/* inih: 1 to go on, 0 for an error at the current line */
static int on_key(void *user, const char *section, const char *name, const char *value)
{
	struct file_state *st = user;
	const struct setting *s;
	char why[160];
	size_t i;
	int r;

	if (*section) {
		snprintf(why, sizeof(why), "sections are not used ([%s])", section);
		refuse(st, name, why);
		return 0;
	}
	s = find_setting(name);
	if (!s) {
		refuse(st, name, "unknown key (see uvmpager.conf(5))");
		return 0;
	}
	i = (size_t)(s - settings);
	/* swap devices add up: given twice, there are two */
	if (st->seen[i] && s->kind != K_DEVICE && s->kind != K_SWAPPATH) {
		snprintf(why, sizeof(why), "set twice (first on line %d)", st->seen[i]);
		refuse(st, name, why);
		return 0;
	}
	st->seen[i] = st->line;
	if (!*value) {
		refuse(st, name, "needs a value");
		return 0;
	}
	r = apply(st->cfg, s, value);
	if (r < 0) {
		snprintf(why, sizeof(why), "'%.60s' is %s", value,
			 r == -ENOMEM ? "too much for memory" :
			 r == -E2BIG ? "one swap device too many (at most 16)" : kind_reason[s->kind]);
		refuse(st, name, why);
		return 0;
	}
	return 1;
}

int config_parse_file(struct daemon_config *cfg, const char *path, bool must_exist)
{
	struct file_state st = { .cfg = cfg, .path = path };
	int r;

	st.f = fopen(path, "re");
	if (!st.f) {
		if (errno == ENOENT && !must_exist)
			return -ENOENT;
		fprintf(stderr, "uvmpagerd: %s: %s\n", path, strerror(errno));
		return -EINVAL;
	}
	r = ini_parse_stream(read_line, &st, on_key, &st);
	fclose(st.f);
	if (r == 0 && !st.err_line)
		return 0;
	/* inih names the first bad line; ours is it unless a line did not parse before it */
	if (st.err_line && (r == 0 || r >= st.err_line))
		fprintf(stderr, "uvmpagerd: %s:%d: %s\n", path, st.err_line, st.err);
	else if (r > 0)
		fprintf(stderr, "uvmpagerd: %s:%d: not a 'key = value' line\n", path, r);
	else
		fprintf(stderr, "uvmpagerd: %s: cannot be read\n", path);
	return -EINVAL;
}

/* --- the command line ----------------------------------------------------- */

/* Every setting as a long option, booleans with [=BOOL] and --no-NAME. */
static struct option *build_options(void)
{
	size_t n = 2 * ARRAY_SIZE(settings) + 6, k = 0;
	struct option *o = calloc(n, sizeof(*o));
	static char negs[ARRAY_SIZE(settings)][40];

	if (!o)
		return NULL;
	for (size_t i = 0; i < ARRAY_SIZE(settings); i++) {
		const struct setting *s = &settings[i];

		o[k++] = (struct option){ s->name, s->arg ? required_argument : optional_argument,
					  NULL, (int)(OPT_SET + i) };
		if (s->kind == K_BOOL) {
			snprintf(negs[i], sizeof(negs[i]), "no-%s", s->name);
			o[k++] = (struct option){ negs[i], no_argument, NULL, (int)(OPT_NEG + i) };
		}
	}
	o[k++] = (struct option){ "no-fs", no_argument, NULL, OPT_NO_FS };   /* old spelling */
	o[k++] = (struct option){ "config", required_argument, NULL, OPT_CONFIG };
	o[k++] = (struct option){ "check-config", no_argument, NULL, OPT_CHECK };
	o[k++] = (struct option){ "help", no_argument, NULL, 'h' };
	o[k++] = (struct option){ "version", no_argument, NULL, 'V' };
	return o;
}

static int resolve_group(struct daemon_config *cfg)
{
	struct group *g;

	if (!cfg->socket_group) {
		/* the group the package creates; without it only root may connect */
		g = getgrnam("uvmpager");
		cfg->socket_gid = g ? g->gr_gid : 0;
		return 0;
	}
	g = getgrnam(cfg->socket_group);
	if (!g) {
		fprintf(stderr, "uvmpagerd: socket-group: no group '%s'\n", cfg->socket_group);
		return -EINVAL;
	}
	cfg->socket_gid = g->gr_gid;
	return 0;
}

static int fill_defaults(struct daemon_config *cfg)
{
	struct sockaddr_un sa;

	if (!cfg->nswap_devices) {
		if (set_string(&cfg->swap_devices[0], "/var/lib/uvmpager/swap") < 0)
			return -ENOMEM;
		cfg->nswap_devices = 1;
	}
	if (set_string(&cfg->swap_file, cfg->swap_devices[0]) < 0)
		return -ENOMEM;
	/* resident memory beyond RAM cannot be: a slip of a unit, said now */
	if (cfg->budget && sysconf(_SC_PHYS_PAGES) > 0 &&
	    cfg->budget > (uint64_t)sysconf(_SC_PHYS_PAGES) * (uint64_t)sysconf(_SC_PAGESIZE)) {
		fprintf(stderr, "uvmpagerd: budget: %llu MiB is more than this machine's memory "
			"(%llu MiB)\n", (unsigned long long)(cfg->budget >> 20),
			(unsigned long long)((uint64_t)sysconf(_SC_PHYS_PAGES) *
					     (uint64_t)sysconf(_SC_PAGESIZE) >> 20));
		return -EINVAL;
	}
	if (cfg->replicas > cfg->nswap_devices) {
		fprintf(stderr, "uvmpagerd: replicas: %u copies need at least %u swap devices "
			"(%u given)\n", cfg->replicas, cfg->replicas, cfg->nswap_devices);
		return -EINVAL;
	}
	if (!cfg->mount && set_string(&cfg->mount, "/run/uvmpager") < 0)
		return -ENOMEM;
	if (!cfg->socket && set_string(&cfg->socket, "/run/uvmpagerd/control.sock") < 0)
		return -ENOMEM;
	if (strlen(cfg->socket) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "uvmpagerd: socket: longer than %zu characters\n",
			sizeof(sa.sun_path) - 1);
		return -EINVAL;
	}
	return 0;
}

int config_load(struct daemon_config *cfg, int argc, char **argv)
{
	const char *file = UVMPAGERD_CONFIG_FILE;
	bool explicit_file = false, check_only = false, cmdline_swap = false;
	struct option *opts = build_options();
	int c, r = -ENOMEM;

	if (!opts)
		return -ENOMEM;
	/* first pass: --config, --help, --version, and a bad command line before the file */
	opterr = 1;
	optind = 1;
	while ((c = getopt_long(argc, argv, "c:hV", opts, NULL)) != -1) {
		if (c == OPT_CONFIG || c == 'c') {
			file = optarg;
			explicit_file = true;
		} else if (c == OPT_CHECK) {
			check_only = true;
		} else if (c == 'h') {
			usage(stdout);
			r = 1;
			goto out;
		} else if (c == 'V') {
			printf("uvmpagerd %s\n", UVMPAGER_VERSION);
			r = 1;
			goto out;
		} else if (c == '?' || c == ':') {
			try_help();
			r = -EINVAL;
			goto out;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "uvmpagerd: unexpected argument '%s'\n", argv[optind]);
		try_help();
		r = -EINVAL;
		goto out;
	}
	r = config_parse_file(cfg, file, explicit_file);
	if (r < 0 && r != -ENOENT)
		goto out;
	r = set_string(&cfg->config, file);
	if (r < 0)
		goto out;

	/* second pass: the command line wins */
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "c:hV", opts, NULL)) != -1) {
		const struct setting *s;

		if (c == OPT_CONFIG || c == 'c' || c == OPT_CHECK)
			continue;
		if (c == OPT_NO_FS) {
			cfg->filesystem = false;
			continue;
		}
		if (c >= OPT_NEG) {
			*(bool *)((char *)cfg + settings[c - OPT_NEG].off) = false;
			continue;
		}
		s = &settings[c - OPT_SET];
		if ((s->kind == K_DEVICE || s->kind == K_SWAPPATH) && !cmdline_swap) {
			/* the command line's swap devices replace the file's */
			for (unsigned i = 0; i < cfg->nswap_devices; i++) {
				free(cfg->swap_devices[i]);
				cfg->swap_devices[i] = NULL;
			}
			cfg->nswap_devices = 0;
			cmdline_swap = true;
		}
		r = apply(cfg, s, optarg ? optarg : "yes");
		if (r < 0) {
			fprintf(stderr, "uvmpagerd: --%s: '%s' is %s\n", s->name,
				optarg ? optarg : "", r == -E2BIG ?
				"one swap device too many (at most 16)" : kind_reason[s->kind]);
			try_help();
			r = -EINVAL;
			goto out;
		}
	}
	r = fill_defaults(cfg);
	if (r == 0)
		r = resolve_group(cfg);
	if (r == 0 && check_only) {
		printf("%s: ok\n", file);
		r = 1;
	}
out:
	free(opts);
	return r;
}

int config_reload(const char *path, struct daemon_config *out)
{
	config_defaults(out);
	return config_parse_file(out, path, true);
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
	/* a file that leaves it out keeps it (0 there means "the budget" anyway) */
	if (srv && cfg->client_budget_max)
		server_set_client_budget_max(srv, cfg->client_budget_max);
	if (srv)
		server_set_user_limits(srv, cfg->max_clients_per_user, cfg->max_objects_per_user);
	return 0;
}
