/*
 * netaddr.c - endpoint parsing and the socket calls every module needs.
 */
#include "common/netaddr.h"
#include "common/netns.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int netaddr_parse(const char *text, struct net_endpoint *out, char *err, size_t errlen)
{
	char host[256];
	const char *port, *colon;
	struct addrinfo hints, *res = NULL;
	size_t hlen;
	char *end;
	long pnum;
	int rc;

	memset(out, 0, sizeof(*out));
	out->netns_fd = -1;
	if (!text || !*text) {
		snprintf(err, errlen, "empty address: expected HOST:PORT, e.g. 127.0.0.1:8080");
		return -EINVAL;
	}
	if (text[0] == '[') {
		const char *rb = strchr(text, ']');

		if (!rb || rb[1] != ':') {
			snprintf(err, errlen,
				 "bad address '%s': expected [IPV6]:PORT, e.g. [::1]:8080", text);
			return -EINVAL;
		}
		hlen = (size_t)(rb - text - 1);
		if (hlen >= sizeof(host))
			goto toolong;
		memcpy(host, text + 1, hlen);
		host[hlen] = '\0';
		port = rb + 2;
	} else {
		colon = strrchr(text, ':');
		if (!colon) {
			snprintf(err, errlen,
				 "bad address '%s': missing port, expected HOST:PORT, e.g. "
				 "127.0.0.1:8080",
				 text);
			return -EINVAL;
		}
		hlen = (size_t)(colon - text);
		if (hlen >= sizeof(host))
			goto toolong;
		memcpy(host, text, hlen);
		host[hlen] = '\0';
		if (strchr(host, ':')) {
			snprintf(err, errlen,
				 "bad address '%s': write IPv6 addresses in brackets, e.g. "
				 "[::1]:8080",
				 text);
			return -EINVAL;
		}
		port = colon + 1;
	}
	errno = 0;
	pnum = strtol(port, &end, 10);
	if (!*port || *end || errno || pnum < 1 || pnum > 65535) {
		snprintf(err, errlen, "bad port in '%s': expected a number from 1 to 65535", text);
		return -EINVAL;
	}
	if (!host[0]) {
		snprintf(err, errlen, "bad address '%s': missing host, e.g. 127.0.0.1:%ld", text,
			 pnum);
		return -EINVAL;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	rc = getaddrinfo(host, port, &hints, &res);
	if (rc || !res) {
		snprintf(err, errlen, "cannot resolve host '%s' in '%s': %s", host, text,
			 rc ? gai_strerror(rc) : "no address");
		if (res)
			freeaddrinfo(res);
		return -EINVAL;
	}
	memcpy(&out->ss, res->ai_addr, res->ai_addrlen);
	out->len = res->ai_addrlen;
	freeaddrinfo(res);
	netaddr_format((struct sockaddr *)&out->ss, out->len, out->text, sizeof(out->text));
	return 0;
toolong:
	snprintf(err, errlen, "bad address '%.40s...': host part too long", text);
	return -EINVAL;
}

void netaddr_format(const struct sockaddr *sa, socklen_t len, char *buf, size_t buflen)
{
	char host[INET6_ADDRSTRLEN];

	(void)len;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;

		inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
		snprintf(buf, buflen, "%s:%u", host, ntohs(in->sin_port));
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;

		inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
		snprintf(buf, buflen, "[%s]:%u", host, ntohs(in6->sin6_port));
	} else {
		snprintf(buf, buflen, "(family %d)", sa->sa_family);
	}
}

/* A non-blocking TCP socket for ep, inside ep's network namespace. fd or -errno. */
static int endpoint_socket(const struct net_endpoint *ep)
{
	int type = SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC;
	int fd;

	if (ep->netns_fd >= 0)
		return netns_socket(ep->netns_fd, ep->ss.ss_family, type, 0);
	fd = socket(ep->ss.ss_family, type, 0);
	return fd < 0 ? -errno : fd;
}

int netaddr_listen(const struct net_endpoint *ep, int backlog, int reuseport, char *err,
		   size_t errlen)
{
	int one = 1, fd, e;

	fd = endpoint_socket(ep);
	if (fd < 0) {
		e = -fd;
		snprintf(err, errlen, "cannot create a socket for %s: %s", ep->text, strerror(e));
		return -e;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (reuseport)
		setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	if (bind(fd, (const struct sockaddr *)&ep->ss, ep->len) < 0) {
		e = errno;
		if (e == EADDRINUSE)
			snprintf(err, errlen,
				 "cannot listen on %s: address already in use; another process "
				 "holds it "
				 "(see `ss -ltnp 'sport = :%s'`): stop it or choose another port",
				 ep->text, strrchr(ep->text, ':') + 1);
		else if (e == EADDRNOTAVAIL)
			snprintf(err, errlen,
				 "cannot listen on %s: no local interface has that address; use an "
				 "address "
				 "of this host (see `ip addr`) or 127.0.0.1",
				 ep->text);
		else if (e == EACCES)
			snprintf(err, errlen,
				 "cannot listen on %s: permission denied (ports below 1024 need "
				 "root "
				 "or CAP_NET_BIND_SERVICE)",
				 ep->text);
		else
			snprintf(err, errlen, "cannot bind %s: %s", ep->text, strerror(e));
		close(fd);
		return -e;
	}
	if (listen(fd, backlog) < 0) {
		e = errno;
		snprintf(err, errlen, "cannot listen on %s: %s", ep->text, strerror(e));
		close(fd);
		return -e;
	}
	return fd;
}

int netaddr_connect(const struct net_endpoint *ep)
{
	int one = 1, fd, e;

	fd = endpoint_socket(ep);
	if (fd < 0)
		return fd;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (const struct sockaddr *)&ep->ss, ep->len) < 0 && errno != EINPROGRESS) {
		e = errno;
		close(fd);
		return -e;
	}
	return fd;
}
