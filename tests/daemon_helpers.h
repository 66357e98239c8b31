/* Start and stop a uvmpagerd of the test's own, on files in a temp dir. */
#ifndef UVMPAGER_TEST_DAEMON_HELPERS_H
#define UVMPAGER_TEST_DAEMON_HELPERS_H

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Exit 77 with the reason when no daemon can run here. */
static inline void require_daemon_env(void)
{
	if (geteuid() != 0) {
		printf("SKIP: uvmpagerd needs root\n");
		exit(77);
	}
	if (!getenv("UVMPAGERD")) {
		printf("SKIP: UVMPAGERD (the daemon binary) not set\n");
		exit(77);
	}
}

struct test_daemon {
	pid_t pid;
	char dir[64];
	char sock[100];
	char mnt[128];
	char swap[128];
	bool reuse_dir;   /* td_start keeps dir (and so the mount point and swap file) */
	/*
	 * The daemon leaves the test's process group and gets SIGTERM when
	 * the test's process dies: a test that fails (Check _exits, then
	 * kills its process group) leaves no stale mount behind.
	 */
	bool stop_with_parent;
};

static inline int td_connect(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
		return fd;
	if (fd >= 0)
		close(fd);
	return -1;
}

/* extra: further daemon arguments, NULL-terminated. Returns 0 once it accepts. */
static inline int td_start(struct test_daemon *d, const char *budget, ...)
{
	const char *bin = getenv("UVMPAGERD");
	const char *argv[32];
	bool nofs = false;
	int argc = 0;
	va_list ap;

	if (!bin)
		return -ENOENT;
	if (!d->reuse_dir) {
		snprintf(d->dir, sizeof(d->dir), "/var/tmp/uvmpagerd-test-XXXXXX");
		if (!mkdtemp(d->dir))
			return -errno;
	}
	chmod(d->dir, 0755);   /* clients of other users reach the socket */
	snprintf(d->sock, sizeof(d->sock), "%s/sock", d->dir);
	snprintf(d->mnt, sizeof(d->mnt), "%s/mnt", d->dir);
	snprintf(d->swap, sizeof(d->swap), "%s/swap", d->dir);
	argv[argc++] = bin;
	argv[argc++] = "--foreground";
	argv[argc++] = "--swap-file";
	argv[argc++] = d->swap;
	argv[argc++] = "--swap-size";
	argv[argc++] = "1G";
	argv[argc++] = "--socket";
	argv[argc++] = d->sock;
	argv[argc++] = "--socket-mode";
	argv[argc++] = "0666";
	argv[argc++] = "--mount";
	argv[argc++] = d->mnt;
	argv[argc++] = "--budget";
	argv[argc++] = budget;
	va_start(ap, budget);
	for (const char *a; (a = va_arg(ap, const char *)) && argc < 30;) {
		argv[argc++] = a;
		if (strcmp(a, "--no-fs") == 0)
			nofs = true;
	}
	va_end(ap);
	argv[argc] = NULL;
	d->pid = fork();
	if (d->pid < 0)
		return -errno;
	if (d->pid == 0) {
		if (d->stop_with_parent) {
			setsid();
			prctl(PR_SET_PDEATHSIG, SIGTERM);
		}
		execv(bin, (char *const *)argv);
		_exit(127);
	}
	for (int i = 0; i < 500; i++) {
		int fd = td_connect(d->sock);
		char stat_file[160];
		struct stat st;

		/* the mount's own file: the bare directory (or a stale mount cleared) is not it */
		snprintf(stat_file, sizeof(stat_file), "%s/stat", d->mnt);
		if (fd >= 0 && (nofs || stat(stat_file, &st) == 0)) {
			close(fd);
			return 0;
		}
		if (fd >= 0)
			close(fd);
		if (waitpid(d->pid, NULL, WNOHANG) == d->pid)
			return -ECHILD;
		usleep(10000);
	}
	return -ETIMEDOUT;
}

/* SIGTERM and wait; returns the exit status (or 128 + signal). */
static inline int td_stop(struct test_daemon *d)
{
	int status = 0;
	char cmd[256];

	if (d->pid > 0) {
		kill(d->pid, SIGTERM);
		waitpid(d->pid, &status, 0);
	}
	snprintf(cmd, sizeof(cmd), "umount -l %s 2>/dev/null; rm -rf %s", d->mnt, d->dir);
	if (system(cmd) != 0)
		status = status ? status : 1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* A value from the daemon's stat file, or -1. */
static inline long long td_stat(struct test_daemon *d, const char *name)
{
	char path[160], line[256], key[64];
	long long v, found = -1;
	FILE *f;

	snprintf(path, sizeof(path), "%s/stat", d->mnt);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "%63s %lld", key, &v) == 2 && strcmp(key, name) == 0)
			found = v;
	fclose(f);
	return found;
}

#endif
