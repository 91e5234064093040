/*
 * cliutil.c - help printing and argument parsing shared by all commands:
 * value parsers that print their own usage error, the table-driven option
 * parser, and the proxy options `doppel proxy` and `doppel run` share.
 */
#include "cli/cmd.h"

#include <errno.h>
#include <sched.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/size.h"
#include "proxy/proxy.h"
#include "supervisor/supervisor.h"

void cmd_print_help(const struct cmd_entry *e)
{
	printf("usage: doppel %s %s\n\n%s\n\n%s", e->name, e->usage, e->summary, e->help);
}

int cmd_usage_error(const struct cmd_entry *e, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "doppel %s: ", e->name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nusage: doppel %s %s\nTry 'doppel help %s' for more.\n", e->name,
		e->usage, e->name);
	return EXIT_USAGE;
}

int cli_parse_size(const struct cmd_entry *e, const char *opt, const char *text, uint64_t *out)
{
	int rc = size_parse(text, out);

	if (rc == -ERANGE) {
		cmd_usage_error(e, "%s %s: too large", opt, text);
		return -1;
	}
	if (rc || *out == 0) {
		cmd_usage_error(e, "%s '%s': not a size; write bytes or K/M/G, e.g. 4M", opt, text);
		return -1;
	}
	return 0;
}

int cli_parse_duration(const struct cmd_entry *e, const char *opt, const char *text, uint64_t *ns)
{
	if (duration_parse(text, ns) < 0) {
		cmd_usage_error(e, "%s '%s': not a duration; e.g. 500ms, 30s, 2m", opt, text);
		return -1;
	}
	return 0;
}

int cli_parse_addr(const struct cmd_entry *e, const char *opt, const char *text,
		   struct net_endpoint *out)
{
	char err[256];

	if (netaddr_parse(text, out, err, sizeof(err)) < 0) {
		cmd_usage_error(e, "%s: %s", opt, err);
		return -1;
	}
	return 0;
}

int cli_parse_log_level(const struct cmd_entry *e, const char *text)
{
	enum log_level lvl;

	if (log_parse_level(text, &lvl) < 0) {
		cmd_usage_error(e, "--log-level '%s': use error, warn, info or debug", text);
		return -1;
	}
	log_set_level(lvl);
	return 0;
}

int cli_parse_replica_flush(const struct cmd_entry *e, const char *text, uint64_t *ns)
{
	if (cli_parse_duration(e, "--replica-flush", text, ns))
		return -1;
	if (*ns > NSEC_PER_SEC) {
		cmd_usage_error(e, "--replica-flush %s: at most 1s", text);
		return -1;
	}
	return 0;
}

static int parse_int(const struct cmd_entry *e, const struct cli_opt *o, const char *opt,
		     const char *text)
{
	long v;

	if (number_parse(text, o->min, o->max, &v) < 0) {
		cmd_usage_error(e, "%s '%s': a number from %d to %d", opt, text, o->min, o->max);
		return -1;
	}
	*(int *)o->dest = (int)v;
	return 0;
}

static int opt_set(const struct cmd_entry *e, const struct cli_opt *o, const char *text)
{
	char opt[64];

	snprintf(opt, sizeof(opt), "--%s", o->name);
	switch (o->kind) {
	case CLI_OPT_FLAG:
		*(int *)o->dest = 1;
		return 0;
	case CLI_OPT_STRING:
		*(const char **)o->dest = text;
		return 0;
	case CLI_OPT_SIZE:
		return cli_parse_size(e, opt, text, o->dest);
	case CLI_OPT_DURATION:
		return cli_parse_duration(e, opt, text, o->dest);
	case CLI_OPT_ADDR:
		return cli_parse_addr(e, opt, text, o->dest);
	case CLI_OPT_INT:
		return parse_int(e, o, opt, text);
	case CLI_OPT_FN:
		return o->fn(e, opt, text, o->dest);
	}
	return -1;
}

/* getopt_long's value for the option at index i (clear of '?' and ':'). */
#define OPT_VAL(i) (0x100 + (int)(i))

int cli_parse_opts(const struct cmd_entry *e, int argc, char **argv, int first,
		   const struct cli_opt *const *tables, unsigned flags)
{
	const struct cli_opt *opts[CLI_OPTS_MAX];
	struct option lopts[CLI_OPTS_MAX + 1];
	unsigned n = 0;
	int c;

	for (const struct cli_opt *const *t = tables; *t; t++) {
		for (const struct cli_opt *o = *t; o->name; o++) {
			if (n == CLI_OPTS_MAX) {
				fprintf(stderr, "doppel %s: more than %d options in its tables\n",
					e->name, CLI_OPTS_MAX);
				abort(); /* a programming error, found by any run of the command */
			}
			opts[n] = o;
			lopts[n] = (struct option){
				o->name, o->kind == CLI_OPT_FLAG ? no_argument : required_argument,
				NULL, OPT_VAL(n)};
			n++;
		}
	}
	memset(&lopts[n], 0, sizeof(lopts[n]));
	opterr = 0;
	optind = first;
	while ((c = getopt_long(argc, argv, flags & CLI_OPTS_IN_ORDER ? "+" : "", lopts, NULL)) !=
	       -1) {
		const struct cli_opt *o;

		if (c < OPT_VAL(0) || c >= OPT_VAL(n)) {
			cmd_usage_error(e, "unknown or incomplete option '%s'", argv[optind - 1]);
			return -1;
		}
		o = opts[c - OPT_VAL(0)];
		if (opt_set(e, o, optarg) < 0)
			return -1;
		if (o->given)
			*o->given = 1;
	}
	return optind;
}

static int opt_log_level(const struct cmd_entry *e, const char *opt, const char *text, void *dest)
{
	(void)opt;
	(void)dest;
	return cli_parse_log_level(e, text);
}

static int opt_replica_flush(const struct cmd_entry *e, const char *opt, const char *text,
			     void *dest)
{
	(void)opt;
	return cli_parse_replica_flush(e, text, dest);
}

/* --tls-cert FILE / --tls-key FILE: the i-th certificate goes with the i-th key. */
static int opt_tls_file(const struct cmd_entry *e, const char *opt, const char *text, void *dest)
{
	const char **files = dest;
	unsigned i = 0;

	while (i < PROXY_TLS_MAX_CERTS && files[i])
		i++;
	if (i == PROXY_TLS_MAX_CERTS) {
		cmd_usage_error(e, "%s: at most %d", opt, PROXY_TLS_MAX_CERTS);
		return -1;
	}
	if (!*text) {
		cmd_usage_error(e, "%s: give a file", opt);
		return -1;
	}
	files[i] = text;
	return 0;
}

void cli_proxy_opts(struct proxy_config *pc, struct cli_opt table[CLI_PROXY_OPTS])
{
	const struct cli_opt shared[CLI_PROXY_OPTS] = {
		CLI_SIZE("buffer", &pc->buffer),
		CLI_SIZE("budget", &pc->budget),
		CLI_FN("replica-flush", &pc->replica_flush_ns, opt_replica_flush),
		CLI_FN("log-level", NULL, opt_log_level),
		CLI_FN("tls-cert", pc->tls.cert, opt_tls_file),
		CLI_FN("tls-key", pc->tls.key, opt_tls_file),
		CLI_STRING("alpn", &pc->tls.alpn),
		CLI_FLAG("tls-backend", &pc->tls.backend),
		CLI_STRING("tls-ca", &pc->tls.ca),
		CLI_DURATION("tls-handshake-timeout", &pc->tls.handshake_timeout_ns),
		CLI_INT("max-legs", &pc->max_legs, 1, INT_MAX),
		CLI_INT("max-replica-legs", &pc->max_replica_legs, 1, INT_MAX),
		CLI_FLAG("join-open", &pc->join_open),
		CLI_FLAG("no-join-exact", &pc->join_no_exact),
		CLI_INT("threads", &pc->threads, 1, PROXY_THREADS_MAX),
		CLI_END,
	};

	memcpy(table, shared, sizeof(shared));
}

static unsigned count_files(const char *const *files)
{
	unsigned n = 0;

	while (n < PROXY_TLS_MAX_CERTS && files[n])
		n++;
	return n;
}

/* The CPUs this process may run on (its affinity mask), at most CLI_THREADS_AUTO_MAX. */
static long cpus_usable(void)
{
	cpu_set_t set;
	long n = 1;

	if (sched_getaffinity(0, sizeof(set), &set) == 0)
		n = CPU_COUNT(&set);
	if (n < 1)
		n = 1;
	return n > CLI_THREADS_AUTO_MAX ? CLI_THREADS_AUTO_MAX : n;
}

/*
 * --threads not given: $DOPPEL_THREADS, else one per usable CPU (at most
 * CLI_THREADS_AUTO_MAX); one with --join-open (which runs on one thread),
 * whatever the environment says.
 */
static int threads_default(const struct cmd_entry *e, struct proxy_config *pc)
{
	const char *env = getenv("DOPPEL_THREADS");
	long n = cpus_usable();

	if (env && *env && number_parse(env, 1, PROXY_THREADS_MAX, &n) < 0) {
		cmd_usage_error(e, "DOPPEL_THREADS='%s' is not a number of threads from 1 to %d",
				env, PROXY_THREADS_MAX);
		return -1;
	}
	pc->threads = pc->join_open ? 1 : (unsigned)n;
	return 0;
}

int cli_proxy_opts_check(const struct cmd_entry *e, struct proxy_config *pc)
{
	unsigned ncerts = count_files(pc->tls.cert), nkeys = count_files(pc->tls.key);

	if (pc->budget && pc->budget < pc->buffer) {
		cmd_usage_error(e, "--budget must be at least --buffer");
		return -1;
	}
	if (ncerts != nkeys) {
		cmd_usage_error(e,
				"%u --tls-cert and %u --tls-key: give each certificate with its "
				"key (--tls-cert FILE --tls-key FILE, repeatable)",
				ncerts, nkeys);
		return -1;
	}
	pc->tls.ncerts = ncerts;
	if (pc->tls.alpn && !ncerts) {
		cmd_usage_error(e, "--alpn needs --tls-cert and --tls-key");
		return -1;
	}
	if (pc->threads > 1 && pc->join_open) {
		cmd_usage_error(e, "--join-open runs on one thread: give --threads 1 with it");
		return -1;
	}
	if (!pc->threads && threads_default(e, pc) < 0)
		return -1;
	if (pc->tls.ca && !pc->tls.backend) {
		cmd_usage_error(e, "--tls-ca needs --tls-backend (it verifies production)");
		return -1;
	}
	if (ncerts || pc->tls.backend) {
		char err[512];

		if (proxy_tls_check(&pc->tls, err, sizeof(err)) < 0) {
			fprintf(stderr, "doppel %s: %s\n", e->name, err);
			return -1;
		}
	}
	return 0;
}

static int opt_div(const struct cmd_entry *e, const char *opt, const char *text, void *dest)
{
	return cli_div_opt(e, opt + 2, text, dest) < 0 ? -1 : 0;
}

void cli_div_opts_table(struct cli_div_opts *o, struct cli_opt table[CLI_DIV_OPTS])
{
	const struct cli_opt div[CLI_DIV_OPTS] = {
		CLI_FN("protocol", o, opt_div),
		CLI_FN("mask", o, opt_div),
		CLI_FN("mask-header", o, opt_div),
		CLI_FN("record", o, opt_div),
		CLI_FN("record-file-size", o, opt_div),
		CLI_FN("record-total", o, opt_div),
		CLI_END,
	};

	memcpy(table, div, sizeof(div));
}

const char *cli_run_dir(void)
{
	const char *d = getenv("DOPPEL_RUN_DIR");

	return d && *d ? d : SUP_RUN_DIR;
}

int cli_admin_for(const struct cmd_entry *e, const char *name, char *buf, size_t len)
{
	if (!sup_name_valid(name)) {
		cmd_usage_error(e, "bad name '%s': use letters, digits, '_', '.', '-' (at most %d)",
				name, SUP_NAME_MAX);
		return -1;
	}
	sup_admin_addr(cli_run_dir(), name, buf, len);
	return 0;
}

void cli_print_chunk(const char *data, size_t len, void *arg)
{
	(void)arg;
	fwrite(data, 1, len, stdout);
	fflush(stdout);
}
