/*
 * test_stats.c - the status field tables' three emitters (common/stats.h),
 * the one JSON string escaper (common/sbuf.h), and the reader of a
 * supervisor's /clone-info (admin_clone_info_parse).
 */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "admin/admin.h"
#include "common/stats.h"

/* A small object with every kind of field. */
struct thing {
	const char *name;
	const char *label;
	uint64_t hits;	 /* counter */
	uint64_t queued; /* gauge, bytes */
	int64_t pid;	 /* may be negative */
	double secs;	 /* may be NaN or infinite */
	uint64_t dur_us; /* shown in ms */
	int open;	 /* bool */
	int have_extra;	 /* the "extra" value exists */
	unsigned nchildren;
};

#define TH(o) ((const struct thing *)(o))

static int get_name(const void *o, const void *c, struct stats_val *v)
{
	v->s = TH(o)->name;
	return 0;
}

static int get_label(const void *o, const void *c, struct stats_val *v)
{
	v->s = TH(o)->label;
	return 0;
}

static int get_pid(const void *o, const void *c, struct stats_val *v)
{
	v->i = TH(o)->pid;
	return 0;
}

static int get_secs(const void *o, const void *c, struct stats_val *v)
{
	v->d = TH(o)->secs;
	return 0;
}

static int get_open(const void *o, const void *c, struct stats_val *v)
{
	v->b = TH(o)->open;
	return 0;
}

static int get_extra(const void *o, const void *c, struct stats_val *v)
{
	v->u = 7;
	return TH(o)->have_extra ? 0 : -ENODATA;
}

static int get_ctx(const void *o, const void *c, struct stats_val *v)
{
	v->u = *(const uint64_t *)c;
	return 0;
}

static int get_nchildren(const void *o, const void *c, struct stats_val *v)
{
	v->u = TH(o)->nchildren;
	return 0;
}

static void children_json(struct sbuf *sb, const void *o, const void *c)
{
	sbuf_printf(sb, "[");
	for (unsigned i = 0; i < TH(o)->nchildren; i++)
		sbuf_printf(sb, "%s%u", i ? "," : "", i);
	sbuf_printf(sb, "]");
}

static const struct stats_field thing_fields[] = {
	{.name = "name", .kind = STATS_STRING, .get = get_name},
	{.name = "label",
	 .kind = STATS_STRING,
	 .flags = STATS_F_LABEL | STATS_F_NO_JSON,
	 .metric = "who",
	 .get = get_label},
	{.name = "io.hits",
	 .kind = STATS_COUNTER,
	 .off = offsetof(struct thing, hits),
	 .metric = "t_hits_total",
	 .help = "Hits."},
	{.name = "io.queued",
	 .kind = STATS_GAUGE,
	 .unit = STATS_UNIT_BYTES,
	 .off = offsetof(struct thing, queued),
	 .metric = "t_queued_bytes",
	 .help = "Bytes queued."},
	{.name = "pid", .kind = STATS_INT, .get = get_pid, .metric = "t_pid", .help = "A pid."},
	{.name = "secs",
	 .kind = STATS_NUMBER,
	 .unit = STATS_UNIT_SECONDS,
	 .flags = STATS_F_KEY_LABEL,
	 .get = get_secs,
	 .metric = "t_seconds",
	 .help = "Seconds."},
	{.name = "dur_ms",
	 .kind = STATS_NUMBER,
	 .off = offsetof(struct thing, dur_us),
	 .div = 1000,
	 .json_fmt = "%.1f",
	 .text_fmt = "%.1f ms"},
	{.name = "open", .kind = STATS_BOOL, .get = get_open, .metric = "t_open", .help = "Open."},
	{.name = "extra", .kind = STATS_GAUGE, .get = get_extra, .metric = "t_extra", .help = "X."},
	{.name = "now", .kind = STATS_GAUGE, .get = get_ctx},
	{.name = "children",
	 .kind = STATS_LIST,
	 .get = get_nchildren,
	 .json = children_json,
	 .metric = "t_children",
	 .help = "Children."},
};

static const struct stats_table thing_table = STATS_TABLE(thing_fields);

static const uint64_t now = 42;

static struct thing things[2] = {
	{.name = "a\"b\\c\n",
	 .label = "x\"y\\z\nw",
	 .hits = 3,
	 .queued = 2048,
	 .pid = -1,
	 .secs = NAN,
	 .dur_us = 1250,
	 .open = 1,
	 .have_extra = 1,
	 .nchildren = 2},
	{.name = "two",
	 .label = "plain",
	 .hits = 5,
	 .queued = 10,
	 .pid = 77,
	 .secs = INFINITY,
	 .dur_us = 0,
	 .open = 0,
	 .have_extra = 0,
	 .nchildren = 0},
};

static const void *thing_row(void *arg, unsigned i, const void **ctx)
{
	(void)arg;
	*ctx = &now;
	return &things[i];
}

static const struct stats_rows thing_rows = {.n = 2, .row = thing_row, .arg = NULL};

static void json_members_nest_escape_and_null(void **state)
{
	struct sbuf sb;

	(void)state;
	sbuf_init(&sb);
	stats_json_array(&sb, &thing_table, &thing_rows);
	assert_string_equal(
		sb.buf,
		"[{\"name\":\"a\\\"b\\\\c\\n\",\"io\":{\"hits\":3,\"queued\":2048},\"pid\":-1,"
		"\"secs\":null,\"dur_ms\":1.2,\"open\":true,\"extra\":7,\"now\":42,"
		"\"children\":[0,1]},"
		"{\"name\":\"two\",\"io\":{\"hits\":5,\"queued\":10},\"pid\":77,\"secs\":null,"
		"\"dur_ms\":0.0,\"open\":false,\"now\":42,\"children\":[]}]");
	sbuf_free(&sb);
}

static void json_two_tables_fill_one_object(void **state)
{
	static const struct stats_field more[] = {
		{.name = "hits2", .kind = STATS_COUNTER, .off = offsetof(struct thing, hits)},
	};
	static const struct stats_table more_table = STATS_TABLE(more);
	struct sbuf sb;
	int first = 1;

	(void)state;
	sbuf_init(&sb);
	sbuf_append(&sb, "{", 1);
	stats_json_members(&sb, &more_table, &things[1], &now, &first);
	stats_json_members(&sb, &more_table, &things[0], &now, &first);
	sbuf_append(&sb, "}", 1);
	assert_string_equal(sb.buf, "{\"hits2\":5,\"hits2\":3}");
	sbuf_free(&sb);
}

static void json_str_escapes(void **state)
{
	struct sbuf sb;

	(void)state;
	sbuf_init(&sb);
	sbuf_json_str(&sb, "plain \"q\" back\\slash\nnl\ttab\x01 é");
	assert_string_equal(sb.buf, "\"plain \\\"q\\\" back\\\\slash\\nnl\\ttab\\u0001 é\"");
	sbuf_reset(&sb);
	sbuf_json_str(&sb, NULL);
	assert_string_equal(sb.buf, "\"\"");
	sbuf_reset(&sb);
	sbuf_json_num(&sb, INFINITY);
	sbuf_json_num(&sb, NAN);
	sbuf_json_num(&sb, 3);
	sbuf_json_num(&sb, 0.25);
	assert_string_equal(sb.buf, "nullnull30.250");
	sbuf_free(&sb);
}

static void text_templates(void **state)
{
	struct sbuf sb;

	(void)state;
	things[0].secs = 90;
	sbuf_init(&sb);
	stats_text(&sb, &thing_table, &things[0], &now,
		   "{name}|{io.hits}|{io.queued}|{pid}|{secs}|{secs:%.0f}|{dur_ms}|{open}"
		   "{?open  +}{!open  -}|{children}|{nope}\n");
	assert_string_equal(sb.buf, "a\"b\\c\n|3|2.0 KiB|-1|90.0 s|90|1.2 ms|yes +|2|{nope?}\n");
	sbuf_reset(&sb);
	stats_text(&sb, &thing_table, &things[1], &now, "{secs}|{extra}|{?open open}{!open shut}");
	assert_string_equal(sb.buf, "-|-|shut");
	sbuf_reset(&sb);
	things[1].secs = 7200;
	stats_text(&sb, &thing_table, &things[1], &now, "{secs}");
	assert_string_equal(sb.buf, "2.0 h");
	things[0].secs = NAN;
	things[1].secs = INFINITY;
	sbuf_free(&sb);
}

static void text_table_aligns_columns(void **state)
{
	static const struct stats_col cols[] = {
		{"NAME", -5, "{label}"},
		{"HITS", 6, "{io.hits}"},
		{"WHEN", 0, "{secs}{?open +}"},
	};
	struct sbuf sb;

	(void)state;
	things[0].label = "lab";
	sbuf_init(&sb);
	stats_text_table(&sb, &thing_table, &thing_rows, cols, 3);
	assert_string_equal(sb.buf, "NAME    HITS WHEN\n"
				    "lab        3 -+\n"
				    "plain      5 -\n");
	things[0].label = "x\"y\\z\nw";
	sbuf_free(&sb);
}

static void prometheus_help_once_labels_escaped(void **state)
{
	struct sbuf sb;

	(void)state;
	things[1].secs = -INFINITY;
	sbuf_init(&sb);
	stats_prom(&sb, &thing_table, &thing_rows, "svc=\"s\"");
	assert_string_equal(sb.buf,
			    "# HELP t_hits_total Hits.\n# TYPE t_hits_total counter\n"
			    "t_hits_total{svc=\"s\",who=\"x\\\"y\\\\z\\nw\"} 3\n"
			    "t_hits_total{svc=\"s\",who=\"plain\"} 5\n"
			    "# HELP t_queued_bytes Bytes queued.\n# TYPE t_queued_bytes gauge\n"
			    "t_queued_bytes{svc=\"s\",who=\"x\\\"y\\\\z\\nw\"} 2048\n"
			    "t_queued_bytes{svc=\"s\",who=\"plain\"} 10\n"
			    "# HELP t_pid A pid.\n# TYPE t_pid gauge\n"
			    "t_pid{svc=\"s\",who=\"x\\\"y\\\\z\\nw\"} -1\n"
			    "t_pid{svc=\"s\",who=\"plain\"} 77\n"
			    "# HELP t_seconds Seconds.\n# TYPE t_seconds gauge\n"
			    "t_seconds{svc=\"s\",who=\"x\\\"y\\\\z\\nw\"} NaN\n"
			    "t_seconds{svc=\"s\",who=\"plain\"} -Inf\n"
			    "# HELP t_open Open.\n# TYPE t_open gauge\n"
			    "t_open{svc=\"s\",who=\"x\\\"y\\\\z\\nw\"} 1\n"
			    "t_open{svc=\"s\",who=\"plain\"} 0\n"
			    "# HELP t_extra X.\n# TYPE t_extra gauge\n"
			    "t_extra{svc=\"s\",who=\"x\\\"y\\\\z\\nw\"} 7\n"
			    "# HELP t_children Children.\n# TYPE t_children gauge\n"
			    "t_children{svc=\"s\",who=\"x\\\"y\\\\z\\nw\"} 2\n"
			    "t_children{svc=\"s\",who=\"plain\"} 0\n");
	things[1].secs = INFINITY;
	sbuf_reset(&sb);
	things[0].secs = 1.5;
	stats_prom_object(&sb, &thing_table, &things[0], &now, "");
	assert_non_null(strstr(sb.buf, "\nt_seconds{who=\"x\\\"y\\\\z\\nw\"} 1.500\n"));
	assert_non_null(strstr(sb.buf, "\nt_hits_total{who=\"x\\\"y\\\\z\\nw\"} 3\n"));
	things[0].secs = NAN;
	sbuf_reset(&sb);
	stats_prom_object(&sb, &thing_table, &things[1], &now, NULL);
	assert_non_null(strstr(sb.buf, "\nt_seconds{who=\"plain\"} +Inf\n"));
	sbuf_reset(&sb);
	stats_prom_label(&sb, "service", "we\"b\\\n");
	assert_string_equal(sb.buf, "service=\"we\\\"b\\\\\\n\"");
	sbuf_free(&sb);
}

static void key_label_keeps_only_the_first_label(void **state)
{
	static const struct stats_field f[] = {
		{.name = "label",
		 .kind = STATS_STRING,
		 .flags = STATS_F_LABEL,
		 .metric = "who",
		 .get = get_label},
		{.name = "name",
		 .kind = STATS_STRING,
		 .flags = STATS_F_LABEL,
		 .metric = "name",
		 .get = get_name},
		{.name = "hits",
		 .kind = STATS_COUNTER,
		 .off = offsetof(struct thing, hits),
		 .metric = "h_total",
		 .help = "H."},
		{.name = "secs",
		 .kind = STATS_NUMBER,
		 .flags = STATS_F_KEY_LABEL,
		 .get = get_secs,
		 .metric = "s",
		 .help = "S."},
	};
	static const struct stats_table t = STATS_TABLE(f);
	struct sbuf sb;

	(void)state;
	sbuf_init(&sb);
	stats_prom_object(&sb, &t, &things[1], &now, "");
	assert_string_equal(sb.buf, "# HELP h_total H.\n# TYPE h_total counter\n"
				    "h_total{who=\"plain\",name=\"two\"} 5\n"
				    "# HELP s S.\n# TYPE s gauge\ns{who=\"plain\"} +Inf\n");
	sbuf_free(&sb);
}

static void stats_get_reads_by_name(void **state)
{
	struct stats_val v;

	(void)state;
	assert_int_equal(stats_get(&thing_table, "io.hits", &things[0], &now, &v), 0);
	assert_int_equal(v.u, 3);
	assert_int_equal(stats_get(&thing_table, "extra", &things[1], &now, &v), -ENODATA);
	assert_int_equal(stats_get(&thing_table, "missing", &things[1], &now, &v), -ENOENT);
}

/* A body served by a supervisor (doppel run, one clone, an idle replica). */
static const char real_body[] =
	"{\"id\":1,\"pid\":21599,\"replica_id\":1,\"age_s\":0.8,\"frozen_ms\":266.8,"
	"\"memdump_ms\":17.3,\"memwrite_ms\":4.8,\"final_sync_ms\":0.0,\"precopy_ms\":0.0,"
	"\"dump_ms\":465.1,\"clone_total_ms\":1041.6,\"restore_ms\":569.1,"
	"\"image_bytes\":17047552,\"buffer\":4194304,\"log_bytes\":0,\"log_dropped\":0,"
	"\"dir\":\"/tmp/doppel-test.Vrb2hC/work/cmp_21437/clone-1\",\"host\":\"\","
	"\"address\":\"127.0.0.1:8000\",\"debug_window_s\":0.816,\"window_open\":true,"
	"\"forecast_s\":null,\"overflows\":0,\"service_pid\":21528,\"occupancy\":0.0000,"
	"\"buffered\":0,\"max_conn_buffered\":0,\"budget\":268435456}\n";

static void clone_info_parses_a_real_body(void **state)
{
	struct admin_clone_info ci;
	char err[256];

	(void)state;
	assert_int_equal(admin_clone_info_parse(real_body, &ci, err, sizeof(err)), 0);
	assert_int_equal(ci.id, 1);
	assert_int_equal(ci.pid, 21599);
	assert_int_equal(ci.service_pid, 21528);
	assert_string_equal(ci.dir, "/tmp/doppel-test.Vrb2hC/work/cmp_21437/clone-1");
	assert_true(ci.occupancy == 0);
	assert_true(fabs(ci.debug_window_s - 0.816) < 1e-9);
	assert_true(isinf(ci.forecast_s) && ci.forecast_s > 0); /* null: nothing fills */
	assert_true(ci.window_open);
	assert_int_equal(ci.overflows, 0);
	assert_int_equal(ci.buffer, 4194304);
	assert_int_equal(ci.budget, 268435456);
}

static void clone_info_forecast_and_errors(void **state)
{
	struct admin_clone_info ci;
	char err[256];

	(void)state;
	assert_int_equal(admin_clone_info_parse("{\"pid\":5,\"dir\":\"/d\",\"forecast_s\":2.5,"
						"\"occupancy\":0.75,\"window_open\":false,"
						"\"overflows\":3}",
						&ci, err, sizeof(err)),
			 0);
	assert_true(ci.forecast_s == 2.5);
	assert_true(ci.occupancy == 0.75);
	assert_false(ci.window_open);
	assert_int_equal(ci.overflows, 3);
	/* No forecast at all: not filling either, never "overflow now". */
	assert_int_equal(
		admin_clone_info_parse("{\"pid\":5,\"dir\":\"/d\"}", &ci, err, sizeof(err)), 0);
	assert_true(isinf(ci.forecast_s) && ci.forecast_s > 0);
	assert_int_equal(admin_clone_info_parse("pid=5\ndir=/d\n", &ci, err, sizeof(err)), -EPROTO);
	assert_non_null(strstr(err, "not JSON"));
	assert_int_equal(admin_clone_info_parse("{\"dir\":\"/d\"}", &ci, err, sizeof(err)),
			 -EPROTO);
	assert_int_equal(admin_clone_info_parse("[1,2]", &ci, err, sizeof(err)), -EPROTO);
	assert_int_equal(admin_clone_info_parse(NULL, &ci, err, sizeof(err)), -EPROTO);
}

/* A worker's counters, folded over workers with stats_fold. */
struct part {
	uint64_t hits;	 /* summed */
	uint64_t buffer; /* a setting: the same everywhere */
	uint64_t high;	 /* a high-water mark: the largest */
	uint64_t seen;	 /* read by a getter: left to the caller */
};

static int get_seen(const void *o, const void *c, struct stats_val *v)
{
	(void)c;
	v->u = ((const struct part *)o)->seen;
	return 0;
}

static void fold_sums_keeps_settings_and_maxima(void **state)
{
	static const struct stats_field f[] = {
		{.name = "hits", .kind = STATS_COUNTER, .off = offsetof(struct part, hits)},
		{.name = "buffer",
		 .kind = STATS_GAUGE,
		 .flags = STATS_F_SAME,
		 .off = offsetof(struct part, buffer)},
		{.name = "high",
		 .kind = STATS_GAUGE,
		 .flags = STATS_F_MAX,
		 .off = offsetof(struct part, high)},
		{.name = "seen", .kind = STATS_GAUGE, .get = get_seen},
	};
	static const struct stats_table t = STATS_TABLE(f);
	struct part a = {3, 4096, 10, 7}, b = {5, 4096, 30, 9}, c = {1, 4096, 20, 1};
	struct part sum = {0};

	(void)state;
	stats_fold(&t, &sum, &a);
	stats_fold(&t, &sum, &b);
	stats_fold(&t, &sum, &c);
	assert_int_equal(sum.hits, 9);
	assert_int_equal(sum.buffer, 4096);
	assert_int_equal(sum.high, 30);
	assert_int_equal(sum.seen, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(json_members_nest_escape_and_null),
		cmocka_unit_test(json_two_tables_fill_one_object),
		cmocka_unit_test(json_str_escapes),
		cmocka_unit_test(text_templates),
		cmocka_unit_test(text_table_aligns_columns),
		cmocka_unit_test(prometheus_help_once_labels_escaped),
		cmocka_unit_test(key_label_keeps_only_the_first_label),
		cmocka_unit_test(stats_get_reads_by_name),
		cmocka_unit_test(clone_info_parses_a_real_body),
		cmocka_unit_test(clone_info_forecast_and_errors),
		cmocka_unit_test(fold_sums_keeps_settings_and_maxima),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
