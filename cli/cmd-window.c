/*
 * cmd-window.c - `doppel window`: how long will a replica keep up? The
 * debug-window model (window/) on the command line: one answer, or a sweep
 * over slowdowns with a table and an SVG chart.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
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

#define MAX_BUFFERS WINDOW_SWEEP_MAX_SERIES

struct window_opts {
	struct window_params p;
	double slowdown, utilization, kernel_buffer;
	int have_service, have_slowdown, have_rate;
	double buffers[MAX_BUFFERS];
	unsigned nbuffers;
	const char *arrivals_path;
	struct window_trace_filter filter;
	int sweep;
	double sw_from, sw_to, sw_step;
	const char *plot_path;
	int json;
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

static int parse_sweep(const struct cmd_entry *e, const char *text, struct window_opts *o)
{
	char spec[128], *dots, *colon;

	if (strncmp(text, "slowdown=", 9) != 0) {
		cmd_usage_error(e, "--sweep '%s': only slowdown=A..B[:STEP] can be swept", text);
		return -1;
	}
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
	o->sw_step = 0.1;
	if (full_double(spec, &o->sw_from) || full_double(dots + 2, &o->sw_to) ||
	    (colon && full_double(colon + 1, &o->sw_step)))
		goto bad;
	if (!(o->sw_from > 0) || !(o->sw_to >= o->sw_from) || !(o->sw_step > 0))
		goto bad;
	if ((o->sw_to - o->sw_from) / o->sw_step + 1 > WINDOW_SWEEP_MAX_POINTS + 1e-9) {
		cmd_usage_error(e, "--sweep '%s': at most %d points; use a larger step", text,
				WINDOW_SWEEP_MAX_POINTS);
		return -1;
	}
	o->sweep = 1;
	return 0;
bad:
	cmd_usage_error(
		e,
		"--sweep '%s': expected slowdown=A..B or slowdown=A..B:STEP with 0 < A <= B "
		"and STEP > 0, e.g. slowdown=1..5:0.25",
		text);
	return -1;
}

static void fmt_time(double s, char *buf, size_t len)
{
	if (!isfinite(s))
		snprintf(buf, len, "never");
	else if (s < 1)
		snprintf(buf, len, "%.3g ms", s * 1e3);
	else if (s < 120)
		snprintf(buf, len, "%.3g s", s);
	else if (s < 7200)
		snprintf(buf, len, "%.3g min", s / 60);
	else if (s < 2 * 86400)
		snprintf(buf, len, "%.3g h", s / 3600);
	else if (s < 2 * 365.25 * 86400)
		snprintf(buf, len, "%.3g days", s / 86400);
	else if (s < 1e4 * 365.25 * 86400)
		snprintf(buf, len, "%.3g years", s / (365.25 * 86400));
	else
		snprintf(buf, len, "%.1e y", s / (365.25 * 86400));
}

/* A simulated quantile beyond every run's cap is "> cap", not "never". */
static void fmt_q(const struct window_result *r, double v, char *buf, size_t len)
{
	if (!isfinite(v) && r->method == WINDOW_SIM && r->censored > 0 && !r->mean_is_lower_bound &&
	    r->runs > 1) {
		buf[0] = '>';
		fmt_time(r->t_cap, buf + 1, len - 1);
		return;
	}
	if (!isfinite(v) && r->method == WINDOW_SIM && r->mean_is_lower_bound) {
		buf[0] = '>';
		fmt_time(r->t_cap, buf + 1, len - 1);
		return;
	}
	fmt_time(v, buf, len);
}

static void fmt_prob(double p, int upper, char *buf, size_t len)
{
	if (upper)
		snprintf(buf, len, "< %.2g %%", p * 100);
	else if (p > 0 && p < 1e-4)
		snprintf(buf, len, "%.2g %%", p * 100);
	else
		snprintf(buf, len, "%.1f %%", p * 100);
}

static void print_result_text(const struct window_opts *o, const struct window_params *p,
			      double buffer, const struct window_result *r)
{
	char a[48], b[48], c[48], d[48], h[48], pr[48];

	size_format((uint64_t)buffer, a, sizeof(a));
	printf("buffer    %s", a);
	if (o->kernel_buffer > 0) {
		size_format((uint64_t)o->kernel_buffer, b, sizeof(b));
		printf(" + %s in the kernel", b);
	}
	printf(" = %llu requests of %.4g B waiting\n", (unsigned long long)r->capacity_msgs,
	       r->mean_size);
	printf("load      rho = %.3g (%.4g requests/s arriving, %.4g served per second when "
	       "busy)\n",
	       r->rho, r->arrival_rate, p->service_rate);
	printf("method    %s: %s\n", window_method_name(r->method), r->why);
	fmt_time(r->mean, a, sizeof(a));
	fmt_q(r, r->median, b, sizeof(b));
	fmt_q(r, r->p10, c, sizeof(c));
	fmt_q(r, r->p90, d, sizeof(d));
	printf("first overflow after: mean %s%s", r->mean_is_lower_bound ? "> " : "", a);
	if (r->method == WINDOW_SIM && r->runs > 1 && isfinite(r->mean_ci95) &&
	    !r->mean_is_lower_bound)
		printf(" (+- %.1f %%)", 100 * r->mean_ci95 / r->mean);
	printf(", median %s, p10 %s, p90 %s\n", b, c, d);
	printf("          (quantiles from %s)\n", r->quantiles_from);
	fmt_time(p->horizon, h, sizeof(h));
	fmt_prob(r->p_horizon, r->p_horizon_is_upper_bound, pr, sizeof(pr));
	printf("overflow within %s: %s\n", h, pr);
	fmt_time(r->fluid_s, a, sizeof(a));
	printf("fluid estimate (buffer / net inflow): %s\n", a);
	if (r->method == WINDOW_SIM)
		printf("simulation: %u run%s (%u reached the time cap), %.3g arrivals in %.2f s of "
		       "CPU\n",
		       r->runs, r->runs == 1 ? "" : "s", r->censored, (double)r->sim_arrivals,
		       r->sim_seconds);
}

static void json_result(struct sbuf *sb, const struct window_params *p, double buffer,
			double slowdown, const struct window_result *r)
{
	sbuf_printf(sb, "{\"buffer\":%.0f,\"buffer_effective\":%.0f,\"slowdown\":", buffer,
		    p->buffer);
	sbuf_json_num(sb, slowdown);
	sbuf_printf(sb, ",\"method\":");
	sbuf_json_str(sb, window_method_name(r->method));
	sbuf_printf(sb, ",\"why\":");
	sbuf_json_str(sb, r->why);
	sbuf_printf(sb, ",\"quantiles_from\":");
	sbuf_json_str(sb, r->quantiles_from);
	sbuf_printf(sb, ",\"traffic\":");
	sbuf_json_str(sb, window_arrival_name(p->arrival));
	sbuf_printf(sb, ",\"rate\":");
	sbuf_json_num(sb, r->arrival_rate);
	sbuf_printf(sb, ",\"service_rate\":");
	sbuf_json_num(sb, p->service_rate);
	sbuf_printf(sb, ",\"msg_size\":");
	sbuf_json_num(sb, r->mean_size);
	sbuf_printf(sb, ",\"rho\":");
	sbuf_json_num(sb, r->rho);
	sbuf_printf(sb,
		    ",\"capacity_msgs\":%llu,\"mean_s\":", (unsigned long long)r->capacity_msgs);
	sbuf_json_num(sb, r->mean);
	sbuf_printf(sb, ",\"mean_is_lower_bound\":%s,\"sd_s\":",
		    r->mean_is_lower_bound ? "true" : "false");
	sbuf_json_num(sb, r->sd);
	sbuf_printf(sb, ",\"median_s\":");
	sbuf_json_num(sb, r->median);
	sbuf_printf(sb, ",\"p10_s\":");
	sbuf_json_num(sb, r->p10);
	sbuf_printf(sb, ",\"p90_s\":");
	sbuf_json_num(sb, r->p90);
	sbuf_printf(sb, ",\"horizon_s\":");
	sbuf_json_num(sb, p->horizon);
	sbuf_printf(sb, ",\"p_horizon\":");
	sbuf_json_num(sb, r->p_horizon);
	sbuf_printf(sb, ",\"p_horizon_is_upper_bound\":%s,\"fluid_s\":",
		    r->p_horizon_is_upper_bound ? "true" : "false");
	sbuf_json_num(sb, r->fluid_s);
	sbuf_printf(sb, ",\"runs\":%u,\"censored\":%u,\"sim_arrivals\":%llu}", r->runs, r->censored,
		    (unsigned long long)r->sim_arrivals);
}

/* What the arrivals file held, after the object's other members. */
static void json_trace(struct sbuf *sb, const struct window_trace *t)
{
	sbuf_printf(sb, ",\"trace\":{\"format\":");
	sbuf_json_str(sb, t->format);
	sbuf_printf(sb,
		    ",\"port\":%u,\"arrivals\":%llu,\"bytes\":%llu,\"duration_s\":%.9f,"
		    "\"packets\":%llu,\"skipped_other\":%llu,\"skipped_empty\":%llu,"
		    "\"skipped_retransmitted\":%llu,\"skipped_malformed\":%llu,\"truncated\":%s}",
		    t->port, (unsigned long long)t->n, (unsigned long long)t->bytes, t->duration,
		    (unsigned long long)t->packets, (unsigned long long)t->skipped_other,
		    (unsigned long long)t->skipped_empty, (unsigned long long)t->skipped_retrans,
		    (unsigned long long)t->skipped_bad, t->truncated ? "true" : "false");
}

/* The service rate for a slowdown: production serves rate / utilization when busy. */
static double service_for(const struct window_opts *o, double lam, double slowdown)
{
	return lam / o->utilization / slowdown;
}

static double arrival_rate(const struct window_params *p)
{
	if (p->arrival == WINDOW_ARR_MMPP)
		return window_mmpp_rate(&p->mmpp);
	if (p->arrival == WINDOW_ARR_TRACE && !(p->rate > 0))
		return window_trace_rate(p->trace);
	return p->rate;
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

static int run_sweep(struct window_opts *o)
{
	struct window_series *series = calloc(o->nbuffers, sizeof(*series));
	double lam = arrival_rate(&o->p);
	unsigned npts = (unsigned)floor((o->sw_to - o->sw_from) / o->sw_step + 1e-9) + 1;
	struct sbuf sb;
	char err[512], h[48];
	int rc = 0;

	if (!series) {
		fprintf(stderr, "doppel window: out of memory\n");
		return EXIT_RUNTIME;
	}
	sbuf_init(&sb);
	fmt_time(o->p.horizon, h, sizeof(h));
	if (!o->json)
		printf("debug window against slowdown: %.4g requests/s (%s), utilization %.3g, "
		       "%.4g B per request\n",
		       lam, window_arrival_name(o->p.arrival), o->utilization,
		       o->p.msg_size > 0 ? o->p.msg_size
					 : (double)o->p.trace->bytes / (double)o->p.trace->n);
	else
		sbuf_printf(&sb, "{\"sweep\":\"slowdown\",\"series\":[");
	for (unsigned b = 0; b < o->nbuffers; b++) {
		struct window_series *se = &series[b];
		char bs[32];

		se->buffer = o->buffers[b];
		size_format((uint64_t)se->buffer, bs, sizeof(bs));
		if (!o->json) {
			printf("\nbuffer %s%s\n", bs,
			       o->kernel_buffer > 0 ? " (+ kernel buffer)" : "");
			printf("%8s %7s %-6s %11s %11s %11s %11s %11s %11s\n", "SLOWDOWN", "RHO",
			       "METHOD", "MEAN", "MEDIAN", "P10", "P90", "FLUID", "P(<=HOR.)");
		} else {
			sbuf_printf(&sb, "%s{\"buffer\":%.0f,\"points\":[", b ? "," : "",
				    se->buffer);
		}
		for (unsigned i = 0; i < npts; i++) {
			struct window_params p = o->p;
			double x = o->sw_from + i * o->sw_step;
			struct window_result *r = &se->r[i];
			char m[48], md[48], lo[48], hi[48], fl[48], pr[48];

			p.buffer = se->buffer + o->kernel_buffer;
			p.service_rate = service_for(o, lam, x);
			if (window_solve(&p, r, err, sizeof(err)) < 0) {
				fprintf(stderr, "doppel window: slowdown %.3g, buffer %s: %s\n", x,
					bs, err);
				rc = EXIT_USAGE;
				goto out;
			}
			se->x[i] = x;
			se->n = i + 1;
			if (o->json) {
				if (i)
					sbuf_printf(&sb, ",");
				json_result(&sb, &p, se->buffer, x, r);
				continue;
			}
			fmt_time(r->mean, m + 1, sizeof(m) - 1);
			m[0] = r->mean_is_lower_bound ? '>' : ' ';
			fmt_q(r, r->median, md, sizeof(md));
			fmt_q(r, r->p10, lo, sizeof(lo));
			fmt_q(r, r->p90, hi, sizeof(hi));
			fmt_time(r->fluid_s, fl, sizeof(fl));
			fmt_prob(r->p_horizon, r->p_horizon_is_upper_bound, pr, sizeof(pr));
			printf("%8.3g %7.3g %-6s %11s %11s %11s %11s %11s %11s\n", x, r->rho,
			       window_method_name(r->method), m, md, lo, hi, fl, pr);
		}
		if (o->json)
			sbuf_printf(&sb, "]}");
	}
	if (o->json) {
		sbuf_printf(&sb, "],\"horizon_s\":%.6g", o->p.horizon);
		if (o->p.trace)
			json_trace(&sb, o->p.trace);
		sbuf_printf(&sb, "}\n");
		fwrite(sb.buf, 1, sb.len, stdout);
	} else {
		printf("\nP(<=HOR.): overflow within %s. Methods: exact M/M/1/K, sim(ulation), "
		       "fluid.\n",
		       h);
	}
	if (o->plot_path) {
		struct window_plot plot;
		struct sbuf svg;
		char title[160];

		snprintf(title, sizeof(title),
			 "debug window: %.4g requests/s (%s), utilization %.3g", lam,
			 window_arrival_name(o->p.arrival), o->utilization);
		plot.title = title;
		plot.xlabel = "slowdown of the replica (x production's time per request)";
		plot.horizon = o->p.horizon;
		plot.nseries = o->nbuffers;
		plot.series = series;
		sbuf_init(&svg);
		window_plot_svg(&plot, &svg);
		if (write_file(o->plot_path, &svg) < 0)
			rc = EXIT_RUNTIME;
		else if (!o->json)
			printf("chart: %s\n", o->plot_path);
		sbuf_free(&svg);
	}
out:
	sbuf_free(&sb);
	free(series);
	return rc;
}

static int run_single(struct window_opts *o)
{
	double lam = arrival_rate(&o->p);
	struct sbuf sb;
	char err[512];
	int rc = 0;

	sbuf_init(&sb);
	if (o->json)
		sbuf_printf(&sb, "{\"results\":[");
	for (unsigned b = 0; b < o->nbuffers; b++) {
		struct window_params p = o->p;
		struct window_result r;

		p.buffer = o->buffers[b] + o->kernel_buffer;
		if (o->have_slowdown)
			p.service_rate = service_for(o, lam, o->slowdown);
		if (window_solve(&p, &r, err, sizeof(err)) < 0) {
			fprintf(stderr, "doppel window: %s\n", err);
			rc = EXIT_USAGE;
			break;
		}
		if (o->json) {
			if (b)
				sbuf_printf(&sb, ",");
			json_result(&sb, &p, o->buffers[b], o->have_slowdown ? o->slowdown : NAN,
				    &r);
			continue;
		}
		if (b)
			printf("\n");
		print_result_text(o, &p, o->buffers[b], &r);
	}
	if (o->json && rc == 0) {
		sbuf_printf(&sb, "]");
		if (o->p.trace)
			json_trace(&sb, o->p.trace);
		sbuf_printf(&sb, "}\n");
		fwrite(sb.buf, 1, sb.len, stdout);
	}
	sbuf_free(&sb);
	return rc;
}

static void print_trace_summary(const struct window_trace *t, const char *path)
{
	fprintf(stdout,
		"arrivals: %s (%s): %llu requests, %llu bytes over %.3f s (%.4g requests/s)", path,
		t->format, (unsigned long long)t->n, (unsigned long long)t->bytes, t->duration,
		window_trace_rate(t));
	if (t->port)
		fprintf(stdout,
			" toward port %u; %llu packets, skipped: %llu other, %llu empty, "
			"%llu retransmitted, %llu malformed",
			t->port, (unsigned long long)t->packets,
			(unsigned long long)t->skipped_other, (unsigned long long)t->skipped_empty,
			(unsigned long long)t->skipped_retrans, (unsigned long long)t->skipped_bad);
	if (t->truncated)
		fprintf(stdout, " (stopped at %llu arrivals)", (unsigned long long)t->n);
	fprintf(stdout, "\n");
}

static int cmd_window_exec(int argc, char **argv)
{
	static const struct option opts[] = {
		{"rate", required_argument, NULL, 'r'},
		{"service-rate", required_argument, NULL, 'S'},
		{"slowdown", required_argument, NULL, 'x'},
		{"utilization", required_argument, NULL, 'u'},
		{"buffer", required_argument, NULL, 'B'},
		{"msg-size", required_argument, NULL, 'm'},
		{"kernel-buffer", required_argument, NULL, 'k'},
		{"traffic", required_argument, NULL, 't'},
		{"arrivals", required_argument, NULL, 'a'},
		{"port", required_argument, NULL, 'P'},
		{"replay-from-start", no_argument, NULL, 'F'},
		{"service", required_argument, NULL, 's'},
		{"method", required_argument, NULL, 'M'},
		{"runs", required_argument, NULL, 'n'},
		{"horizon", required_argument, NULL, 'H'},
		{"seed", required_argument, NULL, 'e'},
		{"sweep", required_argument, NULL, 'w'},
		{"plot", required_argument, NULL, 'p'},
		{"no-plot", no_argument, NULL, 'N'},
		{"json", no_argument, NULL, 'j'},
		{NULL, 0, NULL, 0},
	};
	const struct cmd_entry *e = &cmd_window_entry;
	struct window_opts o;
	struct window_trace *trace = NULL;
	int c, no_plot = 0, have_traffic = 0, rc;
	char err[512];

	memset(&o, 0, sizeof(o));
	window_params_defaults(&o.p);
	o.utilization = 1;
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'r':
			if (parse_positive(e, "--rate", optarg, &o.p.rate))
				return EXIT_USAGE;
			o.have_rate = 1;
			break;
		case 'S':
			if (parse_positive(e, "--service-rate", optarg, &o.p.service_rate))
				return EXIT_USAGE;
			o.have_service = 1;
			break;
		case 'x':
			if (parse_positive(e, "--slowdown", optarg, &o.slowdown))
				return EXIT_USAGE;
			o.have_slowdown = 1;
			break;
		case 'u':
			if (parse_positive(e, "--utilization", optarg, &o.utilization))
				return EXIT_USAGE;
			if (o.utilization > 1)
				return cmd_usage_error(
					e, "--utilization %s: a busy fraction, at most 1", optarg);
			break;
		case 'B': {
			char *list = strdup(optarg), *save = NULL, *tok;

			if (!list)
				return EXIT_RUNTIME;
			o.nbuffers = 0;
			for (tok = strtok_r(list, ",", &save); tok;
			     tok = strtok_r(NULL, ",", &save)) {
				uint64_t v;

				if (o.nbuffers == MAX_BUFFERS) {
					free(list);
					return cmd_usage_error(e, "--buffer: at most %d sizes",
							       MAX_BUFFERS);
				}
				if (cli_parse_size(e, "--buffer", tok, &v)) {
					free(list);
					return EXIT_USAGE;
				}
				o.buffers[o.nbuffers++] = (double)v;
			}
			free(list);
			if (!o.nbuffers)
				return cmd_usage_error(e, "--buffer '%s': no size", optarg);
			break;
		}
		case 'm':
			if (parse_bytes(e, "--msg-size", optarg, &o.p.msg_size))
				return EXIT_USAGE;
			break;
		case 'k': {
			uint64_t v;

			if (size_parse(optarg, &v) < 0)
				return cmd_usage_error(
					e, "--kernel-buffer '%s': not a size, e.g. 192K", optarg);
			o.kernel_buffer = (double)v;
			break;
		}
		case 't':
			if (window_parse_arrival(optarg, &o.p.arrival, &o.p.mmpp, err,
						 sizeof(err)) < 0)
				return cmd_usage_error(e, "--traffic %s", err);
			have_traffic = 1;
			break;
		case 'a':
			o.arrivals_path = optarg;
			break;
		case 'P': {
			char *end;
			long v = strtol(optarg, &end, 10);

			if (end == optarg || *end || v < 1 || v > 65535)
				return cmd_usage_error(e, "--port '%s': a TCP port, 1 to 65535",
						       optarg);
			o.filter.port = (uint16_t)v;
			break;
		}
		case 'F':
			o.p.trace_from_start = 1;
			break;
		case 's':
			if (strcmp(optarg, "exp") == 0)
				o.p.service = WINDOW_SVC_EXP;
			else if (strcmp(optarg, "det") == 0)
				o.p.service = WINDOW_SVC_DET;
			else
				return cmd_usage_error(e, "--service '%s': use exp or det", optarg);
			break;
		case 'M':
			if (strcmp(optarg, "auto") == 0)
				o.p.method = WINDOW_AUTO;
			else if (strcmp(optarg, "exact") == 0)
				o.p.method = WINDOW_EXACT;
			else if (strcmp(optarg, "sim") == 0)
				o.p.method = WINDOW_SIM;
			else if (strcmp(optarg, "fluid") == 0)
				o.p.method = WINDOW_FLUID;
			else
				return cmd_usage_error(
					e, "--method '%s': use auto, exact, sim or fluid", optarg);
			break;
		case 'n': {
			char *end;
			long v = strtol(optarg, &end, 10);

			if (end == optarg || *end || v < 1 || v > 1000000)
				return cmd_usage_error(e, "--runs '%s': 1 to 1000000", optarg);
			o.p.runs = (unsigned)v;
			break;
		}
		case 'H': {
			uint64_t ns;

			if (cli_parse_duration(e, "--horizon", optarg, &ns))
				return EXIT_USAGE;
			if (ns == 0)
				return cmd_usage_error(e, "--horizon must be positive");
			o.p.horizon = (double)ns / 1e9;
			break;
		}
		case 'e': {
			char *end;
			unsigned long long v = strtoull(optarg, &end, 10);

			if (end == optarg || *end)
				return cmd_usage_error(e, "--seed '%s': a whole number", optarg);
			o.p.seed = v;
			break;
		}
		case 'w':
			if (parse_sweep(e, optarg, &o))
				return EXIT_USAGE;
			break;
		case 'p':
			o.plot_path = optarg;
			break;
		case 'N':
			no_plot = 1;
			break;
		case 'j':
			o.json = 1;
			break;
		default:
			return cmd_usage_error(e, "unknown or incomplete option '%s'",
					       argv[optind - 1]);
		}
	}
	if (optind < argc)
		return cmd_usage_error(e, "unexpected argument '%s'", argv[optind]);
	if (!o.nbuffers)
		return cmd_usage_error(e, "--buffer is required");
	if (o.arrivals_path && have_traffic)
		return cmd_usage_error(e, "--arrivals and --traffic both say how requests arrive; "
					  "give one");
	if ((o.filter.port || o.p.trace_from_start) && !o.arrivals_path)
		return cmd_usage_error(e,
				       "--port and --replay-from-start only apply to --arrivals");
	if (o.p.arrival == WINDOW_ARR_MMPP && o.have_rate)
		return cmd_usage_error(e, "--traffic mmpp:... sets the rate itself; drop --rate");
	if (!o.arrivals_path && o.p.arrival != WINDOW_ARR_MMPP && !o.have_rate)
		return cmd_usage_error(
			e, "--rate is required (or --arrivals FILE, or --traffic mmpp:...)");
	if (o.have_service + o.have_slowdown + o.sweep != 1)
		return cmd_usage_error(
			e, "give exactly one of --service-rate, --slowdown and --sweep");
	if (!o.arrivals_path && !(o.p.msg_size > 0))
		return cmd_usage_error(e, "--msg-size is required (bytes per request)");
	if (no_plot && o.plot_path)
		return cmd_usage_error(e, "--plot and --no-plot contradict each other");
	if (o.plot_path && !o.sweep)
		return cmd_usage_error(e, "--plot draws a --sweep");
	if (o.sweep && !no_plot && !o.plot_path)
		o.plot_path = "doppel-window.svg";
	if (o.arrivals_path) {
		rc = window_trace_load(o.arrivals_path, &o.filter, &trace, err, sizeof(err));
		if (rc < 0) {
			fprintf(stderr, "doppel window: --arrivals: %s\n", err);
			return rc == -ENOMEM ? EXIT_RUNTIME : EXIT_USAGE;
		}
		if (trace->n < 2 || !(trace->duration > 0)) {
			fprintf(stderr,
				"doppel window: --arrivals %s: need at least two arrivals at "
				"different times\n",
				o.arrivals_path);
			window_trace_free(trace);
			return EXIT_USAGE;
		}
		if (!(o.p.msg_size > 0) && trace->bytes == 0) {
			fprintf(stderr,
				"doppel window: --arrivals %s has no sizes; give --msg-size\n",
				o.arrivals_path);
			window_trace_free(trace);
			return EXIT_USAGE;
		}
		o.p.arrival = WINDOW_ARR_TRACE;
		o.p.trace = trace;
		if (!o.json)
			print_trace_summary(trace, o.arrivals_path);
	}
	rc = o.sweep ? run_sweep(&o) : run_single(&o);
	window_trace_free(trace);
	return rc;
}
