/*
 * cmd-diverge.c - `doppel diverge`: the divergence report of a running
 * supervisor or proxy (GET /diverge on its admin socket).
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "admin/admin.h"
#include "cli/cmd.h"

static int cmd_diverge_exec(int argc, char **argv);

const struct cmd_entry cmd_diverge_entry = {
	.name = "diverge",
	.usage = "NAME [--json]  |  --admin ADDR [--json]",
	.summary = "which replicas answer differently from production, and where",
	.help = "Shows, per clone or replica, how many response turns were compared with\n"
		"production's and how many differed, per request type (HTTP method and path\n"
		"template, RESP command, or a raw request's first bytes), and excerpts of the\n"
		"turns that differed: connection, turn, request, the first differing byte and\n"
		"the bytes around it on both sides, escaped.\n"
		"\n"
		"Answers are compared after the normaliser of --protocol (HTTP volatile headers\n"
		"masked, HTTP and RESP answers framed) and the --mask regexes. With a control\n"
		"replica (an unmodified one: `doppel proxy --control ADDR`, `doppel clone NAME\n"
		"--control`), what also differs between production and the control is noise:\n"
		"a request type is reported as DIVERGED only when its raw differences exceed\n"
		"the control's by Diffy's thresholds (20 % relative, 0.03 % of the turns) and\n"
		"by two standard deviations. The rule is in docs/divergence.md.\n"
		"\n"
		"options:\n"
		"  --admin ADDR   a proxy's --admin address (HOST:PORT or unix:/path)\n"
		"  --json         the report as JSON\n",
	.exec = cmd_diverge_exec,
};

static int cmd_diverge_exec(int argc, char **argv)
{
	static const struct option opts[] = {
		{"admin", required_argument, NULL, 'a'},
		{"json", no_argument, NULL, 'j'},
		{NULL, 0, NULL, 0},
	};
	const struct cmd_entry *e = &cmd_diverge_entry;
	const char *addr = NULL;
	int json = 0, c, status;
	struct sbuf body;
	char err[512], named[512];

	opterr = 0;
	optind = 1;
	if (argc > 1 && argv[1][0] != '-') {
		if (cli_admin_for(e, argv[1], named, sizeof(named)))
			return EXIT_USAGE;
		addr = named;
		optind = 2;
	}
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'a':
			addr = optarg;
			break;
		case 'j':
			json = 1;
			break;
		default:
			return cmd_usage_error(e, "unknown or incomplete option '%s'",
					       argv[optind - 1]);
		}
	}
	if (optind < argc)
		return cmd_usage_error(e, "unexpected argument '%s'", argv[optind]);
	if (!addr)
		return cmd_usage_error(e, "give a NAME (see `doppel list`) or --admin ADDR");
	sbuf_init(&body);
	status = admin_request(addr, "GET", json ? "/diverge?format=json" : "/diverge", NULL, &body,
			       NULL, NULL, 5000, err, sizeof(err));
	if (status < 0) {
		fprintf(stderr, "doppel diverge: %s\n", err);
		sbuf_free(&body);
		return EXIT_RUNTIME;
	}
	if (status != 200) {
		fprintf(stderr, "doppel diverge: %s answered %d: %s", addr, status,
			body.buf ? body.buf : "");
		sbuf_free(&body);
		return EXIT_RUNTIME;
	}
	if (body.len)
		fwrite(body.buf, 1, body.len, stdout);
	sbuf_free(&body);
	return 0;
}
