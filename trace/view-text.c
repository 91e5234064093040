/*
 * view-text.c - the outputs a person reads in a terminal:
 *
 *  - the call tree (uftrace replay style): one line per call, a leaf call's
 *    entry and exit merged into "f();" with its duration, a call with children
 *    opened with "{" and closed with its duration; folded blocks shown as
 *    "loop f x1000 { ... }" with their span and per-iteration range.
 *  - the report: a flat profile per function or syscall: calls, total time,
 *    self time, average; calls inside folded blocks count once per iteration.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "trace/imap.h"
#include "trace/sum-int.h"
#include "trace/text-int.h"
#include "trace/trace.h"

/* ------------------------------------------------------------------ tree */

struct tree {
	struct trace_sink base;
	FILE *out;
	struct trace_view_opts o;
	int have_t0;
	size_t lines, dropped;
	struct imap pending; /* thread -> held enter (struct trace_event *), waiting for
				its exit to print "f();" on one line */
	struct imap blocks;  /* thread -> open blocks */
};

static uint64_t thread_key(const struct trace_event *ev)
{
	return (uint64_t)(uint32_t)ev->tid | ((uint64_t)(uint32_t)ev->pid << 32);
}

static void tree_prefix(struct tree *T, const struct trace_event *ev, const char *dur, long level)
{
	uint64_t rel = ev->ts >= T->o.t0 ? ev->ts - T->o.t0 : 0;

	fprintf(T->out, "%4llu.%06llu ", (unsigned long long)(rel / TRACE_NS),
		(unsigned long long)(rel % TRACE_NS / 1000));
	if (T->o.show_tid) {
		char who[64];
		FILE *m = fmemopen(who, sizeof(who), "w");

		if (m) {
			trace_text_proc(m, ev->prog, ev->pid, ev->tid);
			fclose(m);
			who[sizeof(who) - 1] = '\0';
		} else {
			snprintf(who, sizeof(who), "%d", ev->tid);
		}
		fprintf(T->out, "%14s ", who);
	}
	fprintf(T->out, "%11s | ", dur ? dur : "");
	if (level < 0)
		level = 0;
	for (long i = 0; i < level && i < 200; i++)
		fputs("  ", T->out);
}

static int tree_room(struct tree *T)
{
	if (T->o.max_lines && T->lines >= T->o.max_lines) {
		T->dropped++;
		return 0;
	}
	T->lines++;
	return 1;
}

static long level_of(struct tree *T, const struct trace_event *ev)
{
	uint64_t *b = imap_get(&T->blocks, thread_key(ev));

	return (long)ev->depth + (long)(b ? *b : 0);
}

static void print_enter_open(struct tree *T, const struct trace_event *enter)
{
	if (!tree_room(T))
		return;
	tree_prefix(T, enter, NULL, level_of(T, enter));
	fprintf(T->out, "%s(%s) {\n", enter->name, enter->args ? enter->args : "");
}

static void flush_pending(struct tree *T, const struct trace_event *ev)
{
	uint64_t *v = imap_get(&T->pending, thread_key(ev));
	struct trace_event *p;

	if (!v)
		return;
	p = (struct trace_event *)(uintptr_t)*v;
	imap_del(&T->pending, thread_key(ev));
	print_enter_open(T, p);
	ev_release(p);
	free(p);
}

static int tree_event(struct trace_sink *s, const struct trace_event *ev)
{
	struct tree *T = (struct tree *)s;
	char d[32];
	uint64_t *v;

	if (!T->have_t0) {
		if (!T->o.t0)
			T->o.t0 = ev->ts;
		T->have_t0 = 1;
	}
	if (ev->kind == TRACE_STREAM) {
		fprintf(T->out, "== stream %s %s ==\n", ev->name, ev->extra ? ev->extra : "");
		return 0;
	}
	v = imap_get(&T->pending, thread_key(ev));
	if (v && ev->kind == TRACE_EXIT) {
		struct trace_event *p = (struct trace_event *)(uintptr_t)*v;

		imap_del(&T->pending, thread_key(ev));
		if (p->name == ev->name && p->depth == ev->depth) {
			/* a leaf call: one line */
			if (tree_room(T)) {
				tree_prefix(T, p,
					    ev->flags & TRACE_F_DUR
						    ? trace_fmt_dur(ev->dur, d, sizeof(d))
						    : NULL,
					    level_of(T, p));
				fprintf(T->out, "%s(%s)", ev->name, p->args ? p->args : "");
				if (ev->flags & TRACE_F_RET)
					fprintf(T->out, " = %lld", (long long)ev->ret);
				fputs(";\n", T->out);
			}
			ev_release(p);
			free(p);
			return 0;
		}
		print_enter_open(T, p);
		ev_release(p);
		free(p);
	} else if (v) {
		flush_pending(T, ev);
	}
	switch (ev->kind) {
	case TRACE_ENTER: {
		struct trace_event *p = malloc(sizeof(*p));

		if (!p)
			return -ENOMEM;
		ev_copy(p, ev);
		if (imap_put(&T->pending, thread_key(ev), (uint64_t)(uintptr_t)p) < 0) {
			print_enter_open(T, p);
			ev_release(p);
			free(p);
		}
		return 0;
	}
	case TRACE_EXIT:
		if (!tree_room(T))
			return 0;
		tree_prefix(T, ev,
			    ev->flags & TRACE_F_DUR ? trace_fmt_dur(ev->dur, d, sizeof(d)) : NULL,
			    level_of(T, ev));
		if (ev->flags & TRACE_F_RET)
			fprintf(T->out, "} = %lld /* %s */\n", (long long)ev->ret, ev->name);
		else
			fprintf(T->out, "} /* %s */\n", ev->name);
		return 0;
	case TRACE_BLOCK_BEGIN: {
		char a[32], b[32];
		uint64_t *nb = imap_get(&T->blocks, thread_key(ev));

		if (tree_room(T)) {
			tree_prefix(T, ev, trace_fmt_dur(ev->dur, d, sizeof(d)), level_of(T, ev));
			fprintf(T->out, "%s %s \xc3\x97%llu (%s..%s each) {\n",
				ev->block == TRACE_BLOCK_LOOP
					? "loop"
					: (ev->block == TRACE_BLOCK_DESCEND ? "recursion"
									    : "return"),
				ev->name, (unsigned long long)ev->count,
				trace_fmt_dur(ev->min, a, sizeof(a)),
				trace_fmt_dur(ev->max, b, sizeof(b)));
		}
		imap_put(&T->blocks, thread_key(ev), (nb ? *nb : 0) + 1);
		return 0;
	}
	case TRACE_BLOCK_END: {
		uint64_t *nb = imap_get(&T->blocks, thread_key(ev));

		if (nb && *nb)
			(*nb)--;
		if (tree_room(T)) {
			tree_prefix(T, ev, NULL, level_of(T, ev));
			fprintf(T->out, "} \xc3\x97%llu\n", (unsigned long long)ev->count);
		}
		return 0;
	}
	default:
		break;
	}
	if (!tree_room(T))
		return 0;
	tree_prefix(T, ev,
		    (ev->flags & TRACE_F_DUR) || ev->kind == TRACE_HIDDEN
			    ? trace_fmt_dur(ev->dur, d, sizeof(d))
			    : NULL,
		    level_of(T, ev));
	if (ev->kind == TRACE_SYSCALL) {
		struct trace_event tmp = *ev;

		tmp.flags &= (uint16_t)~TRACE_F_DUR;
		trace_text_body(T->out, &tmp);
		putc('\n', T->out);
	} else if (ev->kind == TRACE_HIDDEN) {
		fprintf(T->out, "... %s \xc3\x97%llu hidden\n", ev->name,
			(unsigned long long)ev->count);
	} else if (ev->kind == TRACE_MSG) {
		fputs("<- ", T->out);
		trace_text_body(T->out, ev);
		putc('\n', T->out);
	} else {
		putc(trace_text_mark(ev->kind), T->out);
		putc(' ', T->out);
		trace_text_body(T->out, ev);
		putc('\n', T->out);
	}
	return 0;
}

static int tree_end(struct trace_sink *s)
{
	struct tree *T = (struct tree *)s;
	uint64_t k, v;

	for (size_t it = 0; imap_next(&T->pending, &it, &k, &v);) {
		struct trace_event *p = (struct trace_event *)(uintptr_t)v;

		print_enter_open(T, p);
		ev_release(p);
		free(p);
	}
	imap_free(&T->pending);
	if (T->dropped)
		fprintf(T->out, "... %zu more lines not shown (--max-lines)\n", T->dropped);
	if (fflush(T->out) != 0) {
		snprintf(s->err, sizeof(s->err), "writing the call tree: %s", strerror(errno));
		return -EIO;
	}
	return 0;
}

static void tree_free(struct trace_sink *s)
{
	struct tree *T = (struct tree *)s;
	uint64_t k, v;

	for (size_t it = 0; imap_next(&T->pending, &it, &k, &v);) {
		struct trace_event *p = (struct trace_event *)(uintptr_t)v;

		ev_release(p);
		free(p);
	}
	imap_free(&T->pending);
	imap_free(&T->blocks);
	free(T);
}

static const struct trace_sink_ops tree_ops = {tree_event, tree_end, tree_free};

struct trace_sink *trace_tree_writer_new(FILE *out, const struct trace_view_opts *o)
{
	struct tree *T = calloc(1, sizeof(*T));

	if (!T)
		return NULL;
	T->base.ops = &tree_ops;
	T->out = out;
	if (o)
		T->o = *o;
	imap_init(&T->pending, 1u << 20);
	imap_init(&T->blocks, 1u << 20);
	return &T->base;
}

/* ---------------------------------------------------------------- report */

struct fstat {
	const char *name;
	uint64_t calls, total, self, min, max, timed;
};

struct rframe {
	const char *name;
	uint64_t child; /* time spent in children */
	uint64_t mult;
};

struct rthread {
	struct rframe *st;
	uint32_t n, cap;
	uint64_t *mults; /* open blocks' iteration counts */
	uint32_t nm, mcap;
};

struct report {
	struct trace_sink base;
	FILE *out;
	size_t max;
	struct imap funcs; /* interned name -> struct fstat * */
	struct imap threads;
	uint64_t events, folded;
	int estimated;
};

static struct fstat *fstat_get(struct report *R, const char *name)
{
	uint64_t *v = imap_get(&R->funcs, (uint64_t)(uintptr_t)name);
	struct fstat *f;

	if (v)
		return (struct fstat *)(uintptr_t)*v;
	f = calloc(1, sizeof(*f));
	if (!f)
		return NULL;
	f->name = name;
	f->min = UINT64_MAX;
	if (imap_put(&R->funcs, (uint64_t)(uintptr_t)name, (uint64_t)(uintptr_t)f) < 0) {
		free(f);
		return NULL;
	}
	return f;
}

static struct rthread *rthread_get(struct report *R, const struct trace_event *ev)
{
	uint64_t *v = imap_get(&R->threads, thread_key(ev));
	struct rthread *t;

	if (v)
		return (struct rthread *)(uintptr_t)*v;
	t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	if (imap_put(&R->threads, thread_key(ev), (uint64_t)(uintptr_t)t) < 0) {
		free(t);
		return NULL;
	}
	return t;
}

static uint64_t rmult(const struct rthread *t)
{
	uint64_t m = 1;

	for (uint32_t i = 0; i < t->nm; i++)
		m *= t->mults[i];
	return m;
}

static void account(struct fstat *f, uint64_t calls, uint64_t dur, int timed, uint64_t self)
{
	f->calls += calls;
	if (!timed)
		return;
	f->timed += calls;
	f->total += dur * calls;
	f->self += self * calls;
	if (dur < f->min)
		f->min = dur;
	if (dur > f->max)
		f->max = dur;
}

static int report_event(struct trace_sink *s, const struct trace_event *ev)
{
	struct report *R = (struct report *)s;
	struct rthread *t = rthread_get(R, ev);
	struct fstat *f;
	uint64_t m;

	R->events++;
	if (!t)
		return 0;
	m = rmult(t);
	switch (ev->kind) {
	case TRACE_ENTER:
		if (t->n == t->cap) {
			uint32_t nc = t->cap ? t->cap * 2 : 64;
			struct rframe *ns = realloc(t->st, nc * sizeof(*ns));

			if (!ns)
				return -ENOMEM;
			t->st = ns;
			t->cap = nc;
		}
		t->st[t->n].name = ev->name;
		t->st[t->n].child = 0;
		t->st[t->n].mult = m;
		t->n++;
		break;
	case TRACE_EXIT: {
		uint64_t child = 0, dur = ev->flags & TRACE_F_DUR ? ev->dur : 0;

		if (t->n && t->st[t->n - 1].name == ev->name) {
			child = t->st[t->n - 1].child;
			t->n--;
		}
		f = fstat_get(R, ev->name);
		if (f)
			account(f, m, dur, (ev->flags & TRACE_F_DUR) != 0,
				dur > child ? dur - child : 0);
		if (t->n && (ev->flags & TRACE_F_DUR))
			t->st[t->n - 1].child += dur;
		break;
	}
	case TRACE_SYSCALL:
		f = fstat_get(R, ev->name);
		if (f)
			account(f, m, ev->dur, (ev->flags & TRACE_F_DUR) != 0, ev->dur);
		if (t->n && (ev->flags & TRACE_F_DUR))
			t->st[t->n - 1].child += ev->dur;
		break;
	case TRACE_BLOCK_BEGIN:
		if (t->nm == t->mcap) {
			uint32_t nc = t->mcap ? t->mcap * 2 : 8;
			uint64_t *nm = realloc(t->mults, nc * sizeof(*nm));

			if (!nm)
				return -ENOMEM;
			t->mults = nm;
			t->mcap = nc;
		}
		t->mults[t->nm++] = ev->count ? ev->count : 1;
		R->estimated = 1;
		R->folded++;
		break;
	case TRACE_BLOCK_END:
		if (t->nm)
			t->nm--;
		/* a descent leaves its frames open: their exits come in the ascent */
		break;
	case TRACE_HIDDEN:
		f = fstat_get(R, ev->name);
		if (f)
			account(f, ev->count * m, ev->count ? ev->dur / ev->count : 0, 1,
				ev->count ? ev->dur / ev->count : 0);
		break;
	default:
		break;
	}
	return 0;
}

static int fstat_cmp(const void *a, const void *b)
{
	const struct fstat *x = *(const struct fstat *const *)a,
			   *y = *(const struct fstat *const *)b;

	if (x->total != y->total)
		return x->total > y->total ? -1 : 1;
	if (x->calls != y->calls)
		return x->calls > y->calls ? -1 : 1;
	return strcmp(x->name, y->name);
}

static int report_end(struct trace_sink *s)
{
	struct report *R = (struct report *)s;
	struct fstat **v;
	size_t n = 0, i = 0;
	uint64_t k, val;
	char a[32], b[32], c[32];

	v = malloc((R->funcs.count + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (size_t it = 0; imap_next(&R->funcs, &it, &k, &val);)
		v[n++] = (struct fstat *)(uintptr_t)val;
	qsort(v, n, sizeof(*v), fstat_cmp);
	fprintf(R->out, "%12s %12s %12s %12s  %s\n", "CALLS", "TOTAL", "SELF", "AVERAGE",
		"FUNCTION");
	for (i = 0; i < n && (!R->max || i < R->max); i++) {
		struct fstat *f = v[i];

		if (f->timed)
			fprintf(R->out, "%12llu %12s %12s %12s  %s\n", (unsigned long long)f->calls,
				trace_fmt_dur(f->total, a, sizeof(a)),
				trace_fmt_dur(f->self, b, sizeof(b)),
				trace_fmt_dur(f->total / f->timed, c, sizeof(c)), f->name);
		else
			fprintf(R->out, "%12llu %12s %12s %12s  %s\n", (unsigned long long)f->calls,
				"-", "-", "-", f->name);
	}
	if (i < n)
		fprintf(R->out, "... %zu more (--max-lines)\n", n - i);
	if (R->estimated)
		fprintf(R->out,
			"(%llu folded blocks: calls inside count once per iteration; their times "
			"are "
			"the first iteration's)\n",
			(unsigned long long)R->folded);
	free(v);
	if (fflush(R->out) != 0) {
		snprintf(s->err, sizeof(s->err), "writing the report: %s", strerror(errno));
		return -EIO;
	}
	return 0;
}

static void report_free(struct trace_sink *s)
{
	struct report *R = (struct report *)s;
	uint64_t k, v;

	for (size_t it = 0; imap_next(&R->funcs, &it, &k, &v);)
		free((void *)(uintptr_t)v);
	for (size_t it = 0; imap_next(&R->threads, &it, &k, &v);) {
		struct rthread *t = (struct rthread *)(uintptr_t)v;

		free(t->st);
		free(t->mults);
		free(t);
	}
	imap_free(&R->funcs);
	imap_free(&R->threads);
	free(R);
}

static const struct trace_sink_ops report_ops = {report_event, report_end, report_free};

struct trace_sink *trace_report_writer_new(FILE *out, size_t max_functions)
{
	struct report *R = calloc(1, sizeof(*R));

	if (!R)
		return NULL;
	R->base.ops = &report_ops;
	R->out = out;
	R->max = max_functions;
	imap_init(&R->funcs, 1u << 24);
	imap_init(&R->threads, 1u << 20);
	return &R->base;
}
