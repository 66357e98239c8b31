/* uvmpagerd's settings: defaults, then the config file, then the command line. */
#ifndef UVMPAGERD_CONFIG_H
#define UVMPAGERD_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "daemon/log.h"
#include "fault/track.h"
#include "swap/ioeng.h"

#define UVMPAGERD_CONFIG_FILE "/etc/uvmpager/uvmpager.conf"

struct daemon_config {
	char *swap_file;
	uint64_t swap_size;
	bool swap_preallocate;
	uint64_t budget;              /* all managed memory; 0 = half of RAM */
	uint64_t client_budget;       /* a client that asks for none gets this (0: none) */
	uint64_t client_budget_max;   /* cap on what a client may ask (0: budget) */
	uint64_t min_size;            /* smallest region the shim manages */
	char *mount;
	char *socket;
	unsigned socket_mode;
	char *socket_group;           /* NULL: root's group */
	char *config;
	bool foreground;
	bool no_fs;                   /* no FUSE mount (tests without /dev/fuse) */
	bool verify_clean;            /* debugging: see engine_config */
	int launder_percent;          /* -1: the engine's default */
	uint64_t read_around_max;     /* 0: the engine's default */
	uint64_t watermark_high;      /* bytes; 0: the engine's default for the budget */
	uint64_t watermark_low;
	enum log_level log_level;
	enum ioeng_kind io;
	enum track_mode track;
};

void config_defaults(struct daemon_config *cfg);
/*
 * Command line over config file over defaults. Returns 0, 1 when the
 * program should exit successfully (--help, --version), or -EINVAL after
 * printing what is wrong.
 */
int config_load(struct daemon_config *cfg, int argc, char **argv);
void config_free(struct daemon_config *cfg);
/*
 * SIGHUP: the config file alone, over the defaults, into *out (the
 * caller's to config_free). -EINVAL after printing what is wrong: then
 * nothing should change.
 */
int config_reload(const char *path, struct daemon_config *out);

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
