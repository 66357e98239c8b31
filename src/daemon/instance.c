#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/instance.h"

static void mkdir_parents(const char *path)
{
	char dir[PATH_MAX];

	snprintf(dir, sizeof(dir), "%s", path);
	for (char *p = dir + 1; (p = strchr(p, '/')); p++) {
		*p = '\0';
		mkdir(dir, 0755);
		*p = '/';
	}
}

/*
 * Not unlinked at exit: a daemon starting while another exits could
 * otherwise lock a file that is about to vanish while a third locks its
 * successor. It lives in the runtime directory, gone at reboot.
 */
int instance_lock(const char *socket_path, pid_t *owner)
{
	char path[PATH_MAX], buf[32];
	ssize_t n;
	int fd;

	if (snprintf(path, sizeof(path), "%s.lock", socket_path) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	mkdir_parents(path);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0)
		return -errno;
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int r = errno == EWOULDBLOCK ? -EEXIST : -errno;

		n = pread(fd, buf, sizeof(buf) - 1, 0);
		buf[n > 0 ? n : 0] = '\0';
		*owner = (pid_t)strtol(buf, NULL, 10);
		close(fd);
		return r;
	}
	n = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
	if (ftruncate(fd, 0) < 0 || pwrite(fd, buf, (size_t)n, 0) != n) {
		int r = -errno;

		close(fd);
		return r;
	}
	return fd;
}

int instance_mount_busy(const char *path)
{
	char parent[PATH_MAX];
	struct stat st, pst;

	if (stat(path, &st) < 0)
		return 0;
	if (snprintf(parent, sizeof(parent), "%s/..", path) >= (int)sizeof(parent) ||
	    stat(parent, &pst) < 0)
		return 0;
	return st.st_dev != pst.st_dev;
}
