/*
 * pidns.c - walk /proc for the processes (and threads) of a pid namespace.
 */
#include "common/pidns.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>

#define MAX_PIDS 4096

static int pidns_ino(pid_t pid, ino_t *ino)
{
	char path[64];
	struct stat st;

	snprintf(path, sizeof(path), "/proc/%d/ns/pid", pid);
	if (stat(path, &st) < 0)
		return -errno;
	*ino = st.st_ino;
	return 0;
}

int pidns_pids(pid_t init_pid, pid_t *pids, unsigned max)
{
	ino_t want, ino;
	DIR *d;
	struct dirent *de;
	unsigned n = 0;
	int rc = pidns_ino(init_pid, &want);

	if (rc)
		return rc;
	if (max == 0)
		return 0;
	pids[n++] = init_pid;
	d = opendir("/proc");
	if (!d)
		return -errno;
	while ((de = readdir(d)) && n < max) {
		char *end;
		long p = strtol(de->d_name, &end, 10);

		if (*end || p <= 0 || p == init_pid)
			continue;
		if (pidns_ino((pid_t)p, &ino) == 0 && ino == want)
			pids[n++] = (pid_t)p;
	}
	closedir(d);
	return (int)n;
}

int pidns_renice(pid_t init_pid, int nice)
{
	pid_t *pids = malloc(MAX_PIDS * sizeof(*pids));
	int n, changed = 0;

	if (!pids)
		return -ENOMEM;
	n = pidns_pids(init_pid, pids, MAX_PIDS);
	for (int i = 0; i < n; i++) {
		char path[64];
		struct dirent *de;
		DIR *d;

		/* nice is per thread: every task of the process */
		snprintf(path, sizeof(path), "/proc/%d/task", pids[i]);
		d = opendir(path);
		if (!d)
			continue;
		while ((de = readdir(d))) {
			long tid = strtol(de->d_name, NULL, 10);

			if (tid > 0 && setpriority(PRIO_PROCESS, (id_t)tid, nice) == 0)
				changed++;
		}
		closedir(d);
	}
	free(pids);
	return n < 0 ? n : changed;
}
