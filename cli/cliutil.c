/*
 * cliutil.c - help printing and argument parsing shared by all commands.
 */
#include "cli/cmd.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/size.h"
#include "supervisor/supervisor.h"

#include <stdlib.h>

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
