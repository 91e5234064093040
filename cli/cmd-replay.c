/*
 * cmd-replay.c - `doppel replay FILE --to HOST:PORT`: send a capture's client
 * streams to a server again and compare its answers with the recorded ones
 * (record/record.h does the work).
 */
#define LOG_PREFIX "replay: "
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
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

static int cmd_replay_exec(int argc, char **argv)
{
	static const struct option opts[] = {
		{"to", required_argument, NULL, 't'},
		{"speed", required_argument, NULL, 's'},
		{"as-fast-as-possible", no_argument, NULL, 'F'},
		{"port", required_argument, NULL, 'p'},
		{"protocol", required_argument, NULL, 'P'},
		{"mask", required_argument, NULL, 'm'},
		{"mask-header", required_argument, NULL, 'H'},
		{"quiet", required_argument, NULL, 'q'},
		{"timeout", required_argument, NULL, 'T'},
		{"max-bytes", required_argument, NULL, 'M'},
		{"json", no_argument, NULL, 'j'},
		{"netns", required_argument, NULL, 'n'},
		{"log-level", required_argument, NULL, 'v'},
		{NULL, 0, NULL, 0},
	};
	const struct cmd_entry *e = &cmd_replay_entry;
	struct rec_replay_opts ro;
	struct div_options dopt;
	struct div_rules *rules = NULL;
	struct rec_capture cap;
	struct rec_replay_result res;
	struct sbuf sb;
	uint64_t max_bytes = 1ull << 30;
	long port = 0;
	int have_to = 0, json = 0, c, rc, netns_fd = -1;
	char err[512];
	const char *file;

	rec_replay_opts_defaults(&ro);
	div_options_defaults(&dopt);
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 't':
			if (cli_parse_addr(e, "--to", optarg, &ro.to))
				return EXIT_USAGE;
			have_to = 1;
			break;
		case 's': {
			char *end;

			ro.speed = strtod(optarg, &end);
			if (*end || !(ro.speed > 0))
				return cmd_usage_error(
					e, "--speed wants a number above 0, not '%s'", optarg);
			break;
		}
		case 'F':
			ro.speed = 0;
			break;
		case 'p': {
			char *end;

			port = strtol(optarg, &end, 10);
			if (*end || port < 1 || port > 65535)
				return cmd_usage_error(e, "--port wants 1..65535, not '%s'",
						       optarg);
			break;
		}
		case 'P':
			if (div_protocol_parse(optarg, &dopt.protocol) < 0)
				return cmd_usage_error(
					e, "--protocol is http, resp, raw or auto, not '%s'",
					optarg);
			break;
		case 'm':
			if (dopt.nmasks == DIV_MAX_MASKS)
				return cmd_usage_error(e, "at most %d --mask", DIV_MAX_MASKS);
			dopt.masks[dopt.nmasks++] = optarg;
			break;
		case 'H':
			if (dopt.nheaders == DIV_MAX_HEADERS)
				return cmd_usage_error(e, "at most %d --mask-header",
						       DIV_MAX_HEADERS);
			dopt.headers[dopt.nheaders++] = optarg;
			break;
		case 'q':
			if (cli_parse_duration(e, "--quiet", optarg, &ro.quiet_ns))
				return EXIT_USAGE;
			break;
		case 'T':
			if (cli_parse_duration(e, "--timeout", optarg, &ro.timeout_ns))
				return EXIT_USAGE;
			break;
		case 'M':
			if (cli_parse_size(e, "--max-bytes", optarg, &max_bytes))
				return EXIT_USAGE;
			break;
		case 'j':
			json = 1;
			break;
		case 'n': {
			char p[PATH_MAX];
			char *end;
			long pid = strtol(optarg, &end, 10);

			if (*end || pid <= 0)
				snprintf(p, sizeof(p), "%s", optarg);
			else
				snprintf(p, sizeof(p), "/proc/%ld/ns/net", pid);
			netns_fd = open(p, O_RDONLY | O_CLOEXEC);
			if (netns_fd < 0)
				return cmd_usage_error(e, "--netns %s: %s", p, strerror(errno));
			break;
		}
		case 'v':
			if (cli_parse_log_level(e, optarg))
				return EXIT_USAGE;
			break;
		default:
			return cmd_usage_error(e, "unknown or incomplete option '%s'",
					       argv[optind - 1]);
		}
	}
	if (optind + 1 != argc)
		return cmd_usage_error(e, optind >= argc ? "which capture? (FILE.pcap)"
							 : "one capture at a time");
	file = argv[optind];
	if (!have_to)
		return cmd_usage_error(e, "--to HOST:PORT is required");
	ro.to.netns_fd = netns_fd;
	if (div_rules_new(&dopt, &rules, err, sizeof(err)) < 0)
		return cmd_usage_error(e, "%s", err);
	ro.rules = rules;
	if (rec_capture_read(file, (uint16_t)port, max_bytes, &cap, err, sizeof(err)) < 0) {
		fprintf(stderr, "doppel replay: %s\n", err);
		div_rules_free(rules);
		return EXIT_USAGE;
	}
	if (!cap.nstreams)
		fprintf(stderr, "doppel replay: no TCP connection in %s%s (%llu packets read)\n",
			file, port ? " on that --port" : "", (unsigned long long)cap.packets);
	rc = rec_replay(&cap, &ro, &res, err, sizeof(err));
	if (rc < 0) {
		fprintf(stderr, "doppel replay: %s\n", err);
		rec_replay_result_free(&res);
		rec_capture_free(&cap);
		div_rules_free(rules);
		return EXIT_RUNTIME;
	}
	sbuf_init(&sb);
	rec_replay_report(&res, json, &sb);
	fwrite(sb.buf, 1, sb.len, stdout);
	sbuf_free(&sb);
	rc = div_replica_counts(res.rep)->turns_diverged ? 3 : 0;
	rec_replay_result_free(&res);
	rec_capture_free(&cap);
	div_rules_free(rules);
	return rc;
}
