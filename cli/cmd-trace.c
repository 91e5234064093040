/*
 * cmd-trace.c - `doppel trace`: Flowdar's trace analyses as subcommands that
 * compose through files and pipes (each reads any supported trace format and
 * writes doppel trace text unless told otherwise). This file holds the
 * subcommand table, --help for all of them, the one option parser (with the
 * reading options they share) and the helpers the cmd-trace-*.c files use.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cmd-trace.h"

static const struct cmd_entry *const cmd_trace_subs[] = {
	&cmd_trace_demux_entry,	  &cmd_trace_summarise_entry, &cmd_trace_coarsen_entry,
	&cmd_trace_compare_entry, &cmd_trace_align_entry,     &cmd_trace_rank_entry,
	&cmd_trace_view_entry,	  &cmd_trace_collect_entry,   NULL,
};

static int cmd_trace_exec(int argc, char **argv);

const struct cmd_entry cmd_trace_entry = {
	.name = "trace",
	.usage = "demux|summarise|coarsen|compare|align|rank|view|collect [OPTIONS] FILE...",
	.summary = "analyse traces: demultiplex, summarise, coarsen, compare, align, rank, view",
	.help = "Turns traces too large to read into something a person can read (Flowdar's\n"
		"primitives). Inputs: libdoppeltrace files (.dtr), `strace -f -ttt -T -yy` text,\n"
		"uftrace data directories, babeltrace2 text of LTTng syscall events, and the\n"
		"doppel trace text (.dtt) every subcommand writes, so they compose:\n"
		"\n"
		"  doppel trace demux --by request nginx.strace -o reqs/\n"
		"  doppel trace summarise app.dtr | doppel trace coarsen --depth 4 - |\n"
		"      doppel trace view --svg - -o app.svg\n"
		"\n"
		"subcommands ('doppel trace SUB --help' for each):\n"
		"  demux      split by thread, process, connection, request, or begin/end rules\n"
		"  summarise  fold loops and recursion into counted blocks (and --expand back)\n"
		"  coarsen    cut call depth, hide functions, keeping their time\n"
		"  compare    diff two traces: what differs first, and a summary\n"
		"  align      put two programs' traces on one timeline, matched by connection\n"
		"  rank       statistical debugging over runs labelled pass/fail\n"
		"  view       call tree, report, Chrome trace JSON, SVG sequence diagram\n"
		"  collect    receive libdoppeltrace chunks on a unix socket into a file\n"
		"\n"
		"Exit status: 0 success, 1 a trace could not be read or written, 2 bad usage.\n",
	.exec = cmd_trace_exec,
	.subs = cmd_trace_subs,
};

static int cmd_trace_exec(int argc, char **argv)
{
	const struct cmd_entry *e = &cmd_trace_entry;

	if (argc < 2)
		return cmd_usage_error(e, "which analysis? demux, summarise, coarsen, compare, "
					  "align, rank, view or collect");
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		cmd_print_help(e);
		return 0;
	}
	for (const struct cmd_entry *const *sub = cmd_trace_subs; *sub; sub++) {
		const char *sp = strchr((*sub)->name, ' ');

		if (strcmp(sp + 1, argv[1]) != 0 &&
		    !(strcmp(argv[1], "summarize") == 0 && *sub == &cmd_trace_summarise_entry))
			continue;
		for (int i = 2; i < argc; i++) {
			if (strcmp(argv[i], "--") == 0)
				break;
			if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
				cmd_print_help(*sub);
				return 0;
			}
		}
		return (*sub)->exec(argc - 1, argv + 1);
	}
	return cmd_usage_error(e, "no analysis '%s'", argv[1]);
}

int cmd_trace_parse_uint(const struct cmd_entry *e, const char *opt, const char *text,
			 unsigned long long max, unsigned long long *out)
{
	char *end;

	errno = 0;
	*out = strtoull(text, &end, 10);
	if (errno || end == text || *end || text[0] == '-' || *out > max) {
		cmd_usage_error(e, "%s '%s': expected a whole number up to %llu", opt, text, max);
		return -1;
	}
	return 0;
}

/* Option codes of the reading options, past any subcommand's own. */
enum {
	TOPT_FORMAT = 1000,
	TOPT_BINARY,
	TOPT_PROG,
	TOPT_REORDER,
};

static const struct option read_options[] = {
	{"format", required_argument, NULL, TOPT_FORMAT},
	{"binary", required_argument, NULL, TOPT_BINARY},
	{"prog", required_argument, NULL, TOPT_PROG},
	{"reorder", required_argument, NULL, TOPT_REORDER},
};

#define NREAD (sizeof(read_options) / sizeof(read_options[0]))
#define MAX_OPTIONS 40

/* A reading option into *ro: 0, or EXIT_USAGE with the message printed. */
static int read_opt(const struct cmd_entry *e, int c, const char *arg, struct trace_read_opts *ro)
{
	unsigned long long v;

	switch (c) {
	case TOPT_FORMAT:
		if (trace_format_parse(arg, &ro->format) < 0)
			return cmd_usage_error(
				e, "--format '%s': use dtr, strace, uftrace, babeltrace or dtt",
				arg);
		break;
	case TOPT_BINARY:
		ro->binary = arg;
		break;
	case TOPT_PROG:
		ro->prog = arg;
		break;
	case TOPT_REORDER:
		if (cmd_trace_parse_uint(e, "--reorder", arg, 1u << 20, &v) < 0 || v == 0) {
			if (v == 0)
				cmd_usage_error(e, "--reorder must be at least 1");
			return EXIT_USAGE;
		}
		ro->reorder_chunks = (unsigned)v;
		break;
	}
	return 0;
}

int cmd_trace_getopt(const struct cmd_entry *e, int argc, char **argv, const char *shortopts,
		     const struct option *own,
		     int (*parse)(const struct cmd_entry *e, void *ctx, int c, const char *arg),
		     void *ctx, struct trace_read_opts *ro)
{
	struct option all[MAX_OPTIONS + NREAD + 1];
	size_t n = 0;
	int c, rc;

	while (own[n].name) {
		if (n == MAX_OPTIONS) {
			fprintf(stderr, "doppel %s: more than %d options\n", e->name, MAX_OPTIONS);
			return EXIT_RUNTIME;
		}
		all[n] = own[n];
		n++;
	}
	for (size_t i = 0; ro && i < NREAD; i++)
		all[n++] = read_options[i];
	memset(&all[n], 0, sizeof(all[n]));
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, shortopts, all, NULL)) != -1) {
		if (c == '?' || c == ':')
			return cmd_usage_error(e, "unknown or incomplete option '%s'",
					       argv[optind - 1]);
		rc = ro && c >= TOPT_FORMAT ? read_opt(e, c, optarg, ro) : parse(e, ctx, c, optarg);
		if (rc)
			return rc;
	}
	return 0;
}

int cmd_trace_need_files(const struct cmd_entry *e, int argc)
{
	if (optind >= argc)
		return cmd_usage_error(e, "which trace? give a file (or - for standard input)");
	return 0;
}

int cmd_trace_open(const struct cmd_entry *e, const char *path, const struct trace_read_opts *ro,
		   struct trace_reader **r)
{
	char err[1024];

	if (trace_reader_open(path, ro, r, err, sizeof(err)) < 0) {
		fprintf(stderr, "doppel %s: %s\n", e->name, err);
		return -1;
	}
	return 0;
}

FILE *cmd_trace_output(const struct cmd_entry *e, const char *path)
{
	FILE *f;

	if (!path || strcmp(path, "-") == 0)
		return stdout;
	f = fopen(path, "we");
	if (!f)
		fprintf(stderr, "doppel %s: cannot write %s: %s\n", e->name, path, strerror(errno));
	return f;
}

int cmd_trace_close_output(const struct cmd_entry *e, FILE *f, const char *path)
{
	int bad;

	if (!f)
		return 0;
	bad = fflush(f) != 0 || ferror(f);
	if (f != stdout)
		bad |= fclose(f) != 0;
	if (bad) {
		fprintf(stderr, "doppel %s: writing %s: %s\n", e->name,
			path && strcmp(path, "-") ? path : "standard output", strerror(errno));
		return -1;
	}
	return 0;
}

void cmd_trace_warn_stats(const struct cmd_entry *e, const char *path, struct trace_reader *r)
{
	struct trace_read_stats st;

	trace_reader_stats(r, &st);
	if (st.skipped)
		fprintf(stderr,
			"doppel %s: %s: %llu lines or chunks could not be parsed and were "
			"skipped\n",
			e->name, path, (unsigned long long)st.skipped);
	if (st.lost)
		fprintf(stderr, "doppel %s: %s: the tracer lost %llu records (shown as 'lost')\n",
			e->name, path, (unsigned long long)st.lost);
	if (st.late)
		fprintf(stderr,
			"doppel %s: %s: %llu events came out of time order; a larger --reorder "
			"merges threads better\n",
			e->name, path, (unsigned long long)st.late);
	if (trace_intern_dropped())
		fprintf(stderr, "doppel %s: the name table is full: %llu names shown as '?'\n",
			e->name, (unsigned long long)trace_intern_dropped());
}

int cmd_trace_run(const struct cmd_entry *e, char **files, int nfiles,
		  const struct trace_read_opts *ro, struct trace_sink *chain, int stats)
{
	char err[1024];
	int rc = 0;

	if (!chain) {
		fprintf(stderr, "doppel %s: out of memory\n", e->name);
		return EXIT_RUNTIME;
	}
	for (int i = 0; i < nfiles && rc == 0; i++) {
		struct trace_reader *r;

		if (cmd_trace_open(e, files[i], ro, &r) < 0) {
			rc = EXIT_RUNTIME;
			break;
		}
		struct timespec t0, t1;

		clock_gettime(CLOCK_MONOTONIC, &t0);
		if (trace_pump(r, chain, err, sizeof(err)) < 0) {
			fprintf(stderr, "doppel %s: %s: %s\n", e->name, files[i], err);
			rc = EXIT_RUNTIME;
		}
		clock_gettime(CLOCK_MONOTONIC, &t1);
		cmd_trace_warn_stats(e, files[i], r);
		if (stats) {
			struct trace_read_stats st;
			double secs = (double)(t1.tv_sec - t0.tv_sec) +
				      (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;

			trace_reader_stats(r, &st);
			fprintf(stderr,
				"doppel %s: %s: %s, %llu events, %llu bytes in %.3f s (%.0f "
				"events/s)\n",
				e->name, files[i], trace_format_name(trace_reader_format(r)),
				(unsigned long long)st.events, (unsigned long long)st.bytes, secs,
				secs > 0 ? (double)st.events / secs : 0.0);
		}
		trace_reader_close(r);
	}
	if (rc == 0 && trace_sink_end(chain) < 0) {
		fprintf(stderr, "doppel %s: %s\n", e->name, chain->err);
		rc = EXIT_RUNTIME;
	}
	return rc;
}
