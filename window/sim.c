/*
 * sim.c - discrete-event simulation of one replica's buffer.
 *
 * A FIFO single server needs no event list: request j starts service at
 * start_j = max(arrival_j, end_{j-1}) and ends at start_j + service_j
 * (Lindley). The requests *waiting* when request n arrives are those with
 * start_j > arrival_n; they sit in a ring in start order, so each arrival pops
 * the ones whose service has begun and pushes itself if it has to wait. The
 * first arrival that has to wait and finds its bytes would not fit is the
 * overflow. Each arrival costs two random numbers and O(1) ring work; there is
 * nothing else to do, which is how the simulator reaches tens of millions of
 * arrivals per second.
 *
 * The ring holds at most the requests that fit in the buffer (plus one), so
 * memory is bounded by the question asked, and capped at SIM_QUEUE_MAX.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "window/window-int.h"

void window_rng_seed(struct window_rng *r, uint64_t seed)
{
	/* splitmix64 spreads any seed (even 0) over the whole state. */
	for (int i = 0; i < 4; i++) {
		uint64_t z = (seed += 0x9e3779b97f4a7c15ULL);

		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
		z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
		r->s[i] = z ^ (z >> 31);
	}
}

struct sim {
	const struct window_params *p;
	struct window_rng rng;
	/* arrivals */
	enum window_arrival kind;
	double mean_gap;
	unsigned mm_state;
	double mm_left; /* seconds left in the current MMPP state */
	const double *tr_gap;
	const uint32_t *tr_size;
	uint64_t tr_n, tr_i;
	double tr_scale;
	/* service */
	int svc_exp;
	double svc_mean;
	/* buffer: fixed-size requests count, traced ones count bytes */
	int fixed;
	uint64_t cap_msgs;  /* fixed: requests that fit */
	uint64_t cap_bytes; /* traced: bytes that fit */
	double *ring_start;
	uint32_t *ring_size;
	uint64_t ring_mask;
};

uint64_t sim_queue_need(const struct window_params *p)
{
	double need;

	if (p->msg_size > 0) {
		need = floor(p->buffer / p->msg_size) + 2;
	} else {
		uint32_t smallest = UINT32_MAX;

		for (uint64_t i = 0; p->trace && i < p->trace->n; i++)
			if (p->trace->size[i] && p->trace->size[i] < smallest)
				smallest = p->trace->size[i];
		if (smallest == UINT32_MAX)
			smallest = 1;
		need = floor(p->buffer / smallest) + 2;
	}
	return need > (double)(1ULL << 62) ? (1ULL << 62) : (uint64_t)need;
}

static int sim_init(struct sim *s, const struct window_params *p, char *err, size_t errlen)
{
	uint64_t need = sim_queue_need(p), cap = 1;

	memset(s, 0, sizeof(*s));
	s->p = p;
	window_rng_seed(&s->rng, p->seed);
	s->kind = p->arrival;
	switch (p->arrival) {
	case WINDOW_ARR_POISSON:
	case WINDOW_ARR_DET:
		s->mean_gap = 1 / p->rate;
		break;
	case WINDOW_ARR_MMPP: {
		double tot = 0, u;

		/* Start in state i with its time share (the chain is stationary). */
		for (unsigned i = 0; i < p->mmpp.n; i++)
			tot += p->mmpp.dwell[i];
		u = window_rng_u01(&s->rng) * tot;
		for (s->mm_state = 0; s->mm_state + 1 < p->mmpp.n; s->mm_state++) {
			if (u <= p->mmpp.dwell[s->mm_state])
				break;
			u -= p->mmpp.dwell[s->mm_state];
		}
		s->mm_left = window_rng_exp(&s->rng) * p->mmpp.dwell[s->mm_state];
		break;
	}
	case WINDOW_ARR_TRACE: {
		double tr_rate = window_trace_rate(p->trace);

		if (!p->trace || p->trace->n < 2 || !(tr_rate > 0)) {
			snprintf(err, errlen,
				 "the trace needs at least two arrivals at distinct times");
			return -EINVAL;
		}
		s->tr_gap = p->trace->gap;
		s->tr_size = p->trace->size;
		s->tr_n = p->trace->n;
		s->tr_scale = p->rate > 0 ? tr_rate / p->rate : 1;
		break;
	}
	}
	s->svc_exp = p->service == WINDOW_SVC_EXP;
	s->svc_mean = 1 / p->service_rate;
	s->fixed = p->msg_size > 0;
	if (s->fixed)
		s->cap_msgs = (uint64_t)floor(p->buffer / p->msg_size);
	else
		s->cap_bytes = (uint64_t)floor(p->buffer);
	if (need > SIM_QUEUE_MAX) {
		snprintf(
			err, errlen,
			"the buffer holds up to %llu requests; the simulator keeps at most %llu in "
			"memory (use the fluid method for buffers this large)",
			(unsigned long long)need, (unsigned long long)SIM_QUEUE_MAX);
		return -EINVAL;
	}
	while (cap < need)
		cap <<= 1;
	s->ring_mask = cap - 1;
	s->ring_start = malloc(cap * sizeof(double));
	if (!s->fixed)
		s->ring_size = malloc(cap * sizeof(uint32_t));
	if (!s->ring_start || (!s->fixed && !s->ring_size)) {
		free(s->ring_start);
		free(s->ring_size);
		snprintf(err, errlen, "out of memory for a queue of %llu requests",
			 (unsigned long long)cap);
		return -ENOMEM;
	}
	return 0;
}

static void sim_destroy(struct sim *s)
{
	free(s->ring_start);
	free(s->ring_size);
}

static inline double mmpp_gap(struct sim *s)
{
	const struct window_mmpp *m = &s->p->mmpp;
	double acc = 0;

	for (;;) {
		double lam = m->rate[s->mm_state];
		double e = lam > 0 ? window_rng_exp(&s->rng) / lam : INFINITY;

		if (e < s->mm_left) {
			s->mm_left -= e;
			return acc + e;
		}
		acc += s->mm_left;
		s->mm_state = s->mm_state + 1 < m->n ? s->mm_state + 1 : 0;
		s->mm_left = window_rng_exp(&s->rng) * m->dwell[s->mm_state];
	}
}

/*
 * One run from an empty buffer. Returns the time of the first overflow, or a
 * negative value when t_cap (or max_arrivals) came first.
 */
static double sim_one(struct sim *s, double t_cap, uint64_t max_arrivals, uint64_t *arrivals)
{
	const uint64_t mask = s->ring_mask;
	double *ring = s->ring_start;
	double t = 0, free_at = 0;
	uint64_t head = 0, tail = 0, n = 0, qbytes = 0;
	int fixed = s->fixed;

	if (s->kind == WINDOW_ARR_TRACE) {
		if (s->p->trace_from_start) {
			/* The first arrival lands at 0: start just before index 0. */
			s->tr_i = s->tr_n - 1;
			t = -s->tr_gap[0] * s->tr_scale;
		} else {
			s->tr_i = (uint64_t)(window_rng_u01(&s->rng) * (double)s->tr_n) % s->tr_n;
		}
	}
	for (;;) {
		double st, svc;
		uint32_t size = 0;

		switch (s->kind) {
		case WINDOW_ARR_POISSON:
			t += window_rng_exp(&s->rng) * s->mean_gap;
			break;
		case WINDOW_ARR_DET:
			t += s->mean_gap;
			break;
		case WINDOW_ARR_MMPP:
			t += mmpp_gap(s);
			break;
		case WINDOW_ARR_TRACE:
			if (++s->tr_i == s->tr_n)
				s->tr_i = 0; /* wrap: gap[0] is the trace's mean gap */
			t += s->tr_gap[s->tr_i] * s->tr_scale;
			size = s->tr_size[s->tr_i];
			break;
		}
		if (t > t_cap || n >= max_arrivals) {
			*arrivals += n;
			return -1;
		}
		n++;
		/* Requests whose service has begun have left the buffer. */
		if (fixed) {
			while (head != tail && ring[head & mask] <= t)
				head++;
		} else {
			while (head != tail && ring[head & mask] <= t) {
				qbytes -= s->ring_size[head & mask];
				head++;
			}
		}
		svc = s->svc_exp ? window_rng_exp(&s->rng) * s->svc_mean : s->svc_mean;
		st = free_at > t ? free_at : t;
		free_at = st + svc;
		if (st > t) {
			/* It has to wait: does it fit? */
			if (fixed ? tail - head >= s->cap_msgs : qbytes + size > s->cap_bytes) {
				*arrivals += n;
				return t;
			}
			ring[tail & mask] = st;
			if (!fixed) {
				s->ring_size[tail & mask] = size;
				qbytes += size;
			}
			tail++;
		}
	}
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double cpu_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int sim_run(const struct window_params *p, unsigned runs, double t_cap, struct sim_summary *out,
	    char *err, size_t errlen)
{
	struct sim s;
	double c0 = cpu_seconds();
	/* Arrivals per run are bounded too, so a run never outlives its budget. */
	double per_run = p->rate * t_cap * 2 + 1e6;
	uint64_t max_arr = per_run > 1e18 ? (uint64_t)1e18 : (uint64_t)per_run;
	int rc;

	memset(out, 0, sizeof(*out));
	if (runs == 0)
		runs = 1;
	rc = sim_init(&s, p, err, errlen);
	if (rc < 0)
		return rc;
	out->times = malloc(runs * sizeof(double));
	if (!out->times) {
		sim_destroy(&s);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	out->runs = runs;
	out->t_cap = t_cap;
	for (unsigned r = 0; r < runs; r++) {
		double t = sim_one(&s, t_cap, max_arr, &out->arrivals);

		if (t < 0)
			out->censored++;
		else
			out->times[out->ntimes++] = t;
	}
	qsort(out->times, out->ntimes, sizeof(double), cmp_double);
	out->cpu_s = cpu_seconds() - c0;
	sim_destroy(&s);
	return 0;
}

int window_sim_throughput(const struct window_params *p, uint64_t arrivals, uint64_t *overflows,
			  char *err, size_t errlen)
{
	struct sim s;
	uint64_t done = 0;
	int rc = sim_init(&s, p, err, errlen);

	if (rc < 0)
		return rc;
	*overflows = 0;
	while (done < arrivals) {
		uint64_t n = 0;
		double t = sim_one(&s, INFINITY, arrivals - done, &n);

		done += n;
		if (t >= 0)
			(*overflows)++;
		if (n == 0)
			break;
	}
	sim_destroy(&s);
	return 0;
}
