/* test_predump.c - when iterative pre-dump stops, and how its mode is spelled. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "clonemgr/clonemgr.h"

static struct cm_dump_stats st;

/* st with the passes' pages written, each pass taking pass_us */
static const struct cm_dump_stats *passes(const uint64_t *pages, unsigned n, uint64_t pass_us)
{
	memset(&st, 0, sizeof(st));
	for (unsigned i = 0; i < n; i++) {
		st.passes[i].pages_written = pages[i];
		st.passes[i].us = pass_us;
		st.predump_us += pass_us;
	}
	st.npasses = n;
	return &st;
}

static void no_pass_yet_goes_on(void **state)
{
	struct cm_predump_limits l = {0};
	char why[160] = "";

	(void)state;
	assert_int_equal(cm_predump_stop(&l, passes(NULL, 0, 0), why, sizeof(why)), 0);
}

static void a_small_dirty_set_stops(void **state)
{
	struct cm_predump_limits l = {0};
	const uint64_t p[] = {2560};
	char why[160];

	(void)state;
	assert_int_equal(cm_predump_stop(&l, passes(p, 1, 1000), why, sizeof(why)), 1);
	assert_non_null(strstr(why, "small enough: 2560 pages <= 2560"));
}

static void a_shrinking_dirty_set_goes_on(void **state)
{
	struct cm_predump_limits l = {0};
	const uint64_t p[] = {100000, 60000, 40000};
	char why[160];

	(void)state;
	assert_int_equal(cm_predump_stop(&l, passes(p, 1, 1000), why, sizeof(why)), 0);
	assert_int_equal(cm_predump_stop(&l, passes(p, 2, 1000), why, sizeof(why)), 0);
	assert_int_equal(cm_predump_stop(&l, passes(p, 3, 1000), why, sizeof(why)), 0);
}

static void less_than_ten_percent_fewer_stops(void **state)
{
	struct cm_predump_limits l = {0};
	const uint64_t exactly[] = {100000, 90000}; /* 10 % fewer: goes on */
	const uint64_t barely[] = {100000, 90001};
	const uint64_t grows[] = {50000, 70000};
	char why[160];

	(void)state;
	assert_int_equal(cm_predump_stop(&l, passes(exactly, 2, 1000), why, sizeof(why)), 0);
	assert_int_equal(cm_predump_stop(&l, passes(barely, 2, 1000), why, sizeof(why)), 1);
	assert_non_null(strstr(why, "not shrinking: 90001 pages after 100000"));
	assert_int_equal(cm_predump_stop(&l, passes(grows, 2, 1000), why, sizeof(why)), 1);
}

static void the_pass_and_time_caps_stop(void **state)
{
	struct cm_predump_limits l = {0}, two = {.max_passes = 2}, quick = {.max_total_us = 5000};
	const uint64_t p[] = {1000000, 500000, 250000, 125000, 62500, 31250};
	char why[160];

	(void)state;
	assert_int_equal(cm_predump_stop(&l, passes(p, 4, 1000), why, sizeof(why)), 0);
	assert_int_equal(cm_predump_stop(&l, passes(p, 5, 1000), why, sizeof(why)), 1);
	assert_non_null(strstr(why, "pass cap reached: 5 passes"));
	assert_int_equal(cm_predump_stop(&two, passes(p, 2, 1000), why, sizeof(why)), 1);
	assert_int_equal(cm_predump_stop(&quick, passes(p, 2, 2000), why, sizeof(why)), 0);
	assert_int_equal(cm_predump_stop(&quick, passes(p, 3, 2000), why, sizeof(why)), 1);
	assert_non_null(strstr(why, "time cap reached"));
	/* the default time cap: 30 s */
	assert_int_equal(cm_predump_stop(&l, passes(p, 2, 15000000), why, sizeof(why)), 1);
}

static void modes_parse_and_print(void **state)
{
	enum cm_predump m = CM_PREDUMP_OFF;

	(void)state;
	assert_int_equal(cm_predump_parse("auto", &m), 0);
	assert_int_equal(m, CM_PREDUMP_AUTO);
	assert_int_equal(cm_predump_parse("on", &m), 0);
	assert_int_equal(m, CM_PREDUMP_ON);
	assert_int_equal(cm_predump_parse("off", &m), 0);
	assert_int_equal(m, CM_PREDUMP_OFF);
	assert_int_equal(cm_predump_parse("yes", &m), -EINVAL);
	assert_string_equal(cm_predump_name(CM_PREDUMP_AUTO), "auto");
	assert_string_equal(cm_predump_name(CM_PREDUMP_ON), "on");
	assert_string_equal(cm_predump_name(CM_PREDUMP_OFF), "off");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(no_pass_yet_goes_on),
		cmocka_unit_test(a_small_dirty_set_stops),
		cmocka_unit_test(a_shrinking_dirty_set_goes_on),
		cmocka_unit_test(less_than_ten_percent_fewer_stops),
		cmocka_unit_test(the_pass_and_time_caps_stop),
		cmocka_unit_test(modes_parse_and_print),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
