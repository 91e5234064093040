/*
 * sbuf.c - growable text buffer.
 */
#include "common/sbuf.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sbuf_init(struct sbuf *sb)
{
	sb->buf = NULL;
	sb->len = 0;
	sb->cap = 0;
}

void sbuf_free(struct sbuf *sb)
{
	free(sb->buf);
	sbuf_init(sb);
}

void sbuf_reset(struct sbuf *sb)
{
	sb->len = 0;
	if (sb->buf)
		sb->buf[0] = '\0';
}

static void sbuf_reserve(struct sbuf *sb, size_t extra)
{
	size_t need = sb->len + extra + 1;

	if (need <= sb->cap)
		return;
	size_t cap = sb->cap ? sb->cap : 256;
	while (cap < need)
		cap *= 2;
	char *nb = realloc(sb->buf, cap);
	if (!nb)
		abort();
	sb->buf = nb;
	sb->cap = cap;
}

void sbuf_append(struct sbuf *sb, const char *data, size_t len)
{
	sbuf_reserve(sb, len);
	memcpy(sb->buf + sb->len, data, len);
	sb->len += len;
	sb->buf[sb->len] = '\0';
}

void sbuf_printf(struct sbuf *sb, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	sbuf_reserve(sb, (size_t)n);
	va_start(ap, fmt);
	vsnprintf(sb->buf + sb->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	sb->len += (size_t)n;
}

void sbuf_json_str(struct sbuf *sb, const char *s)
{
	const char *run = s;

	sbuf_append(sb, "\"", 1);
	for (; s && *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c != '"' && c != '\\' && c >= 0x20)
			continue;
		sbuf_append(sb, run, (size_t)(s - run)); /* the plain bytes before c */
		run = s + 1;
		if (c == '"' || c == '\\')
			sbuf_printf(sb, "\\%c", c);
		else if (c == '\n')
			sbuf_append(sb, "\\n", 2);
		else if (c == '\t')
			sbuf_append(sb, "\\t", 2);
		else
			sbuf_printf(sb, "\\u%04x", c);
	}
	if (s)
		sbuf_append(sb, run, (size_t)(s - run));
	sbuf_append(sb, "\"", 1);
}

void sbuf_json_num(struct sbuf *sb, double v)
{
	if (!isfinite(v))
		sbuf_append(sb, "null", 4);
	else if (v == floor(v) && fabs(v) < 9e15)
		sbuf_printf(sb, "%.0f", v);
	else
		sbuf_printf(sb, "%.3f", v);
}
