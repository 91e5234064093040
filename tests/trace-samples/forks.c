/*
 * forks.c - a process that forks CHILDREN children (default 3); each child
 * calls child_work() 100 times and leaves with _exit(), as forked children
 * do; the parent calls parent_work() 50 times and waits for them. A tracer
 * must give each child its own process with all its calls.
 */
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile int sink;

__attribute__((noinline)) static void child_work(int i)
{
	sink += i;
}

__attribute__((noinline)) static void parent_work(int i)
{
	sink -= i;
}

__attribute__((noinline)) static pid_t spawn(void)
{
	pid_t p = fork();

	if (p == 0) {
		for (int i = 0; i < 100; i++)
			child_work(i);
		_exit(0);
	}
	return p;
}

int main(int argc, char **argv)
{
	int children = argc > 1 ? atoi(argv[1]) : 3;

	for (int c = 0; c < children; c++)
		if (spawn() < 0)
			return 1;
	for (int i = 0; i < 50; i++)
		parent_work(i);
	while (wait(NULL) > 0)
		;
	return 0;
}
