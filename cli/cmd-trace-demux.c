/*
 * cmd-trace-demux.c - `doppel trace demux`: split a trace into streams (per
 * thread, process, connection, request, or begin/end rule), written as files
 * in a directory, as sections on standard output, or listed.
 */
#include <string.h>

#include "cli/cmd-trace.h"

static int exec_demux(int argc, char **argv);

const struct cmd_entry cmd_trace_demux_entry = {
	.name = "trace demux",
	.usage = "--by thread|process|connection|request|rule [--begin PAT] [--end PAT]\n"
		 "       [-o DIR | --list] [OPTIONS] FILE...",
	.summary = "split a trace into per-thread, -process, -connection or -request streams",
	.help = "  --by thread        one stream per thread\n"
		"  --by process       one per process\n"
		"  --by connection    one per socket, from the call that made it (accept, "
		"accept4,\n"
		"                     socket) to its close: the calls on that descriptor\n"
		"  --by request       accept/accept4 ... close of a client socket, with "
		"everything\n"
		"                     the serving thread did in between (an event loop's events\n"
		"                     go to the request of the descriptor they use, others to the\n"
		"                     request it last worked on); needs syscalls (strace -yy,\n"
		"                     babeltrace)\n"
		"  --by rule          a thread's events from a call matching --begin to one\n"
		"                     matching --end (shell patterns); without --end, the\n"
		"                     --begin call with everything it calls\n"
		"\n"
		"output:\n"
		"  (default)          every stream as a section of doppel trace text, in the\n"
		"                     order streams end ('## stream request id=3 ... peer=...')\n"
		"  -o, --output DIR   one file per stream, DIR/KIND-ID.dtt, and DIR/streams.txt\n"
		"  --list             a table of the streams only\n"
		"  --max-streams N    streams open at once (default 65536); events of more\n"
		"                     streams are dropped and counted\n"
		"  --max-memory SIZE  standard output only: bytes held for open streams\n"
		"                     (default 256M)\n" CMD_TRACE_READ_HELP "\n"
		"example:\n"
		"  strace -f -ttt -T -yy -o nginx.strace nginx -g 'daemon off;'\n"
		"  doppel trace demux --by request nginx.strace --list\n",
	.exec = exec_demux,
};

struct demux_args {
	struct trace_demux_opts dopt;
	struct trace_demux_out_opts oo;
	int have_by, list;
};

static int demux_opt(const struct cmd_entry *e, void *ctx, int c, const char *arg)
{
	struct demux_args *a = ctx;
	unsigned long long v;
	uint64_t size;

	switch (c) {
	case 'b':
		if (trace_demux_parse_by(arg, &a->dopt.by) < 0)
			return cmd_usage_error(
				e, "--by '%s': use thread, process, connection, request or rule",
				arg);
		a->have_by = 1;
		break;
	case 'B':
		a->dopt.begin = arg;
		break;
	case 'E':
		a->dopt.end = arg;
		break;
	case 'o':
		a->oo.dir = arg;
		break;
	case 'l':
		a->list = 1;
		break;
	case 'm':
		if (cmd_trace_parse_uint(e, "--max-streams", arg, 1u << 24, &v) < 0 || v == 0)
			return v == 0 ? cmd_usage_error(e, "--max-streams must be at least 1")
				      : EXIT_USAGE;
		a->dopt.max_streams = (size_t)v;
		break;
	case 'M':
		if (cli_parse_size(e, "--max-memory", arg, &size) < 0)
			return EXIT_USAGE;
		a->oo.max_memory = (size_t)size;
		break;
	}
	return 0;
}

static int demux_check(const struct cmd_entry *e, const struct demux_args *a, int argc)
{
	if (!a->have_by)
		return cmd_usage_error(e, "--by is required");
	if (a->dopt.by == TRACE_BY_RULE && !a->dopt.begin)
		return cmd_usage_error(e, "--by rule needs --begin PATTERN (and optionally --end)");
	if (a->dopt.by != TRACE_BY_RULE && (a->dopt.begin || a->dopt.end))
		return cmd_usage_error(e, "--begin and --end go with --by rule");
	if (a->list && a->oo.dir)
		return cmd_usage_error(e, "--list and --output are exclusive");
	return cmd_trace_need_files(e, argc);
}

static void print_summary(const struct cmd_entry *e, const struct demux_args *a,
			  const struct trace_demux_stats *st)
{
	int dir = a->oo.mode == TRACE_DEMUX_OUT_DIR;

	fprintf(stderr, "doppel %s: %llu %s streams, %llu events in streams, %llu in none%s",
		e->name, (unsigned long long)st->streams, trace_demux_by_name(a->dopt.by),
		(unsigned long long)st->events_routed, (unsigned long long)st->events_unrouted,
		dir ? "" : "\n");
	if (dir)
		fprintf(stderr, "; written to %s/\n", a->oo.dir);
	if (st->streams_dropped)
		fprintf(stderr,
			"doppel %s: %llu streams dropped (%llu events) over --max-streams\n",
			e->name, (unsigned long long)st->streams_dropped,
			(unsigned long long)st->events_dropped);
}

static int exec_demux(int argc, char **argv)
{
	static const struct option opts[] = {
		{"by", required_argument, NULL, 'b'},
		{"begin", required_argument, NULL, 'B'},
		{"end", required_argument, NULL, 'E'},
		{"output", required_argument, NULL, 'o'},
		{"list", no_argument, NULL, 'l'},
		{"max-streams", required_argument, NULL, 'm'},
		{"max-memory", required_argument, NULL, 'M'},
		{NULL, 0, NULL, 0},
	};
	const struct cmd_entry *e = &cmd_trace_demux_entry;
	struct trace_read_opts ro = {0};
	struct demux_args a = {.oo = {.max_memory = 256u << 20}};
	struct trace_demux_out *dout;
	struct trace_demux_stats st;
	struct trace_sink *dm;
	char err[1024];
	int rc;

	rc = cmd_trace_getopt(e, argc, argv, "o:", opts, demux_opt, &a, &ro);
	if (rc || (rc = demux_check(e, &a, argc)))
		return rc;
	a.oo.out = stdout;
	a.oo.mode = a.list     ? TRACE_DEMUX_OUT_LIST
		    : a.oo.dir ? TRACE_DEMUX_OUT_DIR
			       : TRACE_DEMUX_OUT_SECTIONS;
	if (trace_demux_out_new(&a.oo, &dout, err, sizeof(err)) < 0) {
		fprintf(stderr, "doppel %s: %s\n", e->name, err);
		return EXIT_RUNTIME;
	}
	dm = trace_demux_new(&a.dopt, trace_demux_out_target(dout));
	rc = cmd_trace_run(e, argv + optind, argc - optind, &ro, dm, 0);
	if (rc == 0 && trace_demux_out_over_memory(dout))
		fprintf(stderr, "doppel %s: more than --max-memory held; use -o DIR\n", e->name);
	memset(&st, 0, sizeof(st));
	if (dm)
		trace_demux_stats(dm, &st);
	trace_sink_free(dm);
	trace_demux_out_finish(dout);
	trace_demux_out_free(dout);
	fflush(stdout);
	if (rc == 0)
		print_summary(e, &a, &st);
	return rc;
}
