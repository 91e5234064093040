/*
 * cmd-trace-coarsen.c - `doppel trace coarsen`: cut call depth or hide calls
 * by name, keeping how many calls and how much time were hidden.
 */
#include <stdlib.h>
#include <string.h>

#include "cli/cmd-trace.h"

#define MAX_HIDE 256

static int exec_coarsen(int argc, char **argv);

const struct cmd_entry cmd_trace_coarsen_entry = {
	.name = "trace coarsen",
	.usage = "[--depth N] [--hide PATTERN]... [-o FILE] [OPTIONS] FILE...",
	.summary = "cut call depth or hide functions, aggregating their time",
	.help = "Hidden calls are replaced, per run between two kept events, by one line\n"
		"'~ NAME xCOUNT <TIME>': how many calls were hidden at that level (each call\n"
		"with everything it called counts once), under which name ('...' when\n"
		"several), and their total time. Kept calls keep their own durations.\n"
		"\n"
		"options:\n"
		"  --depth N           hide events at call depth N and deeper (0 is the top)\n"
		"  --hide PATTERN      hide calls (or syscalls) whose name matches the shell\n"
		"                      pattern, with what they call; repeatable (up to 256)\n"
		"  -o, --output FILE   write there instead of standard output\n" TRACE_READ_HELP
		"\n"
		"example:\n"
		"  doppel trace coarsen --depth 3 --hide 'ngx_log*' nginx.dtr\n",
	.exec = exec_coarsen,
};

static int exec_coarsen(int argc, char **argv)
{
	static const struct option opts[] = {
		{"depth", required_argument, NULL, 'd'},
		{"hide", required_argument, NULL, 'h'},
		{"output", required_argument, NULL, 'o'},
		TRACE_READ_OPTIONS,
		{NULL, 0, NULL, 0},
	};
	const struct cmd_entry *e = &cmd_trace_coarsen_entry;
	struct trace_read_opts ro = {0};
	struct trace_coarsen_opts co = {.depth = -1};
	const char *hide[MAX_HIDE];
	const char *outpath = NULL;
	unsigned long long v;
	int c, rc;
	struct trace_sink *chain, *writer;
	FILE *out;

	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "o:", opts, NULL)) != -1) {
		switch (c) {
		case 'd':
			if (cmd_trace_parse_uint(e, "--depth", optarg, 100000, &v) < 0)
				return EXIT_USAGE;
			co.depth = (int)v;
			break;
		case 'h':
			if (co.nhide == MAX_HIDE)
				return cmd_usage_error(e, "at most %d --hide patterns", MAX_HIDE);
			hide[co.nhide++] = optarg;
			break;
		case 'o':
			outpath = optarg;
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
	if (co.depth < 0 && co.nhide == 0)
		return cmd_usage_error(e, "nothing to hide: give --depth N or --hide PATTERN");
	if (optind >= argc)
		return cmd_usage_error(e, "which trace? give a file (or - for standard input)");
	co.hide = hide;
	out = cmd_trace_output(e, outpath);
	if (!out)
		return EXIT_RUNTIME;
	writer = trace_text_writer_new(out);
	chain = writer ? trace_coarsen_new(&co, writer) : NULL;
	rc = cmd_trace_run(e, argv + optind, argc - optind, &ro, chain);
	trace_sink_free(chain);
	if (cmd_trace_close_output(e, out, outpath) < 0 && rc == 0)
		rc = EXIT_RUNTIME;
	return rc;
}
