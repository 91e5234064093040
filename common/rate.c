/*
 * rate.c - sliding-window rate counter (see rate.h).
 */
#include "common/rate.h"

void rate_init(struct rate_ctr *r, uint64_t period_ns)
{
	r->period_ns = period_ns ? period_ns : 1000000000ULL;
	r->curr_start = 0;
	r->curr = 0;
	r->prev = 0;
	r->warm = 0;
}

static void rate_rotate(struct rate_ctr *r, uint64_t now_ns)
{
	uint64_t elapsed;

	if (r->curr_start == 0) {
		r->curr_start = now_ns;
		return;
	}
	if (now_ns < r->curr_start)
		return;
	elapsed = now_ns - r->curr_start;
	if (elapsed < r->period_ns)
		return;
	r->warm = 1;
	if (elapsed < 2 * r->period_ns) {
		r->prev = r->curr;
		r->curr_start += r->period_ns;
	} else {
		r->prev = 0;
		r->curr_start = now_ns - (elapsed % r->period_ns);
	}
	r->curr = 0;
}

void rate_add(struct rate_ctr *r, uint64_t now_ns, uint64_t n)
{
	rate_rotate(r, now_ns);
	r->curr += n;
}

double rate_per_sec(const struct rate_ctr *r, uint64_t now_ns)
{
	struct rate_ctr tmp = *r;
	double in_curr, prev_part;

	rate_rotate(&tmp, now_ns);
	if (tmp.curr_start == 0)
		return 0;
	in_curr = (double)(now_ns - tmp.curr_start) / (double)tmp.period_ns;
	if (!tmp.warm) {
		/* First period: nothing before it, so divide by what has elapsed (at
		 * least a tenth of a period, so one early burst does not read as a
		 * huge rate). */
		double span = in_curr < 0.1 ? 0.1 : in_curr;

		return (double)tmp.curr * 1e9 / ((double)tmp.period_ns * span);
	}
	if (in_curr > 1)
		in_curr = 1;
	prev_part = (double)tmp.prev * (1.0 - in_curr);
	return ((double)tmp.curr + prev_part) * 1e9 / (double)tmp.period_ns;
}
