/*
 * stats.h - status fields described once, shown three ways.
 *
 * Every value doppel reports about an object (the proxy, a replica, the
 * supervisor, a clone, an upstream) is one entry of a table kept next to the
 * object (HAProxy's stat_fields[] pattern): its JSON name, its kind, a help
 * sentence, how the text view shows it, and how to read it (the offset of a
 * uint64_t in the object, or a getter for computed values). Three emitters
 * walk a table over one object or over rows of objects:
 *   - JSON members (`/status`, `/clone-info`): a "group.member" name nests the
 *     member in the object "group" (one level; a group's fields are adjacent);
 *   - text: templates where {name} is a field's text, and aligned columns;
 *   - Prometheus exposition (`/metrics`): HELP and TYPE once per metric, a
 *     sample per row, label values escaped.
 * Adding a counter is adding a table line: the three views follow.
 *
 * Off the hot path only: emitters allocate and getters may compute.
 * Ownership: tables are static const data; emitters append to the caller's
 * sbuf; nothing here keeps a pointer after it returns.
 */
#ifndef DOPPEL_COMMON_STATS_H
#define DOPPEL_COMMON_STATS_H

#include <stddef.h>
#include <stdint.h>

#include "common/sbuf.h"

enum stats_kind {
	STATS_COUNTER, /* uint64_t that only grows (Prometheus counter) */
	STATS_GAUGE,   /* uint64_t as it is now (Prometheus gauge) */
	STATS_INT,     /* int64_t: pids, ports (gauge) */
	STATS_NUMBER,  /* double; NaN and infinities are JSON null, Prometheus NaN/+Inf */
	STATS_BOOL,    /* JSON true/false, Prometheus 0/1 */
	STATS_STRING,  /* JSON string; a Prometheus label with STATS_F_LABEL, else not exported */
	/*
	 * A nested array or object: JSON is what the field's json callback
	 * writes; Prometheus and text use the getter's uint64_t (e.g. the
	 * number of elements) when there is one.
	 */
	STATS_LIST,
};

/* How the text view shows a value (JSON and Prometheus show plain numbers). */
enum stats_unit {
	STATS_UNIT_NONE,
	STATS_UNIT_BYTES,   /* "4.0 MiB" */
	STATS_UNIT_SECONDS, /* "12.3 s", "4.5 min", "2.0 h" */
};

/* A value as a getter returns it: the member that matches the field's kind. */
struct stats_val {
	union {
		uint64_t u;    /* COUNTER, GAUGE, LIST */
		int64_t i;     /* INT */
		double d;      /* NUMBER */
		int b;	       /* BOOL */
		const char *s; /* STRING (NULL reads as "") */
	};
};

enum {
	/* Prometheus: the field labels every sample of its row (label name: .metric). */
	STATS_F_LABEL = 1 << 0,
	/* Not a JSON member (a label taken from a parent object, say). */
	STATS_F_NO_JSON = 1 << 1,
	/* Prometheus: the samples carry the row's first label only, not all of them. */
	STATS_F_KEY_LABEL = 1 << 2,
	/* stats_fold: a setting, the same in every part: not summed, the first part's kept. */
	STATS_F_SAME = 1 << 3,
	/* stats_fold: a high-water mark: the largest of the parts, not their sum. */
	STATS_F_MAX = 1 << 4,
};

struct stats_field {
	const char *name; /* JSON member ("group.member" nests); templates say {name} */
	enum stats_kind kind;
	unsigned flags;	    /* STATS_F_* */
	const char *metric; /* Prometheus metric (or label) name; NULL: not exported */
	const char *help;   /* Prometheus HELP: one sentence */
	enum stats_unit unit;
	const char *text_fmt; /* NUMBER: printf format of the text view ("%.1f ms") */
	const char *json_fmt; /* NUMBER: printf format in JSON ("%.1f"); NULL: sbuf_json_num */
	const char *none;     /* text for an absent, empty or infinite value (default "-") */
	/*
	 * How to read it: the getter when set, else the uint64_t at obj + off
	 * (for a NUMBER, divided by div: 1000 shows microseconds as milliseconds).
	 */
	size_t off;
	double div;
	/* Fills v; returns 0, or -ENODATA when the object has no such value now. */
	int (*get)(const void *obj, const void *ctx, struct stats_val *v);
	void (*json)(struct sbuf *sb, const void *obj, const void *ctx); /* STATS_LIST */
};

struct stats_table {
	const struct stats_field *fields;
	size_t nfields;
};

#define STATS_TABLE(fields_array)                                            \
	{                                                                    \
		.fields = (fields_array),                                    \
		.nfields = sizeof(fields_array) / sizeof((fields_array)[0]), \
	}

/*
 * Rows of objects for one table: row(arg, i, &ctx) returns row i's object and
 * sets its context (which may live in arg and be overwritten by the next
 * call), or returns NULL to skip the slot.
 */
struct stats_rows {
	unsigned n;
	const void *(*row)(void *arg, unsigned i, const void **ctx);
	void *arg;
};

/* Reads field `name` of obj. Returns 0, -ENOENT (no such field) or -ENODATA. */
int stats_get(const struct stats_table *t, const char *name, const void *obj, const void *ctx,
	      struct stats_val *v);

/* ---- JSON ---- */

/*
 * Appends obj's fields as JSON members, without braces, a comma before each
 * unless *first (which it clears): two tables can fill one object.
 */
void stats_json_members(struct sbuf *sb, const struct stats_table *t, const void *obj,
			const void *ctx, int *first);
/* {members} */
void stats_json_object(struct sbuf *sb, const struct stats_table *t, const void *obj,
		       const void *ctx);
/* [{...},...] over rows */
void stats_json_array(struct sbuf *sb, const struct stats_table *t, const struct stats_rows *rows);

/* ---- text ---- */

/*
 * Appends tmpl with, for each field of t:
 *   {name}       the field's text (unit, text_fmt, none);
 *   {name:FMT}   a NUMBER printed with the printf format FMT instead;
 *   {?name TEXT} TEXT when the field is set (true, non-zero, non-empty);
 *   {!name TEXT} TEXT when it is not.
 * An unknown name shows as {name?}: a bug in the template, visible at once.
 */
void stats_text(struct sbuf *sb, const struct stats_table *t, const void *obj, const void *ctx,
		const char *tmpl);

/* A column: heading, width (negative: left-aligned; 0: last, not padded), cell template. */
struct stats_col {
	const char *head;
	int width;
	const char *tmpl;
};
/* The heading line, then a line per row, columns separated by one space. */
void stats_text_table(struct sbuf *sb, const struct stats_table *t, const struct stats_rows *rows,
		      const struct stats_col *cols, size_t ncols);

/* ---- Prometheus ---- */

/*
 * Every exported field of t as a metric (HELP and TYPE once), a sample per
 * row, labelled with labels (already escaped, "" for none) and the row's
 * STATS_F_LABEL fields.
 */
void stats_prom(struct sbuf *sb, const struct stats_table *t, const struct stats_rows *rows,
		const char *labels);
void stats_prom_object(struct sbuf *sb, const struct stats_table *t, const void *obj,
		       const void *ctx, const char *labels);
/* Appends name="value", the value escaped as the exposition format says (\\, \", \n). */
void stats_prom_label(struct sbuf *sb, const char *name, const char *value);

/*
 * Fold one part of an object into a sum of parts (dst, zeroed before the
 * first part): every COUNTER and GAUGE read at an offset is added (the
 * largest kept with STATS_F_MAX; with STATS_F_SAME the first part's value,
 * taken when dst's is 0). Fields with a getter are left to the caller.
 */
void stats_fold(const struct stats_table *t, void *dst, const void *src);

#endif
