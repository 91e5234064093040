/*
 * cmd-reload.c - `doppel reload NAME`: read the TLS certificates and keys of
 * a service run by `doppel run` again (as SIGHUP to its supervisor does).
 */
#include <stdio.h>
#include <string.h>

#include "admin/admin.h"
#include "cli/cmd.h"

static int cmd_reload_exec(int argc, char **argv);

const struct cmd_entry cmd_reload_entry = {
	.name = "reload",
	.usage = "NAME",
	.summary = "reload the TLS certificates and keys of a service run by `doppel run`",
	.help = "Asks the supervisor of NAME to read its --tls-cert and --tls-key files again.\n"
		"New handshakes use them; open connections keep theirs, none is dropped. If\n"
		"a file cannot be loaded (missing, not PEM, a key that does not match its\n"
		"certificate or that group or others may read) the loaded certificates stay\n"
		"and the reason is printed (exit 1). SIGHUP to the supervisor does the same;\n"
		"for `doppel proxy`, send it SIGHUP.\n",
	.exec = cmd_reload_exec,
};

static int cmd_reload_exec(int argc, char **argv)
{
	const struct cmd_entry *e = &cmd_reload_entry;
	char addr[512], err[512];
	struct sbuf body;
	int status;

	if (argc < 2 || argv[1][0] == '-')
		return cmd_usage_error(e, "give the NAME of a service (see `doppel list`)");
	if (argc > 2)
		return cmd_usage_error(e, "unexpected argument '%s'", argv[2]);
	if (cli_admin_for(e, argv[1], addr, sizeof(addr)))
		return EXIT_USAGE;
	sbuf_init(&body);
	status = admin_request(addr, "POST", "/reload", NULL, &body, NULL, NULL, 10000, err,
			       sizeof(err));
	if (status < 0) {
		fprintf(stderr, "doppel reload: %s\n", err);
		sbuf_free(&body);
		return EXIT_RUNTIME;
	}
	fprintf(status == 200 ? stdout : stderr, "%s%s",
		status == 200 ? "" : "doppel reload: ", body.buf ? body.buf : "");
	sbuf_free(&body);
	return status == 200 ? 0 : EXIT_RUNTIME;
}
