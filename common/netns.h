/*
 * netns.h - sockets inside another network namespace, without veth or NAT.
 *
 * A socket belongs to the network namespace it was created in, for its whole
 * life. So to reach a service listening on 127.0.0.1:PORT inside a clone's
 * namespace, doppel enters that namespace on the calling thread (setns),
 * creates the socket, and returns to its own namespace; the socket can then be
 * used from anywhere in the process.
 */
#ifndef DOPPEL_COMMON_NETNS_H
#define DOPPEL_COMMON_NETNS_H

/* Open /proc/PID/ns/net (O_CLOEXEC). Returns the fd or -errno. */
int netns_open_pid(int pid);

/*
 * Run fn(arg) on the calling thread inside the network namespace netns_fd and
 * come back. Returns fn's result, or -errno if the namespace cannot be entered.
 */
int netns_run(int netns_fd, int (*fn)(void *arg), void *arg);
/* A thread that used netns_run is about to end: close its handle on its own namespace. */
void netns_thread_exit(void);

/*
 * socket(domain, type, proto) created inside the network namespace netns_fd.
 * Returns the fd or -errno. The calling thread is back in its own namespace
 * when this returns, also on failure.
 */
int netns_socket(int netns_fd, int domain, int type, int proto);

/*
 * Give the loopback of the calling thread's network namespace the IPv4
 * address addr/32 under the alias label ("lo:1"; one address per label), so
 * that a clone can listen on, and connect to, an address its host had on
 * another interface. No syscalls beyond socket/ioctl/close: safe in a fork
 * of a threaded process. 0 or -errno.
 */
int netns_lo_add_addr(const char *label, const char *addr);

#endif
