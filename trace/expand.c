/*
 * expand.c - undoes summarise: every folded block is written out as all of
 * its iterations again (the lossless direction of Flowdar's summary).
 *
 * A block's events are held (per thread) from its BLOCK_BEGIN to its
 * BLOCK_END, then replayed count times. Depths: iteration k of a block whose
 * iterations change the depth by delta (recursion) is shifted by k*delta, and
 * the events after a descent block by (count-1)*delta until its ascent.
 * Times: with the "t=" list summarise --keep-times writes, every event gets
 * its recorded time back; without it, iterations are spread evenly over the
 * block's span (first and last iteration at their true times).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "trace/imap.h"
#include "trace/sum-int.h"
#include "trace/trace.h"

#define MAX_THREADS 65536
#define MAX_DEPTH_TRACK 65536

struct xthread {
	struct trace_event *buf; /* the outermost open block of this thread */
	size_t n, cap;
	int open;
	int32_t shift;
	uint64_t last_ts;
	uint64_t *enter_ts; /* by depth, to recompute exit durations */
	uint32_t ecap;
};

struct expand {
	struct trace_sink base;
	struct trace_sink *next;
	struct imap threads;
	uint64_t max_iterations, max_events, emitted;
	int err;
};

/* Times taken from a "t=" delta list. */
struct tsrc {
	const char *p;
	uint64_t prev;
};

static uint64_t tsrc_next(struct tsrc *s)
{
	char *e;
	long long d;

	if (!s->p || !*s->p)
		return s->prev;
	d = strtoll(s->p, &e, 10);
	if (e == s->p) {
		s->p = NULL;
		return s->prev;
	}
	s->p = *e == ',' ? e + 1 : e;
	s->prev += (uint64_t)d; /* wraps on nonsense, never undefined */
	return s->prev;
}

static void emit(struct expand *X, struct xthread *t, const struct trace_event *src, int32_t shift,
		 uint64_t ts)
{
	struct trace_event ev = *src;
	int rc;

	if (X->err)
		return;
	if (++X->emitted > X->max_events) {
		/* nested blocks multiply: the whole expansion has a bound too */
		X->err = -EFBIG;
		snprintf(X->base.err, sizeof(X->base.err),
			 "expanding the folded blocks gives more than %llu events",
			 (unsigned long long)X->max_events);
		return;
	}
	ev.depth = src->depth + shift;
	ev.ts = ts;
	if (ev.depth >= 0 && ev.depth < MAX_DEPTH_TRACK &&
	    (ev.kind == TRACE_ENTER || ev.kind == TRACE_EXIT)) {
		uint32_t d = (uint32_t)ev.depth;

		if (d >= t->ecap) {
			uint32_t nc = t->ecap ? t->ecap : 64;
			uint64_t *n;

			while (nc <= d)
				nc *= 2;
			n = realloc(t->enter_ts, nc * sizeof(*n));
			if (n) {
				memset(n + t->ecap, 0xff, (nc - t->ecap) * sizeof(*n));
				t->enter_ts = n;
				t->ecap = nc;
			}
		}
		if (d < t->ecap) {
			if (ev.kind == TRACE_ENTER)
				t->enter_ts[d] = ts;
			else if ((ev.flags & TRACE_F_DUR) && t->enter_ts[d] != UINT64_MAX &&
				 ts >= t->enter_ts[d])
				ev.dur = ts - t->enter_ts[d];
		}
	}
	t->last_ts = ts;
	rc = trace_sink_event(X->next, &ev);
	if (rc < 0) {
		X->err = rc;
		snprintf(X->base.err, sizeof(X->base.err), "%s", X->next->err);
	}
}

static size_t block_end(const struct trace_event *v, size_t i, size_t n)
{
	int depth = 0;

	for (size_t j = i; j < n; j++) {
		if (v[j].kind == TRACE_BLOCK_BEGIN)
			depth++;
		else if (v[j].kind == TRACE_BLOCK_END && --depth == 0)
			return j;
	}
	return n;
}

static int32_t expand_seq(struct expand *X, struct xthread *t, const struct trace_event *v,
			  size_t a, size_t b, int32_t shift, struct tsrc *src, uint64_t toff);

static int32_t expand_block(struct expand *X, struct xthread *t, const struct trace_event *v,
			    size_t i, size_t j, int32_t shift, struct tsrc *src, uint64_t toff)
{
	const struct trace_event *beg = &v[i], *end = &v[j];
	uint64_t n = beg->count ? beg->count : 1;
	int delta = beg->delta;
	uint64_t step = 0;
	struct tsrc own;

	/* a block is at most as big as the trace it came from */
	if (n > X->max_iterations || (j - i) * n > X->max_events) {
		X->err = -EFBIG;
		snprintf(X->base.err, sizeof(X->base.err),
			 "a block of %llu iterations is too large to expand",
			 (unsigned long long)n);
		return shift;
	}
	if (delta < -1 || delta > 1) {
		X->err = -EINVAL;
		snprintf(X->base.err, sizeof(X->base.err), "a block with depth change %d", delta);
		return shift;
	}

	/* the first iteration, as written */
	expand_seq(X, t, v, i + 1, j, shift, src, toff);
	if (n == 1)
		return shift;
	if (!src && (end->flags & TRACE_F_TIMES) && end->extra) {
		own.p = end->extra;
		own.prev = t->last_ts;
		for (uint64_t k = 1; k < n && !X->err; k++)
			expand_seq(X, t, v, i + 1, j, shift + (int32_t)k * delta, &own, 0);
	} else {
		/* spread iterations 2..n evenly so the last one ends with the block */
		uint64_t first = UINT64_MAX, last = 0;

		for (size_t k = i + 1; k < j; k++) {
			if (v[k].kind == TRACE_BLOCK_BEGIN || v[k].kind == TRACE_BLOCK_END)
				continue;
			if (v[k].ts < first)
				first = v[k].ts;
			if (v[k].ts > last)
				last = v[k].ts;
		}
		if (first != UINT64_MAX && beg->dur > last - first)
			step = (beg->dur - (last - first)) / (n - 1);
		for (uint64_t k = 1; k < n && !X->err; k++)
			expand_seq(X, t, v, i + 1, j, shift + (int32_t)k * delta, src,
				   toff + k * step);
	}
	return shift + (int32_t)(n - 1) * delta;
}

static int32_t expand_seq(struct expand *X, struct xthread *t, const struct trace_event *v,
			  size_t a, size_t b, int32_t shift, struct tsrc *src, uint64_t toff)
{
	for (size_t i = a; i < b && !X->err;) {
		if (v[i].kind == TRACE_BLOCK_BEGIN) {
			size_t j = block_end(v, i, b);

			if (j >= b)
				return shift;
			shift = expand_block(X, t, v, i, j, shift, src, toff);
			i = j + 1;
			continue;
		}
		if (v[i].kind != TRACE_BLOCK_END)
			emit(X, t, &v[i], shift, src ? tsrc_next(src) : v[i].ts + toff);
		i++;
	}
	return shift;
}

static void drop_buf(struct xthread *t)
{
	for (size_t i = 0; i < t->n; i++)
		ev_release(&t->buf[i]);
	t->n = 0;
	t->open = 0;
}

static struct xthread *thread_get(struct expand *X, const struct trace_event *ev)
{
	uint64_t key = (uint64_t)(uint32_t)ev->tid | ((uint64_t)(uint32_t)ev->pid << 32);
	uint64_t *v = imap_get(&X->threads, key);
	struct xthread *t;

	if (v)
		return (struct xthread *)(uintptr_t)*v;
	t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	if (imap_put(&X->threads, key, (uint64_t)(uintptr_t)t) < 0) {
		free(t);
		return NULL;
	}
	return t;
}

static void thread_free(struct xthread *t)
{
	drop_buf(t);
	free(t->buf);
	free(t->enter_ts);
	free(t);
}

/* Input ended (or a new stream began) inside a block: write what we hold
 * without the unfinished block markers. */
static void flush_partial(struct expand *X)
{
	uint64_t k, v;

	for (size_t it = 0; imap_next(&X->threads, &it, &k, &v);) {
		struct xthread *t = (struct xthread *)(uintptr_t)v;

		for (size_t i = 0; i < t->n; i++)
			if (t->buf[i].kind != TRACE_BLOCK_BEGIN &&
			    t->buf[i].kind != TRACE_BLOCK_END)
				emit(X, t, &t->buf[i], t->shift, t->buf[i].ts);
		thread_free(t);
	}
	imap_free(&X->threads);
}

static int expand_event(struct trace_sink *s, const struct trace_event *ev)
{
	struct expand *X = (struct expand *)s;
	struct xthread *t;

	if (X->err)
		return X->err;
	if (ev->kind == TRACE_STREAM) {
		int rc;

		flush_partial(X);
		rc = trace_sink_event(X->next, ev);
		if (rc < 0)
			snprintf(s->err, sizeof(s->err), "%s", X->next->err);
		return rc;
	}
	t = thread_get(X, ev);
	if (!t) {
		snprintf(s->err, sizeof(s->err), "expand: too many threads");
		return -ENOSPC;
	}
	if (!t->open && ev->kind != TRACE_BLOCK_BEGIN) {
		if (ev->kind != TRACE_BLOCK_END)
			emit(X, t, ev, t->shift, ev->ts);
		return X->err;
	}
	if (t->n == t->cap) {
		size_t nc = t->cap ? t->cap * 2 : 256;
		struct trace_event *nb = realloc(t->buf, nc * sizeof(*nb));

		if (!nb)
			return -ENOMEM;
		t->buf = nb;
		t->cap = nc;
	}
	ev_copy(&t->buf[t->n++], ev);
	if (ev->kind == TRACE_BLOCK_BEGIN)
		t->open++;
	else if (ev->kind == TRACE_BLOCK_END && --t->open == 0) {
		t->shift = expand_seq(X, t, t->buf, 0, t->n, t->shift, NULL, 0);
		drop_buf(t);
	}
	return X->err;
}

static int expand_end(struct trace_sink *s)
{
	struct expand *X = (struct expand *)s;

	flush_partial(X);
	if (X->err)
		return X->err;
	return trace_sink_end(X->next);
}

static void expand_free(struct trace_sink *s)
{
	struct expand *X = (struct expand *)s;
	uint64_t k, v;

	for (size_t it = 0; imap_next(&X->threads, &it, &k, &v);)
		thread_free((struct xthread *)(uintptr_t)v);
	imap_free(&X->threads);
	trace_sink_free(X->next);
	free(X);
}

static const struct trace_sink_ops expand_ops = {expand_event, expand_end, expand_free};

struct trace_sink *trace_expand_new(struct trace_sink *next)
{
	return trace_expand_new_limited(next, 1ULL << 36);
}

struct trace_sink *trace_expand_new_limited(struct trace_sink *next, uint64_t max_events)
{
	struct expand *X = calloc(1, sizeof(*X));

	if (!X)
		return NULL;
	X->max_events = max_events;
	X->max_iterations = max_events;
	X->base.ops = &expand_ops;
	X->next = next;
	imap_init(&X->threads, MAX_THREADS);
	return &X->base;
}
