/*
 * uvmpagerd: the paging engine as a service for many processes. Reads its
 * settings, checks what it is about to use before it creates anything,
 * starts the engine, the control server and the filesystem, tells systemd
 * it is ready, serves until SIGTERM, then lets every client go with all
 * of its data back in memory.
 *
 * Exit status: 0 stopped by a signal (or --help/--version), 1 failed,
 * 2 bad option or setting.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"
#include "daemon/config.h"
#include "daemon/fs.h"
#include "daemon/instance.h"
#include "daemon/log.h"
#include "daemon/notify.h"
#include "daemon/server.h"
#include "daemon/swapcheck.h"
#include "engine.h"
#include "swap/swapdev.h"

#ifndef PR_SET_IO_FLUSHER
#define PR_SET_IO_FLUSHER 57
#endif

/* The engine's events, in the daemon's log. */
static void engine_log_line(int level, const char *msg)
{
	log_msg(level <= LOG_ERR ? LOG_ERR : level <= LOG_WARN ? LOG_WARN : LOG_INFO, "%s", msg);
}

static uint64_t half_of_ram(void)
{
	long pages = sysconf(_SC_PHYS_PAGES);

	return pages > 0 ? (uint64_t)pages * PAGE_SIZE / 2 : 1ULL << 30;
}

/* mkdir -p of path's parents, or of path itself too (with_self); the last made gets mode */
static void mkdir_p(const char *path, bool with_self, mode_t mode)
{
	char dir[PATH_MAX];
	char *slash;

	snprintf(dir, sizeof(dir), "%s", path);
	if (!with_self) {
		slash = strrchr(dir, '/');
		if (!slash || slash == dir)
			return;
		*slash = '\0';
	}
	for (char *p = dir + 1; (p = strchr(p, '/')); p++) {
		*p = '\0';
		mkdir(dir, 0755);
		*p = '/';
	}
	mkdir(dir, mode);
}

/*
 * What can be known wrong before anything is created: a mount point
 * that exists and is not a directory (FUSE would mount on a file, then
 * every ls answers EIO). A stale mount (ENOTCONN) is fine: cleared later.
 */
static int check_mount(const struct daemon_config *cfg)
{
	struct stat st;

	if (!cfg->filesystem)
		return 0;
	if (stat(cfg->mount, &st) == 0 && !S_ISDIR(st.st_mode)) {
		fprintf(stderr, "uvmpagerd: mount: %s is not a directory\n", cfg->mount);
		return -ENOTDIR;
	}
	return 0;
}

/*
 * Detach from the terminal before any thread exists; the parent waits
 * for the child to say whether it came up, and exits with that.
 */
static int daemonize(int *ready_fd)
{
	int p[2];
	pid_t pid;
	char st = 1;

	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid > 0) {
		close(p[1]);
		if (read(p[0], &st, 1) != 1)
			st = 1;
		_exit(st);
	}
	close(p[0]);
	setsid();
	*ready_fd = p[1];
	return 0;
}

static void say_ready(int ready_fd, char status)
{
	if (ready_fd >= 0) {
		if (write(ready_fd, &status, 1) != 1)
			status = 1;
		close(ready_fd);
		if (!status) {
			int null = open("/dev/null", O_RDWR | O_CLOEXEC);

			if (null >= 0) {
				dup2(null, STDIN_FILENO);
				dup2(null, STDOUT_FILENO);
				close(null);
			}
		}
	}
}

/* What the loop's tick needs: systemd's status line and watchdog. */
struct ticker {
	struct engine *e;
	struct server *srv;
	uint64_t status_every, next_status;   /* ns */
	uint64_t watchdog_every, next_watchdog;
};

static void send_status(struct ticker *t)
{
	struct engine_stats st;
	char msg[256];

	engine_get_stats(t->e, &st);
	snprintf(msg, sizeof(msg),
		 "STATUS=%u clients; %" PRIu64 " MiB resident of %" PRIu64 " MiB; %" PRIu64
		 " MiB swapped; %" PRIu64 " swap-ins, %" PRIu64 " swap-outs",
		 server_client_count(t->srv), st.resident_bytes >> 20, st.budget_bytes >> 20,
		 st.swapped_bytes >> 20, st.swapins, st.swapouts);
	notify_send(msg);
}

/* Main thread, between rounds of the server loop (at least once a second). */
static void tick(void *arg)
{
	struct ticker *t = arg;
	uint64_t now = now_ns();

	if (now >= t->next_status) {
		send_status(t);
		t->next_status = now + t->status_every;
	}
	/* the loop turning is what the watchdog vouches for */
	if (t->watchdog_every && now >= t->next_watchdog) {
		notify_send("WATCHDOG=1");
		t->next_watchdog = now + t->watchdog_every;
	}
}

int main(int argc, char **argv)
{
	struct daemon_config cfg;
	struct engine_config ecfg;
	struct engine_stats st;
	struct engine *e = NULL;
	struct server *srv = NULL;
	struct fs *fs = NULL;
	struct ticker tk;
	char err[512] = "";
	char more[64];
	int ready_fd = -1, lock_fd = -1, r, ret = 1;
	const char *what;
	pid_t owner = 0;
	sigset_t sigs;

	config_defaults(&cfg);
	r = config_load(&cfg, argc, argv);
	if (r != 0) {
		config_free(&cfg);
		return r > 0 ? 0 : 2;
	}
	if (check_mount(&cfg) < 0) {
		config_free(&cfg);
		return 2;
	}
	log_set_level(cfg.log_level);
	if (!cfg.foreground && daemonize(&ready_fd) < 0) {
		log_err("cannot detach: %s", strerror(errno));
		goto out;
	}
	lock_fd = instance_lock(cfg.socket, &owner);
	if (lock_fd == -EEXIST) {
		log_err("already running, pid %d (socket %s): nothing changed", (int)owner,
			cfg.socket);
		goto out;
	}
	if (lock_fd < 0) {
		log_err("%s.lock: %s", cfg.socket, strerror(-lock_fd));
		goto out;
	}
	if (cfg.filesystem && instance_mount_busy(cfg.mount)) {
		log_err("mount point %s is in use (another daemon's?): nothing changed", cfg.mount);
		goto out;
	}
	/* before any thread exists: signals come through the server's signalfd */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	sigaddset(&sigs, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	/* the daemon's own memory must never be paged: it serves the faults */
	if (mlockall(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT) < 0)
		log_warn("mlockall: %s (the daemon's memory may be swapped)", strerror(errno));
	/*
	 * Its swap writes relieve memory pressure: without this the kernel
	 * throttles them (and its allocations) as if they made it
	 */
	if (prctl(PR_SET_IO_FLUSHER, 1, 0, 0, 0) < 0)
		log_warn("PR_SET_IO_FLUSHER: %s (swap writes may be throttled under pressure)",
			 strerror(errno));

	engine_config_defaults(&ecfg);
	ecfg.swap_path = cfg.swap_file;
	ecfg.swap_paths = (const char *const *)cfg.swap_devices;
	ecfg.swap_npaths = cfg.nswap_devices;
	ecfg.swap_replicas = cfg.replicas;
	ecfg.swap_size = cfg.swap_size;
	ecfg.swap_preallocate = cfg.swap_preallocate;
	ecfg.budget = cfg.budget ? cfg.budget : half_of_ram();
	ecfg.io = cfg.io;
	ecfg.track = cfg.track;
	ecfg.verify_clean = cfg.verify_clean;
	ecfg.log = engine_log_line;
	for (unsigned i = 0; i < cfg.nswap_devices; i++)
		if (!swapdev_name_is_nbd(cfg.swap_devices[i]))
			mkdir_p(cfg.swap_devices[i], false, 0700);
	r = engine_create(&ecfg, &e, err, sizeof(err));
	if (r < 0) {
		/* the swap module's messages start with the path: say what it is */
		log_err("%s%s", strncmp(err, cfg.swap_file, strlen(cfg.swap_file)) == 0 ?
			(swapdev_name_is_nbd(cfg.swap_file) ? "swap device " : "swap file ") : "",
			err[0] ? err : strerror(-r));
		goto out;
	}
	for (unsigned i = 0; i < cfg.nswap_devices; i++)
		if (!swapdev_name_is_nbd(cfg.swap_devices[i]))
			swapcheck_warn(cfg.swap_devices[i]);
	/* the budget again: the tunables' rules apply to the config file too */
	if (config_apply_live(&cfg, e, NULL, &what) < 0) {
		log_err("%s: out of range", what);
		goto out;
	}
	r = server_create(e, &cfg, &srv);
	if (r < 0)
		goto out;
	if (cfg.filesystem) {
		mkdir_p(cfg.mount, true, 0755);
		r = fs_create(e, srv, cfg.mount, &fs);
		if (r < 0) {
			log_err("cannot mount the filesystem at %s: %s", cfg.mount, strerror(-r));
			goto out;
		}
	}
	engine_get_stats(e, &st);
	snprintf(more, sizeof(more), cfg.nswap_devices > 1 || cfg.replicas > 1 ?
		 " and %u more, %u replicas" : "", cfg.nswap_devices - 1, cfg.replicas);
	log_info("serving on %s; swap %s%s (%" PRIu64 " MiB); budget %" PRIu64
		 " MiB; io %s; dirty tracking %s%s%s", cfg.socket, cfg.swap_file, more,
		 (st.swap_slots_total * PAGE_SIZE) >> 20, st.budget_bytes >> 20, st.io_engine,
		 st.tracking, fs ? "; filesystem at " : "", fs ? cfg.mount : "");
	tk = (struct ticker){
		.e = e, .srv = srv,
		.status_every = cfg.status_interval * 1000000000ULL,
		/* twice per period, as sd_watchdog_enabled(3) advises */
		.watchdog_every = notify_watchdog_ns() / 2,
	};
	/* swap, socket and mount are all up: only now */
	notify_send("READY=1");
	tick(&tk);
	say_ready(ready_fd, 0);
	ready_fd = -1;

	r = server_run(srv, tick, &tk);
	ret = r < 0 ? 1 : 0;
out:
	say_ready(ready_fd, 1);
	/* the filesystem reads the server's lists: it goes first */
	fs_destroy(fs);
	server_destroy(srv);
	engine_destroy(e);
	config_free(&cfg);
	if (lock_fd >= 0)
		close(lock_fd);
	return ret;
}
