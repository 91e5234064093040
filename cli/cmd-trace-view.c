/*
 * cmd-trace-view.c - `doppel trace view`: the outputs people look at: a call
 * tree, a flat report, doppel trace text, Chrome trace JSON (Perfetto), or an
 * SVG sequence diagram.
 */
#include <stdlib.h>
#include <string.h>

#include "cli/cmd-trace.h"

static int exec_view(int argc, char **argv);

const struct cmd_entry cmd_trace_view_entry = {
	.name = "trace view",
	.usage = "[--tree|--report|--text|--chrome|--svg] [-o FILE] [OPTIONS] FILE...",
	.summary = "show a trace: call tree, report, text, Chrome trace JSON, SVG sequence diagram",
	.help = "Writes the trace in one of these forms (to standard output, or -o FILE):\n"
		"  --tree        call tree, one line per call with its duration (default)\n"
		"  --report      calls, total, self and average time per function or syscall\n"
		"  --text        doppel trace text (.dtt), the format the other subcommands read\n"
		"  --chrome      Chrome trace event JSON: open it in https://ui.perfetto.dev or\n"
		"                chrome://tracing; folded blocks are slices, messages are arrows\n"
		"  --svg         UML-style sequence diagram: a lifeline per thread (process,\n"
		"                program), calls as nested activation bars, folded loops and\n"
		"                recursions as boxes, messages between lifelines as arrows\n"
		"\n"
		"options:\n"
		"  -o, --output FILE     write there instead of standard output\n"
		"  --max-lines N         tree, report: stop after N lines (0: all; default 0)\n"
		"  --tid                 tree: a pid/tid column\n"
		"  --lifeline KIND       svg: thread (default), process or program\n"
		"  --max-rows N          svg: events drawn (default 400)\n"
		"  --max-depth N         svg: deepest call drawn (default: all)\n"
		"  --title TEXT          svg: a title\n"
		"  --stats               print events read and events per second on standard "
		"error\n" CMD_TRACE_READ_HELP "\n"
		"example:\n"
		"  doppel trace view --chrome app.dtr -o app.json\n"
		"  doppel trace summarise app.dtr | doppel trace view --svg - -o app.svg\n",
	.exec = exec_view,
};

enum { V_TREE, V_REPORT, V_TEXT, V_CHROME, V_SVG };

struct view_args {
	struct trace_view_opts vo;
	struct trace_svg_opts so;
	const char *outpath;
	int mode, stats;
};

static int view_opt(const struct cmd_entry *e, void *ctx, int c, const char *arg)
{
	struct view_args *a = ctx;
	unsigned long long v;

	switch (c) {
	case 't':
	case 'r':
	case 'x':
	case 'c':
	case 's':
		a->mode = c == 't'   ? V_TREE
			  : c == 'r' ? V_REPORT
			  : c == 'x' ? V_TEXT
			  : c == 'c' ? V_CHROME
				     : V_SVG;
		break;
	case 'o':
		a->outpath = arg;
		break;
	case 'm':
		if (cmd_trace_parse_uint(e, "--max-lines", arg, 1ULL << 40, &v) < 0)
			return EXIT_USAGE;
		a->vo.max_lines = (size_t)v;
		break;
	case 'T':
		a->vo.show_tid = 1;
		break;
	case 'l':
		if (trace_lifeline_parse(arg, &a->so.lifeline) < 0)
			return cmd_usage_error(e, "--lifeline '%s': use thread, process or program",
					       arg);
		break;
	case 'R':
		if (cmd_trace_parse_uint(e, "--max-rows", arg, 1000000, &v) < 0)
			return EXIT_USAGE;
		a->so.max_rows = (size_t)v;
		break;
	case 'd':
		if (cmd_trace_parse_uint(e, "--max-depth", arg, 100000, &v) < 0)
			return EXIT_USAGE;
		a->so.max_depth = (int)v;
		break;
	case 'i':
		a->so.title = arg;
		break;
	case 'S':
		a->stats = 1;
		break;
	}
	return 0;
}

static struct trace_sink *view_writer(const struct view_args *a, FILE *out)
{
	switch (a->mode) {
	case V_REPORT:
		return trace_report_writer_new(out, a->vo.max_lines);
	case V_TEXT:
		return trace_text_writer_new(out);
	case V_CHROME:
		return trace_chrome_writer_new(out);
	case V_SVG:
		return trace_svg_writer_new(out, &a->so);
	}
	return trace_tree_writer_new(out, &a->vo);
}

static int exec_view(int argc, char **argv)
{
	static const struct option opts[] = {
		{"tree", no_argument, NULL, 't'},
		{"report", no_argument, NULL, 'r'},
		{"text", no_argument, NULL, 'x'},
		{"chrome", no_argument, NULL, 'c'},
		{"svg", no_argument, NULL, 's'},
		{"output", required_argument, NULL, 'o'},
		{"max-lines", required_argument, NULL, 'm'},
		{"tid", no_argument, NULL, 'T'},
		{"lifeline", required_argument, NULL, 'l'},
		{"max-rows", required_argument, NULL, 'R'},
		{"max-depth", required_argument, NULL, 'd'},
		{"title", required_argument, NULL, 'i'},
		{"stats", no_argument, NULL, 'S'},
		{NULL, 0, NULL, 0},
	};
	const struct cmd_entry *e = &cmd_trace_view_entry;
	struct trace_read_opts ro = {0};
	struct view_args a = {.so = {.max_rows = 400, .max_depth = -1}, .mode = V_TREE};
	struct trace_sink *sink;
	FILE *out;
	int rc;

	rc = cmd_trace_getopt(e, argc, argv, "o:", opts, view_opt, &a, &ro);
	if (rc || (rc = cmd_trace_need_files(e, argc)))
		return rc;
	out = cmd_trace_output(e, a.outpath);
	if (!out)
		return EXIT_RUNTIME;
	sink = view_writer(&a, out);
	rc = cmd_trace_run(e, argv + optind, argc - optind, &ro, sink, a.stats);
	trace_sink_free(sink);
	if (cmd_trace_close_output(e, out, a.outpath) < 0 && rc == 0)
		rc = EXIT_RUNTIME;
	return rc;
}
