/*
 * cmd-trace-align.c - `doppel trace align`: two programs' traces on one
 * timeline, matched by connection, bytes and time.
 */
#include <stdlib.h>
#include <string.h>

#include "cli/cmd-trace.h"
#include "common/size.h"

static int exec_align(int argc, char **argv);

const struct cmd_entry cmd_trace_align_entry = {
	.name = "trace align",
	.usage = "[--names A,B] [--offset auto|NS] [--svg|--chrome|--tree] [-o FILE] [OPTIONS] A B",
	.summary = "put two programs' traces on one timeline, with the messages between them",
	.help = "Merges A and B by time into one trace whose events carry their program's name,\n"
		"and adds a message event ('= msg x79 from nginx:100/100 at ...') after every\n"
		"read that receives bytes the other side (or another thread) wrote: flows are\n"
		"matched by their socket endpoints as strace -yy names them and by byte counts.\n"
		"That shows a request crossing both programs: doppel and the service behind it,\n"
		"a TLS-terminating proxy and its server.\n"
		"\n"
		"options:\n"
		"  --names A,B         program names (default: the file names)\n"
		"  --offset NS         add NS nanoseconds (or a duration like 2ms, or -3ms) to "
		"B's\n"
		"                      times\n"
		"  --offset auto       estimate it from the messages: nothing is read before it\n"
		"                      was written (0 when the clocks already agree)\n"
		"  --svg, --chrome, --tree   write that view instead of doppel trace text\n"
		"  --lifeline KIND     svg: thread (default), process or program\n"
		"  --max-rows N        svg: events drawn (default 400)\n"
		"  --summary           print what was matched on standard error\n"
		"  -o, --output FILE   write there instead of standard output\n" CMD_TRACE_READ_HELP
		"\n"
		"example:\n"
		"  doppel trace align --names doppel,nginx --svg doppel.strace nginx.strace -o "
		"x.svg\n",
	.exec = exec_align,
};

struct align_args {
	struct trace_align_opts ao;
	struct trace_svg_opts so;
	const char *outpath;
	char names[512];
	int view, summary;
};

/* --offset auto|NS|DURATION, negative allowed. */
static int parse_offset(const struct cmd_entry *e, const char *arg, struct trace_align_opts *ao)
{
	uint64_t ns;
	int neg = arg[0] == '-';
	const char *t = neg ? arg + 1 : arg;
	char *end;
	long long raw;

	if (!strcmp(arg, "auto")) {
		ao->auto_offset = 1;
		return 0;
	}
	raw = strtoll(t, &end, 10);
	if (*end == '\0' && end != t)
		ns = (uint64_t)raw;
	else if (duration_parse(t, &ns) < 0)
		return cmd_usage_error(
			e, "--offset '%s': auto, nanoseconds or a duration (2ms, -1s)", arg);
	ao->offset_ns = neg ? -(int64_t)ns : (int64_t)ns;
	return 0;
}

static int align_opt(const struct cmd_entry *e, void *ctx, int c, const char *arg)
{
	struct align_args *a = ctx;
	unsigned long long v;
	char *comma;

	switch (c) {
	case 'n':
		snprintf(a->names, sizeof(a->names), "%s", arg);
		comma = strchr(a->names, ',');
		if (!comma || comma == a->names || !comma[1])
			return cmd_usage_error(e, "--names '%s': write NAME_A,NAME_B", arg);
		*comma = '\0';
		a->ao.name_a = a->names;
		a->ao.name_b = comma + 1;
		break;
	case 'O':
		return parse_offset(e, arg, &a->ao);
	case 's':
	case 'c':
	case 't':
		a->view = c == 's' ? 1 : c == 'c' ? 2 : 3;
		break;
	case 'l':
		if (trace_lifeline_parse(arg, &a->so.lifeline) < 0)
			return cmd_usage_error(e, "--lifeline '%s': thread, process or program",
					       arg);
		break;
	case 'R':
		if (cmd_trace_parse_uint(e, "--max-rows", arg, 1000000, &v) < 0)
			return EXIT_USAGE;
		a->so.max_rows = (size_t)v;
		break;
	case 'S':
		a->summary = 1;
		break;
	case 'o':
		a->outpath = arg;
		break;
	}
	return 0;
}

static void print_summary(const struct cmd_entry *e, const struct trace_align_result *res)
{
	char a[32], b[32];

	fprintf(stderr,
		"doppel %s: %llu + %llu events, offset %lld ns, %llu connections, %llu "
		"messages (%llu bytes, latency %s..%s), %llu reads unmatched\n",
		e->name, (unsigned long long)res->events_a, (unsigned long long)res->events_b,
		(long long)res->offset_ns, (unsigned long long)res->connections,
		(unsigned long long)res->messages, (unsigned long long)res->bytes,
		trace_fmt_dur(res->latency_min, a, sizeof(a)),
		trace_fmt_dur(res->latency_max, b, sizeof(b)), (unsigned long long)res->unmatched);
}

static int exec_align(int argc, char **argv)
{
	static const struct option opts[] = {
		{"names", required_argument, NULL, 'n'},
		{"offset", required_argument, NULL, 'O'},
		{"svg", no_argument, NULL, 's'},
		{"chrome", no_argument, NULL, 'c'},
		{"tree", no_argument, NULL, 't'},
		{"lifeline", required_argument, NULL, 'l'},
		{"max-rows", required_argument, NULL, 'R'},
		{"summary", no_argument, NULL, 'S'},
		{"output", required_argument, NULL, 'o'},
		{NULL, 0, NULL, 0},
	};
	const struct cmd_entry *e = &cmd_trace_align_entry;
	struct trace_read_opts ro = {0};
	struct align_args a = {.so = {.max_rows = 400, .max_depth = -1}};
	struct trace_align_result res;
	char err[1024] = "";
	int rc;
	struct trace_sink *sink;
	FILE *out;

	rc = cmd_trace_getopt(e, argc, argv, "o:", opts, align_opt, &a, &ro);
	if (rc)
		return rc;
	if (argc - optind != 2)
		return cmd_usage_error(e, "give two traces, A and B");
	out = cmd_trace_output(e, a.outpath);
	if (!out)
		return EXIT_RUNTIME;
	sink = a.view == 1   ? trace_svg_writer_new(out, &a.so)
	       : a.view == 2 ? trace_chrome_writer_new(out)
	       : a.view == 3 ? trace_tree_writer_new(out, &(struct trace_view_opts){.show_tid = 1})
			     : trace_text_writer_new(out);
	if (!sink) {
		fprintf(stderr, "doppel %s: out of memory\n", e->name);
		return EXIT_RUNTIME;
	}
	rc = trace_align(argv[optind], argv[optind + 1], &ro, &a.ao, sink, &res, err, sizeof(err));
	trace_sink_free(sink);
	if (cmd_trace_close_output(e, out, a.outpath) < 0 && rc == 0)
		rc = -1;
	if (rc < 0) {
		if (err[0])
			fprintf(stderr, "doppel %s: %s\n", e->name, err);
		return EXIT_RUNTIME;
	}
	if (a.summary)
		print_summary(e, &res);
	return 0;
}
