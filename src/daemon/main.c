/*
 * uvmpagerd: the paging engine as a service for many processes. Reads its
 * settings, starts the engine, the control server and the filesystem,
 * tells systemd it is ready, serves until SIGTERM, then lets every client
 * go with all of its data back in memory.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/util.h"
#include "daemon/config.h"
#include "daemon/fs.h"
#include "daemon/log.h"
#include "daemon/server.h"
#include "engine.h"

/* sd_notify without libsystemd: one datagram to $NOTIFY_SOCKET. */
static void notify(const char *msg)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	socklen_t len;
	int fd;

	if (!path || !*path || strlen(path) >= sizeof(sa.sun_path))
		return;
	strcpy(sa.sun_path, path);
	if (sa.sun_path[0] == '@')
		sa.sun_path[0] = '\0';   /* abstract namespace */
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path));
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	sendto(fd, msg, strlen(msg), MSG_NOSIGNAL, (struct sockaddr *)&sa, len);
	close(fd);
}

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

static void mkdir_parent(const char *path)
{
	char *dup = strdup(path), *slash;

	if (!dup)
		return;
	slash = strrchr(dup, '/');
	if (slash && slash != dup) {
		*slash = '\0';
		for (char *p = dup + 1; *p; p++) {
			if (*p == '/') {
				*p = '\0';
				mkdir(dup, 0755);
				*p = '/';
			}
		}
		mkdir(dup, 0700);
	}
	free(dup);
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

int main(int argc, char **argv)
{
	struct daemon_config cfg;
	struct engine_config ecfg;
	struct engine_stats st;
	struct engine *e = NULL;
	struct server *srv = NULL;
	struct fs *fs = NULL;
	char err[512] = "", status[256];
	int ready_fd = -1, r, ret = 1;
	sigset_t sigs;

	config_defaults(&cfg);
	r = config_load(&cfg, argc, argv);
	if (r != 0) {
		config_free(&cfg);
		return r > 0 ? 0 : 2;
	}
	log_set_level(cfg.log_level);
	if (!cfg.foreground && daemonize(&ready_fd) < 0) {
		log_err("cannot detach: %s", strerror(errno));
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

	engine_config_defaults(&ecfg);
	ecfg.swap_path = cfg.swap_file;
	ecfg.swap_size = cfg.swap_size;
	ecfg.swap_preallocate = cfg.swap_preallocate;
	ecfg.budget = cfg.budget ? cfg.budget : half_of_ram();
	ecfg.io = cfg.io;
	ecfg.track = cfg.track;
	ecfg.verify_clean = cfg.verify_clean;
	ecfg.log = engine_log_line;
	mkdir_parent(cfg.swap_file);
	r = engine_create(&ecfg, &e, err, sizeof(err));
	if (r < 0) {
		log_err("%s", err[0] ? err : strerror(-r));
		goto out;
	}
	{
		const char *what;

		/* the budget again: the tunables' rules apply to the config file too */
		if (config_apply_live(&cfg, e, NULL, &what) < 0) {
			log_err("%s: out of range", what);
			goto out;
		}
	}
	r = server_create(e, &cfg, &srv);
	if (r < 0)
		goto out;
	if (!cfg.no_fs) {
		r = fs_create(e, srv, cfg.mount, &fs);
		if (r < 0) {
			log_err("cannot mount the filesystem at %s: %s", cfg.mount, strerror(-r));
			goto out;
		}
	}
	engine_get_stats(e, &st);
	snprintf(status, sizeof(status),
		 "READY=1\nSTATUS=serving on %s; swap %s (%" PRIu64 " MiB); budget %" PRIu64
		 " MiB; io %s; dirty tracking %s", cfg.socket, cfg.swap_file,
		 (st.swap_slots_total * PAGE_SIZE) >> 20, st.budget_bytes >> 20, st.io_engine,
		 st.tracking);
	log_info("%s", strchr(status, '=') ? strchr(status, '\n') + 8 : status);
	notify(status);
	say_ready(ready_fd, 0);
	ready_fd = -1;

	r = server_run(srv);
	notify("STOPPING=1");
	ret = r < 0 ? 1 : 0;
out:
	say_ready(ready_fd, 1);
	/* the filesystem reads the server's lists: it goes first */
	fs_destroy(fs);
	server_destroy(srv);
	engine_destroy(e);
	config_free(&cfg);
	return ret;
}
