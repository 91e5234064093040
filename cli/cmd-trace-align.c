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
		"  -o, --output FILE   write there instead of standard output\n" TRACE_READ_HELP
		"\n"
		"example:\n"
		"  doppel trace align --names doppel,nginx --svg doppel.strace nginx.strace -o "
		"x.svg\n",
	.exec = exec_align,
};

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
		TRACE_READ_OPTIONS,
		{NULL, 0, NULL, 0},
	};
	const struct cmd_entry *e = &cmd_trace_align_entry;
	struct trace_read_opts ro = {0};
	struct trace_align_opts ao = {0};
	struct trace_svg_opts so = {.max_rows = 400, .max_depth = -1};
	struct trace_align_result res;
	const char *outpath = NULL;
	char names[512], err[1024];
	unsigned long long v;
	int c, rc, view = 0, summary = 0;
	struct trace_sink *sink;
	FILE *out;

	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "o:", opts, NULL)) != -1) {
		switch (c) {
		case 'n': {
			char *comma;

			snprintf(names, sizeof(names), "%s", optarg);
			comma = strchr(names, ',');
			if (!comma || comma == names || !comma[1])
				return cmd_usage_error(e, "--names '%s': write NAME_A,NAME_B",
						       optarg);
			*comma = '\0';
			ao.name_a = names;
			ao.name_b = comma + 1;
			break;
		}
		case 'O':
			if (!strcmp(optarg, "auto")) {
				ao.auto_offset = 1;
			} else {
				uint64_t ns;
				int neg = optarg[0] == '-';
				const char *t = neg ? optarg + 1 : optarg;
				char *end;
				long long raw = strtoll(t, &end, 10);

				if (*end == '\0' && end != t)
					ns = (uint64_t)raw;
				else if (duration_parse(t, &ns) < 0)
					return cmd_usage_error(
						e,
						"--offset '%s': auto, nanoseconds or a "
						"duration (2ms, -1s)",
						optarg);
				ao.offset_ns = neg ? -(int64_t)ns : (int64_t)ns;
			}
			break;
		case 's':
			view = 1;
			break;
		case 'c':
			view = 2;
			break;
		case 't':
			view = 3;
			break;
		case 'l':
			if (!strcmp(optarg, "thread"))
				so.lifeline = TRACE_LIFE_THREAD;
			else if (!strcmp(optarg, "process"))
				so.lifeline = TRACE_LIFE_PROCESS;
			else if (!strcmp(optarg, "program"))
				so.lifeline = TRACE_LIFE_PROGRAM;
			else
				return cmd_usage_error(
					e, "--lifeline '%s': thread, process or program", optarg);
			break;
		case 'R':
			if (cmd_trace_parse_uint(e, "--max-rows", optarg, 1000000, &v) < 0)
				return EXIT_USAGE;
			so.max_rows = (size_t)v;
			break;
		case 'S':
			summary = 1;
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
	if (argc - optind != 2)
		return cmd_usage_error(e, "give two traces, A and B");
	out = cmd_trace_output(e, outpath);
	if (!out)
		return EXIT_RUNTIME;
	sink = view == 1   ? trace_svg_writer_new(out, &so)
	       : view == 2 ? trace_chrome_writer_new(out)
	       : view == 3 ? trace_tree_writer_new(out, &(struct trace_view_opts){.show_tid = 1})
			   : trace_text_writer_new(out);
	if (!sink) {
		fprintf(stderr, "doppel %s: out of memory\n", e->name);
		return EXIT_RUNTIME;
	}
	rc = trace_align(argv[optind], argv[optind + 1], &ro, &ao, sink, &res, err, sizeof(err));
	trace_sink_free(sink);
	if (cmd_trace_close_output(e, out, outpath) < 0 && rc == 0)
		rc = -1;
	if (rc < 0) {
		if (err[0])
			fprintf(stderr, "doppel %s: %s\n", e->name, err);
		return EXIT_RUNTIME;
	}
	if (summary) {
		char a[32], b[32];

		fprintf(stderr,
			"doppel %s: %llu + %llu events, offset %lld ns, %llu connections, %llu "
			"messages (%llu bytes, latency %s..%s), %llu reads unmatched\n",
			e->name, (unsigned long long)res.events_a, (unsigned long long)res.events_b,
			(long long)res.offset_ns, (unsigned long long)res.connections,
			(unsigned long long)res.messages, (unsigned long long)res.bytes,
			trace_fmt_dur(res.latency_min, a, sizeof(a)),
			trace_fmt_dur(res.latency_max, b, sizeof(b)),
			(unsigned long long)res.unmatched);
	}
	return 0;
}
