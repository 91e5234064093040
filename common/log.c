/*
 * log.c - formats one line per message and writes it with a single write(2),
 * so lines from several threads never interleave.
 */
#include "common/log.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static enum log_level cur_level = LOG_INFO;
static int log_fd = STDERR_FILENO;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void log_set_level(enum log_level level)
{
	cur_level = level;
}

enum log_level log_get_level(void)
{
	return cur_level;
}

int log_parse_level(const char *name, enum log_level *out)
{
	for (unsigned i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
		if (strcmp(name, level_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	return -EINVAL;
}

void log_set_fd(int fd)
{
	log_fd = fd < 0 ? STDERR_FILENO : fd;
}

void log_msg(enum log_level level, const char *prefix, int with_errno, const char *fmt, ...)
{
	int saved_errno = errno;
	char line[2048];
	size_t off = 0;
	struct timeval tv;
	struct tm tm;
	va_list ap;
	int n;

	if (level > cur_level)
		return;
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	off = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
	n = snprintf(line + off, sizeof(line) - off, ".%03ldZ doppel[%d] %-5s %s%s",
		     tv.tv_usec / 1000, (int)getpid(), level_names[level], prefix,
		     prefix[0] ? ": " : "");
	if (n > 0)
		off += (size_t)n;
	va_start(ap, fmt);
	n = vsnprintf(line + off, off < sizeof(line) ? sizeof(line) - off : 0, fmt, ap);
	va_end(ap);
	if (n > 0)
		off += (size_t)n;
	if (off > sizeof(line) - 2)
		off = sizeof(line) - 2;
	if (with_errno) {
		n = snprintf(line + off, sizeof(line) - off, ": %s", strerror(saved_errno));
		if (n > 0)
			off += (size_t)n;
		if (off > sizeof(line) - 2)
			off = sizeof(line) - 2;
	}
	line[off++] = '\n';
	if (write(log_fd, line, off) < 0) {
		/* Nowhere left to report a failing log sink. */
	}
	errno = saved_errno;
}
