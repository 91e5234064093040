/* test_forecast.c - the live debug-window forecast. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "window/window.h"

static void filling_buffer_forecasts_free_over_net_rate(void **state)
{
	(void)state;
	/* 4 MiB free, 1 MiB/s in, 0.5 MiB/s out: 8 s. */
	assert_true(fabs(window_forecast(4 << 20, 1 << 20, 512 << 10) - 8.0) < 1e-9);
}

static void draining_or_steady_buffer_never_overflows(void **state)
{
	(void)state;
	assert_true(isinf(window_forecast(1000, 500, 500)));
	assert_true(isinf(window_forecast(1000, 100, 500)));
	assert_true(isinf(window_forecast(1000, 0, 0)));
}

static void full_buffer_has_no_time_left(void **state)
{
	(void)state;
	assert_true(window_forecast(0, 1000, 0) == 0);
	assert_true(window_forecast(-5, 1000, 0) == 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(filling_buffer_forecasts_free_over_net_rate),
		cmocka_unit_test(draining_or_steady_buffer_never_overflows),
		cmocka_unit_test(full_buffer_has_no_time_left),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
