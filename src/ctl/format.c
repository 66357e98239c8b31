/* Human sizes and JSON for the commands' output. */
#include <stdlib.h>
#include <string.h>

#include "ctl/ctl.h"

const char *fmt_bytes(uint64_t v, char *buf, size_t len)
{
	static const char *const unit[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB" };
	double x = (double)v;
	unsigned u = 0;

	while (x >= 1024 && u + 1 < sizeof(unit) / sizeof(unit[0])) {
		x /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, len, "%llu B", (unsigned long long)v);
	else
		snprintf(buf, len, "%.1f %s", x, unit[u]);
	return buf;
}

/* A JSON string: quotes, backslashes and control characters escaped. */
void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

/* A value is a JSON number when it is all digits; anything else a string. */
static bool is_number(const char *v)
{
	if (!*v)
		return false;
	for (; *v; v++)
		if (*v < '0' || *v > '9')
			return false;
	return true;
}

/* Keys in the file's order, so scripts see what the man page lists. */
void json_kv(FILE *f, const struct kv *kv)
{
	fputc('{', f);
	for (unsigned i = 0; i < kv->n; i++) {
		if (i)
			fputc(',', f);
		json_str(f, kv->key[i]);
		fputc(':', f);
		if (is_number(kv->val[i]))
			fputs(kv->val[i], f);
		else
			json_str(f, kv->val[i]);
	}
	fputc('}', f);
}
