/*
 * recurse.c - linear recursion with the same work at every level (walk()
 * calls visit() before recursing and after() once it returns), and a tree
 * recursion (fib) that must not fold as a chain.
 */
#include <stdio.h>
#include <stdlib.h>

static volatile long acc;

__attribute__((noinline)) static void visit(int n)
{
	acc += n;
}

__attribute__((noinline)) static void after(int n)
{
	acc -= n / 2;
}

__attribute__((noinline)) static void walk(int n)
{
	visit(n);
	if (n > 0)
		walk(n - 1);
	after(n);
}

__attribute__((noinline)) static long fib(int n)
{
	return n < 2 ? n : fib(n - 1) + fib(n - 2);
}

int main(int argc, char **argv)
{
	int depth = argc > 1 ? atoi(argv[1]) : 50;

	walk(depth);
	printf("acc=%ld fib=%ld\n", acc, fib(6));
	return 0;
}
