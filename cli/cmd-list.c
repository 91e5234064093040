/*
 * cmd-list.c - `doppel list`: every supervisor running on this host.
 */
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
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

/* Prints the line of one supervisor from its /status JSON; -EPROTO if it is not that. */
static int print_row(const char *body)
{
	json_error_t jerr;
	json_t *j = json_loads(body, 0, &jerr);
	const json_t *svc = json_object_get(j, "service");
	const char *name = json_string_value(json_object_get(j, "name"));
	const char *state = json_string_value(json_object_get(svc, "state"));
	const char *listen = json_string_value(json_object_get(j, "listen"));
	const json_t *pid = json_object_get(j, "supervisor_pid");
	const json_t *spid = json_object_get(svc, "pid");
	const json_t *port = json_object_get(svc, "port");
	const json_t *clones = json_object_get(j, "clones");

	if (!name || !state || !listen || !json_is_integer(pid) || !json_is_integer(spid) ||
	    !json_is_integer(port) || !json_is_array(clones)) {
		json_decref(j);
		return -EPROTO;
	}
	printf("%-16s %-8lld %-8lld %-9s %-22s %-6lld %-6zu %.0f s\n", name,
	       (long long)json_integer_value(pid), (long long)json_integer_value(spid), state,
	       listen, (long long)json_integer_value(port), json_array_size(clones),
	       json_number_value(json_object_get(j, "uptime_s")));
	json_decref(j);
	return 0;
}

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
		status = admin_request(addr, "GET", "/status", NULL, &body, NULL, NULL, 3000, err,
				       sizeof(err));
		if (!n++)
			printf("%-16s %-8s %-8s %-9s %-22s %-6s %-6s %s\n", "NAME", "PID",
			       "SERVICE", "STATE", "LISTEN", "PORT", "CLONES", "UP");
		if (status != 200 || !body.buf || print_row(body.buf) < 0)
			printf("%-16s (not answering: %s)\n", name, status < 0 ? err : "bad reply");
		sbuf_free(&body);
	}
	closedir(d);
	if (!n)
		printf("no services (nothing in %s)\n", dir);
	return 0;
}
