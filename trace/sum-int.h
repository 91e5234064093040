/*
 * sum-int.h - private to trace/: helpers shared by summarise.c and
 * expand.c: owned event copies and growable vectors of times.
 */
#ifndef DOPPEL_TRACE_SUM_INT_H
#define DOPPEL_TRACE_SUM_INT_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "trace/trace.h"

struct u64vec {
	uint64_t *v;
	size_t n, cap;
};

static inline int u64vec_push(struct u64vec *x, uint64_t val)
{
	if (x->n == x->cap) {
		size_t nc = x->cap ? x->cap * 2 : 16;
		uint64_t *nv = realloc(x->v, nc * sizeof(*nv));

		if (!nv)
			return -1;
		x->v = nv;
		x->cap = nc;
	}
	x->v[x->n++] = val;
	return 0;
}

static inline void u64vec_free(struct u64vec *x)
{
	free(x->v);
	x->v = NULL;
	x->n = x->cap = 0;
}

static inline char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

/* A copy of ev that owns its transient strings (interned ones are shared). */
static inline void ev_copy(struct trace_event *dst, const struct trace_event *src)
{
	*dst = *src;
	dst->args = dup_or_null(src->args);
	dst->fdpath = dup_or_null(src->fdpath);
	dst->retpath = dup_or_null(src->retpath);
	dst->extra = dup_or_null(src->extra);
}

static inline void ev_release(struct trace_event *ev)
{
	free((char *)ev->args);
	free((char *)ev->fdpath);
	free((char *)ev->retpath);
	free((char *)ev->extra);
	ev->args = ev->fdpath = ev->retpath = ev->extra = NULL;
}

#endif
