/*
 * The filesystem at /run/uvmpager (FUSE): what the daemon is doing, as
 * flat "name value" files. Runs in a thread of its own.
 */
#ifndef UVMPAGERD_FS_H
#define UVMPAGERD_FS_H

struct engine;
struct server;
struct fs;

int fs_create(struct engine *e, struct server *srv, const char *mountpoint, struct fs **out);
void fs_destroy(struct fs *fs);

#endif
