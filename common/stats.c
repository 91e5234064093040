/*
 * stats.c - the JSON, text and Prometheus emitters over field tables
 * (stats.h).
 */
#include <assert.h>
#include "common/stats.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "common/size.h"

static const struct stats_field *field_find(const struct stats_table *t, const char *name,
					    size_t len)
{
	for (size_t i = 0; i < t->nfields; i++)
		if (strncmp(t->fields[i].name, name, len) == 0 && t->fields[i].name[len] == '\0')
			return &t->fields[i];
	return NULL;
}

static int field_read(const struct stats_field *f, const void *obj, const void *ctx,
		      struct stats_val *v)
{
	memset(v, 0, sizeof(*v));
	if (f->get)
		return f->get(obj, ctx, v);
	if (f->kind == STATS_NUMBER && f->div != 0) {
		uint64_t u;

		memcpy(&u, (const char *)obj + f->off, sizeof(u));
		v->d = (double)u / f->div;
		return 0;
	}
	if (f->kind != STATS_COUNTER && f->kind != STATS_GAUGE)
		return -ENODATA; /* only plain uint64_t fields are read by offset */
	memcpy(&v->u, (const char *)obj + f->off, sizeof(v->u));
	return 0;
}

int stats_get(const struct stats_table *t, const char *name, const void *obj, const void *ctx,
	      struct stats_val *v)
{
	const struct stats_field *f = field_find(t, name, strlen(name));

	return f ? field_read(f, obj, ctx, v) : -ENOENT;
}

/* ---- JSON ---- */

static void json_value(struct sbuf *sb, const struct stats_field *f, const struct stats_val *v)
{
	switch (f->kind) {
	case STATS_COUNTER:
	case STATS_GAUGE:
	case STATS_LIST:
		sbuf_printf(sb, "%llu", (unsigned long long)v->u);
		break;
	case STATS_INT:
		sbuf_printf(sb, "%lld", (long long)v->i);
		break;
	case STATS_NUMBER:
		if (!isfinite(v->d))
			sbuf_append(sb, "null", 4);
		else if (f->json_fmt)
			sbuf_printf(sb, f->json_fmt, v->d);
		else
			sbuf_json_num(sb, v->d);
		break;
	case STATS_BOOL:
		sbuf_printf(sb, "%s", v->b ? "true" : "false");
		break;
	case STATS_STRING:
		sbuf_json_str(sb, v->s ? v->s : "");
		break;
	}
}

void stats_json_members(struct sbuf *sb, const struct stats_table *t, const void *obj,
			const void *ctx, int *first)
{
	const char *group = NULL; /* the open nested object, as a prefix of a field name */
	size_t glen = 0;
	int gfirst = 0;
#ifndef NDEBUG
	/* Groups already closed: a table must keep each group's fields together. */
	const char *closed[32];
	size_t nclosed = 0;
#endif

	for (size_t i = 0; i < t->nfields; i++) {
		const struct stats_field *f = &t->fields[i];
		const char *dot = strchr(f->name, '.');
		size_t len = dot ? (size_t)(dot - f->name) : 0;
		struct stats_val v;

		if (f->flags & STATS_F_NO_JSON)
			continue;
		if (!(f->kind == STATS_LIST && f->json) && field_read(f, obj, ctx, &v) < 0)
			continue; /* no such value now: the member is left out */
		if (group && (!dot || len != glen || strncmp(group, f->name, len) != 0)) {
			sbuf_append(sb, "}", 1);
			group = NULL;
		}
		if (dot && !group) {
#ifndef NDEBUG
			for (size_t k = 0; k < nclosed; k++)
				assert(strncmp(closed[k], f->name, len + 1) != 0 &&
				       "a stats table splits a group: keep its fields together");
			if (nclosed < sizeof(closed) / sizeof(closed[0]))
				closed[nclosed++] = f->name;
#endif
			sbuf_printf(sb, "%s\"%.*s\":{", *first ? "" : ",", (int)len, f->name);
			*first = 0;
			group = f->name;
			glen = len;
			gfirst = 1;
		}
		if (group) {
			sbuf_printf(sb, "%s\"%s\":", gfirst ? "" : ",", dot + 1);
			gfirst = 0;
		} else {
			sbuf_printf(sb, "%s\"%s\":", *first ? "" : ",", f->name);
			*first = 0;
		}
		if (f->kind == STATS_LIST && f->json)
			f->json(sb, obj, ctx);
		else
			json_value(sb, f, &v);
	}
	if (group)
		sbuf_append(sb, "}", 1);
}

void stats_json_object(struct sbuf *sb, const struct stats_table *t, const void *obj,
		       const void *ctx)
{
	int first = 1;

	sbuf_append(sb, "{", 1);
	stats_json_members(sb, t, obj, ctx, &first);
	sbuf_append(sb, "}", 1);
}

void stats_json_array(struct sbuf *sb, const struct stats_table *t, const struct stats_rows *rows)
{
	int n = 0;

	sbuf_append(sb, "[", 1);
	for (unsigned i = 0; i < rows->n; i++) {
		const void *ctx = NULL;
		const void *obj = rows->row(rows->arg, i, &ctx);

		if (!obj)
			continue;
		if (n++)
			sbuf_append(sb, ",", 1);
		stats_json_object(sb, t, obj, ctx);
	}
	sbuf_append(sb, "]", 1);
}

/* ---- text ---- */

static void text_seconds(struct sbuf *sb, double s)
{
	if (s < 120)
		sbuf_printf(sb, "%.1f s", s);
	else if (s < 7200)
		sbuf_printf(sb, "%.1f min", s / 60);
	else
		sbuf_printf(sb, "%.1f h", s / 3600);
}

/* The text of f; fmt (for a NUMBER) overrides the field's own format. */
static void text_value(struct sbuf *sb, const struct stats_field *f, const void *obj,
		       const void *ctx, const char *fmt)
{
	const char *none = f->none ? f->none : "-";
	struct stats_val v;

	if (field_read(f, obj, ctx, &v) < 0) {
		sbuf_printf(sb, "%s", none);
		return;
	}
	switch (f->kind) {
	case STATS_COUNTER:
	case STATS_GAUGE:
	case STATS_LIST:
		if (f->unit == STATS_UNIT_BYTES) {
			char buf[32];

			sbuf_printf(sb, "%s", size_format(v.u, buf, sizeof(buf)));
		} else {
			sbuf_printf(sb, "%llu", (unsigned long long)v.u);
		}
		break;
	case STATS_INT:
		sbuf_printf(sb, "%lld", (long long)v.i);
		break;
	case STATS_NUMBER:
		if (!isfinite(v.d))
			sbuf_printf(sb, "%s", none);
		else if (fmt || f->text_fmt)
			sbuf_printf(sb, fmt ? fmt : f->text_fmt, v.d);
		else if (f->unit == STATS_UNIT_SECONDS)
			text_seconds(sb, v.d);
		else
			sbuf_printf(sb, "%.3f", v.d);
		break;
	case STATS_BOOL:
		sbuf_printf(sb, "%s", v.b ? "yes" : "no");
		break;
	case STATS_STRING:
		sbuf_printf(sb, "%s", v.s && *v.s ? v.s : f->none ? f->none : "");
		break;
	}
}

static int is_set(const struct stats_field *f, const void *obj, const void *ctx)
{
	struct stats_val v;

	if (field_read(f, obj, ctx, &v) < 0)
		return 0;
	switch (f->kind) {
	case STATS_INT:
		return v.i != 0;
	case STATS_NUMBER:
		return isfinite(v.d) && v.d != 0;
	case STATS_BOOL:
		return v.b;
	case STATS_STRING:
		return v.s && *v.s;
	default:
		return v.u != 0;
	}
}

void stats_text(struct sbuf *sb, const struct stats_table *t, const void *obj, const void *ctx,
		const char *tmpl)
{
	const char *p = tmpl;

	while (*p) {
		const char *open = strchr(p, '{'), *close, *name, *end;
		const struct stats_field *f;
		char fmt[32];
		int cond = 0;

		if (!open || !(close = strchr(open, '}'))) {
			sbuf_printf(sb, "%s", p);
			return;
		}
		sbuf_append(sb, p, (size_t)(open - p));
		p = close + 1;
		name = open + 1;
		if (*name == '?' || *name == '!')
			cond = *name++;
		end = name;
		while (end < close && *end != ' ' && *end != ':')
			end++;
		f = field_find(t, name, (size_t)(end - name));
		if (!f) {
			sbuf_printf(sb, "{%.*s?}", (int)(end - name), name);
			continue;
		}
		if (cond) {
			if (is_set(f, obj, ctx) == (cond == '?') && end < close)
				sbuf_append(sb, end + 1, (size_t)(close - end - 1));
			continue;
		}
		if (*end == ':' && (size_t)(close - end) <= sizeof(fmt)) {
			snprintf(fmt, sizeof(fmt), "%.*s", (int)(close - end - 1), end + 1);
			text_value(sb, f, obj, ctx, fmt);
		} else {
			text_value(sb, f, obj, ctx, NULL);
		}
	}
}

static void text_cell(struct sbuf *sb, const char *text, size_t len, int width)
{
	size_t w = (size_t)(width < 0 ? -width : width);

	if (width > 0)
		for (size_t i = len; i < w; i++)
			sbuf_append(sb, " ", 1);
	sbuf_append(sb, text, len);
	if (width < 0)
		for (size_t i = len; i < w; i++)
			sbuf_append(sb, " ", 1);
}

void stats_text_table(struct sbuf *sb, const struct stats_table *t, const struct stats_rows *rows,
		      const struct stats_col *cols, size_t ncols)
{
	struct sbuf cell;

	for (size_t c = 0; c < ncols; c++) {
		if (c)
			sbuf_append(sb, " ", 1);
		text_cell(sb, cols[c].head, strlen(cols[c].head), cols[c].width);
	}
	sbuf_append(sb, "\n", 1);
	sbuf_init(&cell);
	for (unsigned i = 0; i < rows->n; i++) {
		const void *ctx = NULL;
		const void *obj = rows->row(rows->arg, i, &ctx);

		if (!obj)
			continue;
		for (size_t c = 0; c < ncols; c++) {
			sbuf_reset(&cell);
			stats_text(&cell, t, obj, ctx, cols[c].tmpl);
			if (c)
				sbuf_append(sb, " ", 1);
			text_cell(sb, cell.buf ? cell.buf : "", cell.len, cols[c].width);
		}
		sbuf_append(sb, "\n", 1);
	}
	sbuf_free(&cell);
}

/* ---- Prometheus ---- */

void stats_prom_label(struct sbuf *sb, const char *name, const char *value)
{
	sbuf_printf(sb, "%s=\"", name);
	for (const char *p = value ? value : ""; *p; p++) {
		if (*p == '\\')
			sbuf_append(sb, "\\\\", 2);
		else if (*p == '"')
			sbuf_append(sb, "\\\"", 2);
		else if (*p == '\n')
			sbuf_append(sb, "\\n", 2);
		else
			sbuf_append(sb, p, 1);
	}
	sbuf_append(sb, "\"", 1);
}

/* The row's own labels (its STATS_F_LABEL fields), each preceded by a comma when sep. */
static void prom_row_labels(struct sbuf *sb, const struct stats_table *t, const void *obj,
			    const void *ctx, int sep, int key_only)
{
	struct sbuf val;

	sbuf_init(&val);
	for (size_t i = 0; i < t->nfields; i++) {
		const struct stats_field *f = &t->fields[i];

		if (!(f->flags & STATS_F_LABEL) || !f->metric)
			continue;
		sbuf_reset(&val);
		text_value(&val, f, obj, ctx, NULL);
		if (sep)
			sbuf_append(sb, ",", 1);
		sep = 1;
		stats_prom_label(sb, f->metric, val.buf ? val.buf : "");
		if (key_only)
			break;
	}
	sbuf_free(&val);
}

static void prom_value(struct sbuf *sb, const struct stats_field *f, const struct stats_val *v)
{
	switch (f->kind) {
	case STATS_INT:
		sbuf_printf(sb, "%lld", (long long)v->i);
		break;
	case STATS_NUMBER:
		if (isnan(v->d))
			sbuf_printf(sb, "NaN");
		else if (isinf(v->d))
			sbuf_printf(sb, "%sInf", v->d > 0 ? "+" : "-");
		else
			sbuf_printf(sb, "%.3f", v->d);
		break;
	case STATS_BOOL:
		sbuf_printf(sb, "%d", v->b ? 1 : 0);
		break;
	default:
		sbuf_printf(sb, "%llu", (unsigned long long)v->u);
		break;
	}
}

static int prom_exported(const struct stats_field *f)
{
	if (!f->metric || (f->flags & STATS_F_LABEL) || f->kind == STATS_STRING)
		return 0;
	return f->kind != STATS_LIST || f->get;
}

void stats_prom(struct sbuf *sb, const struct stats_table *t, const struct stats_rows *rows,
		const char *labels)
{
	if (!labels)
		labels = "";
	for (size_t i = 0; i < t->nfields; i++) {
		const struct stats_field *f = &t->fields[i];

		if (!prom_exported(f))
			continue;
		sbuf_printf(sb, "# HELP %s %s\n# TYPE %s %s\n", f->metric, f->help ? f->help : "",
			    f->metric, f->kind == STATS_COUNTER ? "counter" : "gauge");
		for (unsigned r = 0; r < rows->n; r++) {
			const void *ctx = NULL;
			const void *obj = rows->row(rows->arg, r, &ctx);
			struct stats_val v;

			if (!obj || field_read(f, obj, ctx, &v) < 0)
				continue;
			sbuf_printf(sb, "%s{%s", f->metric, labels);
			prom_row_labels(sb, t, obj, ctx, *labels != '\0',
					(f->flags & STATS_F_KEY_LABEL) != 0);
			sbuf_append(sb, "} ", 2);
			prom_value(sb, f, &v);
			sbuf_append(sb, "\n", 1);
		}
	}
}

struct one_row {
	const void *obj, *ctx;
};

static const void *one_row(void *arg, unsigned i, const void **ctx)
{
	const struct one_row *o = arg;

	(void)i;
	*ctx = o->ctx;
	return o->obj;
}

void stats_prom_object(struct sbuf *sb, const struct stats_table *t, const void *obj,
		       const void *ctx, const char *labels)
{
	struct one_row o = {obj, ctx};
	struct stats_rows rows = {.n = 1, .row = one_row, .arg = &o};

	stats_prom(sb, t, &rows, labels);
}

void stats_fold(const struct stats_table *t, void *dst, const void *src)
{
	for (size_t i = 0; i < t->nfields; i++) {
		const struct stats_field *f = &t->fields[i];
		uint64_t *d, v;

		if (f->get || (f->kind != STATS_COUNTER && f->kind != STATS_GAUGE))
			continue;
		d = (uint64_t *)((char *)dst + f->off);
		memcpy(&v, (const char *)src + f->off, sizeof(v));
		if (f->flags & STATS_F_SAME)
			*d = *d ? *d : v;
		else if (f->flags & STATS_F_MAX)
			*d = v > *d ? v : *d;
		else
			*d += v;
	}
}
