/*
 * mt_counts.c - a multithreaded program whose call counts are known, for
 * checking a function tracer: main calls setup() once and starts THREADS
 * threads; each runs worker(), which calls work() ROUNDS times, and work()
 * calls leaf() LEAVES times. Arguments override the three numbers.
 *
 *   setup 1, worker THREADS, work THREADS*ROUNDS, leaf THREADS*ROUNDS*LEAVES
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

static int rounds = 100, leaves = 10;
static volatile unsigned long sink;

__attribute__((noinline)) static void leaf(int i)
{
	sink += (unsigned long)i;
}

__attribute__((noinline)) static void work(int r)
{
	for (int i = 0; i < leaves; i++)
		leaf(r + i);
}

static void *worker(void *arg)
{
	(void)arg;
	for (int r = 0; r < rounds; r++)
		work(r);
	return NULL;
}

__attribute__((noinline)) static int setup(int argc, char **argv)
{
	int threads = argc > 1 ? atoi(argv[1]) : 4;

	if (argc > 2)
		rounds = atoi(argv[2]);
	if (argc > 3)
		leaves = atoi(argv[3]);
	return threads;
}

int main(int argc, char **argv)
{
	int threads = setup(argc, argv);
	pthread_t tids[64];

	if (threads < 1 || threads > 64)
		return 2;
	for (int i = 0; i < threads; i++)
		if (pthread_create(&tids[i], NULL, worker, NULL) != 0)
			return 1;
	for (int i = 0; i < threads; i++)
		pthread_join(tids[i], NULL);
	printf("threads=%d rounds=%d leaves=%d\n", threads, rounds, leaves);
	return 0;
}
