/*
 * sbuf.h - a growable text buffer for building replies (JSON, Prometheus text,
 * tables). Used off the hot path only: status pages, reports, CLI output.
 * Allocation failure aborts: these buffers are small and bounded by what they
 * describe.
 */
#ifndef DOPPEL_COMMON_SBUF_H
#define DOPPEL_COMMON_SBUF_H

#include <stddef.h>

struct sbuf {
	char *buf;
	size_t len;
	size_t cap;
};

void sbuf_init(struct sbuf *sb);
void sbuf_free(struct sbuf *sb);
void sbuf_reset(struct sbuf *sb);
void sbuf_printf(struct sbuf *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sbuf_append(struct sbuf *sb, const char *data, size_t len);
/*
 * Appends s as a JSON string literal, quotes included: the one JSON string
 * escaper of the tree (quotes, backslashes and control characters escaped).
 */
void sbuf_json_str(struct sbuf *sb, const char *s);
/* Appends a number, or null when v is NaN or infinite (JSON has neither). */
void sbuf_json_num(struct sbuf *sb, double v);

#endif
