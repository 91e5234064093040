/*
 * cmd.h - doppel's command table (tmux style: one file per command, each
 * described by a struct cmd_entry). Adding a command is adding a file and a
 * line in main.c's table.
 *
 * The same text serves `doppel help CMD`, `doppel CMD --help` and the man
 * page (`doppel help --man`). Exit codes: 0 success, 1 runtime failure,
 * 2 usage or configuration error.
 */
#ifndef DOPPEL_CLI_CMD_H
#define DOPPEL_CLI_CMD_H

#include <stdint.h>

#include "common/netaddr.h"
#include "divergence/divergence.h"
#include "record/record.h"

#define EXIT_RUNTIME 1
#define EXIT_USAGE 2

struct cmd_entry {
	const char *name;
	const char *usage;   /* synopsis after "doppel NAME" */
	const char *summary; /* one line */
	const char *help;    /* description and options, plain text, 2-space indents */
	int (*exec)(int argc, char **argv);
	int hidden; /* internal: not listed by `doppel help` */
	/* subcommands ("trace demux", ...), NULL-terminated; a command with
	 * subcommands handles --help itself */
	const struct cmd_entry *const *subs;
};

extern const struct cmd_entry cmd_run_entry;
extern const struct cmd_entry cmd_clone_entry;
extern const struct cmd_entry cmd_list_entry;
extern const struct cmd_entry cmd_status_entry;
extern const struct cmd_entry cmd_destroy_entry;
extern const struct cmd_entry cmd_attach_entry;
extern const struct cmd_entry cmd_stop_entry;
extern const struct cmd_entry cmd_doctor_entry;
extern const struct cmd_entry cmd_proxy_entry;
extern const struct cmd_entry cmd_state_sync_entry;
extern const struct cmd_entry cmd_window_entry;
extern const struct cmd_entry cmd_trace_entry;
extern const struct cmd_entry cmd_demo_entry;
extern const struct cmd_entry cmd_replay_entry;
extern const struct cmd_entry cmd_diverge_entry;
extern const struct cmd_entry cmd_record_entry;
extern const struct cmd_entry cmd_restore_entry;

/* Print "doppel NAME USAGE" and the help text. */
void cmd_print_help(const struct cmd_entry *e);
/* "doppel NAME: message\nTry 'doppel help NAME'." on stderr; returns EXIT_USAGE. */
int cmd_usage_error(const struct cmd_entry *e, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Parse helpers that print their own error and return -1. */
int cli_parse_size(const struct cmd_entry *e, const char *opt, const char *text, uint64_t *out);
int cli_parse_duration(const struct cmd_entry *e, const char *opt, const char *text, uint64_t *ns);
int cli_parse_addr(const struct cmd_entry *e, const char *opt, const char *text,
		   struct net_endpoint *out);
/* --log-level LEVEL: sets it. */
int cli_parse_log_level(const struct cmd_entry *e, const char *text);
/* --replica-flush DURATION (at most 1 s). */
int cli_parse_replica_flush(const struct cmd_entry *e, const char *text, uint64_t *ns);

/* The divergence and recording options of `doppel proxy` and `doppel run`. */
struct cli_div_opts {
	struct div_options div;
	struct rec_config rec;
	const char *record_dir; /* --record DIR: record from the start */
};
#define CLI_DIV_HELP                                                                          \
	"  --protocol P        compare answers as http, resp, raw (default) or auto: HTTP\n"  \
	"                      volatile headers (Date, Server, ETag, ...) are masked, HTTP\n" \
	"                      and RESP answers are framed (see `doppel help diverge`)\n"     \
	"  --mask REGEX        hide what REGEX (PCRE2) matches in each answer line, in any\n" \
	"                      protocol (repeatable)\n"                                       \
	"  --mask-header NAME  also hide this HTTP header's value (repeatable)\n"             \
	"  --record DIR        write pcap files of production's and each replica's\n"         \
	"                      conversations into DIR (see `doppel help record`)\n"           \
	"  --record-file-size SIZE\n"                                                         \
	"                      start a new file past SIZE (default 64M)\n"                    \
	"  --record-total SIZE stop recording past SIZE in all, counting what is left out\n"  \
	"                      (default 1G)\n"
void cli_div_opts_init(struct cli_div_opts *o);
/* One of those options by its long name: 1 taken, 0 not one of them, -1 error printed. */
int cli_div_opt(const struct cmd_entry *e, const char *name, const char *arg,
		struct cli_div_opts *o);
/* The compiled rules (a bad mask prints a usage error and returns -1). */
int cli_div_rules(const struct cmd_entry *e, struct cli_div_opts *o, unsigned max_turns,
		  struct div_rules **out);

/* Directory of the supervisors' admin sockets: $DOPPEL_RUN_DIR or /run/doppel. */
const char *cli_run_dir(void);
/* Admin address of supervisor NAME; prints a usage error and returns -1 for a bad name. */
int cli_admin_for(const struct cmd_entry *e, const char *name, char *buf, size_t len);
/* Print a streamed admin reply as it arrives (progress lines). */
void cli_print_chunk(const char *data, size_t len, void *arg);

#endif
