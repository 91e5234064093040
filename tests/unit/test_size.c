/* test_size.c - sizes and durations as written on a command line. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/size.h"

static void sizes_with_suffixes(void **state)
{
	uint64_t v;

	(void)state;
	assert_int_equal(size_parse("4M", &v), 0);
	assert_int_equal(v, 4ULL << 20);
	assert_int_equal(size_parse("64K", &v), 0);
	assert_int_equal(v, 64ULL << 10);
	assert_int_equal(size_parse("1G", &v), 0);
	assert_int_equal(v, 1ULL << 30);
	assert_int_equal(size_parse("2MiB", &v), 0);
	assert_int_equal(v, 2ULL << 20);
	assert_int_equal(size_parse("3mb", &v), 0);
	assert_int_equal(v, 3ULL << 20);
	assert_int_equal(size_parse("512", &v), 0);
	assert_int_equal(v, 512);
	assert_int_equal(size_parse("100B", &v), 0);
	assert_int_equal(v, 100);
	assert_int_equal(size_parse("1.5K", &v), 0);
	assert_int_equal(v, 1536);
}

static void bad_sizes_are_refused(void **state)
{
	uint64_t v = 77;

	(void)state;
	assert_int_equal(size_parse("", &v), -EINVAL);
	assert_int_equal(size_parse("M", &v), -EINVAL);
	assert_int_equal(size_parse("-4M", &v), -EINVAL);
	assert_int_equal(size_parse("4X", &v), -EINVAL);
	assert_int_equal(size_parse("4MM", &v), -EINVAL);
	assert_int_equal(size_parse(" 4M", &v), -EINVAL);
	assert_int_equal(size_parse("0x10", &v), -EINVAL);
	assert_int_equal(size_parse("1e3", &v), -EINVAL);
	assert_int_equal(size_parse("0.3", &v), -EINVAL); /* fractional bytes */
	assert_int_equal(size_parse("99999999999T", &v), -ERANGE);
	assert_int_equal(v, 77); /* untouched on error */
}

static void durations(void **state)
{
	uint64_t ns;

	(void)state;
	assert_int_equal(duration_parse("250ms", &ns), 0);
	assert_int_equal(ns, 250000000ULL);
	assert_int_equal(duration_parse("2", &ns), 0);
	assert_int_equal(ns, 2000000000ULL);
	assert_int_equal(duration_parse("1.5s", &ns), 0);
	assert_int_equal(ns, 1500000000ULL);
	assert_int_equal(duration_parse("3m", &ns), 0);
	assert_int_equal(ns, 180000000000ULL);
	assert_int_equal(duration_parse("100us", &ns), 0);
	assert_int_equal(ns, 100000ULL);
	assert_int_equal(duration_parse("10x", &ns), -EINVAL);
	assert_int_equal(duration_parse("ms", &ns), -EINVAL);
}

static void formatting(void **state)
{
	char buf[32];

	(void)state;
	assert_string_equal(size_format(512, buf, sizeof(buf)), "512 B");
	assert_string_equal(size_format(4ULL << 20, buf, sizeof(buf)), "4.0 MiB");
	assert_string_equal(size_format(1536, buf, sizeof(buf)), "1.5 KiB");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(sizes_with_suffixes),
		cmocka_unit_test(bad_sizes_are_refused),
		cmocka_unit_test(durations),
		cmocka_unit_test(formatting),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
