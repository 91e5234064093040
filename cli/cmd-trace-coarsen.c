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
		"  -o, --output FILE   write there instead of standard output\n" CMD_TRACE_READ_HELP
		"\n"
		"example:\n"
		"  doppel trace coarsen --depth 3 --hide 'ngx_log*' nginx.dtr\n",
	.exec = exec_coarsen,
};

struct coarsen_args {
	struct trace_coarsen_opts co;
	const char *hide[MAX_HIDE];
	const char *outpath;
};

static int coarsen_opt(const struct cmd_entry *e, void *ctx, int c, const char *arg)
{
	struct coarsen_args *a = ctx;
	unsigned long long v;

	switch (c) {
	case 'd':
		if (cmd_trace_parse_uint(e, "--depth", arg, 100000, &v) < 0)
			return EXIT_USAGE;
		a->co.depth = (int)v;
		break;
	case 'h':
		if (a->co.nhide == MAX_HIDE)
			return cmd_usage_error(e, "at most %d --hide patterns", MAX_HIDE);
		a->hide[a->co.nhide++] = arg;
		break;
	case 'o':
		a->outpath = arg;
		break;
	}
	return 0;
}

static int exec_coarsen(int argc, char **argv)
{
	static const struct option opts[] = {
		{"depth", required_argument, NULL, 'd'},
		{"hide", required_argument, NULL, 'h'},
		{"output", required_argument, NULL, 'o'},
		{NULL, 0, NULL, 0},
	};
	const struct cmd_entry *e = &cmd_trace_coarsen_entry;
	struct trace_read_opts ro = {0};
	struct coarsen_args a = {.co = {.depth = -1}};
	int rc;
	struct trace_sink *chain, *writer;
	FILE *out;

	rc = cmd_trace_getopt(e, argc, argv, "o:", opts, coarsen_opt, &a, &ro);
	if (rc)
		return rc;
	if (a.co.depth < 0 && a.co.nhide == 0)
		return cmd_usage_error(e, "nothing to hide: give --depth N or --hide PATTERN");
	if ((rc = cmd_trace_need_files(e, argc)))
		return rc;
	a.co.hide = a.hide;
	out = cmd_trace_output(e, a.outpath);
	if (!out)
		return EXIT_RUNTIME;
	writer = trace_text_writer_new(out);
	chain = writer ? trace_coarsen_new(&a.co, writer) : NULL;
	rc = cmd_trace_run(e, argv + optind, argc - optind, &ro, chain, 0);
	trace_sink_free(chain);
	if (cmd_trace_close_output(e, out, a.outpath) < 0 && rc == 0)
		rc = EXIT_RUNTIME;
	return rc;
}
