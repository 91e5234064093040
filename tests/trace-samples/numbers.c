/*
 * numbers.c - sums its integer arguments, with a bug on one input path: a
 * negative odd number goes through negate_odd(), which is off by one. The
 * program checks its result against a reference computation and exits 1 when
 * they differ, so a run fails exactly when that path is taken.
 *
 * Paths: parse() -> classify() -> add_positive() | add_zero() | add_negative(),
 * and add_negative() -> negate_even() | negate_odd() (the bug).
 */
#include <stdio.h>
#include <stdlib.h>

static long sum;

__attribute__((noinline)) static long parse(const char *s)
{
	return strtol(s, NULL, 10);
}

__attribute__((noinline)) static void add_positive(long v)
{
	sum += v;
}

__attribute__((noinline)) static void add_zero(long v)
{
	(void)v;
}

__attribute__((noinline)) static long negate_even(long v)
{
	return -v;
}

__attribute__((noinline)) static long negate_odd(long v)
{
	return -v + 1; /* the bug */
}

__attribute__((noinline)) static void add_negative(long v)
{
	long m = (v % 2 == 0) ? negate_even(v) : negate_odd(v);

	sum -= m;
}

__attribute__((noinline)) static void classify(long v)
{
	if (v > 0)
		add_positive(v);
	else if (v == 0)
		add_zero(v);
	else
		add_negative(v);
}

__attribute__((noinline)) static int check(long expect)
{
	return sum == expect ? 0 : -1;
}

int main(int argc, char **argv)
{
	long expect = 0;

	for (int i = 1; i < argc; i++) {
		long v = parse(argv[i]);

		expect += v;
		classify(v);
	}
	if (check(expect) < 0) {
		printf("wrong sum %ld, expected %ld\n", sum, expect);
		return 1;
	}
	printf("sum %ld\n", sum);
	return 0;
}
