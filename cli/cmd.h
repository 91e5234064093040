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

struct proxy_config;
struct sup_config;

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
extern const struct cmd_entry cmd_adopt_entry;
extern const struct cmd_entry cmd_clone_entry;
extern const struct cmd_entry cmd_list_entry;
extern const struct cmd_entry cmd_status_entry;
extern const struct cmd_entry cmd_destroy_entry;
extern const struct cmd_entry cmd_attach_entry;
extern const struct cmd_entry cmd_stop_entry;
extern const struct cmd_entry cmd_reload_entry;
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

/*
 * Table-driven options. A command lists its options in one or more tables
 * (tmux's args_parse in spirit): name, kind and where the value goes; one
 * parser (getopt_long underneath: "--opt VALUE", "--opt=VALUE", unambiguous
 * prefixes) checks each value and prints the usage error.
 */
enum cli_opt_kind {
	CLI_OPT_FLAG,	  /* no value: *(int *)dest = 1 */
	CLI_OPT_STRING,	  /* *(const char **)dest = the value (argv's, not copied) */
	CLI_OPT_SIZE,	  /* *(uint64_t *)dest: bytes or K/M/G, not 0 */
	CLI_OPT_DURATION, /* *(uint64_t *)dest: nanoseconds, from 500ms, 30s, 2m... */
	CLI_OPT_ADDR,	  /* *(struct net_endpoint *)dest: HOST:PORT */
	CLI_OPT_INT,	  /* *(int *)dest: a number from min to max */
	CLI_OPT_FN,	  /* fn(e, "--name", value, dest): 0, or -1 once it printed why */
};

struct cli_opt {
	const char *name; /* without "--"; NULL ends a table */
	enum cli_opt_kind kind;
	void *dest;
	int min, max; /* CLI_OPT_INT */
	int (*fn)(const struct cmd_entry *e, const char *opt, const char *text, void *dest);
	int *given; /* optional: set to 1 when the option is given */
};

/* Table entries (designated, so that the fields a kind ignores stay zero). */
#define CLI_FLAG(n, d)                                         \
	{                                                      \
		.name = (n), .kind = CLI_OPT_FLAG, .dest = (d) \
	}
#define CLI_STRING(n, d)                                         \
	{                                                        \
		.name = (n), .kind = CLI_OPT_STRING, .dest = (d) \
	}
#define CLI_SIZE(n, d)                                         \
	{                                                      \
		.name = (n), .kind = CLI_OPT_SIZE, .dest = (d) \
	}
#define CLI_DURATION(n, d)                                         \
	{                                                          \
		.name = (n), .kind = CLI_OPT_DURATION, .dest = (d) \
	}
#define CLI_ADDR(n, d, seen)                                                    \
	{                                                                       \
		.name = (n), .kind = CLI_OPT_ADDR, .dest = (d), .given = (seen) \
	}
#define CLI_INT(n, d, lo, hi)                                                           \
	{                                                                               \
		.name = (n), .kind = CLI_OPT_INT, .dest = (d), .min = (lo), .max = (hi) \
	}
#define CLI_FN(n, d, f)                                                 \
	{                                                               \
		.name = (n), .kind = CLI_OPT_FN, .dest = (d), .fn = (f) \
	}
#define CLI_END              \
	{                    \
		.name = NULL \
	}

#define CLI_OPTS_MAX 48	      /* options of one command, all tables together */
#define CLI_OPTS_IN_ORDER 0x1 /* stop at the first argument that is not an option */

/*
 * Parse argv[first..argc-1] against tables (a NULL-terminated list). Returns
 * the index of the first argument that is not an option, or -1 once a usage
 * error was printed (the command then exits EXIT_USAGE).
 */
int cli_parse_opts(const struct cmd_entry *e, int argc, char **argv, int first,
		   const struct cli_opt *const *tables, unsigned flags);

/*
 * The proxy options `doppel proxy` and `doppel run` share (--buffer,
 * --budget, --replica-flush, --log-level, --max-legs, --max-replica-legs, TLS),
 * as a table writing into pc.
 */
#define CLI_THREADS_AUTO_MAX 16 /* --threads by default: CPUs, at most this */
#define CLI_PROXY_OPTS 16	/* entries of that table, its end included */
void cli_proxy_opts(struct proxy_config *pc, struct cli_opt table[CLI_PROXY_OPTS]);
/*
 * What the shared options require of each other once all are parsed; prints
 * why not. Sets pc->tls.ncerts.
 */
int cli_proxy_opts_check(const struct cmd_entry *e, struct proxy_config *pc);

/*
 * cmd-supopts.c: callbacks (CLI_FN) for the options of the commands that start
 * a supervisor. cli_opt_state: dest is the struct sup_config, the dir is made
 * absolute and appended to its state dirs; cli_opt_dir: an existing dir, made
 * absolute, into a const char *; cli_opt_work_dir: an absolute path, as given;
 * cli_opt_overflow: drop|reclone into an enum sup_overflow; cli_opt_admin: a
 * checked HOST:PORT, as given; cli_opt_upstream: LISTEN=TARGET or HOST:PORT
 * appended to the struct sup_config's upstreams.
 */
int cli_opt_state(const struct cmd_entry *e, const char *opt, const char *text, void *dest);
int cli_opt_dir(const struct cmd_entry *e, const char *opt, const char *text, void *dest);
int cli_opt_work_dir(const struct cmd_entry *e, const char *opt, const char *text, void *dest);
int cli_opt_overflow(const struct cmd_entry *e, const char *opt, const char *text, void *dest);
int cli_opt_admin(const struct cmd_entry *e, const char *opt, const char *text, void *dest);
int cli_opt_upstream(const struct cmd_entry *e, const char *opt, const char *text, void *dest);

/*
 * The clone-limit options of the commands that start a supervisor
 * (--clone-memory, --clone-cpu-weight, --clone-pids, --no-clone-limits) into
 * cfg; cli_clone_limits_check() says what contradicts once all are parsed.
 */
#define CLI_LIMIT_OPTS 5 /* entries of that table, its end included */
void cli_clone_limit_opts(struct sup_config *cfg, struct cli_opt table[CLI_LIMIT_OPTS]);
int cli_clone_limits_check(const struct cmd_entry *e, const struct sup_config *cfg);
#define CLI_JOIN_HELP                                                                           \
	"  --join-open            connections open when a clone is made continue on it: the\n"  \
	"                         clone is restored with production's end of each and doppel\n" \
	"                         makes the other end in the clone's netns (TCP repair), so\n"  \
	"                         each goes on exactly where production's was, its session\n"   \
	"                         (login, selected database, open transaction) intact.\n"       \
	"                         Production's input is held from just before the freeze\n"     \
	"                         until its images are written. Where that cannot be (TLS to\n" \
	"                         production, an adopted service, --no-join-exact), a\n"        \
	"                         connection joins at its next turn after a replay of its\n"    \
	"                         RESP state commands (AUTH, SELECT, HELLO, CLIENT). See\n"     \
	"                         `joined_exact` and `joined` in status. Off by default\n"      \
	"  --no-join-exact        with --join-open: always join at the next turn\n"             \
	"  --threads N            event loops carrying the traffic (default: one per CPU\n"     \
	"                         it may use, at most 16, or $DOPPEL_THREADS; at most 64):\n"   \
	"                         each has its own listener (SO_REUSEPORT), connections and\n"  \
	"                         buffers; a replica's budget, overflows and counters are\n"    \
	"                         one over all of them. Not with --join-open\n"
#define CLI_LIMITS_HELP                                                                          \
	"  --clone-memory SIZE    memory limit of each clone, in a cgroup of its own: past\n"    \
	"                         it the kernel kills the clone, never production (default\n"    \
	"                         2 x production's resident memory when the clone is\n"          \
	"                         made + 1/8 of the host's memory)\n"                            \
	"  --clone-cpu-weight N   CPU weight of each clone, 1 to 10000 (default 10; 100 is an\n" \
	"                         ordinary cgroup's): clones get the CPU time production\n"      \
	"                         leaves over\n"                                                 \
	"  --clone-pids N         most tasks (threads) of each clone (default 2 x\n"             \
	"                         production's + 64)\n"                                          \
	"  --no-clone-limits      clones get no cgroup (limits given to `doppel clone` still\n"  \
	"                         apply). Limits given explicitly are required: a clone that\n"  \
	"                         cannot get them is not made; the defaults are not: such a\n"   \
	"                         clone runs without limits and doppel says why\n"
#define CLI_TLS_HELP                                                                          \
	"  --tls-cert FILE --tls-key FILE\n"                                                  \
	"                      terminate TLS from clients (TLS 1.2 and 1.3) with this PEM\n"  \
	"                      certificate chain and key (repeatable pairs: the one whose\n"  \
	"                      names cover the client's SNI is used, else the first). The\n"  \
	"                      key file must be readable by its owner only (chmod 600).\n"    \
	"                      Production and replicas get plaintext. SIGHUP reloads them.\n" \
	"  --alpn LIST         ALPN protocols offered, comma-separated (default http/1.1)\n"  \
	"  --tls-backend       speak TLS to production too, verifying its certificate\n"      \
	"                      (replicas still get plaintext)\n"                              \
	"  --tls-ca FILE       CA bundle production's certificate is verified with\n"         \
	"                      (default: the system's)\n"                                     \
	"  --tls-handshake-timeout DURATION\n"                                                \
	"                      a client's handshake must complete within this (default\n"     \
	"                      10s); counted as a timeout failure otherwise\n"

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
/* Those options as a table for cli_parse_opts, writing into o. */
#define CLI_DIV_OPTS 7 /* entries of that table, its end included */
void cli_div_opts_table(struct cli_div_opts *o, struct cli_opt table[CLI_DIV_OPTS]);

/*
 * cmd-supopts.c: the start shared by `doppel run` and `doppel adopt`: cfg's
 * defaults, the shared proxy and divergence option tables filled in, and
 * NAME (argv[1]) checked and copied. 0, or -1 after printing why.
 */
int cli_sup_prepare(const struct cmd_entry *e, int argc, char **argv, struct sup_config *cfg,
		    struct cli_div_opts *dopts, struct cli_opt *shared, struct cli_opt *div);

/* Directory of the supervisors' admin sockets: $DOPPEL_RUN_DIR or /run/doppel. */
const char *cli_run_dir(void);
/* Admin address of supervisor NAME; prints a usage error and returns -1 for a bad name. */
int cli_admin_for(const struct cmd_entry *e, const char *name, char *buf, size_t len);
/* Print a streamed admin reply as it arrives (progress lines). */
void cli_print_chunk(const char *data, size_t len, void *arg);

#endif
