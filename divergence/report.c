/*
 * report.c - one replica's divergence: counts per request type, the noise
 * rule that turns them into a verdict, the excerpt ring, and the report in
 * text and JSON. docs/divergence.md explains the rule.
 */
#include "divergence/div-int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct div_replica *div_replica_new(struct div_types *types, enum div_role role,
				    struct div_counts *counts)
{
	struct div_replica *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->counts = counts ? counts : &r->own;
	r->types = types;
	r->role = role;
	r->exc_next = 1;
	return r;
}

void div_replica_free(struct div_replica *r)
{
	free(r);
}

enum div_role div_replica_role(const struct div_replica *r)
{
	return r->role;
}

const struct div_counts *div_replica_counts(const struct div_replica *r)
{
	return r->counts;
}

const struct div_type_counts *div_replica_type(const struct div_replica *r, unsigned id)
{
	static const struct div_type_counts zero;

	if (id > DIV_TYPES_MAX)
		return &zero;
	return &r->rows[id];
}

uint64_t div_replica_excerpts_skipped(const struct div_replica *r)
{
	return r->exc_skipped;
}

uint64_t div_replica_add_excerpt(struct div_replica *r, const struct div_excerpt *e)
{
	unsigned same = 0;
	struct div_excerpt *slot;

	for (unsigned i = 0; i < DIV_EXCERPTS_MAX; i++)
		if (r->exc[i].seq && r->exc[i].type == e->type)
			same++;
	if (same >= DIV_EXCERPTS_PER_TYPE) {
		r->exc_skipped++;
		return 0;
	}
	slot = &r->exc[(r->exc_next - 1) % DIV_EXCERPTS_MAX];
	*slot = *e;
	slot->seq = r->exc_next++;
	return slot->seq;
}

void div_replica_excerpt_control(struct div_replica *r, uint64_t seq, int agreed)
{
	struct div_excerpt *e = &r->exc[(seq - 1) % DIV_EXCERPTS_MAX];

	if (seq && e->seq == seq)
		e->control = agreed ? 1 : 0;
}

void div_replica_excerpts(const struct div_replica *r,
			  void (*fn)(void *arg, const struct div_excerpt *e), void *arg)
{
	uint64_t from = r->exc_next > DIV_EXCERPTS_MAX ? r->exc_next - DIV_EXCERPTS_MAX : 1;

	for (uint64_t s = from; s < r->exc_next; s++) {
		const struct div_excerpt *e = &r->exc[(s - 1) % DIV_EXCERPTS_MAX];

		if (e->seq == s)
			fn(arg, e);
	}
}

/* src's type id as a type of dst's table */
static unsigned merge_type(struct div_replica *dst, const struct div_replica *src, unsigned id)
{
	const char *name;

	if (id >= DIV_TYPES_MAX)
		return DIV_TYPES_MAX;
	name = div_type_name(src->types, id);
	return div_type_intern(dst->types, name, strlen(name));
}

static void merge_excerpt(void *arg, const struct div_excerpt *e)
{
	struct div_replica **pair = arg;
	struct div_excerpt x = *e;

	x.type = merge_type(pair[0], pair[1], e->type);
	div_replica_add_excerpt(pair[0], &x);
}

void div_replica_merge(struct div_replica *dst, const struct div_replica *src)
{
	struct div_replica *pair[2] = {dst, (struct div_replica *)src};
	unsigned n = div_types_count(src->types);

	dst->counts->turns_compared += src->counts->turns_compared;
	dst->counts->turns_diverged += src->counts->turns_diverged;
	dst->counts->turns_unchecked += src->counts->turns_unchecked;
	dst->counts->conns_diverged += src->counts->conns_diverged;
	for (unsigned id = 0; id <= DIV_TYPES_MAX; id++) {
		const struct div_type_counts *c = &src->rows[id];
		struct div_type_counts *d;

		if (id < DIV_TYPES_MAX && id >= n)
			continue;
		if (!(c->turns | c->raw | c->unchecked | c->paired))
			continue;
		d = &dst->rows[merge_type(dst, src, id)];
		d->turns += c->turns;
		d->raw += c->raw;
		d->unchecked += c->unchecked;
		d->paired += c->paired;
		d->paired_raw += c->paired_raw;
		d->noise += c->noise;
		d->cross += c->cross;
	}
	dst->exc_skipped += src->exc_skipped;
	div_replica_excerpts(src, merge_excerpt, pair);
}

/* ---- the rule ---- */

void div_rule_defaults(struct div_rule *r)
{
	r->relative_pct = 20.0;
	r->absolute_pct = 0.03;
	r->z = 2.0;
}

void div_rule_apply(const struct div_rule *rule, const struct div_type_counts *c,
		    struct div_verdict *out)
{
	double d;

	memset(out, 0, sizeof(*out));
	if (!c->paired) {
		/* No control compared these turns: nothing tells noise apart. */
		out->raw = c->raw;
		out->turns = c->turns;
		out->net = c->raw;
		out->reported = c->raw > 0;
		out->relative = c->raw ? 100.0 : 0.0;
		out->absolute = c->turns ? 100.0 * (double)c->raw / (double)c->turns : 0.0;
		return;
	}
	out->has_control = 1;
	out->raw = c->paired_raw;
	out->noise = c->noise;
	out->turns = c->paired;
	if (out->raw <= out->noise)
		return;
	d = (double)(out->raw - out->noise);
	out->relative = 100.0 * d / (double)(out->raw + out->noise);
	out->absolute = 100.0 * d / (double)out->turns;
	out->reported = out->relative >= rule->relative_pct &&
			out->absolute >= rule->absolute_pct &&
			d * d >= rule->z * rule->z * (double)(out->raw + out->noise);
	out->net = out->reported ? out->raw - out->noise : 0;
}

/* The verdict on one row of r: a control's differences are all noise. */
static void row_verdict(const struct div_replica *r, const struct div_rule *rule,
			const struct div_type_counts *t, struct div_verdict *v)
{
	div_rule_apply(rule, t, v);
	if (r->role == DIV_CONTROL) {
		v->reported = 0;
		v->net = 0;
	}
}

uint64_t div_replica_net(const struct div_replica *r, const struct div_rule *rule)
{
	uint64_t net = 0;

	for (unsigned i = 0; i <= DIV_TYPES_MAX; i++) {
		struct div_verdict v;

		if (!r->rows[i].turns)
			continue;
		row_verdict(r, rule, &r->rows[i], &v);
		net += v.net;
	}
	return net;
}

/* ---- output ---- */

void div_escape(struct sbuf *sb, const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = p[i];

		switch (c) {
		case '\r':
			sbuf_append(sb, "\\r", 2);
			break;
		case '\n':
			sbuf_append(sb, "\\n", 2);
			break;
		case '\t':
			sbuf_append(sb, "\\t", 2);
			break;
		case '\\':
			sbuf_append(sb, "\\\\", 2);
			break;
		case '"':
			sbuf_append(sb, "\\\"", 2);
			break;
		default:
			if (c >= 0x20 && c < 0x7f)
				sbuf_append(sb, (const char *)&c, 1);
			else
				sbuf_printf(sb, "\\x%02x", c);
		}
	}
}

static const char *role_name(enum div_role r)
{
	return r == DIV_CONTROL ? "control" : "candidate";
}

static const char *control_word(int c)
{
	return c == 1 ? "agreed" : c == 0 ? "differed" : "unknown";
}

/* An escaped string of p[a..b) as a JSON string. */
static void json_escaped(struct sbuf *sb, const unsigned char *p, size_t n)
{
	struct sbuf t;

	sbuf_init(&t);
	div_escape(&t, p, n);
	sbuf_append(&t, "", 1);
	sbuf_json_str(sb, t.buf);
	sbuf_free(&t);
}

struct json_ctx {
	struct sbuf *sb;
	const struct div_replica *r;
	int n;
};

static void excerpt_json(void *arg, const struct div_excerpt *e)
{
	struct json_ctx *c = arg;
	struct sbuf *sb = c->sb;
	unsigned pb = e->before < e->prod_n ? e->before : e->prod_n;
	unsigned rb = e->before < e->rep_n ? e->before : e->rep_n;

	sbuf_printf(sb, "%s{\"seq\":%llu,\"conn\":%llu,\"turn\":%llu,\"type\":", c->n++ ? "," : "",
		    (unsigned long long)e->seq, (unsigned long long)e->conn_id,
		    (unsigned long long)e->turn);
	sbuf_json_str(sb, div_type_name(c->r->types, e->type));
	sbuf_printf(sb,
		    ",\"offset\":%lld,\"stream_offset\":%lld,\"production_len\":%llu,"
		    "\"replica_len\":%llu,\"control\":\"%s\",\"request\":",
		    (long long)e->offset, (long long)e->stream_offset,
		    (unsigned long long)e->prod_len, (unsigned long long)e->rep_len,
		    control_word(e->control));
	json_escaped(sb, e->req, e->req_n);
	sbuf_append(sb, ",\"production\":{\"before\":", 24);
	json_escaped(sb, e->prod, pb);
	sbuf_append(sb, ",\"after\":", 9);
	json_escaped(sb, e->prod + pb, e->prod_n - pb);
	sbuf_append(sb, "},\"replica\":{\"before\":", 22);
	json_escaped(sb, e->rep, rb);
	sbuf_append(sb, ",\"after\":", 9);
	json_escaped(sb, e->rep + rb, e->rep_n - rb);
	sbuf_append(sb, "}}", 2);
}

void div_replica_report_json(const struct div_replica *r, const struct div_rule *rule,
			     struct sbuf *sb)
{
	struct json_ctx c = {sb, r, 0};
	int first = 1;

	sbuf_printf(sb,
		    "{\"role\":\"%s\",\"turns_compared\":%llu,\"turns_diverged\":%llu,"
		    "\"turns_net\":%llu,\"turns_unchecked\":%llu,\"conns_diverged\":%llu,"
		    "\"rule\":{\"relative_pct\":",
		    role_name(r->role), (unsigned long long)r->counts->turns_compared,
		    (unsigned long long)r->counts->turns_diverged,
		    (unsigned long long)div_replica_net(r, rule),
		    (unsigned long long)r->counts->turns_unchecked,
		    (unsigned long long)r->counts->conns_diverged);
	sbuf_json_num(sb, rule->relative_pct);
	sbuf_append(sb, ",\"absolute_pct\":", 16);
	sbuf_json_num(sb, rule->absolute_pct);
	sbuf_append(sb, ",\"z\":", 5);
	sbuf_json_num(sb, rule->z);
	sbuf_append(sb, "},\"types\":[", 11);
	for (unsigned i = 0; i <= DIV_TYPES_MAX; i++) {
		const struct div_type_counts *t = &r->rows[i];
		struct div_verdict v;

		if (!t->turns && !t->unchecked)
			continue;
		row_verdict(r, rule, t, &v);
		sbuf_printf(sb, "%s{\"type\":", first ? "" : ",");
		first = 0;
		sbuf_json_str(sb, div_type_name(r->types, i));
		sbuf_printf(sb,
			    ",\"turns\":%llu,\"raw\":%llu,\"unchecked\":%llu,\"paired\":%llu,"
			    "\"paired_raw\":%llu,\"noise\":%llu,\"cross\":%llu,\"net\":%llu,"
			    "\"has_control\":%s,\"reported\":%s,\"relative_pct\":",
			    (unsigned long long)t->turns, (unsigned long long)t->raw,
			    (unsigned long long)t->unchecked, (unsigned long long)t->paired,
			    (unsigned long long)t->paired_raw, (unsigned long long)t->noise,
			    (unsigned long long)t->cross, (unsigned long long)v.net,
			    v.has_control ? "true" : "false", v.reported ? "true" : "false");
		sbuf_json_num(sb, v.relative);
		sbuf_append(sb, ",\"absolute_pct\":", 16);
		sbuf_json_num(sb, v.absolute);
		sbuf_append(sb, "}", 1);
	}
	sbuf_printf(sb, "],\"excerpts_skipped\":%llu,\"excerpts\":[",
		    (unsigned long long)r->exc_skipped);
	div_replica_excerpts(r, excerpt_json, &c);
	sbuf_append(sb, "]}", 2);
}

struct text_ctx {
	struct sbuf *sb;
	const struct div_replica *r;
};

static void excerpt_text(void *arg, const struct div_excerpt *e)
{
	struct text_ctx *c = arg;
	struct sbuf *sb = c->sb, pre;
	unsigned pb = e->before < e->prod_n ? e->before : e->prod_n;
	size_t col;

	sbuf_printf(sb, "  #%llu conn %llu turn %llu  %s  ", (unsigned long long)e->seq,
		    (unsigned long long)e->conn_id, (unsigned long long)e->turn,
		    div_type_name(c->r->types, e->type));
	if (e->offset >= 0)
		sbuf_printf(sb, "first difference at byte %lld of the turn (stream byte %lld)",
			    (long long)e->offset, (long long)e->stream_offset);
	else
		sbuf_printf(sb, "differs (offset unknown: production's bytes were no longer kept)");
	sbuf_printf(sb, "; production %llu B, replica %llu B", (unsigned long long)e->prod_len,
		    (unsigned long long)e->rep_len);
	if (e->control >= 0)
		sbuf_printf(sb, "; control %s with production",
			    e->control ? "agreed" : "differed too (noise)");
	sbuf_append(sb, "\n", 1);
	if (e->req_n) {
		sbuf_append(sb, "      request     \"", 19);
		div_escape(sb, e->req, e->req_n);
		sbuf_append(sb, "\"\n", 2);
	}
	if (e->offset < 0)
		return;
	sbuf_append(sb, "      production  \"", 19);
	div_escape(sb, e->prod, e->prod_n);
	sbuf_append(sb, "\"\n      replica     \"", 21);
	div_escape(sb, e->rep, e->rep_n);
	sbuf_append(sb, "\"\n", 2);
	/* a caret under the first differing byte */
	sbuf_init(&pre);
	div_escape(&pre, e->prod, pb);
	col = 19 + pre.len;
	sbuf_free(&pre);
	for (size_t i = 0; i < col; i++)
		sbuf_append(sb, " ", 1);
	sbuf_append(sb, "^\n", 2);
}

void div_replica_report_text(const struct div_replica *r, const struct div_rule *rule,
			     struct sbuf *sb)
{
	struct text_ctx c = {sb, r};
	int header = 0;

	sbuf_printf(sb,
		    "  %s: turns compared %llu, diverged %llu, net (beyond noise) %llu, "
		    "unchecked %llu, connections diverged %llu\n",
		    role_name(r->role), (unsigned long long)r->counts->turns_compared,
		    (unsigned long long)r->counts->turns_diverged,
		    (unsigned long long)div_replica_net(r, rule),
		    (unsigned long long)r->counts->turns_unchecked,
		    (unsigned long long)r->counts->conns_diverged);
	for (unsigned i = 0; i <= DIV_TYPES_MAX; i++) {
		const struct div_type_counts *t = &r->rows[i];
		struct div_verdict v;

		if (!t->turns && !t->unchecked)
			continue;
		if (!header) {
			sbuf_printf(sb, "  %-40s %8s %8s %8s %8s %8s  %s\n", "request type",
				    "turns", "raw", "noise", "cross", "net", "verdict");
			header = 1;
		}
		row_verdict(r, rule, t, &v);
		sbuf_printf(sb, "  %-40s %8llu %8llu ", div_type_name(r->types, i),
			    (unsigned long long)t->turns, (unsigned long long)t->raw);
		if (v.has_control)
			sbuf_printf(sb, "%8llu %8llu ", (unsigned long long)t->noise,
				    (unsigned long long)t->cross);
		else
			sbuf_printf(sb, "%8s %8s ", "-", "-");
		sbuf_printf(sb, "%8llu  ", (unsigned long long)v.net);
		if (v.reported)
			sbuf_printf(sb, "DIVERGED (%.1f%% relative, %.2f%% of turns)\n", v.relative,
				    v.absolute);
		else if (v.raw && r->role == DIV_CONTROL)
			sbuf_printf(sb, "noise (an unmodified replica)\n");
		else if (v.raw)
			sbuf_printf(sb, "noise\n");
		else
			sbuf_printf(sb, "same\n");
	}
	if (r->exc_next > 1) {
		sbuf_printf(sb, "  excerpts (oldest first%s):\n",
			    r->exc_skipped ? "; more of the same types were not kept" : "");
		div_replica_excerpts(r, excerpt_text, &c);
	}
}
