/*
 * cmd-trace.h - private to cli/: the `doppel trace` subcommands (one file
 * each, cmd-trace-*.c) and what they share: one option parser with the
 * reading options, opening inputs and outputs, pumping files through a chain
 * of sinks. The work itself is trace/'s (trace/trace.h).
 */
#ifndef DOPPEL_CLI_CMD_TRACE_H
#define DOPPEL_CLI_CMD_TRACE_H

#include <getopt.h>
#include <stdio.h>

#include "cli/cmd.h"
#include "trace/trace.h"

extern const struct cmd_entry cmd_trace_demux_entry;
extern const struct cmd_entry cmd_trace_summarise_entry;
extern const struct cmd_entry cmd_trace_coarsen_entry;
extern const struct cmd_entry cmd_trace_compare_entry;
extern const struct cmd_entry cmd_trace_align_entry;
extern const struct cmd_entry cmd_trace_rank_entry;
extern const struct cmd_entry cmd_trace_view_entry;
extern const struct cmd_entry cmd_trace_collect_entry;

#define CMD_TRACE_READ_HELP                                                                       \
	"reading (every subcommand):\n"                                                           \
	"  --format FMT        dtr, strace, uftrace, babeltrace or dtt (default: detected)\n"     \
	"  --binary ELF        symbolise libdoppeltrace addresses of the main program with ELF\n" \
	"  --prog NAME         label the events with a program name\n"                            \
	"  --reorder N         libdoppeltrace chunks held to merge threads in time order\n"       \
	"                      (default 256)\n"

/*
 * The one getopt loop of the trace subcommands. It parses the subcommand's
 * own options (shortopts and own[], NULL-terminated) by calling
 * parse(e, ctx, code, optarg) for each, and the reading options every
 * subcommand shares (--format, --binary, --prog, --reorder) into *ro; ro NULL
 * means the subcommand reads no trace and takes none of them. An unknown
 * option, or one missing its value, is a usage error. --help and -h never get
 * here: `doppel trace` answers them before running the subcommand.
 *
 * parse returns 0, or an exit status after printing why (cmd_usage_error's).
 * Returns 0 with optind at the first operand, or the exit status to return.
 */
int cmd_trace_getopt(const struct cmd_entry *e, int argc, char **argv, const char *shortopts,
		     const struct option *own,
		     int (*parse)(const struct cmd_entry *e, void *ctx, int c, const char *arg),
		     void *ctx, struct trace_read_opts *ro);
/* Operands from optind on must name at least one trace ("-": standard input).
 * 0, or EXIT_USAGE with the message printed. */
int cmd_trace_need_files(const struct cmd_entry *e, int argc);
/* Opens a trace, printing the error. */
int cmd_trace_open(const struct cmd_entry *e, const char *path, const struct trace_read_opts *ro,
		   struct trace_reader **r);
/* "-" or NULL: standard output. Prints the error and returns NULL. */
FILE *cmd_trace_output(const struct cmd_entry *e, const char *path);
int cmd_trace_close_output(const struct cmd_entry *e, FILE *f, const char *path);
/* Reads every file into chain and ends it (the caller frees it); with stats
 * (--stats) prints events, bytes and events/s per file. Returns an exit
 * status, messages printed. */
int cmd_trace_run(const struct cmd_entry *e, char **files, int nfiles,
		  const struct trace_read_opts *ro, struct trace_sink *chain, int stats);
/* Warns on standard error about what a reader skipped or lost. */
void cmd_trace_warn_stats(const struct cmd_entry *e, const char *path, struct trace_reader *r);
/* A whole number up to max, or -1 with a usage error printed. */
int cmd_trace_parse_uint(const struct cmd_entry *e, const char *opt, const char *text,
			 unsigned long long max, unsigned long long *out);

#endif
