/*
 * write-svg.c - UML-style sequence diagrams as SVG (Flowdar's pictures).
 *
 * One lifeline per thread (or process, or program), left to right in the
 * order they first appear; time flows down, one row per event shown, in
 * input order. A call is an activation bar on its lifeline, nested calls
 * offset to the right, labelled with the function and its duration; a syscall
 * or note is a labelled tick. A folded block is a box around its first
 * iteration with a "loop f x1000" tab (UML's combined fragment). A message
 * (from `doppel trace align`) is an arrow from the sender's lifeline at the
 * time it sent to the receiver's row; a clone/fork that made another lifeline
 * is an arrow to that lifeline's first row.
 *
 * The diagram is built in memory and bounded: max_rows events are drawn
 * (default 400), the rest are counted in a note at the bottom.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "trace/imap.h"
#include "trace/text-int.h"
#include "trace/trace.h"

#define ROW_H 18
#define TOP 70
#define LEFT 90
#define BAR_W 8
#define INDENT 10
#define MAX_LANES 64

struct lane {
	uint64_t key;
	char label[128];
	int32_t pid, tid;
	const char *prog;
	size_t first_row;
	int max_depth;
	size_t max_text; /* longest label, in characters */
};

struct row {
	int lane;
	int depth;
	uint64_t ts;
	char *text;
	char kind; /* mark character */
};

struct bar {
	int lane, depth;
	size_t from, to;
	int closed;
};

struct box {
	int lane, depth;
	size_t from, to;
	char *label;
	int closed;
};

struct arrow {
	int from_lane, to_lane;
	size_t from_row, to_row;
	uint64_t send_ts;
	char *label;
	int resolved;
};

struct svg {
	struct trace_sink base;
	FILE *out;
	struct trace_svg_opts o;
	struct lane lanes[MAX_LANES];
	int nlanes;
	uint64_t lanes_dropped;
	struct row *rows;
	size_t nrows, caprows;
	struct bar *bars;
	size_t nbars, capbars;
	struct box *boxes;
	size_t nboxes, capboxes;
	struct arrow *arrows;
	size_t narrows, caparrows;
	uint64_t dropped, t0;
	int have_t0;
	struct imap clones; /* child tid -> (lane << 32 | row) of the clone that made it */
};

static void *grow(void *p, size_t *cap, size_t n, size_t size)
{
	if (n < *cap)
		return p;
	size_t nc = *cap ? *cap * 2 : 64;
	void *np = realloc(p, nc * size);

	if (np)
		*cap = nc;
	return np;
}

static uint64_t lane_key(const struct svg *S, const struct trace_event *ev)
{
	switch (S->o.lifeline) {
	case TRACE_LIFE_PROCESS:
		return (uint64_t)(uint32_t)ev->pid | ((uint64_t)(uintptr_t)ev->prog << 32);
	case TRACE_LIFE_PROGRAM:
		return (uint64_t)(uintptr_t)ev->prog;
	default:
		return ((uint64_t)(uint32_t)ev->tid | ((uint64_t)(uint32_t)ev->pid << 32)) ^
		       ((uint64_t)(uintptr_t)ev->prog << 7);
	}
}

static int lane_find(const struct svg *S, const struct trace_event *ev)
{
	uint64_t k = lane_key(S, ev);

	for (int i = 0; i < S->nlanes; i++)
		if (S->lanes[i].key == k)
			return i;
	return -1;
}

static int lane_of(struct svg *S, const struct trace_event *ev)
{
	uint64_t k = lane_key(S, ev);
	struct lane *l;
	int found = lane_find(S, ev);

	if (found >= 0)
		return found;
	if (S->nlanes == MAX_LANES) {
		S->lanes_dropped++;
		return -1;
	}
	l = &S->lanes[S->nlanes];
	memset(l, 0, sizeof(*l));
	l->key = k;
	l->pid = ev->pid;
	l->tid = ev->tid;
	l->prog = ev->prog;
	l->first_row = (size_t)-1;
	switch (S->o.lifeline) {
	case TRACE_LIFE_PROCESS:
		snprintf(l->label, sizeof(l->label), "%s%spid %d", ev->prog ? ev->prog : "",
			 ev->prog ? " " : "", ev->pid);
		break;
	case TRACE_LIFE_PROGRAM:
		snprintf(l->label, sizeof(l->label), "%s", ev->prog ? ev->prog : "program");
		break;
	default:
		snprintf(l->label, sizeof(l->label), "%s%s%d/%d", ev->prog ? ev->prog : "",
			 ev->prog ? " " : "", ev->pid, ev->tid);
	}
	l->max_text = strlen(l->label);
	return S->nlanes++;
}

static int lane_by_ids(struct svg *S, const char *prog, int32_t pid, int32_t tid)
{
	struct trace_event tmp;

	trace_event_init(&tmp);
	tmp.prog = prog;
	tmp.pid = pid;
	tmp.tid = tid;
	return lane_of(S, &tmp);
}

static char *event_text(const struct trace_event *ev)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&buf, &len);
	char d[32];

	if (!m)
		return NULL;
	switch (ev->kind) {
	case TRACE_ENTER:
		fprintf(m, "%s()", ev->name);
		break;
	case TRACE_SYSCALL: {
		struct trace_event tmp = *ev;
		const char *a = ev->args ? ev->args : "";

		tmp.flags &= (uint16_t)~TRACE_F_DUR;
		/* syscall arguments can be long: keep the head */
		if (strlen(a) > 60) {
			fprintf(m, "%s(%.57s...", ev->name, a);
			if (ev->flags & TRACE_F_RET)
				fprintf(m, " = %lld", (long long)ev->ret);
			if (ev->errname)
				fprintf(m, " %s", ev->errname);
		} else {
			trace_text_body(m, &tmp);
		}
		if (ev->flags & TRACE_F_DUR)
			fprintf(m, "  %s", trace_fmt_dur(ev->dur, d, sizeof(d)));
		break;
	}
	case TRACE_HIDDEN:
		fprintf(m, "... %s \xc3\x97%llu hidden  %s", ev->name,
			(unsigned long long)ev->count, trace_fmt_dur(ev->dur, d, sizeof(d)));
		break;
	case TRACE_MSG:
		fprintf(m, "%llu bytes received", (unsigned long long)ev->count);
		break;
	case TRACE_NOTE:
		fprintf(m, "%s", ev->extra ? ev->extra : ev->name);
		break;
	default:
		trace_text_body(m, ev);
	}
	fclose(m);
	if (buf && strlen(buf) > 120)
		strcpy(buf + 117, "...");
	return buf;
}

static int add_row(struct svg *S, int lane, const struct trace_event *ev, char *text)
{
	struct row *r;

	S->rows = grow(S->rows, &S->caprows, S->nrows, sizeof(*S->rows));
	if (!S->rows) {
		free(text);
		return -ENOMEM;
	}
	r = &S->rows[S->nrows++];
	r->lane = lane;
	r->depth = ev->depth < 0 ? 0 : ev->depth;
	r->ts = ev->ts;
	r->text = text;
	r->kind = trace_text_mark(ev->kind);
	if (S->lanes[lane].first_row == (size_t)-1)
		S->lanes[lane].first_row = S->nrows - 1;
	if (r->depth > S->lanes[lane].max_depth)
		S->lanes[lane].max_depth = r->depth;
	if (text && strlen(text) > S->lanes[lane].max_text)
		S->lanes[lane].max_text = strlen(text);
	return 0;
}

static int svg_event(struct trace_sink *s, const struct trace_event *ev)
{
	struct svg *S = (struct svg *)s;
	int lane;
	char *text;
	char d[32];

	if (ev->kind == TRACE_STREAM)
		return 0;
	if (!S->have_t0) {
		S->t0 = ev->ts;
		S->have_t0 = 1;
	}
	if (S->o.max_depth >= 0 && ev->depth > S->o.max_depth)
		return 0;
	/* ends close what a lane opened; only a drawn row makes a lane */
	lane = ev->kind == TRACE_EXIT || ev->kind == TRACE_BLOCK_END || S->nrows >= S->o.max_rows
		       ? lane_find(S, ev)
		       : lane_of(S, ev);
	if (lane < 0) {
		if (ev->kind != TRACE_EXIT && ev->kind != TRACE_BLOCK_END)
			S->dropped++;
		return 0;
	}
	if (ev->kind == TRACE_EXIT) {
		/* close the innermost open bar of this lane at this depth */
		for (size_t i = S->nbars; i-- > 0;) {
			struct bar *b = &S->bars[i];

			if (b->lane == lane && !b->closed && b->depth == ev->depth) {
				b->closed = 1;
				b->to = S->nrows ? S->nrows - 1 : 0;
				if ((ev->flags & TRACE_F_DUR) && b->from < S->nrows) {
					struct row *r = &S->rows[b->from];
					size_t n = strlen(r->text) + 48;
					char *t = malloc(n);

					if (t) {
						snprintf(t, n, "%s  %s", r->text,
							 trace_fmt_dur(ev->dur, d, sizeof(d)));
						free(r->text);
						r->text = t;
						if (strlen(t) > S->lanes[lane].max_text)
							S->lanes[lane].max_text = strlen(t);
					}
				}
				break;
			}
		}
		return 0;
	}
	if (ev->kind == TRACE_BLOCK_END) {
		for (size_t i = S->nboxes; i-- > 0;) {
			struct box *b = &S->boxes[i];

			if (b->lane == lane && !b->closed) {
				b->closed = 1;
				b->to = S->nrows ? S->nrows - 1 : 0;
				break;
			}
		}
		return 0;
	}
	if (S->nrows >= S->o.max_rows) {
		S->dropped++;
		return 0;
	}
	if (ev->kind == TRACE_BLOCK_BEGIN) {
		struct box *b;
		char label[256], a[32], c[32];

		S->boxes = grow(S->boxes, &S->capboxes, S->nboxes, sizeof(*S->boxes));
		if (!S->boxes)
			return -ENOMEM;
		snprintf(label, sizeof(label), "%s %s \xc3\x97%llu  (%s..%s each)",
			 ev->block == TRACE_BLOCK_LOOP
				 ? "loop"
				 : (ev->block == TRACE_BLOCK_DESCEND ? "recursion" : "return"),
			 ev->name, (unsigned long long)ev->count,
			 trace_fmt_dur(ev->min, a, sizeof(a)),
			 trace_fmt_dur(ev->max, c, sizeof(c)));
		/* the block's own row holds its tab */
		if (add_row(S, lane, ev, NULL) < 0)
			return -ENOMEM;
		if (strlen(label) + 4 > S->lanes[lane].max_text)
			S->lanes[lane].max_text = strlen(label) + 4;
		b = &S->boxes[S->nboxes++];
		b->lane = lane;
		b->depth = ev->depth < 0 ? 0 : ev->depth;
		b->from = S->nrows - 1;
		b->to = S->nrows - 1;
		b->closed = 0;
		b->label = strdup(label);
		return 0;
	}
	text = event_text(ev);
	if (!text)
		return -ENOMEM;
	if (add_row(S, lane, ev, text) < 0)
		return -ENOMEM;
	if (ev->kind == TRACE_ENTER) {
		struct bar *b;

		S->bars = grow(S->bars, &S->capbars, S->nbars, sizeof(*S->bars));
		if (!S->bars)
			return -ENOMEM;
		b = &S->bars[S->nbars++];
		b->lane = lane;
		b->depth = ev->depth < 0 ? 0 : ev->depth;
		b->from = b->to = S->nrows - 1;
		b->closed = 0;
	} else if (ev->kind == TRACE_MSG) {
		struct arrow *a;
		char label[64];

		S->arrows = grow(S->arrows, &S->caparrows, S->narrows, sizeof(*S->arrows));
		if (!S->arrows)
			return -ENOMEM;
		a = &S->arrows[S->narrows++];
		memset(a, 0, sizeof(*a));
		a->from_lane = lane_by_ids(S, ev->peer_prog, ev->peer_pid, ev->peer_tid);
		a->to_lane = lane;
		a->to_row = S->nrows - 1;
		a->send_ts = ev->min;
		snprintf(label, sizeof(label), "%llu B", (unsigned long long)ev->count);
		a->label = strdup(label);
	} else if (ev->kind == TRACE_SYSCALL && (ev->flags & TRACE_F_RET) && ev->ret > 0 &&
		   (strcmp(ev->name, "clone") == 0 || strcmp(ev->name, "clone3") == 0 ||
		    strcmp(ev->name, "fork") == 0 || strcmp(ev->name, "vfork") == 0)) {
		imap_put(&S->clones, (uint64_t)ev->ret,
			 ((uint64_t)(uint32_t)lane << 32) | (uint32_t)(S->nrows - 1));
	}
	return 0;
}

static void esc(FILE *out, const char *s)
{
	for (; s && *s; s++) {
		switch (*s) {
		case '&':
			fputs("&amp;", out);
			break;
		case '<':
			fputs("&lt;", out);
			break;
		case '>':
			fputs("&gt;", out);
			break;
		case '"':
			fputs("&quot;", out);
			break;
		default:
			if ((unsigned char)*s >= 0x20 || *s == '\t')
				putc(*s, out);
		}
	}
}

static int row_y(size_t row)
{
	return TOP + (int)row * ROW_H;
}

static int svg_end(struct trace_sink *s)
{
	struct svg *S = (struct svg *)s;
	int x[MAX_LANES + 1], width, height;
	FILE *out = S->out;

	/* lane widths from their longest label and deepest call */
	x[0] = LEFT;
	for (int i = 0; i < S->nlanes; i++) {
		int w = 40 + S->lanes[i].max_depth * INDENT + (int)S->lanes[i].max_text * 7;

		if (w < 200)
			w = 200;
		if (w > 900)
			w = 900;
		x[i + 1] = x[i] + w;
	}
	/* message arrows start at the sender's last row at or before the send time */
	for (size_t i = 0; i < S->narrows; i++) {
		struct arrow *a = &S->arrows[i];

		if (a->from_lane < 0)
			continue;
		for (size_t r = 0; r < S->nrows; r++)
			if (S->rows[r].lane == a->from_lane && S->rows[r].ts <= a->send_ts) {
				a->from_row = r;
				a->resolved = 1;
			}
	}
	width = x[S->nlanes] + 40;
	height = row_y(S->nrows) + 60;
	fprintf(out,
		"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
		"viewBox=\"0 0 %d %d\" font-family=\"monospace\" font-size=\"11\">\n"
		"<defs><marker id=\"arrow\" markerWidth=\"10\" markerHeight=\"8\" refX=\"9\" "
		"refY=\"4\" "
		"orient=\"auto\"><path d=\"M0,0 L10,4 L0,8 z\" fill=\"#c0392b\"/></marker></defs>\n"
		"<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
		width, height, width, height);
	if (S->o.title) {
		fputs("<text x=\"10\" y=\"18\" font-size=\"14\" font-weight=\"bold\">", out);
		esc(out, S->o.title);
		fputs("</text>\n", out);
	}
	/* lifelines */
	for (int i = 0; i < S->nlanes; i++) {
		int cx = x[i] + 20;

		fprintf(out,
			"<rect x=\"%d\" y=\"28\" width=\"%d\" height=\"24\" rx=\"3\" "
			"fill=\"#eef3fb\" "
			"stroke=\"#34495e\"/>\n<text x=\"%d\" y=\"44\">",
			x[i] + 4, x[i + 1] - x[i] - 12, x[i] + 10);
		esc(out, S->lanes[i].label);
		fprintf(out,
			"</text>\n<line x1=\"%d\" y1=\"52\" x2=\"%d\" y2=\"%d\" stroke=\"#95a5a6\" "
			"stroke-dasharray=\"4,3\"/>\n",
			cx, cx, height - 40);
	}
	/* folded blocks: combined fragments, the tab in the block's own row */
	for (size_t i = 0; i < S->nboxes; i++) {
		struct box *b = &S->boxes[i];
		int bx = x[b->lane] + 12 + b->depth * INDENT;
		int y0 = row_y(b->from) - 13, y1 = row_y(b->to >= b->from ? b->to : b->from) + 5;
		int w = x[b->lane + 1] - bx - 8;
		int tw = (int)strlen(b->label ? b->label : "") * 7 + 8;

		fprintf(out,
			"<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"#fdf6e3\" "
			"fill-opacity=\"0.6\" stroke=\"#b58900\"/>\n"
			"<path d=\"M%d,%d h%d v10 l-6,6 h-%d z\" fill=\"#b58900\"/>\n"
			"<text x=\"%d\" y=\"%d\" fill=\"white\" font-weight=\"bold\">",
			bx, y0, w, y1 - y0, bx, y0, tw, tw - 6, bx + 4, y0 + 12);
		esc(out, b->label);
		fputs("</text>\n", out);
	}
	/* activation bars */
	for (size_t i = 0; i < S->nbars; i++) {
		struct bar *b = &S->bars[i];
		int bx = x[b->lane] + 16 + b->depth * INDENT;
		size_t to = b->closed ? b->to : (S->nrows ? S->nrows - 1 : 0);

		fprintf(out,
			"<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"#d6eaf8\" "
			"stroke=\"#2874a6\"/>\n",
			bx, row_y(b->from) - 12, BAR_W, row_y(to) - row_y(b->from) + 16);
	}
	/* rows: time and label */
	for (size_t r = 0; r < S->nrows; r++) {
		struct row *w = &S->rows[r];
		uint64_t rel = w->ts >= S->t0 ? w->ts - S->t0 : 0;
		int tx = x[w->lane] + 16 + w->depth * INDENT + BAR_W + 4;

		fprintf(out, "<text x=\"4\" y=\"%d\" fill=\"#7f8c8d\">%.3f ms</text>\n", row_y(r),
			(double)rel / 1e6);
		if (!w->text)
			continue;
		if (w->kind != '>')
			fprintf(out, "<circle cx=\"%d\" cy=\"%d\" r=\"3\" fill=\"%s\"/>\n", tx - 6,
				row_y(r) - 4, w->kind == '|' ? "#16a085" : "#8e44ad");
		fprintf(out, "<text x=\"%d\" y=\"%d\">", tx, row_y(r));
		esc(out, w->text);
		fputs("</text>\n", out);
	}
	/* a clone that made another lifeline */
	for (int i = 0; i < S->nlanes; i++) {
		uint64_t *c = imap_get(&S->clones, (uint64_t)(uint32_t)S->lanes[i].tid);

		if (!c || S->lanes[i].first_row == (size_t)-1 || (int)(*c >> 32) == i)
			continue;
		int from = (int)(*c >> 32);

		fprintf(out,
			"<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#7d3c98\" "
			"stroke-dasharray=\"5,3\" marker-end=\"url(#arrow)\"/>\n",
			x[from] + 20, row_y((size_t)(uint32_t)*c) - 4, x[i] + 16,
			row_y(S->lanes[i].first_row) - 4);
	}
	/* messages */
	for (size_t i = 0; i < S->narrows; i++) {
		struct arrow *a = &S->arrows[i];
		int x1, x2, y1, y2;

		if (!a->resolved || a->from_lane < 0)
			continue;
		x1 = x[a->from_lane] + 20;
		x2 = x[a->to_lane] + 16;
		y1 = row_y(a->from_row) - 4;
		y2 = row_y(a->to_row) - 4;
		fprintf(out,
			"<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#c0392b\" "
			"stroke-width=\"1.5\" marker-end=\"url(#arrow)\"/>\n"
			"<text x=\"%d\" y=\"%d\" fill=\"#c0392b\">",
			x1, y1, x2, y2, (x1 + x2) / 2, (y1 + y2) / 2 - 3);
		esc(out, a->label);
		fputs("</text>\n", out);
	}
	if (S->dropped || S->lanes_dropped)
		fprintf(out,
			"<text x=\"10\" y=\"%d\" fill=\"#c0392b\">%llu more events and %llu more "
			"lifelines not drawn (--max-rows)</text>\n",
			height - 20, (unsigned long long)S->dropped,
			(unsigned long long)S->lanes_dropped);
	fputs("</svg>\n", out);
	if (fflush(out) != 0) {
		snprintf(s->err, sizeof(s->err), "writing SVG: %s", strerror(errno));
		return -EIO;
	}
	return 0;
}

static void svg_free(struct trace_sink *s)
{
	struct svg *S = (struct svg *)s;

	for (size_t i = 0; i < S->nrows; i++)
		free(S->rows[i].text);
	for (size_t i = 0; i < S->nboxes; i++)
		free(S->boxes[i].label);
	for (size_t i = 0; i < S->narrows; i++)
		free(S->arrows[i].label);
	free(S->rows);
	free(S->bars);
	free(S->boxes);
	free(S->arrows);
	imap_free(&S->clones);
	free(S);
}

static const struct trace_sink_ops svg_ops = {svg_event, svg_end, svg_free};

int trace_lifeline_parse(const char *text, enum trace_lifeline *out)
{
	static const char *const names[] = {"thread", "process", "program"};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strcmp(text, names[i]) == 0) {
			*out = (enum trace_lifeline)i;
			return 0;
		}
	}
	return -EINVAL;
}

struct trace_sink *trace_svg_writer_new(FILE *out, const struct trace_svg_opts *o)
{
	struct svg *S = calloc(1, sizeof(*S));

	if (!S)
		return NULL;
	S->base.ops = &svg_ops;
	S->out = out;
	if (o)
		S->o = *o;
	else
		S->o.max_depth = -1;
	if (!S->o.max_rows)
		S->o.max_rows = 400;
	imap_init(&S->clones, 1u << 16);
	return &S->base;
}
