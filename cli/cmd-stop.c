/*
 * cmd-stop.c - `doppel stop NAME`: stop a supervisor and everything it runs.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "admin/admin.h"
#include "cli/cmd.h"
#include "common/clock.h"

static int cmd_stop_exec(int argc, char **argv);

const struct cmd_entry cmd_stop_entry = {
	.name = "stop",
	.usage = "NAME [--timeout DURATION]",
	.summary = "stop a service run by `doppel run`, and all its clones",
	.help = "Asks the supervisor of NAME to stop: it stops accepting connections, destroys\n"
		"every clone, stops the service and exits. Waits until it is gone.\n"
		"\n"
		"options:\n"
		"  --timeout DURATION   how long to wait (default 60s)\n",
	.exec = cmd_stop_exec,
};

static int cmd_stop_exec(int argc, char **argv)
{
	const struct cmd_entry *e = &cmd_stop_entry;
	uint64_t timeout = 60 * NSEC_PER_SEC, t0;
	const struct cli_opt opts[] = {CLI_DURATION("timeout", &timeout), CLI_END};
	const struct cli_opt *const tables[] = {opts, NULL};
	char addr[512], err[512];
	struct sbuf body;
	int status;

	if (argc < 2 || argv[1][0] == '-')
		return cmd_usage_error(e, "give the NAME of a service (see `doppel list`)");
	if (cli_admin_for(e, argv[1], addr, sizeof(addr)))
		return EXIT_USAGE;
	if (cli_parse_opts(e, argc, argv, 2, tables, 0) < 0)
		return EXIT_USAGE;
	sbuf_init(&body);
	status = admin_request(addr, "POST", "/stop", NULL, &body, NULL, NULL, 10000, err,
			       sizeof(err));
	sbuf_free(&body);
	if (status < 0) {
		fprintf(stderr, "doppel stop: %s\n", err);
		return EXIT_RUNTIME;
	}
	/* Gone when its socket file is removed (or nobody answers on it). */
	t0 = clock_now_ns();
	while (clock_now_ns() - t0 < timeout) {
		struct timespec ts = {0, 50 * 1000 * 1000};

		if (access(addr + 5, F_OK) < 0) {
			printf("%s stopped\n", argv[1]);
			return 0;
		}
		nanosleep(&ts, NULL);
	}
	fprintf(stderr, "doppel stop: %s is still stopping after %.0f s\n", argv[1],
		(double)timeout / 1e9);
	return EXIT_RUNTIME;
}
