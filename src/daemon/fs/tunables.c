/*
 * Writes to the tunables and budgets. The rule is strict so that a typo
 * never half-applies: the whole write must be one decimal number (one
 * trailing newline allowed, as echo adds); anything else, and any value
 * the engine or server refuses, is -EINVAL with nothing changed.
 */
#include <errno.h>
#include <stdint.h>

#include "daemon/fs/fs_impl.h"
#include "daemon/server.h"
#include "engine.h"

int tunable_parse(const char *buf, size_t len, uint64_t *out)
{
	uint64_t v = 0;

	if (len && buf[len - 1] == '\n')
		len--;
	if (!len)
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		unsigned d = (unsigned char)buf[i] - '0';

		if (d > 9 || v > (UINT64_MAX - d) / 10)
			return -EINVAL;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

/* Budgets are whole pages: 0 (none) or at least one page. */
static bool budget_ok(uint64_t v)
{
	return v == 0 || v >= 4096;
}

/*
 * The fs thread. The engine and the server check their own rules under
 * their locks; the budgets' "whole page" rule is checked here.
 */
int tunable_apply(struct fs *fs, const struct node *n, uint64_t v)
{
	switch ((enum gen_file)n->which) {
	case G_BUDGET:
		return engine_set_tunable(fs->e, ENGINE_TUNE_BUDGET, v);
	case G_HIGH:
		return engine_set_tunable(fs->e, ENGINE_TUNE_HIGH, v);
	case G_LOW:
		return engine_set_tunable(fs->e, ENGINE_TUNE_LOW, v);
	case G_LAUNDER:
		return engine_set_tunable(fs->e, ENGINE_TUNE_LAUNDER_PERCENT, v);
	case G_READ_AROUND_MAX:
		return engine_set_tunable(fs->e, ENGINE_TUNE_READ_AROUND_MAX, v);
	case G_CLIENT_BUDGET_MAX:
		if (!budget_ok(v))
			return -EINVAL;
		server_set_client_budget_max(fs->srv, v);
		return 0;
	case G_OBJ_BUDGET:
		if (!budget_ok(v))
			return -EINVAL;
		return server_object_set_budget(fs->srv, n->id, v);
	case G_CLI_BUDGET:
		if (!budget_ok(v))
			return -EINVAL;
		return server_client_set_budget(fs->srv, n->pid, v);
	default:
		return -EINVAL;
	}
}
