/*
 * One daemon per control socket: a lock file beside the socket
 * ("<socket>.lock", holding the owner's pid) taken before anything is
 * created, so that a second daemon on the same socket stops with "already
 * running, pid N" and leaves the first one's socket, mount and swap file
 * alone.
 */
#ifndef UVMPAGERD_INSTANCE_H
#define UVMPAGERD_INSTANCE_H

#include <sys/types.h>

/*
 * Creates the socket's directory if missing, then takes the lock: its fd
 * (keep it open for the daemon's life), -EEXIST with *owner set when
 * another daemon holds it, or another negative errno.
 */
int instance_lock(const char *socket_path, pid_t *owner);
/*
 * Is path a live mount point (a different filesystem from its parent)?
 * A stale FUSE mount (ENOTCONN) is not: the filesystem clears those.
 */
int instance_mount_busy(const char *path);

#endif
