/*
 * cmd-window.c - `doppel window`: how long will a replica keep up? The
 * debug-window model (window/) on the command line: one answer, or a sweep
 * over slowdowns with a table and an SVG chart. This file parses the options
 * (one table row each) and prints; the answers, tables and chart are built by
 * window_query_run() (window/report.c).
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cmd.h"
#include "common/sbuf.h"
#include "common/size.h"
#include "window/window.h"

static int cmd_window_exec(int argc, char **argv);

const struct cmd_entry cmd_window_entry = {
	.name = "window",
	.usage = "--rate R (--service-rate S | --slowdown X [--utilization U]) --buffer "
		 "SIZE[,SIZE]...\n"
		 "       [--msg-size BYTES] [--kernel-buffer SIZE] [--traffic "
		 "poisson|det|mmpp:R/T,...]\n"
		 "       [--arrivals FILE [--port P] [--replay-from-start]] [--service exp|det]\n"
		 "       [--method auto|exact|sim|fluid]"
		 " [--runs N] [--horizon DURATION] [--seed N]\n"
		 "       [--sweep slowdown=A..B[:STEP]] [--plot FILE.svg | --no-plot] [--json]",
	.summary = "predict a replica's debug window (time to its first buffer overflow)",
	.help = "Models one replica behind the proxy as a queue: requests arrive at --rate, wait "
		"in\n"
		"a buffer of --buffer bytes (one connection's buffer), and leave it when the\n"
		"replica starts serving them, at --service-rate requests per second while busy.\n"
		"Prints the time from attach to the first overflow (mean, median, p10, p90), the\n"
		"probability of an overflow within --horizon, the load rho = rate / service rate,\n"
		"and which method answered and why:\n"
		"  exact  Poisson arrivals, exponential service and one request size form an\n"
		"         M/M/1/K queue whose first-passage time is computed exactly;\n"
		"  sim    any other traffic or service: a discrete-event simulation of --runs "
		"runs;\n"
		"  fluid  buffers of many requests, or overflows too rare to simulate: the buffer "
		"as\n"
		"         a fluid with drift (bytes in minus bytes out) and Brownian noise.\n"
		"The plain fluid figure (buffer / net inflow), which the proxy's live forecast\n"
		"shows, is printed for comparison.\n"
		"\n"
		"options:\n"
		"  --rate R            requests per second reaching production (with --arrivals:\n"
		"                      rescales the recorded times to this mean rate)\n"
		"  --service-rate S    requests per second the replica serves when busy\n"
		"  --slowdown X        the replica takes X times production's time per request;\n"
		"                      production serves rate / utilization requests per second\n"
		"  --utilization U     production's busy fraction at this rate (default 1: "
		"saturated,\n"
		"                      like one connection sending back to back)\n"
		"  --buffer SIZE       the proxy's --buffer (K, M, G accepted); a comma list "
		"gives\n"
		"                      one answer (or sweep curve) per size\n"
		"  --msg-size BYTES    bytes per request (default: the recorded sizes of "
		"--arrivals)\n"
		"  --kernel-buffer SIZE\n"
		"                      bytes the kernel holds in front of the replica (socket "
		"send\n"
		"                      and receive buffers), added to every buffer (default 0)\n"
		"  --traffic KIND      poisson (default), det (evenly spaced), or bursts as a\n"
		"                      Markov-modulated Poisson process "
		"mmpp:RATE/DWELL,RATE/DWELL...\n"
		"                      (requests/s in each state, mean seconds in it; the states\n"
		"                      follow each other in a cycle), e.g. mmpp:80/0.5,10/2\n"
		"  --arrivals FILE     replay recorded arrivals: a pcap or pcapng capture (every "
		"TCP\n"
		"                      segment with payload toward --port is one request) or text\n"
		"                      lines 'SECONDS [BYTES]'; runs start at random offsets\n"
		"  --port P            the server's TCP port in the capture (default: the port "
		"that\n"
		"                      received the most payload)\n"
		"  --replay-from-start replay the recording from its first arrival instead of "
		"random\n"
		"                      offsets: the window for exactly that traffic\n"
		"  --service KIND      exp (default) or det service times\n"
		"  --method M          auto (default), exact, sim or fluid\n"
		"  --runs N            simulation runs (default 1000, fewer if that would be "
		"slow)\n"
		"  --horizon DURATION  report P(overflow within it) (default 10m)\n"
		"  --seed N            simulation seed (default 1: the same answer every time)\n"
		"  --sweep slowdown=A..B[:STEP]\n"
		"                      a table over slowdowns A to B (step default 0.1), one "
		"block\n"
		"                      per buffer, and an SVG chart of the debug window\n"
		"  --plot FILE.svg     where the sweep's chart goes (default doppel-window.svg)\n"
		"  --no-plot           no chart\n"
		"  --json              machine-readable output\n"
		"\n"
		"examples:\n"
		"  doppel window --rate 27 --slowdown 3 --buffer 4K --msg-size 19.6 --traffic det\n"
		"  doppel window --rate 17 --slowdown 3.2 --buffer 16K,64K --msg-size 19.6\n"
		"  doppel window --rate 500 --service-rate 400 --buffer 1M --msg-size 1K \\\n"
		"                --traffic mmpp:900/0.5,300/1.5\n"
		"  doppel window --arrivals capture.pcap --port 6379 --service-rate 300 --buffer "
		"256K\n"
		"  doppel window --rate 27 --utilization 0.5 --buffer 4K,16K,64K --msg-size 19.6 "
		"\\\n"
		"                --sweep slowdown=1..5 --plot window.svg\n",
	.exec = cmd_window_exec,
};

/* What the command line asked for. */
struct window_cli {
	struct window_query q;
	const char *arrivals, *plot;
	struct window_trace_filter filter;
	int have_traffic, no_plot;
};

/* "19.6" (bytes, fractions allowed: a mean size) or a size with a unit ("1K"). */
static int parse_bytes(const struct cmd_entry *e, const char *opt, const char *text, double *out)
{
	char *end;
	uint64_t v;
	double d = strtod(text, &end);

	if (end != text && *end == '\0' && isfinite(d) && d > 0) {
		*out = d;
		return 0;
	}
	if (cli_parse_size(e, opt, text, &v))
		return -1;
	*out = (double)v;
	return 0;
}

static int parse_positive(const struct cmd_entry *e, const char *opt, const char *text, double *out)
{
	char *end;
	double d = strtod(text, &end);

	if (end == text || *end || !isfinite(d) || !(d > 0)) {
		cmd_usage_error(e, "%s '%s': expected a positive number", opt, text);
		return -1;
	}
	*out = d;
	return 0;
}

/* A whole string as a finite number. */
static int full_double(const char *text, double *out)
{
	char *end;

	if (!*text)
		return -1;
	*out = strtod(text, &end);
	return *end || !isfinite(*out) ? -1 : 0;
}

/*
 * The options, one function each: (command, "--name", argument, the field
 * the table row names). 0, or an exit code with the message printed.
 */
static int opt_positive(const struct cmd_entry *e, const char *opt, const char *arg, void *field)
{
	return parse_positive(e, opt, arg, field) ? EXIT_USAGE : 0;
}

static int opt_flag(const struct cmd_entry *e, const char *opt, const char *arg, void *field)
{
	*(int *)field = 1;
	return 0;
}

static int opt_text(const struct cmd_entry *e, const char *opt, const char *arg, void *field)
{
	*(const char **)field = arg;
	return 0;
}

static int opt_utilization(const struct cmd_entry *e, const char *opt, const char *arg, void *field)
{
	if (parse_positive(e, opt, arg, field))
		return EXIT_USAGE;
	if (*(double *)field > 1)
		return cmd_usage_error(e, "--utilization %s: a busy fraction, at most 1", arg);
	return 0;
}

static int opt_buffers(const struct cmd_entry *e, const char *opt, const char *arg, void *field)
{
	struct window_query *q = field;
	char *list = strdup(arg), *save = NULL, *tok;
	int rc = 0;

	if (!list)
		return EXIT_RUNTIME;
	q->nbuffers = 0;
	for (tok = strtok_r(list, ",", &save); tok && !rc; tok = strtok_r(NULL, ",", &save)) {
		uint64_t v;

		if (q->nbuffers == WINDOW_SWEEP_MAX_SERIES)
			rc = cmd_usage_error(e, "--buffer: at most %d sizes",
					     WINDOW_SWEEP_MAX_SERIES);
		else if (cli_parse_size(e, "--buffer", tok, &v))
			rc = EXIT_USAGE;
		else
			q->buffers[q->nbuffers++] = (double)v;
	}
	free(list);
	if (!rc && !q->nbuffers)
		rc = cmd_usage_error(e, "--buffer '%s': no size", arg);
	return rc;
}

static int opt_msg_size(const struct cmd_entry *e, const char *opt, const char *arg, void *field)
{
	return parse_bytes(e, opt, arg, field) ? EXIT_USAGE : 0;
}

static int opt_kernel_buffer(const struct cmd_entry *e, const char *opt, const char *arg,
			     void *field)
{
	uint64_t v;

	if (size_parse(arg, &v) < 0)
		return cmd_usage_error(e, "--kernel-buffer '%s': not a size, e.g. 192K", arg);
	*(double *)field = (double)v;
	return 0;
}

static int opt_traffic(const struct cmd_entry *e, const char *opt, const char *arg, void *field)
{
	struct window_cli *w = field;
	char err[512];

	if (window_parse_arrival(arg, &w->q.p.arrival, &w->q.p.mmpp, err, sizeof(err)) < 0)
		return cmd_usage_error(e, "--traffic %s", err);
	w->have_traffic = 1;
	return 0;
}

/* A whole number from min to max; the message names the range. */
static int parse_range(const char *arg, long min, long max, long *out)
{
	char *end;

	*out = strtol(arg, &end, 10);
	return end == arg || *end || *out < min || *out > max ? -1 : 0;
}

static int opt_port(const struct cmd_entry *e, const char *opt, const char *arg, void *field)
{
	long v;

	if (parse_range(arg, 1, 65535, &v))
		return cmd_usage_error(e, "--port '%s': a TCP port, 1 to 65535", arg);
	*(uint16_t *)field = (uint16_t)v;
	return 0;
}

static int opt_runs(const struct cmd_entry *e, const char *opt, const char *arg, void *field)
{
	long v;

	if (parse_range(arg, 1, 1000000, &v))
		return cmd_usage_error(e, "--runs '%s': 1 to 1000000", arg);
	*(unsigned *)field = (unsigned)v;
	return 0;
}

static int opt_service(const struct cmd_entry *e, const char *opt, const char *arg, void *field)
{
	if (strcmp(arg, "exp") == 0)
		*(enum window_service *)field = WINDOW_SVC_EXP;
	else if (strcmp(arg, "det") == 0)
		*(enum window_service *)field = WINDOW_SVC_DET;
	else
		return cmd_usage_error(e, "--service '%s': use exp or det", arg);
	return 0;
}

static int opt_method(const struct cmd_entry *e, const char *opt, const char *arg, void *field)
{
	static const enum window_method methods[] = {WINDOW_AUTO, WINDOW_EXACT, WINDOW_SIM,
						     WINDOW_FLUID};

	for (unsigned i = 0; i < sizeof(methods) / sizeof(*methods); i++)
		if (strcmp(arg, window_method_name(methods[i])) == 0) {
			*(enum window_method *)field = methods[i];
			return 0;
		}
	return cmd_usage_error(e, "--method '%s': use auto, exact, sim or fluid", arg);
}

static int opt_horizon(const struct cmd_entry *e, const char *opt, const char *arg, void *field)
{
	uint64_t ns;

	if (cli_parse_duration(e, "--horizon", arg, &ns))
		return EXIT_USAGE;
	if (ns == 0)
		return cmd_usage_error(e, "--horizon must be positive");
	*(double *)field = (double)ns / 1e9;
	return 0;
}

static int opt_seed(const struct cmd_entry *e, const char *opt, const char *arg, void *field)
{
	char *end;
	unsigned long long v = strtoull(arg, &end, 10);

	if (end == arg || *end)
		return cmd_usage_error(e, "--seed '%s': a whole number", arg);
	*(uint64_t *)field = v;
	return 0;
}

static int opt_sweep(const struct cmd_entry *e, const char *opt, const char *text, void *field)
{
	struct window_query *q = field;
	char spec[128], *dots, *colon;

	if (strncmp(text, "slowdown=", 9) != 0)
		return cmd_usage_error(e, "--sweep '%s': only slowdown=A..B[:STEP] can be swept",
				       text);
	if (snprintf(spec, sizeof(spec), "%s", text + 9) >= (int)sizeof(spec))
		goto bad;
	/* Split first: strtod would read "1." out of "1..5". */
	dots = strstr(spec, "..");
	if (!dots)
		goto bad;
	*dots = '\0';
	colon = strchr(dots + 2, ':');
	if (colon)
		*colon = '\0';
	q->sw_step = 0.1;
	if (full_double(spec, &q->sw_from) || full_double(dots + 2, &q->sw_to) ||
	    (colon && full_double(colon + 1, &q->sw_step)))
		goto bad;
	if (!(q->sw_from > 0) || !(q->sw_to >= q->sw_from) || !(q->sw_step > 0))
		goto bad;
	if ((q->sw_to - q->sw_from) / q->sw_step + 1 > WINDOW_SWEEP_MAX_POINTS + 1e-9)
		return cmd_usage_error(e, "--sweep '%s': at most %d points; use a larger step",
				       text, WINDOW_SWEEP_MAX_POINTS);
	q->sweep = 1;
	return 0;
bad:
	return cmd_usage_error(
		e,
		"--sweep '%s': expected slowdown=A..B or slowdown=A..B:STEP with 0 < A <= B "
		"and STEP > 0, e.g. slowdown=1..5:0.25",
		text);
}

#define F(member) offsetof(struct window_cli, member)

static const struct window_opt {
	const char *name; /* without its "--" */
	int has_arg;
	size_t field; /* offset in struct window_cli */
	int (*parse)(const struct cmd_entry *e, const char *opt, const char *arg, void *field);
} window_opts[] = {
	{"rate", 1, F(q.p.rate), opt_positive},
	{"service-rate", 1, F(q.p.service_rate), opt_positive},
	{"slowdown", 1, F(q.slowdown), opt_positive},
	{"utilization", 1, F(q.utilization), opt_utilization},
	{"buffer", 1, F(q), opt_buffers},
	{"msg-size", 1, F(q.p.msg_size), opt_msg_size},
	{"kernel-buffer", 1, F(q.kernel_buffer), opt_kernel_buffer},
	{"traffic", 1, 0, opt_traffic},
	{"arrivals", 1, F(arrivals), opt_text},
	{"port", 1, F(filter.port), opt_port},
	{"replay-from-start", 0, F(q.p.trace_from_start), opt_flag},
	{"service", 1, F(q.p.service), opt_service},
	{"method", 1, F(q.p.method), opt_method},
	{"runs", 1, F(q.p.runs), opt_runs},
	{"horizon", 1, F(q.p.horizon), opt_horizon},
	{"seed", 1, F(q.p.seed), opt_seed},
	{"sweep", 1, F(q), opt_sweep},
	{"plot", 1, F(plot), opt_text},
	{"no-plot", 0, F(no_plot), opt_flag},
	{"json", 0, F(q.json), opt_flag},
};

#define NOPTS (sizeof(window_opts) / sizeof(*window_opts))
#define OPT_BASE 1000 /* getopt's value for row i: OPT_BASE + i */

static int parse_options(const struct cmd_entry *e, int argc, char **argv, struct window_cli *w)
{
	struct option lo[NOPTS + 1];
	char opt[64];
	int c, rc;

	for (unsigned i = 0; i < NOPTS; i++)
		lo[i] = (struct option){window_opts[i].name,
					window_opts[i].has_arg ? required_argument : no_argument,
					NULL, OPT_BASE + (int)i};
	memset(&lo[NOPTS], 0, sizeof(lo[NOPTS]));
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		const struct window_opt *o;

		if (c < OPT_BASE || c >= OPT_BASE + (int)NOPTS)
			return cmd_usage_error(e, "unknown or incomplete option '%s'",
					       argv[optind - 1]);
		o = &window_opts[c - OPT_BASE];
		snprintf(opt, sizeof(opt), "--%s", o->name);
		rc = o->parse(e, opt, optarg, (char *)w + o->field);
		if (rc)
			return rc;
	}
	if (optind < argc)
		return cmd_usage_error(e, "unexpected argument '%s'", argv[optind]);
	return 0;
}

/* The options that only make sense together, in the order they are checked. */
static int check_options(const struct cmd_entry *e, struct window_cli *w)
{
	const struct window_params *p = &w->q.p;
	int have_rate = p->rate > 0, have_service = p->service_rate > 0;

	if (!w->q.nbuffers)
		return cmd_usage_error(e, "--buffer is required");
	if (w->arrivals && w->have_traffic)
		return cmd_usage_error(e, "--arrivals and --traffic both say how requests arrive; "
					  "give one");
	if ((w->filter.port || p->trace_from_start) && !w->arrivals)
		return cmd_usage_error(e,
				       "--port and --replay-from-start only apply to --arrivals");
	if (p->arrival == WINDOW_ARR_MMPP && have_rate)
		return cmd_usage_error(e, "--traffic mmpp:... sets the rate itself; drop --rate");
	if (!w->arrivals && p->arrival != WINDOW_ARR_MMPP && !have_rate)
		return cmd_usage_error(
			e, "--rate is required (or --arrivals FILE, or --traffic mmpp:...)");
	if (have_service + (w->q.slowdown > 0) + w->q.sweep != 1)
		return cmd_usage_error(
			e, "give exactly one of --service-rate, --slowdown and --sweep");
	if (!w->arrivals && !(p->msg_size > 0))
		return cmd_usage_error(e, "--msg-size is required (bytes per request)");
	if (w->no_plot && w->plot)
		return cmd_usage_error(e, "--plot and --no-plot contradict each other");
	if (w->plot && !w->q.sweep)
		return cmd_usage_error(e, "--plot draws a --sweep");
	if (w->q.sweep && !w->no_plot && !w->plot)
		w->plot = "doppel-window.svg";
	return 0;
}

/* --arrivals FILE: read, checked, described (text output). */
static int load_arrivals(struct window_cli *w, struct window_trace **trace)
{
	char err[512];
	int rc = window_trace_load(w->arrivals, &w->filter, trace, err, sizeof(err));

	if (rc < 0) {
		fprintf(stderr, "doppel window: --arrivals: %s\n", err);
		return rc == -ENOMEM ? EXIT_RUNTIME : EXIT_USAGE;
	}
	if ((*trace)->n < 2 || !((*trace)->duration > 0)) {
		fprintf(stderr,
			"doppel window: --arrivals %s: need at least two arrivals at different "
			"times\n",
			w->arrivals);
		return EXIT_USAGE;
	}
	if (!(w->q.p.msg_size > 0) && (*trace)->bytes == 0) {
		fprintf(stderr, "doppel window: --arrivals %s has no sizes; give --msg-size\n",
			w->arrivals);
		return EXIT_USAGE;
	}
	w->q.p.arrival = WINDOW_ARR_TRACE;
	w->q.p.trace = *trace;
	if (!w->q.json) {
		struct sbuf line;

		sbuf_init(&line);
		window_trace_describe(*trace, w->arrivals, &line);
		fwrite(line.buf, 1, line.len, stdout);
		sbuf_free(&line);
	}
	return 0;
}

static int write_file(const char *path, const struct sbuf *sb)
{
	FILE *f = fopen(path, "w");
	int ok;

	if (!f) {
		fprintf(stderr, "doppel window: cannot write %s: %s\n", path, strerror(errno));
		return -1;
	}
	ok = fwrite(sb->buf, 1, sb->len, f) == sb->len;
	if (fclose(f) != 0)
		ok = 0;
	if (!ok) {
		fprintf(stderr, "doppel window: writing %s failed: %s\n", path, strerror(errno));
		return -1;
	}
	return 0;
}

static int cmd_window_exec(int argc, char **argv)
{
	const struct cmd_entry *e = &cmd_window_entry;
	struct window_cli w;
	struct window_trace *trace = NULL;
	struct sbuf out, svg;
	char err[512];
	int rc;

	memset(&w, 0, sizeof(w));
	window_params_defaults(&w.q.p);
	w.q.utilization = 1;
	rc = parse_options(e, argc, argv, &w);
	if (!rc)
		rc = check_options(e, &w);
	if (!rc && w.arrivals)
		rc = load_arrivals(&w, &trace);
	if (rc) {
		window_trace_free(trace);
		return rc;
	}
	sbuf_init(&out);
	sbuf_init(&svg);
	rc = window_query_run(&w.q, &out, w.plot ? &svg : NULL, err, sizeof(err));
	if (out.len)
		fwrite(out.buf, 1, out.len, stdout);
	if (rc < 0) {
		fprintf(stderr, "doppel window: %s\n", err);
		rc = rc == -ENOMEM ? EXIT_RUNTIME : EXIT_USAGE;
	} else if (w.plot && write_file(w.plot, &svg) < 0) {
		rc = EXIT_RUNTIME;
	} else if (w.plot && !w.q.json) {
		printf("chart: %s\n", w.plot);
	}
	sbuf_free(&out);
	sbuf_free(&svg);
	window_trace_free(trace);
	return rc;
}
