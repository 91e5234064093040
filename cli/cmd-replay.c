/*
 * cmd-replay.c - `doppel replay FILE --to HOST:PORT`: send a capture's client
 * streams to a server again and compare its answers with the recorded ones
 * (record/record.h does the work).
 */
#define LOG_PREFIX "replay: "
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cmd.h"
#include "common/log.h"
#include "divergence/divergence.h"
#include "record/record.h"

static int cmd_replay_exec(int argc, char **argv);

const struct cmd_entry cmd_replay_entry = {
	.name = "replay",
	.usage =
		"FILE.pcap --to HOST:PORT [--speed X | --as-fast-as-possible] [--port P]\n"
		"       [--protocol http|resp|raw|auto] [--mask REGEX]... [--mask-header NAME]...\n"
		"       [--quiet DURATION] [--timeout DURATION] [--max-bytes SIZE]\n"
		"       [--netns PID|PATH] [--json] [--log-level LEVEL]",
	.summary = "send a capture's client streams to a server and compare its answers",
	.help = "Reads FILE (pcap or pcapng: doppel's --record files, or any tcpdump capture of a\n"
		"TCP service), reassembles each TCP connection by sequence number (retransmitted\n"
		"bytes once, gaps skipped and counted), and sends every client stream to --to,\n"
		"one connection per recorded connection. Sends keep the capture's order over all\n"
		"connections: each waits until everything sent before it was answered as long as\n"
		"recorded (or the connection went quiet for --quiet), and, unless\n"
		"--as-fast-as-possible, until its recorded time divided by --speed.\n"
		"\n"
		"The answers are compared with the recorded ones turn by turn, through the same\n"
		"normalisers as doppel's divergence report (see `doppel help diverge`).\n"
		"\n"
		"options:\n"
		"  --to HOST:PORT          the server to replay into\n"
		"  --speed X               recorded timing divided by X (default 1)\n"
		"  --as-fast-as-possible   no timing: each send goes once the answers before it\n"
		"                          are in\n"
		"  --port P                the service port in the capture (default: the side "
		"that\n"
		"                          answered the SYN, or the lower port)\n"
		"  --protocol P            normaliser: http, resp, raw (default) or auto\n"
		"  --mask REGEX            hide what REGEX (PCRE2) matches in each answer line\n"
		"                          (repeatable)\n"
		"  --mask-header NAME      also hide this HTTP header's value (repeatable)\n"
		"  --quiet DURATION        silence that ends a short answer (default 300ms)\n"
		"  --timeout DURATION      connecting, and waiting for one answer (default 10s)\n"
		"  --max-bytes SIZE        payload read from the capture at most (default 1G)\n"
		"  --netns PID|PATH        connect from inside this network namespace (a clone\n"
		"                          brought back by `doppel restore`)\n"
		"  --json                  the report as JSON\n"
		"  --log-level LEVEL       error, warn, info (default) or debug\n"
		"\n"
		"Exit status 0 when every answer matched, 3 when some diverged, 1 when the\n"
		"server could not be reached, 2 for a bad option or an unreadable capture.\n"
		"\n"
		"example:\n"
		"  doppel replay /var/lib/doppel/rec/production-0001.pcap --to 127.0.0.1:6390 \\\n"
		"                --as-fast-as-possible --protocol resp\n",
	.exec = cmd_replay_exec,
};

static int opt_speed(const struct cmd_entry *e, const char *opt, const char *text, void *dest)
{
	double *speed = dest;
	char *end;

	*speed = strtod(text, &end);
	if (*end || !(*speed > 0)) {
		cmd_usage_error(e, "%s wants a number above 0, not '%s'", opt, text);
		return -1;
	}
	return 0;
}

/* --netns PID|PATH: the namespace file, opened now. */
static int opt_netns(const struct cmd_entry *e, const char *opt, const char *text, void *dest)
{
	int *fd = dest;
	char p[PATH_MAX];
	char *end;
	long pid = strtol(text, &end, 10);

	if (*end || pid <= 0)
		snprintf(p, sizeof(p), "%s", text);
	else
		snprintf(p, sizeof(p), "/proc/%ld/ns/net", pid);
	if (*fd >= 0)
		close(*fd);
	*fd = open(p, O_RDONLY | O_CLOEXEC);
	if (*fd < 0) {
		cmd_usage_error(e, "%s %s: %s", opt, p, strerror(errno));
		return -1;
	}
	return 0;
}

static int opt_log_level(const struct cmd_entry *e, const char *opt, const char *text, void *dest)
{
	(void)opt;
	(void)dest;
	return cli_parse_log_level(e, text);
}

/* Read the capture, replay it, print the report; the exit status. */
static int replay_run(const char *file, uint16_t port, uint64_t max_bytes, int json,
		      struct rec_replay_opts *ro)
{
	struct rec_capture cap;
	struct rec_replay_result res;
	struct sbuf sb;
	char err[512];
	int rc;

	if (rec_capture_read(file, port, max_bytes, &cap, err, sizeof(err)) < 0) {
		fprintf(stderr, "doppel replay: %s\n", err);
		return EXIT_USAGE;
	}
	if (!cap.nstreams)
		fprintf(stderr, "doppel replay: no TCP connection in %s%s (%llu packets read)\n",
			file, port ? " on that --port" : "", (unsigned long long)cap.packets);
	rc = rec_replay(&cap, ro, &res, err, sizeof(err));
	if (rc < 0) {
		fprintf(stderr, "doppel replay: %s\n", err);
		rc = EXIT_RUNTIME;
	} else {
		sbuf_init(&sb);
		rec_replay_report(&res, json, &sb);
		fwrite(sb.buf, 1, sb.len, stdout);
		sbuf_free(&sb);
		rc = div_replica_counts(res.rep)->turns_diverged ? 3 : 0;
	}
	rec_replay_result_free(&res);
	rec_capture_free(&cap);
	return rc;
}

static int cmd_replay_exec(int argc, char **argv)
{
	const struct cmd_entry *e = &cmd_replay_entry;
	struct rec_replay_opts ro;
	struct cli_div_opts dopt;
	struct div_rules *rules = NULL;
	uint64_t max_bytes = 1ull << 30;
	int port = 0, have_to = 0, fast = 0, json = 0, netns_fd = -1, rc;
	struct cli_opt div[CLI_DIV_OPTS];
	const struct cli_opt opts[] = {
		CLI_ADDR("to", &ro.to, &have_to),
		CLI_FN("speed", &ro.speed, opt_speed),
		CLI_FLAG("as-fast-as-possible", &fast),
		CLI_INT("port", &port, 1, 65535),
		CLI_DURATION("quiet", &ro.quiet_ns),
		CLI_DURATION("timeout", &ro.timeout_ns),
		CLI_SIZE("max-bytes", &max_bytes),
		CLI_FLAG("json", &json),
		CLI_FN("netns", &netns_fd, opt_netns),
		CLI_FN("log-level", NULL, opt_log_level),
		CLI_END,
	};
	const struct cli_opt *const tables[] = {opts, div, NULL};

	rec_replay_opts_defaults(&ro);
	cli_div_opts_init(&dopt);
	cli_div_opts_table(&dopt, div);
	div[3] = (struct cli_opt)CLI_END; /* --protocol, --mask, --mask-header; no recording */
	rc = cli_parse_opts(e, argc, argv, 1, tables, 0);
	if (rc < 0)
		return EXIT_USAGE;
	if (rc + 1 != argc)
		return cmd_usage_error(e, rc >= argc ? "which capture? (FILE.pcap)"
						     : "one capture at a time");
	if (!have_to)
		return cmd_usage_error(e, "--to HOST:PORT is required");
	if (fast)
		ro.speed = 0;
	ro.to.netns_fd = netns_fd;
	if (cli_div_rules(e, &dopt, 0, &rules) < 0)
		return EXIT_USAGE;
	ro.rules = rules;
	rc = replay_run(argv[rc], (uint16_t)port, max_bytes, json, &ro);
	div_rules_free(rules);
	return rc;
}
