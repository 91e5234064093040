/*
 * fluid.c - the buffer as a fluid: bytes flow in at the arrival rate and out
 * at the service rate while the replica is busy, plus Brownian noise whose
 * variance rate comes from the arrival process (Poisson, bursts, a trace)
 * and the service times. The time to first overflow is then the first
 * passage of a reflected Brownian motion from 0 to the buffer size.
 *
 * With drift d (bytes/s) and variance rate s2 (bytes^2/s), the mean passage to
 * level b is  b/d - s2 (1 - exp(-2 d b / s2)) / (2 d^2)  (b^2/s2 at d = 0): the
 * plain fluid answer b/d less what the noise steals, or, when the replica
 * keeps up on average (d < 0), a time that grows exponentially with b. The
 * Peclet number Pe = d b / s2 says which regime holds.
 *
 * Moments and quantiles come from a birth-death chain whose steps of b/M
 * bytes have the same drift and variance (bd.c): M levels reproduce the
 * diffusion to O(1/M), and the chain's passage time has an exact
 * distribution. Very large |Pe| use the closed forms directly.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "window/window-int.h"

/* Asymptotic variance rate of the arrival count of a cyclic MMPP (Poisson equation). */
static double mmpp_var_rate(const struct window_mmpp *m)
{
	unsigned n = m->n, i, j, k;
	double a[WINDOW_MMPP_MAX][WINDOW_MMPP_MAX + 1];
	double pi[WINDOW_MMPP_MAX], g[WINDOW_MMPP_MAX], f[WINDOW_MMPP_MAX];
	double tot = 0, mean = 0, v;

	for (i = 0; i < n; i++)
		tot += m->dwell[i];
	for (i = 0; i < n; i++) {
		pi[i] = m->dwell[i] / tot;
		mean += pi[i] * m->rate[i];
	}
	if (n < 2)
		return mean;
	for (i = 0; i < n; i++)
		f[i] = m->rate[i] - mean;
	/* Q g = -f, with the last row replaced by pi . g = 0 (g is defined up to a constant). */
	memset(a, 0, sizeof(a));
	for (i = 0; i + 1 < n; i++) {
		a[i][i] = -1 / m->dwell[i];
		a[i][(i + 1) % n] += 1 / m->dwell[i];
		a[i][n] = -f[i];
	}
	for (j = 0; j < n; j++)
		a[n - 1][j] = pi[j];
	a[n - 1][n] = 0;
	for (k = 0; k < n; k++) {
		unsigned piv = k;

		for (i = k + 1; i < n; i++)
			if (fabs(a[i][k]) > fabs(a[piv][k]))
				piv = i;
		if (piv != k)
			for (j = 0; j <= n; j++) {
				double tmp = a[k][j];

				a[k][j] = a[piv][j];
				a[piv][j] = tmp;
			}
		if (fabs(a[k][k]) < 1e-300)
			return mean;
		for (i = k + 1; i < n; i++) {
			double fac = a[i][k] / a[k][k];

			for (j = k; j <= n; j++)
				a[i][j] -= fac * a[k][j];
		}
	}
	for (k = n; k-- > 0;) {
		double s = a[k][n];

		for (j = k + 1; j < n; j++)
			s -= a[k][j] * g[j];
		g[k] = s / a[k][k];
	}
	v = mean;
	for (i = 0; i < n; i++)
		v += 2 * pi[i] * f[i] * g[i];
	return v;
}

/* Variance of arrival counts per second, from the counts in 20 equal windows. */
static double trace_var_rate(const struct window_trace *tr, double scale)
{
	double dur = tr->duration * scale, w, t = 0, sum = 0, sum2 = 0;
	uint64_t counts[20] = {0};
	const unsigned nwin = 20;

	if (tr->n < 40 || !(dur > 0))
		return window_trace_rate(tr) / scale;
	w = dur / nwin;
	for (uint64_t i = 0; i < tr->n; i++) {
		unsigned k;

		if (i > 0)
			t += tr->gap[i] * scale;
		k = (unsigned)(t / w);
		counts[k < nwin ? k : nwin - 1]++;
	}
	for (unsigned k = 0; k < nwin; k++) {
		sum += (double)counts[k];
		sum2 += (double)counts[k] * (double)counts[k];
	}
	{
		double mean = sum / nwin, var = (sum2 - nwin * mean * mean) / (nwin - 1);

		return var > 0 ? var / w : 0;
	}
}

double fluid_arrival_var_rate(const struct window_params *p)
{
	switch (p->arrival) {
	case WINDOW_ARR_POISSON:
		return p->rate;
	case WINDOW_ARR_DET:
		return 0;
	case WINDOW_ARR_MMPP:
		return mmpp_var_rate(&p->mmpp);
	case WINDOW_ARR_TRACE: {
		double tr_rate = window_trace_rate(p->trace);
		double scale = p->rate > 0 && tr_rate > 0 ? tr_rate / p->rate : 1;

		return trace_var_rate(p->trace, scale);
	}
	}
	return p->rate;
}

/* Variance of request sizes (0 for a fixed size). */
static double size_var(const struct window_params *p, double mean)
{
	double s2 = 0;

	if (p->msg_size > 0 || !p->trace || !p->trace->n)
		return 0;
	for (uint64_t i = 0; i < p->trace->n; i++)
		s2 += (double)p->trace->size[i] * (double)p->trace->size[i];
	s2 /= (double)p->trace->n;
	return s2 > mean * mean ? s2 - mean * mean : 0;
}

static void set_quantiles_gamma(const struct window_params *p, struct window_result *r)
{
	r->median = dist_gamma_quantile(r->mean, r->sd, 0.5);
	r->p10 = dist_gamma_quantile(r->mean, r->sd, 0.1);
	r->p90 = dist_gamma_quantile(r->mean, r->sd, 0.9);
	r->p_horizon = dist_gamma_cdf(r->mean, r->sd, p->horizon);
}

int fluid_solve(const struct window_params *p, double level, struct window_result *r)
{
	double lam = r->arrival_rate, mu = p->service_rate, m = r->mean_size;
	double cs2 = p->service == WINDOW_SVC_EXP ? 1 : 0;
	double d = m * (lam - mu);
	double s2 = m * m * (fluid_arrival_var_rate(p) + mu * cs2) + (lam + mu) * size_var(p, m);
	double b = level, pe;

	snprintf(r->quantiles_from, sizeof(r->quantiles_from), "the fluid model");
	if (!(s2 > 0) || !isfinite(s2)) {
		/* No noise at all: the buffer fills like a tank, or never. */
		r->mean = d > 0 ? b / d : INFINITY;
		r->sd = d > 0 ? 0 : NAN;
		r->median = r->p10 = r->p90 = r->mean;
		r->p_horizon = r->mean <= p->horizon ? 1 : 0;
		snprintf(r->quantiles_from, sizeof(r->quantiles_from),
			 "a deterministic fluid (no variability)");
		return 0;
	}
	pe = d * b / s2;
	if (pe > 50) {
		/* Strong drift: inverse-Gaussian passage, reflection at 0 negligible. */
		double var = b * s2 / (d * d * d);

		r->mean = b / d - s2 / (2 * d * d);
		r->sd = sqrt(var);
		set_quantiles_gamma(p, r);
		snprintf(r->quantiles_from, sizeof(r->quantiles_from),
			 "the drifted Brownian passage (near normal)");
		return 0;
	}
	if (pe < -300) {
		r->mean = r->sd = r->median = r->p10 = r->p90 = INFINITY;
		r->p_horizon = 0;
		snprintf(r->quantiles_from, sizeof(r->quantiles_from),
			 "the fluid model (mean beyond 1e250 s)");
		return 0;
	}
	{
		/* A chain with M steps of b/M bytes, same drift and variance (M >= |Pe| keeps rates
		 * >= 0). */
		double mlev = fmax(4000, ceil(2 * fabs(pe)));
		double delta = b / mlev;
		double up = (s2 / (delta * delta) + d / delta) / 2;
		double down = (s2 / (delta * delta) - d / delta) / 2;
		struct bd_moments mo;
		struct bd_cdf *c;
		double coarse = fmax(150, ceil(2 * fabs(pe)));
		double cd = b / coarse;
		double cup = (s2 / (cd * cd) + d / cd) / 2, cdown = (s2 / (cd * cd) - d / cd) / 2;
		double t_max;

		bd_moments(up, down < 0 ? 0 : down, (uint64_t)mlev, &mo);
		r->mean = mo.mean;
		r->sd = mo.sd;
		if (!isfinite(r->mean)) {
			r->sd = r->median = r->p10 = r->p90 = INFINITY;
			r->p_horizon = 0;
			return 0;
		}
		t_max = r->mean + 10 * r->sd;
		c = bd_cdf_new(cup, cdown < 0 ? 0 : cdown, (uint64_t)coarse, t_max, 2e8);
		if (c) {
			/* The coarse chain's shape, rescaled to the fine chain's mean. */
			struct bd_moments cm;
			double k;

			bd_moments(cup, cdown < 0 ? 0 : cdown, (uint64_t)coarse, &cm);
			k = r->mean / cm.mean;
			r->median = k * bd_cdf_quantile(c, 0.5);
			r->p10 = k * bd_cdf_quantile(c, 0.1);
			r->p90 = k * bd_cdf_quantile(c, 0.9);
			r->p_horizon = p->horizon / k >= bd_cdf_tmax(c)
					       ? 1 - bd_cdf_survival(c, bd_cdf_tmax(c))
					       : 1 - bd_cdf_survival(c, p->horizon / k);
			bd_cdf_free(c);
			snprintf(r->quantiles_from, sizeof(r->quantiles_from),
				 "the reflected Brownian passage (uniformized)");
		} else {
			set_quantiles_gamma(p, r);
			snprintf(r->quantiles_from, sizeof(r->quantiles_from),
				 "a gamma fit to the fluid mean and variance");
		}
	}
	return 0;
}
