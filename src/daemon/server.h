/*
 * The control server: accepts client processes on the control socket,
 * speaks include/uvmpager/protocol.h with them, and turns their requests
 * into engine objects. Runs in the daemon's main thread.
 */
#ifndef UVMPAGERD_SERVER_H
#define UVMPAGERD_SERVER_H

#include <stdint.h>
#include <stdio.h>

struct engine;
struct daemon_config;
struct server;

int server_create(struct engine *e, const struct daemon_config *cfg, struct server **out);
void server_destroy(struct server *s);

/* The main loop: returns when a SIGTERM/SIGINT came (after letting clients go). */
int server_run(struct server *s);

/* Figures the filesystem shows; safe from any thread. */
unsigned server_client_count(struct server *s);
void server_print_clients(struct server *s, FILE *f);

#endif
