/*
 * config.c's calls into the server (config_apply_live, never reached by
 * the parser): the fuzz targets link config.c without the server.
 */
#include <stdint.h>

struct server;
void server_set_client_budget_max(struct server *s, uint64_t bytes);
void server_set_user_limits(struct server *s, unsigned clients, unsigned objects);

void server_set_client_budget_max(struct server *s, uint64_t bytes)
{
	(void)s;
	(void)bytes;
}

void server_set_user_limits(struct server *s, unsigned clients, unsigned objects)
{
	(void)s;
	(void)clients;
	(void)objects;
}
