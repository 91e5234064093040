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
		"error\n" TRACE_READ_HELP "\n"
		"example:\n"
		"  doppel trace view --chrome app.dtr -o app.json\n"
		"  doppel trace summarise app.dtr | doppel trace view --svg - -o app.svg\n",
	.exec = exec_view,
};

enum { V_TREE, V_REPORT, V_TEXT, V_CHROME, V_SVG };

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
		TRACE_READ_OPTIONS,
		{NULL, 0, NULL, 0},
	};
	const struct cmd_entry *e = &cmd_trace_view_entry;
	struct trace_read_opts ro = {0};
	struct trace_view_opts vo = {0};
	struct trace_svg_opts so = {.max_rows = 400, .max_depth = -1};
	const char *outpath = NULL;
	unsigned long long v;
	int mode = V_TREE, c, rc;
	struct trace_sink *sink = NULL;
	FILE *out;

	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "o:", opts, NULL)) != -1) {
		switch (c) {
		case 't':
			mode = V_TREE;
			break;
		case 'r':
			mode = V_REPORT;
			break;
		case 'x':
			mode = V_TEXT;
			break;
		case 'c':
			mode = V_CHROME;
			break;
		case 's':
			mode = V_SVG;
			break;
		case 'o':
			outpath = optarg;
			break;
		case 'm':
			if (cmd_trace_parse_uint(e, "--max-lines", optarg, 1ULL << 40, &v) < 0)
				return EXIT_USAGE;
			vo.max_lines = (size_t)v;
			break;
		case 'T':
			vo.show_tid = 1;
			break;
		case 'l':
			if (strcmp(optarg, "thread") == 0)
				so.lifeline = TRACE_LIFE_THREAD;
			else if (strcmp(optarg, "process") == 0)
				so.lifeline = TRACE_LIFE_PROCESS;
			else if (strcmp(optarg, "program") == 0)
				so.lifeline = TRACE_LIFE_PROGRAM;
			else
				return cmd_usage_error(
					e, "--lifeline '%s': use thread, process or program",
					optarg);
			break;
		case 'R':
			if (cmd_trace_parse_uint(e, "--max-rows", optarg, 1000000, &v) < 0)
				return EXIT_USAGE;
			so.max_rows = (size_t)v;
			break;
		case 'd':
			if (cmd_trace_parse_uint(e, "--max-depth", optarg, 100000, &v) < 0)
				return EXIT_USAGE;
			so.max_depth = (int)v;
			break;
		case 'i':
			so.title = optarg;
			break;
		case 'S':
			cmd_trace_stats_flag = 1;
			break;
		default:
			rc = cmd_trace_read_opt(e, c, optarg, &ro);
			if (rc < 0)
				return EXIT_USAGE;
			if (rc == 0)
				return cmd_usage_error(e, "unknown or incomplete option '%s'",
						       argv[optind - 1]);
		}
	}
	if (optind >= argc)
		return cmd_usage_error(e, "which trace? give a file (or - for standard input)");
	out = cmd_trace_output(e, outpath);
	if (!out)
		return EXIT_RUNTIME;
	switch (mode) {
	case V_TREE:
		sink = trace_tree_writer_new(out, &vo);
		break;
	case V_REPORT:
		sink = trace_report_writer_new(out, vo.max_lines);
		break;
	case V_TEXT:
		sink = trace_text_writer_new(out);
		break;
	case V_CHROME:
		sink = trace_chrome_writer_new(out);
		break;
	case V_SVG:
		sink = trace_svg_writer_new(out, &so);
		break;
	}
	rc = cmd_trace_run(e, argv + optind, argc - optind, &ro, sink);
	trace_sink_free(sink);
	if (cmd_trace_close_output(e, out, outpath) < 0 && rc == 0)
		rc = EXIT_RUNTIME;
	return rc;
}
