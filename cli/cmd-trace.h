/*
 * cmd-trace.h - private to cli/: the `doppel trace` subcommands (one file
 * each, cmd-trace-*.c) and the helpers they share: common reading options,
 * opening inputs and outputs, pumping files through a chain of sinks.
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

/* Option codes of the reading options every subcommand accepts. */
enum {
	TOPT_FORMAT = 1000,
	TOPT_BINARY,
	TOPT_PROG,
	TOPT_REORDER,
};

#define TRACE_READ_OPTIONS                                        \
	{"format", required_argument, NULL, TOPT_FORMAT},         \
		{"binary", required_argument, NULL, TOPT_BINARY}, \
		{"prog", required_argument, NULL, TOPT_PROG},     \
	{                                                         \
		"reorder", required_argument, NULL, TOPT_REORDER  \
	}

#define TRACE_READ_HELP                                                                           \
	"reading (every subcommand):\n"                                                           \
	"  --format FMT        dtr, strace, uftrace, babeltrace or dtt (default: detected)\n"     \
	"  --binary ELF        symbolise libdoppeltrace addresses of the main program with ELF\n" \
	"  --prog NAME         label the events with a program name\n"                            \
	"  --reorder N         libdoppeltrace chunks held to merge threads in time order\n"       \
	"                      (default 256)\n"

/* Handles a TOPT_* option; returns 1 if it was one, 0 if not, -1 on error
 * (message printed). */
int cmd_trace_read_opt(const struct cmd_entry *e, int c, const char *arg,
		       struct trace_read_opts *ro);
/* Opens a trace, printing the error. */
int cmd_trace_open(const struct cmd_entry *e, const char *path, const struct trace_read_opts *ro,
		   struct trace_reader **r);
/* "-" or NULL: standard output. Prints the error and returns NULL. */
FILE *cmd_trace_output(const struct cmd_entry *e, const char *path);
int cmd_trace_close_output(const struct cmd_entry *e, FILE *f, const char *path);
/* --stats: cmd_trace_run prints events, bytes and events/s per file */
extern int cmd_trace_stats_flag;
/* Reads every file into chain and ends it (the caller frees it). Returns an
 * exit status, messages printed. */
int cmd_trace_run(const struct cmd_entry *e, char **files, int nfiles,
		  const struct trace_read_opts *ro, struct trace_sink *chain);
/* Warns on standard error about what a reader skipped or lost. */
void cmd_trace_warn_stats(const struct cmd_entry *e, const char *path, struct trace_reader *r);
int cmd_trace_parse_uint(const struct cmd_entry *e, const char *opt, const char *text,
			 unsigned long long max, unsigned long long *out);

#endif
