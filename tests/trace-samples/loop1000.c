/*
 * loop1000.c - a loop of 1,000 calls between two other calls: a summariser
 * must fold it into one block of 1,000 (argument: another count).
 */
#include <stdio.h>
#include <stdlib.h>

static volatile long total;

__attribute__((noinline)) static void prepare(void)
{
	total = 0;
}

__attribute__((noinline)) static void step(int i)
{
	total += i;
}

__attribute__((noinline)) static void report(void)
{
	printf("total=%ld\n", total);
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 1000;

	prepare();
	for (int i = 0; i < n; i++)
		step(i);
	report();
	return 0;
}
