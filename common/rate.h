/*
 * rate.h - events (or bytes) per second over a sliding one-period window.
 *
 * The HAProxy freq_ctr idea: keep the count of the current period and of the
 * previous one; the rate is the current count plus the part of the previous
 * period that still lies inside the sliding window. Two integers, no history
 * array, exact for steady rates, smooth across period boundaries.
 */
#ifndef DOPPEL_COMMON_RATE_H
#define DOPPEL_COMMON_RATE_H

#include <stdint.h>

struct rate_ctr {
	uint64_t period_ns;  /* window length, e.g. 1 s */
	uint64_t curr_start; /* start of the current period (ns, monotonic) */
	uint64_t curr;
	uint64_t prev;
	int warm; /* a whole period has passed since the first event */
};

void rate_init(struct rate_ctr *r, uint64_t period_ns);
/* Count n events at time now_ns (monotonic, never decreasing). */
void rate_add(struct rate_ctr *r, uint64_t now_ns, uint64_t n);
/* Events per second over the window ending at now_ns. */
double rate_per_sec(const struct rate_ctr *r, uint64_t now_ns);

#endif
