/*
 * netns.c - enter a network namespace for the span of one socket(2) call.
 *
 * The thread's own namespace is opened once per thread and kept, so each
 * socket costs two setns(2) calls and no open(2).
 */
#define LOG_PREFIX "netns"
#include "common/netns.h"
#include "common/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

static _Thread_local int self_netns = -1;

void netns_thread_exit(void)
{
	if (self_netns >= 0)
		close(self_netns);
	self_netns = -1;
}

int netns_open_pid(int pid)
{
	char path[64];
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/ns/net", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

int netns_run(int netns_fd, int (*fn)(void *arg), void *arg)
{
	int rc;

	if (self_netns < 0) {
		self_netns = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
		if (self_netns < 0)
			return -errno;
	}
	if (setns(netns_fd, CLONE_NEWNET) < 0)
		return -errno;
	rc = fn(arg);
	if (setns(self_netns, CLONE_NEWNET) < 0) {
		/* Staying in a foreign namespace would misroute every later socket. */
		pr_perror("cannot return to own network namespace");
		abort();
	}
	return rc;
}

struct socket_args {
	int domain, type, proto;
};

static int socket_here(void *arg)
{
	struct socket_args *a = arg;
	int fd = socket(a->domain, a->type, a->proto);

	return fd < 0 ? -errno : fd;
}

int netns_socket(int netns_fd, int domain, int type, int proto)
{
	struct socket_args a = {domain, type, proto};

	return netns_run(netns_fd, socket_here, &a);
}

int netns_lo_add_addr(const char *label, const char *addr)
{
	struct ifreq ifr;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ifr.ifr_addr;
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), rc = 0;

	if (fd < 0)
		return -errno;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", label);
	sin->sin_family = AF_INET;
	if (inet_pton(AF_INET, addr, &sin->sin_addr) != 1)
		rc = -EINVAL;
	else if (ioctl(fd, SIOCSIFADDR, &ifr) < 0)
		rc = -errno;
	if (!rc) {
		sin->sin_addr.s_addr = htonl(0xffffffffu);
		ioctl(fd, SIOCSIFNETMASK, &ifr);
	}
	close(fd);
	return rc;
}
