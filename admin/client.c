/*
 * client.c - the CLI's blocking HTTP/1.0 client for admin endpoints.
 * HTTP/1.0 keeps it simple: the body runs until the server closes, also for
 * streamed replies.
 */
#include "admin/admin.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/netaddr.h"

static int connect_addr(const char *addr, char *err, size_t errlen)
{
	int fd, e;

	if (strncmp(addr, "unix:", 5) == 0) {
		struct sockaddr_un sun = {.sun_family = AF_UNIX};

		if (strlen(addr + 5) >= sizeof(sun.sun_path)) {
			snprintf(err, errlen, "unix socket path too long: %s", addr + 5);
			return -ENAMETOOLONG;
		}
		strcpy(sun.sun_path, addr + 5);
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return -errno;
		if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
			e = errno;
			close(fd);
			if (e == ENOENT || e == ECONNREFUSED)
				snprintf(err, errlen,
					 "nothing is listening on %s: is the service running under "
					 "`doppel run`? (`doppel list` shows what runs)",
					 addr + 5);
			else if (e == EACCES)
				snprintf(err, errlen,
					 "cannot open %s: permission denied (run as root)",
					 addr + 5);
			else
				snprintf(err, errlen, "cannot connect to %s: %s", addr + 5,
					 strerror(e));
			return -e;
		}
		return fd;
	} else {
		struct net_endpoint ep;

		if (netaddr_parse(addr, &ep, err, errlen) < 0)
			return -EINVAL;
		fd = socket(ep.ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return -errno;
		if (connect(fd, (struct sockaddr *)&ep.ss, ep.len) < 0) {
			e = errno;
			close(fd);
			if (e == ECONNREFUSED)
				snprintf(err, errlen,
					 "nothing is listening on %s: is `doppel proxy --admin %s` "
					 "running?",
					 addr, addr);
			else
				snprintf(err, errlen, "cannot connect to %s: %s", addr,
					 strerror(e));
			return -e;
		}
		return fd;
	}
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

int admin_request(const char *addr, const char *method, const char *path, const char *req_body,
		  struct sbuf *body, void (*on_chunk)(const char *data, size_t len, void *arg),
		  void *chunk_arg, int timeout_ms, char *err, size_t errlen)
{
	struct sbuf req, head;
	char buf[16384];
	int fd, rc, status = -1, in_body = 0;

	fd = connect_addr(addr, err, errlen);
	if (fd < 0)
		return fd;
	sbuf_init(&req);
	sbuf_init(&head);
	sbuf_printf(&req, "%s %s HTTP/1.0\r\nHost: doppel\r\nContent-Length: %zu\r\n\r\n%s", method,
		    path, req_body ? strlen(req_body) : 0, req_body ? req_body : "");
	rc = write_all(fd, req.buf, req.len);
	sbuf_free(&req);
	if (rc < 0) {
		snprintf(err, errlen, "cannot send request to %s: %s", addr, strerror(-rc));
		close(fd);
		return rc;
	}
	for (;;) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		ssize_t n;

		rc = poll(&pfd, 1, timeout_ms);
		if (rc < 0 && errno == EINTR)
			continue;
		if (rc == 0) {
			snprintf(err, errlen, "no answer from %s within %d ms", addr, timeout_ms);
			status = -ETIMEDOUT;
			break;
		}
		n = recv(fd, buf, sizeof(buf), 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			status = -errno;
			snprintf(err, errlen, "reading from %s: %s", addr, strerror(errno));
			break;
		}
		if (n == 0) {
			if (!in_body) {
				snprintf(err, errlen, "%s closed the connection without an answer",
					 addr);
				status = -EPROTO;
			}
			break;
		}
		if (in_body) {
			if (on_chunk)
				on_chunk(buf, (size_t)n, chunk_arg);
			else
				sbuf_append(body, buf, (size_t)n);
			continue;
		}
		sbuf_append(&head, buf, (size_t)n);
		{
			char *end = strstr(head.buf, "\r\n\r\n");
			size_t hl, rest;

			if (!end) {
				if (head.len > 65536) {
					snprintf(err, errlen, "%s sent an oversized reply header",
						 addr);
					status = -EPROTO;
					break;
				}
				continue;
			}
			if (sscanf(head.buf, "HTTP/%*d.%*d %d", &status) != 1) {
				snprintf(err, errlen, "%s did not answer in HTTP", addr);
				status = -EPROTO;
				break;
			}
			in_body = 1;
			hl = (size_t)(end - head.buf) + 4;
			rest = head.len - hl;
			if (rest) {
				if (on_chunk)
					on_chunk(head.buf + hl, rest, chunk_arg);
				else
					sbuf_append(body, head.buf + hl, rest);
			}
		}
	}
	sbuf_free(&head);
	close(fd);
	return status;
}
