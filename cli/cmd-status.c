/*
 * cmd-status.c - `doppel status`: what a running proxy or supervisor says
 * about itself, for a person (or as JSON).
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "admin/admin.h"
#include "cli/cmd.h"

static int cmd_status_exec(int argc, char **argv);

const struct cmd_entry cmd_status_entry = {
	.name = "status",
	.usage = "NAME [--json]  |  --admin ADDR [--json]",
	.summary = "show clones or replicas, overflows, debug windows and divergence",
	.help = "Shows the status of the service NAME (started with `doppel run`), or of a bare\n"
		"`doppel proxy` reached at its --admin ADDR: the service and its clones (pid,\n"
		"age, how long production was frozen to make them, the memory and tasks each\n"
		"uses against its limits, its CPU weight), the clones that ended on their own\n"
		"and why (\"killed by its memory limit\"), then per clone or replica\n"
		"its state, connections, bytes forwarded and dropped, overflows,\n"
		"buffer high-water mark, debug window (time from attach to first overflow; a\n"
		"trailing + means no overflow yet), forecast seconds left before overflow at the\n"
		"current rates, and diverged/compared response turns.\n"
		"\n"
		"options:\n"
		"  --admin ADDR   a proxy's --admin address (HOST:PORT or unix:/path)\n"
		"  --json         print the JSON document served at /status instead\n",
	.exec = cmd_status_exec,
};

static int cmd_status_exec(int argc, char **argv)
{
	static const struct option opts[] = {
		{"admin", required_argument, NULL, 'a'},
		{"json", no_argument, NULL, 'j'},
		{NULL, 0, NULL, 0},
	};
	const struct cmd_entry *e = &cmd_status_entry;
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
	status = admin_request(addr, "GET", json ? "/status" : "/status.txt", NULL, &body, NULL,
			       NULL, 5000, err, sizeof(err));
	if (status < 0) {
		fprintf(stderr, "doppel status: %s\n", err);
		sbuf_free(&body);
		return EXIT_RUNTIME;
	}
	if (status != 200) {
		fprintf(stderr, "doppel status: %s answered %d: %s", addr, status,
			body.buf ? body.buf : "");
		sbuf_free(&body);
		return EXIT_RUNTIME;
	}
	fwrite(body.buf, 1, body.len, stdout);
	sbuf_free(&body);
	return 0;
}
