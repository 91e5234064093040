/*
 * compare.c - Flowdar's comparison primitive: diff two traces (a good and a
 * bad run, production's request and the clone's) with a pluggable comparator
 * and a threshold, reporting what differs first and a summary.
 *
 * Streaming, bounded: both traces are read through windows of `window`
 * events. While the heads are equal under the comparator, both advance. At a
 * mismatch the first divergence is recorded (with the call path on each side
 * and the events before it), then the traces are resynchronised on the
 * nearest common 3-event anchor within the windows (smallest i + j); what was
 * skipped on each side is a hunk ("only in A", "only in B"). No anchor in the
 * windows: both windows count as different and the search goes on.
 *
 * Comparators (a table: add one by giving it a key and a change test):
 *   exact   kind, name, arguments, return value and error must be equal
 *   name    same function (kind and name); different arguments or results
 *           are listed as changes, not divergences
 *   timing  same function, and durations within the threshold (relative and
 *           absolute): slower or faster calls are changes, listed by ratio
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "common/sbuf.h"
#include "trace/imap.h"
#include "trace/sum-int.h"
#include "trace/text-int.h"
#include "trace/trace.h"

#define ANCHOR 3
#define MAX_STACK 4096
#define MAX_NAMES (1u << 20)
#define TOP_CHANGES 10

struct comparator {
	const char *name;
	enum trace_key key;
	/* 0 equal, 1 changed (same call, different detail) */
	int (*changed)(const struct trace_compare_opts *o, const struct trace_event *a,
		       const struct trace_event *b, double *ratio);
};

static int str_eq(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static int changed_never(const struct trace_compare_opts *o, const struct trace_event *a,
			 const struct trace_event *b, double *ratio)
{
	(void)o;
	(void)a;
	(void)b;
	(void)ratio;
	return 0;
}

static int changed_args(const struct trace_compare_opts *o, const struct trace_event *a,
			const struct trace_event *b, double *ratio)
{
	(void)o;
	(void)ratio;
	if (!str_eq(a->args, b->args) || !str_eq(a->errname, b->errname))
		return 1;
	if ((a->flags & TRACE_F_RET) != (b->flags & TRACE_F_RET))
		return 1;
	return (a->flags & TRACE_F_RET) && a->ret != b->ret;
}

static int changed_timing(const struct trace_compare_opts *o, const struct trace_event *a,
			  const struct trace_event *b, double *ratio)
{
	uint64_t da, db, lo, hi;

	if (!(a->flags & TRACE_F_DUR) || !(b->flags & TRACE_F_DUR))
		return 0;
	da = a->dur;
	db = b->dur;
	lo = da < db ? da : db;
	hi = da < db ? db : da;
	*ratio = lo ? (double)db / (double)da : (hi ? INFINITY : 1.0);
	if (hi - lo < o->threshold_ns)
		return 0;
	if (lo && (double)(hi - lo) / (double)lo <= o->threshold_rel)
		return 0;
	return 1;
}

static const struct comparator comparators[] = {
	[TRACE_CMP_EXACT] = {"exact", TRACE_KEY_ARGS, changed_never},
	[TRACE_CMP_NAME] = {"name", TRACE_KEY_NAME, changed_args},
	[TRACE_CMP_TIMING] = {"timing", TRACE_KEY_NAME, changed_timing},
};

int trace_compare_parse_by(const char *text, enum trace_cmp *out)
{
	for (size_t i = 0; i < sizeof(comparators) / sizeof(comparators[0]); i++) {
		if (strcmp(text, comparators[i].name) == 0) {
			*out = (enum trace_cmp)i;
			return 0;
		}
	}
	return -EINVAL;
}

/* One trace being compared: a window of owned events and its call path. */
struct side {
	struct trace_reader *r;
	struct trace_event *win;
	uint64_t *keys;
	size_t head, n, cap; /* ring */
	uint64_t index;	     /* trace index of the head */
	int eof;
	const char *stack[MAX_STACK];
	size_t depth;
	struct imap counts; /* name -> calls */
	uint64_t total;
};

static struct trace_event *at(struct side *s, size_t i)
{
	return &s->win[(s->head + i) % s->cap];
}

static uint64_t key_at(struct side *s, size_t i)
{
	return s->keys[(s->head + i) % s->cap];
}

static int fill(struct side *s, const struct comparator *c, char *err, size_t errlen)
{
	while (!s->eof && s->n < s->cap) {
		struct trace_event ev;
		int rc = trace_reader_next(s->r, &ev);
		size_t slot;

		if (rc < 0) {
			snprintf(err, errlen, "%s", trace_reader_error(s->r));
			return rc;
		}
		if (rc == 0) {
			s->eof = 1;
			break;
		}
		if (ev.kind == TRACE_STREAM)
			continue;
		slot = (s->head + s->n) % s->cap;
		ev_copy(&s->win[slot], &ev);
		s->keys[slot] = trace_event_key(&ev, c->key);
		s->n++;
		s->total++;
		if (ev.kind == TRACE_ENTER || ev.kind == TRACE_SYSCALL) {
			uint64_t *v = imap_get(&s->counts, (uint64_t)(uintptr_t)ev.name);

			if (v)
				(*v)++;
			else
				imap_put(&s->counts, (uint64_t)(uintptr_t)ev.name, 1);
		}
	}
	return 0;
}

static void pop(struct side *s)
{
	struct trace_event *ev = at(s, 0);

	if (ev->kind == TRACE_ENTER) {
		if (s->depth < MAX_STACK)
			s->stack[s->depth] = ev->name;
		s->depth++;
	} else if (ev->kind == TRACE_EXIT && s->depth) {
		s->depth--;
	}
	ev_release(ev);
	s->head = (s->head + 1) % s->cap;
	s->n--;
	s->index++;
}

static void event_line(struct sbuf *sb, const struct trace_event *ev)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&buf, &len);
	struct trace_event tmp = *ev;

	if (!m)
		return;
	tmp.flags &= (uint16_t)~TRACE_F_DUR;
	putc(trace_text_mark(ev->kind), m);
	putc(' ', m);
	trace_text_body(m, &tmp);
	if (ev->flags & TRACE_F_DUR) {
		char d[32];

		fprintf(m, "  [%s]", trace_fmt_dur(ev->dur, d, sizeof(d)));
	}
	fclose(m);
	if (buf && len > 160)
		strcpy(buf + 157, "...");
	sbuf_append(sb, buf ? buf : "", buf ? strlen(buf) : 0);
	free(buf);
}

static void path_text(struct sbuf *sb, const struct side *s)
{
	if (s->depth == 0) {
		sbuf_printf(sb, "(top level)");
		return;
	}
	for (size_t i = 0; i < s->depth && i < MAX_STACK; i++)
		sbuf_printf(sb, "%s%s", i ? " > " : "", s->stack[i]);
}

struct change {
	double ratio;
	char *text;
};

struct cmp_state {
	const struct trace_compare_opts *o;
	const struct comparator *c;
	struct side a, b;
	struct sbuf first, hunks, changes_text;
	char **ctx; /* the last `context` matched events */
	size_t nctx, ctxpos;
	unsigned nhunks;
	uint64_t hunks_total, changed, changed_shown;
	struct change top[TOP_CHANGES];
	size_t ntop;
	int have_first;
};

static void remember_context(struct cmp_state *S, const struct trace_event *ev)
{
	struct sbuf sb;

	if (!S->o->context)
		return;
	sbuf_init(&sb);
	event_line(&sb, ev);
	free(S->ctx[S->ctxpos]);
	S->ctx[S->ctxpos] = sb.buf;
	S->ctxpos = (S->ctxpos + 1) % S->o->context;
	if (S->nctx < S->o->context)
		S->nctx++;
}

static void note_change(struct cmp_state *S, const struct trace_event *a,
			const struct trace_event *b, double ratio)
{
	struct sbuf sb;
	double score = ratio > 1 ? ratio : (ratio > 0 ? 1 / ratio : INFINITY);
	size_t slot = S->ntop;

	S->changed++;
	if (S->ntop == TOP_CHANGES) {
		/* replace the weakest if this one is stronger */
		slot = 0;
		for (size_t i = 1; i < S->ntop; i++)
			if (S->top[i].ratio < S->top[slot].ratio)
				slot = i;
		if (S->top[slot].ratio >= score && S->o->by == TRACE_CMP_TIMING)
			return;
		if (S->o->by != TRACE_CMP_TIMING)
			return; /* args changes: the first ones */
		free(S->top[slot].text);
	} else {
		S->ntop++;
	}
	sbuf_init(&sb);
	sbuf_printf(&sb, "A #%llu ", (unsigned long long)S->a.index);
	event_line(&sb, a);
	sbuf_printf(&sb, "\n        B #%llu ", (unsigned long long)S->b.index);
	event_line(&sb, b);
	if (S->o->by == TRACE_CMP_TIMING)
		sbuf_printf(&sb, "  (B/A x%.2f)", ratio);
	S->top[slot].ratio = S->o->by == TRACE_CMP_TIMING ? score : 0;
	S->top[slot].text = sb.buf;
}

static void record_first(struct cmp_state *S)
{
	struct sbuf *f = &S->first;

	S->have_first = 1;
	if (S->o->json) {
		sbuf_printf(f, "\"first\":{\"a\":%llu,\"b\":%llu,\"path_a\":",
			    (unsigned long long)S->a.index, (unsigned long long)S->b.index);
		struct sbuf p;

		sbuf_init(&p);
		path_text(&p, &S->a);
		sbuf_json_str(f, p.buf ? p.buf : "");
		sbuf_reset(&p);
		path_text(&p, &S->b);
		sbuf_printf(f, ",\"path_b\":");
		sbuf_json_str(f, p.buf ? p.buf : "");
		sbuf_reset(&p);
		if (S->a.n)
			event_line(&p, at(&S->a, 0));
		sbuf_printf(f, ",\"event_a\":");
		sbuf_json_str(f, S->a.n ? p.buf : "(end of trace)");
		sbuf_reset(&p);
		if (S->b.n)
			event_line(&p, at(&S->b, 0));
		sbuf_printf(f, ",\"event_b\":");
		sbuf_json_str(f, S->b.n ? p.buf : "(end of trace)");
		sbuf_printf(f, "}");
		sbuf_free(&p);
		return;
	}
	sbuf_printf(f, "first divergence: event #%llu of A, #%llu of B\n",
		    (unsigned long long)S->a.index, (unsigned long long)S->b.index);
	sbuf_printf(f, "  call path A: ");
	path_text(f, &S->a);
	sbuf_printf(f, "\n  call path B: ");
	path_text(f, &S->b);
	sbuf_printf(f, "\n");
	for (size_t i = 0; i < S->nctx; i++) {
		size_t k = (S->ctxpos + S->o->context - S->nctx + i) % S->o->context;

		sbuf_printf(f, "    both  %s\n", S->ctx[k]);
	}
	sbuf_printf(f, "  > A     ");
	if (S->a.n)
		event_line(f, at(&S->a, 0));
	else
		sbuf_printf(f, "(end of trace)");
	sbuf_printf(f, "\n  > B     ");
	if (S->b.n)
		event_line(f, at(&S->b, 0));
	else
		sbuf_printf(f, "(end of trace)");
	sbuf_printf(f, "\n");
}

/* Nearest common anchor within both windows: smallest i + j. */
static int resync(struct cmp_state *S, size_t *bi, size_t *bj)
{
	struct side *a = &S->a, *b = &S->b;
	struct imap first; /* anchor hash -> first position in b */
	size_t best = SIZE_MAX;
	size_t k = ANCHOR;

	if (a->n < k)
		k = a->n;
	if (b->n < k)
		k = b->n;
	if (k == 0)
		return 0;
	imap_init(&first, b->n + 1);
	for (size_t j = 0; j + k <= b->n; j++) {
		uint64_t h = 0;

		for (size_t q = 0; q < k; q++)
			h = XXH3_64bits_withSeed(&(uint64_t){key_at(b, j + q)}, 8, h);
		if (!imap_get(&first, h))
			imap_put(&first, h, j);
	}
	for (size_t i = 0; i + k <= a->n && i < best; i++) {
		uint64_t h = 0, *v;

		for (size_t q = 0; q < k; q++)
			h = XXH3_64bits_withSeed(&(uint64_t){key_at(a, i + q)}, 8, h);
		v = imap_get(&first, h);
		if (v && i + *v < best && (i || *v)) {
			best = i + (size_t)*v;
			*bi = i;
			*bj = (size_t)*v;
		}
	}
	imap_free(&first);
	return best != SIZE_MAX;
}

static void add_hunk(struct cmp_state *S, size_t na, size_t nb)
{
	struct sbuf *h = &S->hunks;
	size_t show = 6;

	S->hunks_total++;
	if (S->nhunks >= S->o->max_hunks)
		return;
	S->nhunks++;
	if (S->o->json) {
		sbuf_printf(h, "%s{\"a\":%llu,\"only_a\":%zu,\"b\":%llu,\"only_b\":%zu}",
			    S->nhunks > 1 ? "," : "", (unsigned long long)S->a.index, na,
			    (unsigned long long)S->b.index, nb);
		return;
	}
	sbuf_printf(h, "  @@ A #%llu -%zu, B #%llu +%zu @@ in ", (unsigned long long)S->a.index, na,
		    (unsigned long long)S->b.index, nb);
	path_text(h, &S->a);
	sbuf_printf(h, "\n");
	for (size_t i = 0; i < na && i < show; i++) {
		sbuf_printf(h, "  - ");
		event_line(h, at(&S->a, i));
		sbuf_printf(h, "\n");
	}
	if (na > show)
		sbuf_printf(h, "  - ... %zu more\n", na - show);
	for (size_t i = 0; i < nb && i < show; i++) {
		sbuf_printf(h, "  + ");
		event_line(h, at(&S->b, i));
		sbuf_printf(h, "\n");
	}
	if (nb > show)
		sbuf_printf(h, "  + ... %zu more\n", nb - show);
}

struct delta {
	const char *name;
	uint64_t a, b;
};

static int delta_cmp(const void *x, const void *y)
{
	const struct delta *p = x, *q = y;
	uint64_t dp = p->a > p->b ? p->a - p->b : p->b - p->a;
	uint64_t dq = q->a > q->b ? q->a - q->b : q->b - q->a;

	if (dp != dq)
		return dp > dq ? -1 : 1;
	return strcmp(p->name, q->name);
}

static void count_deltas(struct cmp_state *S, struct sbuf *out)
{
	struct delta *d;
	size_t n = 0, cap = S->a.counts.count + S->b.counts.count + 1, shown = 0;
	uint64_t k, v;

	d = calloc(cap, sizeof(*d));
	if (!d)
		return;
	for (size_t it = 0; imap_next(&S->a.counts, &it, &k, &v);) {
		uint64_t *bv = imap_get(&S->b.counts, k);

		d[n].name = (const char *)(uintptr_t)k;
		d[n].a = v;
		d[n].b = bv ? *bv : 0;
		n++;
	}
	for (size_t it = 0; imap_next(&S->b.counts, &it, &k, &v);) {
		if (imap_get(&S->a.counts, k))
			continue;
		d[n].name = (const char *)(uintptr_t)k;
		d[n].b = v;
		n++;
	}
	qsort(d, n, sizeof(*d), delta_cmp);
	for (size_t i = 0; i < n && shown < 10; i++) {
		if (d[i].a == d[i].b)
			break;
		if (S->o->json) {
			sbuf_printf(out, "%s{\"name\":", shown ? "," : "");
			sbuf_json_str(out, d[i].name);
			sbuf_printf(out, ",\"a\":%llu,\"b\":%llu}", (unsigned long long)d[i].a,
				    (unsigned long long)d[i].b);
		} else {
			sbuf_printf(out, "    %-40s %10llu -> %-10llu (%+lld)\n", d[i].name,
				    (unsigned long long)d[i].a, (unsigned long long)d[i].b,
				    (long long)d[i].b - (long long)d[i].a);
		}
		shown++;
	}
	if (!shown && !S->o->json)
		sbuf_printf(out, "    (none: every function is called as often in both)\n");
	free(d);
}

static int side_init(struct side *s, struct trace_reader *r, size_t cap)
{
	memset(s, 0, sizeof(*s));
	s->r = r;
	s->cap = cap;
	s->win = calloc(cap, sizeof(*s->win));
	s->keys = calloc(cap, sizeof(*s->keys));
	imap_init(&s->counts, MAX_NAMES);
	return s->win && s->keys ? 0 : -ENOMEM;
}

static void side_free(struct side *s)
{
	while (s->n)
		pop(s);
	free(s->win);
	free(s->keys);
	imap_free(&s->counts);
}

int trace_compare(struct trace_reader *ra, struct trace_reader *rb,
		  const struct trace_compare_opts *opts, struct trace_compare_result *res,
		  char **out, size_t *outlen, char *err, size_t errlen)
{
	struct trace_compare_opts o = *opts;
	struct cmp_state S;
	struct sbuf rep;
	uint64_t matched = 0, only_a = 0, only_b = 0, differing;
	int rc = 0;

	if (!o.window)
		o.window = 4096;
	if (o.window < 2 * ANCHOR)
		o.window = 2 * ANCHOR;
	if (!o.max_hunks)
		o.max_hunks = 10;
	memset(&S, 0, sizeof(S));
	memset(res, 0, sizeof(*res));
	S.o = &o;
	S.c = &comparators[o.by];
	sbuf_init(&S.first);
	sbuf_init(&S.hunks);
	sbuf_init(&rep);
	if (o.context)
		S.ctx = calloc(o.context, sizeof(*S.ctx));
	if (side_init(&S.a, ra, o.window) < 0 || side_init(&S.b, rb, o.window) < 0 ||
	    (o.context && !S.ctx)) {
		rc = -ENOMEM;
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	res->first_a = res->first_b = -1;
	for (;;) {
		size_t bi = 0, bj = 0;

		if ((rc = fill(&S.a, S.c, err, errlen)) < 0 ||
		    (rc = fill(&S.b, S.c, err, errlen)) < 0)
			goto out;
		if (!S.a.n && !S.b.n)
			break;
		if (S.a.n && S.b.n && key_at(&S.a, 0) == key_at(&S.b, 0)) {
			double ratio = 1.0;

			if (S.c->changed(&o, at(&S.a, 0), at(&S.b, 0), &ratio))
				note_change(&S, at(&S.a, 0), at(&S.b, 0), ratio);
			remember_context(&S, at(&S.a, 0));
			pop(&S.a);
			pop(&S.b);
			matched++;
			continue;
		}
		if (!S.have_first) {
			res->first_a = (int64_t)S.a.index;
			res->first_b = (int64_t)S.b.index;
			record_first(&S);
		}
		if (resync(&S, &bi, &bj)) {
			add_hunk(&S, bi, bj);
			only_a += bi;
			only_b += bj;
			for (size_t i = 0; i < bi; i++)
				pop(&S.a);
			for (size_t j = 0; j < bj; j++)
				pop(&S.b);
			continue;
		}
		/* nothing in common within the windows (or one side ended) */
		add_hunk(&S, S.a.n, S.b.n);
		only_a += S.a.n;
		only_b += S.b.n;
		while (S.a.n)
			pop(&S.a);
		while (S.b.n)
			pop(&S.b);
	}
	res->events_a = S.a.total;
	res->events_b = S.b.total;
	res->matched = matched;
	res->only_a = only_a;
	res->only_b = only_b;
	res->changed = S.changed;
	differing = only_a + only_b + (o.by == TRACE_CMP_EXACT ? 0 : S.changed);
	{
		uint64_t total = matched * 2 + only_a + only_b;

		res->similar =
			total == 0 ? 1 : (double)differing / (double)total <= o.max_diff + 1e-12;
	}
	if (o.json) {
		sbuf_printf(&rep,
			    "{\"comparator\":\"%s\",\"events_a\":%llu,\"events_b\":%llu,"
			    "\"matched\":%llu,\"only_a\":%llu,\"only_b\":%llu,\"changed\":%llu,"
			    "\"similar\":%s,",
			    S.c->name, (unsigned long long)res->events_a,
			    (unsigned long long)res->events_b, (unsigned long long)matched,
			    (unsigned long long)only_a, (unsigned long long)only_b,
			    (unsigned long long)S.changed, res->similar ? "true" : "false");
		if (S.have_first)
			sbuf_printf(&rep, "%s,", S.first.buf);
		else
			sbuf_printf(&rep, "\"first\":null,");
		sbuf_printf(&rep, "\"hunks\":[%s],\"count_deltas\":[",
			    S.hunks.buf ? S.hunks.buf : "");
		count_deltas(&S, &rep);
		sbuf_printf(&rep, "],\"changes\":[");
		for (size_t i = 0; i < S.ntop; i++) {
			if (i)
				sbuf_printf(&rep, ",");
			sbuf_json_str(&rep, S.top[i].text);
		}
		sbuf_printf(&rep, "]}\n");
	} else {
		sbuf_printf(&rep, "compare (%s): A %llu events, B %llu events\n", S.c->name,
			    (unsigned long long)res->events_a, (unsigned long long)res->events_b);
		if (S.have_first)
			sbuf_append(&rep, S.first.buf, S.first.len);
		else
			sbuf_printf(&rep, "no divergence: the traces match event for event\n");
		if (S.hunks_total) {
			sbuf_printf(&rep, "differences (%llu):\n",
				    (unsigned long long)S.hunks_total);
			sbuf_append(&rep, S.hunks.buf, S.hunks.len);
			if (S.hunks_total > S.nhunks)
				sbuf_printf(&rep, "  ... %llu more (--hunks)\n",
					    (unsigned long long)(S.hunks_total - S.nhunks));
		}
		if (S.ntop) {
			sbuf_printf(&rep, "%s:\n",
				    o.by == TRACE_CMP_TIMING
					    ? "largest timing changes"
					    : "same calls, different arguments or results");
			for (size_t i = 0; i < S.ntop; i++)
				sbuf_printf(&rep, "    %s\n", S.top[i].text);
		}
		sbuf_printf(&rep,
			    "summary: %llu matched, %llu only in A, %llu only in B, %llu changed\n",
			    (unsigned long long)matched, (unsigned long long)only_a,
			    (unsigned long long)only_b, (unsigned long long)S.changed);
		sbuf_printf(&rep, "  calls (and syscalls) whose counts differ most (A -> B):\n");
		count_deltas(&S, &rep);
		sbuf_printf(&rep, "verdict: %s (%llu of %llu events differ; --max-diff %.1f%%)\n",
			    res->similar ? "similar" : "different", (unsigned long long)differing,
			    (unsigned long long)(matched * 2 + only_a + only_b), o.max_diff * 100);
	}
	*out = rep.buf;
	*outlen = rep.len;
	rep.buf = NULL;
out:
	side_free(&S.a);
	side_free(&S.b);
	for (size_t i = 0; i < o.context && S.ctx; i++)
		free(S.ctx[i]);
	free(S.ctx);
	for (size_t i = 0; i < S.ntop; i++)
		free(S.top[i].text);
	sbuf_free(&S.first);
	sbuf_free(&S.hunks);
	sbuf_free(&rep);
	return rc;
}
