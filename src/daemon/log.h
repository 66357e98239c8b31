/*
 * The daemon's log: stderr, one line per event; the journal (with its
 * priority and fields) under systemd. Warnings and errors are
 * rate-limited: a burst of LOG_BURST in LOG_WINDOW_S seconds, then a
 * count of what was dropped when the next window opens. Safe from any
 * thread.
 */
#ifndef UVMPAGERD_LOG_H
#define UVMPAGERD_LOG_H

enum log_level { LOG_ERR = 3, LOG_WARN = 4, LOG_INFO = 6, LOG_DEBUG = 7 };

#define LOG_BURST 20
#define LOG_WINDOW_S 10

void log_set_level(enum log_level level);
/* The rate limit (LOG_BURST in LOG_WINDOW_S by default); for the tests. */
void log_set_ratelimit(unsigned burst, unsigned window_s);
int log_level_parse(const char *s, enum log_level *out);
void log_msg(enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define log_err(...) log_msg(LOG_ERR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

#endif
