/*
 * cmd-supopts.c - option callbacks shared by the commands that start a
 * supervisor (`doppel run`, `doppel adopt`): paths made absolute, the
 * overflow policy, the admin address, upstreams.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cmd.h"
#include "supervisor/supervisor.h"

int cli_opt_state(const struct cmd_entry *e, const char *opt, const char *text, void *dest)
{
	static char abs[CM_MAX_STATE][PATH_MAX];
	struct sup_config *cfg = dest;

	if (cfg->nstate == CM_MAX_STATE)
		return cmd_usage_error(e, "at most %d %s dirs", CM_MAX_STATE, opt), -1;
	if (!realpath(text, abs[cfg->nstate]))
		return cmd_usage_error(e, "%s %s: %s (create it first)", opt, text,
				       strerror(errno)),
		       -1;
	cfg->state_dirs[cfg->nstate] = abs[cfg->nstate];
	cfg->nstate++;
	return 0;
}

int cli_opt_dir(const struct cmd_entry *e, const char *opt, const char *text, void *dest)
{
	static char abs[4][PATH_MAX]; /* a few such options per command line */
	static unsigned n;
	char *a = abs[n++ % 4];

	if (!realpath(text, a))
		return cmd_usage_error(e, "%s %s: %s", opt, text, strerror(errno)), -1;
	*(const char **)dest = a;
	return 0;
}

int cli_opt_work_dir(const struct cmd_entry *e, const char *opt, const char *text, void *dest)
{
	if (text[0] != '/')
		return cmd_usage_error(e, "%s must be an absolute path", opt), -1;
	*(const char **)dest = text;
	return 0;
}

int cli_opt_overflow(const struct cmd_entry *e, const char *opt, const char *text, void *dest)
{
	enum sup_overflow *policy = dest;

	if (strcmp(text, "drop") == 0)
		*policy = SUP_OVERFLOW_DROP;
	else if (strcmp(text, "reclone") == 0)
		*policy = SUP_OVERFLOW_RECLONE;
	else
		return cmd_usage_error(e, "%s '%s': use drop or reclone", opt, text), -1;
	return 0;
}

int cli_opt_admin(const struct cmd_entry *e, const char *opt, const char *text, void *dest)
{
	struct net_endpoint ep;

	if (cli_parse_addr(e, opt, text, &ep))
		return -1;
	*(const char **)dest = text;
	return 0;
}

int cli_sup_prepare(const struct cmd_entry *e, int argc, char **argv, struct sup_config *cfg,
		    struct cli_div_opts *dopts, struct cli_opt *shared, struct cli_opt *div)
{
	sup_config_defaults(cfg);
	cfg->run_dir = cli_run_dir();
	cli_proxy_opts(&cfg->proxy, shared);
	cli_div_opts_init(dopts);
	cli_div_opts_table(dopts, div);
	if (argc < 2 || argv[1][0] == '-')
		return cmd_usage_error(e, "give the service a NAME first"), -1;
	if (!sup_name_valid(argv[1]))
		return cmd_usage_error(
			       e, "bad NAME '%s': use letters, digits, '_', '.', '-' (at most %d)",
			       argv[1], SUP_NAME_MAX),
		       -1;
	snprintf(cfg->name, sizeof(cfg->name), "%s", argv[1]);
	return 0;
}

int cli_opt_upstream(const struct cmd_entry *e, const char *opt, const char *text, void *dest)
{
	struct sup_config *cfg = dest;
	const char *eq = strchr(text, '=');

	if (cfg->nupstreams == SUP_MAX_UPSTREAMS) {
		cmd_usage_error(e, "at most %d %s", SUP_MAX_UPSTREAMS, opt);
		return -1;
	}
	if (!*text || eq == text || (eq && !eq[1]) || !strchr(eq ? eq : text, ':')) {
		cmd_usage_error(e,
				"%s '%s': expected LISTEN=TARGET or HOST:PORT, e.g. "
				"127.0.0.1:6379=127.0.0.1:6379 or 127.0.0.1:6379",
				opt, text);
		return -1;
	}
	cfg->upstreams[cfg->nupstreams++] = text;
	return 0;
}

void cli_clone_limit_opts(struct sup_config *cfg, struct cli_opt table[CLI_LIMIT_OPTS])
{
	const struct cli_opt t[CLI_LIMIT_OPTS] = {
		{.name = "clone-memory",
		 .kind = CLI_OPT_SIZE,
		 .dest = &cfg->clone_memory,
		 .given = &cfg->clone_limits_given},
		{.name = "clone-cpu-weight",
		 .kind = CLI_OPT_INT,
		 .dest = &cfg->clone_cpu_weight,
		 .min = 1,
		 .max = 10000,
		 .given = &cfg->clone_limits_given},
		{.name = "clone-pids",
		 .kind = CLI_OPT_INT,
		 .dest = &cfg->clone_pids,
		 .min = 1,
		 .max = 4194304,
		 .given = &cfg->clone_limits_given},
		CLI_FLAG("no-clone-limits", &cfg->no_clone_limits),
		CLI_END,
	};

	memcpy(table, t, sizeof(t));
}

int cli_clone_limits_check(const struct cmd_entry *e, const struct sup_config *cfg)
{
	if (cfg->clone_memory && cfg->clone_memory < (4ULL << 20))
		return cmd_usage_error(e, "--clone-memory: at least 4M"), -1;
	if (cfg->no_clone_limits && cfg->clone_limits_given)
		return cmd_usage_error(e,
				       "--no-clone-limits and --clone-memory, "
				       "--clone-cpu-weight or --clone-pids contradict each other"),
		       -1;
	return 0;
}
