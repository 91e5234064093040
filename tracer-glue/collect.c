/*
 * collect.c - the collector libdoppeltrace streams to (DOPPELTRACE_OUT=
 * unix:PATH): a SOCK_SEQPACKET unix socket where each message is one whole
 * chunk, appended to a trace file as it comes. One poll loop, any number of
 * traced processes (each connects on its first record; forked children share
 * their parent's connection).
 *
 * The traced side never waits for us: when our socket buffer is full its
 * chunk is dropped and counted there. Messages that are not chunks are
 * rejected and counted.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "tracer-glue/runtime/dtr-format.h"
#include "tracer-glue/tracer-glue.h"

#define MAX_CLIENTS 1024
#define MSG_MAX (DTR_HDR_SIZE + (1u << 20))

static int write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);

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

int trc_collect(const char *sock_path, const char *out_path, int once, volatile int *stop,
		struct trc_collect_stats *st, char *err, size_t errlen)
{
	struct pollfd pfd[MAX_CLIENTS + 1];
	struct sockaddr_un sa;
	int lfd, ofd, n = 1, rc = 0, sz = 8 << 20;
	char *buf;

	memset(st, 0, sizeof(*st));
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (strlen(sock_path) >= sizeof(sa.sun_path)) {
		snprintf(err, errlen, "%s: socket path too long (at most %zu bytes)", sock_path,
			 sizeof(sa.sun_path) - 1);
		return -ENAMETOOLONG;
	}
	memcpy(sa.sun_path, sock_path, strlen(sock_path));
	buf = malloc(MSG_MAX);
	if (!buf)
		return -ENOMEM;
	ofd = open(out_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (ofd < 0) {
		rc = -errno;
		snprintf(err, errlen, "cannot write %s: %s", out_path, strerror(errno));
		free(buf);
		return rc;
	}
	lfd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (lfd < 0) {
		rc = -errno;
		snprintf(err, errlen, "socket: %s", strerror(errno));
		goto out;
	}
	unlink(sock_path);
	if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 64) < 0) {
		rc = -errno;
		snprintf(err, errlen, "cannot listen on %s: %s", sock_path, strerror(errno));
		goto out;
	}
	chmod(sock_path, 0600);
	pfd[0].fd = lfd;
	pfd[0].events = POLLIN;
	for (;;) {
		/* Asked to stop: one last pass without waiting takes in what clients already
		   sent (and connections already made), so nothing sent is lost. */
		int stopping = *stop;
		int r = poll(pfd, (nfds_t)n, stopping ? 0 : 200);

		if (r < 0) {
			if (errno == EINTR)
				continue; /* the next pass sees *stop */
			rc = -errno;
			snprintf(err, errlen, "poll: %s", strerror(errno));
			break;
		}
		while (pfd[0].revents & POLLIN) {
			int c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

			if (c < 0)
				break;
			if (n <= MAX_CLIENTS) {
				setsockopt(c, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
				pfd[n].fd = c;
				pfd[n].events = POLLIN;
				/* Read in this pass: it may have sent everything and gone. */
				pfd[n].revents = POLLIN;
				n++;
				st->clients++;
			} else {
				close(c);
				st->rejected++;
			}
		}
		for (int i = 1; i < n; i++) {
			if (!(pfd[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			for (;;) {
				ssize_t m = recv(pfd[i].fd, buf, MSG_MAX, MSG_DONTWAIT);
				struct dtr_chunk_hdr h;

				if (m < 0 && errno == EINTR)
					continue;
				if (m < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
					break;
				if (m <= 0) {
					close(pfd[i].fd);
					pfd[i] = pfd[--n];
					i--;
					break;
				}
				if ((size_t)m < sizeof(h)) {
					st->rejected++;
					continue;
				}
				memcpy(&h, buf, sizeof(h));
				if (h.magic != DTR_MAGIC || h.hdr_size < DTR_HDR_SIZE ||
				    (size_t)h.hdr_size + h.size != (size_t)m) {
					st->rejected++;
					continue;
				}
				rc = write_all(ofd, buf, (size_t)m);
				if (rc < 0) {
					snprintf(err, errlen, "writing %s: %s", out_path,
						 strerror(-rc));
					goto out;
				}
				st->chunks++;
				st->bytes += (uint64_t)m;
			}
		}
		if (stopping || (once && st->clients > 0 && n == 1))
			break;
	}
out:
	for (int i = 1; i < n; i++)
		close(pfd[i].fd);
	if (lfd >= 0) {
		close(lfd);
		unlink(sock_path);
	}
	if (close(ofd) < 0 && rc == 0) {
		rc = -errno;
		snprintf(err, errlen, "writing %s: %s", out_path, strerror(errno));
	}
	free(buf);
	return rc;
}
