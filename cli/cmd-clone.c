/*
 * cmd-clone.c - `doppel clone NAME`: ask a supervisor for live clones and
 * show its progress as it happens.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>

#include "admin/admin.h"
#include "cli/cmd.h"

static int cmd_clone_exec(int argc, char **argv);

const struct cmd_entry cmd_clone_entry = {
	.name = "clone",
	.usage = "NAME [--count N] [--buffer SIZE] [--images DIR] [--host NETNS] [--control]\n"
		 "       [--keep-images DIR]",
	.summary = "make live clones of a service started with `doppel run`",
	.help = "Makes live clones of the service NAME while it keeps serving: copies its state\n"
		"dirs, freezes it just long enough for CRIU to dump it (the final copy of the\n"
		"state dirs happens in that window), restores each clone in new namespaces with\n"
		"its own copy of the state, and attaches it to the proxy: every connection that\n"
		"starts after that is also fed to the clone. Connections open at freeze time stay\n"
		"production's. Prints each step and how long production was frozen.\n"
		"\n"
		"options:\n"
		"  --count N       clones from one dump (scaled mode; default 1)\n"
		"  --buffer SIZE   queue per connection for these clones (default: the one\n"
		"                  given to `doppel run`)\n"
		"  --images DIR    write this dump's images under DIR (default: the supervisor's\n"
		"                  private tmpfs); created 0700, deleted after the restore\n"
		"  --host NETNS    external mode: run the clones on another host, here a network\n"
		"                  namespace (`ip netns` name or a netns file) linked to this one\n"
		"                  by a network (veth). CRIU's page server on that host receives\n"
		"                  production's memory over TCP during the dump; a relay there\n"
		"                  forwards the copy of the traffic, which crosses the network.\n"
		"                  See the README for the same on two machines.\n"
		"  --control       an unmodified clone that measures noise: what differs between\n"
		"                  it and production is not reported as divergence of the other\n"
		"                  clones (`doppel diverge NAME`)\n"
		"  --keep-images DIR\n"
		"                  staged record and replay: keep this dump's images and the\n"
		"                  state as of the dump in DIR, and record everything the clone\n"
		"                  receives (and answers) into DIR/received-NNNN.pcap until it is\n"
		"                  destroyed; `doppel restore DIR` brings it back offline and\n"
		"                  `doppel replay` feeds it the same traffic again\n"
		"\n"
		"Exit status 0 when every clone is attached, 1 otherwise (the message says why,\n"
		"and where CRIU's log is).\n",
	.exec = cmd_clone_exec,
};

struct clone_out {
	char last[256];
	size_t len;
	int ok;
};

/* Print progress as it comes and remember whether the last line said OK. */
static void on_chunk(const char *data, size_t len, void *arg)
{
	struct clone_out *o = arg;

	fwrite(data, 1, len, stdout);
	fflush(stdout);
	for (size_t i = 0; i < len; i++) {
		if (data[i] == '\n') {
			o->last[o->len] = '\0';
			o->ok = strncmp(o->last, "OK", 2) == 0;
			o->len = 0;
		} else if (o->len < sizeof(o->last) - 1) {
			o->last[o->len++] = data[i];
		}
	}
}

static int cmd_clone_exec(int argc, char **argv)
{
	static const struct option opts[] = {
		{"count", required_argument, NULL, 'n'},
		{"buffer", required_argument, NULL, 'B'},
		{"host", required_argument, NULL, 'H'},
		{"images", required_argument, NULL, 'i'},
		{"control", no_argument, NULL, 'c'},
		{"keep-images", required_argument, NULL, 'k'},
		{NULL, 0, NULL, 0},
	};
	const struct cmd_entry *e = &cmd_clone_entry;
	struct clone_out out = {.ok = 0};
	char addr[512], path[PATH_MAX + 512], err[512];
	unsigned long count = 1;
	uint64_t buffer = 0;
	const char *host = NULL;
	char images[PATH_MAX] = "", keep[PATH_MAX] = "";
	int c, status, control = 0;

	if (argc < 2 || argv[1][0] == '-')
		return cmd_usage_error(e, "give the NAME of a service started with `doppel run`");
	if (cli_admin_for(e, argv[1], addr, sizeof(addr)))
		return EXIT_USAGE;
	opterr = 0;
	optind = 2;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'n': {
			char *end;

			count = strtoul(optarg, &end, 10);
			if (*end || count < 1 || count > 64)
				return cmd_usage_error(e, "--count '%s': a number from 1 to 64",
						       optarg);
			break;
		}
		case 'B':
			if (cli_parse_size(e, "--buffer", optarg, &buffer))
				return EXIT_USAGE;
			break;
		case 'i':
			if (!realpath(optarg, images))
				return cmd_usage_error(e, "--images %s: %s", optarg,
						       strerror(errno));
			if (strpbrk(images, "&?#% "))
				return cmd_usage_error(
					e, "--images %s: no spaces or &?#%% in the path", images);
			break;
		case 'c':
			control = 1;
			break;
		case 'k':
			if (mkdir(optarg, 0700) < 0 && errno != EEXIST)
				return cmd_usage_error(e, "--keep-images %s: %s", optarg,
						       strerror(errno));
			if (!realpath(optarg, keep))
				return cmd_usage_error(e, "--keep-images %s: %s", optarg,
						       strerror(errno));
			if (strpbrk(keep, "&?#% "))
				return cmd_usage_error(
					e, "--keep-images %s: no spaces or &?#%% in the path",
					keep);
			break;
		case 'H':
			if (!*optarg || strlen(optarg) > 60 || strpbrk(optarg, "&?#% "))
				return cmd_usage_error(
					e, "--host '%s': a network namespace name or path", optarg);
			host = optarg;
			break;
		default:
			return cmd_usage_error(e, "unknown or incomplete option '%s'",
					       argv[optind - 1]);
		}
	}
	if (optind < argc)
		return cmd_usage_error(e, "unexpected argument '%s'", argv[optind]);
	if (keep[0] && (count != 1 || host))
		return cmd_usage_error(e, "--keep-images keeps one clone made on this host");
	snprintf(path, sizeof(path), "/clone?count=%lu", count);
	if (control)
		snprintf(path + strlen(path), sizeof(path) - strlen(path), "&control=1");
	if (keep[0])
		snprintf(path + strlen(path), sizeof(path) - strlen(path), "&keep=%s", keep);
	if (buffer)
		snprintf(path + strlen(path), sizeof(path) - strlen(path), "&buffer=%llu",
			 (unsigned long long)buffer);
	if (host)
		snprintf(path + strlen(path), sizeof(path) - strlen(path), "&host=%s", host);
	if (images[0])
		snprintf(path + strlen(path), sizeof(path) - strlen(path), "&images=%s", images);
	status = admin_request(addr, "POST", path, NULL, NULL, on_chunk, &out, 15 * 60 * 1000, err,
			       sizeof(err));
	if (status < 0) {
		fprintf(stderr, "doppel clone %s: %s\n", argv[1], err);
		return EXIT_RUNTIME;
	}
	if (status != 200)
		return EXIT_RUNTIME; /* the supervisor's reason was printed */
	return out.ok ? 0 : EXIT_RUNTIME;
}
