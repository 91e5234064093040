/*
 * cmd-proxy.c - `doppel proxy`: the bare duplicating proxy, for any TCP
 * service and replicas that already run (no CRIU involved).
 */
#define LOG_PREFIX "proxy"
#include <errno.h>
#include <event2/event.h>
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
		 "       [--replica-flush DURATION] [--max-legs N] [--max-replica-legs N]\n"
		 "       [--protocol P] [--mask REGEX]... [--record DIR] [--log-level LEVEL]\n"
		 "       [--tls-cert FILE --tls-key FILE]... [--alpn LIST]\n"
		 "       [--tls-backend [--tls-ca FILE]] [--tls-handshake-timeout DURATION]",
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
		"  --max-legs N        replica connections open at once, all replicas together\n"
		"                      (default: (fd limit - 64) / 2, the other half kept for\n"
		"                      client and production sockets). Past it, or past a\n"
		"                      replica's share, the replica's oldest lingering connection\n"
		"                      (its client gone) is closed, else the new connection skips\n"
		"                      the replica; both are counted in /status\n"
		"  --max-replica-legs N\n"
		"                      replica connections open at once per replica (default: an\n"
		"                      equal share of --max-legs)\n" CLI_JOIN_HELP
		"  --pass-buffer SIZE  queue between client and production before reading the\n"
		"                      sender pauses (default 256K)\n"
		"  --replica-flush DURATION\n"
		"                      gather replica writes this long and send them as one batch "
		"per\n"
		"                      connection (default 10ms; 0: at once). Replicas then read\n"
		"                      several requests at a time, as from a pipelining "
		"client\n" CLI_DIV_HELP CLI_TLS_HELP
		"  --log-level LEVEL   error, warn, info (default) or debug\n"
		"\n"
		"With --admin, GET /diverge is the divergence report (`doppel diverge --admin\n"
		"ADDR`) and POST /record starts or stops recording (`doppel record --admin ADDR\n"
		"start|stop`).\n"
		"\n"
		"At start the soft fd limit is raised to the hard limit (as HAProxy and nginx do)\n"
		"and logged; replica connections are capped from it (--max-legs), so a replica\n"
		"that accepts and never reads cannot take the fds production needs.\n"
		"\n"
		"Stops cleanly on SIGTERM or SIGINT; SIGHUP reloads the TLS certificates and\n"
		"keys (new handshakes use them; open connections keep theirs). Exit status 2 for "
		"a\n"
		"bad option, an address\n"
		"that cannot be used, or a port in use. systemd Type=notify: READY=1 once it\n"
		"listens (deploy/systemd/doppel-proxy@.service).\n"
		"\n"
		"example:\n"
		"  doppel proxy --listen 127.0.0.1:7301 --backend 127.0.0.1:7001 \\\n"
		"               --replica 127.0.0.1:7002 --buffer 4M --admin 127.0.0.1:7399\n",
	.exec = cmd_proxy_exec,
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

static void on_reload(evutil_socket_t sig, short what, void *arg)
{
	char err[512];

	(void)sig;
	(void)what;
	if (proxy_tls_reload(arg, err, sizeof(err)) < 0)
		pr_warn("SIGHUP: certificates not reloaded: %s; the loaded ones stay", err);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	(void)what;
	pr_info("received %s, stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
	event_base_loopexit(arg, NULL);
}

/* --replica [NAME=]ADDR, repeatable. */
struct replica_args {
	struct {
		char name[64];
		struct net_endpoint ep;
	} reps[MAX_REPLICAS];
	unsigned n;
};

static int opt_replica(const struct cmd_entry *e, const char *opt, const char *text, void *dest)
{
	struct replica_args *ra = dest;
	const char *eq = strchr(text, '=');

	if (ra->n == MAX_REPLICAS) {
		cmd_usage_error(e, "at most %d replicas", MAX_REPLICAS);
		return -1;
	}
	memset(&ra->reps[ra->n], 0, sizeof(ra->reps[ra->n]));
	if (eq)
		snprintf(ra->reps[ra->n].name, sizeof(ra->reps[ra->n].name), "%.*s",
			 (int)(eq - text), text);
	if (cli_parse_addr(e, opt, eq ? eq + 1 : text, &ra->reps[ra->n].ep))
		return -1;
	ra->n++;
	return 0;
}

/* --control ADDR: at most one. */
struct control_arg {
	struct net_endpoint ep;
	int given;
};

static int opt_control(const struct cmd_entry *e, const char *opt, const char *text, void *dest)
{
	struct control_arg *ca = dest;

	if (ca->given) {
		cmd_usage_error(e, "one %s at most", opt);
		return -1;
	}
	if (cli_parse_addr(e, opt, text, &ca->ep))
		return -1;
	ca->given = 1;
	return 0;
}

/* What `doppel proxy` was asked for, once parsed. */
struct bare_args {
	struct replica_args reps;
	struct control_arg control;
	struct cli_div_opts div;
	const char *admin_addr;
};

/* What `doppel proxy` runs: the proxy, its replicas, recording, admin endpoint, signals. */
struct bare_proxy {
	struct event_base *base;
	struct event *sigint, *sigterm, *sighup;
	struct proxy *px;
	struct rec_tap *tap; /* with --admin or --record */
	struct admin *adm;
	struct rec_routes *routes;
	char rec_default[64];
};

static int usage_errno(int rc)
{
	return rc == -EADDRINUSE || rc == -EADDRNOTAVAIL || rc == -EACCES || rc == -EINVAL;
}

/* Production's conversations and each replica's, recorded (doppel record). */
static int bare_tap(struct bare_proxy *bp, const struct proxy_config *cfg, struct bare_args *ba)
{
	struct proxy_observer ob;
	char err[512];

	bp->tap = rec_tap_new(NULL, &cfg->backend);
	if (!bp->tap) {
		fprintf(stderr, "doppel proxy: out of memory\n");
		return EXIT_RUNTIME;
	}
	rec_tap_observer(bp->tap, &ob);
	proxy_set_observer(bp->px, &ob);
	if (ba->div.record_dir) {
		ba->div.rec.dir = ba->div.record_dir;
		if (rec_tap_start(bp->tap, &ba->div.rec, err, sizeof(err)) < 0) {
			fprintf(stderr, "doppel proxy: --record: %s\n", err);
			return EXIT_USAGE;
		}
	}
	return 0;
}

static int bare_replicas(struct bare_proxy *bp, const struct bare_args *ba)
{
	struct proxy_replica_opts ro = {.control = 1};
	char err[512];

	for (unsigned i = 0; i < ba->reps.n; i++) {
		if (proxy_replica_add(bp->px, &ba->reps.reps[i].ep, ba->reps.reps[i].name, NULL,
				      NULL, err, sizeof(err)) < 0) {
			fprintf(stderr, "doppel proxy: replica %s: %s\n", ba->reps.reps[i].ep.text,
				err);
			return EXIT_RUNTIME;
		}
	}
	if (ba->control.given && proxy_replica_add(bp->px, &ba->control.ep, "control", &ro, NULL,
						   err, sizeof(err)) < 0) {
		fprintf(stderr, "doppel proxy: control %s: %s\n", ba->control.ep.text, err);
		return EXIT_RUNTIME;
	}
	return 0;
}

static int bare_admin(struct bare_proxy *bp, struct bare_args *ba)
{
	char err[512];
	int rc = admin_new(bp->base, ba->admin_addr, &bp->adm, err, sizeof(err));

	if (rc < 0) {
		fprintf(stderr, "doppel proxy: --admin: %s\n", err);
		return rc != -EACCES && usage_errno(rc) ? EXIT_USAGE : EXIT_RUNTIME;
	}
	admin_route(bp->adm, "/status", render_status, bp->px);
	admin_route(bp->adm, "/status.txt", render_status_text, bp->px);
	admin_route(bp->adm, "/metrics", render_metrics, bp->px);
	admin_route_page(bp->adm);
	snprintf(bp->rec_default, sizeof(bp->rec_default), "doppel-record-%d", (int)getpid());
	bp->routes = rec_routes_add(bp->adm, bp->px, bp->tap, &ba->div.rec,
				    ba->div.record_dir ? ba->div.record_dir : bp->rec_default);
	return 0;
}

/* 0, or the exit status once the reason is printed. */
static int bare_start(struct bare_proxy *bp, const struct proxy_config *cfg, struct bare_args *ba)
{
	char err[512];
	int rc;

	bp->base = event_base_new();
	if (!bp->base) {
		fprintf(stderr, "doppel proxy: cannot create the event loop\n");
		return EXIT_RUNTIME;
	}
	rc = proxy_new(bp->base, cfg, &bp->px, err, sizeof(err));
	if (rc < 0) {
		fprintf(stderr, "doppel proxy: %s\n", err);
		return usage_errno(rc) ? EXIT_USAGE : EXIT_RUNTIME;
	}
	if ((ba->admin_addr || ba->div.record_dir) && (rc = bare_tap(bp, cfg, ba)))
		return rc;
	if ((rc = bare_replicas(bp, ba)))
		return rc;
	if (ba->admin_addr && (rc = bare_admin(bp, ba)))
		return rc;
	bp->sigint = evsignal_new(bp->base, SIGINT, on_signal, bp->base);
	bp->sigterm = evsignal_new(bp->base, SIGTERM, on_signal, bp->base);
	event_add(bp->sigint, NULL);
	event_add(bp->sigterm, NULL);
	bp->sighup = evsignal_new(bp->base, SIGHUP, on_reload, bp->px);
	event_add(bp->sighup, NULL);
	return 0;
}

static void bare_stop(struct bare_proxy *bp, int final_status)
{
	if (bp->adm)
		admin_free(bp->adm);
	rec_routes_free(bp->routes);
	if (bp->px) {
		struct sbuf sb;

		sbuf_init(&sb);
		proxy_status_text(bp->px, &sb);
		if (final_status)
			pr_info("final status:\n%s", sb.buf);
		sbuf_free(&sb);
		proxy_free(bp->px);
	}
	rec_tap_free(bp->tap);
	if (bp->sigint)
		event_free(bp->sigint);
	if (bp->sigterm)
		event_free(bp->sigterm);
	if (bp->sighup)
		event_free(bp->sighup);
	if (bp->base)
		event_base_free(bp->base);
}

/* As large an fd table as the host allows (HAProxy, nginx): replica legs are capped from it. */
static void raise_fd_limit(void)
{
	uint64_t before = 0, after = 0;
	int rc = proxy_raise_fd_limit(&before, &after);

	if (rc < 0)
		pr_warn("cannot raise the fd limit from %llu: %s; replica connections are capped "
			"from %llu",
			(unsigned long long)before, strerror(-rc), (unsigned long long)before);
	else if (after != before)
		pr_info("fd limit raised from %llu to %llu (the hard limit)",
			(unsigned long long)before, (unsigned long long)after);
	else
		pr_info("fd limit %llu (already the hard limit)", (unsigned long long)after);
}

static int cmd_proxy_exec(int argc, char **argv)
{
	const struct cmd_entry *e = &cmd_proxy_entry;
	struct proxy_config cfg;
	struct bare_args ba = {.admin_addr = NULL};
	struct bare_proxy bp = {0};
	struct div_rules *rules = NULL;
	int have_listen = 0, have_backend = 0, rc, nrc;
	struct cli_opt shared[CLI_PROXY_OPTS], div[CLI_DIV_OPTS];
	const struct cli_opt own[] = {
		CLI_ADDR("listen", &cfg.listen, &have_listen),
		CLI_ADDR("backend", &cfg.backend, &have_backend),
		CLI_FN("replica", &ba.reps, opt_replica),
		CLI_FN("control", &ba.control, opt_control),
		CLI_STRING("admin", &ba.admin_addr),
		CLI_DURATION("linger", &cfg.linger_ns),
		CLI_SIZE("pass-buffer", &cfg.pass_buffer),
		CLI_END,
	};
	const struct cli_opt *const tables[] = {own, shared, div, NULL};

	proxy_config_defaults(&cfg);
	cli_proxy_opts(&cfg, shared);
	cli_div_opts_init(&ba.div);
	cli_div_opts_table(&ba.div, div);
	rc = cli_parse_opts(e, argc, argv, 1, tables, 0);
	if (rc < 0)
		return EXIT_USAGE;
	if (rc < argc)
		return cmd_usage_error(e, "unexpected argument '%s'", argv[rc]);
	if (!have_listen)
		return cmd_usage_error(e, "--listen is required");
	if (!have_backend)
		return cmd_usage_error(e, "--backend is required");
	if (cli_proxy_opts_check(e, &cfg) || cli_div_rules(e, &ba.div, cfg.max_turns, &rules))
		return EXIT_USAGE;
	cfg.div_rules = rules;
	raise_fd_limit();
	rc = bare_start(&bp, &cfg, &ba);
	if (rc == 0) {
		char b[32];

		pr_info("listening on %s, production %s, %u replica(s), buffer %s per "
			"connection%s%s",
			cfg.listen.text, cfg.backend.text, ba.reps.n,
			size_format(cfg.buffer, b, sizeof(b)), ba.admin_addr ? ", admin " : "",
			ba.admin_addr ? ba.admin_addr : "");
		/* systemd Type=notify: everything listens now. */
		if ((nrc = sdnotify("READY=1")) < 0)
			pr_warn("cannot notify the service manager: %s", strerror(-nrc));
		event_base_dispatch(bp.base);
	}
	bare_stop(&bp, rc == 0);
	div_rules_free(rules);
	return rc;
}
