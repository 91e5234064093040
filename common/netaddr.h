/*
 * netaddr.h - TCP endpoints as given on the command line ("127.0.0.1:8080",
 * "[::1]:8080", "localhost:8080") and the socket helpers built on them.
 *
 * An endpoint may live in another network namespace (a clone's): netns_fd is
 * then an open /proc/PID/ns/net (owned by whoever filled the struct), and
 * sockets for it are created inside that namespace (see netns.h).
 */
#ifndef DOPPEL_COMMON_NETADDR_H
#define DOPPEL_COMMON_NETADDR_H

#include <stddef.h>
#include <sys/socket.h>

#define NETADDR_TEXT_MAX 80

struct net_endpoint {
	struct sockaddr_storage ss;
	socklen_t len;
	int netns_fd; /* -1: the caller's own network namespace */
	char text[NETADDR_TEXT_MAX];
};

/*
 * Parse "HOST:PORT" (HOST may be a name, an IPv4 or a bracketed IPv6 address).
 * Returns 0 or -EINVAL with a sentence in err.
 */
int netaddr_parse(const char *text, struct net_endpoint *out, char *err, size_t errlen);

/* "127.0.0.1:8080" / "[::1]:8080" from a sockaddr. */
void netaddr_format(const struct sockaddr *sa, socklen_t len, char *buf, size_t buflen);

/*
 * Create a non-blocking TCP listener on ep (SO_REUSEADDR, optionally
 * SO_REUSEPORT). Returns the fd, or -errno with a sentence (cause and fix) in err.
 */
int netaddr_listen(const struct net_endpoint *ep, int backlog, int reuseport, char *err,
		   size_t errlen);

/*
 * Start a non-blocking connect to ep (TCP_NODELAY set). Returns the fd (the
 * connect may still be in progress) or -errno.
 */
int netaddr_connect(const struct net_endpoint *ep);

#endif
