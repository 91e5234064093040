/*
 * cmd-record.c - `doppel record`: start or stop recording a running
 * supervisor's or proxy's traffic as pcap files, or say whether it records
 * (POST/GET /record on its admin socket; record/tap.c does the writing).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/admin.h"
#include "cli/cmd.h"

static int cmd_record_exec(int argc, char **argv);

const struct cmd_entry cmd_record_entry = {
	.name = "record",
	.usage = "NAME|--admin ADDR start [--dir DIR]  |  ... stop  |  ... status",
	.summary = "record production's and each replica's conversations as pcap files",
	.help = "Writes what passes through doppel as pcap files (libpcap's format), one series\n"
		"per side: production-NNNN.pcap (clients <-> production) and\n"
		"replica-NAME-NNNN.pcap (what doppel sent a replica, and its answers). Headers\n"
		"are synthesised with sequence numbers that follow the bytes, so tshark's\n"
		"\"Follow TCP Stream\" (or `doppel replay`) gives exactly the bytes that passed.\n"
		"Connections open when recording starts are recorded from their next bytes on.\n"
		"Files rotate past --record-file-size; past --record-total nothing more is\n"
		"written and what is left out is counted (`doppel record NAME status`).\n"
		"\n"
		"  start [--dir DIR]  start recording (into DIR; default: the service's work\n"
		"                     directory/record, or the proxy's --record DIR)\n"
		"  stop               stop: every connection gets its FIN, files are closed\n"
		"  status             whether it records, where, and the counts (JSON)\n"
		"\n"
		"options:\n"
		"  --admin ADDR   a proxy's --admin address (HOST:PORT or unix:/path)\n"
		"  --dir DIR      where to record (start only; made if missing)\n"
		"\n"
		"`doppel proxy --record DIR` and `doppel run --record DIR` record from the "
		"start.\n",
	.exec = cmd_record_exec,
};

/* The admin path of ACTION: "/record" or "/record?action=A[&dir=ABS]" (escaped). */
static void record_path(const char *action, const char *dir, struct sbuf *path)
{
	if (!strcmp(action, "status")) {
		sbuf_printf(path, "/record");
	} else {
		sbuf_printf(path, "/record?action=%s", action);
		if (dir) {
			char *abs = realpath(dir, NULL);
			const char *d = abs ? abs : dir;

			sbuf_append(path, "&dir=", 5);
			for (const char *p = d; *p; p++) {
				if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
				    (*p >= '0' && *p <= '9') || strchr("/-_.", *p))
					sbuf_append(path, p, 1);
				else
					sbuf_printf(path, "%%%02X", (unsigned char)*p);
			}
			free(abs);
		}
	}
	sbuf_append(path, "", 1);
}

/* Send ACTION to the admin endpoint at ADDR and print its answer; the exit status. */
static int record_request(const char *addr, const char *action, const char *dir)
{
	struct sbuf body, path;
	char err[512];
	int status, rc = 0;

	sbuf_init(&path);
	record_path(action, dir, &path);
	sbuf_init(&body);
	status = admin_request(addr, strcmp(action, "status") ? "POST" : "GET", path.buf, NULL,
			       &body, NULL, NULL, 10000, err, sizeof(err));
	sbuf_free(&path);
	if (status < 0) {
		fprintf(stderr, "doppel record: %s\n", err);
		rc = EXIT_RUNTIME;
	} else if (status == 404) {
		fprintf(stderr,
			"doppel record: %s does not record (a doppel proxy needs --admin)\n", addr);
		rc = EXIT_RUNTIME;
	} else if (status != 200) {
		fprintf(stderr, "doppel record: %s", body.buf ? body.buf : "failed\n");
		rc = status == 409 ? EXIT_USAGE : EXIT_RUNTIME;
	} else if (body.len) {
		fwrite(body.buf, 1, body.len, stdout);
	}
	sbuf_free(&body);
	return rc;
}

static int cmd_record_exec(int argc, char **argv)
{
	const struct cmd_entry *e = &cmd_record_entry;
	const char *addr = NULL, *dir = NULL, *action;
	char named[512];
	int first = 1, rc;
	const struct cli_opt opts[] = {
		CLI_STRING("admin", &addr),
		CLI_STRING("dir", &dir),
		CLI_END,
	};
	const struct cli_opt *const tables[] = {opts, NULL};

	if (argc > 1 && argv[1][0] != '-') {
		if (cli_admin_for(e, argv[1], named, sizeof(named)))
			return EXIT_USAGE;
		addr = named;
		first = 2;
	}
	rc = cli_parse_opts(e, argc, argv, first, tables, 0);
	if (rc < 0)
		return EXIT_USAGE;
	if (rc + 1 < argc)
		return cmd_usage_error(e, "unexpected argument '%s'", argv[rc + 1]);
	action = rc < argc ? argv[rc] : NULL;
	if (!addr)
		return cmd_usage_error(e, "give a NAME (see `doppel list`) or --admin ADDR");
	if (!action ||
	    (strcmp(action, "start") && strcmp(action, "stop") && strcmp(action, "status")))
		return cmd_usage_error(e, "say start, stop or status");
	if (dir && strcmp(action, "start"))
		return cmd_usage_error(e, "--dir goes with start");
	return record_request(addr, action, dir);
}
