/*
 * cmd-proxy.c - `doppel proxy`: the bare duplicating proxy, for any TCP
 * service and replicas that already run (no CRIU involved).
 */
#define LOG_PREFIX "proxy"
#include <errno.h>
#include <event2/event.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "admin/admin.h"
#include "cli/cmd.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/sdnotify.h"
#include "common/size.h"
#include "proxy/proxy.h"
#include "record/routes.h"
#include "record/tap.h"

#define MAX_REPLICAS 32

static int cmd_proxy_exec(int argc, char **argv);

const struct cmd_entry cmd_proxy_entry = {
	.name = "proxy",
	.usage = "--listen ADDR --backend ADDR [--replica [NAME=]ADDR]... [--control ADDR]\n"
		 "       [--buffer SIZE] [--budget SIZE] [--admin ADDR] [--linger DURATION]\n"
		 "       [--replica-flush DURATION] [--protocol P] [--mask REGEX]... [--record "
		 "DIR]\n"
		 "       [--log-level LEVEL]",
	.summary = "duplicate a TCP service's traffic to replicas that never slow it down",
	.help = "Accepts clients on --listen and forwards every byte to the production server at\n"
		"--backend, and production's answers back. Each --replica receives a copy of\n"
		"the client bytes through a bounded buffer per connection; its answers are\n"
		"hashed (to count diverged turns) and discarded. A replica that is slow,\n"
		"stopped, dead or refusing never slows production: when its buffer for a\n"
		"connection passes --buffer, that replica connection is closed and counted as\n"
		"an overflow, and the client carries on untouched.\n"
		"\n"
		"options:\n"
		"  --listen ADDR       where clients connect, e.g. 127.0.0.1:7301\n"
		"  --backend ADDR      production, e.g. 127.0.0.1:7001\n"
		"  --replica [NAME=]ADDR\n"
		"                      a replica (repeatable, up to 32); NAME labels it in status\n"
		"  --control ADDR      an unmodified replica fed the same traffic: what differs\n"
		"                      between it and production is noise (`doppel diverge`)\n"
		"  --buffer SIZE       queue per connection and replica before it is dropped\n"
		"                      (default 4M; K, M, G accepted)\n"
		"  --budget SIZE       queue per replica over all its connections (default 64 x "
		"buffer)\n"
		"  --admin ADDR        serve GET /status (JSON), /status.txt, /metrics\n"
		"                      (Prometheus) and the status page / on ADDR (HOST:PORT\n"
		"                      or unix:/path)\n"
		"  --linger DURATION   how long a replica may keep receiving a connection's "
		"backlog\n"
		"                      after its client left (default 60s)\n"
		"  --pass-buffer SIZE  queue between client and production before reading the\n"
		"                      sender pauses (default 256K)\n"
		"  --replica-flush DURATION\n"
		"                      gather replica writes this long and send them as one batch "
		"per\n"
		"                      connection (default 10ms; 0: at once). Replicas then read\n"
		"                      several requests at a time, as from a pipelining "
		"client\n" CLI_DIV_HELP
		"  --log-level LEVEL   error, warn, info (default) or debug\n"
		"\n"
		"With --admin, GET /diverge is the divergence report (`doppel diverge --admin\n"
		"ADDR`) and POST /record starts or stops recording (`doppel record --admin ADDR\n"
		"start|stop`).\n"
		"\n"
		"Stops cleanly on SIGTERM or SIGINT. Exit status 2 for a bad option, an address\n"
		"that cannot be used, or a port in use. systemd Type=notify: READY=1 once it\n"
		"listens (deploy/systemd/doppel-proxy@.service).\n"
		"\n"
		"example:\n"
		"  doppel proxy --listen 127.0.0.1:7301 --backend 127.0.0.1:7001 \\\n"
		"               --replica 127.0.0.1:7002 --buffer 4M --admin 127.0.0.1:7399\n",
	.exec = cmd_proxy_exec,
};

struct replica_arg {
	char name[64];
	struct net_endpoint ep;
};

static int render_status(void *arg, const char *query, struct sbuf *out, const char **ctype)
{
	if (strstr(query, "format=text")) {
		proxy_status_text(arg, out);
		return 200;
	}
	proxy_status_json(arg, out);
	*ctype = "application/json";
	return 200;
}

static int render_status_text(void *arg, const char *query, struct sbuf *out, const char **ctype)
{
	(void)query;
	(void)ctype;
	proxy_status_text(arg, out);
	return 200;
}

static int render_metrics(void *arg, const char *query, struct sbuf *out, const char **ctype)
{
	(void)query;
	proxy_metrics(arg, out, "");
	*ctype = "text/plain; version=0.0.4";
	return 200;
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	(void)what;
	pr_info("received %s, stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
	event_base_loopexit(arg, NULL);
}

static int cmd_proxy_exec(int argc, char **argv)
{
	static const struct option opts[] = {
		{"listen", required_argument, NULL, 'l'},
		{"backend", required_argument, NULL, 'b'},
		{"replica", required_argument, NULL, 'r'},
		{"buffer", required_argument, NULL, 'B'},
		{"budget", required_argument, NULL, 'g'},
		{"admin", required_argument, NULL, 'a'},
		{"linger", required_argument, NULL, 'L'},
		{"log-level", required_argument, NULL, 'v'},
		{"pass-buffer", required_argument, NULL, 'p'},
		{"replica-flush", required_argument, NULL, 'f'},
		{"control", required_argument, NULL, 'c'},
		{"protocol", required_argument, NULL, 'D'},
		{"mask", required_argument, NULL, 'D'},
		{"mask-header", required_argument, NULL, 'D'},
		{"record", required_argument, NULL, 'D'},
		{"record-file-size", required_argument, NULL, 'D'},
		{"record-total", required_argument, NULL, 'D'},
		{NULL, 0, NULL, 0},
	};
	const struct cmd_entry *e = &cmd_proxy_entry;
	struct replica_arg reps[MAX_REPLICAS];
	unsigned nreps = 0;
	struct proxy_config cfg;
	const char *admin_addr = NULL;
	int have_listen = 0, have_backend = 0, c, rc = 0;
	struct event_base *base = NULL;
	struct event *sigint = NULL, *sigterm = NULL;
	struct proxy *px = NULL;
	struct admin *adm = NULL;
	struct cli_div_opts dopts;
	struct div_rules *rules = NULL;
	struct rec_tap *tap = NULL;
	struct rec_routes *routes = NULL;
	int li = 0, have_control = 0;
	struct net_endpoint control;
	char err[512], rec_default[64];

	proxy_config_defaults(&cfg);
	cli_div_opts_init(&dopts);
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, &li)) != -1) {
		switch (c) {
		case 'D':
			if (cli_div_opt(e, opts[li].name, optarg, &dopts) < 0)
				return EXIT_USAGE;
			break;
		case 'c':
			if (have_control)
				return cmd_usage_error(e, "one --control at most");
			if (cli_parse_addr(e, "--control", optarg, &control))
				return EXIT_USAGE;
			have_control = 1;
			break;
		case 'l':
			if (cli_parse_addr(e, "--listen", optarg, &cfg.listen))
				return EXIT_USAGE;
			have_listen = 1;
			break;
		case 'b':
			if (cli_parse_addr(e, "--backend", optarg, &cfg.backend))
				return EXIT_USAGE;
			have_backend = 1;
			break;
		case 'r': {
			const char *eq = strchr(optarg, '=');
			const char *addr = eq ? eq + 1 : optarg;

			if (nreps == MAX_REPLICAS)
				return cmd_usage_error(e, "at most %d replicas", MAX_REPLICAS);
			memset(&reps[nreps], 0, sizeof(reps[nreps]));
			if (eq)
				snprintf(reps[nreps].name, sizeof(reps[nreps].name), "%.*s",
					 (int)(eq - optarg), optarg);
			if (cli_parse_addr(e, "--replica", addr, &reps[nreps].ep))
				return EXIT_USAGE;
			nreps++;
			break;
		}
		case 'B':
			if (cli_parse_size(e, "--buffer", optarg, &cfg.buffer))
				return EXIT_USAGE;
			break;
		case 'g':
			if (cli_parse_size(e, "--budget", optarg, &cfg.budget))
				return EXIT_USAGE;
			break;
		case 'p':
			if (cli_parse_size(e, "--pass-buffer", optarg, &cfg.pass_buffer))
				return EXIT_USAGE;
			break;
		case 'a':
			admin_addr = optarg;
			break;
		case 'L':
			if (cli_parse_duration(e, "--linger", optarg, &cfg.linger_ns))
				return EXIT_USAGE;
			break;
		case 'f':
			if (cli_parse_replica_flush(e, optarg, &cfg.replica_flush_ns))
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
	if (optind < argc)
		return cmd_usage_error(e, "unexpected argument '%s'", argv[optind]);
	if (!have_listen)
		return cmd_usage_error(e, "--listen is required");
	if (!have_backend)
		return cmd_usage_error(e, "--backend is required");
	if (cfg.budget && cfg.budget < cfg.buffer)
		return cmd_usage_error(e, "--budget must be at least --buffer");
	if (cli_div_rules(e, &dopts, cfg.max_turns, &rules))
		return EXIT_USAGE;
	cfg.div_rules = rules;

	base = event_base_new();
	if (!base) {
		fprintf(stderr, "doppel proxy: cannot create the event loop\n");
		return EXIT_RUNTIME;
	}
	rc = proxy_new(base, &cfg, &px, err, sizeof(err));
	if (rc < 0) {
		fprintf(stderr, "doppel proxy: %s\n", err);
		rc = (rc == -EADDRINUSE || rc == -EADDRNOTAVAIL || rc == -EACCES || rc == -EINVAL)
			     ? EXIT_USAGE
			     : EXIT_RUNTIME;
		goto out;
	}
	if (admin_addr || dopts.record_dir) {
		struct proxy_observer ob;

		tap = rec_tap_new(NULL, &cfg.backend);
		if (!tap) {
			fprintf(stderr, "doppel proxy: out of memory\n");
			rc = EXIT_RUNTIME;
			goto out;
		}
		rec_tap_observer(tap, &ob);
		proxy_set_observer(px, &ob);
		if (dopts.record_dir) {
			dopts.rec.dir = dopts.record_dir;
			if (rec_tap_start(tap, &dopts.rec, err, sizeof(err)) < 0) {
				fprintf(stderr, "doppel proxy: --record: %s\n", err);
				rc = EXIT_USAGE;
				goto out;
			}
		}
	}
	for (unsigned i = 0; i < nreps; i++) {
		if (proxy_replica_add(px, &reps[i].ep, reps[i].name, NULL, NULL, err, sizeof(err)) <
		    0) {
			fprintf(stderr, "doppel proxy: replica %s: %s\n", reps[i].ep.text, err);
			rc = EXIT_RUNTIME;
			goto out;
		}
	}
	if (have_control) {
		struct proxy_replica_opts ro = {.control = 1};

		if (proxy_replica_add(px, &control, "control", &ro, NULL, err, sizeof(err)) < 0) {
			fprintf(stderr, "doppel proxy: control %s: %s\n", control.text, err);
			rc = EXIT_RUNTIME;
			goto out;
		}
	}
	if (admin_addr) {
		rc = admin_new(base, admin_addr, &adm, err, sizeof(err));
		if (rc < 0) {
			fprintf(stderr, "doppel proxy: --admin: %s\n", err);
			rc = (rc == -EADDRINUSE || rc == -EINVAL || rc == -EADDRNOTAVAIL)
				     ? EXIT_USAGE
				     : EXIT_RUNTIME;
			goto out;
		}
		admin_route(adm, "/status", render_status, px);
		admin_route(adm, "/status.txt", render_status_text, px);
		admin_route(adm, "/metrics", render_metrics, px);
		admin_route_page(adm);
		snprintf(rec_default, sizeof(rec_default), "doppel-record-%d", (int)getpid());
		routes = rec_routes_add(adm, px, tap, &dopts.rec,
					dopts.record_dir ? dopts.record_dir : rec_default);
	}
	sigint = evsignal_new(base, SIGINT, on_signal, base);
	sigterm = evsignal_new(base, SIGTERM, on_signal, base);
	event_add(sigint, NULL);
	event_add(sigterm, NULL);
	{
		char b[32];

		pr_info("listening on %s, production %s, %u replica(s), buffer %s per "
			"connection%s%s",
			cfg.listen.text, cfg.backend.text, nreps,
			size_format(cfg.buffer, b, sizeof(b)), admin_addr ? ", admin " : "",
			admin_addr ? admin_addr : "");
	}
	/* systemd Type=notify: everything listens now. */
	if ((rc = sdnotify("READY=1")) < 0)
		pr_warn("cannot notify the service manager: %s", strerror(-rc));
	event_base_dispatch(base);
	rc = 0;
out:
	if (adm)
		admin_free(adm);
	rec_routes_free(routes);
	if (px) {
		struct sbuf sb;

		sbuf_init(&sb);
		proxy_status_text(px, &sb);
		if (rc == 0)
			pr_info("final status:\n%s", sb.buf);
		sbuf_free(&sb);
		proxy_free(px);
	}
	rec_tap_free(tap);
	div_rules_free(rules);
	if (sigint)
		event_free(sigint);
	if (sigterm)
		event_free(sigterm);
	if (base)
		event_base_free(base);
	return rc;
}
