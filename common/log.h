/*
 * log.h - the one logging facility of doppel.
 *
 * Library code never prints; it logs. Each .c file defines LOG_PREFIX before
 * including this header (CRIU style) so every line says which part spoke:
 *
 *   2026-11-23T17:40:01.123Z doppel[4242] warn  proxy: replica overflow conn=12 replica=1
 *
 * Messages use key=value fields so that logs grep well. pr_perror appends
 * strerror(errno). Logging goes to stderr unless log_open_file() redirects it.
 * Thread-safe: one write(2) per line.
 */
#ifndef DOPPEL_COMMON_LOG_H
#define DOPPEL_COMMON_LOG_H

#include <stdarg.h>

enum log_level {
	LOG_ERROR = 0,
	LOG_WARN = 1,
	LOG_INFO = 2,
	LOG_DEBUG = 3,
};

#ifndef LOG_PREFIX
#define LOG_PREFIX ""
#endif

void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* Parse "error|warn|info|debug"; returns 0 or -EINVAL. */
int log_parse_level(const char *name, enum log_level *out);
/* Send log lines to fd (e.g. a file); -1 restores stderr. */
void log_set_fd(int fd);

void log_msg(enum log_level level, const char *prefix, int with_errno, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

#define pr_err(fmt, ...) log_msg(LOG_ERROR, LOG_PREFIX, 0, fmt, ##__VA_ARGS__)
#define pr_perror(fmt, ...) log_msg(LOG_ERROR, LOG_PREFIX, 1, fmt, ##__VA_ARGS__)
#define pr_warn(fmt, ...) log_msg(LOG_WARN, LOG_PREFIX, 0, fmt, ##__VA_ARGS__)
#define pr_info(fmt, ...) log_msg(LOG_INFO, LOG_PREFIX, 0, fmt, ##__VA_ARGS__)
#define pr_debug(fmt, ...)                                                     \
	do {                                                                   \
		if (log_get_level() >= LOG_DEBUG)                              \
			log_msg(LOG_DEBUG, LOG_PREFIX, 0, fmt, ##__VA_ARGS__); \
	} while (0)

#endif
