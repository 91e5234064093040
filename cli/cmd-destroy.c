/*
 * cmd-destroy.c - `doppel destroy NAME/ID`: remove one clone.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/admin.h"
#include "cli/cmd.h"

static int cmd_destroy_exec(int argc, char **argv);

const struct cmd_entry cmd_destroy_entry = {
	.name = "destroy",
	.usage = "NAME/ID",
	.summary = "destroy a clone: its processes, namespaces, mounts and state copy",
	.help = "Detaches clone ID of the service NAME from the proxy, kills every process in its\n"
		"pid namespace (its network and mount namespaces go with them) and deletes its\n"
		"copy of the state dirs and its logs. Production is not touched. `doppel status\n"
		"NAME` lists the clones' ids.\n",
	.exec = cmd_destroy_exec,
};

static int cmd_destroy_exec(int argc, char **argv)
{
	const struct cmd_entry *e = &cmd_destroy_entry;
	char name[64], addr[512], path[64], err[512];
	const char *slash;
	struct sbuf body;
	unsigned long id;
	char *end;
	int status;

	if (argc != 2)
		return cmd_usage_error(e, "give one NAME/ID, e.g. web/1");
	slash = strchr(argv[1], '/');
	if (!slash || slash == argv[1] || (size_t)(slash - argv[1]) >= sizeof(name))
		return cmd_usage_error(e, "'%s' is not NAME/ID, e.g. web/1", argv[1]);
	snprintf(name, sizeof(name), "%.*s", (int)(slash - argv[1]), argv[1]);
	id = strtoul(slash + 1, &end, 10);
	if (!slash[1] || *end || !id)
		return cmd_usage_error(e, "'%s': the clone id after '/' is a number, e.g. web/1",
				       argv[1]);
	if (cli_admin_for(e, name, addr, sizeof(addr)))
		return EXIT_USAGE;
	snprintf(path, sizeof(path), "/destroy?id=%lu", id);
	sbuf_init(&body);
	status =
		admin_request(addr, "POST", path, NULL, &body, NULL, NULL, 60000, err, sizeof(err));
	if (status < 0) {
		fprintf(stderr, "doppel destroy: %s\n", err);
		sbuf_free(&body);
		return EXIT_RUNTIME;
	}
	fputs(body.buf ? body.buf : "", status == 200 ? stdout : stderr);
	sbuf_free(&body);
	return status == 200 ? 0 : EXIT_RUNTIME;
}
