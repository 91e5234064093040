/*
 * cmd-adopt.c - `doppel adopt`: take a service that is already running (in
 * the host's namespaces, not started by doppel) under a supervisor, so that
 * it can be cloned like one started by `doppel run`.
 */
#define LOG_PREFIX "adopt"
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cmd.h"
#include "common/log.h"
#include "supervisor/supervisor.h"

/* With capture only, the proxy (which holds the replicas) gets a front nobody uses. */
static int capture_front(const struct cmd_entry *e, struct sup_config *cfg)
{
	char perr[128];

	if (netaddr_parse("127.0.0.1:1", &cfg->proxy.listen, perr, sizeof(perr)) < 0)
		return cmd_usage_error(e, "%s", perr), -1;
	((struct sockaddr_in *)&cfg->proxy.listen.ss)->sin_port = 0; /* any free port */
	snprintf(cfg->proxy.listen.text, sizeof(cfg->proxy.listen.text), "none (--capture %s)",
		 cfg->capture_iface);
	return 0;
}

/* The process's command as started (its argv[0]), for status; -1 with errno. */
static int read_argv0(int pid, char *exe, size_t size)
{
	char path[64];
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%d/cmdline", pid);
	f = fopen(path, "re");
	if (!f)
		return -1;
	n = fread(exe, 1, size - 1, f);
	fclose(f);
	if (!n) {
		errno = ESRCH;
		return -1;
	}
	exe[n] = '\0'; /* argv[0] ends at its own '\0' */
	return 0;
}

static int cmd_adopt_exec(int argc, char **argv);

const struct cmd_entry cmd_adopt_entry = {
	.name = "adopt",
	.usage = "NAME --pid PID --port PORT (--capture IFACE | --front LISTEN) [--state DIR]...\n"
		 "       [--upstream HOST:PORT]... [options]",
	.summary = "take a service that is already running under a supervisor, to clone it",
	.help = "Registers a running process tree (PID and its descendants) that doppel did not\n"
		"start, in the host's namespaces, under a supervisor, as `doppel run` does: then\n"
		"`doppel clone NAME`, status, attach, destroy and stop work the same. The service\n"
		"is not restarted, not re-parented and never signalled: when the supervisor\n"
		"stops (SIGTERM, SIGINT, `doppel stop NAME`) it destroys its clones and leaves\n"
		"the service running exactly as before. The supervisor exits 1 if the service\n"
		"goes away. Check first with `doppel doctor --pid PID`. Needs root.\n"
		"\n"
		"A clone is a CRIU dump of the tree (--leave-running, --tcp-close,\n"
		"--skip-in-flight) restored into new pid, net, mount, ipc and uts namespaces: it\n"
		"listens on the service's address and port inside its own network namespace\n"
		"(the address is added to the clone's loopback when it is not 127.0.0.1 or\n"
		"any), its processes keep their pids, connections open at the freeze are\n"
		"closed in the clone (production keeps them), the --state dirs are copied while\n"
		"production is frozen and mounted over the originals, and every other file the\n"
		"service has open for writing (a log) is replaced in the clone by a private\n"
		"copy, so a clone never writes production's files.\n"
		"\n"
		"options:\n"
		"  --pid PID              the running service (the root of its process tree)\n"
		"  --port PORT            the TCP port it listens on\n"
		"  --capture IFACE        feed the clones from a live capture of the service's\n"
		"                         port on IFACE (`auto`: lo when the service listens on\n"
		"                         127.0.0.1 or on any address, else the interface that\n"
		"                         carries its address; `any`: all). Each client\n"
		"                         connection whose SYN is seen is reassembled and opened\n"
		"                         towards every clone, through the same buffers, overflow\n"
		"                         policy, debug window and divergence as a front;\n"
		"                         production's clients are not touched. A connection\n"
		"                         with bytes the capture missed is reset on the clone "
		"side\n"
		"  --capture-buffer SIZE  the kernel's capture ring (default 32M)\n"
		"  --front LISTEN         instead of --capture: listen on LISTEN (HOST:PORT) and\n"
		"                         forward each connection to the service, copying the\n"
		"                         client's bytes to every clone (clients must be pointed\n"
		"                         at LISTEN to be copied)\n"
		"  --state DIR            a directory the service writes (repeatable): each clone\n"
		"                         gets a copy taken while production is frozen\n"
		"  --upstream HOST:PORT   upstream isolation (repeatable, up to 8): the service's\n"
		"                         conversations with HOST:PORT (a database, a cache) are\n"
		"                         captured and recorded, its connections opened before\n"
		"                         the capture included from their next request, other\n"
		"                         processes' left out; clones connecting to HOST:PORT are\n"
		"                         answered from that recording and never reach it\n"
		"  --upstream-budget SIZE recorded bytes kept per upstream (default 256M)\n"
		"  --upstream-wait DUR    how long a clone's request waits for production to make\n"
		"                         the same one before it is reset as unanswered (default "
		"5s)\n"
		"  --buffer SIZE          queue per connection and clone (default 4M)\n"
		"  --budget SIZE          queue per clone over all connections (default 64 x "
		"buffer)\n"
		"  --overflow POLICY      drop (default) or reclone, as for `doppel run`\n"
		"  --images DIR           write CRIU images under DIR (default: /run/doppel/\n"
		"                         NAME.images, 0700, emptied after each restore)\n"
		"  --work-dir DIR         clones' state copies and logs (default "
		"/var/lib/doppel/NAME)\n"
		"  --replica-flush DUR    batch writes to clones (default 10ms; 0: at "
		"once)\n" CLI_JOIN_HELP
		"  --clone-nice N         clones' nice value, 0 to 19 (default "
		"10)\n" CLI_LIMITS_HELP
		"  --criu PATH            the CRIU binary (version 4.2 or later)\n"
		"  --admin ADDR           also serve the status page and read-only routes on "
		"ADDR\n" CLI_DIV_HELP
		"  --log-level LEVEL      error, warn, info (default) or debug\n"
		"\n"
		"example:\n"
		"  setsid redis-server --port 6379 --dir /var/lib/cache >/var/log/cache.log 2>&1 "
		"&\n"
		"  doppel doctor --pid $(pgrep -o redis-server) --port 6379\n"
		"  doppel adopt cache --pid $(pgrep -o redis-server) --port 6379 \\\n"
		"      --capture auto --state /var/lib/cache &\n"
		"  doppel clone cache\n",
	.exec = cmd_adopt_exec,
};

static int cmd_adopt_exec(int argc, char **argv)
{
	const struct cmd_entry *e = &cmd_adopt_entry;
	struct sup_config cfg;
	struct cli_div_opts dopts;
	struct div_rules *rules = NULL;
	struct cli_opt shared[CLI_PROXY_OPTS], div[CLI_DIV_OPTS], limits[CLI_LIMIT_OPTS];
	int have_front = 0, port = 0, pid = 0, rc;
	const struct cli_opt own[] = {
		CLI_INT("pid", &pid, 1, INT_MAX),
		CLI_INT("port", &port, 1, 65535),
		CLI_ADDR("front", &cfg.proxy.listen, &have_front),
		CLI_FN("state", &cfg, cli_opt_state),
		CLI_FN("overflow", &cfg.overflow, cli_opt_overflow),
		CLI_FN("images", &cfg.images_dir, cli_opt_dir),
		CLI_FN("work-dir", &cfg.work_dir, cli_opt_work_dir),
		CLI_STRING("criu", &cfg.criu),
		CLI_INT("clone-nice", &cfg.clone_nice, 0, 19),
		CLI_FN("admin", &cfg.admin_addr, cli_opt_admin),
		CLI_STRING("capture", &cfg.capture_iface),
		CLI_SIZE("capture-buffer", &cfg.capture_buffer),
		CLI_FN("upstream", &cfg, cli_opt_upstream),
		CLI_SIZE("upstream-budget", &cfg.upstream_budget),
		CLI_DURATION("upstream-wait", &cfg.upstream_wait_ns),
		CLI_END,
	};
	const struct cli_opt *const tables[] = {own, shared, div, limits, NULL};
	static char exe[PATH_MAX];
	static char *svc_argv[2] = {exe, NULL};
	char err[1024];

	if (cli_sup_prepare(e, argc, argv, &cfg, &dopts, shared, div))
		return EXIT_USAGE;
	cli_clone_limit_opts(&cfg, limits);
	rc = cli_parse_opts(e, argc, argv, 2, tables, 0);
	if (rc < 0)
		return EXIT_USAGE;
	if (rc < argc)
		return cmd_usage_error(e, "unexpected argument '%s'", argv[rc]);
	if (!pid)
		return cmd_usage_error(e, "--pid is required (the running service's pid)");
	if (!port)
		return cmd_usage_error(e, "--port is required (the port the service listens on)");
	if (!have_front && !cfg.capture_iface)
		return cmd_usage_error(e,
				       "give --capture IFACE (copy production's own clients' "
				       "traffic) or --front LISTEN (copy what clients send there)");
	if (have_front && cfg.capture_iface)
		return cmd_usage_error(e, "--front and --capture exclude each other: the front's "
					  "own connections to the service would be captured too");
	if (!have_front && capture_front(e, &cfg))
		return EXIT_USAGE;
	if (cli_proxy_opts_check(e, &cfg.proxy) || cli_clone_limits_check(e, &cfg))
		return EXIT_USAGE;
	if (cli_div_rules(e, &dopts, cfg.proxy.max_turns, &rules))
		return EXIT_USAGE;
	cfg.proxy.div_rules = rules;
	cfg.record = dopts.rec;
	cfg.record_dir = dopts.record_dir;
	cfg.port = port;
	cfg.adopt_pid = pid;
	if (read_argv0(pid, exe, sizeof(exe)) < 0) {
		fprintf(stderr,
			"doppel adopt %s: no process %d that doppel can see (%s); check --pid "
			"and run as root\n",
			cfg.name, pid, strerror(errno));
		div_rules_free(rules);
		return EXIT_USAGE;
	}
	cfg.argv = svc_argv;
	rc = sup_run(&cfg, err, sizeof(err));
	if (rc)
		fprintf(stderr, "doppel adopt %s: %s\n", cfg.name, err);
	div_rules_free(rules);
	return rc;
}
