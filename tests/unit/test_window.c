/*
 * test_window.c - the debug-window model: exact M/M/1/K passage times, the
 * simulator, the fluid model, and that the three agree where they should.
 */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "common/sbuf.h"
#include "window/window-int.h"
#include "window/window.h"

#define assert_near(a, b, rel)                                                       \
	do {                                                                         \
		double a_ = (a), b_ = (b);                                           \
		if (!(fabs(a_ - b_) <= (rel)*fabs(b_)))                              \
			fail_msg("%s = %.9g, expected %.9g (within %g)", #a, a_, b_, \
				 (double)(rel));                                     \
	} while (0)

/* Mean passage 0 -> n summed level by level (t_i = 1/lam + (mu/lam) t_{i-1}). */
static double brute_mean(double lam, double mu, uint64_t n)
{
	double t = 1 / lam, sum = t;

	for (uint64_t i = 1; i < n; i++) {
		t = 1 / lam + (mu / lam) * t;
		sum += t;
	}
	return sum;
}

static void passage_mean_matches_level_sum(void **state)
{
	static const double cases[][3] = {
		{1, 1, 1},    {1, 1, 2},	{2, 1, 10},	     {1, 2, 10},
		{27, 9, 210}, {17, 20, 54},	{10, 10.00001, 500}, {10, 9.99999, 500},
		{5, 4, 3000}, {100, 99, 20000}, {3, 0.1, 7},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct bd_moments m;

		bd_moments(cases[i][0], cases[i][1], (uint64_t)cases[i][2], &m);
		assert_near(m.mean, brute_mean(cases[i][0], cases[i][1], (uint64_t)cases[i][2]),
			    1e-9);
	}
}

static void one_level_is_one_exponential(void **state)
{
	struct bd_moments m;
	struct bd_cdf *c;

	(void)state;
	/* 0 -> 1 is just the first arrival: Exp(lam), whatever mu is. */
	bd_moments(4, 7, 1, &m);
	assert_near(m.mean, 0.25, 1e-12);
	assert_near(m.var, 1.0 / 16, 1e-12);
	c = bd_cdf_new(4, 7, 1, 5, 1e8);
	assert_non_null(c);
	for (double t = 0.05; t < 2; t += 0.25)
		assert_near(bd_cdf_survival(c, t), exp(-4 * t), 1e-9);
	assert_near(bd_cdf_quantile(c, 0.5), log(2) / 4, 1e-6);
	bd_cdf_free(c);
}

static void two_levels_by_hand(void **state)
{
	struct bd_moments m;

	(void)state;
	/*
	 * lam = mu = 1: 0 -> 1 takes Exp(1); 1 -> 2 takes Exp(2) then, half
	 * the time, the whole climb again: t1 = 1/2 + 1/2 (t0 + t1) = 2, so
	 * the mean is 3; v1 = (1/4 + 1/2 v0 + 1/4 (t0 + t1)^2) / (1/2) = 6,
	 * so the variance is 1 + 6 = 7.
	 */
	bd_moments(1, 1, 2, &m);
	assert_near(m.mean, 3, 1e-12);
	assert_near(m.var, 7, 1e-12);
}

static void exact_distribution_mean_matches_moments(void **state)
{
	struct bd_moments m;
	struct bd_cdf *c;
	double mean = 0, dt;

	(void)state;
	/* integral of the survival function = mean */
	bd_moments(27, 18, 60, &m);
	c = bd_cdf_new(27, 18, 60, m.mean + 12 * sqrt(m.var), 1e9);
	assert_non_null(c);
	dt = (m.mean + 12 * sqrt(m.var)) / 20000;
	for (int i = 0; i < 20000; i++)
		mean += dt * (bd_cdf_survival(c, (i + 0.5) * dt));
	assert_near(mean, m.mean, 1e-4);
	bd_cdf_free(c);
}

static void base_params(struct window_params *p, double lam, double mu, double size, double buffer)
{
	window_params_defaults(p);
	p->rate = lam;
	p->service_rate = mu;
	p->msg_size = size;
	p->buffer = buffer;
}

static void auto_picks_exact_for_poisson_and_exponential(void **state)
{
	struct window_params p;
	struct window_result r;
	char err[256];

	(void)state;
	base_params(&p, 27, 9, 19.6, 4096);
	assert_int_equal(window_solve(&p, &r, err, sizeof(err)), 0);
	assert_int_equal(r.method, WINDOW_EXACT);
	assert_int_equal(r.capacity_msgs, 208);
	assert_near(r.rho, 3, 1e-12);
	assert_near(r.mean, brute_mean(27, 9, 210), 1e-9);
	assert_true(r.p10 < r.median && r.median < r.p90);
	assert_true(strstr(r.why, "M/M/1/K") != NULL);
	/* 11.6 s of plain fluid: 4096 B / ((27 - 9) x 19.6 B/s) */
	assert_near(r.fluid_s, 4096 / (18 * 19.6), 1e-12);
}

static void simulation_agrees_with_exact(void **state)
{
	static const double cases[][4] = {
		/* lam, mu, size, buffer */
		{27, 9, 19.6, 4096}, /* rho 3 */
		{17, 14, 20, 1000},  /* rho 1.2 */
		{17, 20, 20, 600},   /* rho 0.85: rare, long */
		{10, 10, 100, 2000}, /* critical */
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct window_params p;
		struct window_result ex, sim;
		char err[256];

		base_params(&p, cases[i][0], cases[i][1], cases[i][2], cases[i][3]);
		assert_int_equal(window_solve(&p, &ex, err, sizeof(err)), 0);
		p.method = WINDOW_SIM;
		p.runs = 4000;
		p.seed = 42 + i;
		p.sim_budget = 400000000ULL;
		assert_int_equal(window_solve(&p, &sim, err, sizeof(err)), 0);
		assert_int_equal(sim.method, WINDOW_SIM);
		assert_int_equal(sim.censored, 0);
		/* 4000 runs: the mean is known to ~1.6 sd/mean/sqrt(4000) < 3 % */
		assert_near(sim.mean, ex.mean, 4 * ex.sd / sqrt(4000) / ex.mean);
		assert_near(sim.median, ex.median, 0.06);
		assert_near(sim.p90, ex.p90, 0.06);
		assert_true(fabs(sim.p_horizon - ex.p_horizon) < 0.03);
	}
}

static void deterministic_queue_overflows_on_schedule(void **state)
{
	struct window_params p;
	struct window_result r;
	char err[256];

	(void)state;
	/*
	 * Arrivals every 0.5 s, 1 s of service each, room for 3 waiting: the
	 * waiting line is 1, 1, 2, 2, 3, 3 after the arrivals at 1 .. 3.5 s,
	 * so the arrival at 4 s is the first that does not fit.
	 */
	base_params(&p, 2, 1, 1, 3);
	p.arrival = WINDOW_ARR_DET;
	p.service = WINDOW_SVC_DET;
	p.runs = 10;
	assert_int_equal(window_solve(&p, &r, err, sizeof(err)), 0);
	assert_int_equal(r.method, WINDOW_SIM);
	assert_near(r.mean, 4.0, 1e-12);
	assert_near(r.p10, 4.0, 1e-12);
	assert_near(r.p90, 4.0, 1e-12);
	assert_near(r.sd + 1, 1, 1e-9);
	assert_near(r.fluid_s, 3.0, 1e-12);
}

static void a_replica_that_keeps_up_never_overflows(void **state)
{
	struct window_params p;
	struct window_result r;
	char err[256];

	(void)state;
	/* Evenly spaced arrivals a server with constant service always clears. */
	base_params(&p, 10, 11, 100, 1000);
	p.arrival = WINDOW_ARR_DET;
	p.service = WINDOW_SVC_DET;
	p.runs = 50;
	p.horizon = 3600;
	assert_int_equal(window_solve(&p, &r, err, sizeof(err)), 0);
	/* Nothing random: one run, which never overflows. */
	assert_int_equal(r.runs, 1);
	assert_int_equal(r.censored, 1);
	assert_true(isinf(r.mean) && isinf(r.median));
	assert_true(r.p_horizon == 0 && !r.p_horizon_is_upper_bound);
	/* Random arrivals with no overflow in any run: a bound, not a zero. */
	base_params(&p, 10, 20, 100, 3000);
	p.service = WINDOW_SVC_DET;
	p.method = WINDOW_SIM;
	p.runs = 50;
	p.horizon = 10;
	p.sim_budget = 1000000;
	assert_int_equal(window_solve(&p, &r, err, sizeof(err)), 0);
	assert_int_equal(r.censored, r.runs);
	assert_true(r.mean_is_lower_bound && r.mean >= r.t_cap && r.t_cap >= 10);
	assert_true(isinf(r.median));
	assert_true(r.p_horizon_is_upper_bound);
	assert_true(r.p_horizon <= 3.0 / r.runs + 1e-12);
	/* Poisson at rho 0.5 with 10 000 requests of room: never, exactly. */
	base_params(&p, 10, 20, 100, 1e6);
	assert_int_equal(window_solve(&p, &r, err, sizeof(err)), 0);
	assert_int_equal(r.method, WINDOW_EXACT);
	assert_true(isinf(r.mean));
	assert_true(r.p_horizon == 0);
}

static void fluid_matches_exact_for_large_buffers(void **state)
{
	static const double rhos[] = {1.05, 1.25, 2.0};

	(void)state;
	for (size_t i = 0; i < sizeof(rhos) / sizeof(rhos[0]); i++) {
		struct window_params p;
		struct window_result ex, fl;
		char err[256];

		base_params(&p, 100 * rhos[i], 100, 50, 50 * 20000.0);
		assert_int_equal(window_solve(&p, &ex, err, sizeof(err)), 0);
		p.method = WINDOW_FLUID;
		assert_int_equal(window_solve(&p, &fl, err, sizeof(err)), 0);
		assert_int_equal(fl.method, WINDOW_FLUID);
		assert_near(fl.mean, ex.mean, 0.005);
		assert_near(fl.sd, ex.sd, 0.05);
		assert_near(fl.median, ex.median, 0.01);
	}
}

static void fluid_near_critical_load_is_close(void **state)
{
	struct window_params p;
	struct window_result ex, fl;
	char err[256];

	(void)state;
	/* rho = 1 and 0.98 with 2000 requests of room: Brownian regime. */
	base_params(&p, 100, 100, 10, 20000);
	assert_int_equal(window_solve(&p, &ex, err, sizeof(err)), 0);
	p.method = WINDOW_FLUID;
	assert_int_equal(window_solve(&p, &fl, err, sizeof(err)), 0);
	assert_near(fl.mean, ex.mean, 0.01);
	assert_near(fl.p90, ex.p90, 0.03);
	base_params(&p, 98, 100, 10, 20000);
	assert_int_equal(window_solve(&p, &ex, err, sizeof(err)), 0);
	p.method = WINDOW_FLUID;
	assert_int_equal(window_solve(&p, &fl, err, sizeof(err)), 0);
	assert_near(fl.mean, ex.mean, 0.10);
}

static void mmpp_variance_rate_matches_two_state_formula(void **state)
{
	struct window_params p;
	char err[256];
	double l1 = 80, l2 = 10, r1 = 1 / 0.5, r2 = 1 / 2.0, mean, idc;

	(void)state;
	window_params_defaults(&p);
	assert_int_equal(
		window_parse_arrival("mmpp:80/0.5,10/2", &p.arrival, &p.mmpp, err, sizeof(err)), 0);
	assert_int_equal(p.arrival, WINDOW_ARR_MMPP);
	mean = (l1 * r2 + l2 * r1) / (r1 + r2);
	assert_near(window_mmpp_rate(&p.mmpp), mean, 1e-12);
	/* The index of dispersion of a two-state MMPP (Fischer and Meier-Hellstern). */
	idc = 1 +
	      2 * r1 * r2 * (l1 - l2) * (l1 - l2) / ((r1 + r2) * (r1 + r2) * (l1 * r2 + l2 * r1));
	assert_near(fluid_arrival_var_rate(&p), mean * idc, 1e-9);
	/* One state is Poisson. */
	assert_int_equal(window_parse_arrival("mmpp:5/1", &p.arrival, &p.mmpp, err, sizeof(err)),
			 0);
	assert_near(fluid_arrival_var_rate(&p), 5, 1e-12);
}

static void bursts_shorten_the_window(void **state)
{
	struct window_params p;
	struct window_result po, mm, fl;
	char err[256];

	(void)state;
	/*
	 * Same mean rate (27.5/s), same replica (30/s, rho 0.92), room for 400
	 * requests: Poisson traffic practically never overflows, bursts of
	 * 80/s do within minutes.
	 */
	base_params(&p, 27.5, 30, 100, 40000);
	assert_int_equal(window_solve(&p, &po, err, sizeof(err)), 0);
	assert_int_equal(
		window_parse_arrival("mmpp:80/0.5,10/1.5", &p.arrival, &p.mmpp, err, sizeof(err)),
		0);
	p.rate = 0;
	p.runs = 1000;
	assert_int_equal(window_solve(&p, &mm, err, sizeof(err)), 0);
	assert_int_equal(mm.method, WINDOW_SIM);
	assert_near(mm.arrival_rate, 27.5, 1e-12);
	assert_true(mm.mean < 1e-3 * po.mean);
	assert_true(mm.mean > 60 && mm.mean < 3600);
	/* The fluid model sees the same bursts through the arrivals' variance rate. */
	p.method = WINDOW_FLUID;
	assert_int_equal(window_solve(&p, &fl, err, sizeof(err)), 0);
	assert_near(fl.mean, mm.mean, 0.12);
}

static void trace_replay_matches_its_process(void **state)
{
	struct window_trace tr;
	struct window_params p;
	struct window_result ex, sim;
	struct window_rng rng;
	char err[256];

	(void)state;
	/* 200 000 recorded Poisson arrivals of 100 bytes replay like Poisson. */
	memset(&tr, 0, sizeof(tr));
	tr.n = 200000;
	tr.gap = malloc(tr.n * sizeof(double));
	tr.size = malloc(tr.n * sizeof(uint32_t));
	assert_non_null(tr.gap);
	assert_non_null(tr.size);
	window_rng_seed(&rng, 9);
	for (uint64_t i = 0; i < tr.n; i++) {
		tr.gap[i] = i ? window_rng_exp(&rng) / 50 : 0;
		tr.size[i] = 100;
		tr.duration += tr.gap[i];
	}
	tr.gap[0] = tr.duration / (double)(tr.n - 1);
	tr.bytes = 100 * tr.n;
	base_params(&p, 50, 40, 100, 5000);
	assert_int_equal(window_solve(&p, &ex, err, sizeof(err)), 0);
	p.arrival = WINDOW_ARR_TRACE;
	p.trace = &tr;
	p.rate = 0;
	p.msg_size = 0;
	p.runs = 2000;
	assert_int_equal(window_solve(&p, &sim, err, sizeof(err)), 0);
	assert_int_equal(sim.method, WINDOW_SIM);
	assert_near(sim.arrival_rate, 50, 0.01);
	assert_near(sim.mean_size, 100, 1e-12);
	assert_near(sim.mean, ex.mean, 0.08);
	/* --rate rescales the recorded times. */
	p.rate = 100;
	assert_int_equal(window_solve(&p, &sim, err, sizeof(err)), 0);
	assert_near(sim.arrival_rate, 100, 1e-12);
	assert_near(sim.rho, 2.5, 1e-12);
	free(tr.gap);
	free(tr.size);
}

static void bad_parameters_are_refused(void **state)
{
	struct window_params p;
	struct window_result r;
	enum window_arrival a;
	struct window_mmpp m;
	char err[256];

	(void)state;
	base_params(&p, 10, 0, 100, 1000);
	assert_int_equal(window_solve(&p, &r, err, sizeof(err)), -EINVAL);
	base_params(&p, 0, 10, 100, 1000);
	assert_int_equal(window_solve(&p, &r, err, sizeof(err)), -EINVAL);
	base_params(&p, 10, 10, 0, 1000);
	assert_int_equal(window_solve(&p, &r, err, sizeof(err)), -EINVAL);
	base_params(&p, 10, 10, 100, 1000);
	p.arrival = WINDOW_ARR_DET;
	p.method = WINDOW_EXACT;
	assert_int_equal(window_solve(&p, &r, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "exact method needs"));
	/* A queue the simulator will not hold in memory. */
	base_params(&p, 10, 10, 1, 1e9);
	p.service = WINDOW_SVC_DET;
	p.method = WINDOW_SIM;
	assert_int_equal(window_solve(&p, &r, err, sizeof(err)), -EINVAL);
	/* ... which auto hands to the fluid model. */
	p.method = WINDOW_AUTO;
	assert_int_equal(window_solve(&p, &r, err, sizeof(err)), 0);
	assert_int_equal(r.method, WINDOW_FLUID);
	assert_int_equal(window_parse_arrival("mmpp:", &a, &m, err, sizeof(err)), -EINVAL);
	assert_int_equal(window_parse_arrival("mmpp:5/0", &a, &m, err, sizeof(err)), -EINVAL);
	assert_int_equal(window_parse_arrival("mmpp:0/1,0/1", &a, &m, err, sizeof(err)), -EINVAL);
	assert_int_equal(window_parse_arrival("mmpp:1/1,2/2,3/3,4/4,5/5,6/6,7/7,8/8,9/9", &a, &m,
					      err, sizeof(err)),
			 -EINVAL);
	assert_int_equal(window_parse_arrival("bursty", &a, &m, err, sizeof(err)), -EINVAL);
}

static void simulation_is_reproducible(void **state)
{
	struct window_params p;
	struct window_result a, b;
	char err[256];

	(void)state;
	base_params(&p, 17, 14, 20, 1000);
	p.method = WINDOW_SIM;
	p.runs = 300;
	p.seed = 7;
	assert_int_equal(window_solve(&p, &a, err, sizeof(err)), 0);
	assert_int_equal(window_solve(&p, &b, err, sizeof(err)), 0);
	assert_true(a.mean == b.mean && a.p90 == b.p90);
	p.seed = 8;
	assert_int_equal(window_solve(&p, &b, err, sizeof(err)), 0);
	assert_true(a.mean != b.mean);
}

static void live_forecast_shares_the_net_inflow(void **state)
{
	struct window_live in = {
		.buffer = 1 << 20,
		.budget = 64 << 20,
		.max_conn_queued = 512 << 10,
		.queued = 1 << 20,
		.backlogged = 2,
		.ingress_bps = 400 << 10,
		.drain_bps = 200 << 10,
	};

	(void)state;
	/* The fullest connection: 512 KiB free at half of 200 KiB/s net: 5.12 s. */
	assert_near(window_live_forecast(&in), 5.12, 1e-12);
	/* A tight budget comes first: 512 KiB free for all at 200 KiB/s: 2.56 s. */
	in.budget = 1.5 * (1 << 20);
	assert_near(window_live_forecast(&in), 2.56, 1e-12);
	in.drain_bps = in.ingress_bps;
	assert_true(isinf(window_live_forecast(&in)));
}

static void sweep_plot_is_svg(void **state)
{
	static struct window_series se[2];
	struct window_plot plot = {"a <title> & more", "slowdown", 600, 2, se};
	struct sbuf sb;
	char err[256];

	(void)state;
	for (unsigned s = 0; s < 2; s++) {
		se[s].buffer = s ? 16384 : 4096;
		for (unsigned i = 0; i < 20; i++) {
			struct window_params p;

			base_params(&p, 27, 27 / (1 + 0.2 * i), 19.6, se[s].buffer);
			se[s].x[i] = 1 + 0.2 * i;
			assert_int_equal(window_solve(&p, &se[s].r[i], err, sizeof(err)), 0);
			se[s].n = i + 1;
		}
	}
	sbuf_init(&sb);
	window_plot_svg(&plot, &sb);
	assert_non_null(strstr(sb.buf, "<svg xmlns=\"http://www.w3.org/2000/svg\""));
	assert_non_null(strstr(sb.buf, "a &lt;title&gt; &amp; more"));
	assert_non_null(strstr(sb.buf, "buffer 16.0 KiB"));
	assert_non_null(strstr(sb.buf, "</svg>\n"));
	assert_null(strstr(sb.buf, "nan"));
	assert_null(strstr(sb.buf, "inf"));
	sbuf_free(&sb);
}

/* doppel window's answers: a sweep is one table per buffer and a chart; a
 * point the model cannot answer stops it, keeping the text so far and
 * dropping a JSON document whole. */
static void query_sweep_tables_and_errors(void **state)
{
	struct window_query q;
	struct sbuf out, svg;
	char err[256];
	const char *row;

	(void)state;
	memset(&q, 0, sizeof(q));
	window_params_defaults(&q.p);
	q.p.rate = 27;
	q.p.msg_size = 19.6;
	q.p.arrival = WINDOW_ARR_DET;
	q.p.service = WINDOW_SVC_DET;
	q.buffers[0] = 4096;
	q.buffers[1] = 16384;
	q.nbuffers = 2;
	q.utilization = 0.5;
	q.sweep = 1;
	q.sw_from = 1;
	q.sw_to = 3;
	q.sw_step = 0.5;
	sbuf_init(&out);
	sbuf_init(&svg);
	assert_int_equal(window_query_run(&q, &out, &svg, err, sizeof(err)), 0);
	assert_non_null(strstr(out.buf, "debug window against slowdown: 27 requests/s (det), "
					"utilization 0.5, 19.6 B per request\n"));
	assert_non_null(strstr(out.buf, "\nbuffer 4.0 KiB\n"));
	assert_non_null(strstr(out.buf, "\nbuffer 16.0 KiB\n"));
	/* slowdown 3 at half utilization: the replica serves 18/s of 27/s */
	row = strstr(out.buf, "       3     1.5 sim ");
	assert_non_null(row);
	assert_non_null(strstr(svg.buf, "<svg"));
	assert_non_null(strstr(svg.buf, "buffer 16.0 KiB"));

	/* the exact method cannot answer evenly spaced arrivals */
	q.p.method = WINDOW_EXACT;
	sbuf_reset(&out);
	assert_int_equal(window_query_run(&q, &out, NULL, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "slowdown 1, buffer 4.0 KiB: the exact method needs"));
	assert_non_null(strstr(out.buf, "SLOWDOWN"));
	assert_null(strstr(out.buf, "P(<=HOR.): overflow within"));
	q.json = 1;
	sbuf_reset(&out);
	assert_int_equal(window_query_run(&q, &out, NULL, err, sizeof(err)), -EINVAL);
	assert_int_equal(out.len, 0);

	/* one answer per buffer, as JSON */
	q.p.method = WINDOW_AUTO;
	q.sweep = 0;
	q.p.service_rate = 18;
	sbuf_reset(&out);
	assert_int_equal(window_query_run(&q, &out, NULL, err, sizeof(err)), 0);
	assert_true(strncmp(out.buf, "{\"results\":[{\"buffer\":4096,", 27) == 0);
	assert_non_null(strstr(out.buf, "},{\"buffer\":16384,"));
	assert_non_null(strstr(out.buf, "\"slowdown\":null"));
	assert_true(out.len > 2 && strcmp(out.buf + out.len - 3, "]}\n") == 0);
	sbuf_free(&out);
	sbuf_free(&svg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(passage_mean_matches_level_sum),
		cmocka_unit_test(one_level_is_one_exponential),
		cmocka_unit_test(two_levels_by_hand),
		cmocka_unit_test(exact_distribution_mean_matches_moments),
		cmocka_unit_test(auto_picks_exact_for_poisson_and_exponential),
		cmocka_unit_test(simulation_agrees_with_exact),
		cmocka_unit_test(deterministic_queue_overflows_on_schedule),
		cmocka_unit_test(a_replica_that_keeps_up_never_overflows),
		cmocka_unit_test(fluid_matches_exact_for_large_buffers),
		cmocka_unit_test(fluid_near_critical_load_is_close),
		cmocka_unit_test(mmpp_variance_rate_matches_two_state_formula),
		cmocka_unit_test(bursts_shorten_the_window),
		cmocka_unit_test(trace_replay_matches_its_process),
		cmocka_unit_test(bad_parameters_are_refused),
		cmocka_unit_test(simulation_is_reproducible),
		cmocka_unit_test(live_forecast_shares_the_net_inflow),
		cmocka_unit_test(sweep_plot_is_svg),
		cmocka_unit_test(query_sweep_tables_and_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
