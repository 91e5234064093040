/*
 * report.c - the answers of `doppel window` (window.h, struct window_query):
 * one answer per buffer, or a sweep over slowdowns with one table (or JSON
 * series) per buffer and the SVG chart of plot.c; as text for a person or as
 * JSON. The CLI parses the options and prints what this file builds.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/sbuf.h"
#include "common/size.h"
#include "window/window.h"

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

static void result_text(struct sbuf *sb, const struct window_query *q,
			const struct window_params *p, double buffer, const struct window_result *r)
{
	char a[48], b[48], c[48], d[48], h[48], pr[48];

	size_format((uint64_t)buffer, a, sizeof(a));
	sbuf_printf(sb, "buffer    %s", a);
	if (q->kernel_buffer > 0) {
		size_format((uint64_t)q->kernel_buffer, b, sizeof(b));
		sbuf_printf(sb, " + %s in the kernel", b);
	}
	sbuf_printf(sb, " = %llu requests of %.4g B waiting\n",
		    (unsigned long long)r->capacity_msgs, r->mean_size);
	sbuf_printf(sb,
		    "load      rho = %.3g (%.4g requests/s arriving, %.4g served per second when "
		    "busy)\n",
		    r->rho, r->arrival_rate, p->service_rate);
	sbuf_printf(sb, "method    %s: %s\n", window_method_name(r->method), r->why);
	fmt_time(r->mean, a, sizeof(a));
	fmt_q(r, r->median, b, sizeof(b));
	fmt_q(r, r->p10, c, sizeof(c));
	fmt_q(r, r->p90, d, sizeof(d));
	sbuf_printf(sb, "first overflow after: mean %s%s", r->mean_is_lower_bound ? "> " : "", a);
	if (r->method == WINDOW_SIM && r->runs > 1 && isfinite(r->mean_ci95) &&
	    !r->mean_is_lower_bound)
		sbuf_printf(sb, " (+- %.1f %%)", 100 * r->mean_ci95 / r->mean);
	sbuf_printf(sb, ", median %s, p10 %s, p90 %s\n", b, c, d);
	sbuf_printf(sb, "          (quantiles from %s)\n", r->quantiles_from);
	fmt_time(p->horizon, h, sizeof(h));
	fmt_prob(r->p_horizon, r->p_horizon_is_upper_bound, pr, sizeof(pr));
	sbuf_printf(sb, "overflow within %s: %s\n", h, pr);
	fmt_time(r->fluid_s, a, sizeof(a));
	sbuf_printf(sb, "fluid estimate (buffer / net inflow): %s\n", a);
	if (r->method == WINDOW_SIM)
		sbuf_printf(sb,
			    "simulation: %u run%s (%u reached the time cap), %.3g arrivals in "
			    "%.2f s of CPU\n",
			    r->runs, r->runs == 1 ? "" : "s", r->censored, (double)r->sim_arrivals,
			    r->sim_seconds);
}

static void result_json(struct sbuf *sb, const struct window_params *p, double buffer,
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
static void trace_json(struct sbuf *sb, const struct window_trace *t)
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

void window_trace_describe(const struct window_trace *t, const char *path, struct sbuf *out)
{
	sbuf_printf(out,
		    "arrivals: %s (%s): %llu requests, %llu bytes over %.3f s (%.4g requests/s)",
		    path, t->format, (unsigned long long)t->n, (unsigned long long)t->bytes,
		    t->duration, window_trace_rate(t));
	if (t->port)
		sbuf_printf(
			out,
			" toward port %u; %llu packets, skipped: %llu other, %llu empty, "
			"%llu retransmitted, %llu malformed",
			t->port, (unsigned long long)t->packets,
			(unsigned long long)t->skipped_other, (unsigned long long)t->skipped_empty,
			(unsigned long long)t->skipped_retrans, (unsigned long long)t->skipped_bad);
	if (t->truncated)
		sbuf_printf(out, " (stopped at %llu arrivals)", (unsigned long long)t->n);
	sbuf_printf(out, "\n");
}

/* The service rate for a slowdown: production serves rate / utilization when busy. */
static double service_for(const struct window_query *q, double lam, double slowdown)
{
	return lam / q->utilization / slowdown;
}

static double arrival_rate(const struct window_params *p)
{
	if (p->arrival == WINDOW_ARR_MMPP)
		return window_mmpp_rate(&p->mmpp);
	if (p->arrival == WINDOW_ARR_TRACE && !(p->rate > 0))
		return window_trace_rate(p->trace);
	return p->rate;
}

/* One table row of a sweep. */
static void sweep_row(struct sbuf *sb, double x, const struct window_result *r)
{
	char m[48], md[48], lo[48], hi[48], fl[48], pr[48];

	fmt_time(r->mean, m + 1, sizeof(m) - 1);
	m[0] = r->mean_is_lower_bound ? '>' : ' ';
	fmt_q(r, r->median, md, sizeof(md));
	fmt_q(r, r->p10, lo, sizeof(lo));
	fmt_q(r, r->p90, hi, sizeof(hi));
	fmt_time(r->fluid_s, fl, sizeof(fl));
	fmt_prob(r->p_horizon, r->p_horizon_is_upper_bound, pr, sizeof(pr));
	sbuf_printf(sb, "%8.3g %7.3g %-6s %11s %11s %11s %11s %11s %11s\n", x, r->rho,
		    window_method_name(r->method), m, md, lo, hi, fl, pr);
}

/* One curve of a sweep: its table (or JSON series) and its points for the chart. */
static int sweep_series(const struct window_query *q, double lam, unsigned npts, unsigned b,
			struct window_series *se, struct sbuf *out, char *err, size_t errlen)
{
	char bs[32], why[512];

	se->buffer = q->buffers[b];
	size_format((uint64_t)se->buffer, bs, sizeof(bs));
	if (!q->json) {
		sbuf_printf(out, "\nbuffer %s%s\n", bs,
			    q->kernel_buffer > 0 ? " (+ kernel buffer)" : "");
		sbuf_printf(out, "%8s %7s %-6s %11s %11s %11s %11s %11s %11s\n", "SLOWDOWN", "RHO",
			    "METHOD", "MEAN", "MEDIAN", "P10", "P90", "FLUID", "P(<=HOR.)");
	} else {
		sbuf_printf(out, "%s{\"buffer\":%.0f,\"points\":[", b ? "," : "", se->buffer);
	}
	for (unsigned i = 0; i < npts; i++) {
		struct window_params p = q->p;
		double x = q->sw_from + i * q->sw_step;
		struct window_result *r = &se->r[i];

		p.buffer = se->buffer + q->kernel_buffer;
		p.service_rate = service_for(q, lam, x);
		if (window_solve(&p, r, why, sizeof(why)) < 0) {
			snprintf(err, errlen, "slowdown %.3g, buffer %s: %s", x, bs, why);
			return -EINVAL;
		}
		se->x[i] = x;
		se->n = i + 1;
		if (!q->json) {
			sweep_row(out, x, r);
			continue;
		}
		if (i)
			sbuf_printf(out, ",");
		result_json(out, &p, se->buffer, x, r);
	}
	if (q->json)
		sbuf_printf(out, "]}");
	return 0;
}

static int run_sweep(const struct window_query *q, struct sbuf *out, struct sbuf *svg, char *err,
		     size_t errlen)
{
	struct window_series *series = calloc(q->nbuffers, sizeof(*series));
	double lam = arrival_rate(&q->p);
	unsigned npts = (unsigned)floor((q->sw_to - q->sw_from) / q->sw_step + 1e-9) + 1;
	char h[48];
	int rc = 0;

	if (!series) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	fmt_time(q->p.horizon, h, sizeof(h));
	if (!q->json)
		sbuf_printf(out,
			    "debug window against slowdown: %.4g requests/s (%s), utilization "
			    "%.3g, %.4g B per request\n",
			    lam, window_arrival_name(q->p.arrival), q->utilization,
			    q->p.msg_size > 0 ? q->p.msg_size
					      : (double)q->p.trace->bytes / (double)q->p.trace->n);
	else
		sbuf_printf(out, "{\"sweep\":\"slowdown\",\"series\":[");
	for (unsigned b = 0; b < q->nbuffers && !rc; b++)
		rc = sweep_series(q, lam, npts, b, &series[b], out, err, errlen);
	if (rc)
		goto out;
	if (q->json) {
		sbuf_printf(out, "],\"horizon_s\":%.6g", q->p.horizon);
		if (q->p.trace)
			trace_json(out, q->p.trace);
		sbuf_printf(out, "}\n");
	} else {
		sbuf_printf(out,
			    "\nP(<=HOR.): overflow within %s. Methods: exact M/M/1/K, "
			    "sim(ulation), fluid.\n",
			    h);
	}
	if (svg) {
		struct window_plot plot;
		char title[160];

		snprintf(title, sizeof(title),
			 "debug window: %.4g requests/s (%s), utilization %.3g", lam,
			 window_arrival_name(q->p.arrival), q->utilization);
		plot.title = title;
		plot.xlabel = "slowdown of the replica (x production's time per request)";
		plot.horizon = q->p.horizon;
		plot.nseries = q->nbuffers;
		plot.series = series;
		window_plot_svg(&plot, svg);
	}
out:
	free(series);
	return rc;
}

static int run_single(const struct window_query *q, struct sbuf *out, char *err, size_t errlen)
{
	double lam = arrival_rate(&q->p);

	if (q->json)
		sbuf_printf(out, "{\"results\":[");
	for (unsigned b = 0; b < q->nbuffers; b++) {
		struct window_params p = q->p;
		struct window_result r;

		p.buffer = q->buffers[b] + q->kernel_buffer;
		if (q->slowdown > 0)
			p.service_rate = service_for(q, lam, q->slowdown);
		if (window_solve(&p, &r, err, errlen) < 0)
			return -EINVAL;
		if (q->json) {
			if (b)
				sbuf_printf(out, ",");
			result_json(out, &p, q->buffers[b], q->slowdown > 0 ? q->slowdown : NAN,
				    &r);
			continue;
		}
		if (b)
			sbuf_printf(out, "\n");
		result_text(out, q, &p, q->buffers[b], &r);
	}
	if (q->json) {
		sbuf_printf(out, "]");
		if (q->p.trace)
			trace_json(out, q->p.trace);
		sbuf_printf(out, "}\n");
	}
	return 0;
}

int window_query_run(const struct window_query *q, struct sbuf *out, struct sbuf *svg, char *err,
		     size_t errlen)
{
	int rc;

	if (!q->nbuffers || q->nbuffers > WINDOW_SWEEP_MAX_SERIES) {
		snprintf(err, errlen, "1 to %d buffer sizes", WINDOW_SWEEP_MAX_SERIES);
		return -EINVAL;
	}
	if (q->sweep &&
	    (!(q->sw_from > 0) || !(q->sw_to >= q->sw_from) || !(q->sw_step > 0) ||
	     (q->sw_to - q->sw_from) / q->sw_step + 1 > WINDOW_SWEEP_MAX_POINTS + 1e-9)) {
		snprintf(err, errlen, "a sweep from A > 0 to B >= A, at most %d points",
			 WINDOW_SWEEP_MAX_POINTS);
		return -EINVAL;
	}
	rc = q->sweep ? run_sweep(q, out, svg, err, errlen) : run_single(q, out, err, errlen);
	if (rc && q->json)
		sbuf_reset(out); /* half a JSON document is no answer */
	return rc;
}
