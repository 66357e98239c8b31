#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "build-config.h"
#include "common/util.h"
#include "daemon/log.h"
#ifdef HAVE_LIBSYSTEMD
#include <systemd/sd-journal.h>
#endif

static enum log_level max_level = LOG_INFO;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t window_start;   /* ns; under log_lock */
static unsigned window_count, suppressed;
static unsigned burst = LOG_BURST, window_s = LOG_WINDOW_S;   /* under log_lock */

void log_set_level(enum log_level level)
{
	__atomic_store_n(&max_level, level, __ATOMIC_RELAXED);
}

void log_set_ratelimit(unsigned new_burst, unsigned new_window_s)
{
	pthread_mutex_lock(&log_lock);
	burst = new_burst;
	window_s = new_window_s;
	pthread_mutex_unlock(&log_lock);
}

int log_level_parse(const char *s, enum log_level *out)
{
	static const struct { const char *name; enum log_level level; } names[] = {
		{ "error", LOG_ERR }, { "warning", LOG_WARN }, { "warn", LOG_WARN },
		{ "info", LOG_INFO }, { "debug", LOG_DEBUG },
	};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strcmp(s, names[i].name) == 0) {
			*out = names[i].level;
			return 0;
		}
	}
	return -EINVAL;
}

/*
 * Is stderr the journal's stream? systemd says which in $JOURNAL_STREAM
 * ("dev:ino"); a child that inherited the variable but not the stream
 * (a test redirecting it) must still write plain lines.
 */
static bool stderr_is_journal(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	return js && sscanf(js, "%llu:%llu", &dev, &ino) == 2 && fstat(STDERR_FILENO, &st) == 0 &&
	       st.st_dev == dev && st.st_ino == ino;
}

static void emit(int journal, enum log_level level, const char *line);

static void emit_suppressed(int journal, unsigned dropped, unsigned secs)
{
	char note[96];

	snprintf(note, sizeof(note), "%u warnings and errors suppressed in %u s", dropped, secs);
	emit(journal, LOG_WARN, note);
}

static void emit(int journal, enum log_level level, const char *line)
{
	static const char *const words[] = {
		[LOG_ERR] = "error", [LOG_WARN] = "warning", [LOG_INFO] = "info", [LOG_DEBUG] = "debug",
	};

#ifdef HAVE_LIBSYSTEMD
	if (journal) {
		sd_journal_send("MESSAGE=%s", line, "PRIORITY=%d", level,
				"SYSLOG_IDENTIFIER=uvmpagerd", "UVMPAGER_LEVEL=%s", words[level],
				NULL);
		return;
	}
#endif
	if (journal)
		fprintf(stderr, "<%d>%s\n", level, line);   /* journald reads the priority */
	else
		fprintf(stderr, "uvmpagerd: %s: %s\n", words[level], line);
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	static int journal = -1;
	unsigned dropped = 0, secs = 0;
	char line[1024];
	va_list ap;

	if (level > __atomic_load_n(&max_level, __ATOMIC_RELAXED))
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&log_lock);
	if (journal < 0)
		journal = stderr_is_journal();
	if (level <= LOG_WARN) {
		/* a failing disk must not turn into a log flood that hides the rest */
		uint64_t now = now_ns();

		if (now - window_start >= window_s * 1000000000ULL) {
			dropped = suppressed;
			secs = window_s;
			window_start = now;
			window_count = suppressed = 0;
		}
		if (++window_count > burst) {
			suppressed++;
			pthread_mutex_unlock(&log_lock);
			return;
		}
	}
	if (dropped)
		emit_suppressed(journal, dropped, secs);
	emit(journal, level, line);
	pthread_mutex_unlock(&log_lock);
}
