/*
 * coarsen.c - Flowdar's coarsening primitive: shed detail by call depth or by
 * name, keeping the time it took.
 *
 * Events at depth >= depth, and calls matching a --hide pattern with
 * everything they call, are hidden. Each run of hidden events between two
 * kept events of a thread becomes one TRACE_HIDDEN event at the hidden level:
 * how many calls were hidden there (counted at the level where hiding
 * starts, once per iteration inside folded blocks), under which name (or
 * "..." when several), and their total duration. The kept events are
 * untouched, so the parent's own duration still includes what was hidden.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "trace/imap.h"
#include "trace/trace.h"

struct cthread {
	int32_t hide_at; /* depth of the call being hidden by pattern, or -1 */
	const char *hide_name;
	/* the run of hidden events not yet reported */
	int pending;
	uint64_t count, dur, ts;
	int32_t depth;
	const char *name;
	uint64_t *mult; /* iteration counts of hidden blocks */
	uint32_t nm, mcap;
	uint64_t *enter_ts; /* top-level hidden calls' entry, by depth */
	uint32_t ecap;
};

struct coarsen {
	struct trace_sink base;
	struct trace_sink *next;
	int depth;
	char **hide;
	size_t nhide;
	struct imap threads;
	int err;
};

static int hidden_name(const struct coarsen *C, const char *name)
{
	for (size_t i = 0; i < C->nhide; i++)
		if (trace_glob_match(C->hide[i], name))
			return 1;
	return 0;
}

static struct cthread *cthread_get(struct coarsen *C, const struct trace_event *ev)
{
	uint64_t key = (uint64_t)(uint32_t)ev->tid | ((uint64_t)(uint32_t)ev->pid << 32);
	uint64_t *v = imap_get(&C->threads, key);
	struct cthread *t;

	if (v)
		return (struct cthread *)(uintptr_t)*v;
	t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->hide_at = -1;
	if (imap_put(&C->threads, key, (uint64_t)(uintptr_t)t) < 0) {
		free(t);
		return NULL;
	}
	return t;
}

static int forward(struct coarsen *C, const struct trace_event *ev)
{
	int rc = trace_sink_event(C->next, ev);

	if (rc < 0) {
		C->err = rc;
		snprintf(C->base.err, sizeof(C->base.err), "%s", C->next->err);
	}
	return rc;
}

static void report(struct coarsen *C, struct cthread *t, const struct trace_event *like)
{
	struct trace_event h;

	if (!t->pending)
		return;
	trace_event_init(&h);
	h.kind = TRACE_HIDDEN;
	h.ts = t->ts;
	h.pid = like->pid;
	h.tid = like->tid;
	h.prog = like->prog;
	h.depth = t->depth;
	h.name = t->name;
	h.count = t->count;
	h.dur = t->dur;
	h.flags = TRACE_F_DUR;
	t->pending = 0;
	forward(C, &h);
}

static uint64_t cmult(const struct cthread *t)
{
	uint64_t m = 1;

	for (uint32_t i = 0; i < t->nm; i++)
		m *= t->mult[i];
	return m;
}

/* One more top-level hidden call (or leaf) of this run. */
static void add_hidden(struct cthread *t, const struct trace_event *ev, int32_t level)
{
	if (!t->pending) {
		t->pending = 1;
		t->count = 0;
		t->dur = 0;
		t->ts = ev->ts;
		t->depth = level;
		t->name = ev->name;
	} else if (t->name != ev->name) {
		t->name = trace_intern_str("...");
	}
	t->count += cmult(t);
}

static void set_enter_ts(struct cthread *t, int32_t d, uint64_t ts)
{
	if (d < 0 || d > 65535)
		return;
	if ((uint32_t)d >= t->ecap) {
		uint32_t nc = t->ecap ? t->ecap : 64;
		uint64_t *n;

		while (nc <= (uint32_t)d)
			nc *= 2;
		n = realloc(t->enter_ts, nc * sizeof(*n));
		if (!n)
			return;
		memset(n + t->ecap, 0xff, (nc - t->ecap) * sizeof(*n));
		t->enter_ts = n;
		t->ecap = nc;
	}
	t->enter_ts[d] = ts;
}

static int coarsen_event(struct trace_sink *s, const struct trace_event *ev)
{
	struct coarsen *C = (struct coarsen *)s;
	struct cthread *t;
	int hide, top, by_name;

	if (C->err)
		return C->err;
	if (ev->kind == TRACE_STREAM) {
		uint64_t k, v;

		for (size_t it = 0; imap_next(&C->threads, &it, &k, &v);) {
			struct cthread *ct = (struct cthread *)(uintptr_t)v;
			struct trace_event like = {.pid = (int32_t)(k >> 32), .tid = (int32_t)k};

			report(C, ct, &like);
			free(ct->mult);
			free(ct->enter_ts);
			free(ct);
		}
		imap_free(&C->threads);
		return forward(C, ev);
	}
	t = cthread_get(C, ev);
	if (!t)
		return forward(C, ev);
	/* hidden: inside a hidden call, below the cut, or a matching name */
	hide = t->hide_at >= 0 || (C->depth >= 0 && ev->depth >= C->depth);
	by_name = 0;
	if (!hide && C->nhide && ev->kind != TRACE_EXIT && ev->kind != TRACE_BLOCK_END &&
	    ev->kind != TRACE_HIDDEN && ev->kind != TRACE_MSG && hidden_name(C, ev->name)) {
		hide = by_name = 1;
		if (ev->kind == TRACE_ENTER) {
			t->hide_at = ev->depth;
			t->hide_name = ev->name;
		}
	}
	if (!hide) {
		report(C, t, ev);
		return forward(C, ev);
	}
	/* the level where hiding starts: a call there is one hidden call */
	if (by_name)
		top = 1;
	else if (t->hide_at >= 0)
		top = ev->depth == t->hide_at;
	else
		top = ev->depth == C->depth;
	switch (ev->kind) {
	case TRACE_ENTER:
		if (top) {
			add_hidden(t, ev, ev->depth);
			set_enter_ts(t, ev->depth, ev->ts);
		}
		break;
	case TRACE_EXIT:
		if (top) {
			uint64_t d = 0;

			if (ev->flags & TRACE_F_DUR)
				d = ev->dur;
			else if (ev->depth >= 0 && (uint32_t)ev->depth < t->ecap &&
				 t->enter_ts[ev->depth] != UINT64_MAX &&
				 ev->ts >= t->enter_ts[ev->depth])
				d = ev->ts - t->enter_ts[ev->depth];
			if (!t->pending)
				add_hidden(t, ev, ev->depth); /* entered before the trace */
			t->dur += d * cmult(t);
			if (t->hide_at >= 0 && ev->depth == t->hide_at && ev->name == t->hide_name)
				t->hide_at = -1;
		}
		break;
	case TRACE_BLOCK_BEGIN:
		if (t->nm == t->mcap) {
			uint32_t nc = t->mcap ? t->mcap * 2 : 8;
			uint64_t *nm = realloc(t->mult, nc * sizeof(*nm));

			if (!nm)
				return -ENOMEM;
			t->mult = nm;
			t->mcap = nc;
		}
		t->mult[t->nm++] = ev->count ? ev->count : 1;
		break;
	case TRACE_BLOCK_END:
		if (t->nm)
			t->nm--;
		break;
	default:
		if (top) {
			add_hidden(t, ev, ev->depth);
			t->dur += ((ev->flags & TRACE_F_DUR) ? ev->dur : 0) * cmult(t);
		}
	}
	return 0;
}

static int coarsen_end(struct trace_sink *s)
{
	struct coarsen *C = (struct coarsen *)s;
	uint64_t k, v;

	for (size_t it = 0; imap_next(&C->threads, &it, &k, &v);) {
		struct cthread *t = (struct cthread *)(uintptr_t)v;
		struct trace_event like = {.pid = (int32_t)(k >> 32), .tid = (int32_t)k};

		report(C, t, &like);
	}
	if (C->err)
		return C->err;
	return trace_sink_end(C->next);
}

static void coarsen_free(struct trace_sink *s)
{
	struct coarsen *C = (struct coarsen *)s;
	uint64_t k, v;

	for (size_t it = 0; imap_next(&C->threads, &it, &k, &v);) {
		struct cthread *t = (struct cthread *)(uintptr_t)v;

		free(t->mult);
		free(t->enter_ts);
		free(t);
	}
	imap_free(&C->threads);
	for (size_t i = 0; i < C->nhide; i++)
		free(C->hide[i]);
	free(C->hide);
	trace_sink_free(C->next);
	free(C);
}

static const struct trace_sink_ops coarsen_ops = {coarsen_event, coarsen_end, coarsen_free};

struct trace_sink *trace_coarsen_new(const struct trace_coarsen_opts *o, struct trace_sink *next)
{
	struct coarsen *C = calloc(1, sizeof(*C));

	if (!C)
		return NULL;
	C->base.ops = &coarsen_ops;
	C->next = next;
	C->depth = o->depth;
	if (o->nhide) {
		C->hide = calloc(o->nhide, sizeof(*C->hide));
		if (!C->hide) {
			free(C);
			return NULL;
		}
		for (size_t i = 0; i < o->nhide; i++)
			C->hide[i] = strdup(o->hide[i]);
		C->nhide = o->nhide;
	}
	imap_init(&C->threads, 1u << 20);
	return &C->base;
}
