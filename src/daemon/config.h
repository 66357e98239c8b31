/*
 * uvmpagerd's settings: defaults, then the config file (inih), then the
 * command line. Every setting is both a long option and a config key of
 * the same name (config.c's table); --config, --help and --version are
 * the command line's alone.
 */
#ifndef UVMPAGERD_CONFIG_H
#define UVMPAGERD_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "build-config.h"
#include "daemon/log.h"
#include "fault/track.h"
#include "swap/ioeng.h"

/* <sysconfdir>/uvmpager/uvmpager.conf, where meson install puts the example */
#define UVMPAGERD_CONFIG_FILE UVMPAGER_SYSCONFDIR "/uvmpager/uvmpager.conf"

#define CONFIG_SWAP_MAX 16            /* SWAPDEV_SET_MAX */

struct daemon_config {
	/*
	 * swap and swap-file, in order: each one adds a device (the command
	 * line's replace the file's); the default path when none is given.
	 * swap_file is the first, for messages.
	 */
	char *swap_devices[CONFIG_SWAP_MAX];
	unsigned nswap_devices;
	unsigned replicas;            /* copies of each stripe unit (1) */
	char *swap_file;
	uint64_t swap_size;
	bool swap_preallocate;
	uint64_t budget;              /* all managed memory; 0 = auto, half of RAM */
	uint64_t client_budget;       /* a client that asks for none gets this (0: none) */
	uint64_t client_budget_max;   /* cap on what a client may ask (0: the budget) */
	unsigned max_clients_per_user; /* 0: no limit; root has none */
	unsigned max_objects_per_user; /* 0: no limit; root has none */
	uint64_t min_size;            /* smallest region the shim manages */
	char *mount;
	bool filesystem;              /* false: no FUSE mount (tests without /dev/fuse) */
	char *socket;
	unsigned socket_mode;         /* 0: 0660 with a group, else 0600 */
	char *socket_group;           /* NULL: "uvmpager" if it exists */
	gid_t socket_gid;             /* resolved by config_load; 0: root's */
	char *config;
	bool foreground;
	bool verify_clean;            /* debugging: see engine_config */
	int launder_percent;          /* -1: the engine's default */
	uint64_t read_around_max;     /* 0: the engine's default */
	uint64_t watermark_high;      /* bytes; 0: the engine's default for the budget */
	uint64_t watermark_low;
	enum log_level log_level;
	enum ioeng_kind io;
	enum track_mode track;
	unsigned status_interval;     /* seconds between STATUS= updates to systemd */
};

void config_defaults(struct daemon_config *cfg);
/*
 * Command line over config file over defaults. Returns 0, 1 when the
 * program should exit successfully (--help, --version, --check-config), or -EINVAL after
 * printing what is wrong (file:line: key: reason, or the flag), with
 * "Try --help" for a bad command line. Nothing is created: names (the
 * socket group) are resolved here so that a mistake stops the daemon
 * before it touches anything.
 */
int config_load(struct daemon_config *cfg, int argc, char **argv);
void config_free(struct daemon_config *cfg);
/*
 * SIGHUP: the config file alone, over the defaults, into *out (the
 * caller's to config_free). -EINVAL after printing what is wrong: then
 * nothing should change.
 */
int config_reload(const char *path, struct daemon_config *out);
/*
 * Parse one file over *cfg (tests and config_load): 0, or -EINVAL after
 * printing "path:line: key: reason" to stderr; -ENOENT when it is
 * missing and !must_exist (cfg untouched).
 */
int config_parse_file(struct daemon_config *cfg, const char *path, bool must_exist);

struct engine;
struct server;
/*
 * The settings that can change while the daemon runs (budget, client
 * budget maximum, launder percent, read-around maximum), from cfg where
 * it sets them, all or none: when the engine refuses one, those already
 * applied are put back and -EINVAL returned with *what naming it. srv
 * may be NULL (at start, before the server exists).
 */
int config_apply_live(const struct daemon_config *cfg, struct engine *e, struct server *srv,
		      const char **what);

#endif
