/* test_rate.c - the sliding-window rate counter. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/rate.h"

#define SEC 1000000000ULL
#define MS 1000000ULL

static void steady_rate_is_exact(void **state)
{
	struct rate_ctr r;
	uint64_t t = 1000 * SEC;

	(void)state;
	rate_init(&r, SEC);
	/* 1000 events per second, one every ms, for 5 s. */
	for (int i = 0; i < 5000; i++, t += MS)
		rate_add(&r, t, 1);
	assert_true(rate_per_sec(&r, t) > 990 && rate_per_sec(&r, t) < 1010);
}

static void first_period_divides_by_elapsed(void **state)
{
	struct rate_ctr r;
	uint64_t t0 = 50 * SEC;

	(void)state;
	rate_init(&r, SEC);
	for (int i = 0; i < 500; i++)
		rate_add(&r, t0 + (uint64_t)i * MS, 10); /* 10 per ms = 10000/s for 0.5 s */
	double v = rate_per_sec(&r, t0 + 500 * MS);
	assert_true(v > 9500 && v < 10500);
}

static void rate_decays_when_events_stop(void **state)
{
	struct rate_ctr r;
	uint64_t t = 7 * SEC;

	(void)state;
	rate_init(&r, SEC);
	for (int i = 0; i < 3000; i++, t += MS)
		rate_add(&r, t, 1);
	double mid = rate_per_sec(&r, t + SEC / 2);
	assert_true(mid > 400 && mid < 600); /* half of the last full second left */
	assert_true(rate_per_sec(&r, t + 3 * SEC) == 0);
}

static void empty_counter_reads_zero(void **state)
{
	struct rate_ctr r;

	(void)state;
	rate_init(&r, SEC);
	assert_true(rate_per_sec(&r, 5 * SEC) == 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(steady_rate_is_exact),
		cmocka_unit_test(first_period_divides_by_elapsed),
		cmocka_unit_test(rate_decays_when_events_stop),
		cmocka_unit_test(empty_counter_reads_zero),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
