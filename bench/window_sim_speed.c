/*
 * window_sim_speed.c - how many arrivals per second the debug-window
 * simulator handles on one core, for each kind of traffic. Prints a table;
 * never passes or fails on timing.
 *
 *   build/bench/window-sim-speed [ARRIVALS]      (default 50 million per row)
 *
 * Each row simulates ARRIVALS arrivals through one queue (restarting after
 * every overflow, as `doppel window` does between runs) and divides by the
 * CPU time of the process.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "window/window.h"

static double cpu_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct row {
	const char *name;
	const char *traffic;
	int det_service;
	double rho;
	double buffer_msgs;
	int traced;
};

int main(int argc, char **argv)
{
	static const struct row rows[] = {
		{"poisson / exp, rho 0.9", "poisson", 0, 0.9, 200, 0},
		{"poisson / exp, rho 1.2", "poisson", 0, 1.2, 5000, 0},
		{"det / exp, rho 1.2", "det", 0, 1.2, 5000, 0},
		{"poisson / det, rho 0.95", "poisson", 1, 0.95, 2000, 0},
		{"mmpp bursts / exp, rho 0.9", "mmpp:1800/0.5,450/1.5", 0, 0.9, 2000, 0},
		{"trace (1M recorded) / exp, rho 1.1", NULL, 0, 1.1, 5000, 1},
	};
	uint64_t n = argc > 1 ? strtoull(argv[1], NULL, 10) : 50000000ULL;
	struct window_trace tr;
	double total_rate = 0;
	unsigned nrows = sizeof(rows) / sizeof(rows[0]);
	char err[256];

	if (n == 0) {
		fprintf(stderr, "usage: window-sim-speed [ARRIVALS]\n");
		return 2;
	}
	/* A synthetic recorded trace: one million Poisson gaps, sizes 50..1500 bytes. */
	memset(&tr, 0, sizeof(tr));
	tr.n = 1000000;
	tr.gap = malloc(tr.n * sizeof(double));
	tr.size = malloc(tr.n * sizeof(uint32_t));
	if (!tr.gap || !tr.size)
		return 1;
	srand(7);
	for (uint64_t i = 0; i < tr.n; i++) {
		double u = ((double)rand() + 1) / ((double)RAND_MAX + 2);

		tr.gap[i] = i ? -__builtin_log(u) / 600.0 : 1 / 600.0;
		tr.size[i] = 50 + (uint32_t)(rand() % 1451);
		tr.duration += i ? tr.gap[i] : 0;
		tr.bytes += tr.size[i];
	}
	tr.format = "synthetic";

	printf("debug-window simulator speed, %llu arrivals per row, one core\n\n",
	       (unsigned long long)n);
	printf("%-36s %12s %10s %16s\n", "TRAFFIC / SERVICE", "OVERFLOWS", "CPU S", "ARRIVALS/S");
	for (unsigned i = 0; i < nrows; i++) {
		struct window_params p;
		uint64_t overflows = 0;
		double t0, dt;

		window_params_defaults(&p);
		if (rows[i].traced) {
			p.arrival = WINDOW_ARR_TRACE;
			p.trace = &tr;
			p.rate = 0;
			p.buffer = rows[i].buffer_msgs * 775;
		} else {
			if (window_parse_arrival(rows[i].traffic, &p.arrival, &p.mmpp, err,
						 sizeof(err))) {
				fprintf(stderr, "%s\n", err);
				return 1;
			}
			p.rate = p.arrival == WINDOW_ARR_MMPP ? window_mmpp_rate(&p.mmpp) : 1000;
			p.msg_size = 100;
			p.buffer = rows[i].buffer_msgs * 100;
		}
		{
			double lam =
				p.arrival == WINDOW_ARR_TRACE ? window_trace_rate(&tr) : p.rate;

			p.service_rate = lam / rows[i].rho;
		}
		p.service = rows[i].det_service ? WINDOW_SVC_DET : WINDOW_SVC_EXP;
		t0 = cpu_now();
		if (window_sim_throughput(&p, n, &overflows, err, sizeof(err)) < 0) {
			fprintf(stderr, "%s: %s\n", rows[i].name, err);
			return 1;
		}
		dt = cpu_now() - t0;
		total_rate += (double)n / dt;
		printf("%-36s %12llu %10.2f %16.3g\n", rows[i].name, (unsigned long long)overflows,
		       dt, (double)n / dt);
	}
	printf("\nmean over rows: %.3g simulated arrivals per second (target: 1e7)\n",
	       total_rate / nrows);
	free(tr.gap);
	free(tr.size);
	return 0;
}
