/*
 * text-int.h - private to trace/: pieces of the trace text format that
 * the .dtt writer, the call-tree view and the SVG writer share.
 */
#ifndef DOPPEL_TRACE_TEXT_INT_H
#define DOPPEL_TRACE_TEXT_INT_H

#include <stdint.h>
#include <stdio.h>

#include "trace/trace.h"

/* Decimal digits of v at p; returns the end (no printf on hot paths). */
static inline char *trace_put_u64(char *p, uint64_t v)
{
	char tmp[24];
	int n = 0;

	do
		tmp[n++] = (char)('0' + v % 10);
	while ((v /= 10) != 0);
	while (n)
		*p++ = tmp[--n];
	return p;
}

static inline char *trace_put_i64(char *p, int64_t v)
{
	if (v < 0) {
		*p++ = '-';
		return trace_put_u64(p, (uint64_t)0 - (uint64_t)v);
	}
	return trace_put_u64(p, (uint64_t)v);
}

/* ns as "SECONDS.NNNNNNNNN" */
void trace_text_secs(FILE *out, uint64_t ns);
/* "[prog:]pid/tid", prog reduced to [A-Za-z0-9_.-] */
void trace_text_proc(FILE *out, const char *prog, int32_t pid, int32_t tid);
/* An event's body after its mark, as in a .dtt line. */
void trace_text_body(FILE *out, const struct trace_event *ev);
char trace_text_mark(int kind);

#endif
