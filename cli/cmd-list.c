/*
 * cmd-list.c - `doppel list`: every supervisor running on this host.
 */
#include <dirent.h>
#include <stdio.h>
#include <string.h>

#include "admin/admin.h"
#include "cli/cmd.h"

static int cmd_list_exec(int argc, char **argv);

const struct cmd_entry cmd_list_entry = {
	.name = "list",
	.usage = "",
	.summary = "list the services running under `doppel run` and their clones",
	.help = "Asks every supervisor whose admin socket is in /run/doppel ($DOPPEL_RUN_DIR)\n"
		"for a one-line summary: name, supervisor pid, service pid and state, where\n"
		"clients connect, the service's port, number of live clones, uptime.\n",
	.exec = cmd_list_exec,
};

static int cmd_list_exec(int argc, char **argv)
{
	const char *dir = cli_run_dir();
	DIR *d;
	struct dirent *de;
	int n = 0;

	(void)argv;
	if (argc > 1)
		return cmd_usage_error(&cmd_list_entry, "unexpected argument '%s'", argv[1]);
	d = opendir(dir);
	if (!d) {
		printf("no services (nothing in %s)\n", dir);
		return 0;
	}
	while ((de = readdir(d))) {
		size_t len = strlen(de->d_name);
		char addr[600], err[256], name[128];
		struct sbuf body;
		int status;

		if (len < 6 || strcmp(de->d_name + len - 5, ".sock") != 0)
			continue;
		snprintf(name, sizeof(name), "%.*s", (int)(len - 5), de->d_name);
		snprintf(addr, sizeof(addr), "unix:%s/%s", dir, de->d_name);
		sbuf_init(&body);
		status = admin_request(addr, "GET", "/row", NULL, &body, NULL, NULL, 3000, err,
				       sizeof(err));
		if (!n++)
			printf("%-16s %-8s %-8s %-9s %-22s %-6s %-6s %s\n", "NAME", "PID",
			       "SERVICE", "STATE", "LISTEN", "PORT", "CLONES", "UP");
		if (status == 200 && body.buf) {
			char f[8][64];

			if (sscanf(body.buf,
				   "%63[^\t]\t%63[^\t]\t%63[^\t]\t%63[^\t]\t%63[^\t]\t%63[^\t]\t%"
				   "63[^\t]\t%63[^\n]",
				   f[0], f[1], f[2], f[3], f[4], f[5], f[6], f[7]) == 8)
				printf("%-16s %-8s %-8s %-9s %-22s %-6s %-6s %s s\n", f[0], f[1],
				       f[2], f[3], f[4], f[5], f[6], f[7]);
		} else {
			printf("%-16s (not answering: %s)\n", name, status < 0 ? err : "bad reply");
		}
		sbuf_free(&body);
	}
	closedir(d);
	if (!n)
		printf("no services (nothing in %s)\n", dir);
	return 0;
}
