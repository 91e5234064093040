/*
 * cmd-trace-collect.c - `doppel trace collect`: receive what libdoppeltrace
 * streams over a unix socket (DOPPELTRACE_OUT=unix:PATH) into one trace file.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cmd-trace.h"
#include "tracer-glue/tracer-glue.h"

static int exec_collect(int argc, char **argv);

const struct cmd_entry cmd_trace_collect_entry = {
	.name = "trace collect",
	.usage = "--socket PATH -o FILE [--once]",
	.summary = "receive libdoppeltrace chunks on a unix socket into a trace file",
	.help = "Listens on a SOCK_SEQPACKET unix socket (created 0600) and appends every chunk\n"
		"that traced programs send to FILE, until SIGINT or SIGTERM. Programs send when\n"
		"started with DOPPELTRACE_OUT=unix:PATH. A collector that falls behind never\n"
		"slows them: they drop the chunk and count it (shown as 'lost' when read).\n"
		"\n"
		"options:\n"
		"  --socket PATH       where to listen\n"
		"  -o, --output FILE   the trace file (appended to)\n"
		"  --once              exit when the last program disconnects\n"
		"\n"
		"example:\n"
		"  doppel trace collect --socket /tmp/dt.sock -o app.dtr --once &\n"
		"  DOPPELTRACE_OUT=unix:/tmp/dt.sock ./app\n",
	.exec = exec_collect,
};

static volatile int stop_flag;

static void on_stop(int sig)
{
	(void)sig;
	stop_flag = 1;
}

struct collect_args {
	const char *sock, *out;
	int once;
};

static int collect_opt(const struct cmd_entry *e, void *ctx, int c, const char *arg)
{
	struct collect_args *a = ctx;

	switch (c) {
	case 's':
		a->sock = arg;
		break;
	case 'o':
		a->out = arg;
		break;
	case '1':
		a->once = 1;
		break;
	}
	return 0;
}

static int exec_collect(int argc, char **argv)
{
	static const struct option opts[] = {
		{"socket", required_argument, NULL, 's'},
		{"output", required_argument, NULL, 'o'},
		{"once", no_argument, NULL, '1'},
		{NULL, 0, NULL, 0},
	};
	const struct cmd_entry *e = &cmd_trace_collect_entry;
	struct collect_args a = {0};
	struct trc_collect_stats st;
	struct sigaction sa;
	char err[512];
	int rc;

	rc = cmd_trace_getopt(e, argc, argv, "o:", opts, collect_opt, &a, NULL);
	if (rc)
		return rc;
	if (optind < argc)
		return cmd_usage_error(e, "unexpected argument '%s'", argv[optind]);
	if (!a.sock || !a.out)
		return cmd_usage_error(e, "--socket and -o are required");
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	rc = trc_collect(a.sock, a.out, a.once, &stop_flag, &st, err, sizeof(err));
	fprintf(stderr,
		"doppel trace collect: %llu programs, %llu chunks, %llu bytes%s%llu rejected\n",
		(unsigned long long)st.clients, (unsigned long long)st.chunks,
		(unsigned long long)st.bytes, ", ", (unsigned long long)st.rejected);
	if (rc < 0) {
		fprintf(stderr, "doppel %s: %s\n", e->name, err);
		return EXIT_RUNTIME;
	}
	return 0;
}
