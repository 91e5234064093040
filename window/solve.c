/*
 * solve.c - one debug-window question, answered by the method that fits it.
 *
 * The choice (method auto), in order:
 *   1. Poisson arrivals, exponential service, one request size: the M/M/1/K
 *      queue, solved exactly (bd.c). Nothing else is needed.
 *   2. Otherwise simulate (sim.c), when the expected work fits the budget:
 *      runs x arrivals per run, the latter estimated from the fluid model.
 *   3. Otherwise the fluid model (fluid.c): it is then the buffer's size
 *      (many requests) or a far-off overflow that made simulation too costly,
 *      which is exactly where the fluid limit is accurate.
 * Every answer also carries the plain fluid figure (buffer / net inflow),
 * the one the proxy's live forecast shows, for comparison.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "window/window-int.h"

#define DEFAULT_SIM_BUDGET 60000000ULL /* simulated arrivals: a few seconds of CPU */
#define DEFAULT_RUNS 1000
#define MIN_RUNS 100
#define EXACT_WORK_MAX 3e8

void window_params_defaults(struct window_params *p)
{
	memset(p, 0, sizeof(*p));
	p->arrival = WINDOW_ARR_POISSON;
	p->service = WINDOW_SVC_EXP;
	p->horizon = 600;
	p->seed = 1;
	p->method = WINDOW_AUTO;
}

const char *window_method_name(enum window_method m)
{
	switch (m) {
	case WINDOW_AUTO:
		return "auto";
	case WINDOW_EXACT:
		return "exact";
	case WINDOW_SIM:
		return "sim";
	case WINDOW_FLUID:
		return "fluid";
	}
	return "?";
}

const char *window_arrival_name(enum window_arrival a)
{
	switch (a) {
	case WINDOW_ARR_POISSON:
		return "poisson";
	case WINDOW_ARR_DET:
		return "det";
	case WINDOW_ARR_MMPP:
		return "mmpp";
	case WINDOW_ARR_TRACE:
		return "trace";
	}
	return "?";
}

double window_mmpp_rate(const struct window_mmpp *m)
{
	double tot = 0, sum = 0;

	for (unsigned i = 0; i < m->n; i++) {
		tot += m->dwell[i];
		sum += m->rate[i] * m->dwell[i];
	}
	return tot > 0 ? sum / tot : 0;
}

int window_parse_arrival(const char *text, enum window_arrival *a, struct window_mmpp *m, char *err,
			 size_t errlen)
{
	const char *p;

	if (strcmp(text, "poisson") == 0) {
		*a = WINDOW_ARR_POISSON;
		return 0;
	}
	if (strcmp(text, "det") == 0 || strcmp(text, "deterministic") == 0) {
		*a = WINDOW_ARR_DET;
		return 0;
	}
	if (strncmp(text, "mmpp:", 5) != 0) {
		snprintf(err, errlen,
			 "'%s': use poisson, det, or mmpp:RATE/DWELL,RATE/DWELL (e.g. "
			 "mmpp:80/0.5,10/2)",
			 text);
		return -EINVAL;
	}
	memset(m, 0, sizeof(*m));
	p = text + 5;
	while (*p) {
		char *end;
		double rate, dwell;

		if (m->n == WINDOW_MMPP_MAX) {
			snprintf(err, errlen, "'%s': at most %d states", text, WINDOW_MMPP_MAX);
			return -EINVAL;
		}
		rate = strtod(p, &end);
		if (end == p || *end != '/' || !(rate >= 0) || !isfinite(rate))
			goto bad;
		p = end + 1;
		dwell = strtod(p, &end);
		if (end == p || !(dwell > 0) || !isfinite(dwell))
			goto bad;
		m->rate[m->n] = rate;
		m->dwell[m->n] = dwell;
		m->n++;
		p = end;
		if (*p == ',')
			p++;
		else if (*p)
			goto bad;
	}
	if (m->n < 1 || !(window_mmpp_rate(m) > 0))
		goto bad;
	*a = WINDOW_ARR_MMPP;
	return 0;
bad:
	snprintf(err, errlen,
		 "'%s': expected mmpp:RATE/DWELL,RATE/DWELL... with rates >= 0 per second (not all "
		 "0) and dwell times > 0 seconds",
		 text);
	return -EINVAL;
}

static int exact_applies(const struct window_params *p)
{
	return p->arrival == WINDOW_ARR_POISSON && p->service == WINDOW_SVC_EXP && p->msg_size > 0;
}

static void exact_solve(const struct window_params *p, struct window_result *r)
{
	double lam = r->arrival_rate, mu = p->service_rate;
	/* K requests may wait; the first arrival that finds K waiting and one in service overflows.
	 */
	uint64_t levels = r->capacity_msgs + 2;
	struct bd_moments mo;
	struct bd_cdf *c = NULL;

	bd_moments(lam, mu, levels, &mo);
	r->mean = mo.mean;
	r->sd = mo.sd;
	if (!isfinite(r->mean)) {
		r->sd = r->median = r->p10 = r->p90 = INFINITY;
		r->p_horizon = 0;
		snprintf(r->quantiles_from, sizeof(r->quantiles_from),
			 "the exact mean (beyond 1e300 s)");
		return;
	}
	if (!mo.var_from_limit)
		c = bd_cdf_new(lam, mu, levels, r->mean + 10 * r->sd, EXACT_WORK_MAX);
	if (c) {
		r->median = bd_cdf_quantile(c, 0.5);
		r->p10 = bd_cdf_quantile(c, 0.1);
		r->p90 = bd_cdf_quantile(c, 0.9);
		r->p_horizon = 1 - bd_cdf_survival(c, fmin(p->horizon, bd_cdf_tmax(c)));
		bd_cdf_free(c);
		snprintf(r->quantiles_from, sizeof(r->quantiles_from),
			 "the exact distribution (uniformization)");
	} else {
		r->median = dist_gamma_quantile(r->mean, mo.sd, 0.5);
		r->p10 = dist_gamma_quantile(r->mean, mo.sd, 0.1);
		r->p90 = dist_gamma_quantile(r->mean, mo.sd, 0.9);
		r->p_horizon = dist_gamma_cdf(r->mean, mo.sd, p->horizon);
		snprintf(r->quantiles_from, sizeof(r->quantiles_from),
			 "a gamma fit to the exact mean and variance");
	}
}

/* The q-quantile over all runs, censored runs counting as +infinity. */
static double quantile_sorted(const double *v, unsigned n, unsigned runs, double q)
{
	double pos = q * (runs - 1);
	unsigned lo = (unsigned)floor(pos);
	double frac = pos - lo;
	double a = lo < n ? v[lo] : INFINITY;
	double b = lo + 1 < n ? v[lo + 1] : INFINITY;

	if (frac == 0 || !isfinite(a))
		return a;
	if (!isfinite(b))
		return INFINITY;
	return a + frac * (b - a);
}

/* Nothing random: evenly spaced or replayed-from-the-start arrivals, constant service. */
static int sim_deterministic(const struct window_params *p)
{
	return p->service == WINDOW_SVC_DET &&
	       (p->arrival == WINDOW_ARR_DET ||
		(p->arrival == WINDOW_ARR_TRACE && p->trace_from_start));
}

static int sim_solve(const struct window_params *p, unsigned runs, double t_cap,
		     struct window_result *r, char *err, size_t errlen)
{
	int deterministic = sim_deterministic(p);
	struct sim_summary s;
	double sum = 0, sum2 = 0;
	unsigned within = 0;
	int rc;

	rc = sim_run(p, runs, t_cap, &s, err, errlen);
	if (rc < 0)
		return rc;
	for (unsigned i = 0; i < s.ntimes; i++) {
		sum += s.times[i];
		sum2 += s.times[i] * s.times[i];
		if (s.times[i] <= p->horizon)
			within++;
	}
	r->runs = s.runs;
	r->censored = s.censored;
	r->t_cap = t_cap;
	r->sim_arrivals = s.arrivals;
	r->sim_seconds = s.cpu_s;
	if (s.ntimes == 0 && deterministic) {
		/* Nothing random and no overflow up to the cap: a periodic queue that keeps up. */
		r->mean = r->median = r->p10 = r->p90 = INFINITY;
		r->sd = NAN;
	} else if (s.ntimes == 0) {
		r->mean = t_cap;
		r->median = r->p10 = r->p90 = INFINITY;
		r->sd = NAN;
		r->mean_is_lower_bound = 1;
	} else {
		/* Censored runs count at the cap: the mean is then a lower bound. */
		double tot = sum + (double)s.censored * t_cap;
		double n = (double)s.runs;
		double mean = tot / n;
		double var = (sum2 + (double)s.censored * t_cap * t_cap) / n - mean * mean;

		r->mean = mean;
		r->sd = var > 0 ? sqrt(var) : 0;
		r->mean_ci95 = s.runs > 1 ? 1.96 * r->sd / sqrt(n) : NAN;
		r->mean_is_lower_bound = s.censored > 0;
		r->median = quantile_sorted(s.times, s.ntimes, s.runs, 0.5);
		r->p10 = quantile_sorted(s.times, s.ntimes, s.runs, 0.1);
		r->p90 = quantile_sorted(s.times, s.ntimes, s.runs, 0.9);
	}
	if (within == 0 && t_cap >= p->horizon && deterministic) {
		r->p_horizon = 0;
	} else if (within == 0 && t_cap >= p->horizon) {
		/* Rule of three: 95% upper bound when no run overflowed in time. */
		r->p_horizon = 3.0 / s.runs;
		r->p_horizon_is_upper_bound = 1;
	} else {
		r->p_horizon = (double)within / s.runs;
	}
	snprintf(r->quantiles_from, sizeof(r->quantiles_from), "%u simulated run%s", s.runs,
		 s.runs == 1 ? "" : "s");
	free(s.times);
	return 0;
}

int window_solve(const struct window_params *p, struct window_result *r, char *err, size_t errlen)
{
	enum window_method m = p->method;
	double lam, size, level;
	struct window_result fl;

	memset(r, 0, sizeof(*r));
	if (!(p->service_rate > 0) || !isfinite(p->service_rate)) {
		snprintf(err, errlen,
			 "the service rate must be a positive number of requests per second");
		return -EINVAL;
	}
	if (!(p->buffer > 0) || !isfinite(p->buffer)) {
		snprintf(err, errlen, "the buffer must be positive");
		return -EINVAL;
	}
	if (!(p->horizon > 0)) {
		snprintf(err, errlen, "the horizon must be positive");
		return -EINVAL;
	}
	switch (p->arrival) {
	case WINDOW_ARR_POISSON:
	case WINDOW_ARR_DET:
		lam = p->rate;
		break;
	case WINDOW_ARR_MMPP:
		lam = window_mmpp_rate(&p->mmpp);
		break;
	case WINDOW_ARR_TRACE:
		if (!p->trace || window_trace_rate(p->trace) <= 0) {
			snprintf(err, errlen,
				 "the trace needs at least two arrivals at distinct times");
			return -EINVAL;
		}
		lam = p->rate > 0 ? p->rate : window_trace_rate(p->trace);
		break;
	default:
		lam = 0;
	}
	if (!(lam > 0) || !isfinite(lam)) {
		snprintf(err, errlen,
			 "the arrival rate must be a positive number of requests per second");
		return -EINVAL;
	}
	if (p->msg_size > 0) {
		size = p->msg_size;
	} else if (p->arrival == WINDOW_ARR_TRACE && p->trace->bytes > 0) {
		size = (double)p->trace->bytes / (double)p->trace->n;
	} else {
		snprintf(err, errlen, "the request size must be given (the trace has no sizes)");
		return -EINVAL;
	}
	r->arrival_rate = lam;
	r->mean_size = size;
	r->rho = lam / p->service_rate;
	r->capacity_msgs = (uint64_t)fmin(floor(p->buffer / size), 9e18);
	/* What a tank would do (the live forecast's model, without its noise floor). */
	r->fluid_s =
		lam > p->service_rate ? p->buffer / ((lam - p->service_rate) * size) : INFINITY;
	r->mean_ci95 = NAN;
	/* The fluid level: the waiting bytes plus the request in service. */
	level = p->buffer + size;

	if (m == WINDOW_EXACT && !exact_applies(p)) {
		snprintf(err, errlen,
			 "the exact method needs Poisson arrivals, exponential service and one "
			 "request "
			 "size (--msg-size); use --method sim or fluid");
		return -EINVAL;
	}
	if (m == WINDOW_AUTO && exact_applies(p))
		m = WINDOW_EXACT;
	if (m == WINDOW_EXACT) {
		r->method = WINDOW_EXACT;
		exact_solve(p, r);
		snprintf(r->why, sizeof(r->why),
			 "Poisson arrivals, exponential service and one request size make an "
			 "M/M/1/K "
			 "queue (K = %llu requests waiting); its first-passage time is known "
			 "exactly",
			 (unsigned long long)r->capacity_msgs);
		return 0;
	}

	/* The fluid answer first: it is either the answer or the simulation's cost estimate. */
	fl = *r;
	fluid_solve(p, level, &fl);
	if (m == WINDOW_FLUID) {
		*r = fl;
		r->method = WINDOW_FLUID;
		snprintf(
			r->why, sizeof(r->why),
			"asked for: the buffer as a fluid with Brownian noise from the arrival and "
			"service variability");
		return 0;
	}
	{
		uint64_t budget = p->sim_budget ? p->sim_budget : DEFAULT_SIM_BUDGET;
		unsigned runs = p->runs ? p->runs : DEFAULT_RUNS;

		/* Nothing random: one run says it all. */
		if (sim_deterministic(p))
			runs = 1;
		double t_cap, per_run, cost;
		int fits = sim_queue_need(p) <= SIM_QUEUE_MAX;

		/*
		 * Each run stops at its overflow or at t_cap: far enough past the
		 * expected overflow for an uncensored mean, and never before the horizon.
		 */
		t_cap = isfinite(fl.mean) ? fmax(p->horizon, 20 * (fl.mean + 3 * fl.sd))
					  : p->horizon;
		if (fl.sd == 0 && isfinite(fl.mean))
			t_cap = fmax(p->horizon, 4 * fl.mean + 1);
		per_run = lam * fmin(t_cap, isfinite(fl.mean) ? fl.mean * 1.5 + 3 * fl.sd : t_cap) +
			  1;
		if (!p->runs && runs * per_run > (double)budget)
			runs = (unsigned)fmax(MIN_RUNS, (double)budget / per_run);
		cost = runs * per_run;
		if (m == WINDOW_AUTO && (!fits || cost > 20.0 * (double)budget)) {
			*r = fl;
			r->method = WINDOW_FLUID;
			if (!fits)
				snprintf(r->why, sizeof(r->why),
					 "the buffer holds %llu requests, more than the simulator "
					 "keeps in "
					 "memory; at that size the fluid limit is accurate",
					 (unsigned long long)r->capacity_msgs);
			else
				snprintf(r->why, sizeof(r->why),
					 "%s arrivals have no closed form, and simulating %u runs "
					 "would take "
					 "about %.1e arrivals; the buffer holds %llu requests, "
					 "where the "
					 "fluid limit applies",
					 window_arrival_name(p->arrival), runs, cost,
					 (unsigned long long)r->capacity_msgs);
			return 0;
		}
		if (cost > (double)budget) {
			/* Over budget (but the queue is small): simulate up to what the budget
			 * allows. */
			t_cap = fmax(p->horizon, (double)budget / (runs * lam));
		}
		{
			int rc = sim_solve(p, runs, t_cap, r, err, errlen);

			if (rc < 0)
				return rc;
		}
		r->method = WINDOW_SIM;
		snprintf(r->why, sizeof(r->why),
			 "%s arrivals%s with %s service have no closed form: "
			 "simulated %u runs (each until its first overflow or %.3g s)",
			 window_arrival_name(p->arrival),
			 p->arrival != WINDOW_ARR_TRACE ? ""
			 : p->trace_from_start		? " (replayed from the first)"
							: " (replayed from random offsets)",
			 p->service == WINDOW_SVC_EXP ? "exponential" : "deterministic", r->runs,
			 t_cap);
		if (p->service == WINDOW_SVC_DET && r->runs == 1 && !p->runs)
			snprintf(r->why, sizeof(r->why),
				 "%s and constant service times leave nothing to chance: one "
				 "simulated "
				 "run gives the exact time",
				 p->arrival == WINDOW_ARR_DET
					 ? "evenly spaced arrivals"
					 : "the recorded arrivals from the first");
		if (p->arrival == WINDOW_ARR_POISSON && p->service == WINDOW_SVC_EXP &&
		    p->msg_size > 0)
			snprintf(r->why, sizeof(r->why),
				 "asked for: simulated %u runs (each until its first overflow or "
				 "%.3g s)",
				 r->runs, t_cap);
	}
	return 0;
}
