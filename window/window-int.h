/*
 * window-int.h - what the files of window/ share: the birth-death passage
 * times behind the exact and fluid methods, distribution helpers, the random
 * number generator and the simulator. Private to window/.
 */
#ifndef DOPPEL_WINDOW_INT_H
#define DOPPEL_WINDOW_INT_H

#include <math.h>
#include <stdint.h>

#include "window/window.h"

/* ---- birth-death chains (bd.c) ----
 *
 * The number of requests waiting or in service moves up at rate lam (an
 * arrival) and down at rate mu (a departure, from level 1 up). The time to
 * climb from 0 to level n is a sum of independent passages i -> i+1, so its
 * mean and variance add up level by level.
 */
struct bd_moments {
	double mean, var;   /* seconds, seconds^2; INFINITY when beyond doubles */
	double sd;	    /* finite even when var is not (sd = mean for rare events) */
	int var_from_limit; /* variance from an asymptotic form (n too large to sum) */
};

/* Levels up to which the variance is summed exactly. */
#define BD_VAR_EXACT_MAX 50000000ULL

void bd_moments(double lam, double mu, uint64_t n, struct bd_moments *out);

/*
 * The distribution of the passage 0 -> n by uniformization: the survival
 * P(T > t) is a Poisson mixture of the discrete chain's survival after k
 * steps. bd_cdf_new() returns NULL when the work (steps times levels) would
 * pass work_max; then callers fall back to a fitted distribution.
 */
struct bd_cdf;
struct bd_cdf *bd_cdf_new(double lam, double mu, uint64_t n, double t_max, double work_max);
double bd_cdf_survival(const struct bd_cdf *c, double t);
/* Smallest t with P(T <= t) >= p (bisection on the survival). */
double bd_cdf_quantile(const struct bd_cdf *c, double p);
/* The time up to which the survival was computed. */
double bd_cdf_tmax(const struct bd_cdf *c);
void bd_cdf_free(struct bd_cdf *c);

/* ---- fitted distributions (dist.c) ---- */

/* Regularized lower incomplete gamma P(a, x). */
double dist_gamma_p(double a, double x);
/* p-quantile and CDF of the gamma distribution with this mean and standard deviation. */
double dist_gamma_quantile(double mean, double sd, double p);
double dist_gamma_cdf(double mean, double sd, double t);

/* ---- random numbers (rng.h style, inline for the simulator's hot loop) ---- */

struct window_rng {
	uint64_t s[4];
};

void window_rng_seed(struct window_rng *r, uint64_t seed);

static inline uint64_t window_rng_next(struct window_rng *r)
{
	/* xoshiro256+ : fast, and its low bits are not used. */
	uint64_t *s = r->s;
	uint64_t res = s[0] + s[3];
	uint64_t t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = (s[3] << 45) | (s[3] >> 19);
	return res;
}

/* Uniform in (0, 1]: never 0, so -log() is finite. */
static inline double window_rng_u01(struct window_rng *r)
{
	return ((double)(window_rng_next(r) >> 11) + 1.0) * (1.0 / 9007199254740992.0);
}

/* Exponential with mean 1. */
static inline double window_rng_exp(struct window_rng *r)
{
	return -log(window_rng_u01(r));
}

/* ---- simulation (sim.c) ---- */

struct sim_summary {
	unsigned runs, censored;
	double *times; /* overflow times of uncensored runs, sorted (caller frees) */
	unsigned ntimes;
	uint64_t arrivals;
	double t_cap;
	double cpu_s;
};

/* Run p->runs simulations, each until the first overflow or t_cap seconds. */
int sim_run(const struct window_params *p, unsigned runs, double t_cap, struct sim_summary *out,
	    char *err, size_t errlen);

/* Requests that can wait at most (the simulator's queue size), or 0 if unbounded. */
uint64_t sim_queue_need(const struct window_params *p);
#define SIM_QUEUE_MAX (1ULL << 22)

/* ---- fluid/diffusion (fluid.c) ---- */

/* Arrival variance rate: variance of requests arrived by t, per second, as t grows. */
double fluid_arrival_var_rate(const struct window_params *p);

int fluid_solve(const struct window_params *p, double level, struct window_result *r);

#endif
