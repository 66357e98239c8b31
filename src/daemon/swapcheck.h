#ifndef UVMPAGER_DAEMON_SWAPCHECK_H
#define UVMPAGER_DAEMON_SWAPCHECK_H

/*
 * What the swap module cannot judge alone about the filesystem under the
 * swap file, said once at start: a file on tmpfs or ramfs (its "swapped"
 * pages stay in RAM), and a sparse file whose filesystem has less room
 * left than the file may need (its writes will fail with ENOSPC later, and
 * pages then stay resident over budget). Warnings only: the daemon starts.
 */
void swapcheck_warn(const char *path);

#endif
