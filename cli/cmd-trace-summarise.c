/*
 * cmd-trace-summarise.c - `doppel trace summarise`: fold loops and recursion
 * into counted blocks (Flowdar's sliding and iterative windows), or expand
 * them back.
 */
#include <stdlib.h>
#include <string.h>

#include "cli/cmd-trace.h"

static int exec_summarise(int argc, char **argv);

const struct cmd_entry cmd_trace_summarise_entry = {
	.name = "trace summarise",
	.usage = "[--mode sliding|iterative] [--window N] [--key name|args] [--keep-times]\n"
		 "       [--expand] [--tree] [-o FILE] [OPTIONS] FILE...",
	.summary = "fold repeated calls, loops and recursion into counted blocks",
	.help = "Every finished call is one item of its caller; when the same items repeat,\n"
		"they fold into one block: 'loop step x1000'. Loops of loops nest; a function\n"
		"that calls itself with the same work at every level folds into a descent and\n"
		"an ascent ('recursion walk x500'). Folding happens at every level of the call\n"
		"tree, per thread, over the whole trace, in bounded memory.\n"
		"\n"
		"options:\n"
		"  --mode sliding      one pass; repeats of up to --window items (default)\n"
		"  --mode iterative    also refold every call's children with windows 1, 2, ...\n"
		"                      until nothing changes: finds longer bodies; slower\n"
		"  --window N          longest repeated pattern, in items (default 16, max 64)\n"
		"  --key name          fold events with the same kind and name (default)\n"
		"  --key args          ... and the same arguments, results and errors\n"
		"  --keep-times        keep the time of every folded event, so that --expand\n"
		"                      restores the trace exactly (otherwise the iterations of a\n"
		"                      block are spread evenly over its span)\n"
		"  --no-recursion      do not fold recursion\n"
		"  --max-events N      events held before the oldest calls are written out\n"
		"                      unfolded (default 262144, about 100 MB at most)\n"
		"  --expand            undo: write every block's iterations again\n"
		"  --tree              write a call tree instead of doppel trace text\n"
		"  --stats             print what was folded on standard error\n"
		"  -o, --output FILE   write there instead of standard output\n" CMD_TRACE_READ_HELP
		"\n"
		"example:\n"
		"  doppel trace summarise --keep-times app.dtr -o app.sum.dtt\n"
		"  doppel trace summarise --expand app.sum.dtt -o app.dtt\n",
	.exec = exec_summarise,
};

struct sum_args {
	struct trace_summarise_opts so;
	const char *outpath;
	int expand, tree, stats;
};

static int sum_opt(const struct cmd_entry *e, void *ctx, int c, const char *arg)
{
	struct sum_args *a = ctx;
	unsigned long long v;

	switch (c) {
	case 'm':
		if (strcmp(arg, "sliding") == 0)
			a->so.mode = TRACE_SUM_SLIDING;
		else if (strcmp(arg, "iterative") == 0)
			a->so.mode = TRACE_SUM_ITERATIVE;
		else
			return cmd_usage_error(e, "--mode '%s': use sliding or iterative", arg);
		break;
	case 'w':
		if (cmd_trace_parse_uint(e, "--window", arg, 64, &v) < 0 || v == 0) {
			if (v == 0)
				cmd_usage_error(e, "--window must be 1 to 64");
			return EXIT_USAGE;
		}
		a->so.window = (unsigned)v;
		break;
	case 'k':
		if (strcmp(arg, "name") == 0)
			a->so.key = TRACE_KEY_NAME;
		else if (strcmp(arg, "args") == 0)
			a->so.key = TRACE_KEY_ARGS;
		else
			return cmd_usage_error(e, "--key '%s': use name or args", arg);
		break;
	case 'K':
		a->so.keep_times = 1;
		break;
	case 'n':
		a->so.no_recursion = 1;
		break;
	case 'M':
		if (cmd_trace_parse_uint(e, "--max-events", arg, 1ULL << 32, &v) < 0 || v < 16) {
			if (v < 16)
				cmd_usage_error(e, "--max-events must be at least 16");
			return EXIT_USAGE;
		}
		a->so.max_events = (size_t)v;
		break;
	case 'x':
		a->expand = 1;
		break;
	case 't':
		a->tree = 1;
		break;
	case 's':
		a->stats = 1;
		break;
	case 'o':
		a->outpath = arg;
		break;
	}
	return 0;
}

static int exec_summarise(int argc, char **argv)
{
	static const struct option opts[] = {
		{"mode", required_argument, NULL, 'm'},
		{"window", required_argument, NULL, 'w'},
		{"key", required_argument, NULL, 'k'},
		{"keep-times", no_argument, NULL, 'K'},
		{"no-recursion", no_argument, NULL, 'n'},
		{"max-events", required_argument, NULL, 'M'},
		{"expand", no_argument, NULL, 'x'},
		{"tree", no_argument, NULL, 't'},
		{"stats", no_argument, NULL, 's'},
		{"output", required_argument, NULL, 'o'},
		{NULL, 0, NULL, 0},
	};
	const struct cmd_entry *e = &cmd_trace_summarise_entry;
	struct trace_read_opts ro = {0};
	struct sum_args a = {.so = {.window = 16}};
	int rc;
	struct trace_sink *writer, *sum = NULL, *chain;
	FILE *out;

	rc = cmd_trace_getopt(e, argc, argv, "o:", opts, sum_opt, &a, &ro);
	if (rc || (rc = cmd_trace_need_files(e, argc)))
		return rc;
	out = cmd_trace_output(e, a.outpath);
	if (!out)
		return EXIT_RUNTIME;
	writer = a.tree ? trace_tree_writer_new(out, NULL) : trace_text_writer_new(out);
	if (a.expand) {
		chain = writer ? trace_expand_new(writer) : NULL;
	} else {
		/* a summarised input is expanded first, then folded again */
		sum = writer ? trace_summarise_new(&a.so, writer) : NULL;
		chain = sum ? trace_expand_new(sum) : NULL;
	}
	rc = cmd_trace_run(e, argv + optind, argc - optind, &ro, chain, a.stats);
	if (a.stats && sum) {
		struct trace_summarise_stats st;

		trace_summarise_stats(sum, &st);
		fprintf(stderr,
			"doppel trace summarise: %llu events in, %llu out (%.1f%%), %llu loops, "
			"%llu recursions, %llu spills\n",
			(unsigned long long)st.events_in, (unsigned long long)st.events_out,
			st.events_in ? 100.0 * (double)st.events_out / (double)st.events_in : 0.0,
			(unsigned long long)st.blocks, (unsigned long long)st.recursions,
			(unsigned long long)st.spilled);
	}
	trace_sink_free(chain);
	if (cmd_trace_close_output(e, out, a.outpath) < 0 && rc == 0)
		rc = EXIT_RUNTIME;
	return rc;
}
