/*
 * cmd-run.c - `doppel run`: start a service so it can be cloned, and front it.
 */
#define LOG_PREFIX "run"
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cmd.h"
#include "common/clock.h"
#include "common/log.h"
#include "supervisor/supervisor.h"

static int cmd_run_exec(int argc, char **argv);

const struct cmd_entry cmd_run_entry = {
	.name = "run",
	.usage = "NAME --listen ADDR --port PORT [--state DIR]... [--upstream L=T]...\n"
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
		"  --clone-nice N         clones' nice value, 0 to 19 (default 10): on a busy host "
		"a\n"
		"                         clone yields the CPU to production and to its clients;\n"
		"                         0 runs clones at production's priority\n"
		"  --upstream L=T         upstream isolation (repeatable, up to 8): the service's\n"
		"                         connections to L (inside its namespace) are forwarded to "
		"T\n"
		"                         on this host and recorded; clones connecting to L are\n"
		"                         answered from that recording and never reach T\n"
		"  --upstream-budget SIZE recorded bytes kept per upstream (default 256M)\n"
		"  --upstream-wait DUR    how long a clone's request waits for production to make "
		"the\n"
		"                         same one before it is reset as unanswered (default 5s)\n"
		"  --criu PATH            the CRIU binary (default: $DOPPEL_CRIU, else criu in "
		"$PATH,\n"
		"                         /usr/local/sbin or /usr/sbin; version 4.2 or later)\n"
		"  --admin ADDR           also serve the status page (/) and GET /status,\n"
		"                         /status.txt, /metrics on HOST:PORT; clone, destroy and\n"
		"                         stop stay on the admin socket\n" CLI_DIV_HELP
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

static int cmd_run_exec(int argc, char **argv)
{
	static const struct option opts[] = {
		{"listen", required_argument, NULL, 'l'},
		{"port", required_argument, NULL, 'p'},
		{"state", required_argument, NULL, 's'},
		{"buffer", required_argument, NULL, 'B'},
		{"budget", required_argument, NULL, 'g'},
		{"overflow", required_argument, NULL, 'o'},
		{"images", required_argument, NULL, 'i'},
		{"work-dir", required_argument, NULL, 'w'},
		{"ready-timeout", required_argument, NULL, 'r'},
		{"stop-timeout", required_argument, NULL, 't'},
		{"chdir", required_argument, NULL, 'C'},
		{"keep-cgroup-mounts", no_argument, NULL, 'K'},
		{"replica-flush", required_argument, NULL, 'f'},
		{"log-level", required_argument, NULL, 'v'},
		{"criu", required_argument, NULL, 'c'},
		{"upstream", required_argument, NULL, 'u'},
		{"clone-nice", required_argument, NULL, 'N'},
		{"upstream-budget", required_argument, NULL, 'U'},
		{"upstream-wait", required_argument, NULL, 'W'},
		{"admin", required_argument, NULL, 'a'},
		{"protocol", required_argument, NULL, 'D'},
		{"mask", required_argument, NULL, 'D'},
		{"mask-header", required_argument, NULL, 'D'},
		{"record", required_argument, NULL, 'D'},
		{"record-file-size", required_argument, NULL, 'D'},
		{"record-total", required_argument, NULL, 'D'},
		{NULL, 0, NULL, 0},
	};
	const struct cmd_entry *e = &cmd_run_entry;
	static char state_abs[CM_MAX_STATE][PATH_MAX];
	static char images_abs[PATH_MAX], work_abs[PATH_MAX], chdir_abs[PATH_MAX];
	static char record_abs[PATH_MAX];
	struct sup_config cfg;
	struct cli_div_opts dopts;
	struct div_rules *rules = NULL;
	int have_listen = 0, c, rc, li = 0;
	long port = 0;
	char err[1024];

	sup_config_defaults(&cfg);
	cli_div_opts_init(&dopts);
	cfg.run_dir = cli_run_dir();
	if (argc < 2 || argv[1][0] == '-')
		return cmd_usage_error(e, "give the service a NAME first");
	if (!sup_name_valid(argv[1]))
		return cmd_usage_error(
			e, "bad NAME '%s': use letters, digits, '_', '.', '-' (at most %d)",
			argv[1], SUP_NAME_MAX);
	snprintf(cfg.name, sizeof(cfg.name), "%s", argv[1]);
	opterr = 0;
	optind = 2;
	while ((c = getopt_long(argc, argv, "+", opts, &li)) != -1) {
		switch (c) {
		case 'D':
			if (cli_div_opt(e, opts[li].name, optarg, &dopts) < 0)
				return EXIT_USAGE;
			break;
		case 'l':
			if (cli_parse_addr(e, "--listen", optarg, &cfg.proxy.listen))
				return EXIT_USAGE;
			have_listen = 1;
			break;
		case 'p': {
			char *end;

			port = strtol(optarg, &end, 10);
			if (*end || port < 1 || port > 65535)
				return cmd_usage_error(e, "--port '%s': a number from 1 to 65535",
						       optarg);
			break;
		}
		case 's':
			if (cfg.nstate == CM_MAX_STATE)
				return cmd_usage_error(e, "at most %d --state dirs", CM_MAX_STATE);
			if (!realpath(optarg, state_abs[cfg.nstate]))
				return cmd_usage_error(e, "--state %s: %s (create it first)",
						       optarg, strerror(errno));
			cfg.state_dirs[cfg.nstate] = state_abs[cfg.nstate];
			cfg.nstate++;
			break;
		case 'B':
			if (cli_parse_size(e, "--buffer", optarg, &cfg.proxy.buffer))
				return EXIT_USAGE;
			break;
		case 'g':
			if (cli_parse_size(e, "--budget", optarg, &cfg.proxy.budget))
				return EXIT_USAGE;
			break;
		case 'o':
			if (strcmp(optarg, "drop") == 0)
				cfg.overflow = SUP_OVERFLOW_DROP;
			else if (strcmp(optarg, "reclone") == 0)
				cfg.overflow = SUP_OVERFLOW_RECLONE;
			else
				return cmd_usage_error(e, "--overflow '%s': use drop or reclone",
						       optarg);
			break;
		case 'i':
			if (!realpath(optarg, images_abs))
				return cmd_usage_error(e, "--images %s: %s", optarg,
						       strerror(errno));
			cfg.images_dir = images_abs;
			break;
		case 'w':
			if (optarg[0] != '/')
				return cmd_usage_error(e, "--work-dir must be an absolute path");
			snprintf(work_abs, sizeof(work_abs), "%s", optarg);
			cfg.work_dir = work_abs;
			break;
		case 'r':
			if (cli_parse_duration(e, "--ready-timeout", optarg, &cfg.ready_timeout_ns))
				return EXIT_USAGE;
			break;
		case 't':
			if (cli_parse_duration(e, "--stop-timeout", optarg, &cfg.stop_timeout_ns))
				return EXIT_USAGE;
			break;
		case 'C':
			if (!realpath(optarg, chdir_abs))
				return cmd_usage_error(e, "--chdir %s: %s", optarg,
						       strerror(errno));
			cfg.chdir = chdir_abs;
			break;
		case 'K':
			cfg.keep_cgroup_mounts = 1;
			break;
		case 'c':
			cfg.criu = optarg;
			break;
		case 'N': {
			char *end;
			long v = strtol(optarg, &end, 10);

			if (*end || v < 0 || v > 19)
				return cmd_usage_error(
					e, "--clone-nice '%s': a number from 0 to 19", optarg);
			cfg.clone_nice = (int)v;
			break;
		}
		case 'u':
			if (cfg.nupstreams == 8)
				return cmd_usage_error(e, "at most 8 --upstream");
			if (!strchr(optarg, '='))
				return cmd_usage_error(
					e,
					"--upstream '%s': expected LISTEN=TARGET, e.g. "
					"127.0.0.1:6379=127.0.0.1:6379",
					optarg);
			cfg.upstreams[cfg.nupstreams++] = optarg;
			break;
		case 'U':
			if (cli_parse_size(e, "--upstream-budget", optarg, &cfg.upstream_budget))
				return EXIT_USAGE;
			break;
		case 'W':
			if (cli_parse_duration(e, "--upstream-wait", optarg, &cfg.upstream_wait_ns))
				return EXIT_USAGE;
			break;
		case 'a': {
			struct net_endpoint ep;

			if (cli_parse_addr(e, "--admin", optarg, &ep))
				return EXIT_USAGE;
			cfg.admin_addr = optarg;
			break;
		}
		case 'f':
			if (cli_parse_replica_flush(e, optarg, &cfg.proxy.replica_flush_ns))
				return EXIT_USAGE;
			break;
		case 'v':
			if (cli_parse_log_level(e, optarg))
				return EXIT_USAGE;
			break;
		default:
			return cmd_usage_error(e, "unknown or incomplete option '%s'",
					       argv[optind - 1]);
		}
	}
	if (!have_listen)
		return cmd_usage_error(e, "--listen is required");
	if (!port)
		return cmd_usage_error(e, "--port is required (the port the service listens on)");
	if (cfg.proxy.budget && cfg.proxy.budget < cfg.proxy.buffer)
		return cmd_usage_error(e, "--budget must be at least --buffer");
	if (optind >= argc)
		return cmd_usage_error(e, "give the service's command after --");
	cfg.port = (int)port;
	cfg.argv = &argv[optind];
	if (cli_div_rules(e, &dopts, cfg.proxy.max_turns, &rules))
		return EXIT_USAGE;
	cfg.proxy.div_rules = rules;
	cfg.record = dopts.rec;
	if (dopts.record_dir) {
		if (!realpath(dopts.record_dir, record_abs) &&
		    snprintf(record_abs, sizeof(record_abs), "%s", dopts.record_dir) < 0)
			return EXIT_USAGE;
		cfg.record_dir = record_abs;
	}
	rc = sup_run(&cfg, err, sizeof(err));
	if (rc)
		fprintf(stderr, "doppel run %s: %s\n", cfg.name, err);
	div_rules_free(rules);
	return rc;
}
