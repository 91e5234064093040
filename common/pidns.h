/*
 * pidns.h - the processes of a pid namespace, seen from the host.
 */
#ifndef DOPPEL_COMMON_PIDNS_H
#define DOPPEL_COMMON_PIDNS_H

#include <sys/types.h>

/*
 * Host pids of every process in the pid namespace whose init is init_pid,
 * init first. Returns the count (<= max) or -errno.
 */
int pidns_pids(pid_t init_pid, pid_t *pids, unsigned max);

/*
 * Set the nice value of every thread of every process in that namespace.
 * Returns the number of threads changed, or -errno.
 */
int pidns_renice(pid_t init_pid, int nice);

#endif
