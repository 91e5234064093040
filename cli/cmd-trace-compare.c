/*
 * cmd-trace-compare.c - `doppel trace compare`: diff two traces with a
 * comparator and a threshold; what differs first, then a summary.
 */
#include <stdlib.h>
#include <string.h>

#include "cli/cmd-trace.h"
#include "common/size.h"

static int exec_compare(int argc, char **argv);

const struct cmd_entry cmd_trace_compare_entry = {
	.name = "trace compare",
	.usage = "[--by exact|name|timing] [--threshold X] [--max-diff PCT] [--json] [OPTIONS] A B",
	.summary = "diff two traces: the first divergent call, the differences, a verdict",
	.help = "Walks A and B together. At the first event that differs it shows where (event\n"
		"numbers, the call path on each side, the events before), then resynchronises\n"
		"on the next common events and goes on; differences are listed as hunks (-\n"
		"only in A, + only in B). The summary counts matched, missing, extra and\n"
		"changed events and names the calls whose counts differ most. Compare like\n"
		"with like: one request, one thread (demux first), and summarise or coarsen\n"
		"both sides the same way to hide what does not matter.\n"
		"\n"
		"options:\n"
		"  --by exact          events must match in kind, name, arguments, result "
		"(default)\n"
		"  --by name           same function or syscall; different arguments or results\n"
		"                      are listed as changes\n"
		"  --by timing         same function, and durations within --threshold; slower or\n"
		"                      faster calls are listed by how much\n"
		"  --threshold X       timing: '50%' (relative, default) and/or '100us' "
		"(absolute;\n"
		"                      both may be given, a change must exceed both)\n"
		"  --max-diff PCT      verdict 'similar' when at most PCT of events differ\n"
		"                      (default 0%)\n"
		"  --window N          events looked ahead to resynchronise (default 4096)\n"
		"  --context N         matching events shown before the divergence (default 3)\n"
		"  --hunks N           differences listed (default 10)\n"
		"  --json              the report as JSON\n"
		"  --exit-status       exit 3 when the verdict is 'different' (like diff's "
		"1)\n" CMD_TRACE_READ_HELP "\n"
		"example:\n"
		"  doppel trace compare good.dtr bad.dtr\n"
		"  doppel trace compare --by timing --threshold 100% prod-req.dtt clone-req.dtt\n",
	.exec = exec_compare,
};

static int parse_pct(const char *t, double *out)
{
	char *end;
	double v = strtod(t, &end);

	if (end == t || v < 0 || (*end && strcmp(end, "%") != 0))
		return -1;
	*out = v / 100.0;
	return 0;
}

struct compare_args {
	struct trace_compare_opts co;
	int exit_status, rel_set, abs_set;
};

static int compare_opt(const struct cmd_entry *e, void *ctx, int c, const char *arg)
{
	struct compare_args *a = ctx;
	unsigned long long v;
	uint64_t ns;

	switch (c) {
	case 'b':
		if (trace_compare_parse_by(arg, &a->co.by) < 0)
			return cmd_usage_error(e, "--by '%s': use exact, name or timing", arg);
		break;
	case 't':
		if (strchr(arg, '%')) {
			if (parse_pct(arg, &a->co.threshold_rel) < 0)
				return cmd_usage_error(e, "--threshold '%s': e.g. 50%% or 100us",
						       arg);
			a->rel_set = 1;
		} else if (duration_parse(arg, &ns) == 0) {
			a->co.threshold_ns = ns;
			a->abs_set = 1;
		} else {
			return cmd_usage_error(e, "--threshold '%s': e.g. 50%% or 100us", arg);
		}
		break;
	case 'm':
		if (parse_pct(arg, &a->co.max_diff) < 0)
			return cmd_usage_error(e, "--max-diff '%s': a percentage, e.g. 5%%", arg);
		break;
	case 'w':
		if (cmd_trace_parse_uint(e, "--window", arg, 1u << 24, &v) < 0)
			return EXIT_USAGE;
		a->co.window = (size_t)v;
		break;
	case 'c':
		if (cmd_trace_parse_uint(e, "--context", arg, 1000, &v) < 0)
			return EXIT_USAGE;
		a->co.context = (unsigned)v;
		break;
	case 'h':
		if (cmd_trace_parse_uint(e, "--hunks", arg, 1u << 20, &v) < 0)
			return EXIT_USAGE;
		a->co.max_hunks = (unsigned)v;
		break;
	case 'j':
		a->co.json = 1;
		break;
	case 'x':
		a->exit_status = 1;
		break;
	}
	return 0;
}

static int exec_compare(int argc, char **argv)
{
	static const struct option opts[] = {
		{"by", required_argument, NULL, 'b'},
		{"threshold", required_argument, NULL, 't'},
		{"max-diff", required_argument, NULL, 'm'},
		{"window", required_argument, NULL, 'w'},
		{"context", required_argument, NULL, 'c'},
		{"hunks", required_argument, NULL, 'h'},
		{"json", no_argument, NULL, 'j'},
		{"exit-status", no_argument, NULL, 'x'},
		{NULL, 0, NULL, 0},
	};
	const struct cmd_entry *e = &cmd_trace_compare_entry;
	struct trace_read_opts ro = {0};
	struct compare_args a = {.co = {.context = 3, .max_hunks = 10, .threshold_rel = 0.5}};
	struct trace_compare_result res;
	struct trace_reader *ra = NULL, *rb = NULL;
	char err[1024], *report = NULL;
	size_t len = 0;
	int rc;

	rc = cmd_trace_getopt(e, argc, argv, "", opts, compare_opt, &a, &ro);
	if (rc)
		return rc;
	if (a.abs_set && !a.rel_set)
		a.co.threshold_rel = 0; /* only the absolute threshold was asked for */
	if (argc - optind != 2)
		return cmd_usage_error(e, "give two traces, A and B");
	if (!strcmp(argv[optind], "-") && !strcmp(argv[optind + 1], "-"))
		return cmd_usage_error(e, "only one of A and B can be standard input");
	if (cmd_trace_open(e, argv[optind], &ro, &ra) < 0 ||
	    cmd_trace_open(e, argv[optind + 1], &ro, &rb) < 0) {
		trace_reader_close(ra);
		return EXIT_RUNTIME;
	}
	rc = trace_compare(ra, rb, &a.co, &res, &report, &len, err, sizeof(err));
	cmd_trace_warn_stats(e, argv[optind], ra);
	cmd_trace_warn_stats(e, argv[optind + 1], rb);
	trace_reader_close(ra);
	trace_reader_close(rb);
	if (rc < 0) {
		fprintf(stderr, "doppel %s: %s\n", e->name, err);
		return EXIT_RUNTIME;
	}
	fwrite(report, 1, len, stdout);
	free(report);
	if (fflush(stdout) != 0)
		return EXIT_RUNTIME;
	return a.exit_status && !res.similar ? 3 : 0;
}
