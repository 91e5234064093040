/*
 * bd.c - passage times of a birth-death chain (up-rate lam, down-rate mu from
 * level 1 up, reflecting at 0): the exact M/M/1/K answer, and the engine of
 * the fluid method, which maps a Brownian buffer onto such a chain.
 *
 * Why the levels add up: the chain is skip-free upwards, so the passage
 * 0 -> n is the sum of the independent passages i -> i+1. Passage i -> i+1
 * waits Exp(lam+mu), then either climbs (done) or falls to i-1 and must climb
 * back twice. That gives, with a = lam+mu, p = lam/a, q = mu/a:
 *   t_i = 1/lam + (mu/lam) t_{i-1}                          (mean)
 *   v_i = (1/a^2 + q v_{i-1} + p q (t_{i-1} + t_i)^2) / p    (variance)
 * and t_0 = 1/lam, v_0 = 1/lam^2. The means sum in closed form.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>

#include "window/window-int.h"

/* Sum_{k=0}^{n-1} (n-k) r^k, r = e^y: lam times the mean passage 0 -> n. */
static double weighted_geometric(double y, double n)
{
	double r = exp(y);

	if (fabs(y * n) < 1e-4) {
		/* Near r = 1 the closed form cancels; three terms of the series are exact to 1e-12.
		 */
		return n * (n + 1) / 2 + y * n * (n * n - 1) / 6 + y * y * n * n * (n * n - 1) / 24;
	}
	if (y < 0) {
		double om = -expm1(y); /* 1 - r */

		return (n * om - r * -expm1(n * y)) / (om * om);
	}
	if (n * y < 700) {
		double rm = expm1(y); /* r - 1 */

		return (r * expm1(n * y) - n * rm) / (rm * rm);
	}
	/* r^n beyond doubles: the leading term, in logs. */
	{
		double l = (n + 1) * y - 2 * log(expm1(y));

		return l > 709 ? INFINITY : exp(l);
	}
}

void bd_moments(double lam, double mu, uint64_t n, struct bd_moments *out)
{
	double a = lam + mu, p = lam / a, q = mu / a;
	double t_prev, v_prev, var;
	uint64_t i, lim;

	out->var_from_limit = 0;
	if (n == 0) {
		out->mean = 0;
		out->var = 0;
		out->sd = 0;
		return;
	}
	if (mu <= 0)
		out->mean = (double)n / lam;
	else
		out->mean = weighted_geometric(log(mu / lam), (double)n) / lam;
	if (!isfinite(out->mean)) {
		out->var = out->sd = INFINITY;
		return;
	}
	t_prev = 1 / lam;
	v_prev = 1 / (lam * lam);
	var = v_prev;
	lim = n < BD_VAR_EXACT_MAX ? n : BD_VAR_EXACT_MAX;
	for (i = 1; i < lim; i++) {
		double t = 1 / lam + (mu / lam) * t_prev;
		double s = t_prev + t;
		double v = (1 / (a * a) + q * v_prev + p * q * s * s) / p;

		var += v;
		t_prev = t;
		v_prev = v;
		if (!(v < 1e290)) {
			/*
			 * Far beyond any horizon: the passage is a rare event, and
			 * rare-event passage times are exponential (sd = mean).
			 */
			out->var = out->mean * out->mean;
			out->sd = out->mean;
			out->var_from_limit = 1;
			return;
		}
	}
	if (i < n) {
		out->var_from_limit = 1;
		if (lam > mu) /* the per-level variance has converged: extrapolate */
			var += (double)(n - i) * v_prev;
		else
			var = out->mean * out->mean;
	}
	out->var = var;
	out->sd = isfinite(var) ? sqrt(var) : out->mean;
}

struct bd_cdf {
	double rate;	  /* uniformization rate lam + mu */
	uint64_t steps;	  /* survival known for k = 0 .. steps */
	int absorbed_all; /* survival reached ~0 before the last step */
	double t_max;
	double *surv; /* surv[k]: P(not yet at n after k jumps of the discrete chain) */
};

struct bd_cdf *bd_cdf_new(double lam, double mu, uint64_t n, double t_max, double work_max)
{
	double rate = lam + mu, p = lam / rate, q = mu / rate;
	double m = rate * t_max;
	double kmax_d = m + 12 * sqrt(m) + 30;
	double work;
	uint64_t kmax, k, hi = 0;
	struct bd_cdf *c;
	double *v, *w;

	if (!(t_max > 0) || n == 0 || kmax_d > (double)(1ULL << 23) || n > (1ULL << 24))
		return NULL;
	kmax = (uint64_t)kmax_d;
	work = kmax <= n ? (double)kmax * (double)kmax / 2
			 : (double)n * (double)kmax - (double)n * (double)n / 2;
	if (work > work_max)
		return NULL;
	c = calloc(1, sizeof(*c));
	v = calloc(n + 1, sizeof(double));
	w = calloc(n + 1, sizeof(double));
	if (c)
		c->surv = malloc((kmax + 1) * sizeof(double));
	if (!c || !v || !w || !c->surv) {
		if (c)
			free(c->surv);
		free(c);
		free(v);
		free(w);
		return NULL;
	}
	c->rate = rate;
	c->t_max = t_max;
	v[0] = 1;
	c->surv[0] = 1;
	for (k = 1; k <= kmax; k++) {
		double total = 0;
		uint64_t j, top = hi + 1 < n ? hi + 1 : n - 1;

		/* w = v P restricted to the levels 0 .. n-1 (level n absorbs). */
		w[0] = q * v[0] + (n > 1 ? q * v[1] : 0);
		for (j = 1; j <= top; j++)
			w[j] = p * v[j - 1] + (j + 1 < n ? q * v[j + 1] : 0);
		for (j = 0; j <= top; j++) {
			v[j] = w[j];
			total += w[j];
		}
		hi = top;
		c->surv[k] = total;
		if (total < 1e-16) {
			c->absorbed_all = 1;
			k++;
			break;
		}
	}
	c->steps = k - 1;
	free(v);
	free(w);
	return c;
}

double bd_cdf_survival(const struct bd_cdf *c, double t)
{
	double m = c->rate * t, sum = 0, lo, lm;
	uint64_t k, k0, k1;

	if (t <= 0)
		return 1;
	/* Poisson(m) weights over +-12 sd around the mode; the rest is < 1e-30. */
	lo = floor(m - 12 * sqrt(m) - 10);
	k0 = lo > 0 ? (uint64_t)lo : 0;
	k1 = (uint64_t)ceil(m + 12 * sqrt(m) + 10);
	lm = log(m > 0 ? m : 1e-300);
	for (k = k0; k <= k1; k++) {
		double s, kd = (double)k;

		if (k > c->steps)
			s = c->absorbed_all ? 0 : c->surv[c->steps];
		else
			s = c->surv[k];
		if (s == 0)
			break; /* survival only decreases */
		sum += exp(-m + kd * lm - lgamma(kd + 1)) * s;
	}
	if (m == 0)
		sum = 1;
	return sum > 1 ? 1 : sum;
}

double bd_cdf_quantile(const struct bd_cdf *c, double p)
{
	double lo = 0, hi = c->t_max;

	if (1 - bd_cdf_survival(c, hi) < p)
		return hi;
	for (int it = 0; it < 80 && hi - lo > 1e-9 * hi; it++) {
		double mid = (lo + hi) / 2;

		if (1 - bd_cdf_survival(c, mid) >= p)
			hi = mid;
		else
			lo = mid;
	}
	return hi;
}

double bd_cdf_tmax(const struct bd_cdf *c)
{
	return c->t_max;
}

void bd_cdf_free(struct bd_cdf *c)
{
	if (!c)
		return;
	free(c->surv);
	free(c);
}
