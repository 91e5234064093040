/* test_governor.c - the budget governor's decisions (tracer-glue/attach.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tracer-glue/attach.h"

#define SEC 1000000000ULL

static void marks_give_hysteresis(void **state)
{
	struct trc_governor g;
	uint64_t t = 10 * SEC;

	(void)state;
	trc_gov_init(&g, 0.70, 0.30, 0, t);
	assert_int_equal(trc_gov_tick(&g, 0.50, -1, t += SEC), TRC_GOV_KEEP);
	assert_int_equal(trc_gov_tick(&g, 0.71, -1, t += SEC), TRC_GOV_LOWER);
	assert_false(g.by_forecast);
	/* between the marks nothing changes, either way */
	assert_int_equal(trc_gov_tick(&g, 0.50, -1, t += SEC), TRC_GOV_KEEP);
	assert_int_equal(trc_gov_tick(&g, 0.29, -1, t += SEC), TRC_GOV_RESTORE);
	assert_int_equal(trc_gov_tick(&g, 0.50, -1, t += SEC), TRC_GOV_KEEP);
	assert_int_equal(g.lowers, 1);
	assert_int_equal(g.restores, 1);
	/* 1 s lowered (from the cut to the tick after it) + 1 s until the restore, of 5 s */
	assert_true(trc_gov_full_share(&g) > 0.59 && trc_gov_full_share(&g) < 0.61);
}

static void forecast_cuts_early_past_the_low_mark(void **state)
{
	struct trc_governor g;
	uint64_t t = 10 * SEC;

	(void)state;
	trc_gov_init(&g, 0.70, 0.30, 5.0, t);
	/* filling fast but still nearly empty: a burst, not a reason to cut */
	assert_int_equal(trc_gov_tick(&g, 0.10, 2.0, t += SEC), TRC_GOV_KEEP);
	/* past the low mark, overflow in 3 s: cut now, not at 70 % */
	assert_int_equal(trc_gov_tick(&g, 0.35, 3.0, t += SEC), TRC_GOV_LOWER);
	assert_true(g.by_forecast);
	/* below the low mark but still forecast to overflow: keep it cut */
	assert_int_equal(trc_gov_tick(&g, 0.25, 4.0, t += SEC), TRC_GOV_KEEP);
	/* draining: restore */
	assert_int_equal(trc_gov_tick(&g, 0.20, -1, t += SEC), TRC_GOV_RESTORE);
	/* overflow far away, above the low mark: keep full detail */
	assert_int_equal(trc_gov_tick(&g, 0.50, 60.0, t += SEC), TRC_GOV_KEEP);
	/* the high mark still cuts whatever the forecast says */
	assert_int_equal(trc_gov_tick(&g, 0.75, -1, t += SEC), TRC_GOV_LOWER);
	assert_false(g.by_forecast);
}

static void horizon_zero_is_marks_only(void **state)
{
	struct trc_governor g;
	uint64_t t = 10 * SEC;

	(void)state;
	trc_gov_init(&g, 0.70, 0.30, 0, t);
	assert_int_equal(trc_gov_tick(&g, 0.60, 0.5, t += SEC), TRC_GOV_KEEP);
	assert_int_equal(trc_gov_tick(&g, 0.80, 0.5, t += SEC), TRC_GOV_LOWER);
	assert_int_equal(trc_gov_tick(&g, 0.20, 0.5, t += SEC), TRC_GOV_RESTORE);
}

static void methods_per_tool(void **state)
{
	char *perf_record[] = {"/usr/bin/perf", "record", "-g", NULL};
	char *perf_trace[] = {"perf", "trace", NULL};
	char *gdb[] = {"gdb", "-p", "1", NULL};
	char *strace[] = {"strace", "-f", NULL};

	(void)state;
	assert_int_equal(trc_gov_method_for(perf_record), TRC_GOV_CONTROL);
	assert_int_equal(trc_gov_method_for(perf_trace), TRC_GOV_RESTART);
	assert_int_equal(trc_gov_method_for(gdb), TRC_GOV_OFF);
	assert_int_equal(trc_gov_method_for(strace), TRC_GOV_RESTART);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(marks_give_hysteresis),
		cmocka_unit_test(forecast_cuts_early_past_the_low_mark),
		cmocka_unit_test(horizon_zero_is_marks_only),
		cmocka_unit_test(methods_per_tool),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
