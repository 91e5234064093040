/*
 * summarise.c - Flowdar's summarising primitive: fold repeated behaviour into
 * counted blocks, streaming, in bounded memory.
 *
 * Each thread's events build a call tree as they arrive. Every finished call
 * becomes one *item* (its whole subtree, with a structural hash) appended to
 * its caller's list of children; leaf events (syscalls, notes) are items too.
 * Folding works on these sibling lists, so a loop whose body calls big
 * functions folds as easily as a loop of leaf calls:
 *
 *  - sliding window (Flowdar's first algorithm): when the last 2p items are
 *    the same p items twice (p <= window), a run starts; each further
 *    repetition of the p items is absorbed (count++). An incremental match
 *    counter per p keeps this O(window) per item. A closed run becomes a LOOP
 *    item, which takes part in folding at its level (nested loops).
 *  - iterative (Flowdar's second): when a call finishes, its children are
 *    refolded with windows 1, 2, ..., n/2 repeatedly until nothing changes,
 *    which also finds bodies longer than the window.
 *  - recursion: a call of f whose children hold exactly one call of f, with
 *    the same work before and after it at every level, becomes a REC item:
 *    written as a descent block (f entered N times), the innermost call, and
 *    an ascent block (N returns).
 *
 * What is equal: items with equal hashes; events are compared by kind and
 * name (TRACE_KEY_NAME) or also by arguments and results (TRACE_KEY_ARGS).
 *
 * Streaming: a call is held until it returns, so that it can fold as a
 * whole. When more than max_events events are held, the thread holding most
 * is *spilled*: its open calls are written out as they are and continue in
 * sliding mode (only the last 2 x window items of a written call are held).
 *
 * Lossless: a block keeps its first iteration; with keep_times it also keeps
 * the time of every event of the other iterations (BLOCK_END "t=" deltas in
 * expansion order), and expand.c restores the trace exactly; without it,
 * expansion restores every event and the block boundaries, with iteration
 * times spread evenly over the block's span.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "trace/imap.h"
#include "trace/sum-int.h"
#include "trace/trace.h"

#define MAXW 64
#define MAX_THREADS 65536
#define MAX_FRAMES 2048 /* deeper calls are written as they come, unfolded */

enum { IT_EVENT, IT_CALL, IT_LOOP, IT_REC };

/* A folded or unfolded piece of one thread's trace. Owned by the frame list
 * (or the block) that holds it. */
struct item {
	uint8_t type;
	uint64_t hash;
	uint64_t t_first, t_last; /* first and last time of its whole expansion */
	size_t held;		  /* events stored */
	struct trace_event ev;	  /* EVENT: the event; CALL, REC: the (outermost) enter */
	struct trace_event ev2;	  /* CALL: the exit; REC: the innermost exit */
	struct item **kids;	  /* CALL: children; LOOP: body; REC: pre (outermost level) */
	uint32_t nkids;
	struct item **post; /* REC: work after the recursive call (innermost level) */
	uint32_t npost;
	struct item *base;	    /* REC: the innermost call */
	uint64_t count;		    /* LOOP: iterations; REC: levels */
	uint64_t imin, imax;	    /* LOOP, REC: shortest and longest iteration */
	uint64_t prehash, posthash; /* REC */
	struct u64vec x;  /* LOOP: times of iterations 2..N; REC: descent levels, innermost first */
	struct u64vec x2; /* REC: ascent levels N-1..1 */
	uint32_t xchunk;  /* REC: times per descent level */
};

struct frame {
	struct trace_event enter;
	int has_enter; /* 1: held; 2: written, only name and depth kept */
	int emitted;   /* its enter (and its earlier children) were written */
	struct item **items;
	uint32_t n, cap;
	int run; /* items[run_at .. run_at+p) repeat; items after it match so far */
	uint32_t run_at, p, matched;
	uint64_t count, imin, imax, last_t;
	struct u64vec x;
	/* the pattern with its loops unrolled: later iterations arrive as single
	 * items (their inner loops not folded yet) and are matched against it */
	struct item **pexp;
	uint32_t npexp;
	uint16_t mc[MAXW + 1]; /* mc[p]: tail positions equal to the one p before */
};

struct sthread {
	int32_t pid, tid;
	const char *prog;
	struct frame *fr;
	uint32_t nfr, cap;
	uint32_t deep; /* calls open beyond MAX_FRAMES */
	size_t held;
};

struct summ {
	struct trace_sink base;
	struct trace_sink *next;
	struct trace_summarise_opts o;
	unsigned w;
	struct imap threads;
	size_t held, relieve_at;
	struct trace_summarise_stats st;
	int err;
	char *tbuf; /* times text */
	size_t tcap;
};

/* ----------------------------------------------------------------- items */

static uint64_t mix(uint64_t h, uint64_t v)
{
	return XXH3_64bits_withSeed(&v, sizeof(v), h);
}

static void item_free(struct item *it)
{
	if (!it)
		return;
	ev_release(&it->ev);
	ev_release(&it->ev2);
	for (uint32_t i = 0; i < it->nkids; i++)
		item_free(it->kids[i]);
	for (uint32_t i = 0; i < it->npost; i++)
		item_free(it->post[i]);
	item_free(it->base);
	free(it->kids);
	free(it->post);
	u64vec_free(&it->x);
	u64vec_free(&it->x2);
	free(it);
}

static const char *item_name(const struct item *it)
{
	while (it->type == IT_LOOP && it->nkids)
		it = it->kids[0];
	return it->ev.name;
}

static int32_t item_depth(const struct item *it)
{
	while (it->type == IT_LOOP && it->nkids)
		it = it->kids[0];
	return it->ev.depth;
}

static uint64_t seq_hash(struct item **v, uint32_t n, uint64_t seed)
{
	uint64_t h = seed;

	for (uint32_t i = 0; i < n; i++)
		h = mix(h, v[i]->hash);
	return h;
}

static int seq_eq(struct item **a, struct item **b, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		if (a[i]->hash != b[i]->hash)
			return 0;
	return 1;
}

/* Every time of it's expansion, in order (for keep_times). */
static void item_times(const struct item *it, struct u64vec *out)
{
	switch (it->type) {
	case IT_EVENT:
		u64vec_push(out, it->ev.ts);
		break;
	case IT_CALL:
		u64vec_push(out, it->ev.ts);
		for (uint32_t i = 0; i < it->nkids; i++)
			item_times(it->kids[i], out);
		u64vec_push(out, it->ev2.ts);
		break;
	case IT_LOOP:
		for (uint32_t i = 0; i < it->nkids; i++)
			item_times(it->kids[i], out);
		for (size_t i = 0; i < it->x.n; i++)
			u64vec_push(out, it->x.v[i]);
		break;
	case IT_REC:
		u64vec_push(out, it->ev.ts);
		for (uint32_t i = 0; i < it->nkids; i++)
			item_times(it->kids[i], out);
		if (it->xchunk)
			for (size_t c = it->x.n / it->xchunk; c-- > 0;)
				for (uint32_t k = 0; k < it->xchunk; k++)
					u64vec_push(out, it->x.v[c * it->xchunk + k]);
		item_times(it->base, out);
		for (uint32_t i = 0; i < it->npost; i++)
			item_times(it->post[i], out);
		u64vec_push(out, it->ev2.ts);
		for (size_t i = 0; i < it->x2.n; i++)
			u64vec_push(out, it->x2.v[i]);
		break;
	}
}

static struct item *item_new(int type)
{
	struct item *it = calloc(1, sizeof(*it));

	if (it)
		it->type = (uint8_t)type;
	return it;
}

static uint64_t event_end(const struct trace_event *ev)
{
	return ev->ts;
}

static struct item *item_event(struct summ *S, const struct trace_event *ev)
{
	struct item *it = item_new(IT_EVENT);

	if (!it)
		return NULL;
	ev_copy(&it->ev, ev);
	it->hash = mix(trace_event_key(ev, S->o.key), IT_EVENT);
	it->t_first = ev->ts;
	it->t_last = event_end(ev);
	it->held = 1;
	return it;
}

static uint64_t call_hash(struct summ *S, const struct trace_event *enter, struct item **kids,
			  uint32_t n, const struct trace_event *exit)
{
	uint64_t h = mix(trace_event_key(enter, S->o.key), IT_CALL);

	h = seq_hash(kids, n, h);
	return mix(h, trace_event_key(exit, S->o.key));
}

static uint64_t loop_hash(const struct item *l)
{
	return mix(seq_hash(l->kids, l->nkids, mix(IT_LOOP, l->count)), l->nkids);
}

static uint64_t rec_hash(struct summ *S, const struct item *r)
{
	uint64_t h = mix(mix(IT_REC, r->count), trace_event_key(&r->ev, S->o.key));

	h = mix(mix(h, r->prehash), r->posthash);
	h = mix(h, r->base->hash);
	return mix(h, trace_event_key(&r->ev2, S->o.key));
}

/* --------------------------------------------------------------- output */

static void out(struct summ *S, const struct sthread *t, const struct trace_event *src,
		int32_t depth)
{
	struct trace_event ev = *src;
	int rc;

	if (S->err)
		return;
	ev.pid = t->pid;
	ev.tid = t->tid;
	ev.prog = t->prog;
	ev.depth = depth;
	rc = trace_sink_event(S->next, &ev);
	if (rc < 0) {
		S->err = rc;
		snprintf(S->base.err, sizeof(S->base.err), "%s", S->next->err);
	}
	S->st.events_out++;
}

/* "d1,d2,..." deltas of times (v, read in chunk order) after prev. */
static const char *times_text(struct summ *S, const uint64_t *v, size_t n, size_t chunk,
			      uint64_t prev)
{
	size_t len = 0;
	size_t nchunks = chunk ? n / chunk : 1;

	if (!chunk)
		chunk = n;
	for (size_t c = 0; c < nchunks; c++) {
		/* chunked vectors hold their chunks innermost first: read them backwards */
		size_t base = chunk == n ? 0 : (nchunks - 1 - c) * chunk;

		for (size_t k = 0; k < chunk; k++) {
			uint64_t t = v[base + k];
			int64_t d = (int64_t)(t - prev);

			if (len + 24 > S->tcap) {
				size_t nc = S->tcap ? S->tcap * 2 : 4096;
				char *nb = realloc(S->tbuf, nc);

				if (!nb)
					return "";
				S->tbuf = nb;
				S->tcap = nc;
			}
			len += (size_t)snprintf(S->tbuf + len, S->tcap - len, "%s%lld",
						len ? "," : "", (long long)d);
			prev = t;
		}
	}
	if (!S->tbuf || len == 0)
		return "";
	return S->tbuf;
}

static void emit_item(struct summ *S, struct sthread *t, struct item *it, int32_t shift);

static void block_begin(struct trace_event *b, int kind, const char *name, uint64_t count,
			uint64_t ts, uint64_t span, uint64_t imin, uint64_t imax, int delta)
{
	trace_event_init(b);
	b->kind = TRACE_BLOCK_BEGIN;
	b->block = (int16_t)kind;
	b->name = name;
	b->count = count;
	b->ts = ts;
	b->dur = span;
	b->flags = TRACE_F_DUR;
	b->min = imin;
	b->max = imax;
	b->delta = (int16_t)delta;
}

static void emit_loop(struct summ *S, struct sthread *t, struct item *it, int32_t shift)
{
	struct trace_event b;
	int32_t depth = item_depth(it) - shift;

	block_begin(&b, TRACE_BLOCK_LOOP, item_name(it), it->count, it->t_first,
		    it->t_last - it->t_first, it->imin, it->imax, 0);
	out(S, t, &b, depth);
	for (uint32_t i = 0; i < it->nkids; i++)
		emit_item(S, t, it->kids[i], shift);
	b.kind = TRACE_BLOCK_END;
	b.ts = it->t_last;
	b.flags = 0;
	if (S->o.keep_times && it->x.n) {
		b.extra = times_text(S, it->x.v, it->x.n, 0, it->kids[it->nkids - 1]->t_last);
		b.flags |= TRACE_F_TIMES;
	}
	out(S, t, &b, depth);
}

static void emit_rec(struct summ *S, struct sthread *t, struct item *it, int32_t shift)
{
	struct trace_event b;
	int32_t depth = it->ev.depth - shift, inner = shift + (int32_t)(it->count - 1);
	uint64_t prev, asc_ts = it->npost ? it->post[0]->t_first : it->ev2.ts;

	if (it->count == 1) {
		out(S, t, &it->ev, depth);
		for (uint32_t i = 0; i < it->nkids; i++)
			emit_item(S, t, it->kids[i], shift);
		emit_item(S, t, it->base, shift);
		for (uint32_t i = 0; i < it->npost; i++)
			emit_item(S, t, it->post[i], shift);
		out(S, t, &it->ev2, it->ev2.depth - shift);
		return;
	}
	block_begin(&b, TRACE_BLOCK_DESCEND, it->ev.name, it->count, it->ev.ts,
		    it->base->t_first - it->ev.ts, it->imin, it->imax, 1);
	out(S, t, &b, depth);
	out(S, t, &it->ev, depth);
	for (uint32_t i = 0; i < it->nkids; i++)
		emit_item(S, t, it->kids[i], shift);
	b.kind = TRACE_BLOCK_END;
	b.flags = 0;
	b.ts = it->base->t_first;
	prev = it->nkids ? it->kids[it->nkids - 1]->t_last : it->ev.ts;
	if (S->o.keep_times && it->x.n) {
		b.extra = times_text(S, it->x.v, it->x.n, it->xchunk, prev);
		b.flags |= TRACE_F_TIMES;
	}
	out(S, t, &b, depth);
	emit_item(S, t, it->base, inner);
	block_begin(&b, TRACE_BLOCK_ASCEND, it->ev.name, it->count, asc_ts, it->t_last - asc_ts,
		    it->imin, it->imax, -1);
	out(S, t, &b, depth);
	for (uint32_t i = 0; i < it->npost; i++)
		emit_item(S, t, it->post[i], inner);
	out(S, t, &it->ev2, it->ev2.depth - inner);
	b.kind = TRACE_BLOCK_END;
	b.flags = 0;
	b.ts = it->t_last;
	if (S->o.keep_times && it->x2.n) {
		b.extra = times_text(S, it->x2.v, it->x2.n, 0, it->ev2.ts);
		b.flags |= TRACE_F_TIMES;
	}
	out(S, t, &b, depth);
	S->st.recursions++;
}

static void emit_item(struct summ *S, struct sthread *t, struct item *it, int32_t shift)
{
	switch (it->type) {
	case IT_EVENT:
		out(S, t, &it->ev, it->ev.depth - shift);
		break;
	case IT_CALL:
		out(S, t, &it->ev, it->ev.depth - shift);
		for (uint32_t i = 0; i < it->nkids; i++)
			emit_item(S, t, it->kids[i], shift);
		out(S, t, &it->ev2, it->ev2.depth - shift);
		break;
	case IT_LOOP:
		emit_loop(S, t, it, shift);
		break;
	case IT_REC:
		emit_rec(S, t, it, shift);
		break;
	}
}

static void release(struct summ *S, struct sthread *t, struct item *it)
{
	S->held -= it->held;
	t->held -= it->held;
	item_free(it);
}

/* ---------------------------------------------------------------- frames */

static int frame_append(struct frame *F, struct item *it)
{
	if (F->n == F->cap) {
		uint32_t nc = F->cap ? F->cap * 2 : 16;
		struct item **ni = realloc(F->items, nc * sizeof(*ni));

		if (!ni)
			return -ENOMEM;
		F->items = ni;
		F->cap = nc;
	}
	F->items[F->n++] = it;
	return 0;
}

static void mc_update(struct summ *S, struct frame *F)
{
	uint32_t last = F->n - 1;

	for (unsigned p = 1; p <= S->w; p++) {
		if (last >= p && F->items[last]->hash == F->items[last - p]->hash)
			F->mc[p] = (uint16_t)(F->mc[p] < 2 * MAXW ? F->mc[p] + 1 : F->mc[p]);
		else
			F->mc[p] = 0;
	}
}

static void mc_recompute(struct summ *S, struct frame *F)
{
	for (unsigned p = 1; p <= S->w; p++) {
		uint16_t c = 0;

		for (uint32_t i = F->n; i-- > p && c < 2 * MAXW;) {
			if (F->items[i]->hash != F->items[i - p]->hash)
				break;
			c++;
		}
		F->mc[p] = c;
	}
}

/* When an item's work ends: its last event's time, plus that event's duration
 * when it is a syscall (a loop of one syscall would otherwise take 0 ns). The
 * last iteration of a loop is taken to last as long as its first. */
static uint64_t item_end(const struct item *it)
{
	const struct item *last = it;

	while (last->type == IT_LOOP && last->nkids)
		last = last->kids[last->nkids - 1];
	if (last->type == IT_EVENT && (last->ev.flags & TRACE_F_DUR))
		return it->t_last + last->ev.dur;
	return it->t_last;
}

static uint64_t occ_dur(struct item **v, uint32_t p)
{
	return item_end(v[p - 1]) - v[0]->t_first;
}

/* Fold the p items after the pattern into the run. */
static void fold_occurrence(struct summ *S, struct sthread *t, struct frame *F)
{
	struct item **occ = &F->items[F->run_at + F->p];
	uint32_t nocc = F->n - (F->run_at + F->p);
	uint64_t d = occ_dur(occ, nocc);

	if (d < F->imin)
		F->imin = d;
	if (d > F->imax)
		F->imax = d;
	F->count++;
	F->last_t = occ[nocc - 1]->t_last;
	for (uint32_t i = 0; i < nocc; i++) {
		if (S->o.keep_times)
			item_times(occ[i], &F->x);
		release(S, t, occ[i]);
	}
	F->n = F->run_at + F->p;
	F->matched = 0;
}

#define MAX_PEXP 4096

static int unroll(struct item *it, struct item **out, uint32_t *n)
{
	if (it->type != IT_LOOP) {
		if (*n >= MAX_PEXP)
			return -1;
		out[(*n)++] = it;
		return 0;
	}
	for (uint64_t k = 0; k < it->count; k++)
		for (uint32_t i = 0; i < it->nkids; i++)
			if (unroll(it->kids[i], out, n) < 0)
				return -1;
	return 0;
}

/* The pattern's loops unrolled, when that stays small; else match item by item. */
static void pattern_unroll(struct frame *F)
{
	uint32_t n = 0;
	int has_loop = 0;

	free(F->pexp);
	F->pexp = NULL;
	F->npexp = 0;
	for (uint32_t i = 0; i < F->p; i++)
		has_loop |= F->items[F->run_at + i]->type == IT_LOOP;
	if (!has_loop)
		return;
	F->pexp = malloc(MAX_PEXP * sizeof(*F->pexp));
	if (!F->pexp)
		return;
	for (uint32_t i = 0; i < F->p; i++) {
		if (unroll(F->items[F->run_at + i], F->pexp, &n) < 0) {
			free(F->pexp);
			F->pexp = NULL;
			return;
		}
	}
	F->npexp = n;
}

static int detect(struct summ *S, struct sthread *t, struct frame *F)
{
	for (unsigned p = 1; p <= S->w && 2 * p <= F->n; p++) {
		struct item **a;
		uint64_t d;

		if (F->mc[p] < p)
			continue;
		F->run = 1;
		F->run_at = F->n - 2 * p;
		F->p = p;
		F->count = 1;
		a = &F->items[F->run_at];
		d = occ_dur(a, p);
		F->imin = F->imax = d;
		u64vec_free(&F->x);
		fold_occurrence(S, t, F);
		pattern_unroll(F);
		return 1;
	}
	return 0;
}

static void push_item(struct summ *S, struct sthread *t, struct frame *F, struct item *it);

/* The run ends: its pattern becomes one LOOP item. */
static void close_run(struct summ *S, struct sthread *t, struct frame *F)
{
	struct item *L = item_new(IT_LOOP);
	struct item **tent = NULL;
	uint32_t ntent = F->n - (F->run_at + F->p);

	F->run = 0;
	free(F->pexp);
	F->pexp = NULL;
	F->npexp = 0;
	if (!L) {
		S->err = -ENOMEM;
		return;
	}
	L->kids = malloc(F->p * sizeof(*L->kids));
	if (ntent)
		tent = malloc(ntent * sizeof(*tent));
	if (!L->kids || (ntent && !tent)) {
		free(L->kids);
		free(L);
		free(tent);
		S->err = -ENOMEM;
		return;
	}
	memcpy(L->kids, &F->items[F->run_at], F->p * sizeof(*L->kids));
	L->nkids = F->p;
	if (ntent)
		memcpy(tent, &F->items[F->run_at + F->p], ntent * sizeof(*tent));
	L->count = F->count;
	L->imin = F->imin;
	L->imax = F->imax;
	L->x = F->x;
	memset(&F->x, 0, sizeof(F->x));
	L->t_first = L->kids[0]->t_first;
	L->t_last = F->last_t;
	for (uint32_t i = 0; i < L->nkids; i++)
		L->held += L->kids[i]->held;
	L->hash = loop_hash(L);
	S->st.blocks++;
	F->items[F->run_at] = L;
	F->n = F->run_at + 1;
	mc_recompute(S, F);
	detect(S, t, F);
	for (uint32_t i = 0; i < ntent; i++)
		push_item(S, t, F, tent[i]);
	free(tent);
}

static void close_runs(struct summ *S, struct sthread *t, struct frame *F)
{
	while (F->run && !S->err)
		close_run(S, t, F);
}

/* A written call holds only the items that may still fold. */
static void slide(struct summ *S, struct sthread *t, struct frame *F)
{
	uint32_t keep = 2 * S->w, limit = F->run ? F->run_at : F->n, k;

	if (!F->emitted || F->n <= 4 * keep || limit <= keep)
		return;
	k = limit - keep;
	if (F->n - k < keep)
		k = F->n - keep;
	for (uint32_t i = 0; i < k; i++) {
		emit_item(S, t, F->items[i], 0);
		release(S, t, F->items[i]);
	}
	memmove(F->items, F->items + k, (F->n - k) * sizeof(*F->items));
	F->n -= k;
	if (F->run)
		F->run_at -= k;
}

static void push_item(struct summ *S, struct sthread *t, struct frame *F, struct item *it)
{
	if (S->err) {
		release(S, t, it);
		return;
	}
	if (F->run) {
		struct item *want =
			F->npexp ? F->pexp[F->matched] : F->items[F->run_at + F->matched];

		if (it->hash == want->hash) {
			if (frame_append(F, it) < 0) {
				S->err = -ENOMEM;
				release(S, t, it);
				return;
			}
			if (++F->matched == (F->npexp ? F->npexp : F->p))
				fold_occurrence(S, t, F);
			return;
		}
		close_run(S, t, F);
		push_item(S, t, F, it);
		return;
	}
	if (frame_append(F, it) < 0) {
		S->err = -ENOMEM;
		release(S, t, it);
		return;
	}
	mc_update(S, F);
	detect(S, t, F);
	slide(S, t, F);
}

/* Write everything a frame holds (and its enter, once). */
static void frame_flush(struct summ *S, struct sthread *t, struct frame *F)
{
	close_runs(S, t, F);
	if (!F->emitted) {
		if (F->has_enter) {
			out(S, t, &F->enter, F->enter.depth);
			/* written: only its name and depth are needed now (to match the
			 * exit), so it no longer counts as held */
			ev_release(&F->enter);
			F->has_enter = 2;
			S->held -= 1;
			t->held -= 1;
		}
		F->emitted = 1;
	}
	for (uint32_t i = 0; i < F->n; i++) {
		emit_item(S, t, F->items[i], 0);
		release(S, t, F->items[i]);
	}
	F->n = 0;
	memset(F->mc, 0, sizeof(F->mc));
}

static void spill(struct summ *S, struct sthread *t)
{
	for (uint32_t i = 0; i < t->nfr; i++) {
		struct frame *F = &t->fr[i];

		if (F->emitted && F->n == 0 && !F->run)
			continue;
		frame_flush(S, t, F);
	}
	S->st.spilled++;
}

/* ------------------------------------------------------------ iterative */

static struct item *loop_from(struct summ *S, struct sthread *t, struct item **v, uint32_t w,
			      uint32_t k)
{
	struct item *L = item_new(IT_LOOP);

	if (!L)
		return NULL;
	L->kids = malloc(w * sizeof(*L->kids));
	if (!L->kids) {
		free(L);
		return NULL;
	}
	memcpy(L->kids, v, w * sizeof(*v));
	L->nkids = w;
	L->count = k;
	L->imin = L->imax = occ_dur(v, w);
	for (uint32_t j = 1; j < k; j++) {
		struct item **occ = v + j * w;
		uint64_t d = occ_dur(occ, w);

		if (d < L->imin)
			L->imin = d;
		if (d > L->imax)
			L->imax = d;
		L->t_last = occ[w - 1]->t_last;
		for (uint32_t i = 0; i < w; i++) {
			if (S->o.keep_times)
				item_times(occ[i], &L->x);
			release(S, t, occ[i]);
		}
	}
	L->t_first = v[0]->t_first;
	for (uint32_t i = 0; i < w; i++)
		L->held += v[i]->held;
	L->hash = loop_hash(L);
	S->st.blocks++;
	return L;
}

/* Refold a call's children with every window size until nothing changes. */
static void refold(struct summ *S, struct sthread *t, struct frame *F)
{
	int changed = 1;

	while (changed && !S->err) {
		changed = 0;
		for (uint32_t w = 1; 2 * w <= F->n && w <= 1024; w++) {
			uint32_t i = 0, o = 0;

			while (i < F->n) {
				struct item *last = o ? F->items[o - 1] : NULL;

				/* a loop followed by one more of its body */
				if (last && last->type == IT_LOOP && last->nkids == w &&
				    i + w <= F->n && seq_eq(last->kids, &F->items[i], w)) {
					uint64_t d = occ_dur(&F->items[i], w);

					if (d < last->imin)
						last->imin = d;
					if (d > last->imax)
						last->imax = d;
					last->t_last = F->items[i + w - 1]->t_last;
					for (uint32_t j = 0; j < w; j++) {
						if (S->o.keep_times)
							item_times(F->items[i + j], &last->x);
						release(S, t, F->items[i + j]);
					}
					last->count++;
					last->hash = loop_hash(last);
					i += w;
					changed = 1;
					continue;
				}
				if (i + 2 * w <= F->n &&
				    seq_eq(&F->items[i], &F->items[i + w], w)) {
					uint32_t k = 2;
					struct item *L;

					while (i + (k + 1) * w <= F->n &&
					       seq_eq(&F->items[i], &F->items[i + k * w], w))
						k++;
					L = loop_from(S, t, &F->items[i], w, k);
					if (!L) {
						S->err = -ENOMEM;
						return;
					}
					F->items[o++] = L;
					i += k * w;
					changed = 1;
					continue;
				}
				F->items[o++] = F->items[i++];
			}
			F->n = o;
		}
	}
}

/* ------------------------------------------------------------ recursion */

static struct item *make_call(struct summ *S, struct sthread *t, struct frame *F,
			      const struct trace_event *exit)
{
	struct item *it = item_new(IT_CALL);

	if (!it)
		return NULL;
	S->held += 1; /* the exit */
	t->held += 1;
	it->ev = F->enter;
	memset(&F->enter, 0, sizeof(F->enter));
	ev_copy(&it->ev2, exit);
	it->kids = F->items;
	it->nkids = F->n;
	F->items = NULL;
	F->n = F->cap = 0;
	it->held = 2;
	for (uint32_t i = 0; i < it->nkids; i++)
		it->held += it->kids[i]->held;
	it->t_first = it->ev.ts;
	it->t_last = exit->ts;
	it->hash = call_hash(S, &it->ev, it->kids, it->nkids, &it->ev2);
	return it;
}

/* One more level around a REC: this frame's enter and pre work replace the
 * stored outermost level, whose times move to the descent list. */
static struct item *rec_wrap(struct summ *S, struct sthread *t, struct frame *F, uint32_t idx,
			     const struct trace_event *exit)
{
	struct item *X = F->items[idx];
	uint64_t d = exit->ts - F->enter.ts;

	if (S->o.keep_times) {
		size_t before = X->x.n;

		u64vec_push(&X->x, X->ev.ts);
		for (uint32_t i = 0; i < X->nkids; i++)
			item_times(X->kids[i], &X->x);
		X->xchunk = (uint32_t)(X->x.n - before);
		for (uint32_t i = idx + 1; i < F->n; i++)
			item_times(F->items[i], &X->x2);
		u64vec_push(&X->x2, exit->ts);
	}
	for (uint32_t i = 0; i < X->nkids; i++) {
		X->held -= X->kids[i]->held;
		release(S, t, X->kids[i]);
	}
	free(X->kids);
	X->kids = NULL;
	X->nkids = 0;
	if (idx) {
		X->kids = malloc(idx * sizeof(*X->kids));
		if (!X->kids)
			return NULL;
		memcpy(X->kids, F->items, idx * sizeof(*X->kids));
		X->nkids = idx;
		for (uint32_t i = 0; i < idx; i++)
			X->held += X->kids[i]->held;
	}
	for (uint32_t i = idx + 1; i < F->n; i++)
		release(S, t, F->items[i]);
	S->held -= 1;
	t->held -= 1;
	ev_release(&X->ev);
	X->ev = F->enter;
	memset(&F->enter, 0, sizeof(F->enter));
	free(F->items);
	F->items = NULL;
	F->n = F->cap = 0;
	X->count++;
	if (d < X->imin)
		X->imin = d;
	if (d > X->imax)
		X->imax = d;
	X->t_first = X->ev.ts;
	X->t_last = exit->ts;
	X->hash = rec_hash(S, X);
	return X;
}

/* The call that just returned: a plain CALL, or a REC when it wraps exactly
 * one call of itself. */
static struct item *finish_call(struct summ *S, struct sthread *t, struct frame *F,
				const struct trace_event *exit)
{
	int idx = -1;
	struct item *X, *R;
	uint64_t prehash, posthash;

	if (S->o.no_recursion)
		return make_call(S, t, F, exit);
	for (uint32_t i = 0; i < F->n; i++) {
		struct item *c = F->items[i];

		if ((c->type == IT_CALL || c->type == IT_REC) && c->ev.name == F->enter.name) {
			if (idx >= 0)
				return make_call(S, t, F, exit);
			idx = (int)i;
		}
	}
	if (idx < 0)
		return make_call(S, t, F, exit);
	X = F->items[idx];
	prehash = seq_hash(F->items, (uint32_t)idx, 1);
	posthash = seq_hash(&F->items[idx + 1], F->n - (uint32_t)idx - 1, 2);
	if (X->type == IT_REC && X->prehash == prehash && X->posthash == posthash &&
	    trace_event_key(&X->ev, S->o.key) == trace_event_key(&F->enter, S->o.key) &&
	    trace_event_key(&X->ev2, S->o.key) == trace_event_key(exit, S->o.key))
		return rec_wrap(S, t, F, (uint32_t)idx, exit);
	/* a first level: this call wraps X */
	R = item_new(IT_REC);
	if (!R)
		return NULL;
	S->held += 1; /* the exit */
	t->held += 1;
	R->count = 1;
	R->ev = F->enter;
	memset(&F->enter, 0, sizeof(F->enter));
	ev_copy(&R->ev2, exit);
	R->base = X;
	if (idx) {
		R->kids = malloc((size_t)idx * sizeof(*R->kids));
		if (!R->kids) {
			item_free(R);
			return NULL;
		}
		memcpy(R->kids, F->items, (size_t)idx * sizeof(*R->kids));
		R->nkids = (uint32_t)idx;
	}
	R->npost = F->n - (uint32_t)idx - 1;
	if (R->npost) {
		R->post = malloc(R->npost * sizeof(*R->post));
		if (!R->post) {
			R->base = NULL;
			item_free(R);
			return NULL;
		}
		memcpy(R->post, &F->items[idx + 1], R->npost * sizeof(*R->post));
	}
	free(F->items);
	F->items = NULL;
	F->n = F->cap = 0;
	R->prehash = prehash;
	R->posthash = posthash;
	R->held = 2 + X->held;
	for (uint32_t i = 0; i < R->nkids; i++)
		R->held += R->kids[i]->held;
	for (uint32_t i = 0; i < R->npost; i++)
		R->held += R->post[i]->held;
	R->t_first = R->ev.ts;
	R->t_last = exit->ts;
	R->imin = R->imax = exit->ts - R->ev.ts;
	R->hash = rec_hash(S, R);
	return R;
}

/* ---------------------------------------------------------------- events */

static struct sthread *thread_get(struct summ *S, const struct trace_event *ev)
{
	uint64_t key = (uint64_t)(uint32_t)ev->tid | ((uint64_t)(uint32_t)ev->pid << 32);
	uint64_t *v = imap_get(&S->threads, key);
	struct sthread *t;

	if (v)
		return (struct sthread *)(uintptr_t)*v;
	t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->fr = calloc(8, sizeof(*t->fr));
	if (!t->fr || imap_put(&S->threads, key, (uint64_t)(uintptr_t)t) < 0) {
		free(t->fr);
		free(t);
		return NULL;
	}
	t->cap = 8;
	t->nfr = 1; /* the root: everything before the first call and at its level */
	t->fr[0].emitted = S->o.mode != TRACE_SUM_ITERATIVE;
	t->pid = ev->pid;
	t->tid = ev->tid;
	t->prog = ev->prog;
	return t;
}

static void frame_release(struct summ *S, struct sthread *t, struct frame *F)
{
	for (uint32_t i = 0; i < F->n; i++)
		release(S, t, F->items[i]);
	free(F->items);
	free(F->pexp);
	u64vec_free(&F->x);
	if (F->has_enter == 1) {
		ev_release(&F->enter);
		S->held -= 1;
		t->held -= 1;
	}
	memset(F, 0, sizeof(*F));
}

static void thread_free(struct summ *S, struct sthread *t)
{
	for (uint32_t i = 0; i < t->nfr; i++)
		frame_release(S, t, &t->fr[i]);
	free(t->fr);
	free(t);
}

/* The heaviest thread gives its held events back to the output. What cannot
 * be given back (the windows of written calls) waits until the holding has
 * doubled, so that a deep stack is not walked at every event. */
static void relieve(struct summ *S)
{
	if (S->held <= S->relieve_at)
		return;
	while (S->held > S->o.max_events && !S->err) {
		struct sthread *best = NULL;
		uint64_t k, v;

		for (size_t it = 0; imap_next(&S->threads, &it, &k, &v);) {
			struct sthread *t = (struct sthread *)(uintptr_t)v;

			if (!best || t->held > best->held)
				best = t;
		}
		if (!best || best->held == 0)
			break;
		size_t before = best->held;

		spill(S, best);
		if (best->held >= before)
			break; /* what is left is open runs and windows: bounded */
	}
	S->relieve_at = S->held * 2 > S->o.max_events ? S->held * 2 : S->o.max_events;
}

static void on_exit_event(struct summ *S, struct sthread *t, const struct trace_event *ev)
{
	struct frame *F;
	struct item *it;
	int match = -1;

	for (uint32_t i = t->nfr; i-- > 1;) {
		if (t->fr[i].enter.name == ev->name) {
			match = (int)i;
			break;
		}
	}
	if (match < 0) {
		/* returns from a call entered before the trace began */
		spill(S, t);
		out(S, t, ev, ev->depth);
		return;
	}
	if ((uint32_t)match != t->nfr - 1) {
		/* calls whose exit was lost: write them out as they are */
		spill(S, t);
		while (t->nfr - 1 > (uint32_t)match)
			frame_release(S, t, &t->fr[--t->nfr]);
	}
	F = &t->fr[t->nfr - 1];
	close_runs(S, t, F);
	if (S->o.mode == TRACE_SUM_ITERATIVE && !F->emitted)
		refold(S, t, F);
	if (F->emitted) {
		frame_flush(S, t, F);
		out(S, t, ev, ev->depth);
		frame_release(S, t, F);
		t->nfr--;
		return;
	}
	it = finish_call(S, t, F, ev);
	u64vec_free(&F->x);
	t->nfr--;
	if (!it) {
		S->err = -ENOMEM;
		return;
	}
	push_item(S, t, &t->fr[t->nfr - 1], it);
}

static void flush_all(struct summ *S)
{
	uint64_t k, v;

	for (size_t it = 0; imap_next(&S->threads, &it, &k, &v);) {
		struct sthread *t = (struct sthread *)(uintptr_t)v;

		if (S->o.mode == TRACE_SUM_ITERATIVE && t->nfr == 1 && !t->fr[0].emitted) {
			close_runs(S, t, &t->fr[0]);
			refold(S, t, &t->fr[0]);
		}
		spill(S, t);
		S->st.spilled--; /* the end of the input is not a spill */
		thread_free(S, t);
	}
	imap_free(&S->threads);
	S->held = 0;
}

static int summ_event(struct trace_sink *s, const struct trace_event *ev)
{
	struct summ *S = (struct summ *)s;
	struct sthread *t;

	if (S->err)
		return S->err;
	S->st.events_in++;
	if (ev->kind == TRACE_STREAM) {
		flush_all(S);
		out(S, &(struct sthread){.pid = ev->pid, .tid = ev->tid, .prog = ev->prog}, ev,
		    ev->depth);
		return S->err;
	}
	if (ev->kind == TRACE_BLOCK_BEGIN || ev->kind == TRACE_BLOCK_END) {
		snprintf(s->err, sizeof(s->err),
			 "internal: summarise got a folded block (expand it first)");
		return -EINVAL;
	}
	t = thread_get(S, ev);
	if (!t) {
		/* too many threads: pass this one through unfolded */
		struct sthread tmp = {.pid = ev->pid, .tid = ev->tid, .prog = ev->prog};

		out(S, &tmp, ev, ev->depth);
		return S->err;
	}
	if (t->deep || (ev->kind == TRACE_ENTER && t->nfr >= MAX_FRAMES)) {
		/* too deep to hold: written as it comes */
		if (!t->deep)
			spill(S, t);
		if (ev->kind == TRACE_ENTER)
			t->deep++;
		else if (ev->kind == TRACE_EXIT)
			t->deep--;
		out(S, t, ev, ev->depth);
		return S->err;
	}
	if (ev->kind == TRACE_ENTER) {
		struct frame *F;

		if (t->nfr == t->cap) {
			struct frame *nf = realloc(t->fr, t->cap * 2 * sizeof(*nf));

			if (!nf)
				return -ENOMEM;
			memset(nf + t->cap, 0, t->cap * sizeof(*nf));
			t->fr = nf;
			t->cap *= 2;
		}
		F = &t->fr[t->nfr++];
		memset(F, 0, sizeof(*F));
		ev_copy(&F->enter, ev);
		F->has_enter = 1;
		S->held++;
		t->held++;
	} else if (ev->kind == TRACE_EXIT) {
		on_exit_event(S, t, ev);
	} else {
		struct item *it = item_event(S, ev);

		if (!it)
			return -ENOMEM;
		S->held++;
		t->held++;
		push_item(S, t, &t->fr[t->nfr - 1], it);
	}
	relieve(S);
	return S->err;
}

static int summ_end(struct trace_sink *s)
{
	struct summ *S = (struct summ *)s;

	if (!S->err)
		flush_all(S);
	if (S->err)
		return S->err;
	return trace_sink_end(S->next);
}

static void summ_free(struct trace_sink *s)
{
	struct summ *S = (struct summ *)s;
	uint64_t k, v;

	for (size_t it = 0; imap_next(&S->threads, &it, &k, &v);)
		thread_free(S, (struct sthread *)(uintptr_t)v);
	imap_free(&S->threads);
	trace_sink_free(S->next);
	free(S->tbuf);
	free(S);
}

static const struct trace_sink_ops summ_ops = {summ_event, summ_end, summ_free};

struct trace_sink *trace_summarise_new(const struct trace_summarise_opts *o,
				       struct trace_sink *next)
{
	struct summ *S = calloc(1, sizeof(*S));

	if (!S)
		return NULL;
	S->base.ops = &summ_ops;
	S->next = next;
	S->o = *o;
	S->w = o->window ? o->window : 16;
	if (S->w > MAXW)
		S->w = MAXW;
	if (!S->o.max_events)
		S->o.max_events = 1u << 18;
	S->relieve_at = S->o.max_events;
	imap_init(&S->threads, MAX_THREADS);
	return &S->base;
}

void trace_summarise_stats(struct trace_sink *s, struct trace_summarise_stats *st)
{
	*st = ((struct summ *)s)->st;
}
