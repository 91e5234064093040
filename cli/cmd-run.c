/*
 * cmd-run.c - `doppel run`: start a service so it can be cloned, and front it.
 */
#define LOG_PREFIX "run"
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cmd.h"
#include "common/clock.h"
#include "common/log.h"
#include "supervisor/supervisor.h"

/* SUP_MAX_UPSTREAMS in the help text. */
#define TEXT_OF(x) #x
#define NUMBER_TEXT(x) TEXT_OF(x)
#define UPSTREAMS_TEXT NUMBER_TEXT(SUP_MAX_UPSTREAMS)

static int cmd_run_exec(int argc, char **argv);

const struct cmd_entry cmd_run_entry = {
	.name = "run",
	.usage = "NAME --listen ADDR --port PORT [--state DIR]... [--upstream L=T|ADDR]...\n"
		 "       [--buffer SIZE] [--overflow drop|reclone] [options] -- CMD [ARGS...]",
	.summary = "run a service in its own namespaces so it can be cloned live, and front it",
	.help = "Starts CMD as the init of fresh pid, net, mount, ipc and uts namespaces "
		"(loopback\n"
		"up, an empty /dev/shm, inherited fds closed, its own session) so that CRIU can\n"
		"dump it, and listens on --listen on this host, forwarding every connection to\n"
		"the service's --port inside its namespace (no veth, no NAT). Stays in the\n"
		"foreground as the supervisor; `doppel clone NAME` makes live clones that get a\n"
		"copy of the traffic. On SIGTERM, SIGINT or `doppel stop NAME` it destroys its\n"
		"clones and stops the service (the first of SIGTERM, SIGINT, SIGQUIT the service\n"
		"handles, then SIGKILL after --stop-timeout). Exits 1 if the service exits on its\n"
		"own. Needs root. systemd Type=notify: READY=1 once the service listens.\n"
		"SIGHUP reloads the TLS certificates and keys (--tls-cert) without dropping\n"
		"connections.\n"
		"\n"
		"options:\n"
		"  --listen ADDR          where clients connect, e.g. 127.0.0.1:8080\n"
		"  --port PORT            the port the service listens on (127.0.0.1 inside its\n"
		"                         namespace); doppel waits for it before accepting\n"
		"  --state DIR            a directory the service writes (data, AOF, logs);\n"
		"                         repeatable. Each clone gets its own copy, taken while\n"
		"                         production is frozen, mounted where the service expects "
		"it\n"
		"  --buffer SIZE          queue per connection and clone before the clone's\n"
		"                         connection is dropped (default 4M)\n"
		"  --budget SIZE          queue per clone over all connections (default 64 x "
		"buffer)\n"
		"  --overflow POLICY      drop (default): an overflowing clone misses that\n"
		"                         connection; reclone: it is replaced by a fresh clone, "
		"and\n"
		"                         its debug window is recorded\n"
		"  --images DIR           write CRIU images under DIR (default: a private tmpfs "
		"that\n"
		"                         only this supervisor sees; images are deleted after "
		"use)\n"
		"  --work-dir DIR         clones' state copies and logs (default "
		"/var/lib/doppel/NAME)\n"
		"  --ready-timeout DUR    how long to wait for the service to listen (default "
		"60s)\n"
		"  --stop-timeout DUR     grace before SIGKILL when stopping it (default 10s)\n"
		"  --chdir DIR            the service's working directory (default: the current "
		"one)\n"
		"  --keep-cgroup-mounts   leave /sys/fs/cgroup mounted in the service (each "
		"cgroup\n"
		"                         mount adds to the time production is frozen)\n"
		"  --replica-flush DUR    batch writes to clones (default 10ms; 0: at once)\n"
		"  --max-legs N           connections to clones open at once, all clones together\n"
		"                         (default: (fd limit - 64) / 2); past it, or past a\n"
		"                         clone's share (--max-replica-legs N, default an equal\n"
		"                         share), a clone's oldest lingering connection is "
		"closed,\n"
		"                         else the new connection skips that clone\n" CLI_JOIN_HELP
		"  --clone-nice N         clones' nice value, 0 to 19 (default 10): on a busy host "
		"a\n"
		"                         clone yields the CPU to production and to its clients;\n"
		"                         0 runs clones at production's priority\n" CLI_LIMITS_HELP
		"  --upstream L=T         upstream isolation (repeatable, up to " UPSTREAMS_TEXT
		"): the service's\n"
		"                         connections to L (inside its namespace) are forwarded to "
		"T\n"
		"                         on this host and recorded; clones connecting to L are\n"
		"                         answered from that recording and never reach T\n"
		"                         (--upstream ADDR: L and T are both ADDR)\n"
		"  --upstream-budget SIZE recorded bytes kept per upstream (default 256M)\n"
		"  --upstream-wait DUR    how long a clone's request waits for production to make "
		"the\n"
		"                         same one before it is reset as unanswered (default 5s)\n"
		"  --criu PATH            the CRIU binary (default: $DOPPEL_CRIU, else criu in "
		"$PATH,\n"
		"                         /usr/local/sbin or /usr/sbin; version 4.2 or later)\n"
		"  --admin ADDR           also serve the status page (/) and GET /status,\n"
		"                         /status.txt, /metrics on HOST:PORT; clone, destroy and\n"
		"                         stop stay on the admin socket\n" CLI_DIV_HELP CLI_TLS_HELP
		"  --log-level LEVEL      error, warn, info (default) or debug\n"
		"\n"
		"The admin socket is /run/doppel/NAME.sock (0600; $DOPPEL_RUN_DIR overrides\n"
		"/run/doppel): GET / (the status page), /status, /status.txt, /metrics,\n"
		"/diverge, /record; POST /clone, /destroy?id=N, /record, /stop.\n"
		"\n"
		"example:\n"
		"  doppel run cache --listen 127.0.0.1:7379 --port 6379 --state /var/lib/cache -- "
		"\\\n"
		"      redis-server --port 6379 --bind 127.0.0.1 --dir /var/lib/cache --appendonly "
		"yes\n",
	.exec = cmd_run_exec,
};

/* Divergence rules and recording, from --protocol, --mask, --record... */
static int div_config(const struct cmd_entry *e, struct cli_div_opts *dopts, struct sup_config *cfg,
		      struct div_rules **rules)
{
	static char record_abs[PATH_MAX];

	if (cli_div_rules(e, dopts, cfg->proxy.max_turns, rules))
		return -1;
	cfg->proxy.div_rules = *rules;
	cfg->record = dopts->rec;
	if (dopts->record_dir) {
		/* made absolute when it exists; the supervisor creates it otherwise */
		if (!realpath(dopts->record_dir, record_abs))
			snprintf(record_abs, sizeof(record_abs), "%s", dopts->record_dir);
		cfg->record_dir = record_abs;
	}
	return 0;
}

static int cmd_run_exec(int argc, char **argv)
{
	const struct cmd_entry *e = &cmd_run_entry;
	struct sup_config cfg;
	struct cli_div_opts dopts;
	struct div_rules *rules = NULL;
	struct cli_opt shared[CLI_PROXY_OPTS], div[CLI_DIV_OPTS], limits[CLI_LIMIT_OPTS];
	int have_listen = 0, port = 0, rc;
	const struct cli_opt own[] = {
		CLI_ADDR("listen", &cfg.proxy.listen, &have_listen),
		CLI_INT("port", &port, 1, 65535),
		CLI_FN("state", &cfg, cli_opt_state),
		CLI_FN("overflow", &cfg.overflow, cli_opt_overflow),
		CLI_FN("images", &cfg.images_dir, cli_opt_dir),
		CLI_FN("work-dir", &cfg.work_dir, cli_opt_work_dir),
		CLI_DURATION("ready-timeout", &cfg.ready_timeout_ns),
		CLI_DURATION("stop-timeout", &cfg.stop_timeout_ns),
		CLI_FN("chdir", &cfg.chdir, cli_opt_dir),
		CLI_FLAG("keep-cgroup-mounts", &cfg.keep_cgroup_mounts),
		CLI_STRING("criu", &cfg.criu),
		CLI_FN("upstream", &cfg, cli_opt_upstream),
		CLI_INT("clone-nice", &cfg.clone_nice, 0, 19),
		CLI_SIZE("upstream-budget", &cfg.upstream_budget),
		CLI_DURATION("upstream-wait", &cfg.upstream_wait_ns),
		CLI_FN("admin", &cfg.admin_addr, cli_opt_admin),
		CLI_END,
	};
	const struct cli_opt *const tables[] = {own, shared, div, limits, NULL};
	char err[1024];

	if (cli_sup_prepare(e, argc, argv, &cfg, &dopts, shared, div))
		return EXIT_USAGE;
	cli_clone_limit_opts(&cfg, limits);
	rc = cli_parse_opts(e, argc, argv, 2, tables, CLI_OPTS_IN_ORDER);
	if (rc < 0)
		return EXIT_USAGE;
	if (!have_listen)
		return cmd_usage_error(e, "--listen is required");
	if (!port)
		return cmd_usage_error(e, "--port is required (the port the service listens on)");
	if (cli_proxy_opts_check(e, &cfg.proxy))
		return EXIT_USAGE;
	if (rc >= argc)
		return cmd_usage_error(e, "give the service's command after --");
	if (cli_clone_limits_check(e, &cfg))
		return EXIT_USAGE;
	cfg.port = port;
	cfg.argv = &argv[rc];
	if (div_config(e, &dopts, &cfg, &rules))
		return EXIT_USAGE;
	rc = sup_run(&cfg, err, sizeof(err));
	if (rc)
		fprintf(stderr, "doppel run %s: %s\n", cfg.name, err);
	div_rules_free(rules);
	return rc;
}
